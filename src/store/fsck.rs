//! Offline consistency check: every blob an object or part references exists with its
//! recorded size (data plus block table), and unreferenced blobs are removed. Content
//! checksums are `scrub`'s job; fsck counts the legacy blobs (no block table) that
//! `strata fsck --repair` / `strata scrub --repair` upgrade ([`super::repair`]).

use super::{Store, StoreError};

#[derive(Debug, Default)]
pub struct FsckReport {
    pub objects: u64,
    pub parts: u64,
    pub problems: Vec<String>,
    pub orphans_removed: u64,
    /// Referenced blobs without a block table.
    pub legacy_blobs: u64,
}

fn check_blob(store: &Store, what: &str, blob: &super::records::BlobRef, report: &mut FsckReport) {
    if blob.block_size.is_none() {
        report.legacy_blobs += 1;
    }
    match std::fs::metadata(store.blobs.blob_path(blob)) {
        Ok(m) if blob.file_len_ok(m.len()) => {}
        Ok(m) => report.problems.push(format!(
            "{what}: blob {} has {} bytes, expected {}",
            blob.id,
            m.len(),
            blob.stored_size()
        )),
        Err(e) => report
            .problems
            .push(format!("{what}: blob {} unreadable: {e}", blob.id)),
    }
}

/// `progress` is called after each object and part with the number checked so far.
pub fn check(store: &Store, mut progress: impl FnMut(u64)) -> Result<FsckReport, StoreError> {
    let mut report = FsckReport::default();
    for (bucket, _) in store.meta.buckets()? {
        for item in store.meta.scan_all_versions(&bucket) {
            let (key, rec) = item?;
            report.objects += 1;
            for blob in rec.blobs() {
                check_blob(store, &format!("{bucket}/{key}"), blob, &mut report);
            }
            progress(report.objects);
        }
    }
    for part in store.meta.all_parts() {
        let part = part?;
        report.parts += 1;
        check_blob(store, "upload part", &part.blob, &mut report);
        progress(report.objects + report.parts);
    }
    report.orphans_removed = store.sweep_orphans()?.orphans_removed;
    Ok(report)
}
