//! The write gate as a type. A backup's snapshot must see every sled tree at one instant, so
//! every metadata change runs under the shared side of one lock and the snapshot takes the
//! exclusive side ([`super::meta::MetaStore::snapshot`]). Here that rule is in the types: the
//! store's trees are [`GatedTree`]s, which read like sled trees but write only when handed a
//! [`Gate`], the proof that the shared side is held, and only
//! [`super::meta::MetaStore::mutate`] makes one (for the length of its closure). A change that
//! forgets the gate does not compile:
//!
//! ```compile_fail,E0061
//! fn write_without_the_gate(tree: &strata::store::gate::GatedTree) {
//!     let _ = tree.insert(b"key", b"value".to_vec());
//! }
//! ```

use std::ops::RangeBounds;
use std::sync::{RwLock, RwLockReadGuard};

use sled::IVec;

/// The lock itself: shared by changes, exclusive for a snapshot.
#[derive(Default)]
pub struct WriteGate(RwLock<()>);

impl WriteGate {
    /// The shared side, for one change ([`super::meta::MetaStore::mutate`]).
    pub(super) fn enter(&self) -> Gate<'_> {
        let shared = match self.0.try_read() {
            Ok(shared) => shared,
            Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
            // A snapshot holds or wants the exclusive side. On a tokio worker, waiting here
            // would stall every other task queued on that worker (reads included) for the
            // whole pause: hand them to another thread first. Elsewhere (blocking threads,
            // offline tools, a current-thread runtime) just wait.
            Err(std::sync::TryLockError::WouldBlock) => {
                let wait = || self.0.read().unwrap_or_else(|p| p.into_inner());
                match tokio::runtime::Handle::try_current() {
                    Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
                        tokio::task::block_in_place(wait)
                    }
                    _ => wait(),
                }
            }
        };
        Gate { _shared: shared }
    }

    /// The exclusive side, for a snapshot: changes in flight finish first, new ones wait.
    pub(super) fn exclusive(&self) -> std::sync::RwLockWriteGuard<'_, ()> {
        self.0.write().unwrap_or_else(|p| p.into_inner())
    }
}

/// Proof that the shared side of the write gate is held. Not `Clone`, and handed out only by
/// reference inside [`super::meta::MetaStore::mutate`], so it cannot outlive the change.
pub struct Gate<'g> {
    _shared: RwLockReadGuard<'g, ()>,
}

/// A sled tree whose writes need a [`Gate`]. Reads are sled's own.
#[derive(Clone)]
pub struct GatedTree(sled::Tree);

impl GatedTree {
    pub(super) fn new(tree: sled::Tree) -> Self {
        Self(tree)
    }

    pub fn get<K: AsRef<[u8]>>(&self, key: K) -> sled::Result<Option<IVec>> {
        self.0.get(key)
    }

    pub fn contains_key<K: AsRef<[u8]>>(&self, key: K) -> sled::Result<bool> {
        self.0.contains_key(key)
    }

    pub fn iter(&self) -> sled::Iter {
        self.0.iter()
    }

    pub fn scan_prefix<P: AsRef<[u8]>>(&self, prefix: P) -> sled::Iter {
        self.0.scan_prefix(prefix)
    }

    pub fn range<K: AsRef<[u8]>, R: RangeBounds<K>>(&self, range: R) -> sled::Iter {
        self.0.range(range)
    }

    pub fn name(&self) -> IVec {
        self.0.name()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn insert<K: AsRef<[u8]>, V: Into<IVec>>(
        &self,
        _gate: &Gate<'_>,
        key: K,
        value: V,
    ) -> sled::Result<Option<IVec>> {
        self.0.insert(key, value)
    }

    pub fn remove<K: AsRef<[u8]>>(&self, _gate: &Gate<'_>, key: K) -> sled::Result<Option<IVec>> {
        self.0.remove(key)
    }

    pub fn compare_and_swap<K: AsRef<[u8]>, OV: AsRef<[u8]>, NV: Into<IVec>>(
        &self,
        _gate: &Gate<'_>,
        key: K,
        old: Option<OV>,
        new: Option<NV>,
    ) -> sled::Result<Result<(), sled::CompareAndSwapError>> {
        self.0.compare_and_swap(key, old, new)
    }

    pub fn apply_batch(&self, _gate: &Gate<'_>, batch: sled::Batch) -> sled::Result<()> {
        self.0.apply_batch(batch)
    }

    /// The sled tree, for a multi-tree transaction run under `gate` (sled's `Transactional`
    /// wants `&sled::Tree`s). Borrowed from the gate, so it lives only as long as the change.
    pub fn under<'a>(&'a self, _gate: &'a Gate<'_>) -> &'a sled::Tree {
        &self.0
    }
}
