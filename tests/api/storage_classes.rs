//! Storage classes through the S3 API: `x-amz-storage-class` on PUT, CopyObject and multipart
//! uploads; where the bytes land (STANDARD under `<data>/blobs`, STANDARD_IA and GLACIER on the
//! configured cold volume); the class in HEAD, GET and every listing; the GLACIER gate (GET,
//! transforms and copy sources refused with 403 InvalidObjectState until RestoreObject) and
//! the restore itself; refusals of classes Strata does not keep; and a restart over a separate
//! cold directory, after which fsck is clean and the cold bytes are still served.

use std::path::Path;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{RestoreRequest, StorageClass};
use aws_sdk_s3::Client;

use crate::fixtures::*;
use crate::multipart::completed;

/// A server whose cold volume is a directory of its own (not under the data dir), as an
/// operator would mount one; the directory lives as long as the returned guard.
fn server_with_cold_dir() -> (TestServer, tempfile::TempDir) {
    let cold = tempfile::Builder::new()
        .prefix("strata-cold-")
        .tempdir()
        .expect("create cold tempdir");
    let toml = format!(
        "[storage]\ncold_dir = {}\n[limits]\ndeleted_blob_grace_secs = 0\n",
        toml::Value::String(cold.path().display().to_string())
    );
    let server = TestServer::start_with(ServerOptions {
        config_toml: Some(toml),
        ..Default::default()
    });
    (server, cold)
}

/// Blob files on a volume root (`<root>/blobs/*/*`).
fn blobs_in(root: &Path) -> usize {
    files_under(&root.join("blobs")).len()
}

async fn put_with_class(client: &Client, bucket: &str, key: &str, body: &[u8], class: StorageClass) -> String {
    let out = ok(
        client
            .put_object()
            .bucket(bucket)
            .key(key)
            .storage_class(class)
            .body(ByteStream::from(body.to_vec()))
            .send()
            .await,
        "put with storage class",
    );
    out.e_tag().unwrap_or_default().to_string()
}

async fn head_class(client: &Client, bucket: &str, key: &str) -> Option<StorageClass> {
    ok(client.head_object().bucket(bucket).key(key).send().await, "head")
        .storage_class()
        .cloned()
}

#[tokio::test]
async fn classes_decide_the_volume_and_are_reported_everywhere() {
    let (server, cold) = server_with_cold_dir();
    let client = server.client();
    let bucket = new_bucket(&client, "classes").await;
    let data = server.data_dir().to_path_buf();
    let hot_before = blob_files(&data).len();

    let big = random_bytes(3 * MIB, 1);
    put_with_class(&client, &bucket, "ia.bin", &big, StorageClass::StandardIa).await;
    put_with_class(&client, &bucket, "std.bin", &big, StorageClass::Standard).await;
    put(&client, &bucket, "default.bin", big.clone()).await;
    // Two STANDARD blobs went to <data>/blobs, the IA one to the cold volume.
    assert_eq!(blob_files(&data).len(), hot_before + 2);
    assert_eq!(blobs_in(cold.path()), 1);

    assert_eq!(
        head_class(&client, &bucket, "ia.bin").await,
        Some(StorageClass::StandardIa)
    );
    // S3 omits x-amz-storage-class for STANDARD objects.
    assert_eq!(head_class(&client, &bucket, "std.bin").await, None);
    assert_eq!(get_bytes(&client, &bucket, "ia.bin").await, big);
    let get = ok(client.get_object().bucket(&bucket).key("ia.bin").send().await, "get ia");
    assert_eq!(get.storage_class(), Some(&StorageClass::StandardIa));
    // A range read from the cold volume.
    let ranged = ok(
        client
            .get_object()
            .bucket(&bucket)
            .key("ia.bin")
            .range("bytes=1000-1999")
            .send()
            .await,
        "range get",
    );
    let part = ranged.body.collect().await.expect("body").into_bytes();
    assert_eq!(&part[..], &big[1000..2000]);

    let listed = ok(client.list_objects_v2().bucket(&bucket).send().await, "list");
    let classes: Vec<(String, String)> = listed
        .contents()
        .iter()
        .map(|o| {
            (
                o.key().unwrap_or_default().to_string(),
                o.storage_class().map(|c| c.as_str().to_string()).unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        classes,
        vec![
            ("default.bin".to_string(), "STANDARD".to_string()),
            ("ia.bin".to_string(), "STANDARD_IA".to_string()),
            ("std.bin".to_string(), "STANDARD".to_string()),
        ]
    );
    let versions = ok(
        client.list_object_versions().bucket(&bucket).send().await,
        "list versions",
    );
    let ia = versions
        .versions()
        .iter()
        .find(|v| v.key() == Some("ia.bin"))
        .expect("ia.bin listed");
    assert_eq!(ia.storage_class().map(|c| c.as_str()), Some("STANDARD_IA"));

    // Changing the class in place with CopyObject moves the bytes to the cold volume and
    // frees the hot copy (grace 0).
    ok(
        client
            .copy_object()
            .bucket(&bucket)
            .key("std.bin")
            .copy_source(format!("{bucket}/std.bin"))
            .storage_class(StorageClass::StandardIa)
            .send()
            .await,
        "copy to IA",
    );
    assert_eq!(
        head_class(&client, &bucket, "std.bin").await,
        Some(StorageClass::StandardIa)
    );
    assert_eq!(get_bytes(&client, &bucket, "std.bin").await, big);
    assert_eq!(blobs_in(cold.path()), 2);
    wait_for(
        || blob_files(&data).len() == hot_before + 1,
        "hot copy of std.bin freed",
    );
    // A copy that names no class is STANDARD, as on S3.
    ok(
        client
            .copy_object()
            .bucket(&bucket)
            .key("copy.bin")
            .copy_source(format!("{bucket}/ia.bin"))
            .send()
            .await,
        "copy without class",
    );
    assert_eq!(head_class(&client, &bucket, "copy.bin").await, None);
    assert_eq!(blob_files(&data).len(), hot_before + 2);
}

#[tokio::test]
async fn unknown_classes_are_refused_and_nothing_is_stored() {
    let (_server, client, bucket) = TestServer::with_bucket("badclass").await;
    for class in [
        StorageClass::DeepArchive,
        StorageClass::IntelligentTiering,
        StorageClass::from("NOPE"),
    ] {
        let r = client
            .put_object()
            .bucket(&bucket)
            .key("x")
            .storage_class(class.clone())
            .body(ByteStream::from_static(b"data"))
            .send()
            .await;
        expect_error(r, 400, "InvalidStorageClass");
        let r = client
            .create_multipart_upload()
            .bucket(&bucket)
            .key("x")
            .storage_class(class)
            .send()
            .await;
        expect_error(r, 400, "InvalidStorageClass");
    }
    assert!(list_all_keys(&client, &bucket).await.is_empty());
    let uploads = ok(
        client.list_multipart_uploads().bucket(&bucket).send().await,
        "list uploads",
    );
    assert!(uploads.uploads().is_empty());
}

#[tokio::test]
async fn glacier_objects_need_a_restore_before_reading() {
    let (server, cold) = server_with_cold_dir();
    let client = server.client();
    let bucket = new_bucket(&client, "glacier").await;
    let body = std::fs::read(image_path("coffee-600x400.png")).expect("read test image");
    put_with_class(&client, &bucket, "photo.png", &body, StorageClass::Glacier).await;
    put(&client, &bucket, "hot.txt", b"hot".to_vec()).await;
    assert_eq!(blobs_in(cold.path()), 1);

    // HEAD works and reports the class, with no restore yet.
    let head = ok(
        client.head_object().bucket(&bucket).key("photo.png").send().await,
        "head",
    );
    assert_eq!(head.storage_class(), Some(&StorageClass::Glacier));
    assert_eq!(head.restore(), None);
    assert_eq!(head.content_length(), Some(body.len() as i64));
    // GET, a transform and a copy source are refused until restored.
    expect_error(
        client.get_object().bucket(&bucket).key("photo.png").send().await,
        403,
        "InvalidObjectState",
    );
    let url = format!("{}/{bucket}/photo.png?w=100&f=png", server.endpoint());
    let signed = SignedRequest::new("GET", format!("/{bucket}/photo.png?w=100&f=png"))
        .send(&server)
        .await;
    assert_eq!(signed.status, 403, "transform of an unrestored GLACIER object ({url})");
    assert_eq!(signed.error_code().as_deref(), Some("InvalidObjectState"));
    expect_error(
        client
            .copy_object()
            .bucket(&bucket)
            .key("copy.png")
            .copy_source(format!("{bucket}/photo.png"))
            .send()
            .await,
        403,
        "InvalidObjectState",
    );
    // Restoring a STANDARD object is not allowed; a restore needs Days.
    expect_error(
        client
            .restore_object()
            .bucket(&bucket)
            .key("hot.txt")
            .restore_request(RestoreRequest::builder().days(1).build())
            .send()
            .await,
        403,
        "InvalidObjectState",
    );
    expect_error(
        client
            .restore_object()
            .bucket(&bucket)
            .key("photo.png")
            .restore_request(RestoreRequest::builder().build())
            .send()
            .await,
        400,
        "MalformedXML",
    );
    expect_error(
        client
            .restore_object()
            .bucket(&bucket)
            .key("missing.png")
            .restore_request(RestoreRequest::builder().days(1).build())
            .send()
            .await,
        404,
        "NoSuchKey",
    );

    // The first restore is 202 Accepted, a repeat 200.
    let first = SignedRequest::new("POST", format!("/{bucket}/photo.png?restore"))
        .body(b"<RestoreRequest><Days>2</Days></RestoreRequest>".to_vec())
        .send(&server)
        .await;
    assert_eq!(first.status, 202, "first restore: {}", first.text());
    let again = ok(
        client
            .restore_object()
            .bucket(&bucket)
            .key("photo.png")
            .restore_request(RestoreRequest::builder().days(3).build())
            .send()
            .await,
        "restore again",
    );
    drop(again);
    let head = ok(
        client.head_object().bucket(&bucket).key("photo.png").send().await,
        "head restored",
    );
    let restore = head.restore().expect("x-amz-restore after restore").to_string();
    assert!(
        restore.starts_with("ongoing-request=\"false\", expiry-date=\""),
        "{restore}"
    );
    assert!(restore.contains("00:00:00 GMT"), "expiry is a midnight UTC: {restore}");

    // Now every read works, and the object is still GLACIER.
    assert_eq!(get_bytes(&client, &bucket, "photo.png").await, body);
    let thumb = SignedRequest::new("GET", format!("/{bucket}/photo.png?w=100&f=png"))
        .send(&server)
        .await;
    assert_eq!(thumb.status, 200, "transform after restore: {}", thumb.text());
    let img = image::load_from_memory(&thumb.body).expect("decode thumbnail");
    assert_eq!(img.width(), 100);
    ok(
        client
            .copy_object()
            .bucket(&bucket)
            .key("copy.png")
            .copy_source(format!("{bucket}/photo.png"))
            .send()
            .await,
        "copy restored",
    );
    assert_eq!(get_bytes(&client, &bucket, "copy.png").await, body);
    assert_eq!(
        head_class(&client, &bucket, "photo.png").await,
        Some(StorageClass::Glacier)
    );
}

#[tokio::test]
async fn multipart_uploads_write_parts_to_their_class_volume() {
    let (server, cold) = server_with_cold_dir();
    let client = server.client();
    let bucket = new_bucket(&client, "mpclass").await;
    let up = ok(
        client
            .create_multipart_upload()
            .bucket(&bucket)
            .key("big.bin")
            .storage_class(StorageClass::StandardIa)
            .send()
            .await,
        "create upload",
    );
    let id = up.upload_id().expect("upload id").to_string();
    let p1 = random_bytes(5 * MIB, 2);
    let p2 = random_bytes(MIB, 3);
    let mut etags = Vec::new();
    for (n, part) in [(1, &p1), (2, &p2)] {
        let out = ok(
            client
                .upload_part()
                .bucket(&bucket)
                .key("big.bin")
                .upload_id(&id)
                .part_number(n)
                .body(ByteStream::from(part.clone()))
                .send()
                .await,
            "upload part",
        );
        etags.push((n, out.e_tag().unwrap_or_default().to_string()));
    }
    assert_eq!(blobs_in(cold.path()), 2, "parts of an IA upload are on the cold volume");
    let listed = ok(
        client.list_multipart_uploads().bucket(&bucket).send().await,
        "list uploads",
    );
    assert_eq!(
        listed.uploads()[0].storage_class().map(|c| c.as_str()),
        Some("STANDARD_IA")
    );
    let parts = ok(
        client
            .list_parts()
            .bucket(&bucket)
            .key("big.bin")
            .upload_id(&id)
            .send()
            .await,
        "list parts",
    );
    assert_eq!(parts.storage_class().map(|c| c.as_str()), Some("STANDARD_IA"));
    ok(
        client
            .complete_multipart_upload()
            .bucket(&bucket)
            .key("big.bin")
            .upload_id(&id)
            .multipart_upload(completed(&etags))
            .send()
            .await,
        "complete",
    );
    assert_eq!(
        head_class(&client, &bucket, "big.bin").await,
        Some(StorageClass::StandardIa)
    );
    let mut whole = p1.clone();
    whole.extend_from_slice(&p2);
    assert_eq!(get_bytes(&client, &bucket, "big.bin").await, whole);
}

#[tokio::test]
async fn cold_objects_survive_a_restart_and_fsck() {
    let (mut server, cold) = server_with_cold_dir();
    let client = server.client();
    let bucket = new_bucket(&client, "coldrestart").await;
    let big = random_bytes(2 * MIB, 4);
    put_with_class(&client, &bucket, "ia.bin", &big, StorageClass::StandardIa).await;
    put_with_class(&client, &bucket, "g.bin", &big, StorageClass::Glacier).await;
    server.terminate();
    // The offline check (which also sweeps unreferenced blobs) reads the same config, so it
    // knows the cold volume: clean, and both cold blobs kept.
    let cfg_dir = tempfile::tempdir().expect("config dir");
    let cfg = cfg_dir.path().join("strata.toml");
    std::fs::write(
        &cfg,
        format!(
            "[storage]\ncold_dir = {}\n",
            toml::Value::String(cold.path().display().to_string())
        ),
    )
    .expect("write config");
    let data = server.data_dir().to_path_buf();
    let out = run_strata_tool(&[
        "fsck".as_ref(),
        "--data".as_ref(),
        data.as_os_str(),
        "--config".as_ref(),
        cfg.as_os_str(),
    ]);
    assert!(
        out.status.success(),
        "fsck with the cold dir: {}\n{}",
        out.stdout,
        out.stderr
    );
    assert!(
        out.stdout
            .contains("0 missing or short blobs; 0 unreferenced blobs removed"),
        "{}",
        out.stdout
    );
    assert_eq!(blobs_in(cold.path()), 2);
    // Without it, fsck cannot find the cold blobs: it says so, and deletes nothing.
    let (out, summary) = fsck(&data);
    assert!(
        !out.status.success() && summary.problems == 2,
        "{summary:?}\n{}",
        out.stdout
    );
    assert_eq!(blobs_in(cold.path()), 2);
    server.start_again();
    let client = server.client();
    assert_eq!(get_bytes(&client, &bucket, "ia.bin").await, big);
    assert_eq!(blobs_in(cold.path()), 2);
    assert_eq!(head_class(&client, &bucket, "g.bin").await, Some(StorageClass::Glacier));
}

/// Polls `cond` for up to 10 s (deferred unlinks run on a background task).
fn wait_for(cond: impl Fn() -> bool, what: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !cond() {
        assert!(std::time::Instant::now() < deadline, "timed out waiting: {what}");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

fn image_path(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/testdata/images")
        .join(name)
}
