//! Multipart uploads: create / upload parts / complete (ETag form, bytes, partNumber GETs),
//! ListParts, ListMultipartUploads, abort, UploadPartCopy, and the completion errors
//! (EntityTooSmall, InvalidPart, InvalidPartOrder, NoSuchUpload).

use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use aws_sdk_s3::Client;

use crate::fixtures::*;

pub fn completed(parts: &[(i32, String)]) -> CompletedMultipartUpload {
    CompletedMultipartUpload::builder()
        .set_parts(Some(
            parts
                .iter()
                .map(|(n, etag)| CompletedPart::builder().part_number(*n).e_tag(etag).build())
                .collect(),
        ))
        .build()
}

pub async fn create_upload(client: &Client, bucket: &str, key: &str) -> String {
    let out = ok(
        client.create_multipart_upload().bucket(bucket).key(key).send().await,
        "CreateMultipartUpload",
    );
    assert_eq!(out.bucket(), Some(bucket));
    assert_eq!(out.key(), Some(key));
    out.upload_id().expect("no UploadId").to_string()
}

pub async fn upload_part(client: &Client, bucket: &str, key: &str, upload_id: &str, n: i32, body: &[u8]) -> String {
    let out = ok(
        client
            .upload_part()
            .bucket(bucket)
            .key(key)
            .upload_id(upload_id)
            .part_number(n)
            .body(body.to_vec().into())
            .send()
            .await,
        &format!("UploadPart {n}"),
    );
    let etag = out.e_tag().expect("UploadPart returned no ETag").to_string();
    assert_eq!(etag, etag_of(body), "part {n} ETag is the MD5 of its bytes");
    etag
}

/// The three parts of the canonical upload: 5 MiB, 5 MiB, 1 KiB.
fn three_parts() -> Vec<Vec<u8>> {
    vec![
        random_bytes(5 * MIB, 11),
        random_bytes(5 * MIB, 12),
        random_bytes(1024, 13),
    ]
}

/// Uploads and completes `parts` under `key`; returns the completed ETag.
async fn upload_object(client: &Client, bucket: &str, key: &str, parts: &[Vec<u8>]) -> String {
    let id = create_upload(client, bucket, key).await;
    let mut done = Vec::new();
    for (i, p) in parts.iter().enumerate() {
        let n = i as i32 + 1;
        done.push((n, upload_part(client, bucket, key, &id, n, p).await));
    }
    let out = ok(
        client
            .complete_multipart_upload()
            .bucket(bucket)
            .key(key)
            .upload_id(&id)
            .multipart_upload(completed(&done))
            .send()
            .await,
        "CompleteMultipartUpload",
    );
    assert_eq!(out.key(), Some(key));
    assert_eq!(out.bucket(), Some(bucket));
    out.e_tag()
        .expect("CompleteMultipartUpload returned no ETag")
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn complete_upload_etag_and_bytes() {
    let (_server, client, bucket) = TestServer::with_bucket("mpu").await;
    let parts = three_parts();
    let etag = upload_object(&client, &bucket, "big/object", &parts).await;

    let refs: Vec<&[u8]> = parts.iter().map(|p| p.as_slice()).collect();
    let want_etag = multipart_etag(&refs);
    assert!(
        etag.len() == 2 + 32 + 2 && etag.ends_with("-3\"") && etag[1..33].chars().all(|c| c.is_ascii_hexdigit()),
        "multipart ETag {etag} is not of the form \"<32 hex>-3\""
    );
    assert_eq!(etag, want_etag, "multipart ETag is md5(concat(part md5s))-3");

    let all: Vec<u8> = parts.concat();
    let got = ok(
        client.get_object().bucket(&bucket).key("big/object").send().await,
        "GetObject",
    );
    assert_eq!(got.e_tag(), Some(want_etag.as_str()));
    assert_eq!(got.content_length(), Some(all.len() as i64));
    let bytes = got.body.collect().await.unwrap().into_bytes();
    assert!(bytes.as_ref() == all.as_slice(), "multipart object bytes differ");

    // Listed with the multipart ETag and full size; no upload is left in progress.
    let listed = ok(client.list_objects_v2().bucket(&bucket).send().await, "list");
    assert_eq!(listed.contents().len(), 1);
    assert_eq!(listed.contents()[0].e_tag(), Some(want_etag.as_str()));
    assert_eq!(listed.contents()[0].size(), Some(all.len() as i64));
    let uploads = ok(
        client.list_multipart_uploads().bucket(&bucket).send().await,
        "ListMultipartUploads",
    );
    assert!(
        uploads.uploads().is_empty(),
        "completed upload still listed: {:?}",
        uploads.uploads()
    );

    // A range across the part boundary.
    let start = 5 * MIB - 10;
    let got = ok(
        client
            .get_object()
            .bucket(&bucket)
            .key("big/object")
            .range(format!("bytes={start}-{}", start + 19))
            .send()
            .await,
        "range across parts",
    );
    assert_eq!(
        got.body.collect().await.unwrap().into_bytes().as_ref(),
        &all[start..start + 20]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_by_part_number() {
    let (_server, client, bucket) = TestServer::with_bucket("mpupart").await;
    let parts = three_parts();
    let etag = upload_object(&client, &bucket, "obj", &parts).await;

    for (n, part) in parts.iter().enumerate() {
        let n = n as i32 + 1;
        let got = ok(
            client
                .get_object()
                .bucket(&bucket)
                .key("obj")
                .part_number(n)
                .send()
                .await,
            &format!("GET partNumber={n}"),
        );
        assert_eq!(got.parts_count(), Some(3), "parts_count for partNumber={n}");
        assert_eq!(
            got.content_length(),
            Some(part.len() as i64),
            "Content-Length of part {n}"
        );
        assert_eq!(got.e_tag(), Some(etag.as_str()), "a part GET carries the object's ETag");
        let offset: usize = parts[..(n - 1) as usize].iter().map(Vec::len).sum();
        let total: usize = parts.iter().map(Vec::len).sum();
        assert_eq!(
            got.content_range(),
            Some(format!("bytes {offset}-{}/{total}", offset + part.len() - 1).as_str()),
            "Content-Range of part {n}"
        );
        let bytes = got.body.collect().await.unwrap().into_bytes();
        assert!(bytes.as_ref() == part.as_slice(), "bytes of part {n} differ");
    }
    let head = ok(
        client
            .head_object()
            .bucket(&bucket)
            .key("obj")
            .part_number(2)
            .send()
            .await,
        "HEAD partNumber=2",
    );
    assert_eq!(head.parts_count(), Some(3));
    assert_eq!(head.content_length(), Some(5 * MIB as i64));
    expect_error(
        client
            .get_object()
            .bucket(&bucket)
            .key("obj")
            .part_number(4)
            .send()
            .await,
        416,
        "InvalidPartNumber",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_parts_and_uploads_then_abort() {
    let (_server, client, bucket) = TestServer::with_bucket("mpulist").await;
    let id = create_upload(&client, &bucket, "pending").await;
    let other = create_upload(&client, &bucket, "other/pending").await;
    assert_ne!(id, other, "two uploads got the same id");
    let p1 = random_bytes(5 * MIB, 21);
    let p2 = random_bytes(100, 22);
    let e1 = upload_part(&client, &bucket, "pending", &id, 1, &p1).await;
    let e2 = upload_part(&client, &bucket, "pending", &id, 2, &p2).await;
    // Re-uploading a part number replaces it.
    let p2b = random_bytes(200, 23);
    let e2b = upload_part(&client, &bucket, "pending", &id, 2, &p2b).await;
    assert_ne!(e2, e2b);

    let listed = ok(
        client
            .list_parts()
            .bucket(&bucket)
            .key("pending")
            .upload_id(&id)
            .send()
            .await,
        "ListParts",
    );
    assert_eq!(listed.upload_id(), Some(id.as_str()));
    let got: Vec<(Option<i32>, Option<&str>, Option<i64>)> = listed
        .parts()
        .iter()
        .map(|p| (p.part_number(), p.e_tag(), p.size()))
        .collect();
    assert_eq!(
        got,
        vec![
            (Some(1), Some(e1.as_str()), Some(5 * MIB as i64)),
            (Some(2), Some(e2b.as_str()), Some(200))
        ]
    );
    assert!(
        listed.parts().iter().all(|p| p.last_modified().is_some()),
        "parts without LastModified"
    );

    // ListParts pagination.
    let first = ok(
        client
            .list_parts()
            .bucket(&bucket)
            .key("pending")
            .upload_id(&id)
            .max_parts(1)
            .send()
            .await,
        "ListParts max-parts=1",
    );
    assert_eq!(first.parts().len(), 1);
    assert_eq!(first.is_truncated(), Some(true));
    let marker = first
        .next_part_number_marker()
        .expect("no NextPartNumberMarker")
        .to_string();
    let rest = ok(
        client
            .list_parts()
            .bucket(&bucket)
            .key("pending")
            .upload_id(&id)
            .part_number_marker(marker)
            .send()
            .await,
        "ListParts after marker",
    );
    assert_eq!(
        rest.parts().iter().map(|p| p.part_number()).collect::<Vec<_>>(),
        vec![Some(2)]
    );

    let uploads = ok(
        client.list_multipart_uploads().bucket(&bucket).send().await,
        "ListMultipartUploads",
    );
    let mut seen: Vec<(String, String)> = uploads
        .uploads()
        .iter()
        .map(|u| {
            (
                u.key().unwrap_or_default().to_string(),
                u.upload_id().unwrap_or_default().to_string(),
            )
        })
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        vec![
            ("other/pending".to_string(), other.clone()),
            ("pending".to_string(), id.clone())
        ]
    );
    assert!(
        uploads.uploads().iter().all(|u| u.initiated().is_some()),
        "uploads without Initiated"
    );
    let filtered = ok(
        client
            .list_multipart_uploads()
            .bucket(&bucket)
            .prefix("other/")
            .send()
            .await,
        "ListMultipartUploads prefix",
    );
    assert_eq!(filtered.uploads().len(), 1);
    assert_eq!(filtered.uploads()[0].key(), Some("other/pending"));

    // An upload in progress is not an object.
    expect_error(
        client.get_object().bucket(&bucket).key("pending").send().await,
        404,
        "NoSuchKey",
    );
    assert!(
        list_all_keys(&client, &bucket).await.is_empty(),
        "an incomplete upload is listed as an object"
    );

    ok(
        client
            .abort_multipart_upload()
            .bucket(&bucket)
            .key("pending")
            .upload_id(&id)
            .send()
            .await,
        "Abort",
    );
    expect_error(
        client
            .list_parts()
            .bucket(&bucket)
            .key("pending")
            .upload_id(&id)
            .send()
            .await,
        404,
        "NoSuchUpload",
    );
    expect_error(
        client
            .upload_part()
            .bucket(&bucket)
            .key("pending")
            .upload_id(&id)
            .part_number(3)
            .body(b"x".to_vec().into())
            .send()
            .await,
        404,
        "NoSuchUpload",
    );
    expect_error(
        client
            .complete_multipart_upload()
            .bucket(&bucket)
            .key("pending")
            .upload_id(&id)
            .multipart_upload(completed(&[(1, e1.clone())]))
            .send()
            .await,
        404,
        "NoSuchUpload",
    );
    let uploads = ok(
        client.list_multipart_uploads().bucket(&bucket).send().await,
        "ListMultipartUploads after abort",
    );
    assert_eq!(uploads.uploads().len(), 1);
    assert_eq!(uploads.uploads()[0].upload_id(), Some(other.as_str()));
    // With both uploads aborted the bucket is empty and deletes cleanly.
    ok(
        client
            .abort_multipart_upload()
            .bucket(&bucket)
            .key("other/pending")
            .upload_id(&other)
            .send()
            .await,
        "Abort 2",
    );
    ok(
        client.delete_bucket().bucket(&bucket).send().await,
        "DeleteBucket after aborts",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_upload_id_is_no_such_upload() {
    let (_server, client, bucket) = TestServer::with_bucket("mpunone").await;
    let bogus = "this-upload-does-not-exist";
    expect_error(
        client
            .upload_part()
            .bucket(&bucket)
            .key("k")
            .upload_id(bogus)
            .part_number(1)
            .body(b"x".to_vec().into())
            .send()
            .await,
        404,
        "NoSuchUpload",
    );
    expect_error(
        client
            .list_parts()
            .bucket(&bucket)
            .key("k")
            .upload_id(bogus)
            .send()
            .await,
        404,
        "NoSuchUpload",
    );
    expect_error(
        client
            .abort_multipart_upload()
            .bucket(&bucket)
            .key("k")
            .upload_id(bogus)
            .send()
            .await,
        404,
        "NoSuchUpload",
    );
    expect_error(
        client
            .complete_multipart_upload()
            .bucket(&bucket)
            .key("k")
            .upload_id(bogus)
            .multipart_upload(completed(&[(1, etag_of(b"x"))]))
            .send()
            .await,
        404,
        "NoSuchUpload",
    );
    // An upload id is bound to its key.
    let id = create_upload(&client, &bucket, "real").await;
    expect_error(
        client
            .upload_part()
            .bucket(&bucket)
            .key("not-real")
            .upload_id(&id)
            .part_number(1)
            .body(b"x".to_vec().into())
            .send()
            .await,
        404,
        "NoSuchUpload",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entity_too_small() {
    let (_server, client, bucket) = TestServer::with_bucket("mpusmall").await;
    let id = create_upload(&client, &bucket, "small").await;
    let e1 = upload_part(&client, &bucket, "small", &id, 1, &random_bytes(5 * MIB - 1, 31)).await;
    let e2 = upload_part(&client, &bucket, "small", &id, 2, b"tail").await;
    expect_error(
        client
            .complete_multipart_upload()
            .bucket(&bucket)
            .key("small")
            .upload_id(&id)
            .multipart_upload(completed(&[(1, e1.clone()), (2, e2.clone())]))
            .send()
            .await,
        400,
        "EntityTooSmall",
    );
    expect_error(
        client.get_object().bucket(&bucket).key("small").send().await,
        404,
        "NoSuchKey",
    );
    // The upload survives a failed completion; a single small part is a valid object.
    let listed = ok(
        client
            .list_parts()
            .bucket(&bucket)
            .key("small")
            .upload_id(&id)
            .send()
            .await,
        "ListParts",
    );
    assert_eq!(listed.parts().len(), 2);
    let id2 = create_upload(&client, &bucket, "one-small-part").await;
    let e = upload_part(&client, &bucket, "one-small-part", &id2, 1, b"tiny").await;
    ok(
        client
            .complete_multipart_upload()
            .bucket(&bucket)
            .key("one-small-part")
            .upload_id(&id2)
            .multipart_upload(completed(&[(1, e)]))
            .send()
            .await,
        "complete with one small part",
    );
    assert_eq!(get_bytes(&client, &bucket, "one-small-part").await, b"tiny");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_part_and_order() {
    let (_server, client, bucket) = TestServer::with_bucket("mpubad").await;
    let id = create_upload(&client, &bucket, "k").await;
    let e1 = upload_part(&client, &bucket, "k", &id, 1, &random_bytes(5 * MIB, 41)).await;
    let e2 = upload_part(&client, &bucket, "k", &id, 2, b"end").await;

    let complete = |parts: Vec<(i32, String)>| {
        client
            .complete_multipart_upload()
            .bucket(&bucket)
            .key("k")
            .upload_id(&id)
            .multipart_upload(completed(&parts))
            .send()
    };
    // Wrong ETag for an uploaded part.
    expect_error(
        complete(vec![
            (1, e1.clone()),
            (2, "\"ffffffffffffffffffffffffffffffff\"".into()),
        ])
        .await,
        400,
        "InvalidPart",
    );
    // A part that was never uploaded.
    expect_error(
        complete(vec![(1, e1.clone()), (3, e2.clone())]).await,
        400,
        "InvalidPart",
    );
    // Out of order, and duplicated.
    expect_error(
        complete(vec![(2, e2.clone()), (1, e1.clone())]).await,
        400,
        "InvalidPartOrder",
    );
    expect_error(
        complete(vec![(1, e1.clone()), (1, e1.clone())]).await,
        400,
        "InvalidPartOrder",
    );
    // An empty part list is malformed.
    expect_error(complete(vec![]).await, 400, "MalformedXML");
    expect_error(
        client.get_object().bucket(&bucket).key("k").send().await,
        404,
        "NoSuchKey",
    );

    // After all that, the right list still completes; a subset of parts is fine too.
    let etag = ok(
        complete(vec![(1, e1.clone()), (2, e2.clone())]).await,
        "valid completion",
    );
    let refs: [&[u8]; 2] = [&random_bytes(5 * MIB, 41), b"end"];
    assert_eq!(etag.e_tag(), Some(multipart_etag(&refs).as_str()));
    // The upload is gone after completion.
    expect_error(complete(vec![(1, e1.clone())]).await, 404, "NoSuchUpload");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_part_numbers() {
    let (_server, client, bucket) = TestServer::with_bucket("mpunum").await;
    let id = create_upload(&client, &bucket, "k").await;
    for n in [0, 10001] {
        expect_error(
            client
                .upload_part()
                .bucket(&bucket)
                .key("k")
                .upload_id(&id)
                .part_number(n)
                .body(b"x".to_vec().into())
                .send()
                .await,
            400,
            "InvalidArgument",
        );
    }
    upload_part(&client, &bucket, "k", &id, 10000, b"last possible part").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_part_copy_with_range() {
    let (_server, client, bucket) = TestServer::with_bucket("mpucopy").await;
    let source = random_bytes(6 * MIB, 51);
    put(&client, &bucket, "source", source.clone()).await;

    let id = create_upload(&client, &bucket, "assembled").await;
    let copied = ok(
        client
            .upload_part_copy()
            .bucket(&bucket)
            .key("assembled")
            .upload_id(&id)
            .part_number(1)
            .copy_source(format!("{bucket}/source"))
            .copy_source_range(format!("bytes=0-{}", 5 * MIB - 1))
            .send()
            .await,
        "UploadPartCopy",
    );
    let e1 = copied
        .copy_part_result()
        .and_then(|r| r.e_tag())
        .expect("no CopyPartResult ETag")
        .to_string();
    assert_eq!(
        e1,
        etag_of(&source[..5 * MIB]),
        "copied part ETag is the MD5 of the copied range"
    );
    // A second part copied from the tail, and a third uploaded directly.
    let copied = ok(
        client
            .upload_part_copy()
            .bucket(&bucket)
            .key("assembled")
            .upload_id(&id)
            .part_number(2)
            .copy_source(format!("{bucket}/source"))
            .copy_source_range(format!("bytes={}-{}", 5 * MIB, 6 * MIB - 1))
            .send()
            .await,
        "UploadPartCopy tail",
    );
    let e2 = copied.copy_part_result().and_then(|r| r.e_tag()).unwrap().to_string();
    ok(
        client
            .complete_multipart_upload()
            .bucket(&bucket)
            .key("assembled")
            .upload_id(&id)
            .multipart_upload(completed(&[(1, e1), (2, e2)]))
            .send()
            .await,
        "complete copied upload",
    );
    assert!(
        get_bytes(&client, &bucket, "assembled").await == source,
        "assembled bytes differ from source"
    );

    // A range outside the source is refused.
    let id = create_upload(&client, &bucket, "bad-range").await;
    expect_error(
        client
            .upload_part_copy()
            .bucket(&bucket)
            .key("bad-range")
            .upload_id(&id)
            .part_number(1)
            .copy_source(format!("{bucket}/source"))
            .copy_source_range(format!("bytes={}-{}", 6 * MIB, 7 * MIB))
            .send()
            .await,
        416,
        "InvalidRange",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multipart_keeps_metadata_from_create() {
    let (_server, client, bucket) = TestServer::with_bucket("mpumeta").await;
    let out = ok(
        client
            .create_multipart_upload()
            .bucket(&bucket)
            .key("m")
            .content_type("video/mp4")
            .metadata("camera", "front")
            .send()
            .await,
        "CreateMultipartUpload with metadata",
    );
    let id = out.upload_id().unwrap().to_string();
    let e = upload_part(&client, &bucket, "m", &id, 1, b"frames").await;
    ok(
        client
            .complete_multipart_upload()
            .bucket(&bucket)
            .key("m")
            .upload_id(&id)
            .multipart_upload(completed(&[(1, e)]))
            .send()
            .await,
        "complete",
    );
    let head = ok(client.head_object().bucket(&bucket).key("m").send().await, "HeadObject");
    assert_eq!(head.content_type(), Some("video/mp4"));
    assert_eq!(
        head.metadata().and_then(|m| m.get("camera")).map(String::as_str),
        Some("front")
    );
}
