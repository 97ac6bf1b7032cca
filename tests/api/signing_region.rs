//! The signing region (`src/signing_region.rs`): `US` is us-east-1 on a us-east-1 server (put,
//! get, list, multipart, presigned GET through aws-sdk-s3 configured with region `US`), any other
//! region gets AWS's 400 with the region to use, and nothing unverifiable is accepted.

use std::time::Duration;

use aws_sdk_s3::config::{Region, RequestChecksumCalculation};
use aws_sdk_s3::presigning::{PresignedRequest, PresigningConfig};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use aws_sdk_s3::Client;

use crate::fixtures::*;

fn with_region(client: &Client, region: &'static str) -> Client {
    Client::from_conf(client.config().to_builder().region(Region::new(region)).build())
}

async fn fetch(presigned: &PresignedRequest) -> RawResponse {
    let headers: Vec<(&str, &str)> = presigned.headers().collect();
    raw_request(presigned.method(), presigned.uri(), &headers, Vec::new()).await
}

/// The server's signing_region debug lines, without colour codes.
fn resign_log(server: &TestServer) -> String {
    let log = server.stderr_log();
    let mut plain = String::new();
    let mut chars = log.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // ESC [ … m
            for c in chars.by_ref() {
                if c == 'm' {
                    break;
                }
            }
        } else {
            plain.push(c);
        }
    }
    plain
        .lines()
        .filter(|l| l.contains("signing_region"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The raw body of a failed SDK call.
fn raw_body<E>(err: &aws_sdk_s3::error::SdkError<E, aws_sdk_s3::config::http::HttpResponse>) -> String {
    let raw = err.raw_response().expect("the server answered");
    String::from_utf8_lossy(raw.body().bytes().expect("an in-memory error body")).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_with_region_us_works_against_us_east_1() {
    let server = TestServer::start_with(ServerOptions {
        rust_log: "warn,strata::http::signing_region=debug".into(),
        capture_stderr: true,
        ..ServerOptions::default()
    });
    let us = with_region(&server.client(), "US");
    let bucket = new_bucket(&us, "us-alias").await;

    // PutObject with the SDK's default checksums: an in-memory body is signed with its
    // SHA-256 (the CRC goes in a header). Streamed bodies: `sdk_file_uploads_with_region_us`.
    let body = random_bytes(300_000, 1);
    let etag = put(&us, &bucket, "dir/a key+é.bin", body.clone()).await;
    assert_eq!(etag, etag_of(&body));
    assert_eq!(get_bytes(&us, &bucket, "dir/a key+é.bin").await, body);
    let log = resign_log(&server);
    assert!(
        log.contains("re-signed") && log.contains("payload=sha256"),
        "the in-memory PutObject body was hashed and re-signed:\n{log}"
    );
    // A small body (inline) and a hex-hashed payload (checksums only when required).
    let hashed = Client::from_conf(
        us.config()
            .to_builder()
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .build(),
    );
    put(&hashed, &bucket, "small", b"tiny".to_vec()).await;
    assert_eq!(get_bytes(&us, &bucket, "small").await, b"tiny");

    let listed = ok(
        us.list_objects_v2().bucket(&bucket).prefix("dir/").send().await,
        "ListObjectsV2 with region US",
    );
    let keys: Vec<_> = listed.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(keys, vec!["dir/a key+é.bin"]);
    let buckets = ok(us.list_buckets().send().await, "ListBuckets with region US");
    assert!(buckets.buckets().iter().any(|b| b.name() == Some(bucket.as_str())));

    // Multipart: 5 MiB + a small last part.
    let parts = [random_bytes(5 * MIB, 2), random_bytes(1000, 3)];
    let created = ok(
        us.create_multipart_upload().bucket(&bucket).key("mp").send().await,
        "CreateMultipartUpload",
    );
    let id = created.upload_id().expect("upload id").to_string();
    let mut done = Vec::new();
    for (i, p) in parts.iter().enumerate() {
        let n = i as i32 + 1;
        let out = ok(
            us.upload_part()
                .bucket(&bucket)
                .key("mp")
                .upload_id(&id)
                .part_number(n)
                .body(ByteStream::from(p.clone()))
                .send()
                .await,
            "UploadPart with region US",
        );
        let mut part = CompletedPart::builder().part_number(n).e_tag(out.e_tag().unwrap());
        if let Some(crc) = out.checksum_crc32() {
            part = part.checksum_crc32(crc);
        }
        done.push(part.build());
    }
    let out = ok(
        us.complete_multipart_upload()
            .bucket(&bucket)
            .key("mp")
            .upload_id(&id)
            .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(done)).build())
            .send()
            .await,
        "CompleteMultipartUpload with region US",
    );
    assert_eq!(out.e_tag(), Some(multipart_etag(&[&parts[0], &parts[1]]).as_str()));
    assert_eq!(
        get_bytes(&us, &bucket, "mp").await,
        [parts[0].clone(), parts[1].clone()].concat()
    );

    // A presigned GET signed for US, fetched by a plain HTTP client.
    let presigned = us
        .get_object()
        .bucket(&bucket)
        .key("dir/a key+é.bin")
        .presigned(PresigningConfig::expires_in(Duration::from_secs(600)).unwrap())
        .await
        .expect("presign");
    assert!(
        presigned.uri().contains("%2FUS%2Fs3%2Faws4_request"),
        "{}",
        presigned.uri()
    );
    let r = fetch(&presigned).await;
    assert_eq!(r.status, 200, "presigned GET with region US: {}", r.text());
    assert!(r.body.as_ref() == body.as_slice(), "presigned GET bytes differ");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_region_gets_awss_answer_with_the_region_to_use() {
    let (_server, client, bucket) = TestServer::with_bucket("wrong-region").await;
    put(&client, &bucket, "k", b"v".to_vec()).await;
    let eu = with_region(&client, "eu-west-1");

    // Header-signed.
    let err = eu
        .get_object()
        .bucket(&bucket)
        .key("k")
        .send()
        .await
        .expect_err("eu-west-1 signature");
    let info = err_info(&err);
    assert_eq!(
        (info.status, info.code.as_deref()),
        (400, Some("AuthorizationHeaderMalformed")),
        "{info:?}"
    );
    let body = raw_body(&err);
    assert!(
        body.contains(
            "<Message>The authorization header is malformed; the region &apos;eu-west-1&apos; is wrong; \
             expecting &apos;us-east-1&apos;</Message>"
        ) || body.contains(
            "<Message>The authorization header is malformed; the region 'eu-west-1' is wrong; expecting 'us-east-1'</Message>"
        ),
        "{body}"
    );
    assert!(body.contains("<Region>us-east-1</Region>"), "{body}");
    let request_id = err
        .raw_response()
        .and_then(|r| r.headers().get("x-amz-request-id"))
        .expect("x-amz-request-id")
        .to_string();
    assert!(body.contains(&format!("<RequestId>{request_id}</RequestId>")), "{body}");
    // Writes too, before anything is stored.
    let err = eu
        .put_object()
        .bucket(&bucket)
        .key("new")
        .body(ByteStream::from_static(b"x"))
        .send()
        .await
        .expect_err("eu-west-1 PUT");
    assert_eq!(err_info(&err).code.as_deref(), Some("AuthorizationHeaderMalformed"));
    assert_eq!(list_all_keys(&client, &bucket).await, vec!["k".to_string()]);

    // Presigned, fetched with a plain HTTP client.
    let presigned = eu
        .get_object()
        .bucket(&bucket)
        .key("k")
        .presigned(PresigningConfig::expires_in(Duration::from_secs(600)).unwrap())
        .await
        .unwrap();
    let r = fetch(&presigned).await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(
        r.error_code().as_deref(),
        Some("AuthorizationQueryParametersError"),
        "{}",
        r.text()
    );
    let text = r.text().replace("&apos;", "'");
    assert!(
        text.contains(
            "<Message>Error parsing the X-Amz-Credential parameter; the region 'eu-west-1' is wrong; expecting 'us-east-1'</Message>"
        ),
        "{text}"
    );
    assert!(text.contains("<Region>us-east-1</Region>"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn region_us_with_a_wrong_secret_or_unknown_key_is_refused() {
    let (server, client, bucket) = TestServer::with_bucket("us-bad-secret").await;
    put(&client, &bucket, "k", b"secret bytes".to_vec()).await;

    for (ak, sk) in [
        (ROOT_ACCESS_KEY, "not-the-root-secret-0123456789abcdefghij"),
        ("SKNOSUCHKEY000000000", ROOT_SECRET_KEY),
    ] {
        let us = with_region(&server.client_with(ak, sk), "US");
        let err = us
            .get_object()
            .bucket(&bucket)
            .key("k")
            .send()
            .await
            .expect_err("wrong secret");
        let info = err_info(&err);
        assert!(
            (400..500).contains(&info.status) && info.status != 404,
            "a US request with a bad secret must be refused: {info:?}"
        );
        assert_eq!(info.code.as_deref(), Some("AuthorizationHeaderMalformed"), "{info:?}");
        assert!(raw_body(&err).contains("<Region>us-east-1</Region>"));
        let err = us
            .put_object()
            .bucket(&bucket)
            .key("k")
            .body(ByteStream::from_static(b"overwritten"))
            .send()
            .await
            .expect_err("wrong secret PUT");
        assert!((400..500).contains(&err_info(&err).status), "{:?}", err_info(&err));

        let presigned = us
            .get_object()
            .bucket(&bucket)
            .key("k")
            .presigned(PresigningConfig::expires_in(Duration::from_secs(600)).unwrap())
            .await
            .unwrap();
        let r = fetch(&presigned).await;
        assert!(
            r.status == 400 || r.status == 403,
            "presigned US with a bad secret: {} {}",
            r.status,
            r.text()
        );
        assert!(!r.text().contains("secret bytes"));
    }
    assert_eq!(get_bytes(&client, &bucket, "k").await, b"secret bytes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn region_us_resigning_keeps_the_payload_hash_checked() {
    let (server, client, bucket) = TestServer::with_bucket("us-hash").await;

    // A correct hand-signed US PUT with a hex payload hash is accepted...
    let r = SignedRequest::new("PUT", format!("/{bucket}/ok"))
        .region("US")
        .body(b"signed body".to_vec())
        .send(&server)
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(get_bytes(&client, &bucket, "ok").await, b"signed body");

    // ...but a body that is not the one signed is not, though the signature verifies.
    let r = SignedRequest::new("PUT", format!("/{bucket}/swapped"))
        .region("US")
        .body(b"signed body".to_vec())
        .send_tampered(&server, |req| {
            *req.body_mut() = http_body_util::Full::new(bytes::Bytes::from_static(b"other body!"));
        })
        .await;
    assert!(
        (400..500).contains(&r.status),
        "a swapped body must be refused: {} {}",
        r.status,
        r.text()
    );
    // ...and neither is a request whose signed header changed after signing.
    let r = SignedRequest::new("PUT", format!("/{bucket}/meta"))
        .region("US")
        .header("x-amz-meta-color", "blue")
        .body(b"m".to_vec())
        .send_tampered(&server, |req| {
            req.headers_mut().insert("x-amz-meta-color", "red".parse().unwrap());
        })
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(r.error_code().as_deref(), Some("AuthorizationHeaderMalformed"));
    assert_eq!(list_all_keys(&client, &bucket).await, vec!["ok".to_string()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_in_eu_west_1_refuses_us() {
    let server = TestServer::start_with(ServerOptions {
        config_toml: Some("region = \"eu-west-1\"\n".into()),
        ..ServerOptions::default()
    });
    let eu = with_region(&server.client(), "eu-west-1");
    ok(eu.list_buckets().send().await, "ListBuckets in the server's region");

    for region in ["US", "us-east-1"] {
        let other = with_region(&server.client(), region);
        let err = other.list_buckets().send().await.expect_err("not the server's region");
        let info = err_info(&err);
        assert_eq!(
            (info.status, info.code.as_deref()),
            (400, Some("AuthorizationHeaderMalformed")),
            "{region}: {info:?}"
        );
        let body = raw_body(&err);
        assert!(body.contains("<Region>eu-west-1</Region>"), "{region}: {body}");
    }
}

/// A streamed body (a file) goes up aws-chunked with a CRC trailer. Over HTTPS the SDK sends
/// it as STREAMING-UNSIGNED-PAYLOAD-TRAILER, which is re-signed and accepted with region US;
/// over plain HTTP it signs every chunk (STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER), whose
/// chain of chunk signatures cannot be re-signed: refused with the us-east-1 hint (the SDK
/// does not follow it; configure it with us-east-1).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_file_uploads_with_region_us() {
    let body = random_bytes(300_000, 7);
    let file = tempfile::NamedTempFile::new().expect("temp file");
    std::fs::write(file.path(), &body).expect("write temp file");
    for tls in [true, false] {
        let server = TestServer::start_with(ServerOptions {
            rust_log: "warn,strata::http::signing_region=debug".into(),
            capture_stderr: true,
            tls,
            ..ServerOptions::default()
        });
        let us = with_region(&server.client(), "US");
        let bucket = new_bucket(&us, "us-file").await;
        let result = us
            .put_object()
            .bucket(&bucket)
            .key("streamed")
            .body(ByteStream::from_path(file.path()).await.expect("file body"))
            .send()
            .await;
        let log = resign_log(&server);
        if tls {
            let out = result.unwrap_or_else(|e| panic!("PutObject of a file over HTTPS: {}\n{log}", describe(&e)));
            assert_eq!(out.e_tag(), Some(etag_of(&body).as_str()));
            assert_eq!(get_bytes(&us, &bucket, "streamed").await, body);
            assert!(
                log.contains("re-signed") && log.contains("payload=STREAMING-UNSIGNED-PAYLOAD-TRAILER"),
                "{log}"
            );
        } else {
            let err = result.expect_err("signed streaming with region US");
            let info = err_info(&err);
            assert_eq!(
                (info.status, info.code.as_deref()),
                (400, Some("AuthorizationHeaderMalformed")),
                "{info:?}"
            );
            assert!(raw_body(&err).contains("<Region>us-east-1</Region>"));
            assert!(
                log.contains("not accepted") && log.contains("payload=STREAMING-AWS4-HMAC-SHA256-PAYLOAD"),
                "{log}"
            );
            assert!(list_all_keys(&server.client(), &bucket).await.is_empty());
            // The same upload signed for us-east-1 works.
            let east = with_region(&server.client(), "us-east-1");
            let out = ok(
                east.put_object()
                    .bucket(&bucket)
                    .key("streamed")
                    .body(ByteStream::from_path(file.path()).await.expect("file body"))
                    .send()
                    .await,
                "PutObject of a file with us-east-1",
            );
            assert_eq!(out.e_tag(), Some(etag_of(&body).as_str()));
        }
    }
}
