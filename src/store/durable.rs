//! Durability as a type. A metadata change that sled has applied in memory but that is not
//! yet on stable storage is an [`Unflushed`]: the store's version, upload and part mutations
//! return one, and what the change produced (the versions it retired, the part it replaced,
//! the upload it removed) is handed out only by [`Unflushed::durable`] (or, on a blocking
//! thread, [`Unflushed::durable_blocking`]). So a caller can neither acknowledge a write nor
//! free the bytes a change retired before the change is durable, and `#[must_use]` turns a
//! forgotten wait into a compiler warning (an error under our clippy gate):
//!
//! ```compile_fail
//! #![deny(unused_must_use)]
//! fn forgets_to_wait(meta: &strata::store::MetaStore, rec: &strata::store::records::ObjectRecord) {
//!     use strata::store::records::VersioningMode;
//!     let _ok = meta.put_version("b", "k", rec, VersioningMode::Enabled, |_| Ok::<(), ()>(())).is_ok();
//!     meta.put_version("b", "k", rec, VersioningMode::Enabled, |_| Ok::<(), ()>(())).ok().unwrap();
//! }
//! ```
//!
//! Waiting is cheap: with group commit running, concurrent changes share one flush
//! ([`super::commit`]). Several changes made in a row are made durable together with
//! [`Unflushed::all`] (one flush covers every change made before it).

use std::sync::Arc;

use super::commit::GroupCommit;
use super::StoreError;

/// A change applied in sled's memory, with what it produced, waiting to be made durable.
#[must_use = "a metadata change must be made durable (`.durable().await`) before it is acknowledged or what it retired is freed"]
pub struct Unflushed<T> {
    value: T,
    /// `None` for a combination of no changes (nothing to flush).
    flusher: Option<Flusher>,
}

/// How to put every change made so far on stable storage.
#[derive(Clone)]
pub(super) struct Flusher {
    pub(super) db: sled::Db,
    pub(super) commit: Option<Arc<GroupCommit>>,
}

impl Flusher {
    pub(super) async fn durable(&self) -> Result<(), StoreError> {
        match &self.commit {
            Some(c) => c.durable().await,
            // Offline tools and tests open the store without group commit.
            None => {
                self.db.flush()?;
                Ok(())
            }
        }
    }

    pub(super) fn durable_blocking(&self) -> Result<(), StoreError> {
        self.db.flush()?;
        Ok(())
    }
}

impl<T> Unflushed<T> {
    pub(super) fn new(value: T, flusher: Flusher) -> Self {
        Self {
            value,
            flusher: Some(flusher),
        }
    }

    /// The outcome of a change that changed nothing (e.g. a delete of a version that does not
    /// exist): there is nothing to flush.
    pub fn unchanged(value: T) -> Self {
        Self { value, flusher: None }
    }

    /// Waits until the change is on stable storage, then hands out what it produced.
    pub async fn durable(self) -> Result<T, StoreError> {
        if let Some(f) = &self.flusher {
            f.durable().await?;
        }
        Ok(self.value)
    }

    /// [`Unflushed::durable`] for blocking threads and offline tools (a direct sled flush).
    pub fn durable_blocking(self) -> Result<T, StoreError> {
        if let Some(f) = &self.flusher {
            f.durable_blocking()?;
        }
        Ok(self.value)
    }

    /// The same change, carrying `f` of what it produced (still only handed out once durable).
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Unflushed<U> {
        Unflushed {
            value: f(self.value),
            flusher: self.flusher,
        }
    }

    /// Several changes made durable together: one flush covers every change made before it.
    pub fn all(changes: impl IntoIterator<Item = Unflushed<T>>) -> Unflushed<Vec<T>> {
        let mut flusher = None;
        let mut values = Vec::new();
        for c in changes {
            flusher = flusher.or(c.flusher);
            values.push(c.value);
        }
        Unflushed { value: values, flusher }
    }
}

/// What a change retired: versions whose bytes and derivatives may be freed once it is durable.
pub trait Retires {
    fn retired(&self) -> &[super::records::ObjectRecord];
}

impl<A, T: Retires> Retires for (A, T) {
    fn retired(&self) -> &[super::records::ObjectRecord] {
        self.1.retired()
    }
}
