//! Authentication: wrong secret, unknown key, anonymous requests, presigned GET/PUT URLs
//! (valid, expired, tampered), hand-made bad signatures, and clock skew.

use std::time::{Duration, SystemTime};

use aws_sdk_s3::presigning::{PresignedRequest, PresigningConfig};

use crate::fixtures::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_secret_is_signature_does_not_match() {
    let (server, root, bucket) = TestServer::with_bucket("wrongsk").await;
    let bad = server.client_with(ROOT_ACCESS_KEY, "not-the-right-secret-key-at-all-000000000");
    expect_error(bad.list_buckets().send().await, 403, "SignatureDoesNotMatch");
    expect_error(
        bad.list_objects_v2().bucket(&bucket).send().await,
        403,
        "SignatureDoesNotMatch",
    );
    expect_error(
        bad.put_object()
            .bucket(&bucket)
            .key("k")
            .body(b"x".to_vec().into())
            .send()
            .await,
        403,
        "SignatureDoesNotMatch",
    );
    assert!(
        list_all_keys(&root, &bucket).await.is_empty(),
        "an unauthenticated PUT stored an object"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_access_key_is_invalid_access_key_id() {
    let (server, _root, bucket) = TestServer::with_bucket("nokey").await;
    let stranger = server.client_with("AKIDONTEXIST00000000", "whatever-secret-key-0000000000000000000");
    expect_error(stranger.list_buckets().send().await, 403, "InvalidAccessKeyId");
    expect_error(
        stranger.get_object().bucket(&bucket).key("k").send().await,
        403,
        "InvalidAccessKeyId",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_requests_are_denied() {
    let (server, client, bucket) = TestServer::with_bucket("anon").await;
    put(&client, &bucket, "secret.txt", b"private".to_vec()).await;
    let base = server.endpoint();

    let cases = [
        ("GET", format!("{base}/{bucket}/secret.txt")),
        ("HEAD", format!("{base}/{bucket}/secret.txt")),
        ("GET", format!("{base}/{bucket}")),
        ("GET", format!("{base}/{bucket}?list-type=2")),
        ("GET", format!("{base}/")),
        ("PUT", format!("{base}/{bucket}/planted.txt")),
        ("DELETE", format!("{base}/{bucket}/secret.txt")),
        ("PUT", format!("{base}/{}", unique_bucket("anonbucket"))),
    ];
    for (method, url) in &cases {
        let body = if *method == "PUT" {
            b"anonymous".to_vec()
        } else {
            Vec::new()
        };
        let r = raw_request(method, url, &[], body).await;
        assert_eq!(r.status, 403, "anonymous {method} {url}: {} {}", r.status, r.text());
        if *method != "HEAD" {
            assert_eq!(
                r.error_code().as_deref(),
                Some("AccessDenied"),
                "anonymous {method} {url}: {}",
                r.text()
            );
            assert!(!r.text().contains("private"), "the object leaked in an error body");
        } else {
            assert!(r.body.is_empty());
        }
    }
    // Nothing changed.
    assert_eq!(list_all_keys(&client, &bucket).await, vec!["secret.txt".to_string()]);
    assert_eq!(get_bytes(&client, &bucket, "secret.txt").await, b"private");
    let buckets = ok(client.list_buckets().send().await, "ListBuckets");
    assert_eq!(buckets.buckets().len(), 1, "an anonymous CreateBucket went through");
}

/// Fetches a presigned request with the raw client, sending the headers it was signed with.
async fn fetch(presigned: &PresignedRequest, body: Vec<u8>) -> RawResponse {
    let headers: Vec<(&str, &str)> = presigned.headers().collect();
    raw_request(presigned.method(), presigned.uri(), &headers, body).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presigned_get() {
    let (_server, client, bucket) = TestServer::with_bucket("preget").await;
    let body = random_bytes(70_000, 4);
    put(&client, &bucket, "dir/file name+1.bin", body.clone()).await;

    let presigned = client
        .get_object()
        .bucket(&bucket)
        .key("dir/file name+1.bin")
        .presigned(PresigningConfig::expires_in(Duration::from_secs(600)).unwrap())
        .await
        .expect("presign GET");
    assert!(
        presigned.uri().contains("X-Amz-Signature="),
        "not a query-signed URL: {}",
        presigned.uri()
    );
    let r = fetch(&presigned, Vec::new()).await;
    assert_eq!(r.status, 200, "presigned GET: {}", r.text());
    assert!(r.body.as_ref() == body.as_slice(), "presigned GET bytes differ");
    assert_eq!(r.header("etag"), Some(etag_of(&body).as_str()));

    // Presigned with response overrides (part of the signature).
    let presigned = client
        .get_object()
        .bucket(&bucket)
        .key("dir/file name+1.bin")
        .response_content_disposition("attachment; filename=\"download.bin\"")
        .presigned(PresigningConfig::expires_in(Duration::from_secs(600)).unwrap())
        .await
        .unwrap();
    let r = fetch(&presigned, Vec::new()).await;
    assert_eq!(r.status, 200, "presigned GET with override: {}", r.text());
    assert_eq!(
        r.header("content-disposition"),
        Some("attachment; filename=\"download.bin\"")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_presigned_url_is_denied() {
    let (_server, client, bucket) = TestServer::with_bucket("preexp").await;
    put(&client, &bucket, "k", b"expiring".to_vec()).await;

    // Signed an hour ago, valid for a minute.
    let backdated = client
        .get_object()
        .bucket(&bucket)
        .key("k")
        .presigned(
            PresigningConfig::builder()
                .start_time(SystemTime::now() - Duration::from_secs(3600))
                .expires_in(Duration::from_secs(60))
                .build()
                .unwrap(),
        )
        .await
        .unwrap();
    let r = fetch(&backdated, Vec::new()).await;
    assert_eq!(r.status, 403, "backdated presigned URL: {}", r.text());
    assert_eq!(r.error_code().as_deref(), Some("AccessDenied"), "{}", r.text());
    assert!(!r.text().contains("expiring"));

    // Valid for one second, used after two.
    let short = client
        .get_object()
        .bucket(&bucket)
        .key("k")
        .presigned(PresigningConfig::expires_in(Duration::from_secs(1)).unwrap())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let r = fetch(&short, Vec::new()).await;
    assert_eq!(r.status, 403, "expired presigned URL: {}", r.text());
    assert_eq!(r.error_code().as_deref(), Some("AccessDenied"), "{}", r.text());

    // More than the 7-day maximum is refused even if unexpired. (The SDK refuses to presign
    // that, so stretch a valid URL's X-Amz-Expires, which also breaks its signature: either
    // way it must not be served.)
    let fresh = client
        .get_object()
        .bucket(&bucket)
        .key("k")
        .presigned(PresigningConfig::expires_in(Duration::from_secs(60)).unwrap())
        .await
        .unwrap();
    let stretched = fresh.uri().replace("X-Amz-Expires=60", "X-Amz-Expires=604801");
    assert_ne!(stretched, fresh.uri());
    let r = raw_request("GET", &stretched, &[], Vec::new()).await;
    assert!(
        matches!(r.status, 400 | 403),
        "over-long presigned URL: {} {}",
        r.status,
        r.text()
    );
    assert!(
        r.body.as_ref() != b"expiring",
        "over-long presigned URL served the object"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampered_presigned_url_is_denied() {
    let (_server, client, bucket) = TestServer::with_bucket("pretamp").await;
    put(&client, &bucket, "allowed", b"yes".to_vec()).await;
    put(&client, &bucket, "forbidden", b"no".to_vec()).await;
    let presigned = client
        .get_object()
        .bucket(&bucket)
        .key("allowed")
        .presigned(PresigningConfig::expires_in(Duration::from_secs(600)).unwrap())
        .await
        .unwrap();
    let uri = presigned.uri().to_string();
    assert_eq!(
        raw_request("GET", &uri, &[], Vec::new()).await.status,
        200,
        "untampered URL must work"
    );

    let sig_start = uri.find("X-Amz-Signature=").unwrap() + "X-Amz-Signature=".len();
    let mut flipped_sig = uri.clone();
    let c = &uri[sig_start..sig_start + 1];
    flipped_sig.replace_range(sig_start..sig_start + 1, if c == "0" { "1" } else { "0" });

    let tampered = [
        ("other key", uri.replace("/allowed?", "/forbidden?")),
        ("longer expiry", uri.replace("X-Amz-Expires=600", "X-Amz-Expires=900")),
        ("extra parameter", format!("{uri}&response-content-type=text%2Fhtml")),
        ("flipped signature", flipped_sig),
        ("no signature", uri[..sig_start - "&X-Amz-Signature=".len()].to_string()),
    ];
    for (what, url) in tampered {
        assert_ne!(url, uri, "{what}: tampering did nothing");
        let r = raw_request("GET", &url, &[], Vec::new()).await;
        assert!(
            r.body.as_ref() != b"no" && r.body.as_ref() != b"yes",
            "{what}: object served"
        );
        let code = r.error_code();
        if what == "no signature" {
            // S3 calls an incomplete set of presign parameters a bad request.
            assert!(
                matches!(r.status, 400 | 403),
                "{what}: {url} -> {} {}",
                r.status,
                r.text()
            );
        } else {
            assert_eq!(r.status, 403, "{what}: {url} -> {} {}", r.status, r.text());
            assert!(
                matches!(code.as_deref(), Some("SignatureDoesNotMatch") | Some("AccessDenied")),
                "{what}: code {code:?}: {}",
                r.text()
            );
        }
    }
    // Presigned for GET does not authorize PUT.
    let r = raw_request("PUT", &uri, &[], b"overwrite".to_vec()).await;
    assert_eq!(r.status, 403, "GET URL used for PUT: {}", r.text());
    assert_eq!(get_bytes(&client, &bucket, "allowed").await, b"yes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presigned_put() {
    let (_server, client, bucket) = TestServer::with_bucket("preput").await;
    let presigned = client
        .put_object()
        .bucket(&bucket)
        .key("uploaded/via url.bin")
        .content_type("application/x-test")
        .presigned(PresigningConfig::expires_in(Duration::from_secs(600)).unwrap())
        .await
        .expect("presign PUT");
    let body = random_bytes(123_456, 6);
    let r = fetch(&presigned, body.clone()).await;
    assert_eq!(r.status, 200, "presigned PUT: {}", r.text());
    assert_eq!(r.header("etag"), Some(etag_of(&body).as_str()));
    let got = ok(
        client
            .get_object()
            .bucket(&bucket)
            .key("uploaded/via url.bin")
            .send()
            .await,
        "GET uploaded",
    );
    assert_eq!(got.content_type(), Some("application/x-test"));
    assert!(got.body.collect().await.unwrap().into_bytes().as_ref() == body.as_slice());

    // A presigned PUT for one key cannot write another.
    let other = presigned.uri().replace("via%20url.bin", "evil.bin");
    assert_ne!(other, presigned.uri());
    let headers: Vec<(&str, &str)> = presigned.headers().collect();
    let r = raw_request("PUT", &other, &headers, b"evil".to_vec()).await;
    assert_eq!(r.status, 403, "retargeted presigned PUT: {}", r.text());
    expect_error(
        client
            .head_object()
            .bucket(&bucket)
            .key("uploaded/evil.bin")
            .send()
            .await,
        404,
        "NotFound",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hand_signed_requests() {
    let (server, client, bucket) = TestServer::with_bucket("handsig").await;
    put(&client, &bucket, "k", b"value".to_vec()).await;

    // The hand-signing helper itself is right: a correct signature works.
    let good = SignedRequest::new("GET", format!("/{bucket}/k")).send(&server).await;
    assert_eq!(good.status, 200, "correctly hand-signed GET: {}", good.text());
    assert_eq!(good.body.as_ref(), b"value");

    // One character of the signature changed.
    let r = SignedRequest::new("GET", format!("/{bucket}/k"))
        .send_tampered(&server, |req| {
            let auth = req
                .headers()
                .get("authorization")
                .unwrap()
                .to_str()
                .unwrap()
                .to_string();
            let last = auth.chars().last().unwrap();
            let flipped = format!("{}{}", &auth[..auth.len() - 1], if last == '0' { '1' } else { '0' });
            req.headers_mut().insert("authorization", flipped.parse().unwrap());
        })
        .await;
    assert_eq!(
        (r.status, r.error_code().as_deref()),
        (403, Some("SignatureDoesNotMatch")),
        "{}",
        r.text()
    );

    // A signed header changed after signing.
    let r = SignedRequest::new("PUT", format!("/{bucket}/meta"))
        .header("x-amz-meta-owner", "alice")
        .body(b"data".to_vec())
        .send_tampered(&server, |req| {
            req.headers_mut().insert("x-amz-meta-owner", "mallory".parse().unwrap());
        })
        .await;
    assert_eq!(
        (r.status, r.error_code().as_deref()),
        (403, Some("SignatureDoesNotMatch")),
        "{}",
        r.text()
    );
    expect_error(
        client.head_object().bucket(&bucket).key("meta").send().await,
        404,
        "NotFound",
    );

    // The path changed after signing.
    let r = SignedRequest::new("DELETE", format!("/{bucket}/other"))
        .send_tampered(&server, |req| {
            *req.uri_mut() = format!("{}/{bucket}/k", server.endpoint()).parse().unwrap()
        })
        .await;
    assert_eq!(
        (r.status, r.error_code().as_deref()),
        (403, Some("SignatureDoesNotMatch")),
        "{}",
        r.text()
    );
    assert_eq!(
        get_bytes(&client, &bucket, "k").await,
        b"value",
        "a mis-signed DELETE deleted the object"
    );

    // Garbage in the Authorization header.
    let r = raw_request(
        "GET",
        &format!("{}/{bucket}/k", server.endpoint()),
        &[("authorization", "AWS4-HMAC-SHA256 nonsense")],
        Vec::new(),
    )
    .await;
    assert!(
        (400..=403).contains(&r.status),
        "garbage Authorization: {} {}",
        r.status,
        r.text()
    );
    assert!(r.body.as_ref() != b"value", "object served on garbage Authorization");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clock_skew_is_refused() {
    let (server, client, bucket) = TestServer::with_bucket("skew").await;
    put(&client, &bucket, "k", b"value".to_vec()).await;
    let twenty_minutes = Duration::from_secs(20 * 60);

    for (what, time) in [
        ("past", SystemTime::now() - twenty_minutes),
        ("future", SystemTime::now() + twenty_minutes),
    ] {
        let r = SignedRequest::new("GET", format!("/{bucket}/k"))
            .time(time)
            .send(&server)
            .await;
        assert_eq!(
            (r.status, r.error_code().as_deref()),
            (403, Some("RequestTimeTooSkewed")),
            "X-Amz-Date 20 minutes in the {what}: {}",
            r.text()
        );
        let r = SignedRequest::new("PUT", format!("/{bucket}/skewed"))
            .body(b"late".to_vec())
            .time(time)
            .send(&server)
            .await;
        assert_eq!(
            (r.status, r.error_code().as_deref()),
            (403, Some("RequestTimeTooSkewed")),
            "{}",
            r.text()
        );
    }
    expect_error(
        client.head_object().bucket(&bucket).key("skewed").send().await,
        404,
        "NotFound",
    );

    // A few minutes off is within S3's 15-minute window.
    let r = SignedRequest::new("GET", format!("/{bucket}/k"))
        .time(SystemTime::now() - Duration::from_secs(5 * 60))
        .send(&server)
        .await;
    assert_eq!(r.status, 200, "5 minutes of skew: {}", r.text());
}
