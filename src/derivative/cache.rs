//! The derivative cache: transformed images on disk under `<data>/cache/`, size-bounded with
//! least-recently-used eviction, surviving restarts.
//!
//! Layout: `cache/<source-id>/<derivative-id>` where `source-id` hashes (bucket, key,
//! version id) and `derivative-id` hashes the canonical transform spec. A new version of an
//! object has a new version id, so its derivatives live in a new directory and an old one can
//! never be served; [`DerivativeCache::purge_source`] drops the old directory at once.
//! Files carry a small header (magic, content type, body length, CRC32C of the body) checked
//! on every disk hit: a file torn by a crash (short, or of the older header format) or rotten
//! on disk (checksum mismatch, counted in `strata_derivative_cache_corrupt_total`) is deleted
//! and treated as a miss, so the derivative is made again from the verified original. The
//! cache is never fsynced: it is safe to lose.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use sha2::{Digest, Sha256};

/// Format 2: magic, content-type length (u16 BE), content type, body length (u64 BE), CRC32C
/// of the body (u32 BE), body. (Format 1 had no checksum: such files read as misses.)
const MAGIC: &[u8; 6] = b"STRDV2";

/// A cached derivative.
#[derive(Clone, Debug)]
pub struct Derivative {
    pub content_type: String,
    pub bytes: Bytes,
    /// Hex id, distinct per (source version, spec): used for the ETag.
    pub id: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Slot {
    size: u64,
    tick: u64,
}

struct Index {
    /// (source dir, derivative file) → size and last use.
    entries: HashMap<(String, String), Slot>,
    total: u64,
    clock: u64,
}

pub struct DerivativeCache {
    root: PathBuf,
    max_bytes: u64,
    index: Mutex<Index>,
}

/// Hex SHA-256 of the parts, separated so that ("ab","c") ≠ ("a","bc").
fn hash_parts(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_be_bytes());
        h.update(p.as_bytes());
    }
    hex::encode(h.finalize())
}

pub fn source_id(bucket: &str, key: &str, version_id: &str) -> String {
    hash_parts(&[bucket, key, version_id])[..32].to_string()
}

pub fn derivative_id(source_id: &str, canonical_spec: &str) -> String {
    hash_parts(&[source_id, canonical_spec])[..32].to_string()
}

impl DerivativeCache {
    /// Opens `<data>/cache`, indexing what a previous run left (oldest files evicted first).
    pub fn open(data_dir: &Path, max_bytes: u64) -> io::Result<Arc<Self>> {
        let root = data_dir.join("cache");
        std::fs::create_dir_all(root.join("tmp"))?;
        let mut found: Vec<((String, String), u64, std::time::SystemTime)> = Vec::new();
        for dir in std::fs::read_dir(&root)? {
            let dir = dir?;
            let name = dir.file_name().to_string_lossy().into_owned();
            if !dir.file_type()?.is_dir() {
                continue;
            }
            if name == "tmp" {
                for f in std::fs::read_dir(dir.path())? {
                    let _ = std::fs::remove_file(f?.path());
                }
                continue;
            }
            for f in std::fs::read_dir(dir.path())? {
                let f = f?;
                let meta = f.metadata()?;
                let used = meta
                    .accessed()
                    .or_else(|_| meta.modified())
                    .unwrap_or(std::time::UNIX_EPOCH);
                found.push((
                    (name.clone(), f.file_name().to_string_lossy().into_owned()),
                    meta.len(),
                    used,
                ));
            }
        }
        found.sort_by_key(|(_, _, t)| *t);
        let mut index = Index {
            entries: HashMap::new(),
            total: 0,
            clock: 0,
        };
        for (k, size, _) in found {
            index.clock += 1;
            index.total += size;
            index.entries.insert(
                k,
                Slot {
                    size,
                    tick: index.clock,
                },
            );
        }
        let cache = Arc::new(Self {
            root,
            max_bytes,
            index: Mutex::new(index),
        });
        cache.evict();
        Ok(cache)
    }

    fn path(&self, source: &str, derivative: &str) -> PathBuf {
        self.root.join(source).join(derivative)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Index> {
        self.index.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Reads a derivative; a missing, torn or rotten file is a miss (and removed).
    pub fn get(&self, source: &str, derivative: &str) -> Option<Derivative> {
        let key = (source.to_string(), derivative.to_string());
        {
            let mut idx = self.lock();
            idx.clock += 1;
            let tick = idx.clock;
            idx.entries.get_mut(&key)?.tick = tick;
        }
        match read_entry(&self.path(source, derivative)) {
            Ok(Entry::Good(content_type, bytes)) => Some(Derivative {
                content_type,
                bytes,
                id: derivative.to_string(),
            }),
            found => {
                if let Ok(Entry::Corrupt) = found {
                    crate::metrics::global().cache_corrupt();
                    tracing::warn!(
                        source,
                        derivative,
                        "derivative cache file failed its checksum: dropped, making it again"
                    );
                }
                self.forget(&key);
                let _ = std::fs::remove_file(self.path(source, derivative));
                None
            }
        }
    }

    /// Stores a derivative (write to tmp, rename), then evicts down to the size bound.
    pub fn put(&self, source: &str, derivative: &str, content_type: &str, bytes: &[u8]) -> io::Result<()> {
        let dir = self.root.join(source);
        std::fs::create_dir_all(&dir)?;
        let tmp = self
            .root
            .join("tmp")
            .join(format!("{derivative}.{:016x}", rand::random::<u64>()));
        {
            let mut f = io::BufWriter::new(std::fs::File::create(&tmp)?);
            f.write_all(MAGIC)?;
            f.write_all(&(content_type.len() as u16).to_be_bytes())?;
            f.write_all(content_type.as_bytes())?;
            f.write_all(&(bytes.len() as u64).to_be_bytes())?;
            f.write_all(&crate::store::integrity::crc32c(bytes).to_be_bytes())?;
            f.write_all(bytes)?;
            f.flush()?;
        }
        std::fs::rename(&tmp, dir.join(derivative))?;
        let size = (MAGIC.len() + 2 + content_type.len() + 8 + 4 + bytes.len()) as u64;
        {
            let mut idx = self.lock();
            idx.clock += 1;
            let tick = idx.clock;
            if let Some(old) = idx
                .entries
                .insert((source.to_string(), derivative.to_string()), Slot { size, tick })
            {
                idx.total -= old.size;
            }
            idx.total += size;
        }
        self.evict();
        Ok(())
    }

    fn forget(&self, key: &(String, String)) {
        let mut idx = self.lock();
        if let Some(old) = idx.entries.remove(key) {
            idx.total -= old.size;
        }
    }

    /// Drops every derivative of one source version (after an overwrite or delete).
    pub fn purge_source(&self, source: &str) {
        {
            let mut idx = self.lock();
            let gone: Vec<(String, String)> = idx.entries.keys().filter(|(s, _)| s == source).cloned().collect();
            for k in gone {
                if let Some(slot) = idx.entries.remove(&k) {
                    idx.total -= slot.size;
                }
            }
        }
        let _ = std::fs::remove_dir_all(self.root.join(source));
    }

    /// Removes least-recently-used entries until the total fits the bound.
    fn evict(&self) {
        let victims: Vec<(String, String)> = {
            let mut idx = self.lock();
            if idx.total <= self.max_bytes {
                return;
            }
            let mut all: Vec<((String, String), Slot)> = idx.entries.iter().map(|(k, v)| (k.clone(), *v)).collect();
            all.sort_by_key(|(_, s)| s.tick);
            let mut out = Vec::new();
            for (k, slot) in all {
                if idx.total <= self.max_bytes {
                    break;
                }
                idx.entries.remove(&k);
                idx.total -= slot.size;
                out.push(k);
            }
            out
        };
        crate::metrics::global().cache_evicted(victims.len() as u64);
        for (s, d) in victims {
            let _ = std::fs::remove_file(self.path(&s, &d));
        }
    }

    pub fn total_bytes(&self) -> u64 {
        self.lock().total
    }

    pub fn entries(&self) -> usize {
        self.lock().entries.len()
    }
}

impl crate::metrics::CacheSize for DerivativeCache {
    fn total_bytes(&self) -> u64 {
        DerivativeCache::total_bytes(self)
    }

    fn entries(&self) -> usize {
        DerivativeCache::entries(self)
    }
}

/// What a cache file held.
enum Entry {
    Good(String, Bytes),
    /// Short, or not this format (a crash mid-write, an older version's file).
    Torn,
    /// Complete, but the body fails its checksum.
    Corrupt,
}

fn read_entry(path: &Path) -> io::Result<Entry> {
    let mut f = std::fs::File::open(path)?;
    let mut all = Vec::new();
    f.read_to_end(&mut all)?;
    let Some(rest) = all.strip_prefix(MAGIC.as_slice()) else {
        return Ok(Entry::Torn);
    };
    let Some((ct_len, rest)) = rest.split_first_chunk::<2>() else {
        return Ok(Entry::Torn);
    };
    let ct_len = u16::from_be_bytes(*ct_len) as usize;
    let Some((ct, rest)) = rest.split_at_checked(ct_len) else {
        return Ok(Entry::Torn);
    };
    let Some((body_len, rest)) = rest.split_first_chunk::<8>() else {
        return Ok(Entry::Torn);
    };
    let Some((crc, body)) = rest.split_first_chunk::<4>() else {
        return Ok(Entry::Torn);
    };
    if u64::from_be_bytes(*body_len) != body.len() as u64 {
        return Ok(Entry::Torn);
    }
    if crate::store::integrity::crc32c(body) != u32::from_be_bytes(*crc) {
        return Ok(Entry::Corrupt);
    }
    let ct = String::from_utf8_lossy(ct).into_owned();
    let start = all.len() - body.len();
    Ok(Entry::Good(ct, Bytes::from(all).slice(start..)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_get_survives_reopen_and_detects_torn_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let c = DerivativeCache::open(dir.path(), 1 << 20).expect("open");
        c.put("s1", "d1", "image/webp", b"hello").expect("put");
        let d = c.get("s1", "d1").expect("hit");
        assert_eq!(&d.bytes[..], b"hello");
        assert_eq!(d.content_type, "image/webp");
        drop(c);
        let c = DerivativeCache::open(dir.path(), 1 << 20).expect("reopen");
        assert!(c.get("s1", "d1").is_some(), "survives restart");
        // Tear the file: it must read as a miss, not as wrong bytes.
        let p = dir.path().join("cache/s1/d1");
        let len = std::fs::metadata(&p).expect("meta").len();
        std::fs::OpenOptions::new()
            .write(true)
            .open(&p)
            .expect("open")
            .set_len(len - 2)
            .expect("truncate");
        assert!(c.get("s1", "d1").is_none());
        assert_eq!(c.entries(), 0);
    }

    #[test]
    fn a_rotten_body_is_a_counted_miss_and_removed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let c = DerivativeCache::open(dir.path(), 1 << 20).expect("open");
        c.put("s1", "d1", "image/png", b"a derivative body").expect("put");
        let p = dir.path().join("cache/s1/d1");
        let mut bytes = std::fs::read(&p).expect("read");
        let last = bytes.len() - 1;
        bytes[last] ^= 0x01;
        std::fs::write(&p, &bytes).expect("rot");
        let before = crate::metrics::global().render();
        assert!(c.get("s1", "d1").is_none(), "rotten entry served");
        assert!(!p.exists(), "rotten entry left on disk");
        assert_eq!(c.entries(), 0);
        let count = |text: &str| {
            text.lines()
                .find(|l| l.starts_with("strata_derivative_cache_corrupt_total "))
                .and_then(|l| l.rsplit(' ').next())
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        assert!(count(&crate::metrics::global().render()) >= count(&before) + 1.0);
        // Files of the format without a checksum are misses too.
        c.put("s1", "d2", "image/png", b"x").expect("put");
        let p2 = dir.path().join("cache/s1/d2");
        let mut old = std::fs::read(&p2).expect("read");
        old[..6].copy_from_slice(b"STRDV1");
        std::fs::write(&p2, &old).expect("write");
        assert!(c.get("s1", "d2").is_none());
    }

    #[test]
    fn evicts_least_recently_used_to_stay_under_bound() {
        let dir = tempfile::tempdir().expect("tempdir");
        let c = DerivativeCache::open(dir.path(), 3 * 1100).expect("open");
        let body = vec![7u8; 1000];
        c.put("s", "a", "image/png", &body).expect("put a");
        c.put("s", "b", "image/png", &body).expect("put b");
        c.put("s", "c", "image/png", &body).expect("put c");
        assert!(c.get("s", "a").is_some()); // a is now the most recently used
        c.put("s", "d", "image/png", &body).expect("put d");
        assert!(c.total_bytes() <= 3 * 1100);
        assert!(c.get("s", "b").is_none(), "b was least recently used");
        assert!(c.get("s", "a").is_some());
        assert!(c.get("s", "d").is_some());
    }

    #[test]
    fn purge_source_removes_all_derivatives_of_a_version() {
        let dir = tempfile::tempdir().expect("tempdir");
        let c = DerivativeCache::open(dir.path(), 1 << 20).expect("open");
        c.put("old", "x", "image/png", b"1").expect("put");
        c.put("old", "y", "image/png", b"2").expect("put");
        c.put("new", "x", "image/png", b"3").expect("put");
        c.purge_source("old");
        assert!(c.get("old", "x").is_none());
        assert!(c.get("old", "y").is_none());
        assert!(c.get("new", "x").is_some());
        assert!(!dir.path().join("cache/old").exists());
    }

    #[test]
    fn ids_separate_their_parts() {
        assert_ne!(source_id("ab", "c", "v"), source_id("a", "bc", "v"));
        let s = source_id("b", "k", "v1");
        assert_ne!(derivative_id(&s, "w=1"), derivative_id(&s, "w=2"));
        assert_ne!(s, source_id("b", "k", "v2"));
    }
}
