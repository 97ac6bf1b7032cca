//! CopyObject: COPY vs REPLACE metadata directives, copy-source conditions, copying onto
//! itself, across buckets, odd source keys, and missing sources.

use aws_sdk_s3::types::MetadataDirective;
use aws_sdk_s3::Client;

use crate::fixtures::*;

/// The `x-amz-copy-source` value for `bucket/key`, with the key percent-encoded.
fn source(bucket: &str, key: &str) -> String {
    format!("{bucket}/{}", urlencoding::encode(key))
}

async fn put_with_meta(client: &Client, bucket: &str, key: &str, body: &[u8]) -> String {
    let out = ok(
        client
            .put_object()
            .bucket(bucket)
            .key(key)
            .body(body.to_vec().into())
            .content_type("text/x-original")
            .cache_control("max-age=1")
            .metadata("origin", "source")
            .metadata("keep", "me")
            .send()
            .await,
        "PutObject source",
    );
    out.e_tag().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_directive_keeps_metadata() {
    let (_server, client, bucket) = TestServer::with_bucket("copykeep").await;
    let body = random_bytes(20_000, 1);
    let etag = put_with_meta(&client, &bucket, "src", &body).await;

    let out = ok(
        client
            .copy_object()
            .bucket(&bucket)
            .key("dst")
            .copy_source(source(&bucket, "src"))
            // Ignored with the default COPY directive.
            .metadata("ignored", "yes")
            .send()
            .await,
        "CopyObject",
    );
    let result = out.copy_object_result().expect("no CopyObjectResult");
    assert_eq!(
        result.e_tag(),
        Some(etag.as_str()),
        "a copy of a simple object has the same ETag"
    );
    assert!(result.last_modified().is_some(), "CopyObjectResult has no LastModified");

    let got = ok(
        client.get_object().bucket(&bucket).key("dst").send().await,
        "GetObject copy",
    );
    let meta = got.metadata().cloned().unwrap_or_default();
    assert_eq!(meta.get("origin").map(String::as_str), Some("source"), "{meta:?}");
    assert_eq!(meta.get("keep").map(String::as_str), Some("me"), "{meta:?}");
    assert!(
        !meta.contains_key("ignored"),
        "COPY directive applied request metadata: {meta:?}"
    );
    assert_eq!(got.content_type(), Some("text/x-original"));
    assert_eq!(got.cache_control(), Some("max-age=1"));
    assert_eq!(got.e_tag(), Some(etag.as_str()));
    assert!(
        got.body.collect().await.unwrap().into_bytes().as_ref() == body.as_slice(),
        "copied bytes differ"
    );

    // The copy is independent: overwriting the source leaves it alone.
    put(&client, &bucket, "src", b"changed".to_vec()).await;
    assert!(
        get_bytes(&client, &bucket, "dst").await == body,
        "copy changed with its source"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replace_directive_replaces_metadata() {
    let (_server, client, bucket) = TestServer::with_bucket("copyrepl").await;
    put_with_meta(&client, &bucket, "src", b"payload").await;
    ok(
        client
            .copy_object()
            .bucket(&bucket)
            .key("dst")
            .copy_source(source(&bucket, "src"))
            .metadata_directive(MetadataDirective::Replace)
            .metadata("fresh", "value")
            .content_type("application/json")
            .send()
            .await,
        "CopyObject REPLACE",
    );
    let head = ok(
        client.head_object().bucket(&bucket).key("dst").send().await,
        "HeadObject",
    );
    let meta = head.metadata().cloned().unwrap_or_default();
    assert_eq!(meta.len(), 1, "REPLACE kept old metadata: {meta:?}");
    assert_eq!(meta.get("fresh").map(String::as_str), Some("value"));
    assert_eq!(head.content_type(), Some("application/json"));
    assert_ne!(
        head.cache_control(),
        Some("max-age=1"),
        "REPLACE kept the old Cache-Control"
    );
    assert_eq!(get_bytes(&client, &bucket, "dst").await, b"payload");
    // The source is untouched.
    let src = ok(
        client.head_object().bucket(&bucket).key("src").send().await,
        "HeadObject src",
    );
    assert_eq!(
        src.metadata().and_then(|m| m.get("origin")).map(String::as_str),
        Some("source")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_source_conditions() {
    let (_server, client, bucket) = TestServer::with_bucket("copycond").await;
    let etag = put(&client, &bucket, "src", b"conditional copy".to_vec()).await;
    let wrong = "\"11111111111111111111111111111111\"";

    expect_error(
        client
            .copy_object()
            .bucket(&bucket)
            .key("a")
            .copy_source(source(&bucket, "src"))
            .copy_source_if_match(wrong)
            .send()
            .await,
        412,
        "PreconditionFailed",
    );
    expect_error(
        client
            .copy_object()
            .bucket(&bucket)
            .key("b")
            .copy_source(source(&bucket, "src"))
            .copy_source_if_none_match(&etag)
            .send()
            .await,
        412,
        "PreconditionFailed",
    );
    // Failed conditions create nothing.
    assert_eq!(list_all_keys(&client, &bucket).await, vec!["src".to_string()]);

    ok(
        client
            .copy_object()
            .bucket(&bucket)
            .key("c")
            .copy_source(source(&bucket, "src"))
            .copy_source_if_match(&etag)
            .send()
            .await,
        "copy-source-if-match current",
    );
    ok(
        client
            .copy_object()
            .bucket(&bucket)
            .key("d")
            .copy_source(source(&bucket, "src"))
            .copy_source_if_none_match(wrong)
            .send()
            .await,
        "copy-source-if-none-match other",
    );
    assert_eq!(get_bytes(&client, &bucket, "c").await, b"conditional copy");
    assert_eq!(get_bytes(&client, &bucket, "d").await, b"conditional copy");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_onto_itself() {
    let (_server, client, bucket) = TestServer::with_bucket("copyself").await;
    put_with_meta(&client, &bucket, "self", b"same bytes").await;

    // Without changing anything S3 refuses the copy.
    expect_error(
        client
            .copy_object()
            .bucket(&bucket)
            .key("self")
            .copy_source(source(&bucket, "self"))
            .send()
            .await,
        400,
        "InvalidRequest",
    );
    // With REPLACE it is how metadata is edited in place.
    ok(
        client
            .copy_object()
            .bucket(&bucket)
            .key("self")
            .copy_source(source(&bucket, "self"))
            .metadata_directive(MetadataDirective::Replace)
            .metadata("edited", "true")
            .content_type("text/markdown")
            .send()
            .await,
        "CopyObject onto itself with REPLACE",
    );
    let got = ok(
        client.get_object().bucket(&bucket).key("self").send().await,
        "GetObject",
    );
    let meta = got.metadata().cloned().unwrap_or_default();
    assert_eq!(meta.get("edited").map(String::as_str), Some("true"), "{meta:?}");
    assert!(!meta.contains_key("origin"), "old metadata kept: {meta:?}");
    assert_eq!(got.content_type(), Some("text/markdown"));
    assert_eq!(got.body.collect().await.unwrap().into_bytes().as_ref(), b"same bytes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_across_buckets_with_odd_key() {
    let (_server, client, from) = TestServer::with_bucket("copyfrom").await;
    let to = new_bucket(&client, "copyto").await;
    let key = "dir/ünï cødé + more/😀.bin";
    let body = random_bytes(300_000, 5);
    let etag = put(&client, &from, key, body.clone()).await;

    ok(
        client
            .copy_object()
            .bucket(&to)
            .key("copied/here")
            .copy_source(source(&from, key))
            .send()
            .await,
        "cross-bucket CopyObject",
    );
    let got = ok(
        client.get_object().bucket(&to).key("copied/here").send().await,
        "GetObject",
    );
    assert_eq!(got.e_tag(), Some(etag.as_str()));
    assert!(got.body.collect().await.unwrap().into_bytes().as_ref() == body.as_slice());
    // Source remains.
    assert!(get_bytes(&client, &from, key).await == body);
    // A leading slash in the copy source is accepted as well.
    ok(
        client
            .copy_object()
            .bucket(&to)
            .key("slash")
            .copy_source(format!("/{}", source(&from, key)))
            .send()
            .await,
        "CopyObject with /bucket/key source",
    );
    assert!(get_bytes(&client, &to, "slash").await == body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_of_missing_source() {
    let (_server, client, bucket) = TestServer::with_bucket("copymiss").await;
    expect_error(
        client
            .copy_object()
            .bucket(&bucket)
            .key("dst")
            .copy_source(source(&bucket, "nope"))
            .send()
            .await,
        404,
        "NoSuchKey",
    );
    let missing_bucket = unique_bucket("nosuch");
    expect_error(
        client
            .copy_object()
            .bucket(&bucket)
            .key("dst")
            .copy_source(source(&missing_bucket, "nope"))
            .send()
            .await,
        404,
        "NoSuchBucket",
    );
    assert!(list_all_keys(&client, &bucket).await.is_empty());
}
