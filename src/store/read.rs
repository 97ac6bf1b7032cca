//! Verified reads of stored bytes at any offset: [`BlobStore::read_range`] (plain blobs) and
//! [`BlobStore::read_range_sealed`] (encrypted ones). Nothing is yielded before it is checked:
//!
//! - a blob with a block table ([`super::integrity`]): each step reads the whole blocks that
//!   cover the next piece of the range (aligned reads, at most [`CHUNK`] bytes), checks every
//!   block against its table entry, and yields only the requested bytes of them;
//! - a legacy blob (no table) read whole: streamed and checked against its whole-blob checksum,
//!   which is known only at its end, so a mismatch ends the stream before the blob's last chunk
//!   (the response is cut short);
//! - a legacy blob read in part: one streaming pass over the whole blob first verifies it and
//!   computes its block table in memory (4 bytes per 64 KiB), then the range is served as for a
//!   blob with a table. That costs a read of the whole blob per ranged read, until
//!   `strata scrub --repair` (or `fsck --repair`) gives the blob its table;
//! - an encrypted blob: every AES-GCM segment is authenticated as it is decrypted (its table,
//!   over the ciphertext, is for scrub and copies, which have no keys).
//!
//! A failed check ends the stream with an `io::Error` carrying a
//! [`Corruption`](super::integrity::Corruption) ([`super::integrity::corruption_of`]); reporting it,
//! with the object's name, is the caller's ([`super::bitrot`]).

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use futures::Stream;

use super::blob::{BlobStore, CHUNK};
use super::crypto::{segments, BlobCipher, Key256, SEGMENT, TAG};
use super::integrity::{check_blocks, BlobCheck, Corruption, Failure, TableBuilder, BLOCK, ENTRY};
use super::records::BlobRef;

/// Fills `buf` from `offset` of `file`; a file that ends first is a short (corrupt) blob.
fn read_exact_at(file: &File, blob: &BlobRef, buf: &mut [u8], offset: u64) -> io::Result<()> {
    let mut filled = 0;
    while filled < buf.len() {
        let at = offset + filled as u64;
        match file.read_at(&mut buf[filled..], at) {
            Ok(0) => {
                return Err(Corruption {
                    blob: blob.id.clone(),
                    failure: Failure::Short,
                    block: None,
                    offset: at,
                }
                .into())
            }
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Table entries read from the file at once (4 KiB: 64 MiB of data), so a sequential read
/// costs one table `pread` per 64 MiB rather than one per step.
const TABLE_READ: u64 = 1024;

/// How an open blob's bytes are checked.
enum Mode {
    /// Against the table at the end of the file; `cached` holds entries from block `first`.
    Table { block: u32, first: u64, cached: Vec<u8> },
    /// A legacy blob read whole: the whole-blob checksum, finished at its last byte.
    Whole(Option<Box<BlobCheck>>),
    /// A legacy blob read in part: against the table a verified pass computed.
    Computed { table: Arc<Vec<u8>> },
}

/// One blob being read.
struct Open {
    file: File,
    mode: Mode,
}

impl Open {
    /// Opens `blob` for reading; `whole`: the read covers all of it.
    fn new(path: PathBuf, blob: &BlobRef, whole: bool) -> io::Result<Self> {
        let file = File::open(path)?;
        let mode = match blob.block_size {
            Some(block) => Mode::Table {
                block,
                first: 0,
                cached: Vec::new(),
            },
            None if whole => Mode::Whole(Some(Box::new(BlobCheck::for_blob(blob)))),
            None => Mode::Computed {
                table: Arc::new(legacy_table(&file, blob)?),
            },
        };
        Ok(Self { file, mode })
    }

    /// The next verified bytes of `[offset, rel_end)` of the blob's data.
    fn read(&mut self, blob: &BlobRef, offset: u64, rel_end: u64) -> io::Result<Bytes> {
        let data_len = blob.data_len();
        // The block size, and table entries from block `.1.0` on.
        let (block, (base, table)): (u32, (u64, &[u8])) = match &mut self.mode {
            Mode::Whole(check) => {
                let want = (rel_end - offset).min(CHUNK as u64) as usize;
                let mut buf = vec![0u8; want];
                read_exact_at(&self.file, blob, &mut buf, offset)?;
                if let Some(c) = check.as_mut() {
                    c.update(&buf);
                }
                if offset + want as u64 >= data_len {
                    if let Some(c) = check.take() {
                        if !c.matches(blob) {
                            return Err(Corruption {
                                blob: blob.id.clone(),
                                failure: Failure::Whole,
                                block: None,
                                offset: 0,
                            }
                            .into());
                        }
                    }
                }
                return Ok(Bytes::from(buf));
            }
            Mode::Table { block, first, cached } => {
                // The blocks this step reads (as computed again below).
                let b = u64::from((*block).max(1));
                let step_first = offset / b;
                let step_end = (step_first * b + (CHUNK as u64 / b).max(1) * b)
                    .min(rel_end.div_ceil(b) * b)
                    .min(data_len);
                let step_last = step_end.div_ceil(b).max(step_first + 1);
                let have_last = *first + cached.len() as u64 / ENTRY;
                if step_first < *first || step_last > have_last {
                    // Refill from this step's first block: TABLE_READ entries, or what is left.
                    let total = super::integrity::blocks(data_len, *block);
                    let count = TABLE_READ
                        .max(step_last - step_first)
                        .min(total.saturating_sub(step_first));
                    cached.resize((count * ENTRY) as usize, 0);
                    read_exact_at(&self.file, blob, cached, data_len + step_first * ENTRY)?;
                    *first = step_first;
                }
                (*block, (*first, cached.as_slice()))
            }
            Mode::Computed { table } => (BLOCK, (0, table.as_slice())),
        };
        let b = u64::from(block.max(1));
        let first = offset / b;
        let aligned = first * b;
        let span = (CHUNK as u64 / b).max(1) * b;
        let aligned_end = (aligned + span).min(rel_end.div_ceil(b) * b).min(data_len);
        let mut buf = vec![0u8; (aligned_end - aligned) as usize];
        read_exact_at(&self.file, blob, &mut buf, aligned)?;
        let count = (aligned_end - aligned).div_ceil(b);
        let from = ((first - base) * ENTRY) as usize;
        let to = from + (count * ENTRY) as usize;
        // A missing entry fails the check below (a short table is a damaged blob).
        let entries = table.get(from..to).unwrap_or_default();
        check_blocks(&blob.id, block, first, &buf, entries)?;
        let buf = Bytes::from(buf);
        Ok(buf.slice((offset - aligned) as usize..(rel_end.min(aligned_end) - aligned) as usize))
    }
}

/// One pass over a legacy blob: checks it whole and returns the block table of its bytes.
fn legacy_table(file: &File, blob: &BlobRef) -> io::Result<Vec<u8>> {
    let mut check = BlobCheck::for_blob(blob);
    let mut table = TableBuilder::new(BLOCK);
    let mut buf = vec![0u8; 1 << 20];
    let mut at = 0u64;
    let len = blob.data_len();
    while at < len {
        let n = ((len - at) as usize).min(buf.len());
        read_exact_at(file, blob, &mut buf[..n], at)?;
        check.update(&buf[..n]);
        table.update(&buf[..n]);
        at += n as u64;
    }
    if !check.matches(blob) {
        return Err(Corruption {
            blob: blob.id.clone(),
            failure: Failure::Whole,
            block: None,
            offset: 0,
        }
        .into());
    }
    Ok(table.finish())
}

struct ReadState {
    blobs: Vec<BlobRef>,
    index: usize,
    blob_start: u64,
    pos: u64,
    end: u64,
    open: Option<Open>,
}

impl BlobStore {
    /// Streams bytes `[start, end)` of the concatenation of (unencrypted) `blobs`, every byte
    /// checked before it is yielded (see the module doc); a failed check ends the stream with
    /// an error carrying the [`Corruption`], so the HTTP response is refused or aborted.
    pub fn read_range(
        &self,
        blobs: Vec<BlobRef>,
        start: u64,
        end: u64,
    ) -> impl Stream<Item = Result<Bytes, io::Error>> + Send + Sync + 'static {
        let store = self.clone();
        let state = ReadState {
            blobs,
            index: 0,
            blob_start: 0,
            pos: start,
            end,
            open: None,
        };
        futures::stream::try_unfold((store, state), |(store, mut st)| async move {
            loop {
                if st.pos >= st.end || st.index >= st.blobs.len() {
                    return Ok(None);
                }
                let blob = st.blobs[st.index].clone();
                let blob_end = st.blob_start + blob.size;
                if st.pos >= blob_end {
                    st.index += 1;
                    st.blob_start = blob_end;
                    st.open = None;
                    continue;
                }
                let offset = st.pos - st.blob_start;
                let rel_end = blob_end.min(st.end) - st.blob_start;
                let open = st.open.take();
                let path = store.blob_path(&blob);
                let (chunk, open) = tokio::task::spawn_blocking(move || -> io::Result<_> {
                    let mut open = match open {
                        Some(o) => o,
                        None => Open::new(path, &blob, offset == 0 && rel_end == blob.size)?,
                    };
                    let chunk = open.read(&blob, offset, rel_end)?;
                    Ok((chunk, open))
                })
                .await
                .map_err(io::Error::other)??;
                if chunk.is_empty() {
                    return Err(io::Error::other("blob read made no progress"));
                }
                st.pos += chunk.len() as u64;
                if st.pos < blob_end {
                    st.open = Some(open);
                }
                return Ok(Some((chunk, (store, st))));
            }
        })
    }

    /// Streams plaintext bytes `[start, end)` of the concatenation of encrypted `blobs`,
    /// decrypting only the segments the range overlaps. A segment that fails authentication
    /// ends the stream with an error carrying the [`Corruption`], so the response is refused
    /// or aborted rather than completed.
    pub fn read_range_sealed(
        &self,
        blobs: Vec<BlobRef>,
        data_key: Key256,
        start: u64,
        end: u64,
    ) -> impl Stream<Item = Result<Bytes, io::Error>> + Send + Sync + 'static {
        /// Segments decrypted per read (1 MiB of plaintext): fewer blocking-pool round trips.
        const BATCH: u64 = 16;
        let store = self.clone();
        let state = (0usize, 0u64, start); // (blob index, blob's first byte in the object, position)
        futures::stream::try_unfold(
            (store, blobs, data_key, state),
            move |(store, blobs, key, st)| async move {
                let (mut index, mut blob_start, pos) = st;
                loop {
                    if pos >= end || index >= blobs.len() {
                        return Ok(None);
                    }
                    let blob = blobs[index].clone();
                    let blob_end = blob_start + blob.size;
                    if pos >= blob_end {
                        index += 1;
                        blob_start = blob_end;
                        continue;
                    }
                    let offset = pos - blob_start;
                    let first_seg = offset / SEGMENT as u64;
                    let total_segs = segments(blob.size);
                    // Never past the range's last segment: an intact range is served even when a
                    // later segment is damaged.
                    let range_segs = (end.min(blob_end) - blob_start)
                        .div_ceil(SEGMENT as u64)
                        .max(first_seg + 1);
                    let last_seg = (first_seg + BATCH).min(total_segs).min(range_segs) - 1;
                    let path = store.blob_path(&blob);
                    let k = key.clone();
                    let plain = tokio::task::spawn_blocking(move || -> io::Result<Vec<u8>> {
                        let file = File::open(path)?;
                        let cipher = BlobCipher::new(&k, &blob.id);
                        let seg_disk = (SEGMENT + TAG) as u64;
                        let from = first_seg * seg_disk;
                        let to = ((last_seg + 1) * seg_disk).min(blob.data_len());
                        let mut buf = vec![0u8; (to - from) as usize];
                        read_exact_at(&file, &blob, &mut buf, from)?;
                        // Decrypt each segment in place, then close the gaps its tags leave.
                        let mut plain_len = 0;
                        let mut at = 0;
                        let mut n = first_seg;
                        while at < buf.len() {
                            let seg_end = (at + SEGMENT + TAG).min(buf.len());
                            let len = cipher
                                .open_segment(n, n + 1 == total_segs, &mut buf[at..seg_end])
                                .map_err(|_| Corruption {
                                    blob: blob.id.clone(),
                                    failure: Failure::Segment,
                                    block: Some(n),
                                    offset: n * seg_disk,
                                })?;
                            buf.copy_within(at..at + len, plain_len);
                            plain_len += len;
                            at = seg_end;
                            n += 1;
                        }
                        buf.truncate(plain_len);
                        Ok(buf)
                    })
                    .await
                    .map_err(io::Error::other)??;
                    let batch_start = blob_start + first_seg * SEGMENT as u64;
                    let from = (pos - batch_start) as usize;
                    let until = ((end.min(blob_end) - batch_start) as usize).min(plain.len());
                    let plain = Bytes::from(plain);
                    let chunk = if from < until {
                        plain.slice(from..until)
                    } else {
                        Bytes::new()
                    };
                    let next = batch_start + until as u64;
                    if chunk.is_empty() {
                        return Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "blob is shorter than recorded",
                        ));
                    }
                    return Ok(Some((chunk, (store, blobs, key, (index, blob_start, next)))));
                }
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::integrity::{corruption_of, crc64};
    use futures::TryStreamExt;
    use md5::{Digest, Md5};

    /// A published blob holding `data`, with a table or (legacy) without.
    fn blob_file(store: &BlobStore, data: &[u8], table: bool) -> BlobRef {
        let id = BlobStore::new_id();
        let mut file = data.to_vec();
        if table {
            let mut t = TableBuilder::new(BLOCK);
            t.update(data);
            file.extend_from_slice(&t.finish());
        }
        std::fs::write(store.path(&id), &file).expect("write blob");
        let mut c = crc64();
        c.update(data);
        BlobRef {
            id,
            size: data.len() as u64,
            md5: Md5::digest(data).to_vec(),
            crc64: Some(c.finalize()),
            sealed: false,
            cold: false,
            block_size: table.then_some(BLOCK),
        }
    }

    async fn read(store: &BlobStore, blobs: &[BlobRef], start: u64, end: u64) -> io::Result<Vec<u8>> {
        store
            .read_range(blobs.to_vec(), start, end)
            .map_ok(|c| c.to_vec())
            .try_concat()
            .await
    }

    fn flip(store: &BlobStore, blob: &BlobRef, at: u64) {
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(store.path(&blob.id))
            .expect("open");
        let mut b = [0u8; 1];
        f.read_exact_at(&mut b, at).expect("read");
        f.write_all_at(&[b[0] ^ 0x40], at).expect("write");
    }

    #[tokio::test]
    async fn every_range_is_verified_and_intact_ranges_still_read() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = BlobStore::open(
            dir.path(),
            &dir.path().join("cold"),
            std::time::Duration::ZERO,
            std::time::Duration::from_secs(5),
        )
        .expect("open");
        let data: Vec<u8> = (0..1_000_003u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        for table in [true, false] {
            let a = blob_file(&store, &data[..600_000], table);
            let b = blob_file(&store, &data[600_000..], table);
            let blobs = vec![a.clone(), b.clone()];
            for (s, e) in [
                (0, 1_000_003),
                (1, 2),
                (65_535, 65_537),
                (599_999, 600_001),
                (700_000, 1_000_003),
            ] {
                assert_eq!(
                    read(&store, &blobs, s, e).await.expect("read"),
                    &data[s as usize..e as usize]
                );
            }
            // Rot in the second block of blob a (bytes 65536..131071).
            flip(&store, &a, 70_000);
            for (s, e) in [(0, 1_000_003), (70_000, 70_001), (65_536, 65_540), (0, 600_000)] {
                let err = read(&store, &blobs, s, e).await.expect_err("rotten range served");
                let c = corruption_of(&err).expect("a corruption error");
                assert_eq!(c.blob, a.id);
                if table {
                    assert_eq!((c.block, c.offset, c.failure), (Some(1), 65_536, Failure::Block));
                } else {
                    assert_eq!(c.failure, Failure::Whole);
                }
            }
            // Outside the bad block (with a table) or outside the bad blob (legacy): fine.
            let intact: &[(u64, u64)] = if table {
                &[(0, 65_536), (131_072, 1_000_003), (600_000, 600_010)]
            } else {
                &[(600_000, 1_000_003)]
            };
            for &(s, e) in intact {
                assert_eq!(
                    read(&store, &blobs, s, e).await.expect("intact read"),
                    &data[s as usize..e as usize]
                );
            }
        }
    }

    #[tokio::test]
    async fn a_damaged_table_or_a_short_file_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = BlobStore::open(
            dir.path(),
            &dir.path().join("cold"),
            std::time::Duration::ZERO,
            std::time::Duration::from_secs(5),
        )
        .expect("open");
        let data = vec![5u8; 200_000];
        let a = blob_file(&store, &data, true);
        flip(&store, &a, 200_000 + 4); // entry 1 of the table
        let err = read(&store, std::slice::from_ref(&a), 70_000, 70_100)
            .await
            .expect_err("bad table");
        assert_eq!(corruption_of(&err).and_then(|c| c.block), Some(1));
        assert_eq!(
            read(&store, std::slice::from_ref(&a), 0, 100).await.expect("block 0"),
            &data[..100]
        );
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(store.path(&a.id))
            .expect("open");
        f.set_len(150_000).expect("truncate");
        let err = read(&store, &[a], 0, 200_000).await.expect_err("short");
        assert_eq!(corruption_of(&err).map(|c| c.failure), Some(Failure::Short));
    }
}
