//! Conditional requests: If-Match / If-None-Match / If-Modified-Since / If-Unmodified-Since on
//! GET and HEAD (with RFC 7232 precedence), and conditional PUT (If-None-Match: *, If-Match).

use aws_sdk_s3::primitives::DateTime;
use aws_sdk_s3::Client;

use crate::fixtures::*;

const WRONG_ETAG: &str = "\"00000000000000000000000000000000\"";

/// Puts an object and returns (ETag, Last-Modified as reported by HEAD).
async fn setup(client: &Client, bucket: &str) -> (String, DateTime) {
    let etag = put(client, bucket, "cond", b"conditional body".to_vec()).await;
    let head = ok(
        client.head_object().bucket(bucket).key("cond").send().await,
        "HeadObject",
    );
    let last_modified = head.last_modified().cloned().expect("HeadObject has no Last-Modified");
    (etag, last_modified)
}

fn shift(t: &DateTime, secs: i64) -> DateTime {
    DateTime::from_secs(t.secs() + secs)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_if_match() {
    let (_server, client, bucket) = TestServer::with_bucket("ifmatch").await;
    let (etag, _) = setup(&client, &bucket).await;

    let got = ok(
        client
            .get_object()
            .bucket(&bucket)
            .key("cond")
            .if_match(&etag)
            .send()
            .await,
        "If-Match current",
    );
    assert_eq!(
        got.body.collect().await.unwrap().into_bytes().as_ref(),
        b"conditional body"
    );
    ok(
        client
            .get_object()
            .bucket(&bucket)
            .key("cond")
            .if_match("*")
            .send()
            .await,
        "If-Match *",
    );
    expect_error(
        client
            .get_object()
            .bucket(&bucket)
            .key("cond")
            .if_match(WRONG_ETAG)
            .send()
            .await,
        412,
        "PreconditionFailed",
    );
    expect_status(
        client
            .head_object()
            .bucket(&bucket)
            .key("cond")
            .if_match(WRONG_ETAG)
            .send()
            .await,
        412,
    );
    ok(
        client
            .head_object()
            .bucket(&bucket)
            .key("cond")
            .if_match(&etag)
            .send()
            .await,
        "HEAD If-Match current",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_if_none_match() {
    let (server, client, bucket) = TestServer::with_bucket("ifnone").await;
    let (etag, _) = setup(&client, &bucket).await;

    expect_status(
        client
            .get_object()
            .bucket(&bucket)
            .key("cond")
            .if_none_match(&etag)
            .send()
            .await,
        304,
    );
    expect_status(
        client
            .head_object()
            .bucket(&bucket)
            .key("cond")
            .if_none_match(&etag)
            .send()
            .await,
        304,
    );
    expect_status(
        client
            .get_object()
            .bucket(&bucket)
            .key("cond")
            .if_none_match("*")
            .send()
            .await,
        304,
    );
    let got = ok(
        client
            .get_object()
            .bucket(&bucket)
            .key("cond")
            .if_none_match(WRONG_ETAG)
            .send()
            .await,
        "If-None-Match other",
    );
    assert_eq!(
        got.body.collect().await.unwrap().into_bytes().as_ref(),
        b"conditional body"
    );
    ok(
        client
            .head_object()
            .bucket(&bucket)
            .key("cond")
            .if_none_match(WRONG_ETAG)
            .send()
            .await,
        "HEAD If-None-Match other",
    );

    // A 304 carries the ETag and no body.
    let raw = SignedRequest::new("GET", format!("/{bucket}/cond"))
        .header("if-none-match", &etag)
        .send(&server)
        .await;
    assert_eq!(raw.status, 304, "{}", raw.text());
    assert!(raw.body.is_empty(), "304 with a body: {}", raw.text());
    assert_eq!(raw.header("etag"), Some(etag.as_str()), "304 without the ETag");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_if_modified_since() {
    let (_server, client, bucket) = TestServer::with_bucket("ifmod").await;
    let (_, lm) = setup(&client, &bucket).await;

    // Not modified since its own Last-Modified. (A date in the future is invalid under
    // RFC 7232 and may be ignored, so it is not tested.)
    expect_status(
        client
            .get_object()
            .bucket(&bucket)
            .key("cond")
            .if_modified_since(lm)
            .send()
            .await,
        304,
    );
    expect_status(
        client
            .head_object()
            .bucket(&bucket)
            .key("cond")
            .if_modified_since(lm)
            .send()
            .await,
        304,
    );
    // Modified since an hour before.
    ok(
        client
            .get_object()
            .bucket(&bucket)
            .key("cond")
            .if_modified_since(shift(&lm, -3600))
            .send()
            .await,
        "If-Modified-Since earlier",
    );
    ok(
        client
            .head_object()
            .bucket(&bucket)
            .key("cond")
            .if_modified_since(shift(&lm, -3600))
            .send()
            .await,
        "HEAD If-Modified-Since earlier",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_if_unmodified_since() {
    let (_server, client, bucket) = TestServer::with_bucket("ifunmod").await;
    let (_, lm) = setup(&client, &bucket).await;

    expect_error(
        client
            .get_object()
            .bucket(&bucket)
            .key("cond")
            .if_unmodified_since(shift(&lm, -3600))
            .send()
            .await,
        412,
        "PreconditionFailed",
    );
    expect_status(
        client
            .head_object()
            .bucket(&bucket)
            .key("cond")
            .if_unmodified_since(shift(&lm, -3600))
            .send()
            .await,
        412,
    );
    ok(
        client
            .get_object()
            .bucket(&bucket)
            .key("cond")
            .if_unmodified_since(lm)
            .send()
            .await,
        "If-Unmodified-Since = LM",
    );
    ok(
        client
            .get_object()
            .bucket(&bucket)
            .key("cond")
            .if_unmodified_since(shift(&lm, 3600))
            .send()
            .await,
        "If-Unmodified-Since later",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conditional_precedence() {
    // RFC 7232 §6 (and S3): If-Match wins over If-Unmodified-Since; If-None-Match over
    // If-Modified-Since.
    let (_server, client, bucket) = TestServer::with_bucket("ifprec").await;
    let (etag, lm) = setup(&client, &bucket).await;

    ok(
        client
            .get_object()
            .bucket(&bucket)
            .key("cond")
            .if_match(&etag)
            .if_unmodified_since(shift(&lm, -3600))
            .send()
            .await,
        "If-Match true + If-Unmodified-Since false",
    );
    expect_status(
        client
            .get_object()
            .bucket(&bucket)
            .key("cond")
            .if_none_match(&etag)
            .if_modified_since(shift(&lm, -3600))
            .send()
            .await,
        304,
    );
    // A failing If-Match decides even when If-None-Match would say 304.
    expect_status(
        client
            .get_object()
            .bucket(&bucket)
            .key("cond")
            .if_match(WRONG_ETAG)
            .if_none_match(&etag)
            .send()
            .await,
        412,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conditional_on_missing_key() {
    let (_server, client, bucket) = TestServer::with_bucket("ifmissing").await;
    // No object: a missing key is reported as such, not as a failed precondition.
    expect_error(
        client
            .get_object()
            .bucket(&bucket)
            .key("absent")
            .if_none_match("*")
            .send()
            .await,
        404,
        "NoSuchKey",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_if_none_match_star() {
    let (_server, client, bucket) = TestServer::with_bucket("putinm").await;

    let first = ok(
        client
            .put_object()
            .bucket(&bucket)
            .key("once")
            .if_none_match("*")
            .body(b"first".to_vec().into())
            .send()
            .await,
        "first create-only PUT",
    );
    assert_eq!(first.e_tag(), Some(etag_of(b"first").as_str()));
    expect_error(
        client
            .put_object()
            .bucket(&bucket)
            .key("once")
            .if_none_match("*")
            .body(b"second".to_vec().into())
            .send()
            .await,
        412,
        "PreconditionFailed",
    );
    assert_eq!(
        get_bytes(&client, &bucket, "once").await,
        b"first",
        "a failed create-only PUT changed the object"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_if_none_match_star_race() {
    // Of several concurrent create-only PUTs exactly one wins.
    let (_server, client, bucket) = TestServer::with_bucket("putrace").await;
    let mut tasks = Vec::new();
    for i in 0..6u8 {
        let client = client.clone();
        let bucket = bucket.clone();
        tasks.push(tokio::spawn(async move {
            let r = client
                .put_object()
                .bucket(&bucket)
                .key("lock")
                .if_none_match("*")
                .body(vec![i; 1000].into())
                .send()
                .await;
            (i, r.map_err(|e| err_info(&e)))
        }));
    }
    let mut winners = Vec::new();
    for t in tasks {
        let (i, r) = t.await.unwrap();
        match r {
            Ok(_) => winners.push(i),
            Err(info) => assert!(
                info.status == 412
                    || (info.status == 409 && info.code.as_deref() == Some("ConditionalRequestConflict")),
                "a losing create-only PUT failed with {info:?}"
            ),
        }
    }
    assert_eq!(winners.len(), 1, "winners: {winners:?}");
    assert_eq!(get_bytes(&client, &bucket, "lock").await, vec![winners[0]; 1000]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_if_match() {
    let (_server, client, bucket) = TestServer::with_bucket("putim").await;
    let v1 = put(&client, &bucket, "doc", b"v1".to_vec()).await;

    let v2 = ok(
        client
            .put_object()
            .bucket(&bucket)
            .key("doc")
            .if_match(&v1)
            .body(b"v2".to_vec().into())
            .send()
            .await,
        "PUT If-Match current ETag",
    );
    assert_eq!(v2.e_tag(), Some(etag_of(b"v2").as_str()));
    // v1 is stale now.
    expect_error(
        client
            .put_object()
            .bucket(&bucket)
            .key("doc")
            .if_match(&v1)
            .body(b"v3".to_vec().into())
            .send()
            .await,
        412,
        "PreconditionFailed",
    );
    assert_eq!(get_bytes(&client, &bucket, "doc").await, b"v2");

    // If-Match on a key that does not exist cannot succeed.
    let r = client
        .put_object()
        .bucket(&bucket)
        .key("nothing-here")
        .if_match(&v1)
        .body(b"x".to_vec().into())
        .send()
        .await;
    let info = match r {
        Ok(_) => panic!("PUT If-Match on a missing key succeeded"),
        Err(e) => err_info(&e),
    };
    assert!(
        matches!(
            (info.status, info.code.as_deref()),
            (404, Some("NoSuchKey")) | (412, Some("PreconditionFailed"))
        ),
        "PUT If-Match on a missing key: {info:?}"
    );
    expect_error(
        client
            .head_object()
            .bucket(&bucket)
            .key("nothing-here")
            .send()
            .await
            .map(|_| ()),
        404,
        "NotFound",
    );
}
