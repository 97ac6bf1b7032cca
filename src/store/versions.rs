//! Object versions in sled: how writes and deletes move versions between the `objects` tree
//! (the latest version of each key, which may be a delete marker) and the `versions` tree
//! (noncurrent versions, newest first), following S3's Enabled / Suspended / never-enabled
//! rules. Every change is one sled transaction; callers make it durable and then free the
//! bytes of the versions returned as retired.
//!
//! Invariant: a key has stored versions only if `objects` holds its latest one, so listings
//! and "is the bucket empty" need only the `objects` tree.

use sled::transaction::TransactionalTree;
use sled::Transactional;

use super::durable::{Retires, Unflushed};
use super::meta::{abort, object_key, part_key, tx_err, upload_index_key, MetaStore, Rejected};
use super::records::{decode, encode, ObjectRecord, VersioningMode, NULL_VERSION};
use super::StoreError;

/// `versions` tree key of one noncurrent version: newest first within a key.
fn version_key(bucket: &str, key: &str, seq: u64) -> Vec<u8> {
    let mut k = versions_prefix(bucket, key);
    k.extend_from_slice(&(!seq).to_be_bytes());
    k
}

/// Prefix of every noncurrent version of bucket/key (keys never contain NUL).
fn versions_prefix(bucket: &str, key: &str) -> Vec<u8> {
    let mut k = object_key(bucket, key);
    k.push(0);
    k
}

/// What a versioned write or delete changed.
#[derive(Debug, Default)]
pub struct VersionChange {
    /// Versions that no longer exist: their bytes and derivatives can be freed once durable.
    pub retired: Vec<ObjectRecord>,
}

/// One try of [`MetaStore::delete_version`].
enum Attempt {
    Done(Option<Box<DeletedVersion>>),
    /// The version to promote was deleted concurrently: look again.
    Stale,
}

/// Where a version must still stand for [`MetaStore::delete_version_if`] to delete it.
/// The `&str` is the version's internal id ([`ObjectRecord::version_id`]), which, unlike a
/// client-visible `null`, names one record for ever.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expect<'a> {
    /// Anywhere (S3 DeleteObject with a version id).
    Any,
    /// Still noncurrent (not promoted to latest by a delete of the newer versions).
    Noncurrent(&'a str),
    /// Still the latest version and the key's only one (a lone delete marker).
    OnlyVersion(&'a str),
}

/// Which version a versioned delete removed.
#[derive(Debug)]
pub struct DeletedVersion {
    pub record: ObjectRecord,
}

/// What S3 DELETE without a version id did: the marker it wrote, if any, and what it retired.
#[derive(Debug)]
pub struct DeletedCurrent {
    pub marker: Option<ObjectRecord>,
    pub change: VersionChange,
}

impl Retires for VersionChange {
    fn retired(&self) -> &[ObjectRecord] {
        &self.retired
    }
}

impl Retires for DeletedVersion {
    fn retired(&self) -> &[ObjectRecord] {
        std::slice::from_ref(&self.record)
    }
}

impl Retires for DeletedCurrent {
    fn retired(&self) -> &[ObjectRecord] {
        &self.change.retired
    }
}

type Tx<'a> = &'a TransactionalTree;

fn get_rec<E>(
    t: Tx,
    k: &[u8],
) -> Result<Option<ObjectRecord>, sled::transaction::ConflictableTransactionError<Rejected<E>>> {
    match t.get(k)? {
        Some(v) => Ok(Some(decode::<ObjectRecord>(&v).map_err(|e| abort(e.into()))?)),
        None => Ok(None),
    }
}

impl MetaStore {
    /// A fresh, persistent, increasing sequence number for a new version.
    pub fn next_seq(&self) -> Result<u64, StoreError> {
        Ok(self.db.generate_id()?)
    }

    /// Writes `rec` as the latest version of bucket/key under `mode`, if `check` accepts the
    /// current live version (a delete marker counts as no object). `check` runs inside the
    /// transaction, so conditional writes are atomic.
    pub fn put_version<E>(
        &self,
        bucket: &str,
        key: &str,
        rec: &ObjectRecord,
        mode: VersioningMode,
        check: impl Fn(Option<&ObjectRecord>) -> Result<(), E>,
    ) -> Result<Unflushed<VersionChange>, Rejected<E>> {
        let ok = object_key(bucket, key);
        let value = encode(rec)?;
        self.mutate(|g| {
            (
                self.objects.under(g),
                self.versions.under(g),
                self.null_versions.under(g),
            )
                .transaction(|(objects, versions, nulls)| {
                    let trees = LatestTrees {
                        objects,
                        versions,
                        nulls,
                    };
                    trees.write_latest(bucket, key, &ok, &value, mode, &check)
                })
        })
        .map(|change| self.unflushed(change))
        .map_err(tx_err)
    }

    /// Completes a multipart upload: removes it and its `parts`, and writes `rec` as the latest
    /// version (as [`MetaStore::put_version`]), atomically. `Rejected::Condition(None)`: the
    /// upload no longer exists.
    #[allow(clippy::too_many_arguments)]
    pub fn complete_upload<E>(
        &self,
        upload_id: &str,
        parts: &[u32],
        bucket: &str,
        key: &str,
        rec: &ObjectRecord,
        mode: VersioningMode,
        check: impl Fn(Option<&ObjectRecord>) -> Result<(), E>,
    ) -> Result<Unflushed<VersionChange>, Rejected<Option<E>>> {
        let part_keys: Vec<Vec<u8>> = parts.iter().map(|n| part_key(upload_id, *n)).collect();
        let ok = object_key(bucket, key);
        let value = encode(rec)?;
        let check = |cur: Option<&ObjectRecord>| check(cur).map_err(Some);
        self.mutate(|g| {
            (
                self.uploads.under(g),
                self.parts.under(g),
                self.objects.under(g),
                self.versions.under(g),
                self.null_versions.under(g),
                self.upload_index.under(g),
            )
                .transaction(|(uploads, p, objects, versions, nulls, index)| {
                    if uploads.remove(upload_id)?.is_none() {
                        return Err(abort(Rejected::Condition(None)));
                    }
                    index.remove(upload_index_key(bucket, upload_id).as_slice())?;
                    for k in &part_keys {
                        p.remove(k.as_slice())?;
                    }
                    let trees = LatestTrees {
                        objects,
                        versions,
                        nulls,
                    };
                    trees.write_latest(bucket, key, &ok, &value, mode, &check)
                })
        })
        .map(|change| self.unflushed(change))
        .map_err(tx_err)
    }

    /// S3 DELETE without a version id. Unversioned buckets lose the object; otherwise a delete
    /// marker (made by `marker`, given the new sequence number) becomes the latest version.
    /// Returns the marker written, if any, and what was retired.
    pub fn delete_current(
        &self,
        bucket: &str,
        key: &str,
        mode: VersioningMode,
        marker: Option<&ObjectRecord>,
    ) -> Result<Unflushed<DeletedCurrent>, StoreError> {
        self.delete_current_if(bucket, key, mode, marker, None)?
            .ok_or_else(|| StoreError::Corrupt("unexpected delete condition".into()))
    }

    /// [`MetaStore::delete_current`], done only if the latest version is still the live
    /// (non-marker) version with internal id `expected` (when given); `Ok(None)` otherwise.
    /// Lifecycle expiration uses it so that a version written after the evaluation survives.
    pub fn delete_current_if(
        &self,
        bucket: &str,
        key: &str,
        mode: VersioningMode,
        marker: Option<&ObjectRecord>,
        expected: Option<&str>,
    ) -> Result<Option<Unflushed<DeletedCurrent>>, StoreError> {
        let ok = object_key(bucket, key);
        let nk = ok.clone();
        let marker_value = marker.map(encode).transpose()?;
        self.mutate(|g| {
            (
                self.objects.under(g),
                self.versions.under(g),
                self.null_versions.under(g),
            )
                .transaction(|(objects, versions, nulls)| {
                    let old = get_rec::<()>(objects, &ok)?;
                    if let Some(want) = expected {
                        if !old.as_ref().is_some_and(|o| o.version_id == want && !o.delete_marker) {
                            return Err(abort(Rejected::Condition(())));
                        }
                    }
                    let mut retired = Vec::new();
                    match (&marker_value, mode) {
                        (Some(m), VersioningMode::Enabled | VersioningMode::Suspended) => {
                            if let Some(old) = old {
                                demote(bucket, key, old, mode, versions, nulls, &nk, &mut retired)?;
                            }
                            if mode == VersioningMode::Suspended {
                                retire_noncurrent_null(bucket, key, versions, nulls, &nk, &mut retired)?;
                            }
                            objects.insert(ok.as_slice(), m.as_slice())?;
                            Ok(Some(DeletedCurrent {
                                marker: marker.cloned(),
                                change: VersionChange { retired },
                            }))
                        }
                        _ => {
                            if let Some(old) = old {
                                objects.remove(ok.as_slice())?;
                                retired.push(old);
                            }
                            Ok(Some(DeletedCurrent {
                                marker: None,
                                change: VersionChange { retired },
                            }))
                        }
                    }
                })
        })
        .map(|done| done.map(|d| self.unflushed(d)))
        .or_else(|e| match tx_err::<()>(e) {
            Rejected::Store(s) => Err(s),
            Rejected::Condition(()) => Ok(None),
        })
    }

    /// Permanently deletes one version (S3 DELETE with a version id). Deleting the latest
    /// version promotes the newest noncurrent one. `None` when no such version exists.
    pub fn delete_version(
        &self,
        bucket: &str,
        key: &str,
        version_id: &str,
    ) -> Result<Option<Unflushed<DeletedVersion>>, StoreError> {
        self.delete_version_if(bucket, key, version_id, Expect::Any)
    }

    /// [`MetaStore::delete_version`], done only if the version still stands where `expect`
    /// says (checked inside the transaction); `None` otherwise.
    pub fn delete_version_if(
        &self,
        bucket: &str,
        key: &str,
        version_id: &str,
        expect: Expect<'_>,
    ) -> Result<Option<Unflushed<DeletedVersion>>, StoreError> {
        let target_seq = if version_id == NULL_VERSION {
            None
        } else {
            match ObjectRecord::seq_of_version_id(version_id) {
                Some(seq) => Some(seq),
                None => return Ok(None),
            }
        };
        // sled cannot scan inside a transaction (its iterators take the lock the transaction
        // holds), so the version to promote is found first and re-checked inside; if a
        // concurrent delete removed it meanwhile, the attempt is repeated.
        for _ in 0..16 {
            let newest = self
                .versions
                .scan_prefix(versions_prefix(bucket, key))
                .next()
                .transpose()?;
            let newest = newest.as_ref().map(|(k, _)| k);
            match self.try_delete_version(bucket, key, version_id, target_seq, newest, expect)? {
                Attempt::Done(d) => return Ok(d.map(|b| self.unflushed(*b))),
                Attempt::Stale => continue,
            }
        }
        Err(StoreError::Corrupt(format!(
            "could not delete version {version_id} of {bucket}/{key}: too much contention"
        )))
    }

    fn try_delete_version(
        &self,
        bucket: &str,
        key: &str,
        version_id: &str,
        target_seq: Option<u64>,
        newest: Option<&sled::IVec>,
        expect: Expect<'_>,
    ) -> Result<Attempt, StoreError> {
        let ok = object_key(bucket, key);
        let result = self.mutate(|g| {
            (
                self.objects.under(g),
                self.versions.under(g),
                self.null_versions.under(g),
            )
                .transaction(|(objects, versions, nulls)| {
                    let current = get_rec::<()>(objects, &ok)?;
                    if let Some(cur) = current.filter(|c| c.client_version_id() == version_id) {
                        let refused = match expect {
                            Expect::Any => false,
                            Expect::Noncurrent(_) => true,
                            Expect::OnlyVersion(id) => newest.is_some() || cur.version_id != id,
                        };
                        if refused {
                            return Ok(Attempt::Done(None));
                        }
                        match newest {
                            Some(vk) => {
                                let Some(v) = versions.remove(vk.as_ref())? else {
                                    return Ok(Attempt::Stale);
                                };
                                let promoted = decode::<ObjectRecord>(&v).map_err(|e| abort(e.into()))?;
                                if !promoted.versioned {
                                    nulls.remove(ok.as_slice())?;
                                }
                                objects.insert(ok.as_slice(), v)?;
                            }
                            None => {
                                objects.remove(ok.as_slice())?;
                            }
                        }
                        return Ok(Attempt::Done(Some(Box::new(DeletedVersion { record: cur }))));
                    }
                    let seq = match target_seq {
                        Some(seq) => Some(seq),
                        None => match nulls.get(ok.as_slice())? {
                            Some(v) => <[u8; 8]>::try_from(v.as_ref()).ok().map(u64::from_be_bytes),
                            None => None,
                        },
                    };
                    let Some(seq) = seq.filter(|_| !matches!(expect, Expect::OnlyVersion(_))) else {
                        return Ok(Attempt::Done(None));
                    };
                    let vk = version_key(bucket, key, seq);
                    let same_record = |rec: &ObjectRecord| match expect {
                        Expect::Noncurrent(id) => rec.version_id == id,
                        _ => true,
                    };
                    match get_rec::<()>(versions, &vk)? {
                        Some(rec) if rec.client_version_id() == version_id && same_record(&rec) => {
                            versions.remove(vk.as_slice())?;
                            if !rec.versioned {
                                nulls.remove(ok.as_slice())?;
                            }
                            Ok(Attempt::Done(Some(Box::new(DeletedVersion { record: rec }))))
                        }
                        _ => Ok(Attempt::Done(None)),
                    }
                })
        });
        result.map_err(|e| match tx_err::<()>(e) {
            Rejected::Store(s) => s,
            Rejected::Condition(()) => StoreError::Corrupt("unexpected delete condition".into()),
        })
    }

    /// One version of bucket/key by its client-visible id (`null` included).
    pub fn object_version(
        &self,
        bucket: &str,
        key: &str,
        version_id: &str,
    ) -> Result<Option<ObjectRecord>, StoreError> {
        if let Some(cur) = self.object(bucket, key)? {
            if cur.client_version_id() == version_id {
                return Ok(Some(cur));
            }
        }
        let seq = if version_id == NULL_VERSION {
            match self.null_versions.get(object_key(bucket, key))? {
                Some(v) => <[u8; 8]>::try_from(v.as_ref()).ok().map(u64::from_be_bytes),
                None => None,
            }
        } else {
            ObjectRecord::seq_of_version_id(version_id)
        };
        let Some(seq) = seq else { return Ok(None) };
        match self.versions.get(version_key(bucket, key, seq))? {
            Some(v) => {
                let rec: ObjectRecord = decode(&v)?;
                Ok((rec.client_version_id() == version_id).then_some(rec))
            }
            None => Ok(None),
        }
    }

    /// The version of bucket/key whose internal id ([`ObjectRecord::version_id`]) is `id`,
    /// latest or noncurrent (delete markers included).
    pub fn version_by_internal_id(
        &self,
        bucket: &str,
        key: &str,
        id: &str,
    ) -> Result<Option<ObjectRecord>, StoreError> {
        if let Some(cur) = self.object(bucket, key)? {
            if cur.version_id == id {
                return Ok(Some(cur));
            }
        }
        let Some(seq) = ObjectRecord::seq_of_version_id(id) else {
            return Ok(None);
        };
        match self.versions.get(version_key(bucket, key, seq))? {
            Some(v) => {
                let rec: ObjectRecord = decode(&v)?;
                Ok((rec.version_id == id).then_some(rec))
            }
            None => Ok(None),
        }
    }

    /// Changes one stored version in place (its tags or ACL), atomically. `version_id: None`
    /// is the latest version. Delete markers are not changed. `Ok(None)`: no such version.
    pub fn update_version(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
        change: impl Fn(&mut ObjectRecord),
    ) -> Result<Option<Unflushed<ObjectRecord>>, StoreError> {
        let ok = object_key(bucket, key);
        let noncurrent_seq = match version_id {
            None => None,
            Some(v) if v == NULL_VERSION => match self.null_versions.get(&ok)? {
                Some(s) => <[u8; 8]>::try_from(s.as_ref()).ok().map(u64::from_be_bytes),
                None => None,
            },
            Some(v) => ObjectRecord::seq_of_version_id(v),
        };
        let result = self.mutate(|g| {
            (self.objects.under(g), self.versions.under(g)).transaction(|(objects, versions)| {
                let mut at = ok.clone();
                let mut rec = get_rec::<()>(objects, &ok)?;
                if let (Some(v), Some(cur)) = (version_id, &rec) {
                    if cur.client_version_id() != v {
                        rec = None;
                        if let Some(seq) = noncurrent_seq {
                            at = version_key(bucket, key, seq);
                            rec = get_rec::<()>(versions, &at)?.filter(|r| r.client_version_id() == v);
                        }
                    }
                }
                let Some(mut rec) = rec.filter(|r| !r.delete_marker) else {
                    return Ok(None);
                };
                change(&mut rec);
                let value = encode(&rec).map_err(|e| abort(e.into()))?;
                if at == ok {
                    objects.insert(at.as_slice(), value)?;
                } else {
                    versions.insert(at.as_slice(), value)?;
                }
                Ok(Some(rec))
            })
        });
        result
            .map(|updated| updated.map(|r| self.unflushed(r)))
            .map_err(|e| match tx_err::<()>(e) {
                Rejected::Store(s) => s,
                Rejected::Condition(()) => StoreError::Corrupt("unexpected update condition".into()),
            })
    }

    /// Every version of every key in `bucket` (latest, then noncurrent), delete markers
    /// included, for offline checks.
    pub fn scan_all_versions(
        &self,
        bucket: &str,
    ) -> impl Iterator<Item = Result<(String, ObjectRecord), StoreError>> + '_ {
        let latest = self.scan_objects(bucket, std::ops::Bound::Unbounded);
        let base_len = bucket.len() + 1;
        let noncurrent = self.versions.scan_prefix(object_key(bucket, "")).map(move |item| {
            let (k, v) = item?;
            // bucket NUL key NUL seq(8): the key is between the two NULs.
            let end = k.len().saturating_sub(9);
            let key = String::from_utf8_lossy(k.get(base_len..end).unwrap_or_default()).into_owned();
            Ok((key, decode(&v)?))
        });
        latest.chain(noncurrent)
    }

    /// The noncurrent versions of bucket/key, newest first.
    pub fn noncurrent_versions(
        &self,
        bucket: &str,
        key: &str,
    ) -> impl Iterator<Item = Result<ObjectRecord, StoreError>> + '_ {
        self.versions
            .scan_prefix(versions_prefix(bucket, key))
            .map(|item| decode(&item?.1))
    }
}

/// The three trees a change of a key's latest version touches, inside one transaction.
struct LatestTrees<'a> {
    objects: Tx<'a>,
    versions: Tx<'a>,
    nulls: Tx<'a>,
}

impl LatestTrees<'_> {
    fn write_latest<E>(
        &self,
        bucket: &str,
        key: &str,
        ok: &[u8],
        value: &[u8],
        mode: VersioningMode,
        check: &impl Fn(Option<&ObjectRecord>) -> Result<(), E>,
    ) -> Result<VersionChange, sled::transaction::ConflictableTransactionError<Rejected<E>>> {
        let old = get_rec(self.objects, ok)?;
        check(old.as_ref().filter(|o| !o.delete_marker)).map_err(|e| abort(Rejected::Condition(e)))?;
        let mut retired = Vec::new();
        if let Some(old) = old {
            demote(bucket, key, old, mode, self.versions, self.nulls, ok, &mut retired)?;
        }
        if mode == VersioningMode::Suspended {
            retire_noncurrent_null(bucket, key, self.versions, self.nulls, ok, &mut retired)?;
        }
        self.objects.insert(ok, value)?;
        Ok(VersionChange { retired })
    }
}

/// Moves the latest version `old` out of the way of a new one: kept as noncurrent, or retired
/// when it is the null version and the new write replaces it (never-enabled and Suspended).
#[allow(clippy::too_many_arguments)]
fn demote<E>(
    bucket: &str,
    key: &str,
    old: ObjectRecord,
    mode: VersioningMode,
    versions: Tx,
    nulls: Tx,
    null_key: &[u8],
    retired: &mut Vec<ObjectRecord>,
) -> Result<(), sled::transaction::ConflictableTransactionError<Rejected<E>>> {
    let replaces_null = !old.versioned && mode != VersioningMode::Enabled;
    if replaces_null {
        retired.push(old);
        return Ok(());
    }
    // Records from before versioning have seq 0: they sort as the oldest version.
    let seq = old.seq;
    let value = encode(&old).map_err(|e| abort(e.into()))?;
    versions.insert(version_key(bucket, key, seq), value)?;
    if !old.versioned {
        nulls.insert(null_key, &seq.to_be_bytes())?;
    }
    Ok(())
}

/// In a Suspended bucket a new write replaces the key's null version, wherever it is.
fn retire_noncurrent_null<E>(
    bucket: &str,
    key: &str,
    versions: Tx,
    nulls: Tx,
    null_key: &[u8],
    retired: &mut Vec<ObjectRecord>,
) -> Result<(), sled::transaction::ConflictableTransactionError<Rejected<E>>> {
    let Some(v) = nulls.get(null_key)? else { return Ok(()) };
    let Ok(seq) = <[u8; 8]>::try_from(v.as_ref()).map(u64::from_be_bytes) else {
        return Ok(());
    };
    nulls.remove(null_key)?;
    let vk = version_key(bucket, key, seq);
    if let Some(rec) = get_rec(versions, &vk)? {
        versions.remove(vk.as_slice())?;
        retired.push(rec);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::records::{Checksums, ObjectData};

    fn rec(meta: &MetaStore, versioned: bool, delete_marker: bool) -> ObjectRecord {
        let seq = meta.next_seq().expect("seq");
        ObjectRecord {
            version_id: ObjectRecord::version_id_for(seq),
            seq,
            versioned,
            delete_marker,
            acl: None,
            tags: Vec::new(),
            encryption: None,
            size: 1,
            etag: String::new(),
            last_modified_ms: 0,
            owner: "o".into(),
            headers: Default::default(),
            user_metadata: Default::default(),
            checksums: Checksums::default(),
            parts_count: None,
            data: ObjectData::Inline(vec![1]),
            storage_class: Default::default(),
            restored_until_ms: None,
        }
    }

    fn put(meta: &MetaStore, r: &ObjectRecord, mode: VersioningMode) {
        meta.put_version("b", "k", r, mode, |_| Ok::<(), ()>(()))
            .expect("put")
            .durable_blocking()
            .expect("durable");
    }

    #[test]
    fn conditional_deletes_refuse_changed_versions() {
        let dir = tempfile::tempdir().expect("tempdir");
        let meta = MetaStore::open(dir.path(), 1 << 20).expect("open");
        let en = VersioningMode::Enabled;
        let v1 = rec(&meta, true, false);
        put(&meta, &v1, en);
        let v2 = rec(&meta, true, false);
        put(&meta, &v2, en);
        // Expiring the current version only if it is still v1: refused, nothing changes.
        let marker = rec(&meta, true, true);
        let r = meta.delete_current_if("b", "k", en, Some(&marker), Some(&v1.version_id));
        assert!(r.expect("store").is_none());
        assert_eq!(
            meta.object("b", "k").expect("get").map(|r| r.version_id),
            Some(v2.version_id.clone())
        );
        // v2 is the latest: a "noncurrent" delete of it is refused, of v1 done.
        let r = meta.delete_version_if("b", "k", &v2.version_id, Expect::Noncurrent(&v2.version_id));
        assert!(r.expect("store").is_none());
        let r = meta.delete_version_if("b", "k", &v1.version_id, Expect::OnlyVersion(&v1.version_id));
        assert!(r.expect("store").is_none(), "v1 is not the latest");
        let r = meta.delete_version_if("b", "k", &v1.version_id, Expect::Noncurrent(&v1.version_id));
        assert_eq!(
            r.expect("store")
                .map(|d| d.durable_blocking().expect("durable").record.version_id),
            Some(v1.version_id.clone())
        );
        // Expire v2 (still current): a marker on top.
        let r = meta.delete_current_if("b", "k", en, Some(&marker), Some(&v2.version_id));
        assert!(r.expect("store").is_some());
        // The marker is not alone while v2 exists.
        let r = meta.delete_version_if("b", "k", &marker.version_id, Expect::OnlyVersion(&marker.version_id));
        assert!(r.expect("store").is_none());
        let r = meta.delete_version_if("b", "k", &v2.version_id, Expect::Noncurrent(&v2.version_id));
        assert!(r.expect("store").is_some());
        let r = meta.delete_version_if("b", "k", &marker.version_id, Expect::OnlyVersion(&marker.version_id));
        assert!(r.expect("store").is_some());
        assert!(meta.object("b", "k").expect("get").is_none());
        // A null version replaced by another null version is not the one evaluated.
        let s = VersioningMode::Suspended;
        let n1 = rec(&meta, false, false);
        put(&meta, &n1, s);
        let v3 = rec(&meta, true, false);
        put(&meta, &v3, en); // n1 becomes noncurrent
        let r = meta.delete_version_if("b", "k", NULL_VERSION, Expect::Noncurrent("someone-else"));
        assert!(r.expect("store").is_none());
        let r = meta.delete_version_if("b", "k", NULL_VERSION, Expect::Noncurrent(&n1.version_id));
        assert_eq!(
            r.expect("store")
                .map(|d| d.durable_blocking().expect("durable").record.version_id),
            Some(n1.version_id)
        );
    }
}
