//! Emptying a bucket for a forced delete (`strata bucket delete --force`): its versions are
//! removed in bounded batches, noncurrent ones first (so that, between batches, a key that
//! still has versions still has its latest one in `objects`, as `versions.rs` promises).
//! The caller makes each batch durable and then frees the returned versions' bytes.

use sled::Transactional;

use super::meta::{abort, object_key, tx_err, MetaStore, Rejected};
use super::records::{decode, ObjectRecord};
use super::StoreError;

/// Which tree a collected key is in.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Tree {
    Latest,
    Noncurrent,
}

/// The object key inside a `versions` tree key (bucket NUL key NUL seq(8)).
fn key_of_version(k: &[u8], base_len: usize) -> &[u8] {
    k.get(base_len..k.len().saturating_sub(9)).unwrap_or_default()
}

impl MetaStore {
    /// Removes up to `limit` (at least 1) versions of `bucket`, delete markers included, in
    /// one transaction: noncurrent versions first, then latest ones. Returns each removed
    /// version with its object key; empty when the bucket holds no versions any more.
    pub fn remove_versions(&self, bucket: &str, limit: usize) -> Result<Vec<(String, ObjectRecord)>, StoreError> {
        let prefix = object_key(bucket, "");
        let limit = limit.max(1);
        let mut found: Vec<(Tree, sled::IVec)> = Vec::new();
        for item in self.versions.scan_prefix(&prefix).take(limit) {
            found.push((Tree::Noncurrent, item?.0));
        }
        if found.len() < limit {
            for item in self.objects.scan_prefix(&prefix).take(limit - found.len()) {
                found.push((Tree::Latest, item?.0));
            }
        }
        if found.is_empty() {
            return Ok(Vec::new());
        }
        let base_len = prefix.len();
        // Inside the backup write gate, like every sled mutation.
        self.mutate(|g| {
            (
                self.objects.under(g),
                self.versions.under(g),
                self.null_versions.under(g),
            )
                .transaction(|(objects, versions, nulls)| {
                    let mut removed = Vec::with_capacity(found.len());
                    for (tree, k) in &found {
                        let (gone, key) = match tree {
                            Tree::Noncurrent => (versions.remove(k.clone())?, key_of_version(k, base_len)),
                            Tree::Latest => (objects.remove(k.clone())?, k.get(base_len..).unwrap_or_default()),
                        };
                        // Removed meanwhile by a concurrent delete: nothing left to free.
                        let Some(v) = gone else { continue };
                        let rec: ObjectRecord = decode(&v).map_err(|e| abort(Rejected::<()>::Store(e)))?;
                        if *tree == Tree::Noncurrent && !rec.versioned {
                            // The index entry of a noncurrent null version goes with it.
                            nulls.remove(object_key(bucket, &String::from_utf8_lossy(key)))?;
                        }
                        removed.push((String::from_utf8_lossy(key).into_owned(), rec));
                    }
                    Ok(removed)
                })
        })
        .map_err(|e| match tx_err::<()>(e) {
            Rejected::Store(s) => s,
            Rejected::Condition(()) => StoreError::Corrupt("unexpected purge condition".into()),
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::store::records::{BucketRecord, ObjectData, ObjectRecord, VersioningMode};
    use crate::store::MetaStore;

    fn rec(meta: &MetaStore, versioned: bool, marker: bool) -> ObjectRecord {
        let seq = meta.next_seq().expect("seq");
        ObjectRecord {
            version_id: ObjectRecord::version_id_for(seq),
            seq,
            versioned,
            delete_marker: marker,
            acl: None,
            tags: Vec::new(),
            encryption: None,
            size: 1,
            etag: String::new(),
            last_modified_ms: 0,
            owner: "o".into(),
            headers: Default::default(),
            user_metadata: Default::default(),
            checksums: Default::default(),
            parts_count: None,
            data: ObjectData::Inline(vec![1]),
            storage_class: Default::default(),
            restored_until_ms: None,
        }
    }

    #[test]
    fn removes_every_version_in_batches_and_leaves_other_buckets() {
        let dir = tempfile::tempdir().expect("tempdir");
        let meta = MetaStore::open(dir.path(), 1 << 20).expect("open");
        for b in ["b", "b2"] {
            meta.create_bucket(b, &BucketRecord::new("o", 0, "r")).expect("bucket");
        }
        let put = |b: &str, k: &str, r: ObjectRecord, mode| {
            meta.put_version(b, k, &r, mode, |_| Ok::<(), ()>(()))
                .map_err(|_| "put")
                .expect("put")
                .durable_blocking()
                .expect("durable");
        };
        // A null version made noncurrent, versioned ones, a delete marker.
        put("b", "k", rec(&meta, false, false), VersioningMode::Unversioned);
        for _ in 0..3 {
            put("b", "k", rec(&meta, true, false), VersioningMode::Enabled);
        }
        put("b", "k", rec(&meta, true, true), VersioningMode::Enabled);
        for i in 0..4 {
            put(
                "b",
                &format!("o{i}"),
                rec(&meta, false, false),
                VersioningMode::Unversioned,
            );
        }
        put("b2", "k", rec(&meta, false, false), VersioningMode::Unversioned);

        let mut total = 0;
        loop {
            let batch = meta.remove_versions("b", 3).expect("purge");
            assert!(batch.len() <= 3);
            if batch.is_empty() {
                break;
            }
            total += batch.len();
        }
        assert_eq!(total, 9, "5 versions of k (one a marker) and 4 objects");
        assert!(meta.bucket_is_empty("b").expect("empty"));
        assert_eq!(meta.scan_all_versions("b").count(), 0);
        assert_eq!(meta.object_version("b", "k", "null").expect("null"), None);
        assert!(meta.object("b2", "k").expect("b2").is_some(), "other bucket untouched");
    }
}
