//! Static website hosting: Put/Get/DeleteBucketWebsite through aws-sdk-s3 (round trip,
//! S3's validation errors, who may call it), then the website endpoint through plain HTTP
//! with a `Host: <bucket>.s3-website.localhost` header: index documents, the `dir` → `dir/`
//! redirect, error documents and S3's HTML error pages, private objects, redirect-all,
//! routing rules, `x-amz-website-redirect-location`, HEAD, Range, conditionals, CORS, image
//! transforms, and the S3 API still answering on the same port; a website-only listener.

use std::path::PathBuf;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    Condition, CorsConfiguration, CorsRule, ErrorDocument, IndexDocument, Protocol, PublicAccessBlockConfiguration,
    Redirect, RedirectAllRequestsTo, RoutingRule, WebsiteConfiguration,
};
use aws_sdk_s3::Client;
use image::GenericImageView;
use serde_json::json;

use crate::fixtures::*;

fn index(suffix: &str) -> IndexDocument {
    IndexDocument::builder().suffix(suffix).build().expect("index document")
}

fn error_doc(key: &str) -> ErrorDocument {
    ErrorDocument::builder().key(key).build().expect("error document")
}

/// `index.html` + `error.html`, with `rules`.
fn site(rules: Vec<RoutingRule>) -> WebsiteConfiguration {
    WebsiteConfiguration::builder()
        .index_document(index("index.html"))
        .error_document(error_doc("error.html"))
        .set_routing_rules((!rules.is_empty()).then_some(rules))
        .build()
}

async fn put_website(client: &Client, bucket: &str, config: WebsiteConfiguration) {
    ok(
        client
            .put_bucket_website()
            .bucket(bucket)
            .website_configuration(config)
            .send()
            .await,
        "PutBucketWebsite",
    );
}

/// Turns Block Public Access off for `bucket` and lets anyone read it, except `private/`.
async fn make_public(client: &Client, bucket: &str) {
    ok(
        client
            .put_public_access_block()
            .bucket(bucket)
            .public_access_block_configuration(
                PublicAccessBlockConfiguration::builder()
                    .block_public_acls(false)
                    .ignore_public_acls(false)
                    .block_public_policy(false)
                    .restrict_public_buckets(false)
                    .build(),
            )
            .send()
            .await,
        "PutPublicAccessBlock",
    );
    let policy = json!({
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
             "Resource": format!("arn:aws:s3:::{bucket}/*")},
            {"Effect": "Deny", "Principal": "*", "Action": "s3:GetObject",
             "Resource": format!("arn:aws:s3:::{bucket}/private/*")},
        ],
    });
    ok(
        client
            .put_bucket_policy()
            .bucket(bucket)
            .policy(policy.to_string())
            .send()
            .await,
        "PutBucketPolicy",
    );
}

async fn put_html(client: &Client, bucket: &str, key: &str, body: &str) {
    ok(
        client
            .put_object()
            .bucket(bucket)
            .key(key)
            .content_type("text/html")
            .body(ByteStream::from(body.as_bytes().to_vec()))
            .send()
            .await,
        &format!("PutObject {key}"),
    );
}

/// An unsigned request to the website endpoint of `bucket` on the server's main port.
async fn web(server: &TestServer, method: &str, bucket: &str, path: &str, headers: &[(&str, &str)]) -> RawResponse {
    let host = format!("{bucket}.s3-website.localhost:{}", server.port());
    let mut all = vec![("host", host.as_str())];
    all.extend_from_slice(headers);
    raw_request(method, &format!("{}{path}", server.endpoint()), &all, Vec::new()).await
}

async fn web_get(server: &TestServer, bucket: &str, path: &str) -> RawResponse {
    web(server, "GET", bucket, path, &[]).await
}

#[track_caller]
fn assert_html_error(resp: &RawResponse, status: u16, code: &str) {
    let text = resp.text();
    assert_eq!(resp.status, status, "{text}");
    assert!(
        resp.header("content-type").is_some_and(|c| c.starts_with("text/html")),
        "HTML error page expected, got {:?}",
        resp.header("content-type")
    );
    let reason = http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("");
    assert!(text.contains(&format!("<title>{status} {reason}</title>")), "{text}");
    assert!(text.contains(&format!("<li>Code: {code}</li>")), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn website_configuration_round_trip_validation_and_delete() {
    let (server, client, bucket) = TestServer::with_bucket("webcfg").await;

    expect_error(
        client.get_bucket_website().bucket(&bucket).send().await,
        404,
        "NoSuchWebsiteConfiguration",
    );

    let rules = vec![
        RoutingRule::builder()
            .condition(Condition::builder().key_prefix_equals("docs/").build())
            .redirect(Redirect::builder().replace_key_prefix_with("documents/").build())
            .build(),
        RoutingRule::builder()
            .condition(Condition::builder().http_error_code_returned_equals("404").build())
            .redirect(
                Redirect::builder()
                    .protocol(Protocol::Https)
                    .host_name("example.com")
                    .replace_key_with("missing.html")
                    .http_redirect_code("302")
                    .build(),
            )
            .build(),
    ];
    put_website(&client, &bucket, site(rules.clone())).await;
    let got = ok(
        client.get_bucket_website().bucket(&bucket).send().await,
        "GetBucketWebsite",
    );
    assert_eq!(got.index_document(), Some(&index("index.html")));
    assert_eq!(got.error_document(), Some(&error_doc("error.html")));
    assert_eq!(got.routing_rules(), rules.as_slice());
    assert!(got.redirect_all_requests_to().is_none());

    // Each invalid configuration is refused with S3's code, and the stored one is unchanged.
    let redirect_all = RedirectAllRequestsTo::builder()
        .host_name("example.com")
        .build()
        .expect("redirect all");
    let invalid: Vec<(&str, WebsiteConfiguration, &str)> = vec![
        (
            "no index document",
            WebsiteConfiguration::builder()
                .error_document(error_doc("e.html"))
                .build(),
            "InvalidArgument",
        ),
        (
            "suffix with a slash",
            WebsiteConfiguration::builder()
                .index_document(index("a/index.html"))
                .build(),
            "InvalidArgument",
        ),
        (
            "redirect-all with an index document",
            WebsiteConfiguration::builder()
                .redirect_all_requests_to(redirect_all.clone())
                .index_document(index("index.html"))
                .build(),
            "InvalidArgument",
        ),
        (
            "ReplaceKeyWith and ReplaceKeyPrefixWith",
            site(vec![RoutingRule::builder()
                .redirect(
                    Redirect::builder()
                        .replace_key_with("a")
                        .replace_key_prefix_with("b")
                        .build(),
                )
                .build()]),
            "InvalidArgument",
        ),
        (
            "a 200 redirect code",
            site(vec![RoutingRule::builder()
                .redirect(Redirect::builder().http_redirect_code("200").build())
                .build()]),
            "InvalidArgument",
        ),
        (
            "a rule without a Redirect",
            site(vec![RoutingRule::builder()
                .condition(Condition::builder().key_prefix_equals("x/").build())
                .build()]),
            "MalformedXML",
        ),
        (
            "51 routing rules",
            site(
                (0..51)
                    .map(|i| {
                        RoutingRule::builder()
                            .condition(Condition::builder().key_prefix_equals(format!("p{i}/")).build())
                            .redirect(Redirect::builder().host_name("example.com").build())
                            .build()
                    })
                    .collect(),
            ),
            "MalformedXML",
        ),
    ];
    for (what, config, code) in invalid {
        let err = expect_error(
            client
                .put_bucket_website()
                .bucket(&bucket)
                .website_configuration(config)
                .send()
                .await,
            400,
            code,
        );
        assert!(
            err.message.is_some_and(|m| !m.is_empty()),
            "{what}: error without a message"
        );
    }
    let still = ok(
        client.get_bucket_website().bucket(&bucket).send().await,
        "GetBucketWebsite after refusals",
    );
    assert_eq!(still.routing_rules(), rules.as_slice());

    // Redirect-all alone is valid and replaces the configuration.
    put_website(
        &client,
        &bucket,
        WebsiteConfiguration::builder()
            .redirect_all_requests_to(redirect_all.clone())
            .build(),
    )
    .await;
    let got = ok(
        client.get_bucket_website().bucket(&bucket).send().await,
        "GetBucketWebsite",
    );
    assert_eq!(got.redirect_all_requests_to(), Some(&redirect_all));
    assert!(got.index_document().is_none());

    // Another principal may not configure or read it; the owner may delete it.
    let bob = server.create_key("bob");
    let bob_client = server.client_with(&bob.access_key, &bob.secret_key);
    expect_error(
        bob_client
            .put_bucket_website()
            .bucket(&bucket)
            .website_configuration(site(Vec::new()))
            .send()
            .await,
        403,
        "AccessDenied",
    );
    expect_error(
        bob_client.get_bucket_website().bucket(&bucket).send().await,
        403,
        "AccessDenied",
    );
    ok(
        client.delete_bucket_website().bucket(&bucket).send().await,
        "DeleteBucketWebsite",
    );
    expect_error(
        client.get_bucket_website().bucket(&bucket).send().await,
        404,
        "NoSuchWebsiteConfiguration",
    );
    // The configuration is kept across a restart (it lives in the bucket record).
    put_website(&client, &bucket, site(Vec::new())).await;
    let mut server = server;
    server.restart();
    let client = server.client();
    let got = ok(
        client.get_bucket_website().bucket(&bucket).send().await,
        "GetBucketWebsite after restart",
    );
    assert_eq!(got.index_document(), Some(&index("index.html")));
}

fn image_dir() -> PathBuf {
    std::env::var_os("STRATA_TESTDATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/testdata/images")))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn website_serves_index_directories_errors_and_objects() {
    let (server, client, bucket) = TestServer::with_bucket("site").await;
    make_public(&client, &bucket).await;
    put_html(&client, &bucket, "index.html", "<h1>home</h1>").await;
    put_html(&client, &bucket, "about/index.html", "<h1>about</h1>").await;
    put_html(&client, &bucket, "error.html", "<h1>custom error</h1>").await;
    put_html(&client, &bucket, "private/secret.html", "secret").await;
    put(&client, &bucket, "style.css", "body { color: red }").await;
    let photo_path = image_dir().join("storm-1920x1280.jpg");
    let photo = std::fs::read(&photo_path).unwrap_or_else(|e| panic!("read {}: {e}", photo_path.display()));
    put(&client, &bucket, "photo.jpg", photo).await;

    // Before PutBucketWebsite the bucket has no website.
    assert_html_error(&web_get(&server, &bucket, "/").await, 404, "NoSuchWebsiteConfiguration");
    put_website(&client, &bucket, site(Vec::new())).await;

    let root = web_get(&server, &bucket, "/").await;
    assert_eq!((root.status, root.text().as_str()), (200, "<h1>home</h1>"));
    assert_eq!(root.header("content-type"), Some("text/html"));
    // Query strings other than transform parameters are ignored, as on S3.
    let ignored = web_get(&server, &bucket, "/?utm_source=x&acl").await;
    assert_eq!((ignored.status, ignored.text().as_str()), (200, "<h1>home</h1>"));

    let about = web_get(&server, &bucket, "/about/").await;
    assert_eq!((about.status, about.text().as_str()), (200, "<h1>about</h1>"));
    let dir = web_get(&server, &bucket, "/about").await;
    assert_eq!(dir.status, 302, "{}", dir.text());
    assert_eq!(dir.header("location"), Some("/about/"));

    // A missing key: the error document's body with status 404.
    let missing = web_get(&server, &bucket, "/nope.html").await;
    assert_eq!(
        (missing.status, missing.text().as_str()),
        (404, "<h1>custom error</h1>")
    );
    assert_eq!(missing.header("content-type"), Some("text/html"));
    assert!(missing.header("etag").is_none(), "an error response carries no ETag");
    // A private object: 403 with the error document.
    let private = web_get(&server, &bucket, "/private/secret.html").await;
    assert_eq!(
        (private.status, private.text().as_str()),
        (403, "<h1>custom error</h1>")
    );

    // Without an error document: S3's HTML pages.
    put_website(
        &client,
        &bucket,
        WebsiteConfiguration::builder()
            .index_document(index("index.html"))
            .build(),
    )
    .await;
    let missing = web_get(&server, &bucket, "/nope.html").await;
    assert_html_error(&missing, 404, "NoSuchKey");
    assert!(missing.text().contains("<li>Key: nope.html</li>"), "{}", missing.text());
    let private = web_get(&server, &bucket, "/private/secret.html").await;
    assert_html_error(&private, 403, "AccessDenied");
    assert!(!private.text().contains("secret</"), "{}", private.text());
    // Credentials are ignored on the website endpoint: a bogus signature neither fails a
    // public page nor unlocks a private one.
    let bogus = [(
        "authorization",
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20250101/us-east-1/s3/aws4_request, \
         SignedHeaders=host, Signature=0000",
    )];
    let public_page = web(&server, "GET", &bucket, "/", &bogus).await;
    assert_eq!(
        (public_page.status, public_page.text().as_str()),
        (200, "<h1>home</h1>")
    );
    let private_page = web(&server, "GET", &bucket, "/private/secret.html", &bogus).await;
    assert_html_error(&private_page, 403, "AccessDenied");

    // Only GET and HEAD.
    let post = web(&server, "POST", &bucket, "/index.html", &[]).await;
    assert_html_error(&post, 405, "MethodNotAllowed");
    let put_attempt = web(&server, "PUT", &bucket, "/new.html", &[]).await;
    assert_eq!(put_attempt.status, 405);
    assert!(!list_all_keys(&client, &bucket).await.contains(&"new.html".to_string()));

    // HEAD, Range and conditionals go through the normal read path.
    let head = web(&server, "HEAD", &bucket, "/style.css", &[]).await;
    assert_eq!(head.status, 200);
    assert_eq!(head.header("content-length"), Some("19"));
    assert!(head.body.is_empty());
    let etag = head.header("etag").expect("etag").to_string();
    let range = web(&server, "GET", &bucket, "/style.css", &[("range", "bytes=0-3")]).await;
    assert_eq!((range.status, range.text().as_str()), (206, "body"));
    assert_eq!(range.header("content-range"), Some("bytes 0-3/19"));
    let cached = web(&server, "GET", &bucket, "/style.css", &[("if-none-match", &etag)]).await;
    assert_eq!(cached.status, 304);
    let head_missing = web(&server, "HEAD", &bucket, "/nope.html", &[]).await;
    assert_eq!(head_missing.status, 404);
    assert!(head_missing.body.is_empty());

    // The bucket's CORS rules apply to website responses too.
    let cors_rule = CorsRule::builder()
        .allowed_origins("https://app.example")
        .allowed_methods("GET")
        .build()
        .expect("CORS rule");
    ok(
        client
            .put_bucket_cors()
            .bucket(&bucket)
            .cors_configuration(
                CorsConfiguration::builder()
                    .cors_rules(cors_rule)
                    .build()
                    .expect("CORS"),
            )
            .send()
            .await,
        "PutBucketCors",
    );
    let cors = web(
        &server,
        "GET",
        &bucket,
        "/style.css",
        &[("origin", "https://app.example")],
    )
    .await;
    assert_eq!(cors.status, 200);
    assert_eq!(cors.header("access-control-allow-origin"), Some("https://app.example"));
    let other = web(
        &server,
        "GET",
        &bucket,
        "/style.css",
        &[("origin", "https://evil.example")],
    )
    .await;
    assert!(other.header("access-control-allow-origin").is_none());

    // An image transform on the website endpoint.
    let png = web_get(&server, &bucket, "/photo.jpg?w=100&f=png").await;
    assert_eq!(png.status, 200, "{}", png.text());
    assert_eq!(png.header("content-type"), Some("image/png"));
    assert_eq!(image::guess_format(&png.body).ok(), Some(image::ImageFormat::Png));
    let img = image::load_from_memory(&png.body).expect("decode the PNG");
    let (w, h) = img.dimensions();
    assert_eq!(w, 100);
    assert!((66..=67).contains(&h), "height {h} for a 1920x1280 source");

    // Unknown buckets and the S3 API on the same port.
    assert_html_error(&web_get(&server, "no-such-bucket-here", "/").await, 404, "NoSuchBucket");
    let keys = list_all_keys(&client, &bucket).await;
    assert!(keys.contains(&"about/index.html".to_string()), "{keys:?}");
    assert_eq!(get_bytes(&client, &bucket, "private/secret.html").await, b"secret");
    let anonymous_api = raw_request(
        "GET",
        &format!("{}/{bucket}/private/secret.html", server.endpoint()),
        &[],
        Vec::new(),
    )
    .await;
    assert_eq!(anonymous_api.status, 403);
    assert_eq!(anonymous_api.assert_xml_client_error(), "AccessDenied");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn website_redirects() {
    let (server, client, bucket) = TestServer::with_bucket("redir").await;
    make_public(&client, &bucket).await;
    put_html(&client, &bucket, "index.html", "home").await;
    put_html(&client, &bucket, "documents/a.html", "doc a").await;
    ok(
        client
            .put_object()
            .bucket(&bucket)
            .key("old.html")
            .website_redirect_location("/new.html")
            .body(ByteStream::from_static(b"moved"))
            .send()
            .await,
        "PutObject with a website redirect location",
    );
    let host = format!("{bucket}.s3-website.localhost:{}", server.port());

    let rules = vec![
        RoutingRule::builder()
            .condition(Condition::builder().key_prefix_equals("docs/").build())
            .redirect(Redirect::builder().replace_key_prefix_with("documents/").build())
            .build(),
        RoutingRule::builder()
            .condition(Condition::builder().http_error_code_returned_equals("404").build())
            .redirect(
                Redirect::builder()
                    .protocol(Protocol::Https)
                    .host_name("fallback.example")
                    .replace_key_prefix_with("report-404/")
                    .http_redirect_code("307")
                    .build(),
            )
            .build(),
    ];
    put_website(&client, &bucket, site(rules)).await;

    let prefix = web_get(&server, &bucket, "/docs/a.html").await;
    assert_eq!(prefix.status, 301);
    assert_eq!(
        prefix.header("location"),
        Some(format!("http://{host}/documents/a.html").as_str())
    );
    let on_404 = web_get(&server, &bucket, "/gone/page.html").await;
    assert_eq!(on_404.status, 307);
    assert_eq!(
        on_404.header("location"),
        Some("https://fallback.example/report-404/gone/page.html")
    );
    // The 404 rule does not fire for objects that exist.
    let home = web_get(&server, &bucket, "/").await;
    assert_eq!((home.status, home.text().as_str()), (200, "home"));
    let doc = web_get(&server, &bucket, "/documents/a.html").await;
    assert_eq!((doc.status, doc.text().as_str()), (200, "doc a"));

    // An object's own redirect location.
    let old = web_get(&server, &bucket, "/old.html").await;
    assert_eq!(old.status, 301);
    assert_eq!(old.header("location"), Some("/new.html"));
    assert!(old.body.is_empty());
    // The S3 API serves the object itself.
    assert_eq!(get_bytes(&client, &bucket, "old.html").await, b"moved");

    // Redirect-all keeps the path.
    put_website(
        &client,
        &bucket,
        WebsiteConfiguration::builder()
            .redirect_all_requests_to(
                RedirectAllRequestsTo::builder()
                    .host_name("www.example.com")
                    .protocol(Protocol::Https)
                    .build()
                    .expect("redirect all"),
            )
            .build(),
    )
    .await;
    let all = web_get(&server, &bucket, "/a/b%20c.html").await;
    assert_eq!(all.status, 301);
    assert_eq!(all.header("location"), Some("https://www.example.com/a/b%20c.html"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn website_only_listener_and_custom_domain() {
    let (server, client, bucket) = TestServer::start_with(ServerOptions {
        config_toml: Some("[website]\ndomain = \"sites.test\"\nlisten = \"127.0.0.1:0\"\n".into()),
        ..Default::default()
    })
    .and_bucket("own")
    .await;
    make_public(&client, &bucket).await;
    put_html(&client, &bucket, "index.html", "own listener").await;
    put_website(&client, &bucket, site(Vec::new())).await;

    // On the website listener any host works: the first label names the bucket.
    let url = format!("{}/", server.website_endpoint());
    let host = format!("{bucket}.example.org");
    let resp = raw_request("GET", &url, &[("host", host.as_str())], Vec::new()).await;
    assert_eq!((resp.status, resp.text().as_str()), (200, "own listener"));
    // Even a signed S3 request is a website request there.
    let put_there = raw_request(
        "PUT",
        &format!("{}/{bucket}/x", server.website_endpoint()),
        &[("host", host.as_str())],
        "x",
    )
    .await;
    assert_eq!(put_there.status, 405);

    // On the main listener, hosts under the configured domain are website requests...
    let main = raw_request(
        "GET",
        &format!("{}/", server.endpoint()),
        &[("host", &format!("{bucket}.sites.test:{}", server.port()))],
        Vec::new(),
    )
    .await;
    assert_eq!((main.status, main.text().as_str()), (200, "own listener"));
    // ...and the default domain is no longer one: that is the S3 API (anonymous ListBuckets).
    let s3 = raw_request(
        "GET",
        &format!("{}/", server.endpoint()),
        &[("host", &format!("{bucket}.s3-website.localhost:{}", server.port()))],
        Vec::new(),
    )
    .await;
    assert_eq!(s3.status, 403);
    assert_eq!(s3.assert_xml_client_error(), "AccessDenied");
}
