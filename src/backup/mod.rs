//! `strata backup` and `strata restore`: a consistent point-in-time copy of a data dir, taken
//! while the server runs (or offline, through the same code).
//!
//! Blobs are immutable and their ids never reused, so a backup is a snapshot of the metadata
//! ([`MetaStore::snapshot`], which briefly holds off metadata writes) plus a copy of every
//! blob that snapshot references. While it runs, the store's deferred blob unlinks are held
//! back ([`BlobStore::hold_unlinks`]) so nothing the snapshot references disappears. Blobs
//! already in the target with the right size are skipped (incremental backups), and ones the
//! new snapshot no longer references are removed at the end. `manifest.json` is written last.
//! Every blob copied is verified on the way (its block table and whole-blob checksum, in both
//! directions): a backup stops at a blob that fails (reported as bitrot; the object is named),
//! rather than put rotten bytes into a backup, and a restore refuses one.
//!
//! The master key file (SSE) is deliberately not part of a backup: the operator keeps it
//! separately, so a stolen backup does not come with the key to its encrypted objects.

pub mod dump;

use std::collections::{BTreeMap, HashSet};
use std::fs::{self, File};
use std::io;
use std::path::{Component, Path, PathBuf};
use std::time::Instant;

use serde::Serialize;

use crate::store::bitrot::ObjectAt;
use crate::store::blob::{copy_verified, fsync_dir, sharded, UnlinkHold};
use crate::store::records::{decode, BlobRef, ObjectRecord, PartRecord, UploadRecord};
use crate::store::{BlobStore, MetaStore, Store, StoreError};
use dump::{DumpWriter, Manifest, DUMP, MANIFEST};

/// The data dir's generated root key (`crate::auth::keys`), carried along so a restored
/// server keeps it.
const ROOT_CREDENTIALS: &str = "root-credentials.toml";
/// Entries a Strata backup dir may hold (anything else means it is not one of ours).
const BACKUP_ENTRIES: [&str; 7] = [
    MANIFEST,
    "manifest.json.tmp",
    DUMP,
    "meta.dump.tmp",
    "blobs",
    ROOT_CREDENTIALS,
    "root-credentials.toml.tmp",
];
/// Entries loaded into sled per batch on restore.
const IMPORT_BATCH: usize = 10_000;
/// Test hook: milliseconds to sleep before copying each blob, so tests can act mid-copy.
const COPY_DELAY_ENV: &str = "STRATA_TEST_BACKUP_BLOB_DELAY_MS";

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("a backup is already running")]
    Busy,
    #[error("{0}")]
    Target(String),
    #[error("{0}")]
    Refused(String),
    #[error("I/O error: {0}")]
    Io(#[from] io::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A progress report (one NDJSON line of the admin API's response).
#[derive(Serialize, serde::Deserialize, Debug, Clone)]
#[serde(tag = "phase", rename_all = "snake_case")]
pub enum Progress {
    Metadata,
    Blobs { done: u64, total: u64, bytes: u64 },
    Done { summary: String },
    Error { message: String },
}

/// What a backup did (its `Display` is the CLI's summary line).
#[derive(Debug, Clone, Serialize)]
pub struct BackupSummary {
    pub to: String,
    pub snapshot_time: String,
    pub objects: u64,
    pub versions: u64,
    pub blobs: u64,
    pub copied: u64,
    pub already_there: u64,
    pub removed: u64,
    pub bytes_copied: u64,
    pub secs: f64,
    pub pause_ms: f64,
}

impl std::fmt::Display for BackupSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "backup to {}: snapshot at {}, {} objects ({} versions), {} blobs ({} copied, {} already there), {} bytes copied in {:.1} s (metadata pause {:.1} ms)",
            self.to,
            self.snapshot_time,
            self.objects,
            self.versions,
            self.blobs,
            self.copied,
            self.already_there,
            self.bytes_copied,
            self.secs,
            self.pause_ms
        )
    }
}

/// What a dump references: blobs and record counts.
#[derive(Default)]
struct Contents {
    blobs: BTreeMap<String, BlobRef>,
    /// Which object version each object blob belongs to (for reporting a bad one).
    owners: BTreeMap<String, ObjectAt>,
    objects: u64,
    versions: u64,
    encrypted: u64,
}

impl Contents {
    fn add(&mut self, tree: &[u8], key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        match tree {
            b"objects" | b"versions" => {
                let rec: ObjectRecord = decode(value)?;
                // objects: bucket NUL key; versions: bucket NUL key NUL seq (8 bytes).
                let (bucket, rest) = key.split_at(key.iter().position(|&b| b == 0).unwrap_or(key.len()));
                let rest = rest.get(1..).unwrap_or_default();
                let name = if tree == b"versions" {
                    rest.get(..rest.len().saturating_sub(9)).unwrap_or_default()
                } else {
                    rest
                };
                for b in rec.blobs() {
                    self.owners.insert(
                        b.id.clone(),
                        ObjectAt {
                            bucket: String::from_utf8_lossy(bucket).into_owned(),
                            key: String::from_utf8_lossy(name).into_owned(),
                            version_id: rec.version_id.clone(),
                        },
                    );
                }
                self.versions += 1;
                if tree == b"objects" && !rec.delete_marker {
                    self.objects += 1;
                }
                if rec.encryption.is_some() {
                    self.encrypted += 1;
                }
                for b in rec.blobs() {
                    self.blobs.insert(b.id.clone(), b.clone());
                }
            }
            b"parts" => {
                let part: PartRecord = decode(value)?;
                self.blobs.insert(part.blob.id.clone(), part.blob);
            }
            b"uploads" => {
                let up: UploadRecord = decode(value)?;
                if up.encryption.is_some() {
                    self.encrypted += 1;
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn of_dump(path: &Path) -> Result<(Self, u64), BackupError> {
        let mut c = Contents::default();
        let next_seq = dump::read_dump(path, |t, entry| match entry {
            Some((k, v)) => c.add(t, &k, &v).map_err(io::Error::other),
            None => Ok(()),
        })?;
        Ok((c, next_seq))
    }
}

/// `path` with `.` and `..` resolved against the longest existing ancestor (which is
/// canonicalized, following symlinks).
fn resolve(path: &Path) -> io::Result<PathBuf> {
    let mut existing = path.to_path_buf();
    let mut rest = Vec::new();
    while !existing.exists() {
        match (existing.file_name(), existing.parent()) {
            (Some(name), Some(parent)) => {
                rest.push(name.to_os_string());
                existing = parent.to_path_buf();
            }
            _ => break,
        }
    }
    let mut out = existing.canonicalize()?;
    for name in rest.into_iter().rev() {
        out.push(name);
    }
    Ok(out)
}

/// Checks a backup target: absolute, outside the data dir, and empty, absent or a (possibly
/// interrupted) Strata backup.
pub fn check_target(to: &Path, data_dir: &Path) -> Result<(), BackupError> {
    if !to.is_absolute() || to.components().any(|c| matches!(c, Component::ParentDir)) {
        return Err(BackupError::Target(format!(
            "backup target {} must be an absolute path without '..'",
            to.display()
        )));
    }
    let target = resolve(to)?;
    let data = resolve(data_dir)?;
    if target.starts_with(&data) || data.starts_with(&target) {
        return Err(BackupError::Target(format!(
            "backup target {} overlaps the data dir {}",
            to.display(),
            data_dir.display()
        )));
    }
    match fs::read_dir(&target) {
        Ok(entries) => {
            for e in entries {
                let name = e?.file_name();
                if !BACKUP_ENTRIES.iter().any(|b| name == *b) {
                    return Err(BackupError::Target(format!(
                        "backup target {} is neither empty nor a Strata backup (it holds {})",
                        to.display(),
                        name.to_string_lossy()
                    )));
                }
            }
            Ok(())
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotADirectory => Err(BackupError::Target(format!(
            "backup target {} is not a directory",
            to.display()
        ))),
        Err(e) => Err(e.into()),
    }
}

/// A backup that has passed its checks and holds the store's blob unlinks.
pub struct Backup {
    store: Store,
    to: PathBuf,
    _hold: UnlinkHold,
}

/// Where a blob lives inside a backup dir (same `ab/<id>` sharding as the data dir).
fn backup_blob_path(to: &Path, id: &str) -> PathBuf {
    sharded(&to.join("blobs"), id)
}

impl Backup {
    /// Validates `to` and takes the store's unlink hold (`Busy` if a backup is running).
    pub fn start(store: &Store, to: &Path) -> Result<Self, BackupError> {
        check_target(to, &store.data_dir)?;
        let hold = store.blobs.hold_unlinks().ok_or(BackupError::Busy)?;
        Ok(Self {
            store: store.clone(),
            to: to.to_path_buf(),
            _hold: hold,
        })
    }

    /// Runs the backup (blocking). Dropping `self` afterwards releases the held unlinks.
    pub fn run(self, progress: &mut dyn FnMut(Progress)) -> Result<BackupSummary, BackupError> {
        let started = Instant::now();
        let to = &self.to;
        fs::create_dir_all(to.join("blobs"))?;
        if let Some(parent) = to.parent() {
            fsync_dir(parent)?;
        }
        // An old manifest must not vouch for the dump about to replace its own.
        match fs::remove_file(to.join(MANIFEST)) {
            Ok(()) => fsync_dir(to)?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }

        progress(Progress::Metadata);
        let snapshot_time = time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        let tmp = to.join("meta.dump.tmp");
        let mut writer = DumpWriter::create(&tmp)?;
        // The write pause: only the copy of the metadata into the (buffered) dump file.
        let info = self
            .store
            .meta
            .snapshot(|item| writer.item(item).map_err(StoreError::Io))?;
        let (sha, trees) = writer.finish()?;
        fs::rename(&tmp, to.join(DUMP))?;
        fsync_dir(to)?;
        let pause_ms = info.pause.as_secs_f64() * 1000.0;
        tracing::info!(pause_ms, "backup: metadata snapshot taken");

        match fs::read(self.store.data_dir.join(ROOT_CREDENTIALS)) {
            Ok(bytes) => dump::write_durably(to, ROOT_CREDENTIALS, &bytes)?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => match fs::remove_file(to.join(ROOT_CREDENTIALS)) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e.into()),
                _ => {}
            },
            Err(e) => return Err(e.into()),
        }

        let (contents, _) = Contents::of_dump(&to.join(DUMP))?;
        let copy = copy_blobs(&self.store, to, &contents, progress)?;

        let manifest = Manifest {
            format_version: dump::FORMAT_VERSION,
            strata_version: env!("CARGO_PKG_VERSION").to_string(),
            snapshot_time: snapshot_time.clone(),
            trees,
            blob_count: contents.blobs.len() as u64,
            blob_bytes: contents.blobs.values().map(|b| b.stored_size()).sum(),
            meta_dump_sha256: sha,
        };
        let json = serde_json::to_vec_pretty(&manifest).map_err(io::Error::other)?;
        dump::write_durably(to, MANIFEST, &json)?;
        let removed = remove_unreferenced(to, &contents.blobs)?;

        Ok(BackupSummary {
            to: to.display().to_string(),
            snapshot_time,
            objects: contents.objects,
            versions: contents.versions,
            blobs: contents.blobs.len() as u64,
            copied: copy.copied,
            already_there: copy.present,
            removed,
            bytes_copied: copy.bytes,
            secs: started.elapsed().as_secs_f64(),
            pause_ms,
        })
    }
}

#[derive(Default)]
struct Copied {
    copied: u64,
    present: u64,
    bytes: u64,
}

/// Copies blob file `from` to `to` through `to.tmp` (verified, fsynced, renamed). A blob that
/// fails its checks is not copied: `Ok(Err(report))`, and `to` is untouched.
fn copy_file(from: &Path, to: &Path, blob: &BlobRef) -> io::Result<Result<u64, crate::store::integrity::FileReport>> {
    let tmp = to.with_extension("tmp");
    let mut src = File::open(from)?;
    let mut dst = File::create(&tmp)?;
    let report = copy_verified(&mut src, &mut dst, blob)?;
    if !report.ok(blob) {
        drop(dst);
        let _ = fs::remove_file(&tmp);
        return Ok(Err(report));
    }
    fs::rename(&tmp, to)?;
    Ok(Ok(report.len))
}

/// Progress lines at most this often (plus the last one).
const PROGRESS_EVERY: std::time::Duration = std::time::Duration::from_millis(200);

fn copy_blobs(
    store: &Store,
    to: &Path,
    contents: &Contents,
    progress: &mut dyn FnMut(Progress),
) -> Result<Copied, BackupError> {
    let blobs: &BlobStore = &store.blobs;
    let wanted = &contents.blobs;
    let delay = std::env::var(COPY_DELAY_ENV)
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .map(std::time::Duration::from_millis);
    let total = wanted.len() as u64;
    let mut out = Copied::default();
    let mut dirty: HashSet<PathBuf> = HashSet::new();
    let mut last = Instant::now();
    progress(Progress::Blobs {
        done: 0,
        total,
        bytes: 0,
    });
    for (i, (id, blob)) in wanted.iter().enumerate() {
        let dest = backup_blob_path(to, id);
        let size = blob.stored_size();
        if fs::metadata(&dest).map(|m| m.len() == size).unwrap_or(false) {
            out.present += 1;
        } else {
            if let Some(d) = delay {
                std::thread::sleep(d);
            }
            let dir = dest.parent().map(Path::to_path_buf).unwrap_or_else(|| to.to_path_buf());
            fs::create_dir_all(&dir)?;
            let copied = copy_file(&blobs.blob_path(blob), &dest, blob)
                .map_err(|e| io::Error::new(e.kind(), format!("blob {id}: {e}")))?;
            let n = match copied {
                Ok(n) => n,
                Err(report) => {
                    let owner = contents.owners.get(id);
                    if let (Some(c), Some(at)) = (report.corruption(blob), owner) {
                        crate::store::bitrot::report(&store.meta, at, &c, "backup", None);
                    }
                    let whose = owner
                        .map(|o| format!(" of {}/{} (version {})", o.bucket, o.key, o.version_id))
                        .unwrap_or_default();
                    return Err(BackupError::Refused(format!(
                        "blob {id}{whose} failed its checks in the data dir ({}); the backup stopped rather than copy it. \
                         Run `strata scrub`, then delete the object or restore it from an older backup",
                        report.problems(blob).join("; ")
                    )));
                }
            };
            dirty.insert(dir);
            out.copied += 1;
            out.bytes += n;
        }
        let done = i as u64 + 1;
        if last.elapsed() >= PROGRESS_EVERY || done == total {
            last = Instant::now();
            progress(Progress::Blobs {
                done,
                total,
                bytes: out.bytes,
            });
        }
    }
    for dir in &dirty {
        fsync_dir(dir)?;
    }
    fsync_dir(&to.join("blobs"))?;
    Ok(out)
}

/// Removes blob files of the backup dir that the current dump does not reference (blobs of
/// objects deleted since the previous backup, leftovers of an interrupted copy).
fn remove_unreferenced(to: &Path, wanted: &BTreeMap<String, BlobRef>) -> io::Result<u64> {
    let mut removed = 0;
    for shard in fs::read_dir(to.join("blobs"))? {
        let shard = shard?;
        if !shard.file_type()?.is_dir() {
            continue;
        }
        let mut changed = false;
        for entry in fs::read_dir(shard.path())? {
            let entry = entry?;
            let name = entry.file_name();
            if !wanted.contains_key(name.to_string_lossy().as_ref()) {
                fs::remove_file(entry.path())?;
                removed += 1;
                changed = true;
            }
        }
        if changed {
            fsync_dir(&shard.path())?;
        }
    }
    Ok(removed)
}

/// What a restore did (its `Display` is the CLI's summary line).
#[derive(Debug, Clone)]
pub struct RestoreSummary {
    pub from: String,
    pub data_dir: String,
    pub snapshot_time: String,
    pub objects: u64,
    pub versions: u64,
    pub blobs: u64,
    pub bytes: u64,
    pub encrypted: u64,
    pub secs: f64,
}

impl std::fmt::Display for RestoreSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "restore from {} into {}: snapshot at {}, {} objects ({} versions), {} blobs, {} bytes in {:.1} s",
            self.from,
            self.data_dir,
            self.snapshot_time,
            self.objects,
            self.versions,
            self.blobs,
            self.bytes,
            self.secs
        )
    }
}

/// Restores the backup in `from` into `data_dir` (which must be empty or absent; offline):
/// verifies the manifest and the dump's SHA-256, copies and verifies every blob, then loads
/// the metadata into a fresh database.
/// A restore writes only into an empty or absent data dir.
fn refuse_unless_empty(data_dir: &Path) -> Result<(), BackupError> {
    match fs::read_dir(data_dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(BackupError::Refused(format!(
                    "{} is not empty: restore only into an empty or new data dir",
                    data_dir.display()
                )));
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e.into()),
    }
    Ok(())
}

/// The backup's manifest and dump, the dump checked against the manifest's SHA-256, and
/// what the dump holds.
#[allow(clippy::type_complexity)] // four plain values, named at the one call site
fn verified_dump(
    from: &Path,
    progress: &mut dyn FnMut(Progress),
) -> Result<(dump::Manifest, PathBuf, Contents, u64), BackupError> {
    let manifest = dump::read_manifest(from).map_err(|e| BackupError::Refused(e.to_string()))?;
    let dump_path = from.join(DUMP);
    progress(Progress::Metadata);
    let sha = dump::sha256_file(&dump_path)?;
    if sha != manifest.meta_dump_sha256 {
        return Err(BackupError::Refused(format!(
            "{} does not match its manifest (SHA-256 {sha}, manifest says {}): the backup is damaged or was altered",
            dump_path.display(),
            manifest.meta_dump_sha256
        )));
    }
    let (contents, next_seq) =
        Contents::of_dump(&dump_path).map_err(|e| BackupError::Refused(format!("{}: {e}", dump_path.display())))?;
    Ok((manifest, dump_path, contents, next_seq))
}

/// Copies every blob the dump references back to its volume, each verified on the way (its
/// block table and whole-blob checksum), then fsyncs the directories. Returns the bytes copied.
fn restore_blobs(
    from: &Path,
    store: &Store,
    contents: &Contents,
    progress: &mut dyn FnMut(Progress),
) -> Result<u64, BackupError> {
    let total = contents.blobs.len() as u64;
    let mut bytes = 0u64;
    let mut last = Instant::now();
    let mut dirty: HashSet<PathBuf> = HashSet::new();
    for (i, (id, blob)) in contents.blobs.iter().enumerate() {
        let src = backup_blob_path(from, id);
        let size = blob.stored_size();
        let found = fs::metadata(&src).map(|m| m.len()).map_err(|e| {
            BackupError::Refused(format!("blob {id} is missing from the backup ({}): {e}", src.display()))
        })?;
        if !blob.file_len_ok(found) {
            return Err(BackupError::Refused(format!(
                "blob {id} has {found} bytes in the backup, its record says {size}"
            )));
        }
        // Each blob goes back to its volume (the cold one for STANDARD_IA/GLACIER), checked
        // against its block table and whole-blob checksum (sealed blobs without a CRC-64 only
        // by their table: their MD5 is of the plaintext).
        let dest = store.blobs.blob_path(blob);
        match copy_file(&src, &dest, blob)? {
            Ok(n) => bytes += n,
            Err(report) => {
                return Err(BackupError::Refused(format!(
                    "blob {id} in the backup does not match its checksum ({})",
                    report.problems(blob).join("; ")
                )))
            }
        }
        if let Some(dir) = dest.parent() {
            dirty.insert(dir.to_path_buf());
        }
        let done = i as u64 + 1;
        if last.elapsed() >= PROGRESS_EVERY || done == total {
            last = Instant::now();
            progress(Progress::Blobs { done, total, bytes });
        }
    }
    for dir in &dirty {
        fsync_dir(dir)?;
    }
    Ok(bytes)
}

pub fn restore(
    from: &Path,
    data_dir: &Path,
    opts: &crate::store::StoreOptions,
    progress: &mut dyn FnMut(Progress),
) -> Result<RestoreSummary, BackupError> {
    let started = Instant::now();
    refuse_unless_empty(data_dir)?;
    let (manifest, dump_path, contents, next_seq) = verified_dump(from, progress)?;
    let store = Store::open(data_dir, opts)?;
    let total = contents.blobs.len() as u64;
    let bytes = restore_blobs(from, &store, &contents, progress)?;
    match fs::read(from.join(ROOT_CREDENTIALS)) {
        Ok(bytes) => dump::write_durably(data_dir, ROOT_CREDENTIALS, &bytes)?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e.into()),
    }
    load_dump(&store.meta, &dump_path)?;
    // A backup from before the per-bucket upload index has none: build it now.
    store.meta.ensure_upload_index()?;
    store.meta.raise_seq_floor(next_seq)?;
    store.meta.flush_blocking()?;
    Ok(RestoreSummary {
        from: from.display().to_string(),
        data_dir: data_dir.display().to_string(),
        snapshot_time: manifest.snapshot_time,
        objects: contents.objects,
        versions: contents.versions,
        blobs: total,
        bytes,
        encrypted: contents.encrypted,
        secs: started.elapsed().as_secs_f64(),
    })
}

/// Loads every tree of the dump into `meta`, in batches.
fn load_dump(meta: &MetaStore, path: &Path) -> Result<(), BackupError> {
    let mut batch: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    let mut tree: Vec<u8> = Vec::new();
    let flush = |tree: &[u8], batch: &mut Vec<(Vec<u8>, Vec<u8>)>| -> io::Result<()> {
        if !batch.is_empty() {
            meta.import(tree, std::mem::take(batch)).map_err(io::Error::other)?;
        }
        Ok(())
    };
    dump::read_dump(path, |name, entry| match entry {
        None => {
            flush(&tree, &mut batch)?;
            tree = name.to_vec();
            meta.import(name, Vec::new()).map_err(io::Error::other)
        }
        Some(kv) => {
            batch.push(kv);
            if batch.len() >= IMPORT_BATCH {
                flush(&tree, &mut batch)?;
            }
            Ok(())
        }
    })?;
    flush(&tree, &mut batch)?;
    Ok(())
}
