//! Browser-facing features: bucket CORS configuration (round trip, validation), preflight
//! `OPTIONS` answers and CORS headers on actual and error responses (wildcard origins included);
//! object and bucket tagging (the `x-amz-tagging` header, Put/Get/DeleteObjectTagging, limits,
//! per-version tags); and POST Object, the HTML form upload signed with a SigV4 POST policy
//! (success, `success_action_status`, policy conditions, tampered signature, expired policy).

use std::time::{Duration, SystemTime};

use aws_sdk_s3::types::{BucketVersioningStatus, CorsConfiguration, CorsRule, Tag, Tagging, VersioningConfiguration};
use aws_sdk_s3::Client;
use base64::Engine as _;
use serde_json::json;

use crate::fixtures::*;

// ---------------------------------------------------------------------------------------------
// CORS
// ---------------------------------------------------------------------------------------------

fn rule(origins: &[&str], methods: &[&str], headers: &[&str], expose: &[&str], max_age: Option<i32>) -> CorsRule {
    let mut b = CorsRule::builder();
    for o in origins {
        b = b.allowed_origins(*o);
    }
    for m in methods {
        b = b.allowed_methods(*m);
    }
    for h in headers {
        b = b.allowed_headers(*h);
    }
    for e in expose {
        b = b.expose_headers(*e);
    }
    b.set_max_age_seconds(max_age).build().expect("CORS rule")
}

async fn put_cors(client: &Client, bucket: &str, rules: Vec<CorsRule>) {
    ok(
        client
            .put_bucket_cors()
            .bucket(bucket)
            .cors_configuration(
                CorsConfiguration::builder()
                    .set_cors_rules(Some(rules))
                    .build()
                    .expect("CORS configuration"),
            )
            .send()
            .await,
        "PutBucketCors",
    );
}

/// The app rule (exact origin, GET/PUT, content-type, exposes ETag, max age 3000) and a
/// wildcard-origin rule for GET.
fn standard_rules() -> Vec<CorsRule> {
    vec![
        rule(
            &["http://app.example"],
            &["GET", "PUT", "HEAD"],
            &["content-type", "x-amz-*"],
            &["ETag", "x-amz-version-id"],
            Some(3000),
        ),
        rule(&["http://*.example.com"], &["GET"], &[], &[], None),
    ]
}

async fn preflight(server: &TestServer, path: &str, origin: &str, method: &str, headers: Option<&str>) -> RawResponse {
    let mut h = vec![("Origin", origin), ("Access-Control-Request-Method", method)];
    if let Some(v) = headers {
        h.push(("Access-Control-Request-Headers", v));
    }
    raw_request("OPTIONS", &format!("{}{path}", server.endpoint()), &h, Vec::new()).await
}

/// A comma-separated header's items, lowercased and trimmed.
fn items(r: &RawResponse, name: &str) -> Vec<String> {
    r.headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|s| s.trim().to_ascii_lowercase())
        .filter(|s| !s.is_empty())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_configuration_round_trip() {
    let (_server, client, bucket) = TestServer::with_bucket("corscfg").await;

    expect_error(
        client.get_bucket_cors().bucket(&bucket).send().await,
        404,
        "NoSuchCORSConfiguration",
    );
    put_cors(&client, &bucket, standard_rules()).await;
    let got = ok(client.get_bucket_cors().bucket(&bucket).send().await, "GetBucketCors");
    let rules = got.cors_rules();
    assert_eq!(rules.len(), 2, "{rules:?}");
    assert_eq!(rules[0].allowed_origins(), ["http://app.example"]);
    assert_eq!(rules[0].allowed_methods(), ["GET", "PUT", "HEAD"]);
    assert_eq!(rules[0].allowed_headers(), ["content-type", "x-amz-*"]);
    assert_eq!(rules[0].expose_headers(), ["ETag", "x-amz-version-id"]);
    assert_eq!(rules[0].max_age_seconds(), Some(3000));
    assert_eq!(rules[1].allowed_origins(), ["http://*.example.com"]);
    assert_eq!(rules[1].allowed_methods(), ["GET"]);
    assert_eq!(rules[1].max_age_seconds(), None);

    // An unsupported method is refused and the stored configuration stays.
    let bad = client
        .put_bucket_cors()
        .bucket(&bucket)
        .cors_configuration(
            CorsConfiguration::builder()
                .cors_rules(rule(&["http://app.example"], &["GET", "PATCH"], &[], &[], None))
                .build()
                .unwrap(),
        )
        .send()
        .await;
    expect_status(bad, 400);
    let got = ok(client.get_bucket_cors().bucket(&bucket).send().await, "GetBucketCors");
    assert_eq!(
        got.cors_rules().len(),
        2,
        "a refused configuration replaced the stored one"
    );

    ok(
        client.delete_bucket_cors().bucket(&bucket).send().await,
        "DeleteBucketCors",
    );
    expect_error(
        client.get_bucket_cors().bucket(&bucket).send().await,
        404,
        "NoSuchCORSConfiguration",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_preflight() {
    let (server, client, bucket) = TestServer::with_bucket("corspre").await;
    let bare = new_bucket(&client, "corsnone").await;
    put_cors(&client, &bucket, standard_rules()).await;
    let path = format!("/{bucket}/uploads/file.bin");

    let r = preflight(&server, &path, "http://app.example", "PUT", Some("content-type")).await;
    assert_eq!(r.status, 200, "preflight: {}", r.text());
    assert_eq!(r.header("access-control-allow-origin"), Some("http://app.example"));
    assert!(
        items(&r, "access-control-allow-methods").contains(&"put".to_string()),
        "Allow-Methods: {:?}",
        r.header("access-control-allow-methods")
    );
    assert!(
        items(&r, "access-control-allow-headers").contains(&"content-type".to_string()),
        "Allow-Headers: {:?}",
        r.header("access-control-allow-headers")
    );
    assert_eq!(r.header("access-control-max-age"), Some("3000"));
    assert!(
        items(&r, "vary").contains(&"origin".to_string()),
        "Vary: {:?}",
        r.header("vary")
    );

    // A header matched by the `x-amz-*` pattern, several headers at once.
    let r = preflight(
        &server,
        &path,
        "http://app.example",
        "PUT",
        Some("Content-Type, x-amz-meta-owner"),
    )
    .await;
    assert_eq!(r.status, 200, "preflight with two headers: {}", r.text());

    // Refusals: another origin, a method the rule does not allow, a header it does not allow.
    let r = preflight(&server, &path, "http://evil.example", "PUT", Some("content-type")).await;
    assert_eq!(r.status, 403, "preflight from a foreign origin: {}", r.text());
    assert!(r.header("access-control-allow-origin").is_none());
    let r = preflight(&server, &path, "http://app.example", "DELETE", None).await;
    assert_eq!(r.status, 403, "preflight for a method not allowed: {}", r.text());
    let r = preflight(&server, &path, "http://app.example", "PUT", Some("authorization-extra")).await;
    assert_eq!(r.status, 403, "preflight with a header not allowed: {}", r.text());

    // Wildcard origins.
    let r = preflight(&server, &path, "http://a.example.com", "GET", None).await;
    assert_eq!(r.status, 200, "wildcard origin: {}", r.text());
    assert_eq!(r.header("access-control-allow-origin"), Some("http://a.example.com"));
    for other in [
        "http://example.org",
        "http://a.example.com.evil.org",
        "https://a.example.com",
    ] {
        let r = preflight(&server, &path, other, "GET", None).await;
        assert_eq!(
            r.status,
            403,
            "{other} must not match http://*.example.com: {}",
            r.text()
        );
    }

    // A bucket without CORS.
    let r = preflight(&server, &format!("/{bare}/x"), "http://app.example", "GET", None).await;
    assert_eq!(r.status, 403, "preflight on a bucket without CORS: {}", r.text());
    assert!(r.header("access-control-allow-origin").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_headers_on_actual_and_error_responses() {
    let (server, client, bucket) = TestServer::with_bucket("corsact").await;
    put_cors(&client, &bucket, standard_rules()).await;
    let etag = put(&client, &bucket, "k", b"cross origin".to_vec()).await;

    // A signed GET from the allowed origin.
    let r = SignedRequest::new("GET", format!("/{bucket}/k"))
        .header("origin", "http://app.example")
        .send(&server)
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.body.as_ref(), b"cross origin");
    assert_eq!(r.header("etag"), Some(etag.as_str()));
    assert_eq!(r.header("access-control-allow-origin"), Some("http://app.example"));
    assert!(
        items(&r, "access-control-expose-headers").contains(&"etag".to_string()),
        "Expose-Headers: {:?}",
        r.header("access-control-expose-headers")
    );
    assert!(
        items(&r, "vary").contains(&"origin".to_string()),
        "Vary: {:?}",
        r.header("vary")
    );

    // Error responses carry the CORS headers too, so the browser can read the error.
    let r = SignedRequest::new("GET", format!("/{bucket}/missing"))
        .header("origin", "http://app.example")
        .send(&server)
        .await;
    assert_eq!(r.status, 404, "{}", r.text());
    assert_eq!(r.error_code().as_deref(), Some("NoSuchKey"));
    assert_eq!(r.header("access-control-allow-origin"), Some("http://app.example"));
    let r = raw_request(
        "GET",
        &format!("{}/{bucket}/k", server.endpoint()),
        &[("Origin", "http://app.example")],
        Vec::new(),
    )
    .await;
    assert_eq!(r.status, 403, "anonymous GET of a private object: {}", r.text());
    assert_eq!(r.error_code().as_deref(), Some("AccessDenied"));
    assert_eq!(r.header("access-control-allow-origin"), Some("http://app.example"));

    // Wildcard rule on an actual request.
    let r = SignedRequest::new("GET", format!("/{bucket}/k"))
        .header("origin", "http://a.example.com")
        .send(&server)
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("access-control-allow-origin"), Some("http://a.example.com"));

    // A non-matching origin: the request is served, without CORS headers.
    for other in ["http://example.org", "http://evil.example"] {
        let r = SignedRequest::new("GET", format!("/{bucket}/k"))
            .header("origin", other)
            .send(&server)
            .await;
        assert_eq!(r.status, 200);
        assert!(
            r.header("access-control-allow-origin").is_none(),
            "{other} got Access-Control-Allow-Origin {:?}",
            r.header("access-control-allow-origin")
        );
    }
    // A method the rule does not list (DELETE): no CORS headers.
    let r = SignedRequest::new("DELETE", format!("/{bucket}/k"))
        .header("origin", "http://a.example.com")
        .send(&server)
        .await;
    assert_eq!(r.status, 204, "{}", r.text());
    assert!(r.header("access-control-allow-origin").is_none());
}

// ---------------------------------------------------------------------------------------------
// Tagging
// ---------------------------------------------------------------------------------------------

fn tagging(pairs: &[(&str, &str)]) -> Tagging {
    Tagging::builder()
        .set_tag_set(Some(
            pairs
                .iter()
                .map(|(k, v)| Tag::builder().key(*k).value(*v).build().expect("tag"))
                .collect(),
        ))
        .build()
        .expect("tagging")
}

fn sorted_tags(tags: &[Tag]) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = tags
        .iter()
        .map(|t| (t.key().to_string(), t.value().to_string()))
        .collect();
    v.sort();
    v
}

fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = p.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    v.sort();
    v
}

async fn object_tags(client: &Client, bucket: &str, key: &str, version: Option<&str>) -> Vec<(String, String)> {
    let out = ok(
        client
            .get_object_tagging()
            .bucket(bucket)
            .key(key)
            .set_version_id(version.map(str::to_string))
            .send()
            .await,
        "GetObjectTagging",
    );
    if let Some(v) = version {
        assert_eq!(out.version_id(), Some(v), "GetObjectTagging reports the version");
    }
    sorted_tags(out.tag_set())
}

async fn tag_count(client: &Client, bucket: &str, key: &str) -> i32 {
    let out = ok(client.get_object().bucket(bucket).key(key).send().await, "GET");
    out.tag_count().unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn object_tagging() {
    let (_server, client, bucket) = TestServer::with_bucket("tags").await;

    ok(
        client
            .put_object()
            .bucket(&bucket)
            .key("k")
            .tagging("a=1&b=two%20words")
            .body(b"tagged".to_vec().into())
            .send()
            .await,
        "PUT with x-amz-tagging",
    );
    assert_eq!(
        object_tags(&client, &bucket, "k", None).await,
        pairs(&[("a", "1"), ("b", "two words")])
    );
    assert_eq!(tag_count(&client, &bucket, "k").await, 2);
    let head = ok(client.head_object().bucket(&bucket).key("k").send().await, "HEAD");
    assert_eq!(head.content_length(), Some(6));

    // PutObjectTagging replaces the whole set.
    ok(
        client
            .put_object_tagging()
            .bucket(&bucket)
            .key("k")
            .tagging(tagging(&[("c", "3")]))
            .send()
            .await,
        "PutObjectTagging",
    );
    assert_eq!(object_tags(&client, &bucket, "k", None).await, pairs(&[("c", "3")]));
    assert_eq!(tag_count(&client, &bucket, "k").await, 1);
    assert_eq!(
        get_bytes(&client, &bucket, "k").await,
        b"tagged",
        "tagging leaves the bytes alone"
    );

    // Limits: at most 10 tags, no duplicate keys; a refused set changes nothing.
    let eleven: Vec<(String, String)> = (0..11).map(|i| (format!("k{i}"), format!("v{i}"))).collect();
    let eleven: Vec<(&str, &str)> = eleven.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    expect_error(
        client
            .put_object_tagging()
            .bucket(&bucket)
            .key("k")
            .tagging(tagging(&eleven))
            .send()
            .await,
        400,
        "InvalidTag",
    );
    expect_error(
        client
            .put_object_tagging()
            .bucket(&bucket)
            .key("k")
            .tagging(tagging(&[("dup", "1"), ("dup", "2")]))
            .send()
            .await,
        400,
        "InvalidTag",
    );
    assert_eq!(object_tags(&client, &bucket, "k", None).await, pairs(&[("c", "3")]));
    // Ten is fine.
    ok(
        client
            .put_object_tagging()
            .bucket(&bucket)
            .key("k")
            .tagging(tagging(&eleven[..10]))
            .send()
            .await,
        "PutObjectTagging with 10 tags",
    );
    assert_eq!(tag_count(&client, &bucket, "k").await, 10);

    ok(
        client.delete_object_tagging().bucket(&bucket).key("k").send().await,
        "DeleteObjectTagging",
    );
    assert!(object_tags(&client, &bucket, "k", None).await.is_empty());
    assert_eq!(tag_count(&client, &bucket, "k").await, 0);

    // Tagging of a key that does not exist.
    expect_error(
        client.get_object_tagging().bucket(&bucket).key("nope").send().await,
        404,
        "NoSuchKey",
    );
    expect_error(
        client
            .put_object_tagging()
            .bucket(&bucket)
            .key("nope")
            .tagging(tagging(&[("a", "b")]))
            .send()
            .await,
        404,
        "NoSuchKey",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tagging_a_specific_version() {
    let (_server, client, bucket) = TestServer::with_bucket("tagver").await;
    ok(
        client
            .put_bucket_versioning()
            .bucket(&bucket)
            .versioning_configuration(
                VersioningConfiguration::builder()
                    .status(BucketVersioningStatus::Enabled)
                    .build(),
            )
            .send()
            .await,
        "enable versioning",
    );
    let mut ids = Vec::new();
    for gen in ["1", "2"] {
        let out = ok(
            client
                .put_object()
                .bucket(&bucket)
                .key("k")
                .tagging(format!("gen={gen}"))
                .body(gen.as_bytes().to_vec().into())
                .send()
                .await,
            "PUT",
        );
        ids.push(out.version_id().expect("version id").to_string());
    }
    let (v1, v2) = (&ids[0], &ids[1]);

    let out = ok(
        client
            .put_object_tagging()
            .bucket(&bucket)
            .key("k")
            .version_id(v1)
            .tagging(tagging(&[("gen", "old")]))
            .send()
            .await,
        "PutObjectTagging ?versionId=v1",
    );
    assert_eq!(out.version_id(), Some(v1.as_str()));
    assert_eq!(
        object_tags(&client, &bucket, "k", Some(v1)).await,
        pairs(&[("gen", "old")])
    );
    assert_eq!(
        object_tags(&client, &bucket, "k", Some(v2)).await,
        pairs(&[("gen", "2")])
    );
    assert_eq!(object_tags(&client, &bucket, "k", None).await, pairs(&[("gen", "2")]));

    ok(
        client
            .delete_object_tagging()
            .bucket(&bucket)
            .key("k")
            .version_id(v2)
            .send()
            .await,
        "DeleteObjectTagging ?versionId=v2",
    );
    assert!(object_tags(&client, &bucket, "k", Some(v2)).await.is_empty());
    assert_eq!(
        object_tags(&client, &bucket, "k", Some(v1)).await,
        pairs(&[("gen", "old")])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bucket_tagging() {
    let (_server, client, bucket) = TestServer::with_bucket("btags").await;

    expect_error(
        client.get_bucket_tagging().bucket(&bucket).send().await,
        404,
        "NoSuchTagSet",
    );
    ok(
        client
            .put_bucket_tagging()
            .bucket(&bucket)
            .tagging(tagging(&[("env", "prod"), ("team", "media tools")]))
            .send()
            .await,
        "PutBucketTagging",
    );
    let got = ok(
        client.get_bucket_tagging().bucket(&bucket).send().await,
        "GetBucketTagging",
    );
    assert_eq!(
        sorted_tags(got.tag_set()),
        pairs(&[("env", "prod"), ("team", "media tools")])
    );
    // Replaced as a whole.
    ok(
        client
            .put_bucket_tagging()
            .bucket(&bucket)
            .tagging(tagging(&[("env", "dev")]))
            .send()
            .await,
        "PutBucketTagging again",
    );
    let got = ok(
        client.get_bucket_tagging().bucket(&bucket).send().await,
        "GetBucketTagging",
    );
    assert_eq!(sorted_tags(got.tag_set()), pairs(&[("env", "dev")]));

    ok(
        client.delete_bucket_tagging().bucket(&bucket).send().await,
        "DeleteBucketTagging",
    );
    expect_error(
        client.get_bucket_tagging().bucket(&bucket).send().await,
        404,
        "NoSuchTagSet",
    );
}

// ---------------------------------------------------------------------------------------------
// POST Object (browser form upload)
// ---------------------------------------------------------------------------------------------

const BOUNDARY: &str = "----StrataFormBoundary7MA4YWxkTrZu0gW";

/// A SigV4-signed POST policy form, built field by field.
struct PostForm {
    /// Form fields in order, before the file.
    fields: Vec<(String, String)>,
}

/// Everything needed to sign a POST policy as `access_key`.
struct PostPolicy<'a> {
    access_key: &'a str,
    secret_key: &'a str,
    /// When the policy expires.
    expiration: SystemTime,
    /// Conditions besides the SigV4 ones (`x-amz-algorithm/credential/date`), added here.
    conditions: Vec<serde_json::Value>,
}

fn iso8601_basic(t: SystemTime) -> (String, String) {
    let t = time::OffsetDateTime::from(t);
    let date = format!("{:04}{:02}{:02}", t.year(), u8::from(t.month()), t.day());
    let stamp = format!("{date}T{:02}{:02}{:02}Z", t.hour(), t.minute(), t.second());
    (date, stamp)
}

fn iso8601_extended(t: SystemTime) -> String {
    let t = time::OffsetDateTime::from(t);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.000Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

impl PostPolicy<'_> {
    /// The signed form fields (policy, algorithm, credential, date, signature).
    fn sign(&self) -> PostForm {
        let now = SystemTime::now();
        let (date, stamp) = iso8601_basic(now);
        let credential = format!("{}/{date}/{REGION}/s3/aws4_request", self.access_key);
        let mut conditions = self.conditions.clone();
        conditions.push(json!({"x-amz-algorithm": "AWS4-HMAC-SHA256"}));
        conditions.push(json!({"x-amz-credential": credential}));
        conditions.push(json!({"x-amz-date": stamp}));
        let policy = json!({
            "expiration": iso8601_extended(self.expiration),
            "conditions": conditions,
        })
        .to_string();
        let policy_b64 = base64::engine::general_purpose::STANDARD.encode(policy.as_bytes());
        let signing_key = aws_sigv4::sign::v4::generate_signing_key(self.secret_key, now, REGION, "s3");
        let signature = aws_sigv4::sign::v4::calculate_signature(signing_key, policy_b64.as_bytes());
        PostForm {
            fields: vec![
                ("policy".into(), policy_b64),
                ("x-amz-algorithm".into(), "AWS4-HMAC-SHA256".into()),
                ("x-amz-credential".into(), credential),
                ("x-amz-date".into(), stamp),
                ("x-amz-signature".into(), signature),
            ],
        }
    }
}

impl PostForm {
    fn field(mut self, name: &str, value: &str) -> Self {
        self.fields.insert(0, (name.to_string(), value.to_string()));
        self
    }

    fn set(&mut self, name: &str, value: &str) {
        let f = self
            .fields
            .iter_mut()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("no form field {name}"));
        f.1 = value.to_string();
    }

    fn get(&self, name: &str) -> &str {
        &self.fields.iter().find(|(n, _)| n == name).expect("form field").1
    }

    /// The multipart/form-data body: the fields, then the file last.
    fn body(&self, file: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        for (name, value) in &self.fields {
            out.extend_from_slice(
                format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n")
                    .as_bytes(),
            );
        }
        out.extend_from_slice(
            format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"upload.bin\"\r\n\
                 Content-Type: application/octet-stream\r\n\r\n"
            )
            .as_bytes(),
        );
        out.extend_from_slice(file);
        out.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
        out
    }

    async fn post(&self, server: &TestServer, bucket: &str, file: &[u8]) -> RawResponse {
        let content_type = format!("multipart/form-data; boundary={BOUNDARY}");
        raw_request(
            "POST",
            &format!("{}/{bucket}", server.endpoint()),
            &[("Content-Type", content_type.as_str())],
            self.body(file),
        )
        .await
    }
}

/// The standard conditions of these tests: the bucket, keys under `uploads/`, at most 1 MiB,
/// and `success_action_status` 201.
fn upload_conditions(bucket: &str) -> Vec<serde_json::Value> {
    vec![
        json!({"bucket": bucket}),
        json!(["starts-with", "$key", "uploads/"]),
        json!(["content-length-range", 0, 1_048_576]),
        json!({"success_action_status": "201"}),
    ]
}

fn root_policy(expiration: SystemTime, conditions: Vec<serde_json::Value>) -> PostPolicy<'static> {
    PostPolicy {
        access_key: ROOT_ACCESS_KEY,
        secret_key: ROOT_SECRET_KEY,
        expiration,
        conditions,
    }
}

fn in_an_hour() -> SystemTime {
    SystemTime::now() + Duration::from_secs(3600)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn post_object_form_upload() {
    let (server, client, bucket) = TestServer::with_bucket("postform").await;
    let file = random_bytes(200_000, 77);

    let form = root_policy(in_an_hour(), upload_conditions(&bucket))
        .sign()
        .field("success_action_status", "201")
        .field("key", "uploads/photo.bin");
    let r = form.post(&server, &bucket, &file).await;
    assert_eq!(r.status, 201, "POST Object: {}", r.text());
    let xml = r.text();
    assert_eq!(xml_element(&xml, "Key").as_deref(), Some("uploads/photo.bin"), "{xml}");
    assert_eq!(xml_element(&xml, "Bucket").as_deref(), Some(bucket.as_str()), "{xml}");
    let etag = xml_element(&xml, "ETag").unwrap_or_else(|| panic!("no <ETag> in {xml}"));
    assert!(etag.contains(&md5_hex(&file)), "ETag {etag} is not the MD5 of the file");
    assert!(xml_element(&xml, "Location").is_some(), "no <Location> in {xml}");

    let got = get_bytes(&client, &bucket, "uploads/photo.bin").await;
    assert!(got == file, "the uploaded object's bytes differ");
    let head = ok(
        client
            .head_object()
            .bucket(&bucket)
            .key("uploads/photo.bin")
            .send()
            .await,
        "HEAD",
    );
    assert_eq!(head.e_tag(), Some(etag_of(&file).as_str()));

    // Without success_action_status: 204 No Content.
    let mut conditions = upload_conditions(&bucket);
    conditions.pop();
    let form = root_policy(in_an_hour(), conditions)
        .sign()
        .field("key", "uploads/second.txt");
    let r = form.post(&server, &bucket, b"second").await;
    assert_eq!(r.status, 204, "POST Object without success_action_status: {}", r.text());
    assert_eq!(get_bytes(&client, &bucket, "uploads/second.txt").await, b"second");
}

/// A server with a fresh bucket of root's, for one refused POST.
async fn refusal_fixture(tag: &str) -> (TestServer, Client, String) {
    let (server, client, bucket) = TestServer::with_bucket(tag).await;
    (server, client, bucket)
}

/// Asserts that the refused POSTs wrote nothing.
async fn assert_nothing_written(client: &Client, bucket: &str) {
    assert!(
        list_all_keys(client, bucket).await.is_empty(),
        "a refused POST wrote an object"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn post_object_key_outside_the_policy_is_denied() {
    let (server, client, bucket) = refusal_fixture("postkey").await;
    // S3 answers a failed policy condition with 403 AccessDenied ("Invalid according to
    // Policy: Policy Condition failed").
    let form = root_policy(in_an_hour(), upload_conditions(&bucket))
        .sign()
        .field("success_action_status", "201")
        .field("key", "elsewhere/file.txt");
    let r = form.post(&server, &bucket, b"sneaky").await;
    assert_eq!(r.status, 403, "key outside the policy: {}", r.text());
    assert_eq!(r.error_code().as_deref(), Some("AccessDenied"), "{}", r.text());
    assert_nothing_written(&client, &bucket).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn post_object_field_without_a_condition_is_denied() {
    let (server, client, bucket) = refusal_fixture("postfield").await;
    // A form field the policy does not mention at all (S3: "Extra input fields").
    let form = root_policy(in_an_hour(), upload_conditions(&bucket))
        .sign()
        .field("success_action_status", "201")
        .field("Content-Type", "text/html")
        .field("key", "uploads/typed.html");
    let r = form.post(&server, &bucket, b"<p>hi</p>").await;
    assert_eq!(r.status, 403, "field without a policy condition: {}", r.text());
    assert_eq!(r.error_code().as_deref(), Some("AccessDenied"), "{}", r.text());
    assert_nothing_written(&client, &bucket).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn post_object_tampered_signature_is_denied() {
    let (server, client, bucket) = refusal_fixture("postsig").await;
    let mut form = root_policy(in_an_hour(), upload_conditions(&bucket))
        .sign()
        .field("success_action_status", "201")
        .field("key", "uploads/tampered.txt");
    let sig = form.get("x-amz-signature").to_string();
    let flipped = if sig.starts_with('0') { "1" } else { "0" };
    form.set("x-amz-signature", &format!("{flipped}{}", &sig[1..]));
    let r = form.post(&server, &bucket, b"tampered").await;
    assert_eq!(r.status, 403, "tampered signature: {}", r.text());
    assert_eq!(r.error_code().as_deref(), Some("SignatureDoesNotMatch"), "{}", r.text());

    // A policy changed after signing (the key prefix widened).
    let mut form = root_policy(in_an_hour(), upload_conditions(&bucket))
        .sign()
        .field("success_action_status", "201")
        .field("key", "anywhere.txt");
    let policy = base64::engine::general_purpose::STANDARD
        .decode(form.get("policy"))
        .expect("policy is base64");
    let widened = String::from_utf8(policy).unwrap().replace("\"uploads/\"", "\"\"");
    form.set("policy", &base64::engine::general_purpose::STANDARD.encode(widened));
    let r = form.post(&server, &bucket, b"widened").await;
    assert_eq!(r.status, 403, "policy edited after signing: {}", r.text());
    assert_eq!(r.error_code().as_deref(), Some("SignatureDoesNotMatch"), "{}", r.text());
    assert_nothing_written(&client, &bucket).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn post_object_expired_policy_is_denied() {
    let (server, client, bucket) = refusal_fixture("postexp").await;
    // Signed now, but the policy expired an hour ago.
    let form = root_policy(
        SystemTime::now() - Duration::from_secs(3600),
        upload_conditions(&bucket),
    )
    .sign()
    .field("success_action_status", "201")
    .field("key", "uploads/late.txt");
    let r = form.post(&server, &bucket, b"late").await;
    assert_eq!(r.status, 403, "expired policy: {}", r.text());
    assert_eq!(r.error_code().as_deref(), Some("AccessDenied"), "{}", r.text());
    assert_nothing_written(&client, &bucket).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn post_object_over_content_length_range_is_refused() {
    let (server, client, bucket) = refusal_fixture("postbig").await;
    let mut conditions = upload_conditions(&bucket);
    conditions[2] = json!(["content-length-range", 0, 10]);
    let form = root_policy(in_an_hour(), conditions)
        .sign()
        .field("success_action_status", "201")
        .field("key", "uploads/big.txt");
    let r = form.post(&server, &bucket, &[b'x'; 100]).await;
    assert_eq!(r.status, 400, "file over content-length-range: {}", r.text());
    assert_eq!(r.error_code().as_deref(), Some("EntityTooLarge"), "{}", r.text());
    assert_nothing_written(&client, &bucket).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn post_object_by_a_foreign_key_is_denied() {
    let (server, client, bucket) = refusal_fixture("postbob").await;
    let bob = server.create_key("bob");
    let form = PostPolicy {
        access_key: &bob.access_key,
        secret_key: &bob.secret_key,
        expiration: in_an_hour(),
        conditions: upload_conditions(&bucket),
    }
    .sign()
    .field("success_action_status", "201")
    .field("key", "uploads/bobs.txt");
    let r = form.post(&server, &bucket, b"from bob").await;
    assert_eq!(r.status, 403, "bob's POST into root's bucket: {}", r.text());
    assert_eq!(r.error_code().as_deref(), Some("AccessDenied"), "{}", r.text());
    assert_nothing_written(&client, &bucket).await;

    // Into his own bucket it works.
    let bc = server.client_with(&bob.access_key, &bob.secret_key);
    let his = new_bucket(&bc, "postbobown").await;
    let form = PostPolicy {
        access_key: &bob.access_key,
        secret_key: &bob.secret_key,
        expiration: in_an_hour(),
        conditions: upload_conditions(&his),
    }
    .sign()
    .field("success_action_status", "201")
    .field("key", "uploads/bobs.txt");
    let r = form.post(&server, &his, b"from bob").await;
    assert_eq!(r.status, 201, "bob's POST into his own bucket: {}", r.text());
    assert_eq!(get_bytes(&bc, &his, "uploads/bobs.txt").await, b"from bob");
}
