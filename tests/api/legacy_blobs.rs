//! Data dirs written before block checksum tables keep working: blobs written the old way
//! (`STRATA_TEST_LEGACY_BLOBS=1`: no table, no `block_size` in the record) read back whole and
//! by range, a range read of a rotten legacy blob is refused (the whole blob is verified
//! first), `fsck`/`scrub` count them, and `strata scrub --repair` gives them their tables,
//! after which reads are checked per block.

use std::os::unix::fs::FileExt;
use std::path::Path;

use crate::bitrot::blob_file_len;
use crate::fixtures::*;

fn flip(file: &Path, at: u64) {
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(file)
        .expect("open blob");
    let mut b = [0u8; 1];
    f.read_exact_at(&mut b, at).expect("read");
    f.write_all_at(&[b[0] ^ 0x21], at).expect("write");
}

fn blob_of_len(data: &Path, len: u64) -> std::path::PathBuf {
    let found: Vec<_> = blob_files(data)
        .into_iter()
        .filter(|p| std::fs::metadata(p).map(|m| m.len() == len).unwrap_or(false))
        .collect();
    assert_eq!(found.len(), 1, "one blob of {len} bytes: {found:?}");
    found.into_iter().next().expect("one")
}

async fn range(client: &aws_sdk_s3::Client, bucket: &str, key: &str, spec: &str) -> Result<Vec<u8>, ErrInfo> {
    match client.get_object().bucket(bucket).key(key).range(spec).send().await {
        Ok(out) => Ok(out.body.collect().await.expect("range body").into_bytes().to_vec()),
        Err(e) => Err(err_info(&e)),
    }
}

fn tool(args: &[&str], data: &Path) -> ToolOutput {
    let mut all: Vec<&std::ffi::OsStr> = args.iter().map(std::ffi::OsStr::new).collect();
    all.extend([std::ffi::OsStr::new("--data"), data.as_os_str()]);
    run_strata_tool(&all)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_blobs_read_correctly_and_repair_upgrades_them() {
    let (mut server, client, bucket) = TestServer::start_with(ServerOptions {
        env: vec![("STRATA_TEST_LEGACY_BLOBS".into(), "1".into())],
        ..Default::default()
    })
    .and_bucket("legacy")
    .await;
    let single = random_bytes(3 * MIB + 5, 61);
    put(&client, &bucket, "old.bin", single.clone()).await;
    let (p1, p2) = (random_bytes(5 * MIB, 62), random_bytes(MIB + 9, 63));
    let upload = crate::multipart::create_upload(&client, &bucket, "oldmp.bin").await;
    let e1 = crate::multipart::upload_part(&client, &bucket, "oldmp.bin", &upload, 1, &p1).await;
    let e2 = crate::multipart::upload_part(&client, &bucket, "oldmp.bin", &upload, 2, &p2).await;
    ok(
        client
            .complete_multipart_upload()
            .bucket(&bucket)
            .key("oldmp.bin")
            .upload_id(&upload)
            .multipart_upload(crate::multipart::completed(&[(1, e1), (2, e2)]))
            .send()
            .await,
        "complete",
    );
    let multi = [p1.as_slice(), p2.as_slice()].concat();
    drop(client);
    assert!(server.terminate().success());
    let data = server.data_dir().to_path_buf();
    // Written the old way: files hold exactly the data.
    let old_blob = blob_of_len(&data, single.len() as u64);
    blob_of_len(&data, p2.len() as u64);

    // Served by today's binary: whole and by range, correct.
    server.set_env(Vec::new());
    server.start_again();
    let client = server.client();
    assert!(get_bytes(&client, &bucket, "old.bin").await == single);
    assert!(get_bytes(&client, &bucket, "oldmp.bin").await == multi);
    for (key, bytes) in [("old.bin", &single), ("oldmp.bin", &multi)] {
        for (s, e) in [
            (0u64, 4096u64),
            (1_048_571, 1_048_592),
            (5 * MIB as u64 - 3, 5 * MIB as u64 + 3),
            (3 * MIB as u64, 3 * MIB as u64 + 5),
        ] {
            if e as usize > bytes.len() {
                continue;
            }
            let got = range(&client, &bucket, key, &format!("bytes={s}-{}", e - 1))
                .await
                .expect("legacy range");
            assert!(got == bytes[s as usize..e as usize], "{key} bytes={s}-{}", e - 1);
        }
    }
    // A rotten legacy blob: even a range far from the bad byte is refused (the whole blob is
    // verified before a ranged read of it), with a clean 500.
    flip(&old_blob, 2 * MIB as u64);
    let far = range(&client, &bucket, "old.bin", "bytes=0-4095").await;
    assert!(
        matches!(&far, Err(e) if e.status == 500 && e.code.as_deref() == Some("InternalError")),
        "range of a rotten legacy blob: {far:?}"
    );
    let full = SignedRequest::new("GET", format!("/{bucket}/old.bin"))
        .send_partial(&server)
        .await;
    assert!(
        full.error.is_some() && full.body.len() < single.len(),
        "full GET of a rotten legacy blob completed"
    );
    flip(&old_blob, 2 * MIB as u64);
    drop(client);
    assert!(server.terminate().success());

    // fsck and scrub count the legacy blobs; --repair upgrades them.
    let (out, summary) = fsck(&data);
    assert!(out.status.success() && summary.problems == 0, "{}", out.stdout);
    assert!(out.stdout.contains("3 blobs have no block checksums"), "{}", out.stdout);
    let out = tool(&["scrub"], &data);
    assert!(out.status.success(), "{}\n{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("3 blobs have no block checksums"), "{}", out.stdout);
    let out = tool(&["scrub", "--repair"], &data);
    assert!(out.status.success(), "scrub --repair: {}\n{}", out.stdout, out.stderr);
    assert!(
        out.stdout
            .contains("repair: 3 blobs given block checksums, 0 damaged block tables rewritten; 0 not repaired"),
        "{}",
        out.stdout
    );
    let (out, summary) = fsck(&data);
    assert!(out.status.success() && summary.problems == 0, "{}", out.stdout);
    assert!(!out.stdout.contains("no block checksums"), "{}", out.stdout);
    let upgraded = blob_of_len(&data, blob_file_len(single.len() as u64));
    blob_of_len(&data, blob_file_len(p2.len() as u64));
    let again = tool(&["fsck", "--repair"], &data);
    assert!(
        again.stdout.contains("repair: 0 blobs given block checksums"),
        "{}",
        again.stdout
    );

    // Now checked per block: a range clear of the bad block reads, one over it is refused.
    server.start_again();
    let client = server.client();
    assert!(get_bytes(&client, &bucket, "old.bin").await == single);
    assert!(get_bytes(&client, &bucket, "oldmp.bin").await == multi);
    flip(&upgraded, 2 * MIB as u64);
    let far = range(&client, &bucket, "old.bin", "bytes=0-4095")
        .await
        .expect("a range clear of the bad block");
    assert!(far == single[..4096]);
    let near = range(
        &client,
        &bucket,
        "old.bin",
        &format!("bytes={}-{}", 2 * MIB, 2 * MIB + 10),
    )
    .await;
    assert!(
        matches!(&near, Err(e) if e.status == 500),
        "range over the bad block of an upgraded blob: {near:?}"
    );
}
