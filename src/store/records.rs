//! Typed metadata records kept in sled. Each value is one format-version byte followed by
//! MessagePack (named fields), so records can gain fields and be migrated later.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use super::StoreError;
pub use crate::model::acl::Acl;
pub use crate::model::cors::CorsRule;
pub use crate::model::object::{StorageClass, Tag};

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
    /// `None` until versioning is first configured; a bucket never returns to `None`.
    #[serde(default)]
    pub versioning: Option<Versioning>,
    /// `None`: private to the owner.
    #[serde(default)]
    pub acl: Option<Acl>,
    /// The bucket policy exactly as the owner sent it (JSON), validated before storing.
    #[serde(default)]
    pub policy: Option<String>,
    /// `None`: the server-wide default applies.
    #[serde(default)]
    pub public_access_block: Option<PublicAccessBlock>,
    #[serde(default)]
    pub cors: Option<Vec<CorsRule>>,
    #[serde(default)]
    pub tags: Option<Vec<Tag>>,
    #[serde(default)]
    pub encryption: Option<DefaultEncryption>,
    /// Static website hosting (PutBucketWebsite).
    #[serde(default)]
    pub website: Option<crate::model::website::WebsiteConfig>,
    #[serde(default)]
    pub lifecycle: Option<crate::model::lifecycle::LifecycleConfig>,
}

impl BucketRecord {
    pub fn new(owner: &str, created_ms: i64, region: &str) -> Self {
        Self {
            owner: owner.to_string(),
            created_ms,
            region: region.to_string(),
            versioning: None,
            acl: None,
            policy: None,
            public_access_block: None,
            cors: None,
            tags: None,
            encryption: None,
            website: None,
            lifecycle: None,
        }
    }

    /// The versioning mode new writes follow.
    pub fn versioning_mode(&self) -> VersioningMode {
        match self.versioning {
            None => VersioningMode::Unversioned,
            Some(Versioning::Enabled) => VersioningMode::Enabled,
            Some(Versioning::Suspended) => VersioningMode::Suspended,
        }
    }
}

/// A bucket's versioning state as configured with PutBucketVersioning.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Versioning {
    Enabled,
    Suspended,
}

/// How a write treats the versions already stored under its key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VersioningMode {
    /// Never enabled: one (null) version per key, replaced in place.
    Unversioned,
    /// Every write adds a version; older ones become noncurrent.
    Enabled,
    /// Writes replace the null version; versioned ones are kept.
    Suspended,
}

/// S3 Block Public Access settings of one bucket.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub struct PublicAccessBlock {
    pub block_public_acls: bool,
    pub ignore_public_acls: bool,
    pub block_public_policy: bool,
    pub restrict_public_buckets: bool,
}

impl PublicAccessBlock {
    pub const ALL_ON: Self = Self {
        block_public_acls: true,
        ignore_public_acls: true,
        block_public_policy: true,
        restrict_public_buckets: true,
    };
    pub const ALL_OFF: Self = Self {
        block_public_acls: false,
        ignore_public_acls: false,
        block_public_policy: false,
        restrict_public_buckets: false,
    };
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

/// A reference to one immutable blob file with the MD5 (for ETags) and the CRC-64/NVME of its
/// bytes, and the block size of the block checksum table the file ends with
/// (`store::integrity`), which every read checks.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct BlobRef {
    pub id: String,
    pub size: u64,
    #[serde(with = "serde_bytes")]
    pub md5: Vec<u8>,
    #[serde(default)]
    pub crc64: Option<u64>,
    /// Encrypted in segments (`store::crypto`): the file holds more bytes than `size`, and
    /// `crc64` covers the file's (encrypted) bytes.
    #[serde(default)]
    pub sealed: bool,
    /// Stored on the cold volume (`storage.cold_dir`) rather than under `<data>/blobs`.
    #[serde(default)]
    pub cold: bool,
    /// Bytes per block of the block checksum table after the data (one CRC32C per block of
    /// the bytes on disk, see `store::integrity`). `None`: a blob written before block tables
    /// (a "legacy" blob, checked as a whole; `strata scrub --repair` upgrades it). Not written
    /// when `None`, so legacy records re-encode unchanged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub block_size: Option<u32>,
}

impl BlobRef {
    /// Bytes of object data in the file: the plaintext, or its sealed segments.
    pub fn data_len(&self) -> u64 {
        if self.sealed {
            super::crypto::sealed_len(self.size)
        } else {
            self.size
        }
    }

    /// Bytes of the block checksum table after the data (0 for a legacy blob).
    pub fn table_len(&self) -> u64 {
        self.block_size
            .map_or(0, |b| super::integrity::table_len(self.data_len(), b))
    }

    /// Bytes of the file on disk: data, then the block table.
    pub fn stored_size(&self) -> u64 {
        self.data_len() + self.table_len()
    }

    /// Whether a blob file of `len` bytes is what this record describes. A legacy record
    /// also accepts its data followed by a default-size table: `--repair` writes the table
    /// before it flips the record, and a crash in between leaves exactly that (still
    /// readable: the data bytes are where they were).
    pub fn file_len_ok(&self, len: u64) -> bool {
        len == self.stored_size()
            || (self.block_size.is_none()
                && len == self.data_len() + super::integrity::table_len(self.data_len(), super::integrity::BLOCK))
    }
}

/// How an object's bytes are encrypted at rest: which key wraps its data key.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub enum SseKind {
    /// SSE-S3: the server's master key.
    S3,
    /// SSE-KMS: a named key of the local keyring.
    Kms { key_id: String },
    /// SSE-C: the customer's key, of which only a salted SHA-256 is kept.
    Customer {
        key_md5: String,
        #[serde(with = "serde_bytes")]
        salt: Vec<u8>,
        #[serde(with = "serde_bytes")]
        key_hash: Vec<u8>,
    },
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct ObjectEncryption {
    pub kind: SseKind,
    /// The object's data key, sealed by the key `kind` names.
    #[serde(with = "serde_bytes")]
    pub wrapped_key: Vec<u8>,
    /// For SSE-S3: which master key sealed it (rotation re-seals these).
    #[serde(default)]
    pub master_id: Option<String>,
}

/// A bucket's default encryption (PutBucketEncryption).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub enum DefaultEncryption {
    S3,
    Kms { key_id: Option<String> },
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
    /// Clients see it only when `versioned` (see [`ObjectRecord::client_version_id`]).
    pub version_id: String,
    /// Write order (from sled's persistent id generator); versions of a key sort newest first
    /// by it. Records older than versioning have 0.
    #[serde(default)]
    pub seq: u64,
    /// Written while versioning was Enabled. Otherwise this is the key's "null" version.
    #[serde(default)]
    pub versioned: bool,
    /// A delete marker: no data, and GET of the key answers 404.
    #[serde(default)]
    pub delete_marker: bool,
    /// `None`: private to the owner (and the bucket owner).
    #[serde(default)]
    pub acl: Option<Acl>,
    #[serde(default)]
    pub tags: Vec<Tag>,
    /// `None`: stored in the clear.
    #[serde(default)]
    pub encryption: Option<ObjectEncryption>,
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
    #[serde(default)]
    pub storage_class: StorageClass,
    /// A GLACIER object's temporary restored copy: readable until this time.
    #[serde(default)]
    pub restored_until_ms: Option<i64>,
}

/// The version id S3 clients see for versions written while versioning was not enabled.
pub const NULL_VERSION: &str = "null";

impl ObjectRecord {
    /// A delete marker record (DeleteObject without a version id, or a lifecycle expiration
    /// in a versioning bucket).
    pub fn delete_marker(version_id: String, seq: u64, versioned: bool, owner: &str, now_ms: i64) -> ObjectRecord {
        ObjectRecord {
            version_id,
            seq,
            versioned,
            delete_marker: true,
            acl: None,
            tags: Vec::new(),
            encryption: None,
            size: 0,
            etag: String::new(),
            last_modified_ms: now_ms,
            owner: owner.to_string(),
            headers: Default::default(),
            user_metadata: Default::default(),
            checksums: Checksums::default(),
            parts_count: None,
            data: ObjectData::Inline(Vec::new()),
            storage_class: StorageClass::Standard,
            restored_until_ms: None,
        }
    }

    /// The version id as S3 reports it: ours, or `null`.
    pub fn client_version_id(&self) -> &str {
        if self.versioned {
            &self.version_id
        } else {
            NULL_VERSION
        }
    }

    /// Makes a new version id for a record with sequence number `seq`. The id starts with the
    /// sequence in hex, so a version can be found from its id without an index.
    pub fn version_id_for(seq: u64) -> String {
        format!("{seq:016x}{:08x}", rand::random::<u32>())
    }

    /// The sequence number encoded in a version id made by [`ObjectRecord::version_id_for`].
    pub fn seq_of_version_id(id: &str) -> Option<u64> {
        let hex = id.get(..16)?;
        if id.len() != 24 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        u64::from_str_radix(hex, 16).ok()
    }

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
    /// The ACL, tags and encryption the completed object gets (given at CreateMultipartUpload).
    #[serde(default)]
    pub acl: Option<Acl>,
    #[serde(default)]
    pub tags: Vec<Tag>,
    #[serde(default)]
    pub encryption: Option<ObjectEncryption>,
    /// The completed object's class; parts are written to its volume.
    #[serde(default)]
    pub storage_class: StorageClass,
}

#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct PartRecord {
    pub blob: BlobRef,
    pub etag: String,
    pub last_modified_ms: i64,
    pub checksums: Checksums,
}

/// A named key of the local keyring (SSE-KMS), sealed by a master key.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct KmsKeyRecord {
    pub master_id: String,
    #[serde(with = "serde_bytes")]
    pub wrapped: Vec<u8>,
    pub created_ms: i64,
}

#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct KeyRecord {
    pub name: String,
    pub secret_key: String,
    pub created_ms: i64,
}
