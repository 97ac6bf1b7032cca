//! `strata backup` / `strata restore`: an online backup taken while writers keep changing
//! the store restores to a server that has everything acknowledged before the backup began,
//! byte for byte (plain, multi-blob, multipart, versioned with delete markers, SSE-S3, an
//! incomplete upload that can still be completed, access keys), with no record lacking its
//! blob (fsck); blobs deleted mid-backup are still copied and freed afterwards; incremental
//! backups copy only new blobs and drop unreferenced ones; and the refusals.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::ServerSideEncryption;
use aws_sdk_s3::Client;

use crate::fixtures::*;
use crate::multipart::{completed, create_upload, upload_part};

/// A private directory for the master key file, a config naming it, and backup targets.
struct Setup {
    dir: tempfile::TempDir,
    toml: String,
}

impl Setup {
    fn new(extra_toml: &str) -> Setup {
        let dir = tempfile::Builder::new()
            .prefix("strata-backup-")
            .tempdir()
            .expect("tempdir");
        let key = dir.path().join("master.key");
        let toml = format!(
            "[encryption]\nmaster_key_file = {}\n{extra_toml}",
            toml::Value::String(key.display().to_string())
        );
        Setup { dir, toml }
    }

    fn opts(&self, env: &[(&str, &str)]) -> ServerOptions {
        ServerOptions {
            config_toml: Some(self.toml.clone()),
            env: env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            ..Default::default()
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

fn strata(args: &[&str]) -> Output {
    strata_command().args(args).output().expect("run strata")
}

fn text(out: &Output) -> String {
    format!(
        "status {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `strata backup --to DIR --endpoint E`; returns the summary line.
fn backup_online(server: &TestServer, to: &Path) -> String {
    let out = strata(&["backup", "--to", to.to_str().unwrap(), "--endpoint", &server.endpoint()]);
    assert!(out.status.success(), "backup failed: {}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let line = stdout
        .lines()
        .find(|l| l.starts_with("backup to "))
        .unwrap_or_else(|| panic!("no summary line: {}", text(&out)))
        .to_string();
    line
}

/// `(blobs, copied, already there)` from a backup summary line.
fn blob_counts(summary: &str) -> (u64, u64, u64) {
    let num_before = |marker: &str| -> u64 {
        let at = summary
            .find(marker)
            .unwrap_or_else(|| panic!("{marker:?} not in {summary}"));
        let head = &summary[..at];
        let start = head.rfind(|c: char| !c.is_ascii_digit()).map_or(0, |i| i + 1);
        head[start..]
            .parse()
            .unwrap_or_else(|_| panic!("no number before {marker:?} in {summary}"))
    };
    (
        num_before(" blobs ("),
        num_before(" copied,"),
        num_before(" already there"),
    )
}

fn restore(from: &Path, data: &Path) -> Output {
    strata(&[
        "restore",
        "--from",
        from.to_str().unwrap(),
        "--data-dir",
        data.to_str().unwrap(),
    ])
}

fn fsck(data: &Path) -> Output {
    strata(&["fsck", "--data", data.to_str().unwrap()])
}

/// Blob files under `dir/blobs`.
fn blob_files(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for shard in std::fs::read_dir(dir.join("blobs")).expect("read blobs dir").flatten() {
        if let Ok(files) = std::fs::read_dir(shard.path()) {
            out.extend(files.flatten().map(|f| f.file_name().to_string_lossy().into_owned()));
        }
    }
    out.sort();
    out
}

/// What a GET of one version returned.
#[derive(Debug, PartialEq)]
struct Seen {
    body_md5: String,
    etag: Option<String>,
    version_id: Option<String>,
    metadata: BTreeMap<String, String>,
    content_type: Option<String>,
    sse: Option<String>,
}

async fn seen(client: &Client, bucket: &str, key: &str, version: Option<&str>) -> Seen {
    let out = ok(
        client
            .get_object()
            .bucket(bucket)
            .key(key)
            .set_version_id(version.map(str::to_string))
            .send()
            .await,
        "GetObject",
    );
    let etag = out.e_tag().map(str::to_string);
    let version_id = out.version_id().map(str::to_string);
    let metadata = out
        .metadata()
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default();
    let content_type = out.content_type().map(str::to_string);
    let sse = out.server_side_encryption().map(|s| s.as_str().to_string());
    let body = out.body.collect().await.expect("body").into_bytes();
    Seen {
        body_md5: md5_hex(&body),
        etag,
        version_id,
        metadata,
        content_type,
        sse,
    }
}

/// Every version (id, is delete marker) of a bucket, per key, newest first.
async fn versions(client: &Client, bucket: &str) -> Vec<(String, String, bool)> {
    let out = ok(
        client.list_object_versions().bucket(bucket).send().await,
        "ListObjectVersions",
    );
    let mut v: Vec<(String, String, bool)> = out
        .versions()
        .iter()
        .map(|v| {
            (
                v.key().unwrap_or_default().to_string(),
                v.version_id().unwrap_or_default().to_string(),
                false,
            )
        })
        .chain(out.delete_markers().iter().map(|d| {
            (
                d.key().unwrap_or_default().to_string(),
                d.version_id().unwrap_or_default().to_string(),
                true,
            )
        }))
        .collect();
    v.sort();
    v
}

/// The fixture written before the backup: what every reader must see afterwards.
struct Fixture {
    plain: String,
    versioned: String,
    /// (bucket, key, version) of every stored object version to compare.
    objects: Vec<(String, String, Option<String>)>,
    /// (key, upload id, part 1) of an upload left incomplete.
    upload: (String, String, Vec<u8>),
    user: KeyPair,
}

async fn write_fixture(server: &TestServer, client: &Client) -> Fixture {
    let plain = new_bucket(client, "bk-plain").await;
    let versioned = new_bucket(client, "bk-ver").await;
    enable_versioning(client, &versioned).await;
    let mut objects = Vec::new();

    ok(
        client
            .put_object()
            .bucket(&plain)
            .key("small.txt")
            .content_type("text/plain")
            .metadata("colour", "blue")
            .body(ByteStream::from_static(b"small inline object"))
            .send()
            .await,
        "put small",
    );
    objects.push((plain.clone(), "small.txt".to_string(), None));
    put(client, &plain, "dir/large.bin", random_bytes(3 * MIB + 17, 1)).await;
    objects.push((plain.clone(), "dir/large.bin".to_string(), None));

    // Multipart: two part blobs.
    let id = create_upload(client, &plain, "multi.bin").await;
    let p1 = random_bytes(5 * MIB, 2);
    let p2 = random_bytes(MIB + 3, 3);
    let e1 = upload_part(client, &plain, "multi.bin", &id, 1, &p1).await;
    let e2 = upload_part(client, &plain, "multi.bin", &id, 2, &p2).await;
    ok(
        client
            .complete_multipart_upload()
            .bucket(&plain)
            .key("multi.bin")
            .upload_id(&id)
            .multipart_upload(completed(&[(1, e1), (2, e2)]))
            .send()
            .await,
        "complete",
    );
    objects.push((plain.clone(), "multi.bin".to_string(), None));

    // SSE-S3.
    ok(
        client
            .put_object()
            .bucket(&plain)
            .key("secret.bin")
            .server_side_encryption(ServerSideEncryption::Aes256)
            .body(ByteStream::from(random_bytes(200 * 1024, 4)))
            .send()
            .await,
        "put sse",
    );
    objects.push((plain.clone(), "secret.bin".to_string(), None));

    // Versioned: three versions of one key, a deleted key (delete marker over a version).
    for i in 0..3u64 {
        let out = ok(
            client
                .put_object()
                .bucket(&versioned)
                .key("doc")
                .body(ByteStream::from(random_bytes(40 * 1024 + i as usize, 10 + i)))
                .send()
                .await,
            "put version",
        );
        objects.push((
            versioned.clone(),
            "doc".to_string(),
            out.version_id().map(str::to_string),
        ));
    }
    let out = ok(
        client
            .put_object()
            .bucket(&versioned)
            .key("gone")
            .body(ByteStream::from_static(b"before the marker"))
            .send()
            .await,
        "put gone",
    );
    objects.push((
        versioned.clone(),
        "gone".to_string(),
        out.version_id().map(str::to_string),
    ));
    ok(
        client.delete_object().bucket(&versioned).key("gone").send().await,
        "delete marker",
    );

    // An incomplete upload with one part.
    let up_key = "unfinished.bin".to_string();
    let up_id = create_upload(client, &plain, &up_key).await;
    let part = random_bytes(5 * MIB, 5);
    upload_part(client, &plain, &up_key, &up_id, 1, &part).await;

    let user = server.create_key("backup-user");
    Fixture {
        plain,
        versioned,
        objects,
        upload: (up_key, up_id, part),
        user,
    }
}

/// Writers that PUT and DELETE until stopped; returns the acknowledged keys that exist.
fn start_churn(client: &Client, bucket: &str, stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<u64> {
    let client = client.clone();
    let bucket = bucket.to_string();
    tokio::spawn(async move {
        let mut n = 0u64;
        while !stop.load(Ordering::Relaxed) {
            let key = format!("churn-{}", n % 50);
            // Above the inline limit, so every write makes a blob.
            let body = random_bytes(20 * 1024 + (n % 7) as usize, 1000 + n);
            let _ = client
                .put_object()
                .bucket(&bucket)
                .key(&key)
                .body(ByteStream::from(body))
                .send()
                .await;
            if n.is_multiple_of(3) {
                let _ = client
                    .delete_object()
                    .bucket(&bucket)
                    .key(format!("churn-{}", (n + 25) % 50))
                    .send()
                    .await;
            }
            n += 1;
        }
        n
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn online_backup_under_writes_restores_everything_acknowledged() {
    let setup = Setup::new("");
    let (server, client) = TestServer::start_with(setup.opts(&[])).and_client();
    let fx = write_fixture(&server, &client).await;
    let mut before = Vec::new();
    for (b, k, v) in &fx.objects {
        before.push(seen(&client, b, k, v.as_deref()).await);
    }
    let versions_before = versions(&client, &fx.versioned).await;

    let churn = new_bucket(&client, "bk-churn").await;
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..3).map(|_| start_churn(&client, &churn, stop.clone())).collect();
    tokio::time::sleep(Duration::from_millis(300)).await;

    let to = setup.path("backup");
    let to2 = to.clone();
    let summary = {
        let ep = server.endpoint();
        tokio::task::spawn_blocking(move || {
            let out = strata(&["backup", "--to", to2.to_str().unwrap(), "--endpoint", &ep]);
            assert!(out.status.success(), "backup failed: {}", text(&out));
            String::from_utf8_lossy(&out.stdout).into_owned()
        })
        .await
        .expect("backup thread")
    };
    stop.store(true, Ordering::Relaxed);
    let mut writes = 0;
    for w in writers {
        writes += w.await.expect("writer");
    }
    assert!(writes > 0, "the writers made no requests");
    assert!(summary.contains("backup to "), "{summary}");
    assert!(summary.contains("metadata pause"), "{summary}");
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(to.join("manifest.json")).expect("manifest")).expect("json");
    assert_eq!(manifest["format_version"], 1);
    assert!(manifest["trees"]["objects"].as_u64().unwrap_or(0) >= 6, "{manifest}");

    // Restore into a new data dir, with the key file copied beside a new config.
    let restored_setup = Setup::new("");
    std::fs::copy(setup.path("master.key"), restored_setup.path("master.key")).expect("copy key");
    let data = tempfile::Builder::new()
        .prefix("strata-restored-")
        .tempdir()
        .expect("tempdir");
    let out = restore(&to, data.path());
    assert!(out.status.success(), "restore failed: {}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("restore from "), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("encrypted"),
        "no warning about the master key: {}",
        text(&out)
    );
    let out = fsck(data.path());
    assert!(out.status.success(), "fsck of the restored dir: {}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("0 missing or short blobs; 0 unreferenced"),
        "{}",
        text(&out)
    );

    let (restored, rc) = TestServer::start_in(data, restored_setup.opts(&[])).and_client();
    for ((b, k, v), want) in fx.objects.iter().zip(&before) {
        assert_eq!(&seen(&rc, b, k, v.as_deref()).await, want, "{b}/{k} {v:?}");
    }
    assert_eq!(versions(&rc, &fx.versioned).await, versions_before);
    expect_error(
        rc.get_object().bucket(&fx.versioned).key("gone").send().await,
        404,
        "NoSuchKey",
    );
    // Every churn object the backup holds is whole.
    for key in list_all_keys(&rc, &churn).await {
        let out = ok(rc.get_object().bucket(&churn).key(&key).send().await, "get churn");
        let etag = out.e_tag().unwrap_or_default().to_string();
        let body = out.body.collect().await.expect("body").into_bytes();
        assert_eq!(etag, etag_of(&body), "{key}");
    }
    // The incomplete upload can be completed; the user key still works.
    let (up_key, up_id, part) = &fx.upload;
    let parts = ok(
        rc.list_parts()
            .bucket(&fx.plain)
            .key(up_key)
            .upload_id(up_id)
            .send()
            .await,
        "ListParts",
    );
    let etag = parts.parts()[0].e_tag().unwrap_or_default().to_string();
    ok(
        rc.complete_multipart_upload()
            .bucket(&fx.plain)
            .key(up_key)
            .upload_id(up_id)
            .multipart_upload(completed(&[(1, etag)]))
            .send()
            .await,
        "complete restored upload",
    );
    assert_eq!(get_bytes(&rc, &fx.plain, up_key).await, *part);
    let user = restored.client_with(&fx.user.access_key, &fx.user.secret_key);
    ok(user.list_buckets().send().await, "ListBuckets as the restored user");

    // New versions after a restore sort after the restored ones.
    let out = ok(
        rc.put_object()
            .bucket(&fx.versioned)
            .key("doc")
            .body(ByteStream::from_static(b"after restore"))
            .send()
            .await,
        "put after restore",
    );
    let newest = seen(&rc, &fx.versioned, "doc", None).await;
    assert_eq!(newest.version_id.as_deref(), out.version_id());
    assert_eq!(newest.body_md5, md5_hex(b"after restore"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn blobs_deleted_during_a_backup_are_copied_then_freed() {
    let setup = Setup::new("[limits]\ndeleted_blob_grace_secs = 0\n");
    // 150 ms per copied blob: the deletes below land while the copy runs.
    let (server, client, bucket) = TestServer::start_with(setup.opts(&[("STRATA_TEST_BACKUP_BLOB_DELAY_MS", "150")]))
        .and_bucket("bk-del")
        .await;
    let mut bodies = Vec::new();
    for i in 0..10u64 {
        let body = random_bytes(64 * 1024, 50 + i);
        put(&client, &bucket, &format!("obj-{i}"), body.clone()).await;
        bodies.push(body);
    }
    assert_eq!(blob_files(server.data_dir()).len(), 10);

    let to = setup.path("backup");
    let (to2, ep) = (to.clone(), server.endpoint());
    let running = std::thread::spawn(move || strata(&["backup", "--to", to2.to_str().unwrap(), "--endpoint", &ep]));
    // The dump is in place before the first blob is copied.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !to.join("meta.dump").exists() {
        assert!(Instant::now() < deadline, "the backup never wrote its dump");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // A second backup while this one runs is refused with 409.
    let second = strata(&[
        "backup",
        "--to",
        setup.path("other").to_str().unwrap(),
        "--endpoint",
        &server.endpoint(),
    ]);
    assert!(!second.status.success(), "{}", text(&second));
    assert!(text(&second).contains("409"), "{}", text(&second));

    for i in 0..10 {
        ok(
            client
                .delete_object()
                .bucket(&bucket)
                .key(format!("obj-{i}"))
                .send()
                .await,
            "delete",
        );
    }
    let out = running.join().expect("backup thread");
    assert!(out.status.success(), "backup failed: {}", text(&out));
    let summary = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(blob_counts(&summary), (10, 10, 0), "{summary}");
    assert_eq!(blob_files(&to).len(), 10);

    // Freed once the backup ended.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !blob_files(server.data_dir()).is_empty() {
        assert!(Instant::now() < deadline, "deleted blobs were never freed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // And the backup restores the objects as they were at its start.
    let data = tempfile::Builder::new()
        .prefix("strata-restored-")
        .tempdir()
        .expect("tempdir");
    let out = restore(&to, data.path());
    assert!(out.status.success(), "restore failed: {}", text(&out));
    let (_restored, rc) = TestServer::start_in(data, setup.opts(&[])).and_client();
    for (i, body) in bodies.iter().enumerate() {
        assert_eq!(&get_bytes(&rc, &bucket, &format!("obj-{i}")).await, body);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incremental_backup_copies_only_new_blobs_and_drops_unreferenced() {
    let setup = Setup::new("");
    let (mut server, client, bucket) = TestServer::start_with(setup.opts(&[])).and_bucket("bk-inc").await;
    for i in 0..3u64 {
        put(&client, &bucket, &format!("a-{i}"), random_bytes(30 * 1024, 70 + i)).await;
    }
    put(&client, &bucket, "inline", b"tiny".to_vec()).await;
    let to = setup.path("backup");
    let first = backup_online(&server, &to);
    assert_eq!(blob_counts(&first), (3, 3, 0), "{first}");
    assert!(first.contains("4 objects"), "{first}");

    put(&client, &bucket, "b-0", random_bytes(30 * 1024, 80)).await;
    put(&client, &bucket, "b-1", random_bytes(30 * 1024, 81)).await;
    ok(
        client.delete_object().bucket(&bucket).key("a-0").send().await,
        "delete a-0",
    );
    let before = blob_files(&to);
    let second = backup_online(&server, &to);
    assert_eq!(blob_counts(&second), (4, 2, 2), "{second}");
    let after = blob_files(&to);
    assert_eq!(after.len(), 4);
    assert_eq!(
        before.iter().filter(|b| !after.contains(b)).count(),
        1,
        "a-0's blob left the backup"
    );

    // Offline backup of the stopped server's data dir (with a generated root key file, which
    // travels with the backup), then a restore of it.
    server.terminate();
    let creds = b"access_key = \"GENERATEDROOTKEY0001\"\nsecret_key = \"generated-secret\"\n";
    std::fs::write(server.data_dir().join("root-credentials.toml"), creds).unwrap();
    let offline_to = setup.path("offline");
    let out = strata(&[
        "backup",
        "--to",
        offline_to.to_str().unwrap(),
        "--data-dir",
        server.data_dir().to_str().unwrap(),
    ]);
    assert!(out.status.success(), "offline backup: {}", text(&out));
    assert_eq!(blob_counts(&String::from_utf8_lossy(&out.stdout)), (4, 4, 0));
    let data = tempfile::Builder::new()
        .prefix("strata-restored-")
        .tempdir()
        .expect("tempdir");
    let out = restore(&offline_to, data.path());
    assert!(out.status.success(), "restore: {}", text(&out));
    let restored_creds = data.path().join("root-credentials.toml");
    assert_eq!(std::fs::read(&restored_creds).unwrap(), creds);
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&restored_creds).unwrap().permissions()) & 0o777,
        0o600
    );
    let restored = TestServer::start_in(data, setup.opts(&[]));
    let mut keys = list_all_keys(&restored.client(), &bucket).await;
    keys.sort();
    assert_eq!(keys, ["a-1", "a-2", "b-0", "b-1", "inline"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals() {
    let setup = Setup::new("");
    let (server, client, bucket) = TestServer::start_with(setup.opts(&[])).and_bucket("bk-ref").await;
    put(&client, &bucket, "x", random_bytes(30 * 1024, 90)).await;

    let refused = |args: &[&str], needle: &str| {
        let out = strata(args);
        assert!(
            !out.status.success(),
            "`strata {}` succeeded: {}",
            args.join(" "),
            text(&out)
        );
        assert!(text(&out).contains(needle), "{needle:?} not in {}", text(&out));
    };
    let ep = server.endpoint();
    refused(&["backup", "--to", "relative/dir", "--endpoint", &ep], "absolute");
    let inside = server.data_dir().join("bk");
    refused(
        &["backup", "--to", inside.to_str().unwrap(), "--endpoint", &ep],
        "data dir",
    );
    let stranger = setup.path("stranger");
    std::fs::create_dir_all(&stranger).unwrap();
    std::fs::write(stranger.join("notes.txt"), b"mine").unwrap();
    refused(
        &["backup", "--to", stranger.to_str().unwrap(), "--endpoint", &ep],
        "neither empty",
    );
    assert!(stranger.join("notes.txt").exists());

    let to = setup.path("backup");
    backup_online(&server, &to);

    // Restore into a non-empty dir.
    let busy = tempfile::Builder::new()
        .prefix("strata-busy-")
        .tempdir()
        .expect("tempdir");
    std::fs::write(busy.path().join("keep"), b"x").unwrap();
    let out = restore(&to, busy.path());
    assert!(
        !out.status.success() && text(&out).contains("not empty"),
        "{}",
        text(&out)
    );
    assert!(!busy.path().join("meta").exists());

    // A tampered dump.
    let tampered = setup.path("tampered");
    copy_tree(&to, &tampered);
    let dump = tampered.join("meta.dump");
    let mut bytes = std::fs::read(&dump).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x40;
    std::fs::write(&dump, bytes).unwrap();
    let fresh = setup.path("fresh-1");
    let out = restore(&tampered, &fresh);
    assert!(
        !out.status.success() && text(&out).contains("does not match"),
        "{}",
        text(&out)
    );
    assert!(!fresh.join("meta").exists());

    // No manifest: an incomplete backup.
    let incomplete = setup.path("incomplete");
    copy_tree(&to, &incomplete);
    std::fs::remove_file(incomplete.join("manifest.json")).unwrap();
    let out = restore(&incomplete, &setup.path("fresh-2"));
    assert!(
        !out.status.success() && text(&out).contains("manifest"),
        "{}",
        text(&out)
    );

    // The untouched backup restores.
    let out = restore(&to, &setup.path("fresh-3"));
    assert!(out.status.success(), "{}", text(&out));
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}

/// A blob that fails its checks is never copied: not into a backup (the backup stops and
/// names the object), not back out of one (the restore refuses).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotten_blobs_are_neither_backed_up_nor_restored() {
    use std::os::unix::fs::FileExt;
    let setup = Setup::new("");
    let (server, client, bucket) = TestServer::start_with(setup.opts(&[])).and_bucket("bk-rot").await;
    put(&client, &bucket, "victim.bin", random_bytes(300 * 1024, 91)).await;
    let flip = |path: &Path| {
        let f = std::fs::OpenOptions::new().read(true).write(true).open(path).unwrap();
        let mut b = [0u8; 1];
        f.read_exact_at(&mut b, 200_000).unwrap();
        f.write_all_at(&[b[0] ^ 1], 200_000).unwrap();
    };
    let blob_path = |root: &Path| {
        let name = blob_files(root).pop().expect("one blob");
        root.join("blobs").join(&name[..2]).join(name)
    };

    let to = setup.path("backup");
    backup_online(&server, &to);
    // Rot inside the backup: the restore refuses it.
    flip(&blob_path(&to));
    let fresh = setup.path("fresh");
    let out = restore(&to, &fresh);
    assert!(
        !out.status.success() && text(&out).contains("does not match its checksum"),
        "{}",
        text(&out)
    );

    // Rot in the data dir: the backup stops and names the object.
    flip(&blob_path(server.data_dir()));
    let to2 = setup.path("backup-2");
    let out = strata(&[
        "backup",
        "--to",
        to2.to_str().unwrap(),
        "--endpoint",
        &server.endpoint(),
    ]);
    assert!(!out.status.success(), "a backup copied a rotten blob: {}", text(&out));
    assert!(
        text(&out).contains(&format!("{bucket}/victim.bin")) && text(&out).contains("failed its checks"),
        "{}",
        text(&out)
    );
    assert!(blob_files(&to2).is_empty(), "the rotten blob reached the backup");
}
