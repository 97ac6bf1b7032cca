//! `strata scrub`: reads every stored byte and checks it against the checksum recorded when
//! it was written (each blob's MD5; inline objects against their ETag), so bitrot is found
//! before a client asks for the object.

use std::io::Read;

use md5::{Digest, Md5};

use super::records::{BlobRef, ObjectData};
use super::{Store, StoreError};

#[derive(Debug, Default)]
pub struct ScrubReport {
    pub objects: u64,
    pub bytes: u64,
    /// One line per corrupt or unreadable object: bucket/key, version and what is wrong.
    pub corrupt: Vec<String>,
}

fn blob_ok(store: &Store, blob: &BlobRef) -> Result<(), String> {
    let mut f =
        std::fs::File::open(store.blobs.blob_path(blob)).map_err(|e| format!("blob {} unreadable: {e}", blob.id))?;
    let mut check = super::blob::BlobCheck::for_blob(blob);
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = f
            .read(&mut buf)
            .map_err(|e| format!("blob {} read error: {e}", blob.id))?;
        if n == 0 {
            break;
        }
        check.update(&buf[..n]);
        total += n as u64;
    }
    if total != blob.stored_size() {
        return Err(format!(
            "blob {} has {total} bytes, expected {}",
            blob.id,
            blob.stored_size()
        ));
    }
    if !check.matches(blob) {
        return Err(format!("blob {} does not match its checksum", blob.id));
    }
    Ok(())
}

/// Verifies every object; `progress` is called after each one with (done, bytes so far).
pub fn scrub(store: &Store, mut progress: impl FnMut(u64, u64)) -> Result<ScrubReport, StoreError> {
    let mut report = ScrubReport::default();
    for (bucket, _) in store.meta.buckets()? {
        for item in store.meta.scan_all_versions(&bucket) {
            let (key, rec) = item?;
            report.objects += 1;
            report.bytes += rec.size;
            let problem = match &rec.data {
                ObjectData::Inline(bytes) => {
                    let digest = hex::encode(Md5::digest(bytes));
                    (rec.parts_count.is_none() && digest != rec.etag)
                        .then(|| "inline data does not match its ETag".to_string())
                }
                ObjectData::Blobs(blobs) => blobs.iter().find_map(|b| blob_ok(store, b).err()),
            };
            if let Some(p) = problem {
                report
                    .corrupt
                    .push(format!("{bucket}/{key} (version {}): {p}", rec.version_id));
            }
            progress(report.objects, report.bytes);
        }
    }
    Ok(report)
}
