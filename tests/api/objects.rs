//! Objects: Put/Get/Head/Delete, metadata and content headers, odd keys and key length, sizes
//! and ETags, Range GETs, response-* overrides, partNumber on simple objects, DeleteObjects,
//! the user-metadata limit, and concurrent overwrites of one key.

use std::collections::HashSet;

use aws_sdk_s3::primitives::{ByteStream, DateTime, DateTimeFormat};
use aws_sdk_s3::types::{Delete, ObjectIdentifier};

use crate::fixtures::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_get_head_delete_roundtrip() {
    let (_server, client, bucket) = TestServer::with_bucket("basic").await;
    let body = b"hello, strata".to_vec();

    let etag = put(&client, &bucket, "greeting.txt", body.clone()).await;
    assert_eq!(etag, etag_of(&body));

    let got = ok(
        client.get_object().bucket(&bucket).key("greeting.txt").send().await,
        "GetObject",
    );
    assert_eq!(got.e_tag(), Some(etag.as_str()));
    assert_eq!(got.content_length(), Some(body.len() as i64));
    assert!(got.last_modified().is_some(), "GetObject has no Last-Modified");
    assert_eq!(got.body.collect().await.unwrap().into_bytes().as_ref(), body.as_slice());

    let head = ok(
        client.head_object().bucket(&bucket).key("greeting.txt").send().await,
        "HeadObject",
    );
    assert_eq!(head.e_tag(), Some(etag.as_str()));
    assert_eq!(head.content_length(), Some(body.len() as i64));

    ok(
        client.delete_object().bucket(&bucket).key("greeting.txt").send().await,
        "DeleteObject",
    );
    expect_error(
        client.get_object().bucket(&bucket).key("greeting.txt").send().await,
        404,
        "NoSuchKey",
    );
    expect_status(
        client.head_object().bucket(&bucket).key("greeting.txt").send().await,
        404,
    );
    // Deleting what is not there succeeds (204), as in S3.
    ok(
        client.delete_object().bucket(&bucket).key("greeting.txt").send().await,
        "DeleteObject of missing key",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overwrite_replaces_bytes_and_metadata() {
    let (_server, client, bucket) = TestServer::with_bucket("overwrite").await;
    ok(
        client
            .put_object()
            .bucket(&bucket)
            .key("k")
            .body(b"first version".to_vec().into())
            .metadata("gen", "1")
            .content_type("text/plain")
            .send()
            .await,
        "first put",
    );
    let second = random_bytes(3000, 7);
    ok(
        client
            .put_object()
            .bucket(&bucket)
            .key("k")
            .body(second.clone().into())
            .send()
            .await,
        "second put",
    );
    let got = ok(client.get_object().bucket(&bucket).key("k").send().await, "GetObject");
    assert!(
        got.metadata().is_none_or(|m| m.is_empty()),
        "old metadata survived an overwrite: {:?}",
        got.metadata()
    );
    assert_ne!(
        got.content_type(),
        Some("text/plain"),
        "old Content-Type survived an overwrite"
    );
    assert_eq!(got.e_tag(), Some(etag_of(&second).as_str()));
    assert_eq!(
        got.body.collect().await.unwrap().into_bytes().as_ref(),
        second.as_slice()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_and_content_headers_roundtrip() {
    let (_server, client, bucket) = TestServer::with_bucket("meta").await;
    let expires = DateTime::from_secs(1_900_000_000);
    ok(
        client
            .put_object()
            .bucket(&bucket)
            .key("doc")
            .body(b"%PDF-ish".to_vec().into())
            .metadata("color", "blue")
            .metadata("Multi-Word", "Hello World")
            .content_type("application/pdf")
            .content_encoding("gzip")
            .content_disposition("attachment; filename=\"report.pdf\"")
            .content_language("de-DE")
            .cache_control("max-age=3600, private")
            .expires(expires)
            .send()
            .await,
        "PutObject with headers",
    );

    let get = ok(client.get_object().bucket(&bucket).key("doc").send().await, "GetObject");
    let head = ok(
        client.head_object().bucket(&bucket).key("doc").send().await,
        "HeadObject",
    );
    for (what, meta, ctype, cenc, cdisp, clang, cc, exp) in [
        (
            "GET",
            get.metadata(),
            get.content_type(),
            get.content_encoding(),
            get.content_disposition(),
            get.content_language(),
            get.cache_control(),
            get.expires_string(),
        ),
        (
            "HEAD",
            head.metadata(),
            head.content_type(),
            head.content_encoding(),
            head.content_disposition(),
            head.content_language(),
            head.cache_control(),
            head.expires_string(),
        ),
    ] {
        let meta = meta.unwrap_or_else(|| panic!("{what}: no user metadata"));
        assert_eq!(
            meta.get("color").map(String::as_str),
            Some("blue"),
            "{what} metadata {meta:?}"
        );
        // Metadata names are case-insensitive and come back lower-cased.
        assert_eq!(
            meta.get("multi-word").map(String::as_str),
            Some("Hello World"),
            "{what} metadata {meta:?}"
        );
        assert_eq!(meta.len(), 2, "{what} metadata {meta:?}");
        assert_eq!(ctype, Some("application/pdf"), "{what} Content-Type");
        assert_eq!(cenc, Some("gzip"), "{what} Content-Encoding");
        assert_eq!(
            cdisp,
            Some("attachment; filename=\"report.pdf\""),
            "{what} Content-Disposition"
        );
        assert_eq!(clang, Some("de-DE"), "{what} Content-Language");
        assert_eq!(cc, Some("max-age=3600, private"), "{what} Cache-Control");
        let exp = exp.unwrap_or_else(|| panic!("{what}: no Expires"));
        let parsed = DateTime::from_str(exp, DateTimeFormat::HttpDate)
            .unwrap_or_else(|e| panic!("{what}: Expires {exp:?} is not an HTTP date: {e}"));
        assert_eq!(parsed.secs(), expires.secs(), "{what} Expires {exp:?}");
    }
    // The body is served as stored (no transparent decoding of Content-Encoding).
    assert_eq!(get.body.collect().await.unwrap().into_bytes().as_ref(), b"%PDF-ish");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_content_type_is_binary() {
    let (_server, client, bucket) = TestServer::with_bucket("ctype").await;
    // The SDK sends no Content-Type unless asked; S3 then stores binary/octet-stream
    // (some servers use application/octet-stream; both mean "unknown binary").
    put(&client, &bucket, "blob", vec![1u8, 2, 3]).await;
    let head = ok(
        client.head_object().bucket(&bucket).key("blob").send().await,
        "HeadObject",
    );
    let ctype = head.content_type().unwrap_or("");
    assert!(
        ctype == "binary/octet-stream" || ctype == "application/octet-stream",
        "default Content-Type {ctype:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn odd_and_hostile_keys_are_stored_literally() {
    let (_server, client, bucket) = TestServer::with_bucket("keys").await;
    let keys = [
        "../a",
        "../../etc/passwd",
        "a//b",
        "a/./b",
        "a/../b",
        "/leading-slash",
        "trailing-slash/",
        "%",
        "%2F",
        "a b",
        "plus+sign",
        "q?x=1&y=2",
        "#fragment",
        "semi;colon,comma",
        "tilde~and'quote\"",
        "back\\slash",
        "émoji-😀/日本語",
        "_strata/health",
    ];
    for (i, key) in keys.iter().enumerate() {
        let body = format!("body of {i}: {key}").into_bytes();
        put(&client, &bucket, key, body).await;
    }
    for (i, key) in keys.iter().enumerate() {
        let want = format!("body of {i}: {key}").into_bytes();
        assert_eq!(get_bytes(&client, &bucket, key).await, want, "GET {key:?}");
        let head = ok(
            client.head_object().bucket(&bucket).key(*key).send().await,
            &format!("HEAD {key:?}"),
        );
        assert_eq!(head.content_length(), Some(want.len() as i64), "HEAD {key:?}");
    }
    // Listed exactly, in byte order, and nothing escaped the bucket.
    let mut want: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
    want.sort();
    assert_eq!(list_all_keys(&client, &bucket).await, want);
    let listed = ok(client.list_buckets().send().await, "ListBuckets");
    assert_eq!(
        listed.buckets().len(),
        1,
        "a key created a bucket: {:?}",
        listed.buckets()
    );

    for key in keys {
        ok(
            client.delete_object().bucket(&bucket).key(key).send().await,
            &format!("DELETE {key:?}"),
        );
    }
    assert!(
        list_all_keys(&client, &bucket).await.is_empty(),
        "keys left after deleting all"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_length_limit() {
    let (_server, client, bucket) = TestServer::with_bucket("keylen").await;
    let longest = "k".repeat(1024);
    put(&client, &bucket, &longest, b"ok".to_vec()).await;
    assert_eq!(get_bytes(&client, &bucket, &longest).await, b"ok");
    // The limit is in bytes of UTF-8: 1023 ASCII + one 2-byte char = 1025 bytes.
    let too_long = "k".repeat(1025);
    let too_long_utf8 = format!("{}é", "k".repeat(1023));
    for key in [too_long, too_long_utf8] {
        expect_error(
            client
                .put_object()
                .bucket(&bucket)
                .key(&key)
                .body(b"no".to_vec().into())
                .send()
                .await,
            400,
            "KeyTooLongError",
        );
    }
    assert_eq!(list_all_keys(&client, &bucket).await, vec![longest]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sizes_and_etags() {
    let (_server, client, bucket) = TestServer::with_bucket("sizes").await;
    for (i, size) in [0usize, 1, 8 * 1024, 100 * 1024, 10 * MIB].into_iter().enumerate() {
        let body = random_bytes(size, i as u64);
        let key = format!("obj-{size}");
        let etag = put(&client, &bucket, &key, body.clone()).await;
        assert_eq!(etag, etag_of(&body), "PutObject ETag for {size} bytes");
        let got = ok(client.get_object().bucket(&bucket).key(&key).send().await, "GetObject");
        assert_eq!(
            got.e_tag(),
            Some(etag_of(&body).as_str()),
            "GetObject ETag for {size} bytes"
        );
        assert_eq!(
            got.content_length(),
            Some(size as i64),
            "Content-Length for {size} bytes"
        );
        let bytes = got.body.collect().await.unwrap().into_bytes();
        assert_eq!(bytes.len(), size, "body length for {size} bytes");
        assert!(bytes.as_ref() == body.as_slice(), "body differs for {size} bytes");
    }
    // The empty object has the MD5 of nothing.
    let head = ok(
        client.head_object().bucket(&bucket).key("obj-0").send().await,
        "HeadObject",
    );
    assert_eq!(head.e_tag(), Some("\"d41d8cd98f00b204e9800998ecf8427e\""));
    assert_eq!(head.content_length(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streaming_upload_of_unknown_shape() {
    // A body from a file is sent by the SDK as a streaming (aws-chunked) upload.
    let (_server, client, bucket) = TestServer::with_bucket("stream").await;
    let body = random_bytes(3 * MIB + 17, 99);
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), &body).unwrap();
    let stream = ByteStream::from_path(file.path()).await.unwrap();
    let out = ok(
        client
            .put_object()
            .bucket(&bucket)
            .key("from-file")
            .body(stream)
            .send()
            .await,
        "PutObject",
    );
    assert_eq!(out.e_tag(), Some(etag_of(&body).as_str()));
    assert!(
        get_bytes(&client, &bucket, "from-file").await == body,
        "streamed body differs"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn range_gets() {
    let (server, client, bucket) = TestServer::with_bucket("range").await;
    let body: Vec<u8> = (0..100u8).collect();
    let etag = put(&client, &bucket, "r", body.clone()).await;

    let cases: [(&str, std::ops::Range<usize>); 5] = [
        ("bytes=0-9", 0..10),
        ("bytes=-5", 95..100),
        ("bytes=10-", 10..100),
        ("bytes=95-500", 95..100),
        ("bytes=42-42", 42..43),
    ];
    for (range, want) in cases {
        let got = ok(
            client.get_object().bucket(&bucket).key("r").range(range).send().await,
            range,
        );
        assert_eq!(
            got.content_range(),
            Some(format!("bytes {}-{}/100", want.start, want.end - 1).as_str()),
            "Content-Range for {range}"
        );
        assert_eq!(
            got.content_length(),
            Some(want.len() as i64),
            "Content-Length for {range}"
        );
        assert_eq!(
            got.e_tag(),
            Some(etag.as_str()),
            "a range GET carries the object's ETag"
        );
        assert_eq!(
            got.body.collect().await.unwrap().into_bytes().as_ref(),
            &body[want.clone()],
            "body for {range}"
        );
    }

    for range in ["bytes=100-", "bytes=100-200", "bytes=1000-2000"] {
        expect_error(
            client.get_object().bucket(&bucket).key("r").range(range).send().await,
            416,
            "InvalidRange",
        );
    }

    // The status line of a satisfiable range is 206.
    let signed = SignedRequest::new("GET", format!("/{bucket}/r"))
        .header("range", "bytes=0-9")
        .send(&server)
        .await;
    assert_eq!(signed.status, 206, "range GET status: {}", signed.text());
    assert_eq!(signed.body.as_ref(), &body[..10]);
    assert_eq!(signed.header("accept-ranges"), Some("bytes"), "Accept-Ranges");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn response_header_overrides() {
    let (_server, client, bucket) = TestServer::with_bucket("override").await;
    ok(
        client
            .put_object()
            .bucket(&bucket)
            .key("o")
            .body(b"data".to_vec().into())
            .content_type("text/plain")
            .cache_control("no-cache")
            .send()
            .await,
        "PutObject",
    );
    let expires = DateTime::from_secs(2_000_000_000);
    let got = ok(
        client
            .get_object()
            .bucket(&bucket)
            .key("o")
            .response_content_type("application/x-override")
            .response_content_disposition("attachment; filename=\"x.bin\"")
            .response_content_encoding("identity")
            .response_content_language("fr")
            .response_cache_control("max-age=5")
            .response_expires(expires)
            .send()
            .await,
        "GetObject with response-* overrides",
    );
    assert_eq!(got.content_type(), Some("application/x-override"));
    assert_eq!(got.content_disposition(), Some("attachment; filename=\"x.bin\""));
    assert_eq!(got.content_encoding(), Some("identity"));
    assert_eq!(got.content_language(), Some("fr"));
    assert_eq!(got.cache_control(), Some("max-age=5"));
    let exp = got.expires_string().expect("no Expires with response-expires");
    assert_eq!(
        DateTime::from_str(exp, DateTimeFormat::HttpDate).map(|d| d.secs()).ok(),
        Some(expires.secs())
    );
    assert_eq!(got.body.collect().await.unwrap().into_bytes().as_ref(), b"data");

    // Overrides do not change what is stored.
    let head = ok(client.head_object().bucket(&bucket).key("o").send().await, "HeadObject");
    assert_eq!(head.content_type(), Some("text/plain"));
    assert_eq!(head.cache_control(), Some("no-cache"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn part_number_on_simple_object() {
    let (_server, client, bucket) = TestServer::with_bucket("partnum").await;
    let body = random_bytes(4096, 3);
    let etag = put(&client, &bucket, "simple", body.clone()).await;
    let got = ok(
        client
            .get_object()
            .bucket(&bucket)
            .key("simple")
            .part_number(1)
            .send()
            .await,
        "GET partNumber=1",
    );
    assert_eq!(got.content_length(), Some(4096));
    assert_eq!(got.e_tag(), Some(etag.as_str()));
    assert!(
        got.parts_count().unwrap_or(1) == 1,
        "parts_count {:?} for a simple object",
        got.parts_count()
    );
    assert!(got.body.collect().await.unwrap().into_bytes().as_ref() == body.as_slice());
    let head = ok(
        client
            .head_object()
            .bucket(&bucket)
            .key("simple")
            .part_number(1)
            .send()
            .await,
        "HEAD partNumber=1",
    );
    assert_eq!(head.content_length(), Some(4096));
    // A simple object has exactly one part.
    expect_error(
        client
            .get_object()
            .bucket(&bucket)
            .key("simple")
            .part_number(2)
            .send()
            .await,
        416,
        "InvalidPartNumber",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_objects_batch() {
    let (_server, client, bucket) = TestServer::with_bucket("batch").await;
    let existing: Vec<String> = (0..500).map(|i| format!("batch/{i:04}")).collect();
    put_many(&client, &bucket, &existing).await;
    put(&client, &bucket, "keep-me", b"stay".to_vec()).await;

    // 500 that exist + 500 that never did = the 1000-key maximum.
    let mut all = existing.clone();
    all.extend((0..500).map(|i| format!("ghost/{i:04}")));
    let out = ok(
        client
            .delete_objects()
            .bucket(&bucket)
            .delete(delete_request(&all, false))
            .send()
            .await,
        "DeleteObjects",
    );
    assert!(
        out.errors().is_empty(),
        "DeleteObjects errors: {:?}",
        &out.errors()[..out.errors().len().min(5)]
    );
    let deleted: HashSet<&str> = out.deleted().iter().filter_map(|d| d.key()).collect();
    assert_eq!(
        deleted.len(),
        1000,
        "Deleted entries (missing keys are reported deleted too)"
    );
    for k in &all {
        assert!(deleted.contains(k.as_str()), "{k} not reported deleted");
    }
    assert_eq!(list_all_keys(&client, &bucket).await, vec!["keep-me".to_string()]);

    // Quiet mode reports only errors.
    let quiet_keys: Vec<String> = (0..20).map(|i| format!("quiet/{i}")).collect();
    put_many(&client, &bucket, &quiet_keys).await;
    let mut with_ghosts = quiet_keys.clone();
    with_ghosts.push("quiet/never-existed".into());
    let out = ok(
        client
            .delete_objects()
            .bucket(&bucket)
            .delete(delete_request(&with_ghosts, true))
            .send()
            .await,
        "DeleteObjects quiet",
    );
    assert!(
        out.deleted().is_empty(),
        "quiet mode returned Deleted entries: {:?}",
        out.deleted()
    );
    assert!(
        out.errors().is_empty(),
        "quiet DeleteObjects errors: {:?}",
        out.errors()
    );
    assert_eq!(list_all_keys(&client, &bucket).await, vec!["keep-me".to_string()]);

    // More than 1000 keys in one request is refused and deletes nothing.
    let too_many: Vec<String> = (0..1001).map(|i| format!("x/{i}")).collect();
    let mut too_many_with_real = too_many.clone();
    too_many_with_real[0] = "keep-me".into();
    expect_error(
        client
            .delete_objects()
            .bucket(&bucket)
            .delete(delete_request(&too_many_with_real, false))
            .send()
            .await,
        400,
        "MalformedXML",
    );
    assert_eq!(get_bytes(&client, &bucket, "keep-me").await, b"stay");
}

pub fn delete_request(keys: &[String], quiet: bool) -> Delete {
    let objects = keys
        .iter()
        .map(|k| ObjectIdentifier::builder().key(k).build().unwrap())
        .collect::<Vec<_>>();
    Delete::builder()
        .set_objects(Some(objects))
        .quiet(quiet)
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_metadata_limit() {
    let (_server, client, bucket) = TestServer::with_bucket("metalimit").await;
    // S3 counts the UTF-8 bytes of names + values; 2 KiB is the limit.
    let fits = "v".repeat(1900);
    ok(
        client
            .put_object()
            .bucket(&bucket)
            .key("fits")
            .metadata("big", &fits)
            .body(b"x".to_vec().into())
            .send()
            .await,
        "PutObject with just under 2 KiB of metadata",
    );
    let too_big = "v".repeat(2100);
    expect_error(
        client
            .put_object()
            .bucket(&bucket)
            .key("too-big")
            .metadata("big", &too_big)
            .body(b"x".to_vec().into())
            .send()
            .await,
        400,
        "MetadataTooLarge",
    );
    // Spread over many headers counts too.
    let mut req = client
        .put_object()
        .bucket(&bucket)
        .key("too-many")
        .body(b"x".to_vec().into());
    for i in 0..30 {
        req = req.metadata(format!("field-{i:02}"), "y".repeat(80));
    }
    expect_error(req.send().await, 400, "MetadataTooLarge");
    assert_eq!(list_all_keys(&client, &bucket).await, vec!["fits".to_string()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_overwrites_leave_one_whole_body() {
    let (_server, client, bucket) = TestServer::with_bucket("race").await;
    let bodies: Vec<Vec<u8>> = (0..8u64)
        .map(|i| random_bytes(256 * 1024 + i as usize, 1000 + i))
        .collect();
    let mut tasks = Vec::new();
    for body in bodies.clone() {
        let client = client.clone();
        let bucket = bucket.clone();
        tasks.push(tokio::spawn(
            async move { put(&client, &bucket, "contended", body).await },
        ));
    }
    for t in tasks {
        t.await.expect("writer task panicked");
    }
    let got = ok(
        client.get_object().bucket(&bucket).key("contended").send().await,
        "GetObject",
    );
    let etag = got.e_tag().unwrap().to_string();
    let len = got.content_length();
    let bytes = got.body.collect().await.unwrap().into_bytes().to_vec();
    let winner = bodies.iter().position(|b| *b == bytes);
    let winner = winner.unwrap_or_else(|| {
        panic!(
            "the stored body ({} bytes) is none of the 8 written: torn or mixed write",
            bytes.len()
        )
    });
    assert_eq!(etag, etag_of(&bodies[winner]), "ETag does not match the surviving body");
    assert_eq!(len, Some(bodies[winner].len() as i64));
    assert_eq!(list_all_keys(&client, &bucket).await, vec!["contended".to_string()]);
}
