//! Integrity checks on upload: x-amz-checksum-* (CRC32, CRC32C, CRC64NVME, SHA1, SHA256) as
//! headers and as aws-chunked trailers, stored and returned with checksum mode; wrong
//! checksums, Content-MD5 and x-amz-content-sha256 are refused and store nothing; multipart
//! uploads with per-part checksums.
//!
//! The reference hashes are implemented here (small, table-driven) so the expected values do
//! not come from the SDK that also produced the request.

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{ChecksumAlgorithm, ChecksumMode, CompletedMultipartUpload, CompletedPart};
use aws_sdk_s3::Client;

use crate::fixtures::*;

// ---------------------------------------------------------------------------------------------
// Reference implementations
// ---------------------------------------------------------------------------------------------

fn crc32_table(poly: u32) -> [u32; 256] {
    let mut table = [0u32; 256];
    for (i, slot) in table.iter_mut().enumerate() {
        let mut c = i as u32;
        for _ in 0..8 {
            c = if c & 1 != 0 { (c >> 1) ^ poly } else { c >> 1 };
        }
        *slot = c;
    }
    table
}

fn crc32_with(poly: u32, data: &[u8]) -> u32 {
    let table = crc32_table(poly);
    let mut crc = !0u32;
    for &b in data {
        crc = table[((crc ^ b as u32) & 0xff) as usize] ^ (crc >> 8);
    }
    !crc
}

/// CRC-32 (IEEE, reflected 0xEDB88320).
pub fn crc32(data: &[u8]) -> u32 {
    crc32_with(0xEDB8_8320, data)
}

/// CRC-32C (Castagnoli, reflected 0x82F63B78).
pub fn crc32c(data: &[u8]) -> u32 {
    crc32_with(0x82F6_3B78, data)
}

/// CRC-64/NVME (reflected 0x9A6C9329AC4BC9B5, init and xorout all ones).
pub fn crc64nvme(data: &[u8]) -> u64 {
    let mut table = [0u64; 256];
    for (i, slot) in table.iter_mut().enumerate() {
        let mut c = i as u64;
        for _ in 0..8 {
            c = if c & 1 != 0 {
                (c >> 1) ^ 0x9A6C_9329_AC4B_C9B5
            } else {
                c >> 1
            };
        }
        *slot = c;
    }
    let mut crc = !0u64;
    for &b in data {
        crc = table[((crc ^ b as u64) & 0xff) as usize] ^ (crc >> 8);
    }
    !crc
}

/// Pads a message the MD-style way (0x80, zeros, 64-bit big-endian bit length).
fn md_pad(data: &[u8]) -> Vec<u8> {
    let mut msg = data.to_vec();
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&((data.len() as u64) * 8).to_be_bytes());
    msg
}

pub fn sha1(data: &[u8]) -> [u8; 20] {
    let mut h: [u32; 5] = [0x6745_2301, 0xEFCD_AB89, 0x98BA_DCFE, 0x1032_5476, 0xC3D2_E1F0];
    for block in md_pad(data).chunks(64) {
        let mut w = [0u32; 80];
        for i in 0..16 {
            w[i] = u32::from_be_bytes(block[4 * i..4 * i + 4].try_into().unwrap());
        }
        for i in 16..80 {
            w[i] = (w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16]).rotate_left(1);
        }
        let [mut a, mut b, mut c, mut d, mut e] = h;
        for (i, wi) in w.iter().enumerate() {
            let (f, k) = match i {
                0..=19 => ((b & c) | (!b & d), 0x5A82_7999),
                20..=39 => (b ^ c ^ d, 0x6ED9_EBA1),
                40..=59 => ((b & c) | (b & d) | (c & d), 0x8F1B_BCDC),
                _ => (b ^ c ^ d, 0xCA62_C1D6),
            };
            let t = a
                .rotate_left(5)
                .wrapping_add(f)
                .wrapping_add(e)
                .wrapping_add(k)
                .wrapping_add(*wi);
            e = d;
            d = c;
            c = b.rotate_left(30);
            b = a;
            a = t;
        }
        for (x, y) in h.iter_mut().zip([a, b, c, d, e]) {
            *x = x.wrapping_add(y);
        }
    }
    let mut out = [0u8; 20];
    for (i, x) in h.iter().enumerate() {
        out[4 * i..4 * i + 4].copy_from_slice(&x.to_be_bytes());
    }
    out
}

pub fn sha256(data: &[u8]) -> [u8; 32] {
    const K: [u32; 64] = [
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98,
        0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786,
        0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8,
        0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
        0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819,
        0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a,
        0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
        0xc67178f2,
    ];
    let mut h: [u32; 8] = [
        0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
    ];
    for block in md_pad(data).chunks(64) {
        let mut w = [0u32; 64];
        for i in 0..16 {
            w[i] = u32::from_be_bytes(block[4 * i..4 * i + 4].try_into().unwrap());
        }
        for i in 16..64 {
            let s0 = w[i - 15].rotate_right(7) ^ w[i - 15].rotate_right(18) ^ (w[i - 15] >> 3);
            let s1 = w[i - 2].rotate_right(17) ^ w[i - 2].rotate_right(19) ^ (w[i - 2] >> 10);
            w[i] = w[i - 16].wrapping_add(s0).wrapping_add(w[i - 7]).wrapping_add(s1);
        }
        let [mut a, mut b, mut c, mut d, mut e, mut f, mut g, mut hh] = h;
        for i in 0..64 {
            let s1 = e.rotate_right(6) ^ e.rotate_right(11) ^ e.rotate_right(25);
            let ch = (e & f) ^ (!e & g);
            let t1 = hh
                .wrapping_add(s1)
                .wrapping_add(ch)
                .wrapping_add(K[i])
                .wrapping_add(w[i]);
            let s0 = a.rotate_right(2) ^ a.rotate_right(13) ^ a.rotate_right(22);
            let maj = (a & b) ^ (a & c) ^ (b & c);
            let t2 = s0.wrapping_add(maj);
            hh = g;
            g = f;
            f = e;
            e = d.wrapping_add(t1);
            d = c;
            c = b;
            b = a;
            a = t1.wrapping_add(t2);
        }
        for (x, y) in h.iter_mut().zip([a, b, c, d, e, f, g, hh]) {
            *x = x.wrapping_add(y);
        }
    }
    let mut out = [0u8; 32];
    for (i, x) in h.iter().enumerate() {
        out[4 * i..4 * i + 4].copy_from_slice(&x.to_be_bytes());
    }
    out
}

#[test]
fn reference_hashes_match_known_vectors() {
    assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    assert_eq!(crc32c(b"123456789"), 0xE306_9283);
    assert_eq!(crc64nvme(b"123456789"), 0xAE8B_1486_0A79_9888);
    assert_eq!(hex::encode(sha1(b"abc")), "a9993e364706816aba3e25717850c26c9cd0d89d");
    assert_eq!(
        hex::encode(sha256(b"")),
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
    assert_eq!(
        hex::encode(sha256(b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")),
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"
    );
}

// ---------------------------------------------------------------------------------------------
// The algorithms as the S3 API sees them
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug)]
enum Alg {
    Crc32,
    Crc32c,
    Crc64Nvme,
    Sha1,
    Sha256,
}

impl Alg {
    fn sdk(self) -> ChecksumAlgorithm {
        match self {
            Alg::Crc32 => ChecksumAlgorithm::Crc32,
            Alg::Crc32c => ChecksumAlgorithm::Crc32C,
            Alg::Crc64Nvme => ChecksumAlgorithm::Crc64Nvme,
            Alg::Sha1 => ChecksumAlgorithm::Sha1,
            Alg::Sha256 => ChecksumAlgorithm::Sha256,
        }
    }

    /// The base64 of the big-endian digest, as in `x-amz-checksum-*`.
    fn of(self, data: &[u8]) -> String {
        match self {
            Alg::Crc32 => b64(&crc32(data).to_be_bytes()),
            Alg::Crc32c => b64(&crc32c(data).to_be_bytes()),
            Alg::Crc64Nvme => b64(&crc64nvme(data).to_be_bytes()),
            Alg::Sha1 => b64(&sha1(data)),
            Alg::Sha256 => b64(&sha256(data)),
        }
    }
}

/// Picks this algorithm's value out of an output's five checksum fields.
macro_rules! checksum_of {
    ($alg:expr, $out:expr) => {
        (match $alg {
            Alg::Crc32 => $out.checksum_crc32(),
            Alg::Crc32c => $out.checksum_crc32_c(),
            Alg::Crc64Nvme => $out.checksum_crc64_nvme(),
            Alg::Sha1 => $out.checksum_sha1(),
            Alg::Sha256 => $out.checksum_sha256(),
        })
        .map(str::to_string)
    };
}

/// Puts `body` with `alg` twice, once in memory (checksum in a header) and once from a file
/// (aws-chunked body with the checksum in a trailer), and checks what is stored and returned.
async fn roundtrip(alg: Alg) {
    let (_server, client, bucket) = TestServer::with_bucket("cksum").await;
    let body = random_bytes(200 * 1024 + 3, 77);
    let want = alg.of(&body);

    // Header.
    let out = ok(
        client
            .put_object()
            .bucket(&bucket)
            .key("header")
            .checksum_algorithm(alg.sdk())
            .body(body.clone().into())
            .send()
            .await,
        &format!("PutObject {alg:?} (header)"),
    );
    assert_eq!(
        checksum_of!(alg, out),
        Some(want.clone()),
        "PutObject {alg:?} (header) response checksum"
    );
    assert_eq!(out.e_tag(), Some(etag_of(&body).as_str()));

    // Trailer (streaming body from a file).
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), &body).unwrap();
    let out = ok(
        client
            .put_object()
            .bucket(&bucket)
            .key("trailer")
            .checksum_algorithm(alg.sdk())
            .body(ByteStream::from_path(file.path()).await.unwrap())
            .send()
            .await,
        &format!("PutObject {alg:?} (aws-chunked trailer)"),
    );
    assert_eq!(
        checksum_of!(alg, out),
        Some(want.clone()),
        "PutObject {alg:?} (trailer) response checksum"
    );
    assert_eq!(
        out.e_tag(),
        Some(etag_of(&body).as_str()),
        "aws-chunked framing leaked into the stored bytes"
    );

    for key in ["header", "trailer"] {
        let got = ok(
            client
                .get_object()
                .bucket(&bucket)
                .key(key)
                .checksum_mode(ChecksumMode::Enabled)
                .send()
                .await,
            &format!("GetObject {key} with checksum mode"),
        );
        assert_eq!(
            checksum_of!(alg, got),
            Some(want.clone()),
            "GetObject {alg:?} {key}: stored checksum"
        );
        // The SDK validates the body against the returned checksum while collecting it.
        let bytes = got
            .body
            .collect()
            .await
            .unwrap_or_else(|e| panic!("GET {key} body: {e}"))
            .into_bytes();
        assert!(bytes.as_ref() == body.as_slice(), "GET {key}: bytes differ");
        let head = ok(
            client
                .head_object()
                .bucket(&bucket)
                .key(key)
                .checksum_mode(ChecksumMode::Enabled)
                .send()
                .await,
            &format!("HeadObject {key} with checksum mode"),
        );
        assert_eq!(
            checksum_of!(alg, head),
            Some(want.clone()),
            "HeadObject {alg:?} {key}: stored checksum"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crc32_roundtrip() {
    roundtrip(Alg::Crc32).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crc32c_roundtrip() {
    roundtrip(Alg::Crc32c).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crc64nvme_roundtrip() {
    roundtrip(Alg::Crc64Nvme).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sha1_roundtrip() {
    roundtrip(Alg::Sha1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sha256_roundtrip() {
    roundtrip(Alg::Sha256).await;
}

/// Asserts that a failed integrity check stored nothing new: `key` is absent or, when
/// `previous` is given, still holds it.
async fn assert_unchanged(client: &Client, bucket: &str, key: &str, previous: Option<&[u8]>) {
    match previous {
        None => {
            expect_error(
                client.get_object().bucket(bucket).key(key).send().await,
                404,
                "NoSuchKey",
            );
        }
        Some(old) => assert!(
            get_bytes(client, bucket, key).await == old,
            "a rejected upload replaced the existing object {key}"
        ),
    }
}

const DIGEST_ERRORS: &[&str] = &["BadDigest", "XAmzContentChecksumMismatch"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_checksum_header_is_rejected() {
    let (_server, client, bucket) = TestServer::with_bucket("badck").await;
    let body = b"these bytes do not have that crc".to_vec();

    expect_error_in(
        client
            .put_object()
            .bucket(&bucket)
            .key("new")
            .checksum_crc32("AAAAAA==")
            .body(body.clone().into())
            .send()
            .await,
        400,
        DIGEST_ERRORS,
    );
    assert_unchanged(&client, &bucket, "new", None).await;

    put(&client, &bucket, "existing", b"old bytes".to_vec()).await;
    expect_error_in(
        client
            .put_object()
            .bucket(&bucket)
            .key("existing")
            .checksum_crc32("AAAAAA==")
            .body(body.clone().into())
            .send()
            .await,
        400,
        DIGEST_ERRORS,
    );
    assert_unchanged(&client, &bucket, "existing", Some(b"old bytes")).await;

    // The same for a strong hash, and for a value that is the right checksum of other bytes.
    expect_error_in(
        client
            .put_object()
            .bucket(&bucket)
            .key("existing")
            .checksum_sha256(Alg::Sha256.of(b"something else"))
            .body(body.clone().into())
            .send()
            .await,
        400,
        DIGEST_ERRORS,
    );
    assert_unchanged(&client, &bucket, "existing", Some(b"old bytes")).await;

    // And the right value is accepted.
    ok(
        client
            .put_object()
            .bucket(&bucket)
            .key("existing")
            .checksum_crc32(Alg::Crc32.of(&body))
            .body(body.clone().into())
            .send()
            .await,
        "PutObject with the correct CRC32 header",
    );
    assert_eq!(get_bytes(&client, &bucket, "existing").await, body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn content_md5_is_verified() {
    let (_server, client, bucket) = TestServer::with_bucket("md5").await;
    let body = random_bytes(50_000, 8);

    expect_error(
        client
            .put_object()
            .bucket(&bucket)
            .key("k")
            .content_md5(content_md5(b"other"))
            .body(body.clone().into())
            .send()
            .await,
        400,
        "BadDigest",
    );
    assert_unchanged(&client, &bucket, "k", None).await;
    // Not a base64 MD5 at all.
    expect_error(
        client
            .put_object()
            .bucket(&bucket)
            .key("k")
            .content_md5("not-an-md5")
            .body(body.clone().into())
            .send()
            .await,
        400,
        "InvalidDigest",
    );
    assert_unchanged(&client, &bucket, "k", None).await;

    ok(
        client
            .put_object()
            .bucket(&bucket)
            .key("k")
            .content_md5(content_md5(&body))
            .body(body.clone().into())
            .send()
            .await,
        "PutObject with the correct Content-MD5",
    );
    assert!(get_bytes(&client, &bucket, "k").await == body);
    expect_error(
        client
            .put_object()
            .bucket(&bucket)
            .key("k")
            .content_md5(content_md5(b"other"))
            .body(b"new".to_vec().into())
            .send()
            .await,
        400,
        "BadDigest",
    );
    assert_unchanged(&client, &bucket, "k", Some(&body)).await;

    // UploadPart checks Content-MD5 too.
    let id = crate::multipart::create_upload(&client, &bucket, "mp").await;
    expect_error(
        client
            .upload_part()
            .bucket(&bucket)
            .key("mp")
            .upload_id(&id)
            .part_number(1)
            .content_md5(content_md5(b"other"))
            .body(body.clone().into())
            .send()
            .await,
        400,
        "BadDigest",
    );
    let parts = ok(
        client
            .list_parts()
            .bucket(&bucket)
            .key("mp")
            .upload_id(&id)
            .send()
            .await,
        "ListParts",
    );
    assert!(parts.parts().is_empty(), "a part with a bad Content-MD5 was stored");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampered_payload_fails_content_sha256() {
    let (server, client, bucket) = TestServer::with_bucket("sha").await;
    // Signed over one body (x-amz-content-sha256 is its hash); a different body of the same
    // length is sent.
    let response = SignedRequest::new("PUT", format!("/{bucket}/k"))
        .body(b"signed body".to_vec())
        .send_tampered(&server, |req| {
            *req.body_mut() = http_body_util::Full::new(bytes::Bytes::from_static(b"sneaky body"))
        })
        .await;
    // First and foremost, the tampered bytes were not stored.
    assert_unchanged(&client, &bucket, "k", None).await;
    assert!(
        matches!(
            (response.status, response.error_code().as_deref()),
            (400, Some("XAmzContentSHA256Mismatch")) | (400, Some("BadDigest")) | (403, Some("SignatureDoesNotMatch"))
        ),
        "tampered payload: expected 400 XAmzContentSHA256Mismatch, got {} {}",
        response.status,
        response.text()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multipart_with_checksums() {
    let (_server, client, bucket) = TestServer::with_bucket("mpck").await;
    let parts = [
        random_bytes(5 * MIB, 91),
        random_bytes(5 * MIB, 92),
        random_bytes(333, 93),
    ];

    let create = ok(
        client
            .create_multipart_upload()
            .bucket(&bucket)
            .key("ck")
            .checksum_algorithm(ChecksumAlgorithm::Crc32)
            .send()
            .await,
        "CreateMultipartUpload CRC32",
    );
    let id = create.upload_id().unwrap().to_string();
    let mut done = Vec::new();
    for (i, part) in parts.iter().enumerate() {
        let n = i as i32 + 1;
        let out = ok(
            client
                .upload_part()
                .bucket(&bucket)
                .key("ck")
                .upload_id(&id)
                .part_number(n)
                .checksum_algorithm(ChecksumAlgorithm::Crc32)
                .body(part.clone().into())
                .send()
                .await,
            &format!("UploadPart {n} with CRC32"),
        );
        let ck = out.checksum_crc32().map(str::to_string);
        assert_eq!(ck, Some(Alg::Crc32.of(part)), "UploadPart {n} CRC32");
        done.push(
            CompletedPart::builder()
                .part_number(n)
                .e_tag(out.e_tag().unwrap())
                .checksum_crc32(ck.unwrap())
                .build(),
        );
    }
    // A part with a wrong checksum is refused.
    expect_error_in(
        client
            .upload_part()
            .bucket(&bucket)
            .key("ck")
            .upload_id(&id)
            .part_number(9)
            .checksum_crc32("AAAAAA==")
            .body(b"bad".to_vec().into())
            .send()
            .await,
        400,
        DIGEST_ERRORS,
    );
    let listed = ok(
        client
            .list_parts()
            .bucket(&bucket)
            .key("ck")
            .upload_id(&id)
            .send()
            .await,
        "ListParts",
    );
    assert_eq!(listed.parts().len(), 3, "a part with a wrong checksum was stored");

    ok(
        client
            .complete_multipart_upload()
            .bucket(&bucket)
            .key("ck")
            .upload_id(&id)
            .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(done)).build())
            .send()
            .await,
        "CompleteMultipartUpload with part checksums",
    );
    let got = ok(
        client
            .get_object()
            .bucket(&bucket)
            .key("ck")
            .checksum_mode(ChecksumMode::Enabled)
            .send()
            .await,
        "GetObject",
    );
    let bytes = got
        .body
        .collect()
        .await
        .expect("GET body (checksum validated by the SDK)")
        .into_bytes();
    assert!(bytes.as_ref() == parts.concat().as_slice(), "multipart bytes differ");

    // The SDK's default upload path (its own CRC32 on every part, no algorithm named at
    // create) works as well.
    let id = crate::multipart::create_upload(&client, &bucket, "default").await;
    let e1 = crate::multipart::upload_part(&client, &bucket, "default", &id, 1, &parts[0]).await;
    let e2 = crate::multipart::upload_part(&client, &bucket, "default", &id, 2, &parts[2]).await;
    ok(
        client
            .complete_multipart_upload()
            .bucket(&bucket)
            .key("default")
            .upload_id(&id)
            .multipart_upload(crate::multipart::completed(&[(1, e1), (2, e2)]))
            .send()
            .await,
        "CompleteMultipartUpload (SDK defaults)",
    );
    assert!(get_bytes(&client, &bucket, "default").await == [parts[0].clone(), parts[2].clone()].concat());
}
