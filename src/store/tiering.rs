//! Moving a version's bytes between storage classes (lifecycle transitions): STANDARD bytes
//! live in `<data>/blobs`, STANDARD_IA and GLACIER bytes on the cold volume. A transition
//! copies each hot blob to the cold volume (fsynced), then flips the record in one
//! transaction, then retires the hot copies through the deferred unlink. A crash in between
//! leaves an unreferenced copy, which the start-up sweep removes. Every byte copied is
//! verified (block table, whole-blob checksum): a version whose bytes fail is reported
//! (`bitrot`) and left where it is.

use super::records::{BlobRef, ObjectData, StorageClass};
use super::{Store, StoreError};

impl Store {
    /// Moves one version (`version_id` as clients see it: an id, or `null`) to the colder class
    /// `to`. `Ok(false)`: nothing to do — no such version, a delete marker, already in `to` or
    /// colder, the version changed while its bytes were being copied, or its stored bytes
    /// failed their check (reported through [`super::bitrot`]; the version stays as it was).
    pub async fn transition_version(
        &self,
        bucket: &str,
        key: &str,
        version_id: &str,
        to: StorageClass,
    ) -> Result<bool, StoreError> {
        let Some(rec) = self.meta.object_version(bucket, key, version_id)? else {
            return Ok(false);
        };
        if rec.delete_marker || rec.storage_class >= to {
            return Ok(false);
        }
        let old: Vec<BlobRef> = rec.blobs().to_vec();
        let mut copied: Vec<BlobRef> = Vec::with_capacity(old.len());
        for blob in &old {
            match self.blobs.copy_to_cold(blob).await {
                Ok(c) => copied.push(c),
                Err(e) => {
                    self.blobs.remove(newly_copied(&old, &copied));
                    if let Some(c) = match &e {
                        StoreError::Io(io) => super::integrity::corruption_of(io),
                        _ => None,
                    } {
                        let at = super::bitrot::ObjectAt {
                            bucket: bucket.to_string(),
                            key: key.to_string(),
                            version_id: rec.version_id.clone(),
                        };
                        super::bitrot::report(&self.meta, &at, c, "transition", None);
                        return Ok(false);
                    }
                    return Err(e);
                }
            }
        }
        let target = rec.version_id.clone();
        let new_data = match &rec.data {
            ObjectData::Inline(_) => None, // inline bytes stay in the record; only the class changes
            ObjectData::Blobs(_) => Some(ObjectData::Blobs(copied.clone())),
        };
        let updated = self.meta.update_version(bucket, key, Some(version_id), |r| {
            // Only the version we copied, with the bytes we copied: anything else means a
            // concurrent change, and the copies are dropped below.
            if r.version_id == target && r.blobs() == old.as_slice() && r.storage_class < to {
                if let Some(d) = &new_data {
                    r.data = d.clone();
                }
                r.storage_class = to;
            }
        });
        let updated = match updated {
            Ok(Some(change)) => change.durable().await.map(Some),
            other => other.map(|_| None),
        };
        let applied = matches!(&updated, Ok(Some(r)) if r.version_id == target && r.storage_class == to && r.blobs() == copied.as_slice());
        if !applied {
            // Not flipped (a concurrent change, or gone): the record never named the copies.
            self.blobs.remove(newly_copied(&old, &copied));
            return updated.map(|_| false);
        }
        // The hot originals: readers that opened them before the flip finish within the grace.
        self.blobs.remove(old.into_iter().filter(|b| !b.cold).collect());
        Ok(true)
    }
}

/// The cold copies made for blobs that were hot (an already cold blob is its own "copy").
fn newly_copied(old: &[BlobRef], copied: &[BlobRef]) -> Vec<BlobRef> {
    old.iter()
        .zip(copied)
        .filter(|(o, _)| !o.cold)
        .map(|(_, c)| c.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::records::{ObjectRecord, VersioningMode};
    use crate::store::StoreOptions;
    use futures::TryStreamExt;
    use md5::{Digest, Md5};

    fn record(version_id: &str, data: ObjectData, size: u64) -> ObjectRecord {
        ObjectRecord {
            version_id: version_id.into(),
            seq: 1,
            versioned: false,
            delete_marker: false,
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
            data,
            storage_class: StorageClass::Standard,
            restored_until_ms: None,
        }
    }

    /// A published hot blob holding `bytes`.
    fn hot_blob(store: &Store, bytes: &[u8]) -> BlobRef {
        let id = crate::store::BlobStore::new_id();
        std::fs::write(store.blobs.path(&id), bytes).expect("write blob");
        BlobRef {
            id,
            size: bytes.len() as u64,
            md5: Md5::digest(bytes).to_vec(),
            crc64: None,
            sealed: false,
            cold: false,
            block_size: None,
        }
    }

    #[tokio::test]
    async fn transition_moves_bytes_then_flips_the_record_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cold_dir = tempfile::tempdir().expect("cold tempdir");
        let opts = StoreOptions {
            cold_dir: Some(cold_dir.path().to_path_buf()),
            ..Default::default()
        };
        let store = Store::open(dir.path(), &opts).expect("open store");
        let bytes: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let (a, b) = (hot_blob(&store, &bytes[..150_000]), hot_blob(&store, &bytes[150_000..]));
        let rec = record("v1", ObjectData::Blobs(vec![a.clone(), b.clone()]), bytes.len() as u64);
        store
            .meta
            .put_version("bkt", "k", &rec, VersioningMode::Unversioned, |_| Ok::<(), ()>(()))
            .map_err(|_| "put")
            .expect("put version")
            .durable_blocking()
            .expect("durable");

        assert!(store
            .transition_version("bkt", "k", "null", StorageClass::StandardIa)
            .await
            .expect("transition"));
        let now = store.meta.object("bkt", "k").expect("read").expect("record");
        assert_eq!(now.storage_class, StorageClass::StandardIa);
        assert!(now.blobs().iter().all(|b| b.cold));
        for blob in now.blobs() {
            assert!(store.blobs.blob_path(blob).starts_with(cold_dir.path()));
        }
        // The hot files go after the (zero) grace period; the bytes read back from the cold volume.
        let hot_gone = || !store.blobs.path(&a.id).exists() && !store.blobs.path(&b.id).exists();
        for _ in 0..100 {
            if hot_gone() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert!(hot_gone(), "hot copies retired");
        let read: Vec<u8> = store
            .blobs
            .read_range(now.blobs().to_vec(), 0, bytes.len() as u64)
            .map_ok(|chunk| chunk.to_vec())
            .try_concat()
            .await
            .expect("read cold");
        assert_eq!(read, bytes);

        // Same class again, or a warmer one: nothing to do. Colder: blobs stay where they are.
        assert!(!store
            .transition_version("bkt", "k", "null", StorageClass::StandardIa)
            .await
            .expect("again"));
        assert!(!store
            .transition_version("bkt", "k", "null", StorageClass::Standard)
            .await
            .expect("warmer"));
        assert!(store
            .transition_version("bkt", "k", "null", StorageClass::Glacier)
            .await
            .expect("glacier"));
        let g = store.meta.object("bkt", "k").expect("read").expect("record");
        assert_eq!(g.storage_class, StorageClass::Glacier);
        assert_eq!(g.blobs(), now.blobs(), "already cold blobs are not copied again");
        assert!(store.blobs.blob_path(&g.blobs()[0]).exists());
        // Unknown versions and keys.
        assert!(!store
            .transition_version("bkt", "nope", "null", StorageClass::Glacier)
            .await
            .expect("missing"));
        // A sweep keeps the cold blobs (they are referenced) and finds nothing to remove.
        assert_eq!(store.sweep_orphans().expect("sweep").orphans_removed, 0);
    }

    #[tokio::test]
    async fn a_rotten_version_is_reported_and_stays_where_it_is() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cold_dir = tempfile::tempdir().expect("cold tempdir");
        let opts = StoreOptions {
            cold_dir: Some(cold_dir.path().to_path_buf()),
            ..Default::default()
        };
        let store = Store::open(dir.path(), &opts).expect("open store");
        let bytes = vec![3u8; 150_000];
        let mut blob = hot_blob(&store, &bytes);
        // With a block table, as new blobs have.
        let mut t = crate::store::integrity::TableBuilder::new(crate::store::integrity::BLOCK);
        t.update(&bytes);
        let mut file = bytes.clone();
        file.extend_from_slice(&t.finish());
        file[70_000] ^= 1;
        std::fs::write(store.blobs.path(&blob.id), &file).expect("write rotten blob");
        blob.block_size = Some(crate::store::integrity::BLOCK);
        let rec = record("v1", ObjectData::Blobs(vec![blob.clone()]), bytes.len() as u64);
        store
            .meta
            .put_version("bkt", "k", &rec, VersioningMode::Unversioned, |_| Ok::<(), ()>(()))
            .map_err(|_| "put")
            .expect("put version")
            .durable_blocking()
            .expect("durable");
        let before = crate::metrics::global().bitrot_count();
        assert!(!store
            .transition_version("bkt", "k", "null", StorageClass::StandardIa)
            .await
            .expect("a rotten version is skipped, not an error"));
        assert!(crate::metrics::global().bitrot_count() > before);
        let now = store.meta.object("bkt", "k").expect("read").expect("record");
        assert_eq!((now.storage_class, now.blobs()), (StorageClass::Standard, rec.blobs()));
        assert!(
            !store.blobs.blob_path(&BlobRef { cold: true, ..blob }).exists(),
            "no cold copy"
        );
        let marked = store.meta.suspects().expect("suspects");
        assert_eq!(
            (marked.len(), marked[0].found_by.as_str(), marked[0].offset),
            (1, "transition", 65_536)
        );
    }
}
