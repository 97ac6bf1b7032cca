//! Request checksums: which algorithms to compute while a body streams in, and verifying the
//! client's values (headers or aws-chunked trailers, and Content-MD5) before anything becomes
//! visible. Values are base64, as S3 sends them.

use base64::Engine;
use s3s::checksum::ChecksumHasher;
use s3s::dto::Checksum;
use s3s::S3Result;

use super::errors;
use crate::store::records::Checksums;

const TRAILER_NAMES: [&str; 5] = [
    "x-amz-checksum-crc32",
    "x-amz-checksum-crc32c",
    "x-amz-checksum-crc64nvme",
    "x-amz-checksum-sha1",
    "x-amz-checksum-sha256",
];

/// The checksum values a client claims for a body.
#[derive(Default, Debug, Clone)]
pub struct Claimed {
    pub algorithm: Option<String>,
    pub values: Checksum,
    pub content_md5: Option<String>,
}

impl Claimed {
    /// Builds the hasher for every algorithm named by a header value, the
    /// `x-amz-sdk-checksum-algorithm` header, or the `x-amz-trailer` header.
    pub fn hasher(&self, headers: &http::HeaderMap) -> S3Result<ChecksumHasher> {
        let mut h = ChecksumHasher::default();
        let v = &self.values;
        let mut want = |name: &str| -> S3Result<()> {
            match name.to_ascii_uppercase().as_str() {
                "CRC32" => h.crc32 = Some(Default::default()),
                "CRC32C" => h.crc32c = Some(Default::default()),
                "CRC64NVME" => h.crc64nvme = Some(Default::default()),
                "SHA1" => h.sha1 = Some(Default::default()),
                "SHA256" => h.sha256 = Some(Default::default()),
                other => {
                    return Err(errors::invalid_request(format!(
                        "Unsupported checksum algorithm: {other}"
                    )))
                }
            }
            Ok(())
        };
        if v.checksum_crc32.is_some() {
            want("CRC32")?;
        }
        if v.checksum_crc32c.is_some() {
            want("CRC32C")?;
        }
        if v.checksum_crc64nvme.is_some() {
            want("CRC64NVME")?;
        }
        if v.checksum_sha1.is_some() {
            want("SHA1")?;
        }
        if v.checksum_sha256.is_some() {
            want("SHA256")?;
        }
        if let Some(a) = &self.algorithm {
            want(a)?;
        }
        if let Some(trailer) = headers.get("x-amz-trailer").and_then(|t| t.to_str().ok()) {
            for name in trailer.split(',').map(str::trim) {
                if let Some(alg) = name.to_ascii_lowercase().strip_prefix("x-amz-checksum-") {
                    want(alg)?;
                }
            }
        }
        Ok(h)
    }

    /// Adds values that arrived as aws-chunked trailers.
    pub fn merge_trailers(&mut self, trailers: Option<&http::HeaderMap>) -> S3Result<()> {
        let Some(t) = trailers else { return Ok(()) };
        for name in TRAILER_NAMES {
            if let Some(value) = t.get(name) {
                let value = value
                    .to_str()
                    .map_err(|_| errors::invalid_argument(format!("invalid {name} trailer")))?
                    .to_string();
                let slot = match name {
                    "x-amz-checksum-crc32" => &mut self.values.checksum_crc32,
                    "x-amz-checksum-crc32c" => &mut self.values.checksum_crc32c,
                    "x-amz-checksum-crc64nvme" => &mut self.values.checksum_crc64nvme,
                    "x-amz-checksum-sha1" => &mut self.values.checksum_sha1,
                    _ => &mut self.values.checksum_sha256,
                };
                *slot = Some(value);
            }
        }
        Ok(())
    }

    /// Compares claims with what was computed. Any mismatch → `BadDigest`.
    pub fn verify(&self, md5: &[u8; 16], computed: &Checksum) -> S3Result<()> {
        if let Some(claimed) = &self.content_md5 {
            let raw = base64::engine::general_purpose::STANDARD
                .decode(claimed.trim())
                .map_err(|_| errors::invalid_digest())?;
            if raw.len() != 16 {
                return Err(errors::invalid_digest());
            }
            if raw.as_slice() != md5 {
                return Err(errors::bad_digest(
                    "The Content-MD5 you specified did not match what we received.",
                ));
            }
        }
        let pairs = [
            ("crc32", &self.values.checksum_crc32, &computed.checksum_crc32),
            ("crc32c", &self.values.checksum_crc32c, &computed.checksum_crc32c),
            (
                "crc64nvme",
                &self.values.checksum_crc64nvme,
                &computed.checksum_crc64nvme,
            ),
            ("sha1", &self.values.checksum_sha1, &computed.checksum_sha1),
            ("sha256", &self.values.checksum_sha256, &computed.checksum_sha256),
        ];
        for (name, claimed, actual) in pairs {
            if let Some(claimed) = claimed {
                if Some(claimed) != actual.as_ref() {
                    return Err(errors::bad_digest(format!(
                        "The x-amz-checksum-{name} you specified did not match the calculated checksum."
                    )));
                }
            }
        }
        Ok(())
    }
}

/// The record form of computed checksums of a whole single-part body.
pub fn full_object(computed: &Checksum) -> Checksums {
    let any = computed.checksum_crc32.is_some()
        || computed.checksum_crc32c.is_some()
        || computed.checksum_crc64nvme.is_some()
        || computed.checksum_sha1.is_some()
        || computed.checksum_sha256.is_some();
    Checksums {
        crc32: computed.checksum_crc32.clone(),
        crc32c: computed.checksum_crc32c.clone(),
        crc64nvme: computed.checksum_crc64nvme.clone(),
        sha1: computed.checksum_sha1.clone(),
        sha256: computed.checksum_sha256.clone(),
        checksum_type: any.then(|| "FULL_OBJECT".to_string()),
    }
}

pub fn to_dto(c: &Checksums) -> Checksum {
    Checksum {
        checksum_crc32: c.crc32.clone(),
        checksum_crc32c: c.crc32c.clone(),
        checksum_crc64nvme: c.crc64nvme.clone(),
        checksum_sha1: c.sha1.clone(),
        checksum_sha256: c.sha256.clone(),
        checksum_type: c.checksum_type.clone().map(s3s::dto::ChecksumType::from),
    }
}

fn part_value<'a>(c: &'a Checksums, algorithm: &str) -> Option<&'a str> {
    match algorithm {
        "CRC32" => c.crc32.as_deref(),
        "CRC32C" => c.crc32c.as_deref(),
        "CRC64NVME" => c.crc64nvme.as_deref(),
        "SHA1" => c.sha1.as_deref(),
        "SHA256" => c.sha256.as_deref(),
        _ => None,
    }
}

fn set_value(c: &mut Checksums, algorithm: &str, value: String) {
    match algorithm {
        "CRC32" => c.crc32 = Some(value),
        "CRC32C" => c.crc32c = Some(value),
        "CRC64NVME" => c.crc64nvme = Some(value),
        "SHA1" => c.sha1 = Some(value),
        "SHA256" => c.sha256 = Some(value),
        _ => {}
    }
}

/// The checksum of a multipart object from its parts' checksums, as S3 defines it:
/// `FULL_OBJECT` (CRCs only; the CRC of the whole object, combined arithmetically) or
/// `COMPOSITE` (the checksum of the concatenated binary part checksums, suffixed `-N`).
/// Returns empty checksums when the upload named no algorithm or a part lacks a value.
pub fn multipart(algorithm: Option<&str>, checksum_type: Option<&str>, parts: &[(&Checksums, u64)]) -> Checksums {
    use s3s::crypto::Checksum as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut out = Checksums::default();
    let Some(alg) = algorithm.map(str::to_ascii_uppercase) else {
        return out;
    };
    let mut raw: Vec<(Vec<u8>, u64)> = Vec::with_capacity(parts.len());
    for (c, size) in parts {
        let Some(v) = part_value(c, &alg).and_then(|v| b64.decode(v).ok()) else {
            return out;
        };
        raw.push((v, *size));
    }
    let full_object = match checksum_type {
        Some(t) => t.eq_ignore_ascii_case("FULL_OBJECT"),
        None => alg == "CRC64NVME",
    };
    let crc_alg = match alg.as_str() {
        "CRC32" => Some((crc_fast::CrcAlgorithm::Crc32IsoHdlc, 4)),
        "CRC32C" => Some((crc_fast::CrcAlgorithm::Crc32Iscsi, 4)),
        "CRC64NVME" => Some((crc_fast::CrcAlgorithm::Crc64Nvme, 8)),
        _ => None,
    };
    if full_object {
        let Some((crc, width)) = crc_alg else { return out };
        let mut acc: Option<u64> = None;
        for (bytes, size) in &raw {
            if bytes.len() != width {
                return out;
            }
            let mut buf = [0u8; 8];
            buf[8 - width..].copy_from_slice(bytes);
            let value = u64::from_be_bytes(buf);
            acc = Some(match acc {
                None => value,
                Some(prev) => crc_fast::checksum_combine(crc, prev, value, *size),
            });
        }
        let Some(v) = acc else { return out };
        let bytes = v.to_be_bytes();
        set_value(&mut out, &alg, b64.encode(&bytes[8 - width..]));
        out.checksum_type = Some("FULL_OBJECT".to_string());
        return out;
    }
    let concat: Vec<u8> = raw.iter().flat_map(|(b, _)| b.iter().copied()).collect();
    let digest: Vec<u8> = match alg.as_str() {
        "CRC32" => s3s::crypto::Crc32::checksum(&concat).as_ref().to_vec(),
        "CRC32C" => s3s::crypto::Crc32c::checksum(&concat).as_ref().to_vec(),
        "SHA1" => s3s::crypto::Sha1::checksum(&concat).as_ref().to_vec(),
        "SHA256" => s3s::crypto::Sha256::checksum(&concat).as_ref().to_vec(),
        _ => return out,
    };
    set_value(&mut out, &alg, format!("{}-{}", b64.encode(digest), parts.len()));
    out.checksum_type = Some("COMPOSITE".to_string());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use s3s::crypto::Checksum as _;

    #[test]
    fn full_object_crc_of_parts_equals_crc_of_whole() {
        let b64 = base64::engine::general_purpose::STANDARD;
        let a = vec![7u8; 1000];
        let b = vec![9u8; 333];
        let whole: Vec<u8> = a.iter().chain(b.iter()).copied().collect();
        for alg in ["CRC32", "CRC32C", "CRC64NVME"] {
            let sum = |d: &[u8]| -> String {
                match alg {
                    "CRC32" => b64.encode(s3s::crypto::Crc32::checksum(d)),
                    "CRC32C" => b64.encode(s3s::crypto::Crc32c::checksum(d)),
                    _ => b64.encode(s3s::crypto::Crc64Nvme::checksum(d)),
                }
            };
            let mut pa = Checksums::default();
            set_value(&mut pa, alg, sum(&a));
            let mut pb = Checksums::default();
            set_value(&mut pb, alg, sum(&b));
            let got = multipart(
                Some(alg),
                Some("FULL_OBJECT"),
                &[(&pa, a.len() as u64), (&pb, b.len() as u64)],
            );
            assert_eq!(part_value(&got, alg), Some(sum(&whole).as_str()), "{alg}");
        }
    }

    #[test]
    fn composite_has_part_count_suffix_and_missing_parts_yield_nothing() {
        let p = Checksums {
            sha256: Some(base64::engine::general_purpose::STANDARD.encode([1u8; 32])),
            ..Default::default()
        };
        let got = multipart(Some("SHA256"), None, &[(&p, 5), (&p, 5)]);
        assert!(got.sha256.as_deref().is_some_and(|v| v.ends_with("-2")));
        let empty = Checksums::default();
        let got = multipart(Some("SHA256"), None, &[(&p, 5), (&empty, 5)]);
        assert!(got.sha256.is_none());
    }
}
