//! Scrub: reads every stored byte and checks it ([`super::integrity::FileVerifier`]: each
//! block against the blob's table, and the whole-blob checksum), so bitrot is found before a
//! client asks for the object. Offline as `strata scrub` (the report lists each bad block:
//! blob, block index, offset; `--repair` then runs [`super::repair`]), or in the background
//! of `serve` (`[scrub] background = true`), rate-limited to `bytes_per_sec`, with progress
//! in the `strata_scrub_*` metrics. Versions marked by a failed read (the `suspects` tree,
//! [`super::bitrot`]) are checked first, and their mark is cleared once checked.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use md5::{Digest, Md5};

use super::bitrot::ObjectAt;
use super::integrity::{verify_reader, FileReport};
use super::records::{BlobRef, ObjectData, ObjectRecord};
use super::{Store, StoreError};

/// How a scrub runs.
#[derive(Clone, Default)]
pub struct ScrubOptions {
    /// Read rate bound (bytes per second); 0: as fast as the disk goes.
    pub bytes_per_sec: u64,
    /// Beside a running server: blobs that vanish mid-scrub (deleted, transitioned) are
    /// skipped, and progress goes to the metrics.
    pub live: bool,
    /// Set to stop a run early (the report says so).
    pub stop: Option<Arc<AtomicBool>>,
}

#[derive(Debug, Default)]
pub struct ScrubReport {
    pub objects: u64,
    pub bytes: u64,
    /// One line per problem: bucket/key, version and what is wrong (each bad block).
    pub corrupt: Vec<String>,
    /// Corrupt object versions (and parts).
    pub corrupt_objects: u64,
    /// Blobs whose data matches its CRC-64 but whose block table does not (`--repair` rewrites it).
    pub damaged_tables: HashSet<String>,
    /// Blobs without a block table (`--repair` gives them one).
    pub legacy_blobs: u64,
    /// The run was stopped before the end.
    pub stopped: bool,
}

/// Sleeps as needed to keep reads at `rate` bytes per second.
struct Pacer {
    rate: u64,
    started: Instant,
    bytes: u64,
}

impl Pacer {
    fn pace(&mut self, n: usize) {
        self.bytes += n as u64;
        if self.rate == 0 {
            return;
        }
        let due = Duration::from_secs_f64(self.bytes as f64 / self.rate as f64);
        if let Some(wait) = due.checked_sub(self.started.elapsed()) {
            std::thread::sleep(wait);
        }
    }
}

struct Run<'a> {
    store: &'a Store,
    opts: &'a ScrubOptions,
    pacer: Pacer,
    report: ScrubReport,
}

enum BlobOutcome {
    Checked(FileReport),
    Unreadable(std::io::Error),
}

impl Run<'_> {
    fn stopped(&self) -> bool {
        self.opts.stop.as_ref().is_some_and(|s| s.load(Ordering::Relaxed))
    }

    fn check_blob(&mut self, blob: &BlobRef) -> BlobOutcome {
        let pacer = &mut self.pacer;
        let result = std::fs::File::open(self.store.blobs.blob_path(blob))
            .and_then(|mut f| verify_reader(blob, &mut f, |_| Ok(()), |n| pacer.pace(n)));
        match result {
            Ok(r) => BlobOutcome::Checked(r),
            Err(e) => BlobOutcome::Unreadable(e),
        }
    }

    /// Checks one version's bytes; returns whether it is intact.
    fn check_version(&mut self, at: &ObjectAt, rec: &ObjectRecord) -> bool {
        self.report.objects += 1;
        self.report.bytes += rec.size;
        let mut problems = Vec::new();
        let mut read = 0u64;
        match &rec.data {
            ObjectData::Inline(bytes) => {
                let digest = hex::encode(Md5::digest(bytes));
                if rec.parts_count.is_none() && digest != rec.etag {
                    problems.push("inline data does not match its ETag".to_string());
                }
            }
            ObjectData::Blobs(blobs) => {
                for blob in blobs {
                    if blob.block_size.is_none() {
                        self.report.legacy_blobs += 1;
                    }
                    match self.check_blob(blob) {
                        BlobOutcome::Checked(r) => {
                            read += r.len;
                            if r.ok(blob) {
                                continue;
                            }
                            if r.bad_count > 0 && r.whole_ok == Some(true) {
                                self.report.damaged_tables.insert(blob.id.clone());
                            }
                            if let Some(c) = r.corruption(blob) {
                                super::bitrot::report(&self.store.meta, at, &c, "scrub", None);
                            }
                            problems.extend(r.problems(blob));
                        }
                        BlobOutcome::Unreadable(e) if self.opts.live && self.vanished(at, rec, &e) => return true,
                        BlobOutcome::Unreadable(e) => problems.push(format!("blob {} unreadable: {e}", blob.id)),
                    }
                }
            }
        }
        for p in &problems {
            self.report
                .corrupt
                .push(format!("{}/{} (version {}): {p}", at.bucket, at.key, at.version_id));
        }
        if !problems.is_empty() {
            self.report.corrupt_objects += 1;
        }
        if self.opts.live {
            crate::metrics::global().scrubbed(read, problems.is_empty());
        }
        problems.is_empty()
    }

    /// A blob of a running server that could not be opened because its version was deleted
    /// or moved meanwhile (not a problem).
    fn vanished(&self, at: &ObjectAt, rec: &ObjectRecord, e: &std::io::Error) -> bool {
        e.kind() == std::io::ErrorKind::NotFound
            && !matches!(
                self.store.meta.version_by_internal_id(&at.bucket, &at.key, &at.version_id),
                Ok(Some(now)) if now.blobs() == rec.blobs()
            )
    }
}

/// Verifies every object version and upload part, marked ones first; `progress` is called
/// after each with (done, bytes so far).
pub fn scrub(
    store: &Store,
    opts: &ScrubOptions,
    mut progress: impl FnMut(u64, u64),
) -> Result<ScrubReport, StoreError> {
    let mut run = Run {
        store,
        opts,
        pacer: Pacer {
            rate: opts.bytes_per_sec,
            started: Instant::now(),
            bytes: 0,
        },
        report: ScrubReport::default(),
    };
    let mut done_first: HashSet<(String, String, String)> = HashSet::new();
    for s in store.meta.suspects()? {
        let at = ObjectAt {
            bucket: s.bucket.clone(),
            key: s.key.clone(),
            version_id: s.version_id.clone(),
        };
        if let Some(rec) = store.meta.version_by_internal_id(&s.bucket, &s.key, &s.version_id)? {
            if !rec.delete_marker {
                run.check_version(&at, &rec);
                progress(run.report.objects, run.report.bytes);
            }
        }
        store.meta.clear_suspect(&at)?;
        done_first.insert((s.bucket, s.key, s.version_id));
    }
    'buckets: for (bucket, _) in store.meta.buckets()? {
        for item in store.meta.scan_all_versions(&bucket) {
            if run.stopped() {
                run.report.stopped = true;
                break 'buckets;
            }
            let (key, rec) = item?;
            if rec.delete_marker || done_first.contains(&(bucket.clone(), key.clone(), rec.version_id.clone())) {
                continue;
            }
            let at = ObjectAt {
                bucket: bucket.clone(),
                key,
                version_id: rec.version_id.clone(),
            };
            run.check_version(&at, &rec);
            progress(run.report.objects, run.report.bytes);
        }
    }
    if !run.report.stopped {
        for part in store.meta.all_parts() {
            let part = part?;
            match run.check_blob(&part.blob) {
                BlobOutcome::Checked(r) if r.ok(&part.blob) => {}
                BlobOutcome::Checked(r) => {
                    run.report.corrupt_objects += 1;
                    for p in r.problems(&part.blob) {
                        run.report.corrupt.push(format!("upload part: {p}"));
                    }
                }
                BlobOutcome::Unreadable(e) if run.opts.live && e.kind() == std::io::ErrorKind::NotFound => {}
                BlobOutcome::Unreadable(e) => {
                    run.report.corrupt_objects += 1;
                    run.report
                        .corrupt
                        .push(format!("upload part: blob {} unreadable: {e}", part.blob.id));
                }
            }
        }
    }
    Ok(run.report)
}

/// The background scrub of `serve` (`[scrub]`): a thread that waits `startup_delay`, scrubs at
/// `bytes_per_sec`, records the run's end in the metrics, then waits `interval` and scrubs
/// again. It only reads (and marks/reports what it finds); repairs are offline.
pub fn spawn_background(store: Store, bytes_per_sec: u64, startup_delay: Duration, interval: Duration) {
    let spawned = std::thread::Builder::new()
        .name("strata-scrub".into())
        .spawn(move || {
            std::thread::sleep(startup_delay);
            let opts = ScrubOptions {
                bytes_per_sec,
                live: true,
                stop: None,
            };
            loop {
                let started = Instant::now();
                match scrub(&store, &opts, |_, _| {}) {
                    Ok(r) => {
                        let now = std::time::SystemTime::now()
                            .duration_since(std::time::UNIX_EPOCH)
                            .map(|d| d.as_secs_f64())
                            .unwrap_or(0.0);
                        crate::metrics::global().scrub_completed(now);
                        let level_ok = r.corrupt.is_empty();
                        if level_ok {
                            tracing::info!(
                                objects = r.objects,
                                bytes = r.bytes,
                                secs = started.elapsed().as_secs(),
                                "background scrub: all stored bytes verified"
                            );
                        } else {
                            tracing::warn!(
                                objects = r.objects,
                                corrupt = r.corrupt_objects,
                                "background scrub found corrupt objects (see the bitrot lines; run `strata scrub` offline for the list)"
                            );
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "background scrub failed; retrying after the interval"),
                }
                std::thread::sleep(interval);
            }
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "could not start the background scrub");
    }
}
