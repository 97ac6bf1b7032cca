//! `/_strata/metrics`: scraped before and after a scenario driven with aws-sdk-s3 (and signed
//! raw requests for transforms); the counters, histograms and usage gauges must move by
//! exactly what the scenario did. Also: the exposition is well formed (every sample belongs
//! to a declared family), usage is cached for `usage_refresh_secs`, and the access modes.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::fixtures::*;

/// One parsed sample line: `name{label="value",…} value`.
#[derive(Debug, Clone)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// A series' labels other than `le`, in order.
type Labels = Vec<(String, String)>;

/// A parsed Prometheus text exposition (format 0.0.4).
#[derive(Debug)]
struct Exposition {
    /// family name → type
    types: HashMap<String, String>,
    helps: HashMap<String, String>,
    samples: Vec<Sample>,
}

/// Parses `key="value",…` up to the closing brace, honouring `\"`, `\\` and `\n` escapes.
/// Returns the labels and the rest of the line after `}`.
fn parse_labels(s: &str) -> (BTreeMap<String, String>, &str) {
    let mut labels = BTreeMap::new();
    let mut rest = s;
    loop {
        rest = rest.trim_start_matches(',');
        if let Some(after) = rest.strip_prefix('}') {
            return (labels, after);
        }
        let (key, after_key) = rest.split_once("=\"").unwrap_or_else(|| panic!("bad label in {s:?}"));
        assert!(
            !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "bad label name {key:?} in {s:?}"
        );
        let mut value = String::new();
        let mut chars = after_key.char_indices();
        let end = loop {
            match chars.next() {
                Some((_, '\\')) => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, c)) => value.push(c),
                    None => panic!("dangling escape in {s:?}"),
                },
                Some((i, '"')) => break i,
                Some((_, c)) => value.push(c),
                None => panic!("unterminated label value in {s:?}"),
            }
        };
        labels.insert(key.to_string(), value);
        rest = &after_key[end + 1..];
    }
}

fn parse(text: &str) -> Exposition {
    let mut e = Exposition {
        types: HashMap::new(),
        helps: HashMap::new(),
        samples: Vec::new(),
    };
    for line in text.lines() {
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').unwrap_or((rest, ""));
            assert!(
                e.helps.insert(name.to_string(), help.to_string()).is_none(),
                "HELP twice: {name}"
            );
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap_or_else(|| panic!("bad TYPE line {line:?}"));
            assert!(
                ["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind),
                "unknown type in {line:?}"
            );
            assert!(
                e.types.insert(name.to_string(), kind.to_string()).is_none(),
                "TYPE twice: {name}"
            );
            continue;
        }
        assert!(!line.starts_with('#'), "unexpected comment {line:?}");
        let name_end = line.find(['{', ' ']).unwrap_or_else(|| panic!("bad sample {line:?}"));
        let name = &line[..name_end];
        assert!(
            !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "bad metric name in {line:?}"
        );
        let (labels, rest) = match line[name_end..].strip_prefix('{') {
            Some(after) => parse_labels(after),
            None => (BTreeMap::new(), &line[name_end..]),
        };
        let value = rest.trim();
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v.parse().unwrap_or_else(|_| panic!("bad value in {line:?}")),
        };
        e.samples.push(Sample {
            name: name.to_string(),
            labels,
            value,
        });
    }
    e
}

impl Exposition {
    /// The family a sample name belongs to (histograms add `_bucket`, `_sum`, `_count`).
    fn family_of(&self, sample: &str) -> Option<&str> {
        if self.types.contains_key(sample) {
            return self.types.get_key_value(sample).map(|(k, _)| k.as_str());
        }
        for suffix in ["_bucket", "_sum", "_count"] {
            if let Some(base) = sample.strip_suffix(suffix) {
                if self.types.get(base).is_some_and(|t| t == "histogram" || t == "summary") {
                    return self.types.get_key_value(base).map(|(k, _)| k.as_str());
                }
            }
        }
        None
    }

    /// Every sample belongs to a declared family with HELP and TYPE; histogram buckets are
    /// cumulative and end in `+Inf` equal to `_count`.
    #[track_caller]
    fn check_well_formed(&self) {
        for s in &self.samples {
            let family = self
                .family_of(&s.name)
                .unwrap_or_else(|| panic!("sample {} has no declared family", s.name));
            assert!(self.helps.contains_key(family), "family {family} has no HELP");
            assert!(family.starts_with("strata_"), "{family} is not prefixed strata_");
            if self.types[family] == "counter" {
                assert!(family.ends_with("_total"), "counter {family} does not end in _total");
                assert!(s.value >= 0.0, "negative counter {s:?}");
            }
        }
        for (family, kind) in &self.types {
            if kind != "histogram" {
                continue;
            }
            let bucket = format!("{family}_bucket");
            let mut series: BTreeMap<Labels, Vec<(f64, f64)>> = BTreeMap::new();
            for s in self.samples.iter().filter(|s| s.name == bucket) {
                let le = s.labels.get("le").unwrap_or_else(|| panic!("{bucket} without le"));
                let le: f64 = if le == "+Inf" {
                    f64::INFINITY
                } else {
                    le.parse().expect("le")
                };
                let key: Labels = s
                    .labels
                    .iter()
                    .filter(|(k, _)| *k != "le")
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                series.entry(key).or_default().push((le, s.value));
            }
            for (labels, buckets) in series {
                assert!(
                    buckets.windows(2).all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1),
                    "{family} {labels:?}"
                );
                let last = buckets.last().expect("buckets");
                assert_eq!(last.0, f64::INFINITY, "{family} lacks +Inf");
                let l: Vec<(&str, &str)> = labels.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                assert_eq!(
                    Some(last.1),
                    self.get(&format!("{family}_count"), &l),
                    "{family} {labels:?}"
                );
            }
        }
    }

    /// The value of the sample with exactly these labels.
    fn get(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let want: BTreeMap<String, String> = labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        self.samples
            .iter()
            .find(|s| s.name == name && s.labels == want)
            .map(|s| s.value)
    }

    /// Like [`get`], with an absent series counting as 0 (counters before their first event).
    fn count(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.get(name, labels).unwrap_or(0.0)
    }
}

async fn scrape_raw(server: &TestServer, headers: &[(&str, &str)]) -> RawResponse {
    raw_request(
        "GET",
        &format!("{}/_strata/metrics", server.endpoint()),
        headers,
        Vec::new(),
    )
    .await
}

async fn scrape(server: &TestServer) -> Exposition {
    let resp = scrape_raw(server, &[]).await;
    assert_eq!(resp.status, 200, "scrape: {}", resp.text());
    assert!(
        resp.header("content-type")
            .is_some_and(|c| c.starts_with("text/plain; version=0.0.4")),
        "content type {:?}",
        resp.header("content-type")
    );
    let e = parse(&resp.text());
    e.check_well_formed();
    e
}

fn image(name: &str) -> Vec<u8> {
    let dir = std::env::var_os("STRATA_TESTDATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/testdata/images")));
    let path = dir.join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("read test image {}: {e}", path.display()))
}

fn config(extra: &str) -> ServerOptions {
    ServerOptions {
        config_toml: Some(format!("[limits]\ndeleted_blob_grace_secs = 0\n{extra}")),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counters_move_by_what_a_scenario_did() {
    let (server, client) = TestServer::start_with(config("[metrics]\nusage_refresh_secs = 0\n")).and_client();
    let before = scrape(&server).await;
    assert_eq!(
        before.get("strata_build_info", &[("version", env!("CARGO_PKG_VERSION"))]),
        Some(1.0)
    );
    assert!(before.get("strata_uptime_seconds", &[]).is_some_and(|u| u >= 0.0));

    let bucket = new_bucket(&client, "metrics").await;
    let big = random_bytes(40_000, 1); // stored as a blob file
    let small = random_bytes(2_345, 2); // stored inline
    let photo = image("coffee-600x400.png");
    put(&client, &bucket, "big", big.clone()).await;
    put(&client, &bucket, "small", small.clone()).await;
    put(&client, &bucket, "photo.png", photo.clone()).await;
    assert_eq!(get_bytes(&client, &bucket, "small").await, small);
    expect_error(
        client.get_object().bucket(&bucket).key("missing").send().await,
        404,
        "NoSuchKey",
    );
    let transform = format!("/{bucket}/photo.png?w=120&h=80&f=webp");
    let first = SignedRequest::new("GET", &transform).send(&server).await;
    assert_eq!((first.status, first.header("x-strata-cache")), (200, Some("miss")));
    let second = SignedRequest::new("GET", &transform).send(&server).await;
    assert_eq!((second.status, second.header("x-strata-cache")), (200, Some("hit")));
    ok(
        client.delete_object().bucket(&bucket).key("big").send().await,
        "DeleteObject",
    );

    // The deleted blob is unlinked after the (zero) grace period, on a background task.
    let deadline = Instant::now() + Duration::from_secs(20);
    let after = loop {
        let after = scrape(&server).await;
        let unlinked =
            after.count("strata_gc_unlinked_blobs_total", &[]) - before.count("strata_gc_unlinked_blobs_total", &[]);
        if unlinked >= 1.0 || Instant::now() > deadline {
            assert_eq!(unlinked, 1.0, "one blob (the deleted object's) unlinked");
            break after;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(after.count("strata_gc_pending_blobs", &[]), 0.0);

    let delta = |name: &str, labels: &[(&str, &str)]| after.count(name, labels) - before.count(name, labels);
    let requests = |op: &str, status: &str| delta("strata_requests_total", &[("op", op), ("status", status)]);
    assert_eq!(requests("CreateBucket", "200"), 1.0);
    assert_eq!(requests("PutObject", "200"), 3.0);
    assert_eq!(requests("GetObject", "200"), 3.0, "one plain GET, two transforms");
    assert_eq!(requests("GetObject", "404"), 1.0);
    assert_eq!(requests("DeleteObject", "204"), 1.0);
    assert!(requests("metrics", "200") >= 1.0, "the first scrape is counted");
    assert_eq!(
        delta("strata_request_duration_seconds_count", &[("op", "GetObject")]),
        4.0
    );
    assert_eq!(
        delta("strata_request_duration_seconds_count", &[("op", "PutObject")]),
        3.0
    );
    assert!(delta("strata_request_duration_seconds_sum", &[("op", "GetObject")]) > 0.0);

    let put_bytes = (big.len() + small.len() + photo.len()) as f64;
    assert!(
        delta("strata_received_bytes_total", &[]) >= put_bytes,
        "received {} < {put_bytes}",
        delta("strata_received_bytes_total", &[])
    );
    let got_bytes = (small.len() + first.body.len() + second.body.len()) as f64;
    assert!(delta("strata_sent_bytes_total", &[]) >= got_bytes);

    assert_eq!(delta("strata_derivative_cache_misses_total", &[]), 1.0);
    assert_eq!(delta("strata_derivative_cache_hits_total", &[]), 1.0);
    assert_eq!(delta("strata_transform_total", &[("result", "ok")]), 1.0);
    assert_eq!(delta("strata_transform_duration_seconds_count", &[]), 1.0);
    assert_eq!(after.count("strata_derivative_cache_entries", &[]), 1.0);
    assert!(after.count("strata_derivative_cache_bytes", &[]) >= first.body.len() as f64);

    let b = [("bucket", bucket.as_str())];
    assert_eq!(after.get("strata_bucket_objects", &b), Some(2.0));
    assert_eq!(
        after.get("strata_bucket_bytes", &b),
        Some((small.len() + photo.len()) as f64)
    );
    assert_eq!(after.get("strata_bucket_noncurrent_objects", &b), Some(0.0));
    assert_eq!(after.get("strata_bucket_noncurrent_bytes", &b), Some(0.0));
    assert_eq!(after.get("strata_bucket_multipart_uploads", &b), Some(0.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_counts_noncurrent_versions_and_uploads() {
    let (server, client, bucket) = TestServer::start_with(config("[metrics]\nusage_refresh_secs = 0\n"))
        .and_bucket("usage")
        .await;
    ok(
        client
            .put_bucket_versioning()
            .bucket(&bucket)
            .versioning_configuration(
                aws_sdk_s3::types::VersioningConfiguration::builder()
                    .status(aws_sdk_s3::types::BucketVersioningStatus::Enabled)
                    .build(),
            )
            .send()
            .await,
        "PutBucketVersioning",
    );
    put(&client, &bucket, "k", vec![1u8; 100]).await;
    put(&client, &bucket, "k", vec![2u8; 30]).await;
    ok(
        client.delete_object().bucket(&bucket).key("k").send().await,
        "delete marker",
    );
    put(&client, &bucket, "j", vec![3u8; 7]).await;
    let upload = ok(
        client.create_multipart_upload().bucket(&bucket).key("mp").send().await,
        "CreateMultipartUpload",
    );
    let part = random_bytes(5 * MIB, 3);
    ok(
        client
            .upload_part()
            .bucket(&bucket)
            .key("mp")
            .upload_id(upload.upload_id().unwrap_or_default())
            .part_number(1)
            .body(part.clone().into())
            .send()
            .await,
        "UploadPart",
    );
    let m = scrape(&server).await;
    let b = [("bucket", bucket.as_str())];
    assert_eq!(m.get("strata_bucket_objects", &b), Some(1.0));
    assert_eq!(m.get("strata_bucket_bytes", &b), Some(7.0));
    assert_eq!(m.get("strata_bucket_noncurrent_objects", &b), Some(2.0));
    assert_eq!(m.get("strata_bucket_noncurrent_bytes", &b), Some(130.0));
    assert_eq!(m.get("strata_bucket_delete_markers", &b), Some(1.0));
    assert_eq!(m.get("strata_bucket_multipart_uploads", &b), Some(1.0));
    assert_eq!(
        m.get("strata_bucket_multipart_uploaded_bytes", &b),
        Some(part.len() as f64)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_is_rescanned_only_after_the_refresh_interval() {
    let (server, client, bucket) = TestServer::start_with(config("[metrics]\nusage_refresh_secs = 3600\n"))
        .and_bucket("cached")
        .await;
    put(&client, &bucket, "one", b"1".to_vec()).await;
    let first = scrape(&server).await;
    let b = [("bucket", bucket.as_str())];
    assert_eq!(first.get("strata_bucket_objects", &b), Some(1.0));
    put(&client, &bucket, "two", b"2".to_vec()).await;
    // Within the interval a scrape reuses the last scan: the new object is not counted yet,
    // while the request counters are live.
    let second = scrape(&server).await;
    assert_eq!(second.get("strata_bucket_objects", &b), Some(1.0));
    assert_eq!(
        second.count("strata_requests_total", &[("op", "PutObject"), ("status", "200")]),
        2.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_auth_refuses_missing_and_wrong_tokens() {
    for opts in [
        config("[metrics]\nauth = \"token\"\nbearer_token = \"scrape-me-7f3a\"\n"),
        ServerOptions {
            env: vec![("STRATA_METRICS_BEARER_TOKEN".into(), "scrape-me-7f3a".into())],
            ..config("[metrics]\nauth = \"token\"\n")
        },
    ] {
        let server = TestServer::start_with(opts);
        let missing = scrape_raw(&server, &[]).await;
        assert_eq!(missing.status, 401, "{}", missing.text());
        assert!(!missing.text().contains("strata_"), "no metrics without the token");
        let wrong = scrape_raw(&server, &[("authorization", "Bearer scrape-me-7f3b")]).await;
        assert_eq!(wrong.status, 401);
        let basic = scrape_raw(&server, &[("authorization", "Basic scrape-me-7f3a")]).await;
        assert_eq!(basic.status, 401);
        let right = scrape_raw(&server, &[("authorization", "Bearer scrape-me-7f3a")]).await;
        assert_eq!(right.status, 200, "{}", right.text());
        let e = parse(&right.text());
        e.check_well_formed();
        // The refused scrapes were counted, under op="metrics".
        assert_eq!(
            e.count("strata_requests_total", &[("op", "metrics"), ("status", "401")]),
            3.0
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_auth_serves_loopback_and_labels_our_endpoints() {
    let server = TestServer::start();
    assert_eq!(server.health_status().await, 200);
    let post = raw_request(
        "POST",
        &format!("{}/_strata/metrics", server.endpoint()),
        &[],
        Vec::new(),
    )
    .await;
    assert_eq!(post.status, 405);
    // An unsigned request with a bad signature header fails before s3s names an operation.
    let bad = raw_request(
        "GET",
        &format!("{}/", server.endpoint()),
        &[("authorization", "AWS4-HMAC-SHA256 garbage")],
        Vec::new(),
    )
    .await;
    assert!((400..500).contains(&bad.status));
    let admin = SignedRequest::new("GET", "/_strata/admin/keys").send(&server).await;
    assert_eq!(admin.status, 200);
    let m = scrape(&server).await;
    assert_eq!(
        m.count("strata_requests_total", &[("op", "health"), ("status", "200")]),
        1.0
    );
    assert_eq!(
        m.count("strata_requests_total", &[("op", "metrics"), ("status", "405")]),
        1.0
    );
    assert_eq!(
        m.count("strata_requests_total", &[("op", "admin"), ("status", "200")]),
        1.0
    );
    let bad_status = bad.status.to_string();
    assert_eq!(
        m.count("strata_requests_total", &[("op", "unknown"), ("status", &bad_status)]),
        1.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transform_errors_and_cache_evictions_are_counted() {
    // A cache smaller than any derivative: each one stored is evicted at once.
    let (server, client, bucket) = TestServer::start_with(config("[transform]\ncache_max_bytes = 64\n"))
        .and_bucket("evict")
        .await;
    put(&client, &bucket, "photo.png", image("coffee-600x400.png")).await;
    // A PNG signature (so the sniff accepts it) followed by garbage: the pipeline fails.
    let mut broken = b"\x89PNG\r\n\x1a\n".to_vec();
    broken.extend(random_bytes(3000, 5));
    put(&client, &bucket, "broken.png", broken).await;
    let before = scrape(&server).await;

    for w in [100, 110] {
        let r = SignedRequest::new("GET", format!("/{bucket}/photo.png?w={w}&f=webp"))
            .send(&server)
            .await;
        assert_eq!((r.status, r.header("x-strata-cache")), (200, Some("miss")));
    }
    let bad = SignedRequest::new("GET", format!("/{bucket}/broken.png?w=100"))
        .send(&server)
        .await;
    assert!((400..500).contains(&bad.status), "{} {}", bad.status, bad.text());

    let after = scrape(&server).await;
    let delta = |name: &str, labels: &[(&str, &str)]| after.count(name, labels) - before.count(name, labels);
    assert_eq!(delta("strata_derivative_cache_evictions_total", &[]), 2.0);
    assert_eq!(after.count("strata_derivative_cache_entries", &[]), 0.0);
    assert_eq!(delta("strata_transform_total", &[("result", "ok")]), 2.0);
    assert_eq!(delta("strata_transform_total", &[("result", "error")]), 1.0);
    assert_eq!(delta("strata_transform_duration_seconds_count", &[]), 3.0);
    assert_eq!(delta("strata_derivative_cache_misses_total", &[]), 3.0);
    let status = bad.status.to_string();
    assert_eq!(
        delta("strata_requests_total", &[("op", "GetObject"), ("status", &status)]),
        1.0
    );
}
