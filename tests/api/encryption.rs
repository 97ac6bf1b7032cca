//! Encryption at rest through the S3 API: SSE-S3, SSE-KMS (the offline keyring), SSE-C and
//! bucket default encryption. Round trips and ranges across the 64 KiB segment boundaries,
//! multipart (and UploadPartCopy) across part boundaries, copies between encryption kinds,
//! the SSE-C key checks, what reaches the disk (no plaintext anywhere in the data dir or the
//! derivative cache, the master key outside the data dir, mode 0600 and out of the logs),
//! tamper detection (GET aborted, ranges of intact segments served, scrub names the object),
//! master-key rotation with an upload in progress, and restarts.
//!
//! Every test points `[encryption] master_key_file` at a directory it owns (or, for the
//! default location `<data_dir>.master-key`, puts the data dir inside one), so no key file
//! is left behind.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::os::unix::fs::{FileExt, PermissionsExt};
use std::path::{Path, PathBuf};

use aws_sdk_s3::operation::get_object::builders::GetObjectFluentBuilder;
use aws_sdk_s3::operation::get_object::GetObjectOutput;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    BucketVersioningStatus, ServerSideEncryption, ServerSideEncryptionByDefault, ServerSideEncryptionConfiguration,
    ServerSideEncryptionRule, VersioningConfiguration,
};
use aws_sdk_s3::Client;

use crate::fixtures::*;
use crate::multipart::completed;

/// Plaintext bytes per encrypted segment, and the tag each segment carries on disk.
const SEG: usize = 64 * 1024;
const TAG: usize = 16;

/// Bytes of the blob file of an `n`-byte encrypted object: the sealed segments, then the
/// block checksum table (4 bytes per 64 KiB of them).
fn sealed_len(n: usize) -> u64 {
    let data = (n + TAG * n.div_ceil(SEG).max(1)) as u64;
    data + data.div_ceil(64 * 1024) * 4
}

// ---------------------------------------------------------------------------------------------
// Keys, config, offline commands
// ---------------------------------------------------------------------------------------------

/// A private directory holding the master key file and a config file naming it, shared by
/// the server and the offline `strata kms` / `strata key rotate-master` commands.
struct Keys {
    dir: tempfile::TempDir,
    toml: String,
}

impl Keys {
    fn new(default_kms_key_id: Option<&str>) -> Keys {
        let dir = tempfile::Builder::new()
            .prefix("strata-keys-")
            .tempdir()
            .expect("create keys tempdir");
        let key_file = dir.path().join("master.key");
        let mut toml = format!(
            "[encryption]\nmaster_key_file = {}\n",
            toml::Value::String(key_file.display().to_string())
        );
        if let Some(id) = default_kms_key_id {
            toml.push_str(&format!(
                "default_kms_key_id = {}\n",
                toml::Value::String(id.to_string())
            ));
        }
        std::fs::write(dir.path().join("strata.toml"), &toml).expect("write config");
        Keys { dir, toml }
    }

    fn key_file(&self) -> PathBuf {
        self.dir.path().join("master.key")
    }

    fn config(&self) -> PathBuf {
        self.dir.path().join("strata.toml")
    }

    fn opts(&self) -> ServerOptions {
        ServerOptions {
            config_toml: Some(self.toml.clone()),
            ..Default::default()
        }
    }

    /// `strata ARGS --data DATA --config CONFIG` without judging the exit status.
    fn offline_tool(&self, data: &Path, args: &[&str]) -> ToolOutput {
        let config = self.config();
        let mut all: Vec<&OsStr> = args.iter().map(OsStr::new).collect();
        all.extend([
            OsStr::new("--data"),
            data.as_os_str(),
            OsStr::new("--config"),
            config.as_os_str(),
        ]);
        run_strata_tool(&all)
    }

    /// Like [`offline_tool`](Self::offline_tool), panicking unless it succeeds; returns stdout.
    fn offline(&self, data: &Path, args: &[&str]) -> String {
        let out = self.offline_tool(data, args);
        assert!(
            out.status.success(),
            "`strata {}` failed with {}\nstdout:\n{}\nstderr:\n{}",
            args.join(" "),
            out.status,
            out.stdout,
            out.stderr
        );
        out.stdout
    }
}

/// A fresh, empty data directory (for offline commands before the first start).
fn fresh_data_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("strata-data-")
        .tempdir()
        .expect("create data tempdir")
}

/// The master key file: `current = "id"`, `[keys] id = "hex"`.
#[derive(Debug, Clone, PartialEq)]
struct KeyFile {
    current: String,
    keys: BTreeMap<String, String>,
}

fn read_key_file(path: &Path) -> KeyFile {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read key file {}: {e}", path.display()));
    let table: toml::Table = toml::from_str(&text).unwrap_or_else(|e| panic!("key file is not TOML ({e}):\n{text}"));
    let current = table
        .get("current")
        .and_then(|v| v.as_str())
        .unwrap_or_else(|| panic!("no `current` in the key file:\n{text}"))
        .to_string();
    let keys: BTreeMap<String, String> = table
        .get("keys")
        .and_then(|v| v.as_table())
        .unwrap_or_else(|| panic!("no [keys] in the key file:\n{text}"))
        .iter()
        .map(|(id, v)| (id.clone(), v.as_str().expect("hex key").to_string()))
        .collect();
    for (id, hex_key) in &keys {
        assert!(
            hex_key.len() == 64 && hex_key.bytes().all(|b| b.is_ascii_hexdigit()),
            "key {id} is not 64 hex digits"
        );
    }
    KeyFile { current, keys }
}

#[track_caller]
fn assert_mode_0600(path: &Path) {
    let mode = std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("stat {}: {e}", path.display()))
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "mode of {} is {:o}", path.display(), mode & 0o777);
}

// ---------------------------------------------------------------------------------------------
// SSE request parameters
// ---------------------------------------------------------------------------------------------

/// An SSE-C key as the SDK sends it: base64 of the 32 bytes and base64 of their MD5.
#[derive(Clone, Debug)]
struct CustomerKey {
    raw: Vec<u8>,
    b64: String,
    md5: String,
}

fn customer_key(seed: u64) -> CustomerKey {
    let raw = random_bytes(32, seed);
    CustomerKey {
        b64: b64(&raw),
        md5: b64(&md5_bytes(&raw)),
        raw,
    }
}

/// Adds the SSE-C headers to any request builder that has them.
macro_rules! with_key {
    ($b:expr, $k:expr) => {
        $b.sse_customer_algorithm("AES256")
            .sse_customer_key($k.b64.clone())
            .sse_customer_key_md5($k.md5.clone())
    };
}

/// Adds the copy-source SSE-C headers (CopyObject, UploadPartCopy).
macro_rules! with_source_key {
    ($b:expr, $k:expr) => {
        $b.copy_source_sse_customer_algorithm("AES256")
            .copy_source_sse_customer_key($k.b64.clone())
            .copy_source_sse_customer_key_md5($k.md5.clone())
    };
}

/// What a write asks for.
#[derive(Clone, Copy, Debug)]
enum Sse<'a> {
    Plain,
    S3,
    Kms(Option<&'a str>),
    C(&'a CustomerKey),
}

impl<'a> Sse<'a> {
    fn key(self) -> Option<&'a CustomerKey> {
        match self {
            Sse::C(k) => Some(k),
            _ => None,
        }
    }
}

/// Adds a write's encryption headers to PutObject / CopyObject / CreateMultipartUpload.
macro_rules! with_sse {
    ($b:expr, $sse:expr) => {{
        let b = $b;
        match $sse {
            Sse::Plain => b,
            Sse::S3 => b.server_side_encryption(ServerSideEncryption::Aes256),
            Sse::Kms(None) => b.server_side_encryption(ServerSideEncryption::AwsKms),
            Sse::Kms(Some(id)) => b.server_side_encryption(ServerSideEncryption::AwsKms).ssekms_key_id(id),
            Sse::C(k) => with_key!(b, k),
        }
    }};
}

async fn put_sse(
    client: &Client,
    bucket: &str,
    key: &str,
    body: &[u8],
    sse: Sse<'_>,
) -> aws_sdk_s3::operation::put_object::PutObjectOutput {
    ok(
        with_sse!(client.put_object().bucket(bucket).key(key), sse)
            .body(ByteStream::from(body.to_vec()))
            .send()
            .await,
        &format!("PUT {bucket}/{key} with {sse:?}"),
    )
}

fn get_req(client: &Client, bucket: &str, key: &str, k: Option<&CustomerKey>) -> GetObjectFluentBuilder {
    let b = client.get_object().bucket(bucket).key(key);
    match k {
        Some(k) => with_key!(b, k),
        None => b,
    }
}

async fn body_of(out: GetObjectOutput, what: &str) -> Vec<u8> {
    out.body
        .collect()
        .await
        .unwrap_or_else(|e| panic!("{what}: reading the body failed: {e:?}"))
        .into_bytes()
        .to_vec()
}

/// GETs a whole object (with the SSE-C key if given); returns the bytes and the response.
async fn read(client: &Client, bucket: &str, key: &str, k: Option<&CustomerKey>) -> (Vec<u8>, GetObjectOutput) {
    let what = format!("GET {bucket}/{key}");
    let mut out = ok(get_req(client, bucket, key, k).send().await, &what);
    let body = std::mem::replace(&mut out.body, ByteStream::from(Vec::new()));
    let bytes = body
        .collect()
        .await
        .unwrap_or_else(|e| panic!("{what}: reading the body failed: {e:?}"))
        .into_bytes()
        .to_vec();
    (bytes, out)
}

/// `[start, end)` of a `bytes=` range over an object of `len` bytes.
fn range_of(len: usize, spec: &str) -> (usize, usize) {
    let r = spec.strip_prefix("bytes=").expect("bytes= range");
    let (a, b) = r.split_once('-').expect("a-b range");
    if a.is_empty() {
        let n: usize = b.parse().expect("suffix length");
        (len.saturating_sub(n), len)
    } else {
        let start: usize = a.parse().expect("range start");
        let end = if b.is_empty() {
            len
        } else {
            (b.parse::<usize>().expect("range end") + 1).min(len)
        };
        (start, end)
    }
}

/// A Range GET must return exactly the requested bytes and the right Content-Range.
async fn check_range(client: &Client, bucket: &str, key: &str, k: Option<&CustomerKey>, data: &[u8], spec: &str) {
    let what = format!("GET {bucket}/{key} Range: {spec}");
    let out = ok(get_req(client, bucket, key, k).range(spec).send().await, &what);
    let (start, end) = range_of(data.len(), spec);
    assert_eq!(
        out.content_range(),
        Some(format!("bytes {}-{}/{}", start, end - 1, data.len()).as_str()),
        "{what}: Content-Range"
    );
    assert_eq!(
        out.content_length(),
        Some((end - start) as i64),
        "{what}: Content-Length"
    );
    let got = body_of(out, &what).await;
    assert!(
        got == data[start..end],
        "{what}: {} bytes came back, expected {} (first difference at {:?})",
        got.len(),
        end - start,
        got.iter().zip(&data[start..end]).position(|(a, b)| a != b)
    );
}

/// Creates, uploads and completes a multipart upload with the given encryption.
async fn multipart_sse(client: &Client, bucket: &str, key: &str, sse: Sse<'_>, parts: &[&[u8]]) -> String {
    let created = ok(
        with_sse!(client.create_multipart_upload().bucket(bucket).key(key), sse)
            .send()
            .await,
        "CreateMultipartUpload",
    );
    let id = created.upload_id().expect("upload id").to_string();
    let mut done = Vec::new();
    for (i, part) in parts.iter().enumerate() {
        let n = i as i32 + 1;
        let b = client
            .upload_part()
            .bucket(bucket)
            .key(key)
            .upload_id(&id)
            .part_number(n)
            .body(ByteStream::from(part.to_vec()));
        let b = match sse.key() {
            Some(k) => with_key!(b, k),
            None => b,
        };
        let out = ok(b.send().await, &format!("UploadPart {n} of {key}"));
        done.push((n, out.e_tag().expect("part etag").to_string()));
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
    assert_eq!(out.e_tag(), Some(multipart_etag(parts).as_str()), "multipart ETag");
    id
}

async fn put_bucket_default(client: &Client, bucket: &str, alg: ServerSideEncryption, kms_key: Option<&str>) {
    let by_default = ServerSideEncryptionByDefault::builder()
        .sse_algorithm(alg)
        .set_kms_master_key_id(kms_key.map(str::to_string))
        .build()
        .expect("default encryption");
    let config = ServerSideEncryptionConfiguration::builder()
        .rules(
            ServerSideEncryptionRule::builder()
                .apply_server_side_encryption_by_default(by_default)
                .build(),
        )
        .build()
        .expect("encryption configuration");
    ok(
        client
            .put_bucket_encryption()
            .bucket(bucket)
            .server_side_encryption_configuration(config)
            .send()
            .await,
        "PutBucketEncryption",
    );
}

/// The reported SSE-KMS key id names `name` (S3 reports the key's ARN; a bare id is fine).
#[track_caller]
fn assert_kms_key(reported: Option<&str>, name: &str, what: &str) {
    let ok = reported.is_some_and(|id| id == name || id.ends_with(&format!(":key/{name}")));
    assert!(
        ok,
        "{what}: SSEKMSKeyId {reported:?}, expected {name} (or an ARN ending in :key/{name})"
    );
}

fn test_image(name: &str) -> Vec<u8> {
    let dir = std::env::var_os("STRATA_TESTDATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/testdata/images")));
    let path = dir.join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("read test image {}: {e}", path.display()))
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    assert!(!needle.is_empty());
    hay.windows(needle.len()).any(|w| w[0] == needle[0] && w == needle)
}

/// `body` of `len` bytes made of `marker` repeated.
fn marker_body(marker: &[u8], len: usize) -> Vec<u8> {
    marker.iter().copied().cycle().take(len).collect()
}

// ---------------------------------------------------------------------------------------------
// 1. SSE-S3 round trips and ranges across segment boundaries
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_s3_round_trips_and_ranges_across_segment_boundaries() {
    let keys = Keys::new(None);
    let (server, client, bucket) = TestServer::start_in(fresh_data_dir(), keys.opts())
        .and_bucket("sse-s3")
        .await;
    let sizes = [0usize, 1, SEG - 1, SEG, SEG + 1, MIB + 3];
    let mut objects = Vec::new();
    for (i, &size) in sizes.iter().enumerate() {
        let data = random_bytes(size, 100 + i as u64);
        let key = format!("obj-{size}");
        let put = put_sse(&client, &bucket, &key, &data, Sse::S3).await;
        assert_eq!(
            put.server_side_encryption(),
            Some(&ServerSideEncryption::Aes256),
            "PUT {size}: x-amz-server-side-encryption"
        );
        // SSE-S3 keeps S3's ETag: the MD5 of the plaintext.
        assert_eq!(put.e_tag(), Some(etag_of(&data).as_str()), "PUT {size}: ETag");
        objects.push((key, data));
    }
    for (key, data) in &objects {
        let (got, out) = read(&client, &bucket, key, None).await;
        assert!(
            got == *data,
            "GET {key}: {} bytes back, expected {}",
            got.len(),
            data.len()
        );
        assert_eq!(
            out.server_side_encryption(),
            Some(&ServerSideEncryption::Aes256),
            "GET {key}"
        );
        assert_eq!(
            out.content_length(),
            Some(data.len() as i64),
            "GET {key}: Content-Length"
        );
        assert_eq!(out.e_tag(), Some(etag_of(data).as_str()), "GET {key}: ETag");
        let head = ok(client.head_object().bucket(&bucket).key(key).send().await, "HEAD");
        assert_eq!(
            head.server_side_encryption(),
            Some(&ServerSideEncryption::Aes256),
            "HEAD {key}"
        );
        assert_eq!(
            head.content_length(),
            Some(data.len() as i64),
            "HEAD {key}: Content-Length"
        );
        assert!(head.sse_customer_algorithm().is_none() && head.ssekms_key_id().is_none());
    }

    let by_size = |n: usize| &objects.iter().find(|(_, d)| d.len() == n).expect("object").1;
    let big = by_size(MIB + 3);
    let last = big.len() - 1;
    for spec in [
        "bytes=0-0".to_string(),
        "bytes=65530-65545".into(),
        "bytes=65535-65536".into(),
        "bytes=65536-131071".into(),
        "bytes=131070-200000".into(),
        // Crosses the server's 4-segment read batches.
        "bytes=200000-600000".into(),
        "bytes=100-1048000".into(),
        format!("bytes={last}-{last}"),
        "bytes=-1".into(),
        "bytes=-70000".into(),
        "bytes=1000000-".into(),
        format!("bytes={}-{}", last - 8, last + 1000),
    ] {
        check_range(&client, &bucket, &format!("obj-{}", MIB + 3), None, big, &spec).await;
    }
    for spec in ["bytes=65536-65536", "bytes=-2", "bytes=65535-", "bytes=0-65535"] {
        check_range(
            &client,
            &bucket,
            &format!("obj-{}", SEG + 1),
            None,
            by_size(SEG + 1),
            spec,
        )
        .await;
    }
    for spec in ["bytes=65535-65535", "bytes=-65536", "bytes=1-"] {
        check_range(&client, &bucket, &format!("obj-{SEG}"), None, by_size(SEG), spec).await;
    }
    check_range(&client, &bucket, "obj-1", None, by_size(1), "bytes=0-0").await;
    check_range(
        &client,
        &bucket,
        &format!("obj-{}", SEG - 1),
        None,
        by_size(SEG - 1),
        "bytes=-3",
    )
    .await;

    // On disk: every non-empty object is one encrypted blob file of plaintext + 16 bytes per
    // 64 KiB segment (even the 1-byte one is not inlined), and no blob has a plaintext size.
    let on_disk: Vec<u64> = blob_files(server.data_dir())
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok().map(|m| m.len()))
        .collect();
    for &size in sizes.iter().filter(|&&s| s > 0) {
        assert!(
            on_disk.contains(&sealed_len(size)),
            "no {}-byte blob (encrypted {size}-byte object) on disk: {on_disk:?}",
            sealed_len(size)
        );
    }
    assert!(
        !on_disk.contains(&(MIB as u64 + 3)) && !on_disk.contains(&(SEG as u64 + 1)),
        "a blob with a plaintext size is on disk: {on_disk:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// 2. Multipart SSE-S3
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_s3_multipart_ranges_across_part_boundaries_and_part_copy() {
    let keys = Keys::new(None);
    let (_server, client, bucket) = TestServer::start_in(fresh_data_dir(), keys.opts())
        .and_bucket("sse-mpu")
        .await;
    let p1 = random_bytes(5 * MIB, 201);
    let p2 = random_bytes(5 * MIB + 7, 202);
    let p3 = random_bytes(1234, 203);
    let whole: Vec<u8> = [p1.as_slice(), &p2, &p3].concat();

    let created = ok(
        client
            .create_multipart_upload()
            .bucket(&bucket)
            .key("mp.bin")
            .server_side_encryption(ServerSideEncryption::Aes256)
            .send()
            .await,
        "CreateMultipartUpload",
    );
    assert_eq!(
        created.server_side_encryption(),
        Some(&ServerSideEncryption::Aes256),
        "CreateMultipartUpload reports the encryption"
    );
    let id = created.upload_id().expect("upload id").to_string();
    let mut done = Vec::new();
    for (i, part) in [&p1, &p2, &p3].iter().enumerate() {
        let n = i as i32 + 1;
        let out = ok(
            client
                .upload_part()
                .bucket(&bucket)
                .key("mp.bin")
                .upload_id(&id)
                .part_number(n)
                .body(ByteStream::from(part.to_vec()))
                .send()
                .await,
            "UploadPart",
        );
        assert_eq!(out.e_tag(), Some(etag_of(part).as_str()), "UploadPart {n} ETag");
        done.push((n, out.e_tag().expect("etag").to_string()));
    }
    let complete = ok(
        client
            .complete_multipart_upload()
            .bucket(&bucket)
            .key("mp.bin")
            .upload_id(&id)
            .multipart_upload(completed(&done))
            .send()
            .await,
        "CompleteMultipartUpload",
    );
    assert_eq!(complete.e_tag(), Some(multipart_etag(&[&p1, &p2, &p3]).as_str()));
    assert_eq!(
        complete.server_side_encryption(),
        Some(&ServerSideEncryption::Aes256),
        "CompleteMultipartUpload reports the encryption"
    );

    let (got, out) = read(&client, &bucket, "mp.bin", None).await;
    assert!(
        got == whole,
        "whole multipart object differs ({} bytes back)",
        got.len()
    );
    assert_eq!(out.server_side_encryption(), Some(&ServerSideEncryption::Aes256));
    let head = ok(client.head_object().bucket(&bucket).key("mp.bin").send().await, "HEAD");
    assert_eq!(head.server_side_encryption(), Some(&ServerSideEncryption::Aes256));
    assert_eq!(head.content_length(), Some(whole.len() as i64));

    let b1 = p1.len();
    let b2 = p1.len() + p2.len();
    for spec in [
        format!("bytes={}-{}", b1 - 10, b1 + 9),
        format!("bytes={}-{}", b1 - SEG - 5, b1 + SEG + 5),
        format!("bytes={}-{}", b1 - 1, b1),
        format!("bytes={}-{}", b2 - 3, b2 + 3),
        format!("bytes={}-{}", b1 - 300_000, b2 + 100),
        format!("bytes={}-", b2 - 70_000),
        "bytes=-1300".to_string(),
    ] {
        check_range(&client, &bucket, "mp.bin", None, &whole, &spec).await;
    }
    // GET ?partNumber=2 is part 2, decrypted.
    let part2 = ok(
        client
            .get_object()
            .bucket(&bucket)
            .key("mp.bin")
            .part_number(2)
            .send()
            .await,
        "GET partNumber=2",
    );
    assert_eq!(part2.parts_count(), Some(3));
    assert!(body_of(part2, "GET partNumber=2").await == p2, "partNumber=2 bytes");

    // UploadPartCopy out of the encrypted object (ranges across both part boundaries) into
    // another SSE-S3 upload.
    let id2 = ok(
        client
            .create_multipart_upload()
            .bucket(&bucket)
            .key("copied.bin")
            .server_side_encryption(ServerSideEncryption::Aes256)
            .send()
            .await,
        "CreateMultipartUpload (copy)",
    )
    .upload_id()
    .expect("upload id")
    .to_string();
    let r1 = (b1 - 100, b1 - 100 + 5 * MIB);
    let r2 = (b2 - 500, whole.len());
    let mut done = Vec::new();
    for (n, (from, to)) in [(1, r1), (2, r2)] {
        let out = ok(
            client
                .upload_part_copy()
                .bucket(&bucket)
                .key("copied.bin")
                .upload_id(&id2)
                .part_number(n)
                .copy_source(format!("{bucket}/mp.bin"))
                .copy_source_range(format!("bytes={from}-{}", to - 1))
                .send()
                .await,
            "UploadPartCopy",
        );
        let etag = out.copy_part_result().and_then(|r| r.e_tag()).expect("part etag");
        assert_eq!(etag, etag_of(&whole[from..to]), "UploadPartCopy {n} ETag");
        done.push((n, etag.to_string()));
    }
    ok(
        client
            .complete_multipart_upload()
            .bucket(&bucket)
            .key("copied.bin")
            .upload_id(&id2)
            .multipart_upload(completed(&done))
            .send()
            .await,
        "CompleteMultipartUpload (copy)",
    );
    let expected: Vec<u8> = [&whole[r1.0..r1.1], &whole[r2.0..r2.1]].concat();
    let (got, out) = read(&client, &bucket, "copied.bin", None).await;
    assert!(
        got == expected,
        "UploadPartCopy result differs ({} bytes back)",
        got.len()
    );
    assert_eq!(out.server_side_encryption(), Some(&ServerSideEncryption::Aes256));
    check_range(
        &client,
        &bucket,
        "copied.bin",
        None,
        &expected,
        &format!("bytes={}-{}", 5 * MIB - 20, 5 * MIB + 20),
    )
    .await;
}

/// S3's UploadPart response reports the upload's encryption (x-amz-server-side-encryption,
/// and for SSE-C the customer algorithm and key MD5).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_part_reports_the_uploads_encryption() {
    let keys = Keys::new(None);
    let (_server, client, bucket) = TestServer::start_in(fresh_data_dir(), keys.opts())
        .and_bucket("sse-part")
        .await;
    let k = customer_key(7);
    for sse in [Sse::S3, Sse::C(&k)] {
        let id = ok(
            with_sse!(client.create_multipart_upload().bucket(&bucket).key("p"), sse)
                .send()
                .await,
            "CreateMultipartUpload",
        )
        .upload_id()
        .expect("id")
        .to_string();
        let b = client
            .upload_part()
            .bucket(&bucket)
            .key("p")
            .upload_id(&id)
            .part_number(1)
            .body(ByteStream::from(b"part".to_vec()));
        let b = match sse.key() {
            Some(k) => with_key!(b, k),
            None => b,
        };
        let out = ok(b.send().await, "UploadPart");
        match sse {
            Sse::C(k) => {
                assert_eq!(
                    (out.sse_customer_algorithm(), out.sse_customer_key_md5()),
                    (Some("AES256"), Some(k.md5.as_str())),
                    "UploadPart of an SSE-C upload: x-amz-server-side-encryption-customer-algorithm/-key-MD5"
                );
            }
            _ => assert_eq!(
                out.server_side_encryption(),
                Some(&ServerSideEncryption::Aes256),
                "UploadPart of an SSE-S3 upload: x-amz-server-side-encryption"
            ),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// 3. Bucket default encryption
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bucket_default_encryption_applies_until_deleted() {
    let keys = Keys::new(None);
    let (_server, client, bucket) = TestServer::start_in(fresh_data_dir(), keys.opts())
        .and_bucket("sse-default")
        .await;

    expect_error(
        client.get_bucket_encryption().bucket(&bucket).send().await,
        404,
        "ServerSideEncryptionConfigurationNotFoundError",
    );
    let before = put_sse(&client, &bucket, "before", b"plain before", Sse::Plain).await;
    assert_eq!(
        before.server_side_encryption(),
        None,
        "no default yet: stored in the clear"
    );

    put_bucket_default(&client, &bucket, ServerSideEncryption::Aes256, None).await;
    let got = ok(
        client.get_bucket_encryption().bucket(&bucket).send().await,
        "GetBucketEncryption",
    );
    let rule = got
        .server_side_encryption_configuration()
        .and_then(|c| c.rules().first())
        .and_then(|r| r.apply_server_side_encryption_by_default())
        .expect("a default-encryption rule");
    assert_eq!(rule.sse_algorithm(), &ServerSideEncryption::Aes256);

    let small = b"encrypted by the bucket default".to_vec();
    let large = random_bytes(300_000, 301);
    for (key, data) in [("small", &small), ("large", &large)] {
        let put = put_sse(&client, &bucket, key, data, Sse::Plain).await;
        assert_eq!(
            put.server_side_encryption(),
            Some(&ServerSideEncryption::Aes256),
            "PUT {key} without SSE headers into a bucket with default AES256"
        );
        let (back, out) = read(&client, &bucket, key, None).await;
        assert!(back == *data, "GET {key}");
        assert_eq!(
            out.server_side_encryption(),
            Some(&ServerSideEncryption::Aes256),
            "GET {key}"
        );
        let head = ok(client.head_object().bucket(&bucket).key(key).send().await, "HEAD");
        assert_eq!(
            head.server_side_encryption(),
            Some(&ServerSideEncryption::Aes256),
            "HEAD {key}"
        );
    }
    // Multipart uploads and copies get the default too.
    let mpu = ok(
        client.create_multipart_upload().bucket(&bucket).key("mpu").send().await,
        "CreateMultipartUpload",
    );
    assert_eq!(
        mpu.server_side_encryption(),
        Some(&ServerSideEncryption::Aes256),
        "CreateMultipartUpload"
    );
    let copy = ok(
        client
            .copy_object()
            .bucket(&bucket)
            .key("copy-of-before")
            .copy_source(format!("{bucket}/before"))
            .send()
            .await,
        "CopyObject",
    );
    assert_eq!(
        copy.server_side_encryption(),
        Some(&ServerSideEncryption::Aes256),
        "CopyObject"
    );
    // The object written before the default stays as it was.
    let head = ok(
        client.head_object().bucket(&bucket).key("before").send().await,
        "HEAD before",
    );
    assert_eq!(head.server_side_encryption(), None);

    ok(
        client.delete_bucket_encryption().bucket(&bucket).send().await,
        "DeleteBucketEncryption",
    );
    expect_error(
        client.get_bucket_encryption().bucket(&bucket).send().await,
        404,
        "ServerSideEncryptionConfigurationNotFoundError",
    );
    let after = put_sse(&client, &bucket, "after", b"plain after", Sse::Plain).await;
    assert_eq!(after.server_side_encryption(), None, "PUT after DeleteBucketEncryption");
    let head = ok(
        client.head_object().bucket(&bucket).key("after").send().await,
        "HEAD after",
    );
    assert_eq!(head.server_side_encryption(), None);
    // Objects encrypted under the default stay encrypted and readable.
    let (back, out) = read(&client, &bucket, "large", None).await;
    assert!(back == large);
    assert_eq!(out.server_side_encryption(), Some(&ServerSideEncryption::Aes256));
    assert_eq!(read(&client, &bucket, "after", None).await.0, b"plain after");
}

// ---------------------------------------------------------------------------------------------
// 4. SSE-C
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_c_round_trip_key_checks_copies_and_multipart() {
    let keys = Keys::new(None);
    let (server, client, bucket) = TestServer::start_in(fresh_data_dir(), keys.opts())
        .and_bucket("sse-c")
        .await;
    let k1 = customer_key(41);
    let k2 = customer_key(42);
    let data = random_bytes(200_000, 401);

    let put = put_sse(&client, &bucket, "c.bin", &data, Sse::C(&k1)).await;
    assert_eq!(put.sse_customer_algorithm(), Some("AES256"), "PUT: customer algorithm");
    assert_eq!(
        put.sse_customer_key_md5(),
        Some(k1.md5.as_str()),
        "PUT: customer key MD5"
    );
    assert_eq!(
        put.server_side_encryption(),
        None,
        "PUT: SSE-C is not reported as AES256"
    );

    let (back, out) = read(&client, &bucket, "c.bin", Some(&k1)).await;
    assert!(back == data, "GET with the right key");
    assert_eq!(out.sse_customer_algorithm(), Some("AES256"));
    assert_eq!(out.sse_customer_key_md5(), Some(k1.md5.as_str()));
    check_range(&client, &bucket, "c.bin", Some(&k1), &data, "bytes=65500-131100").await;
    let head = ok(
        with_key!(client.head_object().bucket(&bucket).key("c.bin"), k1)
            .send()
            .await,
        "HEAD with the key",
    );
    assert_eq!(head.content_length(), Some(data.len() as i64));
    assert_eq!(head.sse_customer_key_md5(), Some(k1.md5.as_str()));

    // Without the key 400, with another key 403.
    expect_error(
        client.get_object().bucket(&bucket).key("c.bin").send().await,
        400,
        "InvalidRequest",
    );
    expect_error(
        get_req(&client, &bucket, "c.bin", Some(&k2)).send().await,
        403,
        "AccessDenied",
    );
    expect_status(client.head_object().bucket(&bucket).key("c.bin").send().await, 400);
    expect_status(
        with_key!(client.head_object().bucket(&bucket).key("c.bin"), k2)
            .send()
            .await,
        403,
    );
    // A bad MD5, a short key, another algorithm: 400 before anything is stored.
    let bad_md5 = CustomerKey {
        md5: k2.md5.clone(),
        ..k1.clone()
    };
    expect_error(
        with_key!(client.put_object().bucket(&bucket).key("bad"), bad_md5)
            .body(ByteStream::from(b"x".to_vec()))
            .send()
            .await,
        400,
        "InvalidArgument",
    );
    let short = CustomerKey {
        b64: b64(&[7u8; 16]),
        md5: b64(&md5_bytes(&[7u8; 16])),
        raw: vec![7u8; 16],
    };
    expect_error(
        with_key!(client.put_object().bucket(&bucket).key("bad"), short)
            .body(ByteStream::from(b"x".to_vec()))
            .send()
            .await,
        400,
        "InvalidArgument",
    );
    expect_status(
        client
            .put_object()
            .bucket(&bucket)
            .key("bad")
            .sse_customer_algorithm("AES128")
            .sse_customer_key(k1.b64.clone())
            .sse_customer_key_md5(k1.md5.clone())
            .body(ByteStream::from(b"x".to_vec()))
            .send()
            .await,
        400,
    );
    expect_status(client.head_object().bucket(&bucket).key("bad").send().await, 404);

    // SSE-C headers on objects that are not SSE-C: 400.
    put_sse(&client, &bucket, "s3.bin", b"sse-s3 object", Sse::S3).await;
    put_sse(&client, &bucket, "plain.bin", b"plain object", Sse::Plain).await;
    for key in ["s3.bin", "plain.bin"] {
        expect_error(
            get_req(&client, &bucket, key, Some(&k1)).send().await,
            400,
            "InvalidRequest",
        );
    }

    // Copy SSE-C -> SSE-S3 needs the source key.
    expect_error(
        client
            .copy_object()
            .bucket(&bucket)
            .key("c-to-s3")
            .copy_source(format!("{bucket}/c.bin"))
            .server_side_encryption(ServerSideEncryption::Aes256)
            .send()
            .await,
        400,
        "InvalidRequest",
    );
    let copy = ok(
        with_source_key!(
            client
                .copy_object()
                .bucket(&bucket)
                .key("c-to-s3")
                .copy_source(format!("{bucket}/c.bin"))
                .server_side_encryption(ServerSideEncryption::Aes256),
            k1
        )
        .send()
        .await,
        "CopyObject SSE-C -> SSE-S3",
    );
    assert_eq!(copy.server_side_encryption(), Some(&ServerSideEncryption::Aes256));
    let (back, out) = read(&client, &bucket, "c-to-s3", None).await;
    assert!(back == data, "SSE-C -> SSE-S3 copy reads back without a key");
    assert_eq!(out.server_side_encryption(), Some(&ServerSideEncryption::Aes256));

    // SSE-S3 -> plain.
    let copy = ok(
        client
            .copy_object()
            .bucket(&bucket)
            .key("s3-to-plain")
            .copy_source(format!("{bucket}/c-to-s3"))
            .send()
            .await,
        "CopyObject SSE-S3 -> plain",
    );
    assert_eq!(copy.server_side_encryption(), None);
    let (back, out) = read(&client, &bucket, "s3-to-plain", None).await;
    assert!(back == data, "SSE-S3 -> plain copy");
    assert_eq!(out.server_side_encryption(), None);

    // plain -> SSE-C (k2): readable only with k2.
    let copy = ok(
        with_key!(
            client
                .copy_object()
                .bucket(&bucket)
                .key("plain-to-c")
                .copy_source(format!("{bucket}/s3-to-plain")),
            k2
        )
        .send()
        .await,
        "CopyObject plain -> SSE-C",
    );
    assert_eq!(copy.sse_customer_key_md5(), Some(k2.md5.as_str()));
    let (back, out) = read(&client, &bucket, "plain-to-c", Some(&k2)).await;
    assert!(back == data, "plain -> SSE-C copy");
    assert_eq!(out.sse_customer_key_md5(), Some(k2.md5.as_str()));
    expect_error(
        get_req(&client, &bucket, "plain-to-c", Some(&k1)).send().await,
        403,
        "AccessDenied",
    );
    expect_error(
        get_req(&client, &bucket, "plain-to-c", None).send().await,
        400,
        "InvalidRequest",
    );

    // SSE-C (k2) -> SSE-C (k1): the customer re-keys an object.
    ok(
        with_key!(
            with_source_key!(
                client
                    .copy_object()
                    .bucket(&bucket)
                    .key("rekeyed")
                    .copy_source(format!("{bucket}/plain-to-c")),
                k2
            ),
            k1
        )
        .send()
        .await,
        "CopyObject SSE-C k2 -> SSE-C k1",
    );
    assert!(read(&client, &bucket, "rekeyed", Some(&k1)).await.0 == data);
    expect_error(
        get_req(&client, &bucket, "rekeyed", Some(&k2)).send().await,
        403,
        "AccessDenied",
    );

    // Multipart with SSE-C: every part repeats the key.
    let created = ok(
        with_key!(client.create_multipart_upload().bucket(&bucket).key("mp-c"), k1)
            .send()
            .await,
        "CreateMultipartUpload SSE-C",
    );
    assert_eq!(created.sse_customer_algorithm(), Some("AES256"));
    assert_eq!(created.sse_customer_key_md5(), Some(k1.md5.as_str()));
    let id = created.upload_id().expect("id").to_string();
    let p1 = random_bytes(5 * MIB, 402);
    let p2 = random_bytes(777, 403);
    expect_error(
        client
            .upload_part()
            .bucket(&bucket)
            .key("mp-c")
            .upload_id(&id)
            .part_number(1)
            // Small: the server answers before reading a body, and may close the connection.
            .body(ByteStream::from(p2.clone()))
            .send()
            .await,
        400,
        "InvalidRequest",
    );
    let mut done = Vec::new();
    for (n, part) in [(1, &p1), (2, &p2)] {
        let out = ok(
            with_key!(
                client
                    .upload_part()
                    .bucket(&bucket)
                    .key("mp-c")
                    .upload_id(&id)
                    .part_number(n)
                    .body(ByteStream::from(part.clone())),
                k1
            )
            .send()
            .await,
            "UploadPart SSE-C",
        );
        done.push((n, out.e_tag().expect("etag").to_string()));
    }
    ok(
        client
            .complete_multipart_upload()
            .bucket(&bucket)
            .key("mp-c")
            .upload_id(&id)
            .multipart_upload(completed(&done))
            .send()
            .await,
        "CompleteMultipartUpload SSE-C",
    );
    let whole = [p1.as_slice(), &p2].concat();
    let (back, out) = read(&client, &bucket, "mp-c", Some(&k1)).await;
    assert!(back == whole, "SSE-C multipart object");
    assert_eq!(out.sse_customer_key_md5(), Some(k1.md5.as_str()));
    check_range(
        &client,
        &bucket,
        "mp-c",
        Some(&k1),
        &whole,
        &format!("bytes={}-{}", 5 * MIB - 100, 5 * MIB + 100),
    )
    .await;
    expect_error(
        get_req(&client, &bucket, "mp-c", None).send().await,
        400,
        "InvalidRequest",
    );
    expect_error(
        get_req(&client, &bucket, "mp-c", Some(&k2)).send().await,
        403,
        "AccessDenied",
    );

    // UploadPartCopy into an SSE-C upload: the part request carries the upload's key.
    let id = ok(
        with_key!(client.create_multipart_upload().bucket(&bucket).key("mp-copy-c"), k2)
            .send()
            .await,
        "CreateMultipartUpload SSE-C (copy)",
    )
    .upload_id()
    .expect("id")
    .to_string();
    expect_error(
        client
            .upload_part_copy()
            .bucket(&bucket)
            .key("mp-copy-c")
            .upload_id(&id)
            .part_number(1)
            .copy_source(format!("{bucket}/s3.bin"))
            .send()
            .await,
        400,
        "InvalidRequest",
    );
    let part = ok(
        with_key!(
            client
                .upload_part_copy()
                .bucket(&bucket)
                .key("mp-copy-c")
                .upload_id(&id)
                .part_number(1)
                .copy_source(format!("{bucket}/s3.bin")),
            k2
        )
        .send()
        .await,
        "UploadPartCopy into an SSE-C upload",
    );
    let etag = part
        .copy_part_result()
        .and_then(|r| r.e_tag())
        .expect("etag")
        .to_string();
    ok(
        client
            .complete_multipart_upload()
            .bucket(&bucket)
            .key("mp-copy-c")
            .upload_id(&id)
            .multipart_upload(completed(&[(1, etag)]))
            .send()
            .await,
        "CompleteMultipartUpload SSE-C (copy)",
    );
    assert_eq!(read(&client, &bucket, "mp-copy-c", Some(&k2)).await.0, b"sse-s3 object");

    // Image transforms of an SSE-C original need the key like a GET does.
    let png = test_image("coffee-600x400.png");
    put_sse(&client, &bucket, "img.png", &png, Sse::C(&k1)).await;
    let path = format!("/{bucket}/img.png?w=64&f=png");
    let without = SignedRequest::new("GET", &path).send(&server).await;
    assert_eq!(
        without.status,
        400,
        "transform of an SSE-C object without the key: {}",
        without.text()
    );
    let wrong = SignedRequest::new("GET", &path)
        .header("x-amz-server-side-encryption-customer-algorithm", "AES256")
        .header("x-amz-server-side-encryption-customer-key", &k2.b64)
        .header("x-amz-server-side-encryption-customer-key-md5", &k2.md5)
        .send(&server)
        .await;
    assert_eq!(wrong.status, 403, "transform with the wrong key: {}", wrong.text());
    let right = SignedRequest::new("GET", &path)
        .header("x-amz-server-side-encryption-customer-algorithm", "AES256")
        .header("x-amz-server-side-encryption-customer-key", &k1.b64)
        .header("x-amz-server-side-encryption-customer-key-md5", &k1.md5)
        .send(&server)
        .await;
    assert_eq!(right.status, 200, "transform with the key: {}", right.text());
    assert!(right.body.starts_with(b"\x89PNG"), "transform output is a PNG");
    // Once the derivative is cached, it still needs the key.
    let again = SignedRequest::new("GET", &path).send(&server).await;
    assert_eq!(again.status, 400, "cached transform of an SSE-C object without the key");
}

/// S3 lets CopyObject copy an object onto itself when the encryption changes: it is how
/// existing objects are encrypted in place (`aws s3 cp s3://b/k s3://b/k --sse AES256`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_in_place_changes_the_encryption() {
    let keys = Keys::new(None);
    let (_server, client, bucket) = TestServer::start_in(fresh_data_dir(), keys.opts())
        .and_bucket("sse-inplace")
        .await;
    let data = random_bytes(150_000, 451);
    let k = customer_key(45);
    put_sse(&client, &bucket, "doc", &data, Sse::Plain).await;
    // Unchanged, a self-copy is still refused.
    expect_error(
        client
            .copy_object()
            .bucket(&bucket)
            .key("doc")
            .copy_source(format!("{bucket}/doc"))
            .send()
            .await,
        400,
        "InvalidRequest",
    );

    // plain -> SSE-S3 in place.
    let out = ok(
        client
            .copy_object()
            .bucket(&bucket)
            .key("doc")
            .copy_source(format!("{bucket}/doc"))
            .server_side_encryption(ServerSideEncryption::Aes256)
            .send()
            .await,
        "CopyObject onto itself with x-amz-server-side-encryption: AES256",
    );
    assert_eq!(out.server_side_encryption(), Some(&ServerSideEncryption::Aes256));
    let (back, got) = read(&client, &bucket, "doc", None).await;
    assert!(back == data, "bytes after encrypting in place");
    assert_eq!(got.server_side_encryption(), Some(&ServerSideEncryption::Aes256));

    // SSE-S3 -> SSE-C in place.
    ok(
        with_key!(
            client
                .copy_object()
                .bucket(&bucket)
                .key("doc")
                .copy_source(format!("{bucket}/doc")),
            k
        )
        .send()
        .await,
        "CopyObject onto itself with an SSE-C key",
    );
    let (back, got) = read(&client, &bucket, "doc", Some(&k)).await;
    assert!(back == data, "bytes after re-keying in place");
    assert_eq!(got.sse_customer_key_md5(), Some(k.md5.as_str()));
}

// ---------------------------------------------------------------------------------------------
// 5. SSE-KMS
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_kms_named_keys_default_key_and_unknown_key() {
    let keys = Keys::new(Some("archive"));
    let data_dir = fresh_data_dir();
    for name in ["photos", "archive"] {
        let out = keys.offline(data_dir.path(), &["kms", "create", name]);
        assert!(out.contains(name), "kms create output: {out}");
    }
    let listed = keys.offline(data_dir.path(), &["kms", "list"]);
    let names: Vec<&str> = listed.lines().map(str::trim).collect();
    assert!(
        names.contains(&"photos") && names.contains(&"archive"),
        "kms list: {listed}"
    );
    // A second key with the same name is refused.
    let dup = keys.offline_tool(data_dir.path(), &["kms", "create", "photos"]);
    assert!(
        !dup.status.success(),
        "creating a KMS key twice succeeded: {}",
        dup.stdout
    );

    let (mut server, client, bucket) = TestServer::start_in(data_dir, keys.opts()).and_bucket("sse-kms").await;
    let data = random_bytes(150_000, 501);
    let small = b"a small kms object".to_vec();

    let put = put_sse(&client, &bucket, "k.bin", &data, Sse::Kms(Some("photos"))).await;
    assert_eq!(put.server_side_encryption(), Some(&ServerSideEncryption::AwsKms));
    assert_kms_key(put.ssekms_key_id(), "photos", "PUT");
    let (back, out) = read(&client, &bucket, "k.bin", None).await;
    assert!(back == data, "GET of an SSE-KMS object");
    assert_eq!(out.server_side_encryption(), Some(&ServerSideEncryption::AwsKms));
    assert_kms_key(out.ssekms_key_id(), "photos", "GET");
    let head = ok(client.head_object().bucket(&bucket).key("k.bin").send().await, "HEAD");
    assert_eq!(head.server_side_encryption(), Some(&ServerSideEncryption::AwsKms));
    assert_kms_key(head.ssekms_key_id(), "photos", "HEAD");
    check_range(&client, &bucket, "k.bin", None, &data, "bytes=65000-140000").await;

    // alias/NAME and key ARNs name the same key.
    for (key, id) in [
        ("alias.bin", "alias/photos"),
        ("arn.bin", "arn:aws:kms:us-east-1:123456789012:key/photos"),
    ] {
        let put = put_sse(&client, &bucket, key, &small, Sse::Kms(Some(id))).await;
        assert_kms_key(put.ssekms_key_id(), "photos", id);
        let (back, out) = read(&client, &bucket, key, None).await;
        assert_eq!(back, small);
        assert_kms_key(out.ssekms_key_id(), "photos", id);
    }

    // An unknown key: 400 KMS.NotFoundException, nothing stored.
    let err = expect_error(
        with_sse!(
            client.put_object().bucket(&bucket).key("nope"),
            Sse::Kms(Some("nosuchkey"))
        )
        .body(ByteStream::from(small.clone()))
        .send()
        .await,
        400,
        "KMS.NotFoundException",
    );
    assert!(
        err.message.as_deref().is_some_and(|m| m.contains("nosuchkey")),
        "the message names the key id: {err:?}"
    );
    expect_status(client.head_object().bucket(&bucket).key("nope").send().await, 404);
    expect_error(
        with_sse!(
            client.create_multipart_upload().bucket(&bucket).key("nope"),
            Sse::Kms(Some("nosuchkey"))
        )
        .send()
        .await,
        400,
        "KMS.NotFoundException",
    );

    // aws:kms without a key id: the configured default_kms_key_id.
    let put = put_sse(&client, &bucket, "default.bin", &data, Sse::Kms(None)).await;
    assert_eq!(put.server_side_encryption(), Some(&ServerSideEncryption::AwsKms));
    assert_kms_key(put.ssekms_key_id(), "archive", "PUT aws:kms without a key id");
    let (back, out) = read(&client, &bucket, "default.bin", None).await;
    assert!(back == data);
    assert_kms_key(out.ssekms_key_id(), "archive", "GET");

    // Bucket default aws:kms with a key.
    let bucket2 = new_bucket(&client, "sse-kms-default").await;
    put_bucket_default(&client, &bucket2, ServerSideEncryption::AwsKms, Some("photos")).await;
    let got = ok(
        client.get_bucket_encryption().bucket(&bucket2).send().await,
        "GetBucketEncryption",
    );
    let rule = got
        .server_side_encryption_configuration()
        .and_then(|c| c.rules().first())
        .and_then(|r| r.apply_server_side_encryption_by_default())
        .expect("rule");
    assert_eq!(rule.sse_algorithm(), &ServerSideEncryption::AwsKms);
    assert_kms_key(rule.kms_master_key_id(), "photos", "GetBucketEncryption");
    let put = put_sse(&client, &bucket2, "by-default", &data, Sse::Plain).await;
    assert_eq!(put.server_side_encryption(), Some(&ServerSideEncryption::AwsKms));
    assert_kms_key(put.ssekms_key_id(), "photos", "PUT into an aws:kms default bucket");
    // An explicit request beats the bucket default.
    let put = put_sse(&client, &bucket2, "explicit", &small, Sse::S3).await;
    assert_eq!(put.server_side_encryption(), Some(&ServerSideEncryption::Aes256));

    // KMS multipart.
    let p1 = random_bytes(5 * MIB, 502);
    let p2 = random_bytes(999, 503);
    multipart_sse(&client, &bucket, "mp-kms", Sse::Kms(Some("photos")), &[&p1, &p2]).await;
    let (back, out) = read(&client, &bucket, "mp-kms", None).await;
    assert!(back == [p1.as_slice(), &p2].concat(), "SSE-KMS multipart object");
    assert_kms_key(out.ssekms_key_id(), "photos", "GET multipart");

    // The keyring lives in the data dir (sealed by the master key): a restart keeps it.
    server.terminate();
    server.start_again();
    let client = server.client();
    for (b, key, want) in [
        (&bucket, "k.bin", &data),
        (&bucket, "default.bin", &data),
        (&bucket2, "by-default", &data),
        (&bucket, "alias.bin", &small),
    ] {
        let (back, _) = read(&client, b, key, None).await;
        assert!(back == *want, "{key} after a restart");
    }
    let put = put_sse(&client, &bucket, "after-restart", &small, Sse::Kms(Some("archive"))).await;
    assert_kms_key(put.ssekms_key_id(), "archive", "PUT after a restart");
}

// ---------------------------------------------------------------------------------------------
// 6. Nothing in the clear
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_reaches_the_disk_or_the_log_in_the_clear() {
    const MARKER: &[u8] = b"<<STRATA-SECRET-PLAINTEXT-MARKER-5f1e2d>>";
    const CONTROL: &[u8] = b"<<STRATA-CONTROL-CLEARTEXT-MARKER-9a8b7c>>";
    const SMALL_CONTROL: &[u8] = b"<<STRATA-SMALL-INLINE-CONTROL-31337>>";
    let keys = Keys::new(None);
    let data_dir = fresh_data_dir();
    keys.offline(data_dir.path(), &["kms", "create", "photos"]);
    let (mut server, client, bucket) = TestServer::start_in(
        data_dir,
        ServerOptions {
            rust_log: "debug,sled=warn,hyper=warn,hyper_util=warn,h2=warn,tower=warn".into(),
            capture_stderr: true,
            ..keys.opts()
        },
    )
    .and_bucket("clear")
    .await;
    let default_bucket = new_bucket(&client, "clear-default").await;
    put_bucket_default(&client, &default_bucket, ServerSideEncryption::Aes256, None).await;
    let kc = customer_key(61);

    let small = marker_body(MARKER, 300);
    let large = marker_body(MARKER, 300_000);
    let mut written: Vec<(String, String, Vec<u8>, Option<CustomerKey>)> = Vec::new();
    for (name, sse) in [("s3", Sse::S3), ("kms", Sse::Kms(Some("photos"))), ("c", Sse::C(&kc))] {
        for (size, body) in [("small", &small), ("large", &large)] {
            let key = format!("{name}-{size}");
            put_sse(&client, &bucket, &key, body, sse).await;
            written.push((bucket.clone(), key, body.clone(), sse.key().cloned()));
        }
    }
    for (key, body) in [("default-small", &small), ("default-large", &large)] {
        put_sse(&client, &default_bucket, key, body, Sse::Plain).await;
        written.push((default_bucket.clone(), key.into(), body.clone(), None));
    }
    // Copies and multipart uploads take other write paths.
    ok(
        with_source_key!(
            client
                .copy_object()
                .bucket(&bucket)
                .key("copy-c-to-s3")
                .copy_source(format!("{bucket}/c-large"))
                .server_side_encryption(ServerSideEncryption::Aes256),
            kc
        )
        .send()
        .await,
        "copy",
    );
    written.push((bucket.clone(), "copy-c-to-s3".into(), large.clone(), None));
    let part = marker_body(MARKER, 5 * MIB);
    let tail = marker_body(MARKER, 1000);
    let whole = [part.as_slice(), &tail].concat();
    multipart_sse(&client, &bucket, "mp-s3", Sse::S3, &[&part, &tail]).await;
    multipart_sse(&client, &bucket, "mp-c", Sse::C(&kc), &[&part, &tail]).await;
    written.push((bucket.clone(), "mp-s3".into(), whole.clone(), None));
    written.push((bucket.clone(), "mp-c".into(), whole.clone(), Some(kc.clone())));

    // An SSE-S3 JPEG and its transform (cached on disk, encrypted).
    let jpeg = test_image("twowings-2560x1600.jpg");
    put_sse(&client, &bucket, "photo.jpg", &jpeg, Sse::S3).await;
    let path = format!("/{bucket}/photo.jpg?w=64&f=png");
    let first = SignedRequest::new("GET", &path).send(&server).await;
    assert_eq!(first.status, 200, "transform of an SSE-S3 JPEG: {}", first.text());
    assert!(first.body.starts_with(b"\x89PNG"), "a PNG came back");
    let second = SignedRequest::new("GET", &path).send(&server).await;
    assert_eq!(second.body, first.body, "the cached derivative is the same");
    let png = first.body.to_vec();

    // Controls: the same kinds of data stored in the clear must be found by the same search.
    let control_large = marker_body(CONTROL, 200_000);
    put_sse(&client, &bucket, "control-large", &control_large, Sse::Plain).await;
    put_sse(
        &client,
        &bucket,
        "control-small",
        &marker_body(SMALL_CONTROL, 100),
        Sse::Plain,
    )
    .await;
    let plain_jpeg = test_image("storm-1920x1280.jpg");
    put_sse(&client, &bucket, "plain.jpg", &plain_jpeg, Sse::Plain).await;
    let plain_png = SignedRequest::new("GET", format!("/{bucket}/plain.jpg?w=64&f=png"))
        .send(&server)
        .await;
    assert_eq!(plain_png.status, 200, "transform of a plain JPEG: {}", plain_png.text());
    let plain_png = plain_png.body.to_vec();

    for (b, key, body, k) in &written {
        let (back, _) = read(&client, b, key, k.as_ref()).await;
        assert!(back == *body, "{b}/{key} reads back");
    }
    drop(client);
    let status = server.terminate();
    assert!(status.success(), "SIGTERM: {status}");

    let key_file = keys.key_file();
    let data = server.data_dir().to_path_buf();
    assert_mode_0600(&key_file);
    assert!(
        !key_file.starts_with(&data),
        "the master key file {} is inside the data dir {}",
        key_file.display(),
        data.display()
    );
    let master = read_key_file(&key_file);
    assert_eq!(master.keys.len(), 1, "one master key: {master:?}");
    let master_hex = master.keys.values().next().expect("key").clone();
    let master_raw = hex::decode(&master_hex).expect("hex");

    let mid = |d: &[u8]| d[d.len() / 2..d.len() / 2 + 64].to_vec();
    let needles: Vec<(&str, Vec<u8>)> = vec![
        ("the plaintext marker", MARKER.to_vec()),
        ("the JPEG's first 64 bytes", jpeg[..64].to_vec()),
        ("64 bytes from the middle of the JPEG", mid(&jpeg)),
        ("the JPEG's last 64 bytes", jpeg[jpeg.len() - 64..].to_vec()),
        ("the PNG derivative's first 64 bytes", png[..64].to_vec()),
        ("64 bytes from the middle of the PNG derivative", mid(&png)),
        ("the master key (raw)", master_raw.clone()),
        ("the master key (hex)", master_hex.as_bytes().to_vec()),
        ("the SSE-C key (raw)", kc.raw.clone()),
        ("the SSE-C key (base64)", kc.b64.as_bytes().to_vec()),
    ];
    let files: Vec<(PathBuf, Vec<u8>)> = files_under(&data)
        .into_iter()
        .filter_map(|p| std::fs::read(&p).ok().map(|bytes| (p, bytes)))
        .collect();
    assert!(
        files.len() > 3,
        "data dir has files: {:?}",
        files.iter().map(|f| &f.0).collect::<Vec<_>>()
    );
    let found = |needle: &[u8]| -> Vec<PathBuf> {
        files
            .iter()
            .filter(|(_, bytes)| contains(bytes, needle))
            .map(|(p, _)| p.clone())
            .collect()
    };
    let mut leaks = Vec::new();
    for (what, needle) in &needles {
        for p in found(needle) {
            leaks.push(format!("{what} in {}", p.display()));
        }
    }
    // The controls prove the search sees blobs, sled and the derivative cache.
    let control_blobs = found(CONTROL);
    assert!(
        control_blobs.iter().any(|p| p.starts_with(data.join("blobs"))),
        "the plain control object was not found in blobs/: {control_blobs:?}"
    );
    let small_control = found(SMALL_CONTROL);
    assert!(
        !small_control.is_empty(),
        "the small plain (inline) control object was found nowhere in the data dir"
    );
    let plain_derivative = found(&mid(&plain_png));
    assert!(
        plain_derivative.iter().any(|p| p.starts_with(data.join("cache"))),
        "the plain image's derivative was not found in cache/: {plain_derivative:?}"
    );
    let cache_files: Vec<_> = files_under(&data.join("cache"))
        .into_iter()
        .filter(|p| !p.starts_with(data.join("cache").join("tmp")))
        .collect();
    assert!(
        cache_files.len() >= 2,
        "both derivatives (encrypted and plain) are cached on disk: {cache_files:?}"
    );
    assert!(leaks.is_empty(), "found in the clear:\n{}", leaks.join("\n"));

    // Encrypted objects went to blob files of the sealed size, even the small ones.
    let on_disk: Vec<u64> = blob_files(&data)
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok().map(|m| m.len()))
        .collect();
    for size in [small.len(), large.len(), part.len(), tail.len()] {
        assert!(
            on_disk.contains(&sealed_len(size)),
            "no encrypted blob of {} bytes ({size} plaintext): {on_disk:?}",
            sealed_len(size)
        );
    }

    // The log never shows key material or plaintext.
    let log = server.stderr_log();
    assert!(!log.is_empty(), "the server logged something at debug level");
    for (what, needle) in [
        ("the master key (hex)", master_hex.as_str()),
        ("the SSE-C key (base64)", kc.b64.as_str()),
        ("the plaintext marker", std::str::from_utf8(MARKER).expect("utf8")),
    ] {
        assert!(!log.contains(needle), "{what} appears in the server's log");
    }
    assert!(
        !log.contains(&hex::encode(&kc.raw)),
        "the SSE-C key (hex) appears in the server's log"
    );
}

// ---------------------------------------------------------------------------------------------
// 7. Tamper detection
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampered_encrypted_blob_is_never_served_and_scrub_names_it() {
    // 49 segments; the flipped byte lands in segment 24, far from segment 0.
    const SIZE: usize = 3 * MIB + 12_345;
    let keys = Keys::new(None);
    let (mut server, client, bucket) = TestServer::start_in(fresh_data_dir(), keys.opts())
        .and_bucket("tamper")
        .await;
    let data = random_bytes(SIZE, 701);
    let other = random_bytes(300_000, 702);
    put_sse(&client, &bucket, "victim.bin", &data, Sse::S3).await;
    put_sse(&client, &bucket, "bystander.bin", &other, Sse::S3).await;
    drop(client);
    assert!(server.terminate().success());

    let dir = server.data_dir().to_path_buf();
    let clean = scrub(&dir);
    assert!(
        clean.status.success(),
        "scrub of an intact store: {}\n{}",
        clean.stdout,
        clean.stderr
    );

    // The victim's blob is the largest file under blobs/.
    let blob = blob_files(&dir)
        .into_iter()
        .max_by_key(|p| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0))
        .expect("a blob file");
    let len = std::fs::metadata(&blob).expect("stat blob").len();
    assert_eq!(len, sealed_len(SIZE), "the victim's blob has the sealed size");
    let flip_at = len / 2;
    let seg_disk = (SEG + TAG) as u64;
    let bad_seg = (flip_at / seg_disk) as usize;
    assert!(
        bad_seg >= 20 && flip_at % seg_disk < SEG as u64,
        "flip inside a segment's ciphertext"
    );
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&blob)
        .expect("open blob");
    let mut byte = [0u8; 1];
    file.read_exact_at(&mut byte, flip_at).expect("read byte");
    file.write_all_at(&[byte[0] ^ 0x01], flip_at).expect("flip byte");
    file.sync_all().expect("sync");
    drop(file);

    let out = scrub(&dir);
    assert!(
        !out.status.success(),
        "scrub must fail on a flipped byte\nstdout:\n{}\nstderr:\n{}",
        out.stdout,
        out.stderr
    );
    let corrupt: Vec<&str> = out.stdout.lines().filter(|l| l.starts_with("corrupt: ")).collect();
    assert_eq!(corrupt.len(), 1, "one corrupt object:\n{}", out.stdout);
    assert!(
        corrupt[0].starts_with(&format!("corrupt: {bucket}/victim.bin ")),
        "scrub names bucket/key: {}",
        corrupt[0]
    );

    server.start_again();
    let client = server.client();
    // Full GET through the SDK: an error, or at least not the object's bytes.
    let sdk = match client.get_object().bucket(&bucket).key("victim.bin").send().await {
        Err(e) => Err(describe(&e)),
        Ok(out) => out
            .body
            .collect()
            .await
            .map(|b| b.into_bytes().to_vec())
            .map_err(|e| format!("{e:?}")),
    };
    assert!(
        !matches!(&sdk, Ok(bytes) if *bytes == data),
        "a full GET of a tampered encrypted object succeeded with the original bytes"
    );
    if let Ok(bytes) = &sdk {
        assert!(
            bytes.len() < SIZE,
            "a full GET of a tampered object completed with {} bytes",
            bytes.len()
        );
    }
    // The raw client sees exactly what the server sent: never a clean, complete 200.
    let raw = SignedRequest::new("GET", format!("/{bucket}/victim.bin"))
        .send_partial(&server)
        .await;
    let clean_success = raw.status == Some(200) && raw.error.is_none() && raw.body.len() >= SIZE;
    assert!(
        !clean_success,
        "raw GET of a tampered object completed: status {:?}, {} bytes",
        raw.status,
        raw.body.len()
    );
    // Whatever did arrive is a prefix of the plaintext from before the bad segment.
    assert!(
        raw.body.len() <= bad_seg * SEG && raw.body[..] == data[..raw.body.len()],
        "the aborted response carried {} bytes, not a clean prefix before segment {bad_seg}",
        raw.body.len()
    );
    // A range over the bad segment fails too.
    let spec = format!("bytes={}-{}", bad_seg * SEG + 10, bad_seg * SEG + 20);
    let over = match client
        .get_object()
        .bucket(&bucket)
        .key("victim.bin")
        .range(&spec)
        .send()
        .await
    {
        Err(_) => None,
        Ok(out) => out.body.collect().await.ok().map(|b| b.into_bytes().to_vec()),
    };
    assert!(over.is_none(), "a range over the tampered segment was served: {spec}");

    // Ranges of intact segments are served, and correct.
    check_range(&client, &bucket, "victim.bin", None, &data, "bytes=0-65535").await;
    check_range(
        &client,
        &bucket,
        "victim.bin",
        None,
        &data,
        &format!("bytes={}-", (bad_seg + 1) * SEG),
    )
    .await;
    check_range(&client, &bucket, "victim.bin", None, &data, "bytes=-100").await;
    // Other objects are fine.
    assert!(read(&client, &bucket, "bystander.bin", None).await.0 == other);
    assert_eq!(server.health_status().await, 200);
    server.assert_alive();
    // The segment right before the bad one is intact, so a range of it must be served (the
    // reader may read ahead for speed, but must not fail a range over a segment it was not
    // asked for).
    check_range(
        &client,
        &bucket,
        "victim.bin",
        None,
        &data,
        &format!("bytes={}-{}", (bad_seg - 1) * SEG, bad_seg * SEG - 1),
    )
    .await;
}

// ---------------------------------------------------------------------------------------------
// 8. Master key rotation
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotate_master_reseals_everything_and_all_reads_back() {
    let keys = Keys::new(None);
    let data_dir = fresh_data_dir();
    keys.offline(data_dir.path(), &["kms", "create", "photos"]);
    let (mut server, client, bucket) = TestServer::start_in(data_dir, keys.opts()).and_bucket("rotate").await;
    let kc = customer_key(81);

    let mut objects: Vec<(String, Vec<u8>, Option<CustomerKey>)> = Vec::new();
    for (key, size, sse) in [
        ("s3-small", 100, Sse::S3),
        ("s3-large", MIB + 3, Sse::S3),
        ("s3-empty", 0, Sse::S3),
        ("kms", 200_000, Sse::Kms(Some("photos"))),
        ("ssec", 70_000, Sse::C(&kc)),
        ("plain", 5000, Sse::Plain),
    ] {
        let body = random_bytes(size, 800 + size as u64);
        put_sse(&client, &bucket, key, &body, sse).await;
        objects.push((key.to_string(), body, sse.key().cloned()));
    }
    let p1 = random_bytes(5 * MIB, 811);
    let p2 = random_bytes(4321, 812);
    multipart_sse(&client, &bucket, "mp-done", Sse::S3, &[&p1, &p2]).await;
    objects.push(("mp-done".into(), [p1.as_slice(), &p2].concat(), None));

    // Versions (each version record carries its own sealed data key).
    let vbucket = new_bucket(&client, "rotate-v").await;
    ok(
        client
            .put_bucket_versioning()
            .bucket(&vbucket)
            .versioning_configuration(
                VersioningConfiguration::builder()
                    .status(BucketVersioningStatus::Enabled)
                    .build(),
            )
            .send()
            .await,
        "PutBucketVersioning",
    );
    let v1_body = random_bytes(90_000, 821);
    let v2_body = random_bytes(91_000, 822);
    let v1 = put_sse(&client, &vbucket, "doc", &v1_body, Sse::S3)
        .await
        .version_id()
        .expect("version id")
        .to_string();
    let v2 = put_sse(&client, &vbucket, "doc", &v2_body, Sse::S3)
        .await
        .version_id()
        .expect("version id")
        .to_string();

    // An SSE-S3 image with a cached derivative.
    let jpeg = test_image("twowings-2560x1600.jpg");
    put_sse(&client, &bucket, "photo.jpg", &jpeg, Sse::S3).await;
    let tpath = format!("/{bucket}/photo.jpg?w=64&f=png");
    let derivative = SignedRequest::new("GET", &tpath).send(&server).await;
    assert_eq!(derivative.status, 200, "{}", derivative.text());

    // An SSE-S3 multipart upload in progress.
    let pending_p1 = random_bytes(5 * MIB, 831);
    let pending_p2 = random_bytes(2222, 832);
    let upload = ok(
        client
            .create_multipart_upload()
            .bucket(&bucket)
            .key("mp-pending")
            .server_side_encryption(ServerSideEncryption::Aes256)
            .send()
            .await,
        "CreateMultipartUpload",
    )
    .upload_id()
    .expect("id")
    .to_string();
    let e1 = ok(
        client
            .upload_part()
            .bucket(&bucket)
            .key("mp-pending")
            .upload_id(&upload)
            .part_number(1)
            .body(ByteStream::from(pending_p1.clone()))
            .send()
            .await,
        "UploadPart 1",
    )
    .e_tag()
    .expect("etag")
    .to_string();

    let before = read_key_file(&keys.key_file());
    assert_eq!(before.keys.len(), 1, "one master key before: {before:?}");
    let (old_id, old_hex) = before
        .keys
        .iter()
        .next()
        .map(|(a, b)| (a.clone(), b.clone()))
        .expect("key");
    assert_eq!(before.current, old_id);

    // Not while the server holds the data dir.
    let busy = keys.offline_tool(server.data_dir(), &["key", "rotate-master"]);
    assert!(
        !busy.status.success(),
        "rotate-master ran against a live server's data dir: {}",
        busy.stdout
    );
    assert_eq!(
        read_key_file(&keys.key_file()),
        before,
        "a refused rotation left the key file alone"
    );

    drop(client);
    assert!(server.terminate().success());
    let out = keys.offline(server.data_dir(), &["key", "rotate-master"]);
    let line = out
        .lines()
        .find(|l| l.starts_with("rotate-master: "))
        .unwrap_or_else(|| panic!("no `rotate-master: N keys re-sealed` line:\n{out}"));
    let resealed: u64 = line
        .trim_start_matches("rotate-master: ")
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count in {line:?}"));
    assert!(line.contains("keys re-sealed"), "{line}");
    eprintln!("{line}");
    // 7 SSE-S3 objects/versions (s3-small, s3-large, s3-empty, mp-done, 2 versions, photo),
    // the pending upload and the KMS key; SSE-C and plain objects have nothing to re-seal.
    assert!(resealed >= 9, "only {resealed} keys re-sealed: {line}");
    assert!(!out.contains(&old_hex), "rotate-master printed the old key");

    let after = read_key_file(&keys.key_file());
    assert_eq!(after.keys.len(), 1, "exactly one master key after rotation: {after:?}");
    let (new_id, new_hex) = after
        .keys
        .iter()
        .next()
        .map(|(a, b)| (a.clone(), b.clone()))
        .expect("key");
    assert_ne!(new_id, old_id, "a new key id");
    assert_ne!(new_hex, old_hex, "new key material");
    assert_eq!(after.current, new_id);
    assert_mode_0600(&keys.key_file());
    let text = std::fs::read_to_string(keys.key_file()).expect("key file");
    assert!(!text.contains(&old_hex), "the old key is gone from the key file");
    assert!(!out.contains(&new_hex), "rotate-master printed the new key");

    server.start_again();
    let client = server.client();
    for (key, body, k) in &objects {
        let (back, _) = read(&client, &bucket, key, k.as_ref()).await;
        assert!(back == *body, "{key} after rotation ({} bytes back)", back.len());
    }
    check_range(&client, &bucket, "s3-large", None, &objects[1].1, "bytes=65530-200000").await;
    for (v, body) in [(&v1, &v1_body), (&v2, &v2_body)] {
        let out = ok(
            client
                .get_object()
                .bucket(&vbucket)
                .key("doc")
                .version_id(v.as_str())
                .send()
                .await,
            "GET version",
        );
        assert!(body_of(out, "GET version").await == *body, "version {v} after rotation");
    }
    let (back, _) = read(&client, &bucket, "photo.jpg", None).await;
    assert!(back == jpeg, "the image after rotation");
    let cached = SignedRequest::new("GET", &tpath).send(&server).await;
    assert_eq!(cached.status, 200, "{}", cached.text());
    assert_eq!(cached.body, derivative.body, "the derivative after rotation");
    assert_eq!(
        cached.header("x-strata-cache"),
        Some("hit"),
        "the encrypted derivative in the disk cache still opens (its key derives from the unchanged data key)"
    );

    // The pending upload goes on under the re-sealed data key.
    let e2 = ok(
        client
            .upload_part()
            .bucket(&bucket)
            .key("mp-pending")
            .upload_id(&upload)
            .part_number(2)
            .body(ByteStream::from(pending_p2.clone()))
            .send()
            .await,
        "UploadPart 2 after rotation",
    )
    .e_tag()
    .expect("etag")
    .to_string();
    let done = ok(
        client
            .complete_multipart_upload()
            .bucket(&bucket)
            .key("mp-pending")
            .upload_id(&upload)
            .multipart_upload(completed(&[(1, e1), (2, e2)]))
            .send()
            .await,
        "CompleteMultipartUpload after rotation",
    );
    assert_eq!(done.server_side_encryption(), Some(&ServerSideEncryption::Aes256));
    let whole = [pending_p1.as_slice(), &pending_p2].concat();
    let (back, out) = read(&client, &bucket, "mp-pending", None).await;
    assert!(back == whole, "the upload completed after rotation");
    assert_eq!(out.server_side_encryption(), Some(&ServerSideEncryption::Aes256));
    check_range(
        &client,
        &bucket,
        "mp-pending",
        None,
        &whole,
        &format!("bytes={}-{}", 5 * MIB - 5, 5 * MIB + 5),
    )
    .await;

    // New writes use the new key; the KMS key still works.
    put_sse(&client, &bucket, "new-s3", b"after rotation", Sse::S3).await;
    put_sse(
        &client,
        &bucket,
        "new-kms",
        b"after rotation (kms)",
        Sse::Kms(Some("photos")),
    )
    .await;
    assert_eq!(read(&client, &bucket, "new-s3", None).await.0, b"after rotation");
    assert_eq!(read(&client, &bucket, "new-kms", None).await.0, b"after rotation (kms)");
    assert_eq!(
        read_key_file(&keys.key_file()),
        after,
        "serving did not change the key file"
    );

    // And everything survives one more restart on the new key alone.
    server.restart();
    let client = server.client();
    for (key, body, k) in &objects {
        assert!(
            read(&client, &bucket, key, k.as_ref()).await.0 == *body,
            "{key} after rotation + restart"
        );
    }
    assert!(read(&client, &bucket, "mp-pending", None).await.0 == whole);
}

// ---------------------------------------------------------------------------------------------
// 9. Restarts and the default key file location
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarts_reload_the_master_key_from_beside_the_data_dir() {
    // No master_key_file configured: the key file is `<data_dir>.master-key`, beside the data
    // dir. The data dir lives inside a directory this test owns, so nothing leaks.
    let root = tempfile::Builder::new()
        .prefix("strata-enc-root-")
        .tempdir()
        .expect("root tempdir");
    let data = tempfile::Builder::new()
        .prefix("data-")
        .tempdir_in(root.path())
        .expect("data tempdir");
    let mut key_name = data.path().file_name().expect("name").to_os_string();
    key_name.push(".master-key");
    let key_file = root.path().join(key_name);
    let data_path = data.path().to_path_buf();

    let (mut server, client, bucket) = TestServer::start_in(data, ServerOptions::default())
        .and_bucket("restart")
        .await;
    put_sse(&client, &bucket, "plain", b"no key needed", Sse::Plain).await;
    assert!(!key_file.exists(), "the key file is created on first use, not before");
    let kc = customer_key(91);
    let s3 = random_bytes(MIB + 3, 901);
    let ssec = random_bytes(100_000, 902);
    put_sse(&client, &bucket, "s3", &s3, Sse::S3).await;
    put_sse(&client, &bucket, "ssec", &ssec, Sse::C(&kc)).await;
    assert!(key_file.exists(), "SSE-S3 created {}", key_file.display());
    assert_mode_0600(&key_file);
    assert!(!key_file.starts_with(&data_path));
    assert!(
        !files_under(&data_path)
            .iter()
            .any(|p| p.to_string_lossy().contains("master-key")),
        "no key file inside the data dir"
    );
    let original = read_key_file(&key_file);
    drop(client);

    // Clean stop; the offline keyring tool finds the same default key file.
    assert!(server.terminate().success());
    run_strata(&[
        "kms",
        "create",
        "photos",
        "--data",
        data_path.to_str().expect("utf8 path"),
    ]);
    assert_eq!(
        read_key_file(&key_file),
        original,
        "kms create used the existing master key"
    );
    server.start_again();
    let client = server.client();
    let kms = random_bytes(80_000, 903);
    put_sse(&client, &bucket, "kms", &kms, Sse::Kms(Some("photos"))).await;
    assert!(
        read(&client, &bucket, "s3", None).await.0 == s3,
        "SSE-S3 after a clean restart"
    );

    // SIGKILL, then start again: the key file is read back from disk.
    drop(client);
    server.restart();
    let client = server.client();
    let (back, out) = read(&client, &bucket, "s3", None).await;
    assert!(back == s3, "SSE-S3 after SIGKILL + restart");
    assert_eq!(out.server_side_encryption(), Some(&ServerSideEncryption::Aes256));
    check_range(&client, &bucket, "s3", None, &s3, "bytes=65530-65545").await;
    assert!(
        read(&client, &bucket, "ssec", Some(&kc)).await.0 == ssec,
        "SSE-C after restart"
    );
    let (back, out) = read(&client, &bucket, "kms", None).await;
    assert!(back == kms, "SSE-KMS after restart");
    assert_kms_key(out.ssekms_key_id(), "photos", "GET after restart");
    assert_eq!(read(&client, &bucket, "plain", None).await.0, b"no key needed");
    expect_error(
        get_req(&client, &bucket, "ssec", None).send().await,
        400,
        "InvalidRequest",
    );
    assert_eq!(
        read_key_file(&key_file),
        original,
        "restarts never replace the master key"
    );

    // Without its key file the server cannot read SSE-S3 objects (and does not make up a key
    // that would silently differ): move the file away and back.
    drop(client);
    assert!(server.terminate().success());
    let moved = root.path().join("moved.master-key");
    std::fs::rename(&key_file, &moved).expect("move the key file away");
    server.start_again();
    let client = server.client();
    let denied = client.get_object().bucket(&bucket).key("s3").send().await;
    let served = match denied {
        Err(_) => false,
        Ok(out) => out
            .body
            .collect()
            .await
            .is_ok_and(|b| b.into_bytes().as_ref() == s3.as_slice()),
    };
    assert!(!served, "an SSE-S3 object was served without its master key");
    drop(client);
    assert!(server.terminate().success());
    if key_file.exists() {
        // The server made a fresh key file on the failed read; the original must win.
        std::fs::remove_file(&key_file).expect("remove replacement key file");
    }
    std::fs::rename(&moved, &key_file).expect("move the key file back");
    server.start_again();
    let client = server.client();
    assert!(
        read(&client, &bucket, "s3", None).await.0 == s3,
        "readable again with its key file"
    );
}
