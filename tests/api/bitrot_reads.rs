//! Verified reads at every offset: a byte flipped in a blob file at its first, a middle and
//! its last byte (a ~3 MiB single-PUT object, plain and SSE-S3), and at a part boundary of a
//! multipart object (5 MiB parts: the last byte of part 1, the first byte of part 2); for
//! each, every read kind through aws-sdk-s3: full GET, range GETs over the bad byte (fixed,
//! around it, suffix, open-ended), ranges clear of the bad block, HEAD then GET, partNumber
//! GET, CopyObject, UploadPartCopy with and without CopySourceRange. Asserted: no 2xx ever
//! carries a wrong byte; a failure found in the first blocks read is a clean `500
//! InternalError` (with a RequestId), later it is an aborted body (fewer bytes than the
//! Content-Length, never a complete response); nothing is copied; every failure moves
//! `strata_bitrot_detected_total` by one and writes exactly one `bitrot detected` log line.
//! Also: a transform of a rotten original, and a derivative cache file rotting on disk.

use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use aws_sdk_s3::types::ServerSideEncryption;
use aws_sdk_s3::Client;

use crate::bitrot::blob_file_len;
use crate::fixtures::*;

const BLOCK: u64 = 64 * 1024;
/// Bytes the first read of a GET covers (`store::blob::CHUNK`): 4 blocks.
const FIRST_CHUNK: u64 = 256 * 1024;
/// Plaintext bytes of an encrypted segment and its tag; segments decrypted per read.
const SEG: u64 = 64 * 1024;
const TAG: u64 = 16;
const SEG_BATCH: u64 = 16;

/// One object under test: its bytes and how they are laid out in blobs.
struct Obj {
    key: String,
    data: Vec<u8>,
    /// Sizes of its blobs (parts), in order.
    parts: Vec<u64>,
    sealed: bool,
    /// The blob files, in part order.
    files: Vec<PathBuf>,
}

impl Obj {
    fn size(&self) -> u64 {
        self.data.len() as u64
    }

    /// (blob index, first object byte of that blob) of object byte `at`.
    fn blob_of(&self, at: u64) -> (usize, u64) {
        let mut start = 0;
        for (i, &p) in self.parts.iter().enumerate() {
            if at < start + p {
                return (i, start);
            }
            start += p;
        }
        (self.parts.len() - 1, start - self.parts.last().copied().unwrap_or(0))
    }

    /// Offset in its blob file of object byte `at`.
    fn disk_offset(&self, at: u64) -> (usize, u64) {
        let (i, start) = self.blob_of(at);
        let p = at - start;
        let off = if self.sealed {
            p / SEG * (SEG + TAG) + p % SEG
        } else {
            p
        };
        (i, off)
    }

    /// The object bytes `[from, to)` of the 64 KiB unit (block, or encrypted segment) holding `at`.
    fn unit_of(&self, at: u64) -> (u64, u64) {
        let (i, start) = self.blob_of(at);
        let u = start + (at - start) / BLOCK * BLOCK;
        (u, (u + BLOCK).min(start + self.parts[i]))
    }

    /// Whether the first read of a GET of `[start, end)` covers object byte `at`.
    fn first_read_covers(&self, start: u64, end: u64, at: u64) -> bool {
        let (i, blob_start) = self.blob_of(start);
        let blob_end = blob_start + self.parts[i];
        let offset = start - blob_start;
        let rel_end = end.min(blob_end) - blob_start;
        let (from, to) = if self.sealed {
            let first = offset / SEG;
            let total = self.parts[i].div_ceil(SEG).max(1);
            let range_segs = rel_end.div_ceil(SEG).max(first + 1);
            let last = (first + SEG_BATCH).min(total).min(range_segs);
            (first * SEG, last * SEG)
        } else {
            let aligned = offset / BLOCK * BLOCK;
            (
                aligned,
                (aligned + FIRST_CHUNK)
                    .min(rel_end.div_ceil(BLOCK) * BLOCK)
                    .min(self.parts[i]),
            )
        };
        (blob_start + from..blob_start + to).contains(&at)
    }
}

/// What a read is expected to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    Intact,
    Refused,
    Aborted,
}

fn expect_for(obj: &Obj, start: u64, end: u64, bad: u64) -> Expect {
    let (u0, u1) = obj.unit_of(bad);
    if end <= u0 || start >= u1 {
        Expect::Intact
    } else if obj.first_read_covers(start, end, bad) {
        Expect::Refused
    } else {
        Expect::Aborted
    }
}

/// What an SDK GET did.
#[derive(Debug)]
enum Seen {
    Complete(Vec<u8>),
    /// Headers arrived, then the body failed after `got` bytes (all kept).
    Aborted(Vec<u8>),
    Error(ErrInfo),
}

async fn sdk_get(client: &Client, bucket: &str, key: &str, range: Option<&str>, part: Option<i32>) -> Seen {
    let out = match client
        .get_object()
        .bucket(bucket)
        .key(key)
        .set_range(range.map(str::to_string))
        .set_part_number(part)
        .send()
        .await
    {
        Ok(o) => o,
        Err(e) => return Seen::Error(err_info(&e)),
    };
    let mut body = out.body;
    let mut got = Vec::new();
    loop {
        match body.try_next().await {
            Ok(Some(chunk)) => got.extend_from_slice(&chunk),
            Ok(None) => return Seen::Complete(got),
            Err(_) => return Seen::Aborted(got),
        }
    }
}

/// Counts failures and checks the counter and the log stay in step with them.
struct Tally {
    failures: u64,
}

async fn bitrot_counter(server: &TestServer) -> u64 {
    let resp = raw_request(
        "GET",
        &format!("{}/_strata/metrics", server.endpoint()),
        &[],
        Vec::new(),
    )
    .await;
    assert_eq!(resp.status, 200, "metrics scrape");
    resp.text()
        .lines()
        .find(|l| l.starts_with("strata_bitrot_detected_total "))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse::<f64>().ok())
        .map(|v| v as u64)
        .unwrap_or(0)
}

fn bitrot_log_lines(server: &TestServer) -> u64 {
    server
        .stderr_log()
        .lines()
        .filter(|l| l.contains("bitrot detected"))
        .count() as u64
}

impl Tally {
    /// After one request that should (`failed`) or should not have found rot.
    async fn step(&mut self, server: &TestServer, failed: bool, what: &str) {
        if failed {
            self.failures += 1;
        }
        let counter = bitrot_counter(server).await;
        assert_eq!(
            counter, self.failures,
            "{what}: strata_bitrot_detected_total is {counter}, expected {} (one per failed read)",
            self.failures
        );
        let lines = bitrot_log_lines(server);
        assert_eq!(
            lines, self.failures,
            "{what}: {lines} `bitrot detected` log lines, expected exactly one per failed read ({})",
            self.failures
        );
    }
}

/// A GET (`range` or `part`) judged against `expect` and the original bytes.
#[allow(clippy::too_many_arguments)]
async fn check_get(
    server: &TestServer,
    tally: &mut Tally,
    bucket: &str,
    obj: &Obj,
    range: Option<&str>,
    part: Option<i32>,
    (start, end): (u64, u64),
    expect: Expect,
    what: &str,
) {
    let client = server.client();
    let seen = sdk_get(&client, bucket, &obj.key, range, part).await;
    let want = &obj.data[start as usize..end as usize];
    match (&seen, expect) {
        (Seen::Complete(b), Expect::Intact) => {
            assert!(
                b.as_slice() == want,
                "{what}: intact read returned wrong bytes ({} bytes)",
                b.len()
            )
        }
        (Seen::Error(e), Expect::Refused) => assert!(
            e.status == 500 && e.code.as_deref() == Some("InternalError"),
            "{what}: expected 500 InternalError, got {e:?}"
        ),
        // Aborted so early that hyper had not flushed the response head yet: the client saw
        // the connection close with no response at all (never a 2xx).
        (Seen::Error(e), Expect::Aborted) if e.status == 0 => {}
        (Seen::Aborted(b), Expect::Aborted) => {
            assert!(b.len() < want.len(), "{what}: aborted body had all its bytes");
            assert!(
                b.as_slice() == &want[..b.len()],
                "{what}: the bytes sent before the abort are not the object's"
            );
        }
        (seen, expect) => panic!(
            "{what}: expected {expect:?}, got {}",
            match seen {
                Seen::Complete(b) if b.as_slice() != want =>
                    format!("a COMPLETE response with WRONG bytes ({} bytes)", b.len()),
                Seen::Complete(b) => format!("a complete response ({} bytes)", b.len()),
                Seen::Aborted(b) => format!("an aborted body after {} bytes", b.len()),
                Seen::Error(e) => format!("error {e:?}"),
            }
        ),
    }
    tally.step(server, expect != Expect::Intact, what).await;
}

/// `(range header, start, end)` reads over the bad byte and clear of its unit.
fn ranges(obj: &Obj, bad: u64) -> Vec<(String, u64, u64)> {
    let n = obj.size();
    let mut out = Vec::new();
    let mut add = |s: u64, e: u64| {
        if s < e && e <= n {
            out.push((format!("bytes={s}-{}", e - 1), s, e));
        }
    };
    add(1_048_571, 1_048_592);
    add(0, 2_097_153);
    add(bad.saturating_sub(10), (bad + 11).min(n));
    add(bad, bad + 1);
    add(bad.saturating_sub(3 * BLOCK), (bad + 1).min(n));
    let (u0, u1) = obj.unit_of(bad);
    // Clear of the bad unit: the unit before it, the unit after it, and 4 KiB inside those.
    add(u0.saturating_sub(BLOCK), u0);
    add(u1, (u1 + BLOCK).min(n));
    add(u0.saturating_sub(8192), u0.saturating_sub(4096));
    add(u1 + 4096, (u1 + 8192).min(n));
    // Suffix ranges: one over the bad byte, one short of it (when there is room).
    for len in [n - bad, n - u1] {
        if len > 0 {
            out.push((format!("bytes=-{len}"), n - len, n));
        }
    }
    // Open-ended from the bad byte.
    out.push((format!("bytes={bad}-"), bad, n));
    out
}

fn flip(file: &Path, at: u64) {
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(file)
        .expect("open blob for writing");
    let mut b = [0u8; 1];
    f.read_exact_at(&mut b, at).expect("read byte");
    f.write_all_at(&[b[0] ^ 0x5a], at).expect("flip byte");
    f.sync_all().expect("sync");
}

/// The blob file whose first bytes (or, for sealed blobs, whose length) identify it.
fn find_blob(data: &Path, len: u64, prefix: Option<&[u8]>) -> PathBuf {
    let found: Vec<PathBuf> = blob_files(data)
        .into_iter()
        .filter(|p| std::fs::metadata(p).map(|m| m.len() == len).unwrap_or(false))
        .filter(|p| match prefix {
            None => true,
            Some(want) => {
                let f = std::fs::File::open(p).expect("open blob");
                let mut got = vec![0u8; want.len()];
                f.read_exact_at(&mut got, 0).is_ok() && got == want
            }
        })
        .collect();
    assert_eq!(found.len(), 1, "expected one blob file of {len} bytes: {found:?}");
    found.into_iter().next().expect("one")
}

fn sealed_file_len(n: u64) -> u64 {
    let data = n + TAG * n.div_ceil(SEG).max(1);
    data + data.div_ceil(BLOCK) * 4
}

/// Everything one flipped byte must survive. Leaves the byte flipped back.
async fn every_read_kind(server: &TestServer, tally: &mut Tally, bucket: &str, obj: &Obj, bad: u64, label: &str) {
    let (file_index, disk_at) = obj.disk_offset(bad);
    let file = &obj.files[file_index];
    flip(file, disk_at);
    let client = server.client();
    let n = obj.size();
    let what = |w: &str| format!("{label}: {w}");

    // Full GET: the raw response is never complete and well framed.
    let expect_full = expect_for(obj, 0, n, bad);
    let raw = SignedRequest::new("GET", format!("/{bucket}/{}", obj.key))
        .send_partial(server)
        .await;
    match expect_full {
        Expect::Refused => {
            assert_eq!(raw.status, Some(500), "{}", what("raw full GET status"));
            let text = String::from_utf8_lossy(&raw.body).into_owned();
            assert_eq!(xml_element(&text, "Code").as_deref(), Some("InternalError"), "{text}");
            let header_id = raw
                .headers
                .as_ref()
                .and_then(|h| h.get("x-amz-request-id"))
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            assert!(header_id.is_some(), "500 without x-amz-request-id");
            assert_eq!(
                xml_element(&text, "RequestId"),
                header_id,
                "the error body names the request"
            );
        }
        _ => {
            assert_eq!(raw.status, Some(200), "{}", what("raw full GET status"));
            let declared: Option<usize> = raw
                .headers
                .as_ref()
                .and_then(|h| h.get("content-length"))
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse().ok());
            assert_eq!(declared, Some(n as usize), "{}", what("declared Content-Length"));
            assert!(
                raw.error.is_some() && raw.body.len() < n as usize,
                "{}: a full GET of a rotten object ended cleanly with {} of {n} bytes",
                label,
                raw.body.len()
            );
            assert!(
                raw.body[..] == obj.data[..raw.body.len()],
                "{}",
                what("prefix before the abort")
            );
        }
    }
    tally.step(server, true, &what("raw full GET")).await;
    check_get(
        server,
        tally,
        bucket,
        obj,
        None,
        None,
        (0, n),
        expect_full,
        &what("SDK full GET"),
    )
    .await;

    // HEAD reads no bytes and still answers; the GET after it is checked like any other.
    let head = ok(
        client.head_object().bucket(bucket).key(&obj.key).send().await,
        "HEAD of a rotten object",
    );
    assert_eq!(head.content_length(), Some(n as i64));
    tally.step(server, false, &what("HEAD")).await;

    for (spec, s, e) in ranges(obj, bad) {
        let expect = expect_for(obj, s, e, bad);
        check_get(
            server,
            tally,
            bucket,
            obj,
            Some(&spec),
            None,
            (s, e),
            expect,
            &what(&format!("GET {spec}")),
        )
        .await;
    }

    // partNumber GETs: every part.
    let mut part_start = 0;
    for (i, &len) in obj.parts.iter().enumerate() {
        let (s, e) = (part_start, part_start + len);
        let expect = expect_for(obj, s, e, bad);
        let range = if obj.parts.len() > 1 { (s, e) } else { (0, n) };
        check_get(
            server,
            tally,
            bucket,
            obj,
            None,
            Some(i as i32 + 1),
            range,
            expect,
            &what(&format!("GET partNumber={}", i + 1)),
        )
        .await;
        part_start = e;
    }

    // CopyObject of the whole object: refused with a 500; no destination.
    let dest = format!("{}-copy", obj.key);
    let copied = client
        .copy_object()
        .bucket(bucket)
        .key(&dest)
        .copy_source(format!("{bucket}/{}", obj.key))
        .send()
        .await;
    expect_error(copied, 500, "InternalError");
    expect_status(client.head_object().bucket(bucket).key(&dest).send().await, 404);
    tally.step(server, true, &what("CopyObject")).await;

    // UploadPartCopy: whole source, a range over the bad byte (both refused, no part), and a
    // range clear of the bad unit (copied).
    let upload = crate::multipart::create_upload(&client, bucket, &format!("{}-upc", obj.key)).await;
    let (u0, u1) = obj.unit_of(bad);
    let clear = if u1 + BLOCK <= n {
        (u1, u1 + BLOCK)
    } else {
        (0, u0.min(BLOCK))
    };
    let cases = [
        (1, None, true),
        (2, Some((bad.saturating_sub(100), (bad + 100).min(n))), true),
        (3, Some(clear), false),
    ];
    for (part, range, fails) in cases {
        let mut req = client
            .upload_part_copy()
            .bucket(bucket)
            .key(format!("{}-upc", obj.key))
            .upload_id(&upload)
            .part_number(part)
            .copy_source(format!("{bucket}/{}", obj.key));
        if let Some((s, e)) = range {
            req = req.copy_source_range(format!("bytes={s}-{}", e - 1));
        }
        let result = req.send().await;
        if fails {
            expect_error(result, 500, "InternalError");
        } else {
            let out = ok(result, &what("UploadPartCopy of a clear range"));
            let (s, e) = range.expect("a range");
            assert_eq!(
                out.copy_part_result().and_then(|r| r.e_tag()),
                Some(etag_of(&obj.data[s as usize..e as usize]).as_str()),
                "{}",
                what("copied part's ETag")
            );
        }
        tally
            .step(server, fails, &what(&format!("UploadPartCopy part {part}")))
            .await;
    }
    let listed = ok(
        client
            .list_parts()
            .bucket(bucket)
            .key(format!("{}-upc", obj.key))
            .upload_id(&upload)
            .send()
            .await,
        "ListParts",
    );
    let numbers: Vec<i32> = listed.parts().iter().filter_map(|p| p.part_number()).collect();
    assert_eq!(numbers, vec![3], "{}", what("only the clear range was copied"));
    ok(
        client
            .abort_multipart_upload()
            .bucket(bucket)
            .key(format!("{}-upc", obj.key))
            .upload_id(&upload)
            .send()
            .await,
        "abort",
    );
    let tmp = files_under(&server.data_dir().join("tmp"));
    assert!(tmp.is_empty(), "{}: refused copies left files in tmp/: {tmp:?}", label);

    flip(file, disk_at); // back to intact
    assert!(
        get_bytes(&client, bucket, &obj.key).await == obj.data,
        "{}",
        what("intact again after the byte is restored")
    );
    tally.step(server, false, &what("restored")).await;
}

fn key_dir_config() -> (tempfile::TempDir, ServerOptions) {
    let dir = tempfile::Builder::new()
        .prefix("strata-keys-")
        .tempdir()
        .expect("keys tempdir");
    let toml = format!(
        "[encryption]\nmaster_key_file = {}\n[limits]\ndeleted_blob_grace_secs = 0\n",
        toml::Value::String(dir.path().join("master.key").display().to_string())
    );
    let opts = ServerOptions {
        config_toml: Some(toml),
        capture_stderr: true,
        ..Default::default()
    };
    (dir, opts)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flipped_byte_is_never_served_by_any_read() {
    let (_keys, opts) = key_dir_config();
    let (server, client, bucket) = TestServer::start_with(opts).and_bucket("rot").await;
    let data_dir = server.data_dir().to_path_buf();

    // A single-PUT object, plain.
    let single = random_bytes(3 * MIB + 17, 41);
    put(&client, &bucket, "single.bin", single.clone()).await;
    let single = Obj {
        key: "single.bin".into(),
        parts: vec![single.len() as u64],
        sealed: false,
        files: vec![find_blob(
            &data_dir,
            blob_file_len(single.len() as u64),
            Some(&single[..64]),
        )],
        data: single,
    };

    // The same size class, SSE-S3.
    let sealed = random_bytes(3 * MIB + 31, 42);
    ok(
        client
            .put_object()
            .bucket(&bucket)
            .key("sealed.bin")
            .server_side_encryption(ServerSideEncryption::Aes256)
            .body(sealed.clone().into())
            .send()
            .await,
        "SSE-S3 PUT",
    );
    let sealed = Obj {
        key: "sealed.bin".into(),
        parts: vec![sealed.len() as u64],
        sealed: true,
        files: vec![find_blob(&data_dir, sealed_file_len(sealed.len() as u64), None)],
        data: sealed,
    };

    // A multipart object: 5 MiB, 5 MiB, 1 MiB + 5.
    let parts = [
        random_bytes(5 * MIB, 43),
        random_bytes(5 * MIB, 44),
        random_bytes(MIB + 5, 45),
    ];
    let upload = crate::multipart::create_upload(&client, &bucket, "multi.bin").await;
    let mut etags = Vec::new();
    for (i, p) in parts.iter().enumerate() {
        let n = i as i32 + 1;
        etags.push((
            n,
            crate::multipart::upload_part(&client, &bucket, "multi.bin", &upload, n, p).await,
        ));
    }
    ok(
        client
            .complete_multipart_upload()
            .bucket(&bucket)
            .key("multi.bin")
            .upload_id(&upload)
            .multipart_upload(crate::multipart::completed(&etags))
            .send()
            .await,
        "complete",
    );
    let multi = Obj {
        key: "multi.bin".into(),
        parts: parts.iter().map(|p| p.len() as u64).collect(),
        sealed: false,
        files: parts
            .iter()
            .map(|p| find_blob(&data_dir, blob_file_len(p.len() as u64), Some(&p[..64])))
            .collect(),
        data: parts.concat(),
    };

    let mut tally = Tally { failures: 0 };
    tally.step(&server, false, "before any rot").await;
    for obj in [&single, &sealed] {
        let n = obj.size();
        for (bad, label) in [(0, "first byte"), (n / 2, "middle byte"), (n - 1, "last byte")] {
            every_read_kind(&server, &mut tally, &bucket, obj, bad, &format!("{} {label}", obj.key)).await;
        }
    }
    let boundary = 5 * MIB as u64;
    for (bad, label) in [
        (boundary - 1, "last byte of part 1"),
        (boundary, "first byte of part 2"),
    ] {
        every_read_kind(&server, &mut tally, &bucket, &multi, bad, &format!("multi.bin {label}")).await;
    }
    assert!(
        tally.failures > 50,
        "the matrix exercised {} failing reads",
        tally.failures
    );
    // The log line names the object, the blob and the offset.
    let log = strip_ansi(&server.stderr_log());
    let line = log
        .lines()
        .find(|l| l.contains("bitrot detected") && l.contains("multi.bin"))
        .expect("a bitrot line for multi.bin");
    for field in ["bucket=", "key=multi.bin", "version_id=", "blob=", "offset="] {
        assert!(line.contains(field), "bitrot log line lacks {field}: {line}");
    }
}

/// The log without terminal colour codes.
fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for d in chars.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn image(name: &str) -> Vec<u8> {
    let dir = std::env::var_os("STRATA_TESTDATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/testdata/images")));
    std::fs::read(dir.join(name)).expect("read test image")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transforms_read_only_verified_originals_and_cache_hits_are_checked() {
    let (mut server, client, bucket) = TestServer::start_with(ServerOptions {
        capture_stderr: true,
        ..Default::default()
    })
    .and_bucket("rotimg")
    .await;
    let rotten_photo = image("twowings-2560x1600.jpg");
    let photo = image("storm-1920x1280.jpg");
    put(&client, &bucket, "rotten.jpg", rotten_photo.clone()).await;
    put(&client, &bucket, "cached.jpg", photo.clone()).await;
    let data_dir = server.data_dir().to_path_buf();
    let rotten_blob = find_blob(
        &data_dir,
        blob_file_len(rotten_photo.len() as u64),
        Some(&rotten_photo[..64]),
    );
    let mut tally = Tally { failures: 0 };
    let (rotten_key, other) = ("rotten.jpg", "cached.jpg");

    // A rotten original: the transform refuses with a 500, and makes no derivative.
    flip(&rotten_blob, rotten_photo.len() as u64 / 2);
    let path = |k: &str| format!("/{bucket}/{k}?w=300&f=png");
    let refused = SignedRequest::new("GET", path(rotten_key)).send(&server).await;
    assert_eq!(
        refused.status,
        500,
        "transform of a rotten original: {}",
        refused.text()
    );
    assert_eq!(refused.error_code().as_deref(), Some("InternalError"));
    tally.step(&server, true, "transform of a rotten original").await;
    let cache_files = |d: &Path| -> Vec<PathBuf> {
        files_under(&d.join("cache"))
            .into_iter()
            .filter(|p| !p.starts_with(d.join("cache").join("tmp")))
            .collect()
    };
    assert!(
        cache_files(&data_dir).is_empty(),
        "a derivative of rotten bytes was cached"
    );

    // A derivative cache file rotting on disk (after a restart, so not in memory): a miss,
    // re-derived from the verified original, counted.
    let first = SignedRequest::new("GET", path(other)).send(&server).await;
    assert_eq!(first.status, 200, "{}", first.text());
    assert_eq!(first.header("x-strata-cache"), Some("miss"));
    drop(client);
    server.restart();
    let log_before = bitrot_log_lines(&server);
    let files = cache_files(&data_dir);
    assert_eq!(files.len(), 1, "one cached derivative: {files:?}");
    let len = std::fs::metadata(&files[0]).expect("stat").len();
    flip(&files[0], len - 10);
    let again = SignedRequest::new("GET", path(other)).send(&server).await;
    assert_eq!(again.status, 200, "{}", again.text());
    assert_eq!(
        again.header("x-strata-cache"),
        Some("miss"),
        "a rotten cache file was a hit"
    );
    let img = image::load_from_memory_with_format(&again.body, image::ImageFormat::Png).expect("a valid PNG");
    assert_eq!(img.width(), 300);
    assert!(again.body == first.body, "re-derived bytes equal the first derivative");
    let metrics = raw_request(
        "GET",
        &format!("{}/_strata/metrics", server.endpoint()),
        &[],
        Vec::new(),
    )
    .await;
    assert!(
        metrics
            .text()
            .lines()
            .any(|l| l == "strata_derivative_cache_corrupt_total 1"),
        "derivative cache corruption not counted:\n{}",
        metrics.text()
    );
    // The cache file was replaced with a good one: the next request is a verified hit.
    let hit = SignedRequest::new("GET", path(other)).send(&server).await;
    assert_eq!(hit.header("x-strata-cache"), Some("hit"));
    assert!(hit.body == first.body);
    assert_eq!(bitrot_counter(&server).await, 0, "cache rot is not blob bitrot");
    assert_eq!(bitrot_log_lines(&server), log_before);
}
