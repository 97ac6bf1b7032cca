//! Crash consistency at every step of the write path: with `STRATA_CRASH_AT=<point>` the server
//! aborts mid-PUT (or mid-CompleteMultipartUpload / UploadPart); after a restart the key holds
//! exactly the old or the new bytes, listing agrees with reads, tmp/ is empty, the start-up
//! sweep leaves no unreferenced blob, and `strata fsck` finds nothing wrong.

use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::time::Duration;

use aws_sdk_s3::Client;

use crate::fixtures::*;

/// Blob points come before any metadata is written: the old state is the only right answer.
const BLOB_POINTS: [&str; 5] = [
    "blob-written",
    "blob-table-written",
    "blob-synced",
    "blob-renamed",
    "blob-published",
];
/// SIGABRT, what `std::process::abort` ends the process with.
const SIGABRT: i32 = 6;

fn crash_env(point: &str) -> Vec<(String, String)> {
    vec![("STRATA_CRASH_AT".to_string(), point.to_string())]
}

/// Waits for the aborted server and checks it died at the crash point (not of something else).
fn expect_abort(server: &mut TestServer, point: &str) {
    let status = server.wait_exit(Duration::from_secs(60));
    assert_eq!(
        status.signal(),
        Some(SIGABRT),
        "server armed with STRATA_CRASH_AT={point} should abort at the point, exited with {status}"
    );
}

/// A server on a fresh data dir whose `bucket/k` holds `a` (acknowledged), then restarted
/// with `STRATA_CRASH_AT=point`.
async fn armed_server_with(point: &str, a: &[u8]) -> (TestServer, String) {
    let mut server = TestServer::start();
    let bucket = {
        let client = server.client();
        let bucket = new_bucket(&client, "crash").await;
        put(&client, &bucket, "k", a.to_vec()).await;
        bucket
    };
    server.kill();
    server.set_env(crash_env(point));
    server.start_again();
    (server, bucket)
}

/// Restarts without the crash point and returns what `bucket/k` holds (None: absent), after
/// checking that HEAD, GET and the listing agree.
async fn recovered_state(server: &mut TestServer, bucket: &str, key: &str) -> Option<Vec<u8>> {
    server.set_env(Vec::new());
    server.start_again();
    assert_eq!(server.health_status().await, 200, "health after recovery");
    let client = server.client();
    read_consistently(&client, bucket, key).await
}

/// GET, HEAD and ListObjectsV2 of one key, asserted consistent with each other.
async fn read_consistently(client: &Client, bucket: &str, key: &str) -> Option<Vec<u8>> {
    let got = match client.get_object().bucket(bucket).key(key).send().await {
        Ok(out) => {
            let etag = out.e_tag().map(str::to_string);
            let len = out.content_length();
            let body = out
                .body
                .collect()
                .await
                .unwrap_or_else(|e| panic!("GET {key}: body cut off after recovery: {e}"))
                .into_bytes()
                .to_vec();
            assert_eq!(len, Some(body.len() as i64), "GET {key}: Content-Length vs body");
            Some((body, etag))
        }
        Err(e) => {
            let info = err_info(&e);
            assert!(
                info.status == 404 && info.code.as_deref() == Some("NoSuchKey"),
                "GET {key} after recovery: {}",
                describe(&e)
            );
            None
        }
    };
    let listed = ok(
        client.list_objects_v2().bucket(bucket).send().await,
        "ListObjectsV2 after recovery",
    );
    let entries: Vec<_> = listed.contents().iter().filter(|o| o.key() == Some(key)).collect();
    match &got {
        Some((body, etag)) => {
            assert_eq!(entries.len(), 1, "readable key {key} must be listed exactly once");
            assert_eq!(
                entries[0].size(),
                Some(body.len() as i64),
                "listed size of {key} differs from the bytes GET returns"
            );
            assert_eq!(
                entries[0].e_tag(),
                etag.as_deref(),
                "listed ETag of {key} differs from GET's"
            );
            let head = ok(
                client.head_object().bucket(bucket).key(key).send().await,
                "HEAD after recovery",
            );
            assert_eq!(head.content_length(), Some(body.len() as i64), "HEAD {key} length");
            assert_eq!(head.e_tag(), etag.as_deref(), "HEAD {key} ETag");
        }
        None => assert!(entries.is_empty(), "unreadable key {key} is listed: {entries:?}"),
    }
    got.map(|(b, _)| b)
}

fn describe_body(body: &Option<Vec<u8>>) -> String {
    match body {
        None => "absent".into(),
        Some(b) => format!("{} bytes, md5 {}", b.len(), md5_hex(b)),
    }
}

/// Stops the server, then: tmp/ is empty, every blob file is referenced (fsck removes none),
/// and fsck is clean. Returns the summary.
fn stop_and_check_disk(server: &mut TestServer, expect_blobs: Option<usize>) -> FsckSummary {
    let status = server.terminate();
    assert!(status.success(), "SIGTERM'd server exited with {status}");
    let data = server.data_dir().to_path_buf();
    assert_tmp_empty(&data);
    let blobs_before = blob_files(&data);
    if let Some(n) = expect_blobs {
        assert_eq!(
            blobs_before.len(),
            n,
            "blob files after recovery (the start-up sweep should leave only referenced ones): {blobs_before:?}"
        );
    }
    let summary = assert_fsck_clean(&data);
    assert_eq!(
        summary.orphans_removed, 0,
        "fsck found unreferenced blobs the start-up sweep should have removed: {summary:?}"
    );
    assert_eq!(blob_files(&data), blobs_before, "a clean fsck must not change blobs/");
    summary
}

fn assert_tmp_empty(data: &Path) {
    let left = files_under(&data.join("tmp"));
    assert!(left.is_empty(), "tmp/ not emptied at start-up: {left:?}");
}

/// One crash point: `k` holds A; PUT B crashes the server at `point`; after recovery `k`
/// holds exactly A (blob points: no metadata was written yet) or A or B (metadata points).
async fn put_crash_at(point: &str) {
    let a = random_bytes(MIB + 12_345, 1);
    let b = random_bytes(2 * MIB + 777, 2);
    let (mut server, bucket) = armed_server_with(point, &a).await;

    let result = server
        .client()
        .put_object()
        .bucket(&bucket)
        .key("k")
        .body(b.clone().into())
        .send()
        .await;
    assert!(
        result.is_err(),
        "PUT with STRATA_CRASH_AT={point} was acknowledged: the crash point was not reached"
    );
    expect_abort(&mut server, point);

    let got = recovered_state(&mut server, &bucket, "k").await;
    let is_a = got.as_deref() == Some(a.as_slice());
    let is_b = got.as_deref() == Some(b.as_slice());
    if BLOB_POINTS.contains(&point) {
        assert!(
            is_a,
            "crash at {point} (before any metadata write): k must still hold A ({} bytes), got {}",
            a.len(),
            describe_body(&got)
        );
    } else {
        assert!(
            is_a || is_b,
            "crash at {point}: k must hold exactly A ({} bytes) or B ({} bytes), got {}",
            a.len(),
            b.len(),
            describe_body(&got)
        );
    }
    eprintln!(
        "crash at {point}: recovered {}",
        if is_a { "A (old)" } else { "B (new)" }
    );

    // The recovered store takes writes, and a smaller inline write too.
    let client = server.client();
    put(&client, &bucket, "after", b"after the crash".to_vec()).await;
    assert_eq!(get_bytes(&client, &bucket, "after").await, b"after the crash");
    drop(client);

    // Exactly one blob is referenced (k's), whichever version won.
    let summary = stop_and_check_disk(&mut server, Some(1));
    assert_eq!(summary.objects, 2, "fsck object count: {summary:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_crash_at_blob_written() {
    put_crash_at("blob-written").await;
}

/// Between writing the block table and the fsync: no visible object, no record pointing at a
/// blob without its table (fsck checks every referenced blob's length, table included).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_crash_at_blob_table_written() {
    put_crash_at("blob-table-written").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_crash_at_blob_synced() {
    put_crash_at("blob-synced").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_crash_at_blob_renamed() {
    put_crash_at("blob-renamed").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_crash_at_blob_published() {
    put_crash_at("blob-published").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_crash_at_meta_applied() {
    put_crash_at("meta-applied").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_crash_at_meta_durable() {
    put_crash_at("meta-durable").await;
}

/// Metadata points are on the inline path too (objects ≤ 16 KiB live in their record).
/// DeleteObject goes through the same commit tail as PUT (`Strata::settle`): `k` holds A; a
/// DELETE crashes the server at `point`; after recovery `k` is absent or holds exactly A, whose
/// bytes are all still readable (a deleted version's blob is freed only once the delete is
/// durable), and the disk holds exactly the blobs the records name.
async fn delete_crash_at(point: &str) {
    let a = random_bytes(MIB + 4321, 3);
    let (mut server, bucket) = armed_server_with(point, &a).await;
    let result = server.client().delete_object().bucket(&bucket).key("k").send().await;
    assert!(
        result.is_err(),
        "DELETE with STRATA_CRASH_AT={point} was acknowledged: the crash point was not reached"
    );
    expect_abort(&mut server, point);

    let got = recovered_state(&mut server, &bucket, "k").await;
    let present = match &got {
        None => false,
        Some(body) if body == &a => true,
        other => panic!(
            "crash at {point} in a DELETE: k must hold A or nothing, got {}",
            describe_body(other)
        ),
    };
    if point == "meta-durable" {
        assert!(
            !present,
            "crash at meta-durable: the delete was flushed, k must be gone"
        );
    }
    eprintln!("delete crash at {point}: k {}", if present { "kept" } else { "gone" });
    let client = server.client();
    put(&client, &bucket, "after", b"after the crash".to_vec()).await;
    drop(client);
    let summary = stop_and_check_disk(&mut server, Some(usize::from(present)));
    assert_eq!(
        summary.objects,
        1 + u64::from(present),
        "fsck object count: {summary:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_crash_at_meta_applied() {
    delete_crash_at("meta-applied").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_crash_at_meta_durable() {
    delete_crash_at("meta-durable").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inline_put_crash_at_meta_points() {
    for point in ["meta-applied", "meta-durable"] {
        let a = random_bytes(3000, 3);
        let b = random_bytes(5000, 4);
        let (mut server, bucket) = armed_server_with(point, &a).await;
        let result = server
            .client()
            .put_object()
            .bucket(&bucket)
            .key("k")
            .body(b.clone().into())
            .send()
            .await;
        assert!(
            result.is_err(),
            "inline PUT with STRATA_CRASH_AT={point} was acknowledged: the crash point was not reached"
        );
        expect_abort(&mut server, point);
        let got = recovered_state(&mut server, &bucket, "k").await;
        assert!(
            got.as_deref() == Some(a.as_slice()) || got.as_deref() == Some(b.as_slice()),
            "inline crash at {point}: k must hold exactly A or B, got {}",
            describe_body(&got)
        );
        stop_and_check_disk(&mut server, Some(0));
    }
}

/// blob-written: the body is in tmp/ when the process dies; start-up empties tmp/ and the
/// store ends with only referenced blobs (a second fsck removes nothing).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blob_written_crash_leaves_no_garbage() {
    let a = random_bytes(300_000, 5);
    let (mut server, bucket) = armed_server_with("blob-written", &a).await;
    let data = server.data_dir().to_path_buf();
    let blobs_before_crash = blob_files(&data);
    assert_eq!(blobs_before_crash.len(), 1, "A's blob: {blobs_before_crash:?}");

    let b = random_bytes(4 * MIB, 6);
    let result = server
        .client()
        .put_object()
        .bucket(&bucket)
        .key("k")
        .body(b.into())
        .send()
        .await;
    assert!(
        result.is_err(),
        "PUT was acknowledged: crash point blob-written not reached"
    );
    expect_abort(&mut server, "blob-written");

    // The crash really left a partial upload behind (otherwise this test checks nothing).
    let in_tmp = files_under(&data.join("tmp"));
    assert!(
        !in_tmp.is_empty(),
        "expected the aborted upload's file in tmp/ before the restart"
    );
    assert_eq!(
        blob_files(&data),
        blobs_before_crash,
        "blob-written must not touch blobs/"
    );

    let got = recovered_state(&mut server, &bucket, "k").await;
    assert!(
        got.as_deref() == Some(a.as_slice()),
        "k lost A: {}",
        describe_body(&got)
    );
    assert_tmp_empty(&data);
    assert_eq!(blob_files(&data), blobs_before_crash, "blobs/ after restart");

    let summary = stop_and_check_disk(&mut server, Some(1));
    assert_eq!(summary.objects, 1);
    // A second run agrees: nothing unreferenced, nothing missing.
    let again = assert_fsck_clean(&data);
    assert_eq!(again.orphans_removed, 0, "second fsck: {again:?}");
    assert_eq!(blob_files(&data), blobs_before_crash);
}

/// blob-renamed / blob-published: the new blob is in blobs/ but nothing references it; the
/// restart's sweep must remove it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn published_orphan_is_swept_at_start_up() {
    for point in ["blob-renamed", "blob-published"] {
        let a = random_bytes(200_000, 7);
        let (mut server, bucket) = armed_server_with(point, &a).await;
        let data = server.data_dir().to_path_buf();
        let result = server
            .client()
            .put_object()
            .bucket(&bucket)
            .key("k")
            .body(random_bytes(100_000, 8).into())
            .send()
            .await;
        assert!(result.is_err(), "PUT acknowledged: crash point {point} not reached");
        expect_abort(&mut server, point);
        let before = blob_files(&data);
        assert_eq!(
            before.len(),
            2,
            "after a crash at {point} blobs/ should hold A's blob and the unreferenced new one: {before:?}"
        );
        let got = recovered_state(&mut server, &bucket, "k").await;
        assert!(
            got.as_deref() == Some(a.as_slice()),
            "{point}: k lost A: {}",
            describe_body(&got)
        );
        let after = blob_files(&data);
        assert_eq!(after.len(), 1, "{point}: start-up sweep left {after:?}");
        stop_and_check_disk(&mut server, Some(1));
    }
}

/// Parts uploaded on a healthy server, then CompleteMultipartUpload crashes at `point`. After
/// recovery, completion is all or nothing: either `k` is the multipart object and the upload
/// is gone, or `k` is still A and the upload (with both parts) can still be completed.
async fn complete_crash_at(point: &str) {
    let a = random_bytes(100_000, 9);
    let part1 = random_bytes(5 * MIB, 10);
    let part2 = random_bytes(20_000, 11);
    let whole: Vec<u8> = [part1.as_slice(), part2.as_slice()].concat();

    let (mut server, client, bucket) = TestServer::with_bucket("mpcrash").await;
    put(&client, &bucket, "k", a.clone()).await;
    let upload = crate::multipart::create_upload(&client, &bucket, "k").await;
    let e1 = crate::multipart::upload_part(&client, &bucket, "k", &upload, 1, &part1).await;
    let e2 = crate::multipart::upload_part(&client, &bucket, "k", &upload, 2, &part2).await;
    drop(client);
    server.kill();
    server.set_env(crash_env(point));
    server.start_again();

    let parts = crate::multipart::completed(&[(1, e1.clone()), (2, e2.clone())]);
    let result = server
        .client()
        .complete_multipart_upload()
        .bucket(&bucket)
        .key("k")
        .upload_id(&upload)
        .multipart_upload(parts.clone())
        .send()
        .await;
    assert!(
        result.is_err(),
        "CompleteMultipartUpload with STRATA_CRASH_AT={point} was acknowledged: the crash point is \
         not on the multipart completion path ({result:?})"
    );
    expect_abort(&mut server, point);

    let got = recovered_state(&mut server, &bucket, "k").await;
    let client = server.client();
    let uploads = ok(
        client.list_multipart_uploads().bucket(&bucket).send().await,
        "ListMultipartUploads after recovery",
    );
    let pending = uploads.uploads().iter().any(|u| u.upload_id() == Some(upload.as_str()));
    if got.as_deref() == Some(whole.as_slice()) {
        assert!(
            !pending,
            "{point}: k is the completed object but its upload is still listed"
        );
        let head = ok(client.head_object().bucket(&bucket).key("k").send().await, "HEAD");
        assert_eq!(
            head.e_tag(),
            Some(multipart_etag(&[&part1, &part2]).as_str()),
            "completed object's ETag"
        );
    } else {
        assert!(
            got.as_deref() == Some(a.as_slice()),
            "{point}: k must be A or the completed object, got {}",
            describe_body(&got)
        );
        assert!(
            pending,
            "{point}: k is still A but the upload is gone: completion was half applied"
        );
        let listed = ok(
            client
                .list_parts()
                .bucket(&bucket)
                .key("k")
                .upload_id(&upload)
                .send()
                .await,
            "ListParts after recovery",
        );
        assert_eq!(listed.parts().len(), 2, "parts of the interrupted upload");
        // The upload survived whole: completing it now works and gives the right bytes.
        ok(
            client
                .complete_multipart_upload()
                .bucket(&bucket)
                .key("k")
                .upload_id(&upload)
                .multipart_upload(parts)
                .send()
                .await,
            "CompleteMultipartUpload after recovery",
        );
        assert!(
            get_bytes(&client, &bucket, "k").await == whole,
            "completed object bytes"
        );
    }
    drop(client);
    // A restart runs the sweep, so the replaced blob of A (if any) is gone too.
    server.restart();
    let client = server.client();
    assert!(
        get_bytes(&client, &bucket, "k").await == whole,
        "completed object after restart"
    );
    drop(client);
    let summary = stop_and_check_disk(&mut server, Some(2));
    assert_eq!((summary.objects, summary.parts), (1, 0), "fsck counts: {summary:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multipart_complete_crash_at_meta_applied() {
    complete_crash_at("meta-applied").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multipart_complete_crash_at_meta_durable() {
    complete_crash_at("meta-durable").await;
}

/// UploadPart crashing after its blob is published (before its part record exists): the
/// part is not listed after recovery, its blob is swept, and uploading it again completes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_part_crash_at_blob_published() {
    let part1 = random_bytes(5 * MIB, 12);
    let part2 = random_bytes(70_000, 13);
    let (mut server, client, bucket) = TestServer::with_bucket("partcrash").await;
    let upload = crate::multipart::create_upload(&client, &bucket, "k").await;
    let e1 = crate::multipart::upload_part(&client, &bucket, "k", &upload, 1, &part1).await;
    drop(client);
    server.kill();
    server.set_env(crash_env("blob-published"));
    server.start_again();
    let result = server
        .client()
        .upload_part()
        .bucket(&bucket)
        .key("k")
        .upload_id(&upload)
        .part_number(2)
        .body(part2.clone().into())
        .send()
        .await;
    assert!(
        result.is_err(),
        "UploadPart acknowledged: crash point blob-published not reached"
    );
    expect_abort(&mut server, "blob-published");
    assert_eq!(
        blob_files(server.data_dir()).len(),
        2,
        "part 1's blob and the unreferenced part 2"
    );

    server.set_env(Vec::new());
    server.start_again();
    assert_eq!(
        blob_files(server.data_dir()).len(),
        1,
        "start-up sweep of the part-2 blob"
    );
    let client = server.client();
    let listed = ok(
        client
            .list_parts()
            .bucket(&bucket)
            .key("k")
            .upload_id(&upload)
            .send()
            .await,
        "ListParts after recovery",
    );
    let numbers: Vec<i32> = listed.parts().iter().filter_map(|p| p.part_number()).collect();
    assert_eq!(numbers, vec![1], "only the acknowledged part survives");
    let e2 = crate::multipart::upload_part(&client, &bucket, "k", &upload, 2, &part2).await;
    ok(
        client
            .complete_multipart_upload()
            .bucket(&bucket)
            .key("k")
            .upload_id(&upload)
            .multipart_upload(crate::multipart::completed(&[(1, e1), (2, e2)]))
            .send()
            .await,
        "CompleteMultipartUpload after recovery",
    );
    let whole: Vec<u8> = [part1.as_slice(), part2.as_slice()].concat();
    assert!(
        get_bytes(&client, &bucket, "k").await == whole,
        "completed object bytes"
    );
    drop(client);
    let summary = stop_and_check_disk(&mut server, Some(2));
    assert_eq!((summary.objects, summary.parts), (1, 0), "fsck counts: {summary:?}");
}
