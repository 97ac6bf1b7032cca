//! `--repair` of `strata scrub` and `strata fsck` (offline): gives every legacy blob (written
//! before block tables) its table, and rewrites the damaged table of a blob whose data still
//! matches its CRC-64 (scrub tells those apart). Rotten data cannot be repaired (there is one
//! copy): scrub names it, and the object must be deleted or restored from a backup.
//!
//! Per blob: read it whole, checking the whole-blob checksum (CRC-64, or MD5 for the oldest)
//! while computing the table → `<id>.repair` beside it: the data, then the table, fsynced →
//! renamed over the blob (same id: an encrypted blob's key is derived from it), directory
//! fsynced → the record's `block_size` set, inside the write gate, only if the record still
//! holds that blob → flushed. The data bytes never move, so a reader of either record reads
//! the same bytes; a crash after the rename leaves a legacy record whose file already has
//! its table, which [`BlobRef::file_len_ok`] accepts and the next `--repair` completes.
//! An encrypted legacy blob without a CRC-64 cannot be checked without keys and is left
//! as it is (AES-GCM still authenticates every read of it).

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};

use super::blob::fsync_dir;
use super::integrity::{verify_reader, BLOCK};
use super::records::{decode, encode, BlobRef, ObjectData, ObjectRecord, PartRecord};
use super::{Store, StoreError};

#[derive(Debug, Default)]
pub struct RepairReport {
    /// Legacy blobs that got their block table.
    pub upgraded: u64,
    /// Blobs whose damaged table was rewritten.
    pub tables_rebuilt: u64,
    /// What could not be repaired, one line each.
    pub problems: Vec<String>,
}

/// Rewrites `blob`'s file as its verified data followed by a fresh table. `Err`: left as it
/// was, with why.
fn rebuild(store: &Store, blob: &BlobRef) -> Result<(), String> {
    let path = store.blobs.blob_path(blob);
    let tmp = path.with_file_name(format!("{}.repair", blob.id));
    let result = (|| -> io::Result<Result<(), String>> {
        let mut src = File::open(&path)?;
        let mut dst = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
        let data_len = blob.data_len();
        let mut written = 0u64;
        let report = verify_reader(
            blob,
            &mut src,
            |bytes| {
                // Only the data: whatever table the file had is replaced.
                let take = (data_len.saturating_sub(written) as usize).min(bytes.len());
                written += take as u64;
                dst.write_all(&bytes[..take])
            },
            |_| {},
        )?;
        if written != data_len {
            return Ok(Err(format!("blob {} is shorter than recorded", blob.id)));
        }
        match report.whole_ok {
            Some(true) => {}
            Some(false) => {
                return Ok(Err(format!(
                    "blob {} does not match its checksum: its data is damaged and cannot be repaired",
                    blob.id
                )))
            }
            None => {
                return Ok(Err(format!(
                    "blob {} is encrypted and has no CRC-64: it cannot be checked without keys; left as it is",
                    blob.id
                )))
            }
        }
        dst.write_all(&report.computed)?;
        dst.sync_all()?;
        drop(dst);
        fs::rename(&tmp, &path)?;
        if let Some(dir) = path.parent() {
            fsync_dir(dir)?;
        }
        Ok(Ok(()))
    })();
    match result {
        Ok(Ok(())) => Ok(()),
        Ok(Err(why)) => {
            let _ = fs::remove_file(&tmp);
            Err(why)
        }
        Err(e) => {
            let _ = fs::remove_file(&tmp);
            Err(format!("blob {}: {e}", blob.id))
        }
    }
}

/// Repairs every legacy blob, and the blobs in `damaged_tables`, of every object version and
/// upload part; `progress` is called with the blobs repaired so far.
pub fn repair(
    store: &Store,
    damaged_tables: &HashSet<String>,
    mut progress: impl FnMut(u64),
) -> Result<RepairReport, StoreError> {
    let mut report = RepairReport::default();
    let meta = &store.meta;
    for (tree, parts) in [(&meta.objects, false), (&meta.versions, false), (&meta.parts, true)] {
        for item in tree.iter() {
            let (k, v) = item?;
            let blobs: Vec<BlobRef> = if parts {
                vec![decode::<PartRecord>(&v)?.blob]
            } else {
                decode::<ObjectRecord>(&v)?.blobs().to_vec()
            };
            let mut upgraded: Vec<String> = Vec::new();
            for b in &blobs {
                let legacy = b.block_size.is_none();
                if !legacy && !damaged_tables.contains(&b.id) {
                    continue;
                }
                match rebuild(store, b) {
                    Ok(()) if legacy => {
                        report.upgraded += 1;
                        upgraded.push(b.id.clone());
                    }
                    Ok(()) => report.tables_rebuilt += 1,
                    Err(why) => report.problems.push(why),
                }
                progress(report.upgraded + report.tables_rebuilt);
            }
            if upgraded.is_empty() {
                continue;
            }
            let flip = |b: &mut BlobRef| {
                if upgraded.contains(&b.id) && b.block_size.is_none() {
                    b.block_size = Some(BLOCK);
                }
            };
            let new = if parts {
                let mut p: PartRecord = decode(&v)?;
                flip(&mut p.blob);
                encode(&p)?
            } else {
                let mut r: ObjectRecord = decode(&v)?;
                if let ObjectData::Blobs(bs) = &mut r.data {
                    bs.iter_mut().for_each(flip);
                }
                encode(&r)?
            };
            if !meta.replace_record(tree, &k, &v, new)? {
                report.problems.push(format!(
                    "a record changed during the repair: run it again ({upgraded:?})"
                ));
            }
        }
    }
    meta.flush_blocking()?;
    Ok(report)
}
