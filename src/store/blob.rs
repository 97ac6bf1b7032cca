//! Object bytes on the volume: immutable blob files under `<data>/blobs/ab/<id>`.
//!
//! Writing streams a body into `<data>/tmp/<id>` on a blocking thread while hashing it (MD5
//! for the ETag plus any requested S3 checksums, the CRC-64 and the block checksum table of
//! the bytes on disk, see [`super::integrity`]), appends the table, fsyncs it, and only after
//! the caller has verified the checksums is the file renamed into `blobs/` and the directory
//! fsynced. Reading (verified, at any offset) is [`super::read`].
//!
//! Blobs of the colder storage classes live on a second volume (`storage.cold_dir`,
//! `<cold>/blobs/ab/<id>`); [`BlobRef::cold`] says which, and [`BlobStore::blob_path`] is the
//! one place that resolves it. [`BlobStore::copy_to_cold`] moves bytes there for transitions.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use bytes::{Bytes, BytesMut};
use futures::{Stream, StreamExt};
use md5::{Digest, Md5};
use s3s::checksum::ChecksumHasher;

use super::crypto::{BlobCipher, Key256, SegmentSealer};
use super::faults::{crash_point, CrashPoint};
pub use super::integrity::crc64;
use super::integrity::{FileReport, TableBuilder};
use super::records::BlobRef;
use super::StoreError;

/// Bytes handed to the writer thread at once; also the read chunk size.
pub(super) const CHUNK: usize = 256 * 1024;
/// Chunks that may wait between the network and the disk per request (bounds memory).
const PIPELINE_DEPTH: usize = 4;

#[derive(Clone)]
pub struct BlobStore {
    blobs: PathBuf,
    tmp: PathBuf,
    /// `<cold>/blobs` and `<cold>/tmp` on the cold volume.
    cold_blobs: PathBuf,
    cold_tmp: PathBuf,
    /// Longest wait for the next chunk of a request body before giving up on the client.
    body_idle_timeout: std::time::Duration,
    /// How long a replaced or deleted blob stays on disk, so a reader that looked up the
    /// old metadata just before the change can still open it.
    delete_grace: std::time::Duration,
    /// Deferred unlinks held back while a backup copies blobs.
    held: std::sync::Arc<std::sync::Mutex<HeldUnlinks>>,
}

#[derive(Default)]
struct HeldUnlinks {
    active: bool,
    queued: Vec<PathBuf>,
    /// Bound on `queued`; unlinks past it are dropped (the blobs become orphans that the
    /// start-up sweep removes), so a long backup under heavy deletes cannot exhaust memory.
    max: usize,
}

/// While alive, [`BlobStore::remove`] deletes nothing (the unlinks are queued); dropping it
/// runs them. At most one exists per store (one backup at a time).
pub struct UnlinkHold {
    held: std::sync::Arc<std::sync::Mutex<HeldUnlinks>>,
}

impl Drop for UnlinkHold {
    fn drop(&mut self) {
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        held.active = false;
        unlink_all(std::mem::take(&mut held.queued));
    }
}

fn unlink_all(paths: Vec<PathBuf>) {
    let metrics = crate::metrics::global();
    for p in paths {
        let removed = fs::remove_file(&p);
        if let Err(e) = &removed {
            if e.kind() != io::ErrorKind::NotFound {
                tracing::warn!(path = %p.display(), error = %e, "could not remove blob");
            }
        }
        metrics.gc_done(removed.is_ok());
    }
}

/// What came out of streaming a request body.
pub struct Ingested {
    pub size: u64,
    pub md5: [u8; 16],
    /// CRC-64/NVME of the body: the integrity check of the blob on every read (SIMD, cheap).
    pub crc64: u64,
    pub checksums: s3s::dto::Checksum,
    pub body: IngestedBody,
    /// The blob was encrypted (see [`BlobRef::sealed`]).
    pub sealed: bool,
    /// The block size of the table the blob file ends with (`None` for inline bodies).
    pub block_size: Option<u32>,
}

pub enum IngestedBody {
    /// Small enough to keep in the metadata record.
    Inline(Bytes),
    /// Written and fsynced under `tmp/`; call [`BlobStore::publish`] or [`BlobStore::discard`].
    Pending(String),
}

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("request body exceeds the maximum object size")]
    TooLarge,
    #[error("the client sent no body bytes for too long")]
    Stalled,
    #[error("request body stream failed: {0}")]
    Body(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl BlobStore {
    /// Prepares `<data>/blobs/00..ff` and an empty `<data>/tmp`.
    pub fn open(
        data_dir: &Path,
        cold_dir: &Path,
        delete_grace: std::time::Duration,
        body_idle_timeout: std::time::Duration,
    ) -> Result<Self, StoreError> {
        let (blobs, tmp) = prepare_volume(data_dir)?;
        let (cold_blobs, cold_tmp) = prepare_volume(cold_dir)?;
        Ok(Self {
            blobs,
            tmp,
            cold_blobs,
            cold_tmp,
            body_idle_timeout,
            delete_grace,
            held: Default::default(),
        })
    }

    pub fn limit_held_unlinks(&self, max: usize) {
        self.held.lock().unwrap_or_else(|p| p.into_inner()).max = max;
    }

    /// Holds back every blob unlink until the returned guard is dropped; `None` when a hold
    /// is already taken (a backup is running).
    pub fn hold_unlinks(&self) -> Option<UnlinkHold> {
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        if held.active {
            return None;
        }
        held.active = true;
        Some(UnlinkHold {
            held: self.held.clone(),
        })
    }

    pub fn new_id() -> String {
        format!("{:032x}", rand::random::<u128>())
    }

    /// Where a published blob lives. Ids are generated by us (hex), never taken from clients.
    pub fn path(&self, id: &str) -> PathBuf {
        sharded(&self.blobs, id)
    }

    fn tmp_path(&self, id: &str) -> PathBuf {
        self.tmp.join(id)
    }

    pub fn blobs_dir(&self) -> &Path {
        &self.blobs
    }

    /// `blobs/` of the cold volume.
    pub fn cold_blobs_dir(&self) -> &Path {
        &self.cold_blobs
    }

    /// Where a published blob lives, on whichever volume it was written to.
    pub fn blob_path(&self, blob: &BlobRef) -> PathBuf {
        self.volume_path(&blob.id, blob.cold)
    }

    /// Where blob `id` lives on the hot or the cold volume.
    fn volume_path(&self, id: &str, cold: bool) -> PathBuf {
        sharded(if cold { &self.cold_blobs } else { &self.blobs }, id)
    }

    /// Copies a hot blob to the cold volume (temp file, fsync, rename, directory fsync) and
    /// returns its reference there. The hot file is left for the caller to retire once the
    /// metadata points at the copy. Copying an already cold blob is a no-op. Every byte is
    /// verified on the way (block table, whole-blob checksum): a blob that fails is not
    /// copied, and the error carries the [`super::integrity::Corruption`].
    pub async fn copy_to_cold(&self, blob: &BlobRef) -> Result<BlobRef, StoreError> {
        if blob.cold {
            return Ok(blob.clone());
        }
        let mut cold = blob.clone();
        cold.cold = true;
        let from = self.blob_path(blob);
        let to = self.blob_path(&cold);
        let tmp = self.cold_tmp.join(format!("{}.{:08x}", blob.id, rand::random::<u32>()));
        let source = blob.clone();
        tokio::task::spawn_blocking(move || -> io::Result<()> {
            let result = (|| {
                let mut src = File::open(&from)?;
                let mut dst = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
                let report = copy_verified(&mut src, &mut dst, &source)?;
                if let Some(c) = report.corruption(&source) {
                    return Err(c.into());
                }
                if !report.ok(&source) {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!(
                            "blob {} has {} bytes, expected {}",
                            from.display(),
                            report.len,
                            source.stored_size()
                        ),
                    ));
                }
                fs::rename(&tmp, &to)?;
                if let Some(dir) = to.parent() {
                    fsync_dir(dir)?;
                }
                Ok(())
            })();
            if result.is_err() {
                let _ = fs::remove_file(&tmp);
            }
            result
        })
        .await
        .map_err(|e| StoreError::Io(io::Error::other(e)))??;
        Ok(cold)
    }

    /// Streams `body` to disk (or memory, when it ends within `inline_max` bytes). With
    /// `seal`, the blob is encrypted under that data key (`store::crypto`) and never inlined
    /// (except an empty body, which has nothing to hide); hashes cover the plaintext, the
    /// CRC-64 the bytes on disk.
    pub async fn ingest<S, E>(
        &self,
        mut body: S,
        mut hasher: ChecksumHasher,
        inline_max: usize,
        max_size: u64,
        seal: Option<&Key256>,
    ) -> Result<Ingested, IngestError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let mut md5 = Md5::new();
        let mut crc = crc64();
        let mut head = BytesMut::new();
        let mut size: u64 = 0;

        let idle = self.body_idle_timeout;
        let inline_max = if seal.is_some() { 0 } else { inline_max };
        // Phase 1: buffer up to `inline_max` bytes; most small objects end here.
        let mut overflow: Option<Bytes> = None;
        while let Some(chunk) = next_chunk(&mut body, idle).await? {
            let chunk = chunk.map_err(|e| IngestError::Body(e.to_string()))?;
            size += chunk.len() as u64;
            if size > max_size {
                return Err(IngestError::TooLarge);
            }
            if head.len() + chunk.len() <= inline_max {
                head.extend_from_slice(&chunk);
            } else {
                overflow = Some(chunk);
                break;
            }
        }
        let Some(overflow) = overflow else {
            md5.update(&head);
            crc.update(&head);
            hasher.update(&head);
            return Ok(Ingested {
                size,
                md5: md5.finalize().into(),
                crc64: crc.finalize(),
                checksums: hasher.finalize(),
                body: IngestedBody::Inline(head.freeze()),
                sealed: false,
                block_size: None,
            });
        };

        // Phase 2: hand chunks to a blocking writer thread that hashes and writes them.
        let id = Self::new_id();
        let path = self.tmp_path(&id);
        let file = File::create(&path).map_err(StoreError::from)?;
        let block_size = super::integrity::new_blob_block_size();
        let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(PIPELINE_DEPTH);
        let writer = BlobWriter {
            md5,
            crc,
            hasher,
            sealer: seal.map(|k| SegmentSealer::new(BlobCipher::new(k, &id))),
            table: block_size.map(TableBuilder::new),
        };
        let writer = tokio::task::spawn_blocking(move || writer.write(file, rx));

        let mut pending = head;
        pending.extend_from_slice(&overflow);
        let result = feed_writer(&mut body, pending, &tx, &mut size, max_size, idle).await;
        drop(tx);
        let written = writer.await.map_err(|e| StoreError::Io(io::Error::other(e)));

        let outcome = match (result, written) {
            (Err(e), _) => Err(e),
            (Ok(()), Err(e)) => Err(e.into()),
            (Ok(()), Ok(Err(e))) => Err(StoreError::from(e).into()),
            (Ok(()), Ok(Ok((md5, crc, hasher)))) => Ok(Ingested {
                size,
                md5: md5.finalize().into(),
                crc64: crc.finalize(),
                checksums: hasher.finalize(),
                body: IngestedBody::Pending(id.clone()),
                sealed: seal.is_some(),
                block_size,
            }),
        };
        if outcome.is_err() {
            let _ = fs::remove_file(&path);
        }
        outcome
    }

    /// Moves a fsynced temp file into `blobs/` (of the cold volume with `cold`) and makes the
    /// rename durable. The cold volume may be another file system, where a rename cannot
    /// reach: then the bytes are copied and fsynced first.
    pub async fn publish(&self, id: &str, cold: bool) -> Result<(), StoreError> {
        let from = self.tmp_path(id);
        let to = self.volume_path(id, cold);
        let cold_tmp = self.cold_tmp.join(id);
        tokio::task::spawn_blocking(move || -> io::Result<()> {
            if cold {
                rename_or_copy(&from, &cold_tmp)?;
            }
            fs::rename(if cold { &cold_tmp } else { &from }, &to)?;
            crash_point(CrashPoint::BlobRenamed);
            if let Some(dir) = to.parent() {
                fsync_dir(dir)?;
            }
            crash_point(CrashPoint::BlobPublished);
            Ok(())
        })
        .await
        .map_err(|e| StoreError::Io(io::Error::other(e)))??;
        Ok(())
    }

    pub fn discard(&self, id: &str) {
        let _ = fs::remove_file(self.tmp_path(id));
    }

    /// Deletes published blobs no longer referenced by durable metadata, after the grace
    /// period. (If the process dies first, the start-up sweep removes them.)
    pub fn remove(&self, blobs: Vec<BlobRef>) {
        if blobs.is_empty() {
            return;
        }
        let paths: Vec<PathBuf> = blobs.iter().map(|b| self.blob_path(b)).collect();
        let grace = self.delete_grace;
        let held = self.held.clone();
        crate::metrics::global().gc_queued(paths.len() as u64);
        tokio::spawn(async move {
            tokio::time::sleep(grace).await;
            let _ = tokio::task::spawn_blocking(move || {
                // Checked (and unlinked) under the lock, so a hold taken meanwhile wins.
                let mut held = held.lock().unwrap_or_else(|p| p.into_inner());
                if held.active {
                    let room = held.max.saturating_sub(held.queued.len());
                    if paths.len() > room {
                        tracing::warn!(
                            dropped = paths.len() - room,
                            "backup running: too many held blob unlinks; leaving them for the start-up sweep"
                        );
                        for _ in room..paths.len() {
                            crate::metrics::global().gc_done(false);
                        }
                    }
                    held.queued.extend(paths.into_iter().take(room));
                } else {
                    unlink_all(paths);
                }
            })
            .await;
        });
    }
}

/// The next chunk of a request body, or `Stalled` when the client sends nothing for `idle`.
async fn next_chunk<S: Stream + Unpin>(
    body: &mut S,
    idle: std::time::Duration,
) -> Result<Option<S::Item>, IngestError> {
    tokio::time::timeout(idle, body.next())
        .await
        .map_err(|_| IngestError::Stalled)
}

/// Creates `<root>/blobs/00..ff` and an empty `<root>/tmp` (anything left in tmp/ belongs to
/// a write that never completed); returns both paths.
fn prepare_volume(root: &Path) -> Result<(PathBuf, PathBuf), StoreError> {
    let blobs = root.join("blobs");
    let tmp = root.join("tmp");
    for i in 0..=255u8 {
        fs::create_dir_all(blobs.join(format!("{i:02x}")))?;
    }
    if tmp.exists() {
        fs::remove_dir_all(&tmp)?;
    }
    fs::create_dir_all(&tmp)?;
    fsync_dir(root)?;
    Ok((blobs, tmp))
}

/// Renames `from` to `to`, or, across file systems (EXDEV), copies, fsyncs and unlinks.
fn rename_or_copy(from: &Path, to: &Path) -> io::Result<()> {
    match fs::rename(from, to) {
        Err(e) if e.raw_os_error() == Some(18) => {
            let mut src = File::open(from)?;
            let mut dst = OpenOptions::new().write(true).create_new(true).open(to)?;
            copy_synced(&mut src, &mut dst)?;
            fs::remove_file(from)?;
            Ok(())
        }
        other => other,
    }
}

/// `<root>/<first two characters of id>/<id>`: how blobs are sharded on both volumes and in
/// backups.
pub fn sharded(root: &Path, id: &str) -> PathBuf {
    root.join(id.get(..2).unwrap_or("00")).join(id)
}

/// Copies `src` to the end of `dst` in the kernel (`io::copy` uses copy_file_range between
/// files), then fsyncs `dst`; returns the bytes copied. For moving a file whose bytes are
/// checked elsewhere (publishing a fresh upload across file systems); copies of stored blobs
/// go through [`copy_verified`].
pub fn copy_synced(src: &mut File, dst: &mut File) -> io::Result<u64> {
    let n = io::copy(src, dst)?;
    dst.sync_all()?;
    Ok(n)
}

/// Copies blob file `src` to the end of `dst` through a [`super::integrity::FileVerifier`]
/// and, when the report is clean, fsyncs `dst`. The caller must not publish a copy whose
/// report is not [`FileReport::ok`] (cold transitions, backups, restores).
pub fn copy_verified(src: &mut File, dst: &mut File, blob: &BlobRef) -> io::Result<FileReport> {
    let report = super::integrity::verify_reader(blob, src, |b| dst.write_all(b), |_| {})?;
    if report.ok(blob) {
        dst.sync_all()?;
    }
    Ok(report)
}

pub fn fsync_dir(dir: &Path) -> io::Result<()> {
    OpenOptions::new().read(true).open(dir)?.sync_all()
}

impl BlobStore {
    /// Creates an empty, fsynced temp blob (for zero-byte parts).
    pub async fn write_empty(&self, id: &str) -> Result<(), StoreError> {
        let path = self.tmp_path(id);
        tokio::task::spawn_blocking(move || File::create(path)?.sync_all())
            .await
            .map_err(|e| StoreError::Io(io::Error::other(e)))??;
        Ok(())
    }
}

/// The blocking half of an ingest: hashes every chunk (MD5 and the client's checksums over
/// the plaintext), seals it when encrypting, and writes it; the CRC-64 and the block table
/// cover exactly the bytes on disk. Then the table, then one fsync, with the crash points
/// between the steps.
struct BlobWriter {
    md5: Md5,
    crc: crc_fast::Digest,
    hasher: ChecksumHasher,
    sealer: Option<SegmentSealer>,
    table: Option<TableBuilder>,
}

impl BlobWriter {
    fn write(
        mut self,
        file: File,
        mut rx: tokio::sync::mpsc::Receiver<Bytes>,
    ) -> io::Result<(Md5, crc_fast::Digest, ChecksumHasher)> {
        let mut out = io::BufWriter::with_capacity(CHUNK, file);
        let mut sealed = Vec::new();
        while let Some(chunk) = rx.blocking_recv() {
            self.md5.update(&chunk);
            self.hasher.update(&chunk);
            match self.sealer.as_mut() {
                Some(s) => {
                    sealed.clear();
                    s.update(&chunk, &mut sealed).map_err(io::Error::other)?;
                    Self::on_disk(&mut self.crc, &mut self.table, &sealed, &mut out)?;
                }
                None => Self::on_disk(&mut self.crc, &mut self.table, &chunk, &mut out)?,
            }
        }
        if let Some(s) = self.sealer.take() {
            sealed.clear();
            s.finish(&mut sealed).map_err(io::Error::other)?;
            Self::on_disk(&mut self.crc, &mut self.table, &sealed, &mut out)?;
        }
        crash_point(CrashPoint::BlobWritten);
        if let Some(t) = self.table {
            out.write_all(&t.finish())?;
        }
        let file = out.into_inner().map_err(|e| e.into_error())?;
        crash_point(CrashPoint::BlobTableWritten);
        file.sync_all()?;
        crash_point(CrashPoint::BlobSynced);
        Ok((self.md5, self.crc, self.hasher))
    }

    /// Every byte of the file's data goes through here.
    fn on_disk(
        crc: &mut crc_fast::Digest,
        table: &mut Option<TableBuilder>,
        bytes: &[u8],
        out: &mut io::BufWriter<File>,
    ) -> io::Result<()> {
        crc.update(bytes);
        if let Some(t) = table.as_mut() {
            t.update(bytes);
        }
        out.write_all(bytes)
    }
}

/// The async half of an ingest: reads the rest of the body (bounded by `max_size` and the
/// idle timeout) and hands it to the writer in `CHUNK`-sized pieces. A writer that failed
/// closes the channel; its error is the one reported.
async fn feed_writer<S, E>(
    body: &mut S,
    mut pending: BytesMut,
    tx: &tokio::sync::mpsc::Sender<Bytes>,
    size: &mut u64,
    max_size: u64,
    idle: std::time::Duration,
) -> Result<(), IngestError>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    while let Some(chunk) = next_chunk(body, idle).await? {
        let chunk = chunk.map_err(|e| IngestError::Body(e.to_string()))?;
        *size += chunk.len() as u64;
        if *size > max_size {
            return Err(IngestError::TooLarge);
        }
        pending.extend_from_slice(&chunk);
        if pending.len() >= CHUNK {
            let full = pending.split().freeze();
            if tx.send(full).await.is_err() {
                return Ok(());
            }
        }
    }
    if !pending.is_empty() {
        let _ = tx.send(pending.freeze()).await;
    }
    Ok(())
}
