//! Metadata in sled: buckets, objects, multipart uploads and parts, access keys.
//!
//! Trees and their keys:
//! - `buckets`: bucket name → [`BucketRecord`]
//! - `objects`: bucket, `0x00`, key → the latest [`ObjectRecord`] of the key, possibly a delete
//!   marker (bucket names never contain NUL, so one tree sorts every bucket's keys bytewise and a
//!   listing is a range scan)
//! - `versions`, `null_versions`: noncurrent versions (see [`super::versions`])
//! - `uploads`: upload id → [`UploadRecord`]
//! - `parts`: upload id, `/`, part number (big-endian u32) → [`PartRecord`]
//! - `keys`: access key id → [`KeyRecord`]
//! - `suspects`: bucket, `0x00`, key, `0x00`, version id → a [`super::bitrot::Suspect`]
//!
//! sled calls here are in-memory operations in the common case and are made directly from
//! async code; the one slow call, the flush, runs on the [`GroupCommit`] task.
//!
//! The write gate: every change to any tree goes through [`MetaStore::mutate`], which holds
//! a shared lock for the change's duration; [`MetaStore::snapshot`] takes it exclusively, so
//! a backup sees every tree at one point in time (see `crate::backup`).

use std::ops::Bound;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sled::transaction::{ConflictableTransactionError, TransactionError, Transactional};

use super::commit::GroupCommit;
use super::durable::{Flusher, Unflushed};
use super::gate::{Gate, GatedTree, WriteGate};
use super::records::{decode, encode, BucketRecord, KeyRecord, ObjectRecord, PartRecord, UploadRecord};
use super::StoreError;

#[derive(Clone)]
pub struct MetaStore {
    pub(super) db: sled::Db,
    buckets: GatedTree,
    pub(super) objects: GatedTree,
    /// Noncurrent versions: bucket, `0x00`, key, `0x00`, big-endian `!seq` (newest first).
    pub(super) versions: GatedTree,
    /// Where a key's noncurrent null version is: bucket, `0x00`, key → its big-endian seq.
    pub(super) null_versions: GatedTree,
    pub(super) uploads: GatedTree,
    pub(super) parts: GatedTree,
    keys: GatedTree,
    /// SSE-KMS key name → sealed key (see [`super::keyring`]).
    kms: GatedTree,
    /// Object versions whose bytes failed a check, for scrub (see [`super::bitrot`]).
    pub(super) suspects: GatedTree,
    /// Multipart uploads by bucket: bucket, `0x00`, upload id → empty. Kept in the same
    /// transactions as `uploads`, so listing or aborting one bucket's uploads never scans
    /// every bucket's.
    pub(super) upload_index: GatedTree,
    commit: Option<Arc<GroupCommit>>,
    /// Shared by every mutation, exclusive for a snapshot (see [`super::gate`]).
    gate: Arc<WriteGate>,
}

/// What [`MetaStore::snapshot`] hands its visitor, in order: `Start`, then one `Tree` per
/// sled tree, each followed by its entries in key order.
pub enum SnapshotItem<'a> {
    /// Every sequence number in the snapshot is below `next_seq`.
    Start {
        next_seq: u64,
    },
    Tree(&'a [u8]),
    Entry(&'a [u8], &'a [u8]),
}

/// How a snapshot went.
pub struct SnapshotInfo {
    /// Every sequence number in the snapshot is below this (see [`MetaStore::raise_seq_floor`]).
    pub next_seq: u64,
    /// How long mutations were held off.
    pub pause: Duration,
}

/// Why a conditional metadata update did not happen.
#[derive(Debug)]
pub enum Rejected<E> {
    Condition(E),
    Store(StoreError),
}

impl<E> From<StoreError> for Rejected<E> {
    fn from(e: StoreError) -> Self {
        Rejected::Store(e)
    }
}

pub(super) fn tx_err<E>(e: TransactionError<Rejected<E>>) -> Rejected<E> {
    match e {
        TransactionError::Abort(r) => r,
        TransactionError::Storage(s) => Rejected::Store(s.into()),
    }
}

pub(super) fn abort<E>(r: Rejected<E>) -> ConflictableTransactionError<Rejected<E>> {
    ConflictableTransactionError::Abort(r)
}

pub fn object_key(bucket: &str, key: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(bucket.len() + 1 + key.len());
    k.extend_from_slice(bucket.as_bytes());
    k.push(0);
    k.extend_from_slice(key.as_bytes());
    k
}

pub(super) fn part_key(upload_id: &str, part: u32) -> Vec<u8> {
    let mut k = Vec::with_capacity(upload_id.len() + 5);
    k.extend_from_slice(upload_id.as_bytes());
    k.push(b'/');
    k.extend_from_slice(&part.to_be_bytes());
    k
}

/// `upload_index` key of one upload (bucket names never contain NUL).
pub(super) fn upload_index_key(bucket: &str, upload_id: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(bucket.len() + 1 + upload_id.len());
    k.extend_from_slice(bucket.as_bytes());
    k.push(0);
    k.extend_from_slice(upload_id.as_bytes());
    k
}

fn parts_prefix(upload_id: &str) -> Vec<u8> {
    let mut k = upload_id.as_bytes().to_vec();
    k.push(b'/');
    k
}

impl MetaStore {
    /// Opens (or creates) the sled database under `<data>/meta`. Until
    /// [`MetaStore::start_group_commit`] is called, durability is a synchronous flush.
    pub fn open(data_dir: &Path, cache_bytes: u64) -> Result<Self, StoreError> {
        let db = sled::Config::new()
            .path(data_dir.join("meta"))
            .mode(sled::Mode::HighThroughput)
            .cache_capacity(cache_bytes)
            .open()?;
        Ok(Self {
            buckets: GatedTree::new(db.open_tree("buckets")?),
            objects: GatedTree::new(db.open_tree("objects")?),
            versions: GatedTree::new(db.open_tree("versions")?),
            null_versions: GatedTree::new(db.open_tree("null_versions")?),
            uploads: GatedTree::new(db.open_tree("uploads")?),
            parts: GatedTree::new(db.open_tree("parts")?),
            keys: GatedTree::new(db.open_tree("keys")?),
            kms: GatedTree::new(db.open_tree("kms")?),
            suspects: GatedTree::new(db.open_tree("suspects")?),
            upload_index: GatedTree::new(db.open_tree("upload_index")?),
            db,
            commit: None,
            gate: Arc::new(WriteGate::default()),
        })
    }

    /// Runs one change to the metadata under the shared side of the write gate: `change` gets
    /// the [`Gate`] that every tree write needs, so no change can skip it (a snapshot waits for
    /// the changes in flight and holds new ones off). Never nest: a waiting snapshot would
    /// deadlock.
    pub(super) fn mutate<R>(&self, change: impl FnOnce(&Gate<'_>) -> R) -> R {
        let gate = self.gate.enter();
        change(&gate)
    }

    /// Visits every entry of every sled tree (`tree_names`, so trees added later are included)
    /// at one point in time: mutations in flight finish first, new ones wait until `visit` has
    /// seen everything. Keep `visit` cheap (it is the write pause).
    pub fn snapshot(
        &self,
        mut visit: impl FnMut(SnapshotItem<'_>) -> Result<(), StoreError>,
    ) -> Result<SnapshotInfo, StoreError> {
        let _exclusive = self.gate.exclusive();
        let started = Instant::now();
        let next_seq = self.db.generate_id()?;
        visit(SnapshotItem::Start { next_seq })?;
        for name in self.db.tree_names() {
            let tree = self.db.open_tree(&name)?;
            visit(SnapshotItem::Tree(&name))?;
            for item in tree.iter() {
                let (k, v) = item?;
                visit(SnapshotItem::Entry(&k, &v))?;
            }
        }
        Ok(SnapshotInfo {
            next_seq,
            pause: started.elapsed(),
        })
    }

    /// Loads entries into tree `name` (restore into a fresh database).
    pub fn import(&self, name: &[u8], entries: Vec<(Vec<u8>, Vec<u8>)>) -> Result<(), StoreError> {
        let tree = GatedTree::new(self.db.open_tree(name)?);
        let mut batch = sled::Batch::default();
        for (k, v) in entries {
            batch.insert(k, v);
        }
        self.mutate(|g| tree.apply_batch(g, batch))?;
        Ok(())
    }

    /// Makes every future [`MetaStore::next_seq`] at least `floor` (restore: new versions must
    /// sort after the restored ones). sled has no setter, so ids are drawn until there.
    pub fn raise_seq_floor(&self, floor: u64) -> Result<(), StoreError> {
        while self.db.generate_id()? < floor {}
        Ok(())
    }

    /// Starts the group-commit flusher (needs a tokio runtime); clones made afterwards share it.
    pub fn start_group_commit(&mut self) {
        if self.commit.is_none() {
            self.commit = Some(GroupCommit::start(self.db.clone()));
        }
    }

    /// Waits until every change made so far is on stable storage. (Version, upload and part
    /// changes return an [`Unflushed`] instead, whose `durable` does this.)
    pub async fn durable(&self) -> Result<(), StoreError> {
        self.flusher().durable().await
    }

    fn flusher(&self) -> Flusher {
        Flusher {
            db: self.db.clone(),
            commit: self.commit.clone(),
        }
    }

    /// `value`, the product of a change just applied, to be handed out once it is durable.
    pub(super) fn unflushed<T>(&self, value: T) -> Unflushed<T> {
        Unflushed::new(value, self.flusher())
    }

    pub fn flush_blocking(&self) -> Result<(), StoreError> {
        self.db.flush()?;
        Ok(())
    }

    // ---- buckets ----

    pub fn bucket(&self, name: &str) -> Result<Option<BucketRecord>, StoreError> {
        self.buckets.get(name)?.map(|v| decode(&v)).transpose()
    }

    /// Inserts the bucket unless it exists; returns the existing record if it does.
    pub fn create_bucket(&self, name: &str, rec: &BucketRecord) -> Result<Option<BucketRecord>, StoreError> {
        let value = encode(rec)?;
        match self.mutate(|g| {
            self.buckets
                .compare_and_swap(g, name, None as Option<&[u8]>, Some(value))
        })? {
            Ok(()) => Ok(None),
            Err(cas) => cas.current.map(|v| decode(&v)).transpose(),
        }
    }

    /// Changes a bucket's record with `change` (atomically); `Ok(None)` if it does not exist.
    pub fn update_bucket<E>(
        &self,
        name: &str,
        change: impl Fn(&mut BucketRecord) -> Result<(), E>,
    ) -> Result<Option<BucketRecord>, Rejected<E>> {
        self.mutate(|g| {
            self.buckets.under(g).transaction(|t| {
                let Some(v) = t.get(name)? else { return Ok(None) };
                let mut rec: BucketRecord = decode(&v).map_err(|e| abort(e.into()))?;
                change(&mut rec).map_err(|e| abort(Rejected::Condition(e)))?;
                let value = encode(&rec).map_err(|e| abort(e.into()))?;
                t.insert(name, value)?;
                Ok(Some(rec))
            })
        })
        .map_err(tx_err)
    }

    pub fn delete_bucket(&self, name: &str) -> Result<(), StoreError> {
        self.mutate(|g| self.buckets.remove(g, name))?;
        Ok(())
    }

    pub fn buckets(&self) -> Result<Vec<(String, BucketRecord)>, StoreError> {
        let mut out = Vec::new();
        for item in self.buckets.iter() {
            let (k, v) = item?;
            out.push((String::from_utf8_lossy(&k).into_owned(), decode(&v)?));
        }
        Ok(out)
    }

    pub fn bucket_is_empty(&self, bucket: &str) -> Result<bool, StoreError> {
        Ok(self
            .objects
            .scan_prefix(object_key(bucket, ""))
            .next()
            .transpose()?
            .is_none())
    }

    // ---- objects ----

    pub fn object(&self, bucket: &str, key: &str) -> Result<Option<ObjectRecord>, StoreError> {
        self.objects
            .get(object_key(bucket, key))?
            .map(|v| decode(&v))
            .transpose()
    }

    /// Iterates a bucket's objects with keys (as bytes) in `(from, ..)` or `[from, ..)`, in key order.
    pub fn scan_objects(
        &self,
        bucket: &str,
        from: Bound<Vec<u8>>,
    ) -> impl Iterator<Item = Result<(String, ObjectRecord), StoreError>> + '_ {
        let base_len = bucket.len() + 1;
        let end = {
            let mut e = bucket.as_bytes().to_vec();
            e.push(1);
            e
        };
        let full = |k: Vec<u8>| {
            let mut v = object_key(bucket, "");
            v.extend_from_slice(&k);
            v
        };
        let start = match from {
            Bound::Included(k) => Bound::Included(full(k)),
            Bound::Excluded(k) => Bound::Excluded(full(k)),
            Bound::Unbounded => Bound::Included(object_key(bucket, "")),
        };
        self.objects.range((start, Bound::Excluded(end))).map(move |item| {
            let (k, v) = item?;
            let key = String::from_utf8_lossy(k.get(base_len..).unwrap_or_default()).into_owned();
            Ok((key, decode(&v)?))
        })
    }

    /// Every stored version of every object, current and noncurrent.
    pub fn all_objects(&self) -> impl Iterator<Item = Result<ObjectRecord, StoreError>> + '_ {
        self.objects
            .iter()
            .chain(self.versions.iter())
            .map(|item| decode(&item?.1))
    }

    // ---- multipart ----

    pub fn put_upload(&self, id: &str, rec: &UploadRecord) -> Result<(), StoreError> {
        let value = encode(rec)?;
        let ik = upload_index_key(&rec.bucket, id);
        self.mutate(|g| {
            (self.uploads.under(g), self.upload_index.under(g)).transaction(|(uploads, index)| {
                uploads.insert(id.as_bytes(), value.as_slice())?;
                index.insert(ik.as_slice(), &[] as &[u8])?;
                Ok::<_, sled::transaction::ConflictableTransactionError<Rejected<()>>>(())
            })
        })
        .map_err(|e| match tx_err::<()>(e) {
            Rejected::Store(s) => s,
            Rejected::Condition(()) => StoreError::Corrupt("unexpected upload condition".into()),
        })
    }

    /// The incomplete uploads of one bucket (through `upload_index`, not a scan of all).
    pub fn uploads_in(&self, bucket: &str) -> Result<Vec<(String, UploadRecord)>, StoreError> {
        let prefix = upload_index_key(bucket, "");
        let mut out = Vec::new();
        for item in self.upload_index.scan_prefix(&prefix) {
            let (k, _) = item?;
            let id = String::from_utf8_lossy(&k[prefix.len()..]).into_owned();
            // Gone between the two reads (completed or aborted meanwhile): not listed.
            if let Some(rec) = self.upload(&id)? {
                out.push((id, rec));
            }
        }
        Ok(out)
    }

    /// Rebuilds `upload_index` from `uploads` when they disagree (a data dir or a backup
    /// from before the index existed). Called once at start-up.
    pub fn ensure_upload_index(&self) -> Result<bool, StoreError> {
        if self.upload_index.len() == self.uploads.len() {
            return Ok(false);
        }
        let all = self.uploads()?;
        self.mutate(|g| -> Result<(), StoreError> {
            for item in self.upload_index.iter() {
                let (k, _) = item?;
                self.upload_index.remove(g, k)?;
            }
            for (id, rec) in &all {
                self.upload_index
                    .insert(g, upload_index_key(&rec.bucket, id), &[] as &[u8])?;
            }
            Ok(())
        })?;
        self.flush_blocking()?;
        Ok(true)
    }

    pub fn upload(&self, id: &str) -> Result<Option<UploadRecord>, StoreError> {
        self.uploads.get(id)?.map(|v| decode(&v)).transpose()
    }

    pub fn uploads(&self) -> Result<Vec<(String, UploadRecord)>, StoreError> {
        let mut out = Vec::new();
        for item in self.uploads.iter() {
            let (k, v) = item?;
            out.push((String::from_utf8_lossy(&k).into_owned(), decode(&v)?));
        }
        Ok(out)
    }

    /// Records a part if its upload still exists; once durable, the part it replaced.
    pub fn put_part(
        &self,
        upload_id: &str,
        number: u32,
        rec: &PartRecord,
    ) -> Result<Unflushed<Option<PartRecord>>, Rejected<()>> {
        let pk = part_key(upload_id, number);
        let value = encode(rec)?;
        self.mutate(|g| {
            (self.uploads.under(g), self.parts.under(g)).transaction(|(uploads, parts)| {
                if uploads.get(upload_id)?.is_none() {
                    return Err(abort(Rejected::Condition(())));
                }
                let old = match parts.insert(pk.as_slice(), value.as_slice())? {
                    Some(v) => Some(decode::<PartRecord>(&v).map_err(|e| abort(e.into()))?),
                    None => None,
                };
                Ok(old)
            })
        })
        .map(|old| self.unflushed(old))
        .map_err(tx_err)
    }

    pub fn parts(&self, upload_id: &str) -> Result<Vec<(u32, PartRecord)>, StoreError> {
        let prefix = parts_prefix(upload_id);
        let mut out = Vec::new();
        for item in self.parts.scan_prefix(&prefix) {
            let (k, v) = item?;
            let num = k
                .get(prefix.len()..)
                .and_then(|b| <[u8; 4]>::try_from(b).ok())
                .map(u32::from_be_bytes)
                .ok_or_else(|| StoreError::Corrupt("bad part key".into()))?;
            out.push((num, decode(&v)?));
        }
        Ok(out)
    }

    /// Removes an upload and the given parts in one transaction. Fails with
    /// `Rejected::Condition` when the upload no longer exists.
    pub fn remove_upload(&self, upload_id: &str, parts: &[u32]) -> Result<Unflushed<UploadRecord>, Rejected<()>> {
        let keys: Vec<Vec<u8>> = parts.iter().map(|n| part_key(upload_id, *n)).collect();
        self.mutate(|g| {
            (self.uploads.under(g), self.parts.under(g), self.upload_index.under(g)).transaction(
                |(uploads, p, index)| {
                    let Some(v) = uploads.remove(upload_id)? else {
                        return Err(abort(Rejected::Condition(())));
                    };
                    for k in &keys {
                        p.remove(k.as_slice())?;
                    }
                    let rec = decode::<UploadRecord>(&v).map_err(|e| abort(e.into()))?;
                    index.remove(upload_index_key(&rec.bucket, upload_id))?;
                    Ok(rec)
                },
            )
        })
        .map(|removed| self.unflushed(removed))
        .map_err(tx_err)
    }

    pub fn all_parts(&self) -> impl Iterator<Item = Result<PartRecord, StoreError>> + '_ {
        self.parts.iter().map(|item| decode(&item?.1))
    }

    // ---- SSE-KMS keys and encrypted records ----

    /// Inserts a KMS key unless one with that name exists (returns false then).
    pub fn insert_kms_key(&self, name: &str, value: &[u8]) -> Result<bool, StoreError> {
        Ok(self
            .mutate(|g| self.kms.compare_and_swap(g, name, None as Option<&[u8]>, Some(value)))?
            .is_ok())
    }

    pub fn put_kms_key(&self, name: &str, value: &[u8]) -> Result<(), StoreError> {
        self.mutate(|g| self.kms.insert(g, name, value))?;
        Ok(())
    }

    pub fn kms_key(&self, name: &str) -> Result<Option<sled::IVec>, StoreError> {
        Ok(self.kms.get(name)?)
    }

    pub fn kms_key_names(&self) -> Result<Vec<String>, StoreError> {
        Ok(self.kms_keys_raw()?.into_iter().map(|(k, _)| k).collect())
    }

    pub fn kms_keys_raw(&self) -> Result<Vec<(String, sled::IVec)>, StoreError> {
        let mut out = Vec::new();
        for item in self.kms.iter() {
            let (k, v) = item?;
            out.push((String::from_utf8_lossy(&k).into_owned(), v));
        }
        Ok(out)
    }

    /// The trees whose records may carry an object's sealed data key.
    pub fn encrypted_record_trees(&self) -> [&GatedTree; 3] {
        [&self.objects, &self.versions, &self.uploads]
    }

    /// Replaces a record in one of [`MetaStore::encrypted_record_trees`] if it still is `old`
    /// (re-sealing); false when it changed meanwhile.
    pub fn replace_record(&self, tree: &GatedTree, key: &[u8], old: &[u8], new: Vec<u8>) -> Result<bool, StoreError> {
        Ok(self
            .mutate(|g| tree.compare_and_swap(g, key, Some(old), Some(new)))?
            .is_ok())
    }

    /// Records in those trees (for progress reporting).
    pub fn record_count(&self) -> u64 {
        self.encrypted_record_trees().iter().map(|t| t.len() as u64).sum()
    }

    // ---- access keys ----

    pub fn key(&self, access_key: &str) -> Result<Option<KeyRecord>, StoreError> {
        self.keys.get(access_key)?.map(|v| decode(&v)).transpose()
    }

    pub fn put_key(&self, access_key: &str, rec: &KeyRecord) -> Result<(), StoreError> {
        let value = encode(rec)?;
        self.mutate(|g| self.keys.insert(g, access_key, value))?;
        Ok(())
    }

    pub fn delete_key(&self, access_key: &str) -> Result<bool, StoreError> {
        Ok(self.mutate(|g| self.keys.remove(g, access_key))?.is_some())
    }

    pub fn keys(&self) -> Result<Vec<(String, KeyRecord)>, StoreError> {
        let mut out = Vec::new();
        for item in self.keys.iter() {
            let (k, v) = item?;
            out.push((String::from_utf8_lossy(&k).into_owned(), decode(&v)?));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod upload_index_tests {
    use super::*;
    use crate::store::records::encode;

    fn upload(bucket: &str, key: &str) -> UploadRecord {
        UploadRecord {
            bucket: bucket.into(),
            key: key.into(),
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
        }
    }

    fn ids(meta: &MetaStore, bucket: &str) -> Vec<String> {
        let mut v: Vec<String> = meta
            .uploads_in(bucket)
            .expect("uploads_in")
            .into_iter()
            .map(|(id, _)| id)
            .collect();
        v.sort();
        v
    }

    #[test]
    fn each_bucket_lists_only_its_uploads_and_removal_updates_the_index() {
        let dir = tempfile::tempdir().expect("tempdir");
        let meta = MetaStore::open(dir.path(), 1 << 20).expect("open");
        meta.put_upload("u1", &upload("a", "k1")).expect("put");
        meta.put_upload("u2", &upload("a", "k2")).expect("put");
        // "ab" shares a's first byte: the NUL separator keeps the prefixes apart.
        meta.put_upload("u3", &upload("ab", "k1")).expect("put");
        assert_eq!(ids(&meta, "a"), ["u1", "u2"]);
        assert_eq!(ids(&meta, "ab"), ["u3"]);
        assert!(ids(&meta, "b").is_empty());
        let removed = meta.remove_upload("u1", &[]).map_err(|_| "remove").expect("remove");
        assert_eq!(removed.durable_blocking().expect("durable").key, "k1");
        assert_eq!(ids(&meta, "a"), ["u2"]);
        assert!(!meta.ensure_upload_index().expect("ensure"), "index and uploads agree");
    }

    #[test]
    fn an_index_missing_from_an_older_data_dir_is_rebuilt() {
        let dir = tempfile::tempdir().expect("tempdir");
        let meta = MetaStore::open(dir.path(), 1 << 20).expect("open");
        // Upload records as a data dir from before the index holds them: no index entries.
        let raw = vec![
            (b"u1".to_vec(), encode(&upload("a", "k")).expect("encode")),
            (b"u2".to_vec(), encode(&upload("b", "k")).expect("encode")),
        ];
        meta.import(b"uploads", raw).expect("import");
        assert!(ids(&meta, "a").is_empty());
        assert!(meta.ensure_upload_index().expect("ensure"), "rebuilt");
        assert_eq!(ids(&meta, "a"), ["u1"]);
        assert_eq!(ids(&meta, "b"), ["u2"]);
    }
}
