//! The on-disk format of a backup: `meta.dump` (every sled tree, framed) and `manifest.json`
//! (written last; its presence is what makes a backup complete).
//!
//! `meta.dump`, all integers big-endian:
//! ```text
//! "STRATAMD" u32 format-version u64 next-seq
//! ( 'T' u32 len name | 'E' u32 len key u32 len value )*   -- entries follow their tree
//! 'Z' u64 entry-count                                      -- absent: truncated dump
//! ```

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::store::blob::fsync_dir;
use crate::store::meta::SnapshotItem;

pub const FORMAT_VERSION: u32 = 1;
pub const DUMP: &str = "meta.dump";
pub const MANIFEST: &str = "manifest.json";
const MAGIC: &[u8; 8] = b"STRATAMD";
/// Longest tree name, key or value accepted when reading (sled values of ours are far smaller).
const MAX_FIELD: u32 = 64 * 1024 * 1024;

/// `manifest.json`: what a complete backup holds.
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct Manifest {
    pub format_version: u32,
    pub strata_version: String,
    /// RFC 3339, UTC.
    pub snapshot_time: String,
    /// Entries per sled tree.
    pub trees: BTreeMap<String, u64>,
    pub blob_count: u64,
    /// Bytes of the blob files (encrypted blobs are larger than their objects).
    pub blob_bytes: u64,
    pub meta_dump_sha256: String,
}

/// Writes `meta.dump` while hashing it.
pub struct DumpWriter {
    out: BufWriter<File>,
    sha: Sha256,
    entries: u64,
    current: Option<String>,
    /// Entries per tree, in the order written.
    pub trees: BTreeMap<String, u64>,
}

impl DumpWriter {
    pub fn create(path: &Path) -> io::Result<Self> {
        Ok(Self {
            out: BufWriter::with_capacity(1 << 20, create_private(path)?),
            sha: Sha256::new(),
            entries: 0,
            current: None,
            trees: BTreeMap::new(),
        })
    }

    fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.sha.update(bytes);
        self.out.write_all(bytes)
    }

    fn put_field(&mut self, bytes: &[u8]) -> io::Result<()> {
        let len = u32::try_from(bytes.len()).map_err(|_| io::Error::other("metadata field over 4 GiB"))?;
        self.put(&len.to_be_bytes())?;
        self.put(bytes)
    }

    pub fn item(&mut self, item: SnapshotItem<'_>) -> io::Result<()> {
        match item {
            SnapshotItem::Start { next_seq } => {
                self.put(MAGIC)?;
                self.put(&FORMAT_VERSION.to_be_bytes())?;
                self.put(&next_seq.to_be_bytes())
            }
            SnapshotItem::Tree(name) => {
                let name_s = String::from_utf8_lossy(name).into_owned();
                self.trees.insert(name_s.clone(), 0);
                self.current = Some(name_s);
                self.put(b"T")?;
                self.put_field(name)
            }
            SnapshotItem::Entry(k, v) => {
                self.entries += 1;
                if let Some(n) = self.current.as_ref().and_then(|c| self.trees.get_mut(c)) {
                    *n += 1;
                }
                self.put(b"E")?;
                self.put_field(k)?;
                self.put_field(v)
            }
        }
    }

    /// Writes the trailer and fsyncs; returns the SHA-256 (hex) of the whole file and the
    /// entries per tree.
    pub fn finish(mut self) -> io::Result<(String, BTreeMap<String, u64>)> {
        self.put(b"Z")?;
        let n = self.entries;
        self.put(&n.to_be_bytes())?;
        self.out.flush()?;
        let file = self.out.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        Ok((hex::encode(self.sha.finalize()), self.trees))
    }
}

fn bad(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("meta.dump: {}", msg.into()))
}

fn read_exact<const N: usize>(r: &mut impl Read) -> io::Result<[u8; N]> {
    let mut b = [0u8; N];
    r.read_exact(&mut b).map_err(|e| match e.kind() {
        io::ErrorKind::UnexpectedEof => bad("truncated"),
        _ => e,
    })?;
    Ok(b)
}

fn read_field(r: &mut impl Read) -> io::Result<Vec<u8>> {
    let len = u32::from_be_bytes(read_exact::<4>(r)?);
    if len > MAX_FIELD {
        return Err(bad(format!("field of {len} bytes")));
    }
    let mut v = vec![0u8; len as usize];
    r.read_exact(&mut v).map_err(|_| bad("truncated"))?;
    Ok(v)
}

/// Reads a dump, calling `visit(tree, None)` when a tree starts and `visit(tree, Some((key,
/// value)))` per entry; returns the `next_seq` of its header. Fails on a bad header or
/// version, or a missing trailer.
pub fn read_dump(
    path: &Path,
    mut visit: impl FnMut(&[u8], Option<(Vec<u8>, Vec<u8>)>) -> io::Result<()>,
) -> io::Result<u64> {
    let mut r = BufReader::with_capacity(1 << 20, File::open(path)?);
    if &read_exact::<8>(&mut r)? != MAGIC {
        return Err(bad("not a Strata metadata dump"));
    }
    let version = u32::from_be_bytes(read_exact::<4>(&mut r)?);
    if version != FORMAT_VERSION {
        return Err(bad(format!(
            "format version {version}, this strata reads {FORMAT_VERSION}"
        )));
    }
    let next_seq = u64::from_be_bytes(read_exact::<8>(&mut r)?);
    let mut tree: Option<Vec<u8>> = None;
    let mut entries = 0u64;
    loop {
        match read_exact::<1>(&mut r)?[0] {
            b'T' => {
                let name = read_field(&mut r)?;
                visit(&name, None)?;
                tree = Some(name);
            }
            b'E' => {
                let Some(t) = &tree else {
                    return Err(bad("entry before any tree"));
                };
                let k = read_field(&mut r)?;
                let v = read_field(&mut r)?;
                entries += 1;
                visit(t, Some((k, v)))?;
            }
            b'Z' => {
                let n = u64::from_be_bytes(read_exact::<8>(&mut r)?);
                if n != entries {
                    return Err(bad(format!("trailer says {n} entries, found {entries}")));
                }
                return Ok(next_seq);
            }
            other => return Err(bad(format!("unknown frame {other:#x}"))),
        }
    }
}

/// SHA-256 (hex) of a file.
pub fn sha256_file(path: &Path) -> io::Result<String> {
    let mut r = File::open(path)?;
    let mut sha = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = r.read(&mut buf)?;
        if n == 0 {
            break;
        }
        sha.update(&buf[..n]);
    }
    Ok(hex::encode(sha.finalize()))
}

/// Creates (truncating) a file only its owner can read: a backup holds access key secrets.
pub fn create_private(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
}

/// Writes `bytes` to `dir/name` (mode 0600) atomically and durably: tmp + fsync + rename +
/// dir fsync.
pub fn write_durably(dir: &Path, name: &str, bytes: &[u8]) -> io::Result<()> {
    let tmp = dir.join(format!("{name}.tmp"));
    let mut f = create_private(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    fs::rename(&tmp, dir.join(name))?;
    fsync_dir(dir)
}

pub fn read_manifest(dir: &Path) -> io::Result<Manifest> {
    let path = dir.join(MANIFEST);
    let bytes = match fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!(
                    "{} has no {MANIFEST}: not a Strata backup, or one that did not complete",
                    dir.display()
                ),
            ))
        }
        Err(e) => return Err(e),
    };
    let m: Manifest = serde_json::from_slice(&bytes).map_err(|e| bad(format!("{MANIFEST} is not valid: {e}")))?;
    if m.format_version != FORMAT_VERSION {
        return Err(bad(format!(
            "backup format version {}, this strata reads {FORMAT_VERSION}",
            m.format_version
        )));
    }
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::records::KeyRecord;
    use crate::store::MetaStore;

    /// A snapshot written as a dump reads back entry for entry, with every tree (also ones
    /// this module never names); a truncated or altered dump is refused.
    #[test]
    fn dump_round_trip_and_damage() {
        let dir = tempfile::tempdir().expect("tempdir");
        let meta = MetaStore::open(dir.path(), 1 << 20).expect("open");
        let rec = KeyRecord {
            name: "n".into(),
            secret_key: "s".into(),
            created_ms: 1,
        };
        meta.put_key("AK1", &rec).expect("put");
        meta.put_key("AK2", &rec).expect("put");
        meta.import(b"added-later", vec![(b"k".to_vec(), b"v".to_vec())])
            .expect("import");

        let path = dir.path().join("meta.dump");
        let mut w = DumpWriter::create(&path).expect("create");
        let info = meta
            .snapshot(|item| w.item(item).map_err(Into::into))
            .expect("snapshot");
        let (sha, trees) = w.finish().expect("finish");
        assert_eq!(sha, sha256_file(&path).expect("sha"));
        assert_eq!(trees.get("keys"), Some(&2));
        assert_eq!(trees.get("added-later"), Some(&1));

        let mut seen: Vec<(String, Vec<u8>)> = Vec::new();
        let next = read_dump(&path, |t, e| {
            if let Some((k, _)) = e {
                seen.push((String::from_utf8_lossy(t).into_owned(), k));
            }
            Ok(())
        })
        .expect("read");
        assert_eq!(next, info.next_seq);
        assert!(seen.contains(&("keys".into(), b"AK1".to_vec())));
        assert!(seen.contains(&("added-later".into(), b"k".to_vec())));
        assert_eq!(seen.len(), 3);

        let bytes = fs::read(&path).expect("read file");
        fs::write(&path, &bytes[..bytes.len() - 3]).expect("truncate");
        let err = read_dump(&path, |_, _| Ok(())).expect_err("truncated dump accepted");
        assert!(err.to_string().contains("truncated"), "{err}");
        let mut bad = bytes.clone();
        bad[0] = b'X';
        fs::write(&path, &bad).expect("write");
        assert!(read_dump(&path, |_, _| Ok(())).is_err());
    }
}
