//! How stored bytes are checked: the block checksum table every blob file ends with, the
//! whole-blob checks of legacy blobs, and the verifiers every reader of blob bytes uses
//! (range reads, copies to the cold volume, backup, restore, scrub, repair).
//!
//! A blob file is `data ‖ table`. `data` is the object's bytes as stored (the plaintext, or
//! the sealed segments of an encrypted blob), contiguous, so offsets into it are the object's
//! offsets. `table` is one CRC32C (Castagnoli, `crc_fast::crc32_iscsi`: hardware CRC and
//! carry-less-multiply folding) per [`BLOCK`] bytes of `data` (the last block may be shorter),
//! little-endian u32s. The block size is in the blob's record ([`BlobRef::block_size`]), so the
//! table's offset (`data_len`) and length follow from the record; a record without one is a
//! legacy blob (written before tables), verified whole (its CRC-64/NVME, or for the oldest its
//! MD5). The table covers the bytes on disk, so verifying needs no keys.
//!
//! Why 64 KiB blocks and CRC32C: `cargo bench --bench blockcheck` (see ARCHITECTURE.md for
//! the figures) — a 4 KiB range read reads and checks one block, and a 64 KiB block costs
//! about as much to check as the syscall that reads it.

use std::io;

use md5::{Digest, Md5};

use super::records::BlobRef;

/// Bytes per block of the table written with every new blob.
pub const BLOCK: u32 = 64 * 1024;
/// Bytes per table entry (one little-endian CRC32C).
pub const ENTRY: u64 = 4;

/// Test hook: with `STRATA_TEST_LEGACY_BLOBS=1` in the server's environment, new blobs are
/// written the way versions before block tables wrote them (no table, `block_size: None`), so
/// tests can exercise legacy data directories. Never set in production.
pub const LEGACY_BLOBS_ENV: &str = "STRATA_TEST_LEGACY_BLOBS";

/// The block size new blobs get: [`BLOCK`], or none under [`LEGACY_BLOBS_ENV`].
pub fn new_blob_block_size() -> Option<u32> {
    static LEGACY: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let legacy = *LEGACY.get_or_init(|| std::env::var(LEGACY_BLOBS_ENV).is_ok_and(|v| v == "1"));
    (!legacy).then_some(BLOCK)
}

pub fn crc32c(bytes: &[u8]) -> u32 {
    crc_fast::crc32_iscsi(bytes)
}

/// Blocks of `data_len` bytes at `block` bytes each.
pub fn blocks(data_len: u64, block: u32) -> u64 {
    data_len.div_ceil(u64::from(block.max(1)))
}

/// Bytes of the table of `data_len` bytes of data.
pub fn table_len(data_len: u64, block: u32) -> u64 {
    blocks(data_len, block) * ENTRY
}

/// Entry `i` of a table slice.
pub fn entry(table: &[u8], i: usize) -> Option<u32> {
    let at = i * ENTRY as usize;
    table
        .get(at..at + ENTRY as usize)
        .and_then(|b| b.try_into().ok())
        .map(u32::from_le_bytes)
}

/// What failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// A block's CRC32C differs from its table entry.
    Block,
    /// A segment of an encrypted blob failed AES-GCM authentication.
    Segment,
    /// A legacy blob (no table) does not match its whole-blob checksum.
    Whole,
    /// The file is shorter than its record says.
    Short,
}

/// Stored bytes that failed their check: which blob, where. `offset` is the byte offset of
/// the bad block (or segment) in the blob file; 0 for a whole-blob mismatch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Corruption {
    pub blob: String,
    pub failure: Failure,
    /// Block (or segment) index, when known.
    pub block: Option<u64>,
    pub offset: u64,
}

impl std::fmt::Display for Corruption {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = match self.failure {
            Failure::Block => "checksum mismatch",
            Failure::Segment => "encrypted segment failed authentication",
            Failure::Whole => "blob does not match its checksum",
            Failure::Short => "blob is shorter than recorded",
        };
        match self.block {
            Some(b) => write!(f, "blob {} block {b} at offset {}: {what}", self.blob, self.offset),
            None => write!(f, "blob {}: {what}", self.blob),
        }
    }
}

impl std::error::Error for Corruption {}

impl From<Corruption> for io::Error {
    fn from(c: Corruption) -> Self {
        io::Error::new(io::ErrorKind::InvalidData, c)
    }
}

/// The corruption an I/O error of a blob read carries, if that is what it is.
pub fn corruption_of(e: &io::Error) -> Option<&Corruption> {
    e.get_ref().and_then(|inner| inner.downcast_ref::<Corruption>())
}

/// Checks consecutive blocks `first..` held in `data` (whole blocks, the last possibly short)
/// against their entries in `table` (entry 0 of `table` is block `first`).
pub fn check_blocks(blob: &str, block: u32, first: u64, data: &[u8], table: &[u8]) -> Result<(), Corruption> {
    for (i, chunk) in data.chunks(block as usize).enumerate() {
        if entry(table, i) != Some(crc32c(chunk)) {
            let n = first + i as u64;
            return Err(Corruption {
                blob: blob.to_string(),
                failure: Failure::Block,
                block: Some(n),
                offset: n * u64::from(block),
            });
        }
    }
    Ok(())
}

/// Builds a block table from bytes streamed in order (the ingest writer, repair).
pub struct TableBuilder {
    block: usize,
    digest: crc_fast::Digest,
    filled: usize,
    table: Vec<u8>,
}

impl TableBuilder {
    pub fn new(block: u32) -> Self {
        Self {
            block: block.max(1) as usize,
            digest: crc_fast::Digest::new(crc_fast::CrcAlgorithm::Crc32Iscsi),
            filled: 0,
            table: Vec::new(),
        }
    }

    pub fn update(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            let take = (self.block - self.filled).min(data.len());
            if self.filled == 0 && take == self.block {
                // A whole block in one piece: the one-shot function is the fast path.
                self.table.extend_from_slice(&crc32c(&data[..take]).to_le_bytes());
            } else {
                self.digest.update(&data[..take]);
                self.filled += take;
                if self.filled == self.block {
                    self.push_digest();
                }
            }
            data = &data[take..];
        }
    }

    fn push_digest(&mut self) {
        let crc = self.digest.finalize_reset() as u32;
        self.table.extend_from_slice(&crc.to_le_bytes());
        self.filled = 0;
    }

    /// The table (the last, short block included).
    pub fn finish(mut self) -> Vec<u8> {
        if self.filled > 0 {
            self.push_digest();
        }
        self.table
    }
}

pub fn crc64() -> crc_fast::Digest {
    crc_fast::Digest::new(crc_fast::CrcAlgorithm::Crc64Nvme)
}

/// Verifies a blob's data read from start to end: by its CRC-64 when recorded (the bytes on
/// disk), else by its MD5 (of the plaintext: only for unencrypted blobs).
pub enum BlobCheck {
    Crc64(crc_fast::Digest),
    Md5(Md5),
}

impl BlobCheck {
    pub fn for_blob(blob: &BlobRef) -> Self {
        match blob.crc64 {
            Some(_) => BlobCheck::Crc64(crc64()),
            None => BlobCheck::Md5(Md5::new()),
        }
    }

    /// `None` when the data on disk cannot be checked whole without keys (an encrypted blob
    /// without a CRC-64: its MD5 is of the plaintext).
    pub fn without_keys(blob: &BlobRef) -> Option<Self> {
        (blob.crc64.is_some() || !blob.sealed).then(|| Self::for_blob(blob))
    }

    pub fn update(&mut self, data: &[u8]) {
        match self {
            BlobCheck::Crc64(d) => d.update(data),
            BlobCheck::Md5(m) => m.update(data),
        }
    }

    pub fn matches(self, blob: &BlobRef) -> bool {
        match self {
            BlobCheck::Crc64(d) => Some(d.finalize()) == blob.crc64,
            BlobCheck::Md5(m) => m.finalize()[..] == blob.md5[..],
        }
    }
}

/// Most bad blocks one blob's report lists (the count is exact past it).
const MAX_LISTED: usize = 64;

/// Verifies a whole blob file fed in order (data, then the table): every block against the
/// table, and the data against the whole-blob checksum when there is one that needs no keys.
/// Memory: the table (4 bytes per 64 KiB: 320 KiB for a 5 GiB blob).
pub struct FileVerifier {
    blob: BlobRef,
    data_len: u64,
    pos: u64,
    table: Option<TableBuilder>,
    trailer: Vec<u8>,
    whole: Option<BlobCheck>,
}

/// What [`FileVerifier::finish`] found.
#[derive(Debug, Default)]
pub struct FileReport {
    /// Bytes the file had.
    pub len: u64,
    /// Bad blocks (index, offset): at most [`MAX_LISTED`]; `bad_count` is the full count.
    pub bad_blocks: Vec<(u64, u64)>,
    pub bad_count: u64,
    /// Whether the data matches the whole-blob checksum (`None`: none that needs no keys).
    pub whole_ok: Option<bool>,
    /// The table computed from the data.
    pub computed: Vec<u8>,
}

impl FileReport {
    pub fn length_ok(&self, blob: &BlobRef) -> bool {
        blob.file_len_ok(self.len)
    }

    /// Nothing wrong.
    pub fn ok(&self, blob: &BlobRef) -> bool {
        self.length_ok(blob) && self.bad_count == 0 && self.whole_ok != Some(false)
    }

    /// The first problem as a [`Corruption`] (for reporting), if any.
    pub fn corruption(&self, blob: &BlobRef) -> Option<Corruption> {
        let c = |failure, block, offset| Corruption {
            blob: blob.id.clone(),
            failure,
            block,
            offset,
        };
        if self.len < blob.data_len() {
            return Some(c(Failure::Short, None, self.len));
        }
        if let Some(&(i, off)) = self.bad_blocks.first() {
            return Some(c(Failure::Block, Some(i), off));
        }
        if self.whole_ok == Some(false) {
            return Some(c(Failure::Whole, None, 0));
        }
        None
    }

    /// One line per problem, for scrub's report.
    pub fn problems(&self, blob: &BlobRef) -> Vec<String> {
        let mut out = Vec::new();
        if !self.length_ok(blob) {
            out.push(format!(
                "blob {} has {} bytes, expected {}",
                blob.id,
                self.len,
                blob.stored_size()
            ));
        }
        for (i, off) in &self.bad_blocks {
            out.push(format!("blob {} block {i} at offset {off}: checksum mismatch", blob.id));
        }
        if self.bad_count > self.bad_blocks.len() as u64 {
            out.push(format!(
                "blob {}: {} more bad blocks",
                blob.id,
                self.bad_count - self.bad_blocks.len() as u64
            ));
        }
        match (self.whole_ok, self.bad_count) {
            // With bad blocks listed, the whole-blob mismatch says nothing more.
            (Some(false), 0) => out.push(format!("blob {} does not match its checksum", blob.id)),
            (Some(true), n) if n > 0 => out.push(format!(
                "blob {}: its data matches its CRC-64, so the block table is what is damaged (`--repair` rewrites it)",
                blob.id
            )),
            _ => {}
        }
        out
    }
}

impl FileVerifier {
    pub fn new(blob: &BlobRef) -> Self {
        Self {
            blob: blob.clone(),
            data_len: blob.data_len(),
            pos: 0,
            table: Some(TableBuilder::new(blob.block_size.unwrap_or(BLOCK))),
            trailer: Vec::new(),
            whole: BlobCheck::without_keys(blob),
        }
    }

    pub fn update(&mut self, mut bytes: &[u8]) {
        if self.pos < self.data_len {
            let take = ((self.data_len - self.pos) as usize).min(bytes.len());
            let data = &bytes[..take];
            if let Some(t) = self.table.as_mut() {
                t.update(data);
            }
            if let Some(w) = self.whole.as_mut() {
                w.update(data);
            }
            self.pos += take as u64;
            bytes = &bytes[take..];
        }
        if !bytes.is_empty() {
            // Keep no more of a trailer than a table can be (a longer file is reported by
            // its length alone).
            let room = (self.blob.table_len().max(table_len(self.data_len, BLOCK)) as usize)
                .saturating_sub(self.trailer.len());
            self.trailer.extend_from_slice(&bytes[..bytes.len().min(room)]);
            self.pos += bytes.len() as u64;
        }
    }

    pub fn finish(mut self) -> FileReport {
        let computed = self.table.take().map(TableBuilder::finish).unwrap_or_default();
        let mut report = FileReport {
            len: self.pos,
            whole_ok: self.whole.take().map(|w| w.matches(&self.blob)),
            ..Default::default()
        };
        if let Some(block) = self.blob.block_size {
            let n = blocks(self.data_len, block);
            for i in 0..n as usize {
                if entry(&computed, i) != entry(&self.trailer, i) {
                    report.bad_count += 1;
                    if report.bad_blocks.len() < MAX_LISTED {
                        report.bad_blocks.push((i as u64, i as u64 * u64::from(block)));
                    }
                }
            }
        }
        report.computed = computed;
        report
    }
}

/// Reads `file` to its end through a verifier, `io_chunk` bytes at a time, calling `sink` with
/// each chunk (a copy's destination) and `paced` with its length (rate limits). The one loop
/// for scrub, copies to the cold volume, backup and restore.
pub fn verify_reader(
    blob: &BlobRef,
    file: &mut impl io::Read,
    mut sink: impl FnMut(&[u8]) -> io::Result<()>,
    mut paced: impl FnMut(usize),
) -> io::Result<FileReport> {
    let mut v = FileVerifier::new(blob);
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        v.update(&buf[..n]);
        sink(&buf[..n])?;
        paced(n);
    }
    Ok(v.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blob(data: &[u8], block_size: Option<u32>) -> BlobRef {
        let mut c = crc64();
        c.update(data);
        BlobRef {
            id: "b".into(),
            size: data.len() as u64,
            md5: Md5::digest(data).to_vec(),
            crc64: Some(c.finalize()),
            sealed: false,
            cold: false,
            block_size,
        }
    }

    fn file_of(data: &[u8], block: u32) -> Vec<u8> {
        let mut t = TableBuilder::new(block);
        // Uneven pieces exercise the partial-block path.
        for piece in data.chunks(1000) {
            t.update(piece);
        }
        let mut out = data.to_vec();
        out.extend_from_slice(&t.finish());
        out
    }

    #[test]
    fn table_matches_one_shot_crcs_whatever_the_pieces() {
        let data: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let file = file_of(&data, 65536);
        let table = &file[data.len()..];
        assert_eq!(table.len() as u64, table_len(data.len() as u64, 65536));
        for (i, chunk) in data.chunks(65536).enumerate() {
            assert_eq!(entry(table, i), Some(crc32c(chunk)));
        }
        assert!(check_blocks("b", 65536, 0, &data, table).is_ok());
        let mut bad = data.clone();
        bad[131072 + 5] ^= 1;
        let err = check_blocks("b", 65536, 0, &bad, table).expect_err("bad block");
        assert_eq!((err.block, err.offset, err.failure), (Some(2), 131072, Failure::Block));
        assert!(TableBuilder::new(65536).finish().is_empty(), "empty data, empty table");
    }

    #[test]
    fn file_verifier_finds_every_bad_block_and_tells_table_from_data() {
        let data: Vec<u8> = (0..300_000u32).map(|i| (i % 253) as u8).collect();
        let b = blob(&data, Some(65536));
        let good = file_of(&data, 65536);
        let mut v = FileVerifier::new(&b);
        v.update(&good);
        let r = v.finish();
        assert!(r.ok(&b), "{:?}", r.problems(&b));

        let mut rotten = good.clone();
        rotten[10] ^= 1;
        rotten[200_000] ^= 1;
        let mut v = FileVerifier::new(&b);
        for piece in rotten.chunks(4096) {
            v.update(piece);
        }
        let r = v.finish();
        assert_eq!(r.bad_blocks, vec![(0, 0), (3, 196_608)]);
        assert_eq!(r.whole_ok, Some(false));
        assert_eq!(r.corruption(&b).map(|c| c.offset), Some(0));

        // A damaged table entry with intact data: the CRC-64 says which.
        let mut table_rot = good.clone();
        let last = table_rot.len() - 1;
        table_rot[last] ^= 1;
        let mut v = FileVerifier::new(&b);
        v.update(&table_rot);
        let r = v.finish();
        assert_eq!((r.bad_count, r.whole_ok), (1, Some(true)));
        assert!(r
            .problems(&b)
            .iter()
            .any(|p| p.contains("block table is what is damaged")));

        // Short file.
        let mut v = FileVerifier::new(&b);
        v.update(&good[..1000]);
        let r = v.finish();
        assert!(!r.ok(&b));
        assert_eq!(r.corruption(&b).map(|c| c.failure), Some(Failure::Short));
    }

    #[test]
    fn legacy_blobs_are_checked_whole_and_accept_a_pending_table() {
        let data = vec![9u8; 100_000];
        let b = blob(&data, None);
        assert_eq!(b.stored_size(), 100_000);
        let mut v = FileVerifier::new(&b);
        v.update(&data);
        assert!(v.finish().ok(&b));
        // The upgrade's file (data + table) is still fine for the legacy record.
        let upgraded = file_of(&data, BLOCK);
        assert!(b.file_len_ok(upgraded.len() as u64));
        let mut v = FileVerifier::new(&b);
        v.update(&upgraded);
        assert!(v.finish().ok(&b));
        let mut bad = data.clone();
        bad[0] ^= 1;
        let mut v = FileVerifier::new(&b);
        v.update(&bad);
        let r = v.finish();
        assert_eq!(r.corruption(&b).map(|c| c.failure), Some(Failure::Whole));
    }

    #[test]
    fn corruption_travels_in_io_errors() {
        let c = Corruption {
            blob: "x".into(),
            failure: Failure::Block,
            block: Some(3),
            offset: 196_608,
        };
        let e: io::Error = c.clone().into();
        assert_eq!(corruption_of(&e), Some(&c));
        assert!(corruption_of(&io::Error::other("nope")).is_none());
        assert_eq!(c.to_string(), "blob x block 3 at offset 196608: checksum mismatch");
    }
}
