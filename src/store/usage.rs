//! Bucket usage from a scan of the metadata: current and noncurrent versions (count and
//! bytes), delete markers, incomplete multipart uploads and the bytes of their parts.
//! Blocking (a full scan of sled trees): call it from a blocking thread. Used by the
//! metrics endpoint (cached) and the admin API.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::meta::{object_key, MetaStore};
use super::records::decode;
use super::StoreError;

pub use crate::model::usage::Usage;

/// The fields of an object record a usage scan needs (the rest, inline data included, is
/// skipped rather than decoded).
#[derive(Deserialize)]
struct SizeView {
    size: u64,
    #[serde(default)]
    delete_marker: bool,
}

#[derive(Deserialize)]
struct UploadView {
    bucket: String,
}

#[derive(Deserialize)]
struct PartView {
    blob: PartBlob,
}

#[derive(Deserialize)]
struct PartBlob {
    size: u64,
}

impl Usage {
    fn add(&mut self, v: &SizeView, current: bool) {
        match (v.delete_marker, current) {
            (true, _) => self.delete_markers += 1,
            (false, true) => {
                self.objects += 1;
                self.bytes += v.size;
            }
            (false, false) => {
                self.noncurrent_objects += 1;
                self.noncurrent_bytes += v.size;
            }
        }
    }
}

/// The bucket part of an `objects`/`versions` tree key (bucket, NUL, …).
fn bucket_of(k: &[u8]) -> &[u8] {
    k.split(|b| *b == 0).next().unwrap_or_default()
}

/// The upload id part of a `parts` tree key (upload id, `/`, part number).
fn upload_of(k: &[u8]) -> &[u8] {
    k.get(..k.len().saturating_sub(5)).unwrap_or_default()
}

/// Usage of one bucket (zero for a bucket that does not exist).
pub fn bucket_usage(meta: &MetaStore, bucket: &str) -> Result<Usage, StoreError> {
    let mut u = Usage::default();
    let prefix = object_key(bucket, "");
    for (tree, current) in [(&meta.objects, true), (&meta.versions, false)] {
        for item in tree.scan_prefix(&prefix) {
            let (_, v) = item?;
            u.add(&decode::<SizeView>(&v)?, current);
        }
    }
    for item in meta.uploads.iter() {
        let (id, v) = item?;
        if decode::<UploadView>(&v)?.bucket != bucket {
            continue;
        }
        u.uploads += 1;
        let mut prefix = id.to_vec();
        prefix.push(b'/');
        for part in meta.parts.scan_prefix(&prefix) {
            u.upload_bytes += decode::<PartView>(&part?.1)?.blob.size;
        }
    }
    Ok(u)
}

/// Usage of every bucket, in one pass over each tree.
pub fn all_usage(meta: &MetaStore) -> Result<BTreeMap<String, Usage>, StoreError> {
    let mut all: BTreeMap<Vec<u8>, Usage> = meta
        .buckets()?
        .into_iter()
        .map(|(name, _)| (name.into_bytes(), Usage::default()))
        .collect();
    for (tree, current) in [(&meta.objects, true), (&meta.versions, false)] {
        for item in tree.iter() {
            let (k, v) = item?;
            if let Some(u) = all.get_mut(bucket_of(&k)) {
                u.add(&decode::<SizeView>(&v)?, current);
            }
        }
    }
    let mut upload_bucket: std::collections::HashMap<Vec<u8>, Vec<u8>> = std::collections::HashMap::new();
    for item in meta.uploads.iter() {
        let (id, v) = item?;
        let bucket = decode::<UploadView>(&v)?.bucket.into_bytes();
        if let Some(u) = all.get_mut(&bucket) {
            u.uploads += 1;
            upload_bucket.insert(id.to_vec(), bucket);
        }
    }
    for item in meta.parts.iter() {
        let (k, v) = item?;
        let Some(bucket) = upload_bucket.get(upload_of(&k)) else {
            continue;
        };
        if let Some(u) = all.get_mut(bucket) {
            u.upload_bytes += decode::<PartView>(&v)?.blob.size;
        }
    }
    Ok(all
        .into_iter()
        .map(|(k, u)| (String::from_utf8_lossy(&k).into_owned(), u))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::records::{BucketRecord, ObjectData, ObjectRecord, PartRecord, UploadRecord, VersioningMode};

    fn rec(seq: u64, size: u64, marker: bool) -> ObjectRecord {
        ObjectRecord {
            version_id: ObjectRecord::version_id_for(seq),
            seq,
            versioned: true,
            delete_marker: marker,
            acl: None,
            tags: Vec::new(),
            encryption: None,
            size,
            etag: String::new(),
            last_modified_ms: 0,
            owner: "o".into(),
            headers: Default::default(),
            user_metadata: Default::default(),
            checksums: Default::default(),
            parts_count: None,
            data: ObjectData::Inline(vec![0; size as usize]),
            storage_class: Default::default(),
            restored_until_ms: None,
        }
    }

    #[test]
    fn counts_current_noncurrent_markers_and_uploads_per_bucket() {
        let dir = tempfile::tempdir().expect("tempdir");
        let meta = MetaStore::open(dir.path(), 1 << 20).expect("open");
        for b in ["a", "ab", "empty"] {
            meta.create_bucket(b, &BucketRecord::new("o", 0, "r")).expect("bucket");
        }
        let put = |b: &str, k: &str, r: &ObjectRecord| {
            meta.put_version(b, k, r, VersioningMode::Enabled, |_| Ok::<(), ()>(()))
                .map_err(|_| "put")
                .expect("put")
                .durable_blocking()
                .expect("durable");
        };
        put("a", "k1", &rec(1, 10, false));
        put("a", "k1", &rec(2, 20, false)); // k1@10 becomes noncurrent
        put("a", "k2", &rec(3, 5, false));
        put("a", "k2", &rec(4, 0, true)); // k2 deleted: marker current, 5 noncurrent
        put("ab", "k", &rec(5, 7, false));
        let up = UploadRecord {
            bucket: "ab".into(),
            key: "big".into(),
            owner: "o".into(),
            initiated_ms: 0,
            headers: Default::default(),
            user_metadata: Default::default(),
            checksum_algorithm: None,
            checksum_type: None,
            acl: None,
            tags: Vec::new(),
            encryption: None,
            storage_class: Default::default(),
        };
        meta.put_upload("u1", &up).expect("upload");
        for (n, size) in [(1, 100), (2, 50)] {
            let part = PartRecord {
                blob: crate::store::records::BlobRef {
                    id: format!("p{n}"),
                    size,
                    md5: vec![0; 16],
                    crc64: None,
                    sealed: false,
                    cold: false,
                    block_size: None,
                },
                etag: String::new(),
                last_modified_ms: 0,
                checksums: Default::default(),
            };
            meta.put_part("u1", n, &part)
                .map_err(|_| "part")
                .expect("part")
                .durable_blocking()
                .expect("durable");
        }
        let a = Usage {
            objects: 1,
            bytes: 20,
            noncurrent_objects: 2,
            noncurrent_bytes: 15,
            delete_markers: 1,
            uploads: 0,
            upload_bytes: 0,
        };
        let ab = Usage {
            objects: 1,
            bytes: 7,
            uploads: 1,
            upload_bytes: 150,
            ..Default::default()
        };
        let all = all_usage(&meta).expect("all");
        assert_eq!(all.get("a"), Some(&a));
        assert_eq!(all.get("ab"), Some(&ab));
        assert_eq!(all.get("empty"), Some(&Usage::default()));
        assert_eq!(bucket_usage(&meta, "a").expect("a"), a);
        assert_eq!(bucket_usage(&meta, "ab").expect("ab"), ab);
    }
}
