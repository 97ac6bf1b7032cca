//! Bucket lifecycle: Put/Get/DeleteBucketLifecycleConfiguration through aws-sdk-s3 (round
//! trip, validation errors naming the rule, owner-only access), and the rules applied by
//! `strata lifecycle run --now …` against a server with `lifecycle.allow_clock_override`:
//! expiration by prefix and by tag at the right midnight and not a day earlier, delete markers
//! in versioned buckets, noncurrent expiration, lone delete markers removed, incomplete
//! uploads aborted with their part files freed, transitions to STANDARD_IA / GLACIER (bytes on
//! the cold volume, GLACIER gated), cached derivatives of expired images purged, and everything
//! outside the filters untouched.

use std::path::Path;
use std::time::{Duration, Instant};

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    AbortIncompleteMultipartUpload, BucketLifecycleConfiguration, BucketVersioningStatus, ExpirationStatus,
    LifecycleExpiration, LifecycleRule, LifecycleRuleAndOperator, LifecycleRuleFilter, NoncurrentVersionExpiration,
    StorageClass, Tag, Transition, TransitionStorageClass, VersioningConfiguration,
};
use aws_sdk_s3::Client;

use crate::fixtures::*;

const DAY_MS: i64 = 86_400_000;

fn config_with_override() -> ServerOptions {
    ServerOptions {
        config_toml: Some(
            "[lifecycle]\nallow_clock_override = true\ninterval_secs = 0\n\n[limits]\ndeleted_blob_grace_secs = 1\n"
                .into(),
        ),
        ..Default::default()
    }
}

fn rule(id: &str, filter: LifecycleRuleFilter) -> aws_sdk_s3::types::builders::LifecycleRuleBuilder {
    LifecycleRule::builder()
        .id(id)
        .status(ExpirationStatus::Enabled)
        .filter(filter)
}

fn prefix(p: &str) -> LifecycleRuleFilter {
    LifecycleRuleFilter::builder().prefix(p).build()
}

fn tag(k: &str, v: &str) -> Tag {
    Tag::builder().key(k).value(v).build().expect("tag")
}

fn expire_days(d: i32) -> LifecycleExpiration {
    LifecycleExpiration::builder().days(d).build()
}

fn built(r: aws_sdk_s3::types::builders::LifecycleRuleBuilder) -> LifecycleRule {
    r.build().expect("rule")
}

async fn put_rules(
    client: &Client,
    bucket: &str,
    rules: Vec<LifecycleRule>,
) -> Result<
    aws_sdk_s3::operation::put_bucket_lifecycle_configuration::PutBucketLifecycleConfigurationOutput,
    aws_sdk_s3::error::SdkError<
        aws_sdk_s3::operation::put_bucket_lifecycle_configuration::PutBucketLifecycleConfigurationError,
        aws_sdk_s3::config::http::HttpResponse,
    >,
> {
    client
        .put_bucket_lifecycle_configuration()
        .bucket(bucket)
        .lifecycle_configuration(
            BucketLifecycleConfiguration::builder()
                .set_rules(Some(rules))
                .build()
                .expect("config"),
        )
        .send()
        .await
}

/// RFC 3339 of a time in ms since the epoch.
fn rfc3339(ms: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).expect("time in range");
    t.format(&time::format_description::well_known::Rfc3339)
        .expect("format")
}

/// The first midnight UTC at or after `ms`.
fn ceil_midnight(ms: i64) -> i64 {
    (ms + DAY_MS - 1).div_euclid(DAY_MS) * DAY_MS
}

/// `strata lifecycle run --endpoint … --now …`; returns the summary line, panicking on failure.
fn lifecycle_run(server: &TestServer, now_ms: i64) -> String {
    let out = lifecycle_run_raw(server, Some(now_ms));
    assert!(
        out.status.success(),
        "strata lifecycle run failed ({:?})\nstdout:\n{}\nstderr:\n{}",
        out.status,
        out.stdout,
        out.stderr
    );
    let line = out
        .stdout
        .lines()
        .find(|l| l.starts_with("lifecycle: scanned "))
        .unwrap_or_else(|| panic!("no summary line in:\n{}", out.stdout));
    line.to_string()
}

fn lifecycle_run_raw(server: &TestServer, now_ms: Option<i64>) -> ToolOutput {
    let endpoint = server.endpoint();
    let mut args: Vec<std::ffi::OsString> =
        vec!["lifecycle".into(), "run".into(), "--endpoint".into(), endpoint.into()];
    if let Some(now) = now_ms {
        args.push("--now".into());
        args.push(rfc3339(now).into());
    }
    let refs: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_os_str()).collect();
    run_strata_tool(&refs)
}

/// The number after `label` in a summary line (`expired 3`).
fn count(summary: &str, label: &str) -> u64 {
    let at = summary
        .find(label)
        .unwrap_or_else(|| panic!("{label:?} not in {summary:?}"));
    summary[at + label.len()..]
        .trim_start()
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no number after {label:?} in {summary:?}"))
}

/// LastModified of bucket/key in ms (the server's clock; second precision from HEAD).
async fn last_modified_ms(client: &Client, bucket: &str, key: &str) -> i64 {
    let head = ok(client.head_object().bucket(bucket).key(key).send().await, "HeadObject");
    let lm = head.last_modified().expect("LastModified");
    lm.secs() * 1000 + i64::from(lm.subsec_nanos() / 1_000_000)
}

async fn exists(client: &Client, bucket: &str, key: &str) -> bool {
    match client.head_object().bucket(bucket).key(key).send().await {
        Ok(_) => true,
        Err(e) => {
            let info = err_info(&e);
            assert_eq!(info.status, 404, "HEAD {key}: {}", describe(&e));
            false
        }
    }
}

#[tokio::test]
async fn configuration_round_trip_validation_and_delete() {
    let (server, client, bucket) = TestServer::with_bucket("lc-config").await;

    expect_error(
        client.get_bucket_lifecycle_configuration().bucket(&bucket).send().await,
        404,
        "NoSuchLifecycleConfiguration",
    );

    let rules = vec![
        built(
            rule("logs", prefix("logs/"))
                .expiration(expire_days(30))
                .transitions(
                    Transition::builder()
                        .days(7)
                        .storage_class(TransitionStorageClass::Glacier)
                        .build(),
                )
                .noncurrent_version_expiration(
                    NoncurrentVersionExpiration::builder()
                        .noncurrent_days(10)
                        .newer_noncurrent_versions(2)
                        .build(),
                )
                .abort_incomplete_multipart_upload(
                    AbortIncompleteMultipartUpload::builder()
                        .days_after_initiation(3)
                        .build(),
                ),
        ),
        built(
            LifecycleRule::builder()
                .id("tmp-tagged")
                .status(ExpirationStatus::Disabled)
                .filter(
                    LifecycleRuleFilter::builder()
                        .and(
                            LifecycleRuleAndOperator::builder()
                                .prefix("tmp/")
                                .tags(tag("class", "tmp"))
                                .object_size_greater_than(100)
                                .build(),
                        )
                        .build(),
                )
                .expiration(expire_days(1)),
        ),
        built(
            rule("markers", prefix("")).expiration(
                LifecycleExpiration::builder()
                    .expired_object_delete_marker(true)
                    .build(),
            ),
        ),
    ];
    ok(
        put_rules(&client, &bucket, rules).await,
        "PutBucketLifecycleConfiguration",
    );
    let got = ok(
        client.get_bucket_lifecycle_configuration().bucket(&bucket).send().await,
        "GetBucketLifecycleConfiguration",
    );
    let got = got.rules();
    assert_eq!(got.len(), 3);
    assert_eq!(got[0].id(), Some("logs"));
    assert_eq!(got[0].filter().and_then(|f| f.prefix()), Some("logs/"));
    assert_eq!(got[0].expiration().and_then(|e| e.days()), Some(30));
    assert_eq!(
        got[0].transitions()[0].storage_class(),
        Some(&TransitionStorageClass::Glacier)
    );
    assert_eq!(
        got[0]
            .noncurrent_version_expiration()
            .and_then(|n| n.newer_noncurrent_versions()),
        Some(2)
    );
    assert_eq!(
        got[0]
            .abort_incomplete_multipart_upload()
            .and_then(|a| a.days_after_initiation()),
        Some(3)
    );
    assert_eq!(got[1].status(), &ExpirationStatus::Disabled);
    let and = got[1].filter().and_then(|f| f.and()).expect("And filter");
    assert_eq!(and.prefix(), Some("tmp/"));
    assert_eq!(and.tags(), &[tag("class", "tmp")]);
    assert_eq!(and.object_size_greater_than(), Some(100));
    assert_eq!(
        got[2].expiration().and_then(|e| e.expired_object_delete_marker()),
        Some(true)
    );

    // Invalid configurations are refused whole, naming the rule; the stored one stays.
    let e = expect_error(
        put_rules(
            &client,
            &bucket,
            vec![
                built(rule("fine", prefix("a/")).expiration(expire_days(1))),
                built(rule("zero-days", prefix("b/")).expiration(expire_days(0))),
            ],
        )
        .await,
        400,
        "InvalidArgument",
    );
    assert!(e.message.as_deref().unwrap_or_default().contains("zero-days"), "{e:?}");
    let e = expect_error(
        put_rules(
            &client,
            &bucket,
            vec![built(
                rule("ia-too-soon", prefix("")).transitions(
                    Transition::builder()
                        .days(5)
                        .storage_class(TransitionStorageClass::StandardIa)
                        .build(),
                ),
            )],
        )
        .await,
        400,
        "InvalidArgument",
    );
    assert!(
        e.message.as_deref().unwrap_or_default().contains("ia-too-soon"),
        "{e:?}"
    );
    expect_error(
        put_rules(
            &client,
            &bucket,
            vec![built(
                rule("deep", prefix("")).transitions(
                    Transition::builder()
                        .days(5)
                        .storage_class(TransitionStorageClass::DeepArchive)
                        .build(),
                ),
            )],
        )
        .await,
        400,
        "InvalidStorageClass",
    );
    expect_error(
        put_rules(
            &client,
            &bucket,
            vec![
                built(rule("dup", prefix("a/")).expiration(expire_days(1))),
                built(rule("dup", prefix("b/")).expiration(expire_days(2))),
            ],
        )
        .await,
        400,
        "InvalidArgument",
    );
    expect_error(
        put_rules(
            &client,
            &bucket,
            vec![built(
                rule(
                    "tags-and-abort",
                    LifecycleRuleFilter::builder().tag(tag("a", "b")).build(),
                )
                .abort_incomplete_multipart_upload(
                    AbortIncompleteMultipartUpload::builder()
                        .days_after_initiation(1)
                        .build(),
                ),
            )],
        )
        .await,
        400,
        "InvalidArgument",
    );
    expect_error(
        put_rules(&client, &bucket, vec![built(rule("no-action", prefix("a/")))]).await,
        400,
        "InvalidArgument",
    );
    let still = ok(
        client.get_bucket_lifecycle_configuration().bucket(&bucket).send().await,
        "GetBucketLifecycleConfiguration after rejected puts",
    );
    assert_eq!(still.rules().len(), 3);

    // Only the bucket owner (or root) may read or change it.
    let other = server.create_key("lc-other");
    let stranger = server.client_with(&other.access_key, &other.secret_key);
    expect_error(
        stranger
            .get_bucket_lifecycle_configuration()
            .bucket(&bucket)
            .send()
            .await,
        403,
        "AccessDenied",
    );
    expect_error(
        put_rules(
            &stranger,
            &bucket,
            vec![built(rule("x", prefix("")).expiration(expire_days(1)))],
        )
        .await,
        403,
        "AccessDenied",
    );
    expect_error(
        stranger.delete_bucket_lifecycle().bucket(&bucket).send().await,
        403,
        "AccessDenied",
    );

    ok(
        client.delete_bucket_lifecycle().bucket(&bucket).send().await,
        "DeleteBucketLifecycle",
    );
    expect_error(
        client.get_bucket_lifecycle_configuration().bucket(&bucket).send().await,
        404,
        "NoSuchLifecycleConfiguration",
    );
    expect_error(
        put_rules(
            &client,
            "no-such-bucket-lc",
            vec![built(rule("x", prefix("")).expiration(expire_days(1)))],
        )
        .await,
        404,
        "NoSuchBucket",
    );
}

#[tokio::test]
async fn clock_override_is_refused_unless_configured() {
    let server = TestServer::start();
    let out = lifecycle_run_raw(&server, Some(0));
    assert!(
        !out.status.success(),
        "--now accepted without allow_clock_override: {}",
        out.stdout
    );
    assert!(
        out.stderr.contains("400") && out.stderr.contains("allow_clock_override"),
        "{}",
        out.stderr
    );
    // Without --now the run works (and finds nothing to do).
    let out = lifecycle_run_raw(&server, None);
    assert!(out.status.success(), "{}", out.stderr);
    assert!(
        out.stdout.contains("lifecycle: scanned 0 versions in 0 buckets"),
        "{}",
        out.stdout
    );
}

#[tokio::test]
async fn objects_expire_by_prefix_and_tag_at_the_day_boundary() {
    let (server, client, bucket) = TestServer::start_with(config_with_override())
        .and_bucket("lc-expire")
        .await;
    put(&client, &bucket, "logs/a.txt", b"log a".to_vec()).await;
    put(&client, &bucket, "logs/b.txt", b"log b".to_vec()).await;
    put(&client, &bucket, "keep/logs/c.txt", b"keep c".to_vec()).await;
    ok(
        client
            .put_object()
            .bucket(&bucket)
            .key("data/tmp.bin")
            .body(ByteStream::from(random_bytes(40_000, 1)))
            .tagging("class=tmp&team=x")
            .send()
            .await,
        "PutObject tagged",
    );
    ok(
        client
            .put_object()
            .bucket(&bucket)
            .key("data/other.bin")
            .body(ByteStream::from(random_bytes(40_000, 2)))
            .tagging("class=keep")
            .send()
            .await,
        "PutObject tagged keep",
    );
    put(&client, &bucket, "data/plain.bin", b"plain".to_vec()).await;
    ok(
        put_rules(
            &client,
            &bucket,
            vec![
                built(rule("logs", prefix("logs/")).expiration(expire_days(1))),
                built(
                    rule("tmp", LifecycleRuleFilter::builder().tag(tag("class", "tmp")).build())
                        .expiration(expire_days(3)),
                ),
            ],
        )
        .await,
        "PutBucketLifecycleConfiguration",
    );
    let created = last_modified_ms(&client, &bucket, "logs/b.txt").await;
    let logs_due = ceil_midnight(created + DAY_MS);
    let tmp_due = ceil_midnight(last_modified_ms(&client, &bucket, "data/tmp.bin").await + 3 * DAY_MS);

    // A second before the boundary: nothing happens (not a day early, not even a second).
    let s = lifecycle_run(&server, logs_due - 1000);
    assert_eq!(count(&s, "expired"), 0, "{s}");
    assert_eq!(count(&s, "scanned"), 6, "{s}");
    assert!(exists(&client, &bucket, "logs/a.txt").await);

    let s = lifecycle_run(&server, logs_due);
    assert_eq!(count(&s, "expired"), 2, "{s}");
    assert!(!exists(&client, &bucket, "logs/a.txt").await);
    assert!(!exists(&client, &bucket, "logs/b.txt").await);
    assert!(exists(&client, &bucket, "data/tmp.bin").await);

    let s = lifecycle_run(&server, tmp_due - 1000);
    assert_eq!(count(&s, "expired"), 0, "{s}");
    let s = lifecycle_run(&server, tmp_due);
    assert_eq!(count(&s, "expired"), 1, "{s}");
    assert!(!exists(&client, &bucket, "data/tmp.bin").await);

    // Outside the filters: untouched and readable, whatever the date.
    let s = lifecycle_run(&server, tmp_due + 400 * DAY_MS);
    assert_eq!(count(&s, "expired"), 0, "{s}");
    assert_eq!(get_bytes(&client, &bucket, "keep/logs/c.txt").await, b"keep c");
    assert_eq!(
        get_bytes(&client, &bucket, "data/other.bin").await,
        random_bytes(40_000, 2)
    );
    assert_eq!(get_bytes(&client, &bucket, "data/plain.bin").await, b"plain");
    let mut keys = list_all_keys(&client, &bucket).await;
    keys.sort();
    assert_eq!(keys, ["data/other.bin", "data/plain.bin", "keep/logs/c.txt"]);
}

async fn versions(client: &Client, bucket: &str) -> (Vec<(String, String, bool)>, Vec<(String, String, bool)>) {
    let out = ok(
        client.list_object_versions().bucket(bucket).send().await,
        "ListObjectVersions",
    );
    let v = out
        .versions()
        .iter()
        .map(|v| {
            (
                v.key().unwrap_or_default().to_string(),
                v.version_id().unwrap_or_default().to_string(),
                v.is_latest().unwrap_or_default(),
            )
        })
        .collect();
    let m = out
        .delete_markers()
        .iter()
        .map(|v| {
            (
                v.key().unwrap_or_default().to_string(),
                v.version_id().unwrap_or_default().to_string(),
                v.is_latest().unwrap_or_default(),
            )
        })
        .collect();
    (v, m)
}

#[tokio::test]
async fn versioned_bucket_markers_noncurrent_expiry_and_lone_markers() {
    let (server, client, bucket) = TestServer::start_with(config_with_override())
        .and_bucket("lc-versions")
        .await;
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
        "PutBucketVersioning",
    );
    let v1 = ok(
        client
            .put_object()
            .bucket(&bucket)
            .key("v/doc")
            .body(ByteStream::from_static(b"one"))
            .send()
            .await,
        "put v1",
    )
    .version_id()
    .expect("version id")
    .to_string();
    let v2 = ok(
        client
            .put_object()
            .bucket(&bucket)
            .key("v/doc")
            .body(ByteStream::from_static(b"two"))
            .send()
            .await,
        "put v2",
    )
    .version_id()
    .expect("version id")
    .to_string();
    put(&client, &bucket, "other/doc", b"other".to_vec()).await;
    ok(
        put_rules(
            &client,
            &bucket,
            vec![
                built(rule("current", prefix("v/")).expiration(expire_days(1))),
                built(
                    rule("noncurrent", prefix("v/")).noncurrent_version_expiration(
                        NoncurrentVersionExpiration::builder().noncurrent_days(2).build(),
                    ),
                ),
                built(
                    rule("markers", prefix("v/")).expiration(
                        LifecycleExpiration::builder()
                            .expired_object_delete_marker(true)
                            .build(),
                    ),
                ),
            ],
        )
        .await,
        "PutBucketLifecycleConfiguration",
    );
    // v1 became noncurrent when v2 was written.
    let v2_created = last_modified_ms(&client, &bucket, "v/doc").await;
    let current_due = ceil_midnight(v2_created + DAY_MS);
    let v1_due = ceil_midnight(v2_created + 2 * DAY_MS);

    let s = lifecycle_run(&server, current_due - 1000);
    assert_eq!(count(&s, "expired") + count(&s, "noncurrent expired"), 0, "{s}");

    // Day 1: the current version expires: a delete marker on top, both versions kept.
    let s = lifecycle_run(&server, current_due);
    assert_eq!(count(&s, "expired"), 1, "{s}");
    assert_eq!(count(&s, "noncurrent expired"), 0, "{s}");
    assert!(!exists(&client, &bucket, "v/doc").await);
    let (vs, ms) = versions(&client, &bucket).await;
    assert_eq!(ms.len(), 1, "{ms:?}");
    assert!(ms[0].2, "the marker is the latest version");
    let doc_versions: Vec<&str> = vs.iter().filter(|v| v.0 == "v/doc").map(|v| v.1.as_str()).collect();
    assert_eq!(doc_versions, [v2.as_str(), v1.as_str()]);
    // The old versions are still readable by id.
    let old = ok(
        client
            .get_object()
            .bucket(&bucket)
            .key("v/doc")
            .version_id(&v1)
            .send()
            .await,
        "GET v1",
    );
    assert_eq!(old.body.collect().await.expect("body").into_bytes().as_ref(), b"one");

    // Day 2: v1 has been noncurrent for 2 days; v2 only since the marker (day 1).
    let s = lifecycle_run(&server, v1_due);
    assert_eq!(count(&s, "noncurrent expired"), 1, "{s}");
    let (vs, _) = versions(&client, &bucket).await;
    let doc_versions: Vec<&str> = vs.iter().filter(|v| v.0 == "v/doc").map(|v| v.1.as_str()).collect();
    assert_eq!(doc_versions, [v2.as_str()]);

    // Day 3: v2 expires; the marker is then alone and the next evaluation removes it.
    let v2_due = ceil_midnight(current_due + 2 * DAY_MS);
    let s = lifecycle_run(&server, v2_due);
    assert_eq!(count(&s, "noncurrent expired"), 1, "{s}");
    let (vs, ms) = versions(&client, &bucket).await;
    assert!(vs.iter().all(|v| v.0 != "v/doc"), "{vs:?}");
    assert_eq!(ms.len(), 1, "{ms:?}");
    let s = lifecycle_run(&server, v2_due);
    assert_eq!(count(&s, "delete markers removed"), 1, "{s}");
    let (vs, ms) = versions(&client, &bucket).await;
    assert!(ms.is_empty(), "{ms:?}");
    // Outside the rules' prefix: untouched.
    assert_eq!(vs.len(), 1, "{vs:?}");
    assert_eq!(get_bytes(&client, &bucket, "other/doc").await, b"other");
}

/// Blob files in the data dir.
fn blob_count(data: &Path) -> usize {
    blob_files(data).len()
}

#[tokio::test]
async fn incomplete_uploads_are_aborted_and_their_parts_freed() {
    let (server, client, bucket) = TestServer::start_with(config_with_override())
        .and_bucket("lc-uploads")
        .await;
    let mut uploads = Vec::new();
    for key in ["tmp/big.bin", "keep/big.bin"] {
        let id = ok(
            client.create_multipart_upload().bucket(&bucket).key(key).send().await,
            "CreateMultipartUpload",
        )
        .upload_id()
        .expect("upload id")
        .to_string();
        ok(
            client
                .upload_part()
                .bucket(&bucket)
                .key(key)
                .upload_id(&id)
                .part_number(1)
                .body(ByteStream::from(random_bytes(300_000, 7)))
                .send()
                .await,
            "UploadPart",
        );
        uploads.push(id);
    }
    ok(
        put_rules(
            &client,
            &bucket,
            vec![built(
                rule("abort", prefix("tmp/")).abort_incomplete_multipart_upload(
                    AbortIncompleteMultipartUpload::builder()
                        .days_after_initiation(2)
                        .build(),
                ),
            )],
        )
        .await,
        "PutBucketLifecycleConfiguration",
    );
    let blobs_before = blob_count(server.data_dir());
    assert!(blobs_before >= 2, "parts are blob files ({blobs_before})");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis() as i64;
    let due = ceil_midnight(now + 2 * DAY_MS);

    let s = lifecycle_run(&server, due - DAY_MS);
    assert_eq!(count(&s, "uploads aborted"), 0, "{s}");
    let s = lifecycle_run(&server, due + 1000);
    assert_eq!(count(&s, "uploads aborted"), 1, "{s}");

    let listed = ok(
        client.list_multipart_uploads().bucket(&bucket).send().await,
        "ListMultipartUploads",
    );
    let keys: Vec<&str> = listed.uploads().iter().filter_map(|u| u.key()).collect();
    assert_eq!(keys, ["keep/big.bin"]);
    expect_error(
        client
            .list_parts()
            .bucket(&bucket)
            .key("tmp/big.bin")
            .upload_id(&uploads[0])
            .send()
            .await,
        404,
        "NoSuchUpload",
    );
    // The aborted part's file goes after the (1 s) grace period.
    let deadline = Instant::now() + Duration::from_secs(30);
    while blob_count(server.data_dir()) >= blobs_before {
        assert!(
            Instant::now() < deadline,
            "the aborted upload's part file was never freed ({} files)",
            blob_count(server.data_dir())
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(blob_count(server.data_dir()), blobs_before - 1);
    // The other upload still completes.
    let parts = ok(
        client
            .list_parts()
            .bucket(&bucket)
            .key("keep/big.bin")
            .upload_id(&uploads[1])
            .send()
            .await,
        "ListParts",
    );
    assert_eq!(parts.parts().len(), 1);
}

async fn class_of(client: &Client, bucket: &str, key: &str) -> Option<StorageClass> {
    ok(client.head_object().bucket(bucket).key(key).send().await, "HeadObject")
        .storage_class()
        .cloned()
}

#[tokio::test]
async fn transitions_move_versions_to_colder_classes_and_expiration_still_wins() {
    let (server, client, bucket) = TestServer::start_with(config_with_override())
        .and_bucket("lc-transition")
        .await;
    let cold_bytes = random_bytes(100_000, 11);
    let warm_bytes = random_bytes(100_000, 12);
    put(&client, &bucket, "cold/a.bin", cold_bytes.clone()).await;
    put(&client, &bucket, "warm/b.bin", warm_bytes.clone()).await;
    put(&client, &bucket, "hot/c.bin", b"hot".to_vec()).await;
    ok(
        put_rules(
            &client,
            &bucket,
            vec![
                built(
                    rule("glacier", prefix("cold/")).transitions(
                        Transition::builder()
                            .days(1)
                            .storage_class(TransitionStorageClass::Glacier)
                            .build(),
                    ),
                ),
                built(
                    rule("ia-then-expire", prefix("warm/"))
                        .transitions(
                            Transition::builder()
                                .days(30)
                                .storage_class(TransitionStorageClass::StandardIa)
                                .build(),
                        )
                        .expiration(expire_days(60)),
                ),
            ],
        )
        .await,
        "PutBucketLifecycleConfiguration",
    );
    let created = last_modified_ms(&client, &bucket, "warm/b.bin").await;
    let day = |n: i64| ceil_midnight(created + n * DAY_MS);
    let cold_files = || files_under(&server.data_dir().join("cold")).len();
    let cold_before = cold_files();

    let s = lifecycle_run(&server, day(1) - 1000);
    assert_eq!(count(&s, "transitions"), 0, "{s}");
    let s = lifecycle_run(&server, day(1));
    assert_eq!(count(&s, "transitions"), 1, "{s}");
    assert_eq!(
        class_of(&client, &bucket, "cold/a.bin").await,
        Some(StorageClass::Glacier)
    );
    expect_error(
        client.get_object().bucket(&bucket).key("cold/a.bin").send().await,
        403,
        "InvalidObjectState",
    );
    assert_ne!(
        class_of(&client, &bucket, "warm/b.bin").await,
        Some(StorageClass::StandardIa)
    );
    assert!(cold_files() > cold_before, "the GLACIER bytes are on the cold volume");
    // Already there: not planned again.
    let s = lifecycle_run(&server, day(2));
    assert_eq!(count(&s, "transitions") + count(&s, "skipped"), 0, "{s}");

    let s = lifecycle_run(&server, day(30) - 1000);
    assert_eq!(count(&s, "transitions"), 0, "{s}");
    let s = lifecycle_run(&server, day(30));
    assert_eq!(count(&s, "transitions"), 1, "{s}");
    assert_eq!(
        class_of(&client, &bucket, "warm/b.bin").await,
        Some(StorageClass::StandardIa)
    );
    assert_eq!(get_bytes(&client, &bucket, "warm/b.bin").await, warm_bytes);

    // Day 60: expiration wins (the object goes, nothing transitions).
    let s = lifecycle_run(&server, day(60));
    assert_eq!(count(&s, "expired"), 1, "{s}");
    assert_eq!(count(&s, "transitions"), 0, "{s}");
    assert!(!exists(&client, &bucket, "warm/b.bin").await);
    assert_ne!(
        class_of(&client, &bucket, "hot/c.bin").await,
        Some(StorageClass::Glacier)
    );
    assert_eq!(get_bytes(&client, &bucket, "hot/c.bin").await, b"hot");
}

/// Files under `<data>/cache` (the derivative cache on disk).
fn cached_derivatives(server: &TestServer) -> usize {
    files_under(&server.data_dir().join("cache"))
        .into_iter()
        .filter(|p| p.file_name().is_some_and(|n| !n.to_string_lossy().starts_with('.')))
        .count()
}

#[tokio::test]
async fn expiring_an_image_purges_its_cached_derivatives() {
    let (server, client, bucket) = TestServer::start_with(config_with_override())
        .and_bucket("lc-derived")
        .await;
    let image =
        std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/testdata/images/coffee-600x400.png"))
            .expect("read test image");
    put(&client, &bucket, "tmp/photo.png", image.clone()).await;
    put(&client, &bucket, "keep/photo.png", image).await;
    ok(
        put_rules(
            &client,
            &bucket,
            vec![built(rule("tmp", prefix("tmp/")).expiration(expire_days(1)))],
        )
        .await,
        "PutBucketLifecycleConfiguration",
    );
    let before = cached_derivatives(&server);
    for key in ["tmp/photo.png", "keep/photo.png"] {
        let r = SignedRequest::new("GET", format!("/{bucket}/{key}?w=64&f=png"))
            .send(&server)
            .await;
        assert_eq!(r.status, 200, "transform of {key}: {}", r.text());
    }
    assert_eq!(
        cached_derivatives(&server),
        before + 2,
        "one cached derivative per original"
    );

    let due = ceil_midnight(last_modified_ms(&client, &bucket, "tmp/photo.png").await + DAY_MS);
    let s = lifecycle_run(&server, due);
    assert_eq!(count(&s, "expired"), 1, "{s}");
    // The purge runs on a blocking thread right after the run's batch is durable.
    let deadline = Instant::now() + Duration::from_secs(10);
    while cached_derivatives(&server) != before + 1 {
        assert!(
            Instant::now() < deadline,
            "the expired original's derivative is still cached"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // The expired key's transform is now a 404; the other one is still served.
    let gone = SignedRequest::new("GET", format!("/{bucket}/tmp/photo.png?w=64&f=png"))
        .send(&server)
        .await;
    assert_eq!(gone.status, 404, "{}", gone.text());
    let kept = SignedRequest::new("GET", format!("/{bucket}/keep/photo.png?w=64&f=png"))
        .send(&server)
        .await;
    assert_eq!(kept.status, 200, "{}", kept.text());
}
