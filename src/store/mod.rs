//! Durable state: metadata in sled ([`meta`]), object bytes in immutable blob files ([`blob`],
//! each ending with its block checksum table, [`integrity`]; read verified at any offset,
//! [`read`]; failures reported by [`bitrot`]), group-committed flushes ([`commit`]) and the
//! record types ([`records`]).
//!
//! The durability contract (design.md "Write path"): bytes are fsynced and renamed into
//! `blobs/` (directory fsynced) before the metadata that points at them is written, and the
//! metadata is flushed before the client hears 200. A crash therefore leaves either the old or
//! the new state; what it can leave behind is an unreferenced blob, which [`Store::sweep_orphans`]
//! removes at start-up.

pub mod bitrot;
pub mod blob;
pub mod commit;
pub mod crypto;
pub mod durable;
pub mod faults;
pub mod fsck;
pub mod gate;
pub mod integrity;
pub mod keyring;
pub mod meta;
pub mod purge;
pub mod read;
pub mod records;
pub mod repair;
pub mod scrub;
pub mod tiering;
pub mod usage;
pub mod versions;

use std::collections::HashSet;
use std::path::{Path, PathBuf};

pub use blob::BlobStore;
pub use durable::{Retires, Unflushed};
pub use meta::MetaStore;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    #[error("metadata store error: {0}")]
    Sled(#[from] sled::Error),
    #[error("corrupt metadata: {0}")]
    Corrupt(String),
}

impl StoreError {
    /// True when the volume is full, so callers can answer with a retryable error.
    pub fn is_out_of_space(&self) -> bool {
        match self {
            StoreError::Io(e) => e.raw_os_error() == Some(28), // ENOSPC
            StoreError::Sled(sled::Error::Io(e)) => e.raw_os_error() == Some(28),
            _ => false,
        }
    }
}

/// Tunables of the store (from `[limits]` in the config).
#[derive(Clone, Debug)]
pub struct StoreOptions {
    /// How long replaced blobs linger for readers already under way.
    pub delete_grace: std::time::Duration,
    /// How long an upload may stall between two body chunks.
    pub body_idle_timeout: std::time::Duration,
    /// sled's page cache (its default, 1 GiB, lets RSS grow far past what we need).
    pub metadata_cache_bytes: u64,
    /// The cold volume for STANDARD_IA and GLACIER bytes (`None`: `<data>/cold`).
    pub cold_dir: Option<PathBuf>,
    /// Blob unlinks a running backup may hold back (see [`BlobStore::hold_unlinks`]).
    pub max_held_unlinks: usize,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            delete_grace: std::time::Duration::ZERO,
            body_idle_timeout: std::time::Duration::from_secs(30),
            metadata_cache_bytes: 64 * 1024 * 1024,
            cold_dir: None,
            max_held_unlinks: 1_000_000,
        }
    }
}

#[derive(Clone)]
pub struct Store {
    pub meta: MetaStore,
    pub blobs: BlobStore,
    pub data_dir: PathBuf,
}

/// What a sweep of unreferenced blobs found.
#[derive(Debug, Default)]
pub struct SweepReport {
    pub blobs_seen: u64,
    pub orphans_removed: u64,
}

impl Store {
    /// Removes an incomplete multipart upload and its parts, durably, then queues the parts'
    /// blobs for the deferred unlink. `None` when the upload is already gone (completed or
    /// aborted meanwhile); otherwise the bytes its parts held. AbortMultipartUpload, the
    /// lifecycle worker and forced bucket deletes all go through here.
    pub async fn remove_upload(&self, upload_id: &str) -> Result<Option<u64>, StoreError> {
        let parts = self.meta.parts(upload_id)?;
        let numbers: Vec<u32> = parts.iter().map(|(n, _)| *n).collect();
        match self.meta.remove_upload(upload_id, &numbers) {
            Ok(removed) => removed.durable().await?,
            Err(meta::Rejected::Condition(())) => return Ok(None),
            Err(meta::Rejected::Store(e)) => return Err(e),
        };
        let bytes = parts.iter().map(|(_, p)| p.blob.size).sum();
        self.blobs.remove(parts.into_iter().map(|(_, p)| p.blob).collect());
        Ok(Some(bytes))
    }

    /// Opens the store. Call `meta.start_group_commit()` before serving requests.
    pub fn open(data_dir: &Path, opts: &StoreOptions) -> Result<Self, StoreError> {
        std::fs::create_dir_all(data_dir)?;
        let meta = MetaStore::open(data_dir, opts.metadata_cache_bytes)?;
        if meta.ensure_upload_index()? {
            tracing::info!("rebuilt the per-bucket index of multipart uploads");
        }
        let cold_dir = opts.cold_dir.clone().unwrap_or_else(|| data_dir.join("cold"));
        let blobs = BlobStore::open(data_dir, &cold_dir, opts.delete_grace, opts.body_idle_timeout)?;
        blobs.limit_held_unlinks(opts.max_held_unlinks);
        Ok(Self {
            meta,
            blobs,
            data_dir: data_dir.to_path_buf(),
        })
    }

    /// Removes blob files that no object or part references (left by a crash between
    /// publishing a blob and committing its metadata, or before deleting a replaced one).
    /// Only safe while no request is running.
    pub fn sweep_orphans(&self) -> Result<SweepReport, StoreError> {
        // (cold, id): a transition leaves the same id on both volumes for a moment.
        let mut live: HashSet<(bool, String)> = HashSet::new();
        for rec in self.meta.all_objects() {
            live.extend(rec?.blobs().iter().map(|b| (b.cold, b.id.clone())));
        }
        for part in self.meta.all_parts() {
            let blob = part?.blob;
            live.insert((blob.cold, blob.id));
        }
        let mut report = SweepReport::default();
        for (cold, dir) in [(false, self.blobs.blobs_dir()), (true, self.blobs.cold_blobs_dir())] {
            for shard in std::fs::read_dir(dir)? {
                let shard = shard?;
                if !shard.file_type()?.is_dir() {
                    continue;
                }
                for entry in std::fs::read_dir(shard.path())? {
                    let entry = entry?;
                    report.blobs_seen += 1;
                    let name = entry.file_name().to_string_lossy().into_owned();
                    if !live.contains(&(cold, name)) {
                        std::fs::remove_file(entry.path())?;
                        report.orphans_removed += 1;
                    }
                }
            }
        }
        Ok(report)
    }
}
