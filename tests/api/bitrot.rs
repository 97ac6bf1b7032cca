//! Bitrot: one flipped byte in a blob file is found by `strata scrub` (naming bucket/key, the
//! blob, the bad block and its offset, and only that object), a full GET of the rotten object
//! never completes successfully with the full length, while ranges that avoid the bad block
//! and other objects still read fine. (Every read kind: `bitrot_reads.rs`.)

use std::os::unix::fs::FileExt;

use crate::fixtures::*;

const SIZE: usize = 3 * MIB;
const FLIP_AT: u64 = (SIZE / 2) as u64;
/// Bytes per block of the block checksum table (`store::integrity::BLOCK`).
pub const BLOCK: u64 = 64 * 1024;

/// Bytes of a blob file holding `data_len` bytes: the data, then 4 bytes per block.
pub fn blob_file_len(data_len: u64) -> u64 {
    data_len + data_len.div_ceil(BLOCK) * 4
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flipped_byte_is_found_by_scrub_and_never_served() {
    let (mut server, client, bucket) = TestServer::with_bucket("bitrot").await;
    let rotten = random_bytes(SIZE, 31);
    let healthy = random_bytes(2 * MIB + 5, 32);
    put(&client, &bucket, "rotten.bin", rotten.clone()).await;
    put(&client, &bucket, "healthy.bin", healthy.clone()).await;
    put(&client, &bucket, "small.txt", b"inline and fine".to_vec()).await;
    drop(client);
    let status = server.terminate();
    assert!(status.success(), "SIGTERM: {status}");

    let data = server.data_dir().to_path_buf();
    // A clean store scrubs clean first (so the failure below is the flipped byte's doing).
    let clean = scrub(&data);
    assert!(
        clean.status.success(),
        "scrub of an intact store failed: {}\n{}",
        clean.stdout,
        clean.stderr
    );

    let blobs: Vec<_> = blob_files(&data)
        .into_iter()
        .filter(|p| {
            std::fs::metadata(p)
                .map(|m| m.len() == blob_file_len(SIZE as u64))
                .unwrap_or(false)
        })
        .collect();
    assert_eq!(blobs.len(), 1, "exactly one {SIZE}-byte blob expected: {blobs:?}");
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&blobs[0])
        .expect("open blob for writing");
    let mut byte = [0u8; 1];
    file.read_exact_at(&mut byte, FLIP_AT).expect("read byte");
    assert_eq!(
        byte[0], rotten[FLIP_AT as usize],
        "the blob holds the object's bytes as is"
    );
    file.write_all_at(&[byte[0] ^ 0x5a], FLIP_AT).expect("flip byte");
    file.sync_all().expect("sync");
    drop(file);

    let out = scrub(&data);
    assert_eq!(
        out.code(),
        Some(1),
        "scrub must exit 1 on a corrupt blob\nstdout:\n{}\nstderr:\n{}",
        out.stdout,
        out.stderr
    );
    let corrupt: Vec<&str> = out.stdout.lines().filter(|l| l.starts_with("corrupt: ")).collect();
    assert_eq!(corrupt.len(), 1, "one corrupt object expected:\n{}", out.stdout);
    assert!(
        corrupt[0].starts_with(&format!("corrupt: {bucket}/rotten.bin ")),
        "scrub must name bucket/key: {}",
        corrupt[0]
    );
    let block = FLIP_AT / BLOCK;
    assert!(
        corrupt[0].ends_with(&format!("block {block} at offset {}: checksum mismatch", block * BLOCK)),
        "scrub must name the bad block and its offset: {}",
        corrupt[0]
    );
    assert!(
        !out.stdout.contains("healthy.bin") && !out.stdout.contains("small.txt"),
        "intact objects reported:\n{}",
        out.stdout
    );
    // scrub only reads: the rotten blob is still there (scrub is not a repair tool).
    assert_eq!(
        std::fs::metadata(&blobs[0]).map(|m| m.len()).ok(),
        Some(blob_file_len(SIZE as u64))
    );

    server.start_again();
    // Full GET: the server verifies every block as it streams and must cut the response
    // off rather than complete it. The raw client sees exactly what the server sent.
    let full = SignedRequest::new("GET", format!("/{bucket}/rotten.bin"))
        .send_partial(&server)
        .await;
    let served_everything = full.status == Some(200) && full.error.is_none() && full.body.len() >= SIZE;
    assert!(
        !served_everything,
        "a full GET of a rotten object completed with all {} bytes (status {:?}); bitrot was served",
        full.body.len(),
        full.status
    );
    eprintln!(
        "full GET of the rotten object: status {:?}, {} of {SIZE} bytes, error {:?}",
        full.status,
        full.body.len(),
        full.error
    );
    // And the SDK, which a real client uses, does not end up with the whole object either.
    let client = server.client();
    let sdk = match client.get_object().bucket(&bucket).key("rotten.bin").send().await {
        Err(_) => None,
        Ok(out) => out.body.collect().await.ok().map(|b| b.into_bytes().len()),
    };
    assert!(
        sdk.is_none_or(|n| n < SIZE),
        "SDK GET of a rotten object returned {sdk:?} bytes without error"
    );

    // A range that avoids the flipped byte's block is served and correct.
    let range = ok(
        client
            .get_object()
            .bucket(&bucket)
            .key("rotten.bin")
            .range("bytes=0-1048575")
            .send()
            .await,
        "Range GET before the bad byte",
    );
    let got = range.body.collect().await.expect("range body").into_bytes();
    assert!(got.as_ref() == &rotten[..MIB], "range before the flipped byte differs");
    let next_block = (FLIP_AT / BLOCK + 1) * BLOCK;
    let tail = ok(
        client
            .get_object()
            .bucket(&bucket)
            .key("rotten.bin")
            .range(format!("bytes={next_block}-"))
            .send()
            .await,
        "Range GET after the bad block",
    );
    let got = tail.body.collect().await.expect("range body").into_bytes();
    assert!(
        got.as_ref() == &rotten[next_block as usize..],
        "range after the flipped byte's block differs"
    );

    // Other objects are unaffected.
    assert!(
        get_bytes(&client, &bucket, "healthy.bin").await == healthy,
        "healthy object"
    );
    assert_eq!(get_bytes(&client, &bucket, "small.txt").await, b"inline and fine");
    assert_eq!(server.health_status().await, 200);
    server.assert_alive();
}

/// `[scrub] background = true`: the server scrubs itself, rate-limited, finds a flipped byte,
/// and reports progress in the `strata_scrub_*` metrics (and the bitrot counter).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn background_scrub_finds_rot_and_reports_progress() {
    let (server, client, bucket) = TestServer::start_with(ServerOptions {
        config_toml: Some(
            "[scrub]\nbackground = true\nbytes_per_sec = 104857600\ninterval_secs = 1\nstartup_delay_secs = 0\n".into(),
        ),
        ..Default::default()
    })
    .and_bucket("bgscrub")
    .await;
    let rotten = random_bytes(MIB + 3, 71);
    put(&client, &bucket, "rotten.bin", rotten.clone()).await;
    put(&client, &bucket, "fine.bin", random_bytes(200_000, 72)).await;
    let blob = blob_files(server.data_dir())
        .into_iter()
        .find(|p| {
            std::fs::metadata(p)
                .map(|m| m.len() == blob_file_len(rotten.len() as u64))
                .unwrap_or(false)
        })
        .expect("the rotten object's blob");
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&blob)
        .expect("open");
    let mut b = [0u8; 1];
    f.read_exact_at(&mut b, 700_000).expect("read");
    f.write_all_at(&[b[0] ^ 0x10], 700_000).expect("flip");
    drop(f);

    let sample = |text: &str, name: &str| -> f64 {
        text.lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0)
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let text = loop {
        let text = raw_request(
            "GET",
            &format!("{}/_strata/metrics", server.endpoint()),
            &[],
            Vec::new(),
        )
        .await
        .text();
        if sample(&text, "strata_scrub_failures_total") >= 1.0
            && sample(&text, "strata_scrub_last_completed_timestamp_seconds") > 0.0
        {
            break text;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the background scrub did not report the rot within 60 s:\n{text}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    assert!(sample(&text, "strata_scrub_objects_total") >= 2.0, "{text}");
    assert!(
        sample(&text, "strata_scrub_scanned_bytes_total") >= (MIB + 200_000) as f64,
        "{text}"
    );
    assert!(sample(&text, "strata_bitrot_detected_total") >= 1.0, "{text}");
    // The intact object still reads; the rotten one is never served whole.
    let full = SignedRequest::new("GET", format!("/{bucket}/rotten.bin"))
        .send_partial(&server)
        .await;
    assert!(full.error.is_some() || full.status != Some(200), "rotten object served");
}
