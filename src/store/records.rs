//! Typed metadata records kept in sled. Each value is one format-version byte followed by
//! MessagePack (named fields), so records can gain fields and be migrated later.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use super::StoreError;

/// The only record format so far. A new layout gets a new byte and a migration.
const FORMAT_V1: u8 = 1;

pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    let mut out = vec![FORMAT_V1];
    rmp_serde::encode::write_named(&mut out, value).map_err(|e| StoreError::Corrupt(format!("encode record: {e}")))?;
    Ok(out)
}

pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, StoreError> {
    match bytes.split_first() {
        Some((&FORMAT_V1, rest)) => {
            rmp_serde::from_slice(rest).map_err(|e| StoreError::Corrupt(format!("decode record: {e}")))
        }
        Some((v, _)) => Err(StoreError::Corrupt(format!("unknown record format {v}"))),
        None => Err(StoreError::Corrupt("empty record".into())),
    }
}

#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct BucketRecord {
    /// Access key id of the principal that created the bucket.
    pub owner: String,
    pub created_ms: i64,
    pub region: String,
}

/// The HTTP headers S3 stores with an object and returns on GET/HEAD.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct ObjectHeaders {
    pub content_type: Option<String>,
    pub content_encoding: Option<String>,
    pub content_disposition: Option<String>,
    pub content_language: Option<String>,
    pub cache_control: Option<String>,
    pub expires_ms: Option<i64>,
    pub website_redirect_location: Option<String>,
}

/// Base64 checksums as S3 reports them (`x-amz-checksum-*`), plus the checksum type.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct Checksums {
    pub crc32: Option<String>,
    pub crc32c: Option<String>,
    pub crc64nvme: Option<String>,
    pub sha1: Option<String>,
    pub sha256: Option<String>,
    /// `FULL_OBJECT` or `COMPOSITE`.
    pub checksum_type: Option<String>,
}

/// A reference to one immutable blob file with the MD5 (for ETags) and the CRC-64/NVME
/// (verified on every full read and by scrub) of its bytes.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct BlobRef {
    pub id: String,
    pub size: u64,
    #[serde(with = "serde_bytes")]
    pub md5: Vec<u8>,
    #[serde(default)]
    pub crc64: Option<u64>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub enum ObjectData {
    /// Small objects live in their metadata record: one durable flush makes them safe.
    Inline(#[serde(with = "serde_bytes")] Vec<u8>),
    /// The object is the concatenation of these blobs (one per multipart part).
    Blobs(Vec<BlobRef>),
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct ObjectRecord {
    /// Unique per write; the derivative cache keys on it so an overwrite can never serve stale data.
    pub version_id: String,
    pub size: u64,
    /// ETag without quotes: hex MD5, or `md5-of-md5s-N` for multipart objects.
    pub etag: String,
    pub last_modified_ms: i64,
    pub owner: String,
    pub headers: ObjectHeaders,
    pub user_metadata: BTreeMap<String, String>,
    pub checksums: Checksums,
    /// Number of parts for an object made by multipart upload (`None` for a single PUT).
    pub parts_count: Option<u32>,
    pub data: ObjectData,
}

impl ObjectRecord {
    pub fn blobs(&self) -> &[BlobRef] {
        match &self.data {
            ObjectData::Inline(_) => &[],
            ObjectData::Blobs(b) => b,
        }
    }
}

#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct UploadRecord {
    pub bucket: String,
    pub key: String,
    pub owner: String,
    pub initiated_ms: i64,
    pub headers: ObjectHeaders,
    pub user_metadata: BTreeMap<String, String>,
    pub checksum_algorithm: Option<String>,
    pub checksum_type: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct PartRecord {
    pub blob: BlobRef,
    pub etag: String,
    pub last_modified_ms: i64,
    pub checksums: Checksums,
}

#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct KeyRecord {
    pub name: String,
    pub secret_key: String,
    pub created_ms: i64,
}
