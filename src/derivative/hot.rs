//! The in-memory tier in front of the disk cache: recently served small derivatives and the
//! sniffed format of recently transformed originals, so a warm hit costs a metadata lookup
//! and a hash-map probe instead of reading the original's first bytes and a cache file.
//! Both are bounded (bytes and entries); both forget a source version when it is retired.
//! It is only ever filled with verified bytes ([`super::Derivatives::fetch`]): a derivative
//! just made from an original read through the verified blob reader, or one read from disk
//! that passed its checksum ([`super::cache::DerivativeCache::get`]).

use std::collections::HashMap;
use std::sync::Mutex;

use super::cache::Derivative;
use crate::transform::SourceFormat;

/// Most source formats remembered; past this the map starts over (cheap, and rare).
const MAX_SOURCES: usize = 65_536;

struct Entry {
    source: String,
    derivative: Derivative,
    tick: u64,
}

#[derive(Default)]
struct Inner {
    entries: HashMap<String, Entry>,
    total: usize,
    clock: u64,
    sources: HashMap<String, SourceFormat>,
}

pub struct HotCache {
    max_bytes: usize,
    inner: Mutex<Inner>,
}

impl HotCache {
    pub fn new(max_bytes: usize) -> Self {
        Self {
            max_bytes,
            inner: Mutex::new(Inner::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn get(&self, derivative: &str) -> Option<Derivative> {
        let mut inner = self.lock();
        inner.clock += 1;
        let tick = inner.clock;
        let e = inner.entries.get_mut(derivative)?;
        e.tick = tick;
        Some(e.derivative.clone())
    }

    /// Keeps `d` if it is small relative to the budget (big ones are served from disk).
    pub fn put(&self, source: &str, d: &Derivative) {
        let size = d.bytes.len();
        if size > self.max_bytes / 16 {
            return;
        }
        let mut inner = self.lock();
        inner.clock += 1;
        let tick = inner.clock;
        let entry = Entry {
            source: source.to_string(),
            derivative: d.clone(),
            tick,
        };
        if let Some(old) = inner.entries.insert(d.id.clone(), entry) {
            inner.total -= old.derivative.bytes.len();
        }
        inner.total += size;
        if inner.total > self.max_bytes {
            // Evict the oldest until 3/4 full, so eviction work is amortised.
            let mut by_age: Vec<(u64, String)> = inner.entries.iter().map(|(k, e)| (e.tick, k.clone())).collect();
            by_age.sort_unstable();
            for (_, k) in by_age {
                if inner.total <= self.max_bytes * 3 / 4 {
                    break;
                }
                if let Some(e) = inner.entries.remove(&k) {
                    inner.total -= e.derivative.bytes.len();
                }
            }
        }
    }

    pub fn source_format(&self, source: &str) -> Option<SourceFormat> {
        self.lock().sources.get(source).copied()
    }

    pub fn remember_source(&self, source: &str, format: SourceFormat) {
        let mut inner = self.lock();
        if inner.sources.len() >= MAX_SOURCES {
            inner.sources.clear();
        }
        inner.sources.insert(source.to_string(), format);
    }

    /// Forgets everything made from one source version.
    pub fn purge_source(&self, source: &str) {
        let mut inner = self.lock();
        inner.sources.remove(source);
        let gone: Vec<String> = inner
            .entries
            .iter()
            .filter(|(_, e)| e.source == source)
            .map(|(k, _)| k.clone())
            .collect();
        for k in gone {
            if let Some(e) = inner.entries.remove(&k) {
                inner.total -= e.derivative.bytes.len();
            }
        }
    }

    pub fn bytes(&self) -> usize {
        self.lock().total
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn d(id: &str, len: usize) -> Derivative {
        Derivative {
            content_type: "image/webp".into(),
            bytes: Bytes::from(vec![1u8; len]),
            id: id.into(),
        }
    }

    #[test]
    fn bounded_lru_and_purge() {
        let hot = HotCache::new(16 * 100);
        for i in 0..40 {
            hot.put("s", &d(&format!("d{i}"), 100));
            assert!(hot.bytes() <= 1600);
        }
        assert!(hot.get("d39").is_some(), "newest kept");
        assert!(hot.get("d0").is_none(), "oldest evicted");
        hot.put("other", &d("x", 100));
        hot.remember_source("s", SourceFormat::Jpeg);
        hot.purge_source("s");
        assert!(hot.get("d39").is_none());
        assert!(hot.source_format("s").is_none());
        assert!(hot.get("x").is_some(), "other sources untouched");
        // Too big for the hot tier: left to the disk cache.
        hot.put("s", &d("big", 101));
        assert!(hot.get("big").is_none());
    }
}
