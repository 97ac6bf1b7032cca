//! Bad input: malformed XML bodies (signed and unsigned), NoSuchKey on GET/HEAD, truncated
//! uploads, malformed HTTP; after all of it the server is still up and serving.

use std::time::Duration;

use crate::fixtures::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_xml_delete_objects() {
    let (server, client, bucket) = TestServer::with_bucket("badxml").await;
    put(&client, &bucket, "a", b"a".to_vec()).await;

    let bodies: [&[u8]; 4] = [
        b"<Delete><Object><Key>a</Key></Object>",
        b"this is not xml at all",
        b"<Delete><Object><Key>a</Key></Object></Wrong>",
        b"",
    ];
    for body in bodies {
        let r = SignedRequest::new("POST", format!("/{bucket}?delete"))
            .header("content-md5", &content_md5(body))
            .body(body.to_vec())
            .send(&server)
            .await;
        // S3 has a dedicated code for a missing body.
        let codes: &[&str] = if body.is_empty() {
            &["MalformedXML", "MissingRequestBodyError"]
        } else {
            &["MalformedXML"]
        };
        assert!(
            r.status == 400 && r.error_code().is_some_and(|c| codes.contains(&c.as_str())),
            "DeleteObjects with body {:?}: expected 400 {codes:?}, got {} {}",
            String::from_utf8_lossy(body),
            r.status,
            r.text()
        );
    }
    assert_eq!(
        list_all_keys(&client, &bucket).await,
        vec!["a".to_string()],
        "malformed DeleteObjects deleted something"
    );

    // The same request, well-formed, works (so the signing is not what failed above).
    let good = b"<Delete><Object><Key>a</Key></Object></Delete>";
    let r = SignedRequest::new("POST", format!("/{bucket}?delete"))
        .header("content-md5", &content_md5(good))
        .body(good.to_vec())
        .send(&server)
        .await;
    assert_eq!(r.status, 200, "well-formed hand-signed DeleteObjects: {}", r.text());
    assert!(list_all_keys(&client, &bucket).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_xml_complete_multipart() {
    let (server, client, bucket) = TestServer::with_bucket("badcomplete").await;
    let id = crate::multipart::create_upload(&client, &bucket, "k").await;
    let etag = crate::multipart::upload_part(&client, &bucket, "k", &id, 1, b"only part").await;

    let bodies = [
        "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber>".to_string(),
        "garbage".to_string(),
        format!("<CompleteMultipartUpload><Part><PartNumber>one</PartNumber><ETag>{etag}</ETag></Part></CompleteMultipartUpload>"),
    ];
    for body in &bodies {
        let r = SignedRequest::new("POST", format!("/{bucket}/k?uploadId={}", urlencoding::encode(&id)))
            .body(body.clone().into_bytes())
            .send(&server)
            .await;
        assert_eq!(
            (r.status, r.error_code().as_deref()),
            (400, Some("MalformedXML")),
            "CompleteMultipartUpload with body {body:?}: {}",
            r.text()
        );
    }
    // The upload is intact and still completes.
    let good = format!(
        "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>{etag}</ETag></Part></CompleteMultipartUpload>"
    );
    let r = SignedRequest::new("POST", format!("/{bucket}/k?uploadId={}", urlencoding::encode(&id)))
        .body(good.into_bytes())
        .send(&server)
        .await;
    assert_eq!(
        r.status,
        200,
        "well-formed hand-signed CompleteMultipartUpload: {}",
        r.text()
    );
    assert_eq!(get_bytes(&client, &bucket, "k").await, b"only part");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_create_bucket_configuration() {
    let (server, client) = TestServer::with_client();
    let bucket = unique_bucket("badcfg");
    let r = SignedRequest::new("PUT", format!("/{bucket}"))
        .body(b"<CreateBucketConfiguration><LocationConstraint>".to_vec())
        .send(&server)
        .await;
    assert_eq!(
        (r.status, r.error_code().as_deref()),
        (400, Some("MalformedXML")),
        "{}",
        r.text()
    );
    expect_status(client.head_bucket().bucket(&bucket).send().await, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsigned_malformed_requests_get_xml_errors() {
    let (server, _client, bucket) = TestServer::with_bucket("unsigned").await;
    let base = server.endpoint();
    let requests: Vec<(&str, String, &[u8])> = vec![
        (
            "POST",
            format!("{base}/{bucket}?delete"),
            b"<Delete><Object>".as_slice(),
        ),
        ("POST", format!("{base}/{bucket}/k?uploadId=nope"), b"<<<<".as_slice()),
        (
            "PUT",
            format!("{base}/{bucket}/k?partNumber=abc&uploadId=x"),
            b"x".as_slice(),
        ),
        (
            "GET",
            format!("{base}/{bucket}?list-type=2&max-keys=banana"),
            b"".as_slice(),
        ),
        ("PUT", format!("{base}/{bucket}/k"), b"body without auth".as_slice()),
    ];
    for (method, url, body) in requests {
        let r = raw_request(method, &url, &[("content-type", "application/xml")], body.to_vec()).await;
        r.assert_xml_client_error();
    }
    server_still_serves(&server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_such_key_on_get_and_head() {
    let (server, client, bucket) = TestServer::with_bucket("nokey").await;
    let info = expect_error(
        client.get_object().bucket(&bucket).key("missing/key").send().await,
        404,
        "NoSuchKey",
    );
    assert!(info.message.is_some(), "NoSuchKey without a Message");
    expect_status(
        client.head_object().bucket(&bucket).key("missing/key").send().await,
        404,
    );

    // HEAD's 404 has no body; GET's has an XML error naming the key's resource.
    let head = SignedRequest::new("HEAD", format!("/{bucket}/missing/key"))
        .send(&server)
        .await;
    assert_eq!(head.status, 404);
    assert!(head.body.is_empty(), "HEAD 404 with a body: {:?}", head.text());
    let get = SignedRequest::new("GET", format!("/{bucket}/missing/key"))
        .send(&server)
        .await;
    assert_eq!(get.status, 404);
    assert_eq!(get.error_code().as_deref(), Some("NoSuchKey"));
    assert!(
        get.header("content-type").is_some_and(|ct| ct.contains("xml")),
        "error Content-Type {:?}",
        get.header("content-type")
    );
    // A request id for support correlation.
    assert!(
        get.header("x-amz-request-id").is_some(),
        "no x-amz-request-id on an error"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncated_upload_is_not_visible() {
    let (server, client, bucket) = TestServer::with_bucket("truncated").await;
    put(&client, &bucket, "existing", b"previous".to_vec()).await;

    for key in ["fresh", "existing"] {
        // Sign a 64 KiB body, announce it, send a tenth, and hang up.
        let body = random_bytes(64 * 1024, 9);
        let req = SignedRequest::new("PUT", format!("/{bucket}/{key}"))
            .body(body.clone())
            .build(&server);
        let mut head = format!("PUT {} HTTP/1.1\r\n", req.uri().path());
        for (name, value) in req.headers() {
            head.push_str(&format!("{}: {}\r\n", name, value.to_str().unwrap()));
        }
        if !req.headers().contains_key("host") {
            head.push_str(&format!("host: 127.0.0.1:{}\r\n", server.port()));
        }
        head.push_str(&format!("content-length: {}\r\n\r\n", body.len()));
        let mut bytes = head.into_bytes();
        bytes.extend_from_slice(&body[..body.len() / 10]);
        raw_tcp(&server, &bytes, true, Duration::from_secs(10)).await;
    }
    expect_error(
        client.get_object().bucket(&bucket).key("fresh").send().await,
        404,
        "NoSuchKey",
    );
    assert_eq!(
        get_bytes(&client, &bucket, "existing").await,
        b"previous",
        "a truncated upload replaced an object"
    );
    assert_eq!(list_all_keys(&client, &bucket).await, vec!["existing".to_string()]);
    server_still_serves(&server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_survives_garbage() {
    let (mut server, client, bucket) = TestServer::with_bucket("garbage").await;
    let wait = Duration::from_secs(5);
    let host = format!("127.0.0.1:{}", server.port());

    let junk: Vec<Vec<u8>> = vec![
        b"\x00\x01\x02 not http at all\r\n\r\n".to_vec(),
        b"GET".to_vec(),
        format!("GET /{bucket}/%ZZ%%bad HTTP/1.1\r\nHost: {host}\r\n\r\n").into_bytes(),
        format!("GET /{bucket}/k HTTP/1.1\r\nHost: {host}\r\nX-Big: {}\r\n\r\n", "a".repeat(200 * 1024)).into_bytes(),
        format!("BREW /{bucket} HTTP/1.1\r\nHost: {host}\r\n\r\n").into_bytes(),
        format!("PUT /{bucket}/k HTTP/1.1\r\nHost: {host}\r\nContent-Length: -5\r\n\r\n").into_bytes(),
        format!("PUT /{bucket}/k HTTP/1.1\r\nHost: {host}\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nnope\r\n").into_bytes(),
        format!("GET /{bucket}?list-type=2&prefix=%FF%FE HTTP/1.1\r\nHost: {host}\r\n\r\n").into_bytes(),
        format!(
            "GET /{bucket}/k HTTP/1.1\r\nHost: {host}\r\nAuthorization: AWS4-HMAC-SHA256 Credential=/,SignedHeaders=,Signature=\r\n\r\n"
        )
        .into_bytes(),
        format!("GET /{bucket}/k HTTP/1.1\r\nHost: {host}\r\nAuthorization: AWS onlyonepart\r\n\r\n").into_bytes(),
    ];
    for bytes in &junk {
        let reply = raw_tcp(&server, bytes, true, wait).await;
        let text = String::from_utf8_lossy(&reply);
        // Whatever the answer is, it is not a server error (501 Not Implemented is the
        // proper answer to an unknown method).
        assert!(
            !text.starts_with("HTTP/1.1 5") || text.starts_with("HTTP/1.1 501"),
            "garbage {:?} got a 5xx: {}",
            String::from_utf8_lossy(&bytes[..bytes.len().min(80)]),
            &text[..text.len().min(300)]
        );
        server.assert_alive();
    }
    // Many connections opened and dropped without a byte.
    for _ in 0..50 {
        drop(
            tokio::net::TcpStream::connect(("127.0.0.1", server.port()))
                .await
                .expect("connect"),
        );
    }
    server.assert_alive();
    server_still_serves(&server).await;
    put(&client, &bucket, "still-works", b"yes".to_vec()).await;
    assert_eq!(get_bytes(&client, &bucket, "still-works").await, b"yes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_endpoint() {
    let server = TestServer::start();
    let r = raw_request("GET", &format!("{}/_strata/health", server.endpoint()), &[], Vec::new()).await;
    assert_eq!(r.status, 200, "health: {}", r.text());
    // No bucket can shadow it: `_strata` is not a valid bucket name.
    let client = server.client();
    expect_error(
        client.create_bucket().bucket("_strata").send().await,
        400,
        "InvalidBucketName",
    );
    assert_eq!(server.health_status().await, 200);
}

/// Health check passes and a signed S3 request still works.
async fn server_still_serves(server: &TestServer) {
    assert_eq!(server.health_status().await, 200, "health check failed after bad input");
    ok(
        server.client().list_buckets().send().await,
        "ListBuckets after bad input",
    );
}
