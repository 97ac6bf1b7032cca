//! What happens when stored bytes fail their check ([`super::integrity`]), wherever that is
//! found (a GET, a copy, a transform's source read, a transition, a backup, scrub): exactly one
//! `error` log line naming the object and the bad block, `strata_bitrot_detected_total`, and
//! the object marked in the `suspects` sled tree, which scrub verifies first.
//!
//! The mark is durable with the next metadata flush (sled's own, or any write's group
//! commit): the read that found the rot does not wait for it. The tree is bounded
//! ([`MAX_SUSPECTS`]); scrub removes an entry once it has checked that version (the problem,
//! if still there, is in scrub's report).

use serde::{Deserialize, Serialize};

use super::integrity::Corruption;
use super::meta::{object_key, MetaStore};
use super::records::{decode, encode};
use super::StoreError;

/// Marked objects kept at most; past this a new mark is only logged.
pub const MAX_SUSPECTS: usize = 100_000;

/// Which stored object a read was for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectAt {
    pub bucket: String,
    pub key: String,
    /// The internal version id (the record's, never `null`).
    pub version_id: String,
}

/// A `suspects` entry.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Suspect {
    pub bucket: String,
    pub key: String,
    pub version_id: String,
    pub blob: String,
    pub offset: u64,
    pub detected_ms: i64,
    /// What found it: `read`, `copy`, `transform`, `transition`, `backup`, `scrub`.
    pub found_by: String,
}

fn suspect_key(at: &ObjectAt) -> Vec<u8> {
    let mut k = object_key(&at.bucket, &at.key);
    k.push(0);
    k.extend_from_slice(at.version_id.as_bytes());
    k
}

/// Reports corruption found while reading `at`: the log line, the counter, the mark.
/// `request_id`: the request that found it, if one did.
pub fn report(meta: &MetaStore, at: &ObjectAt, c: &Corruption, found_by: &'static str, request_id: Option<&str>) {
    tracing::error!(
        bucket = %at.bucket,
        key = %at.key,
        version_id = %at.version_id,
        blob = %c.blob,
        block = %c.block.map_or_else(|| "-".to_string(), |b| b.to_string()),
        offset = c.offset,
        found_by,
        request_id = request_id.unwrap_or("-"),
        "bitrot detected: {c}; refusing to serve or copy these bytes"
    );
    crate::metrics::global().bitrot_detected();
    let suspect = Suspect {
        bucket: at.bucket.clone(),
        key: at.key.clone(),
        version_id: at.version_id.clone(),
        blob: c.blob.clone(),
        offset: c.offset,
        detected_ms: crate::util::now_ms(),
        found_by: found_by.to_string(),
    };
    if let Err(e) = meta.mark_suspect(at, &suspect) {
        tracing::warn!(error = %e, "could not mark the object for scrub");
    }
}

impl MetaStore {
    /// Marks a version for scrub (see the module doc). Ok without a mark past [`MAX_SUSPECTS`].
    pub fn mark_suspect(&self, at: &ObjectAt, s: &Suspect) -> Result<(), StoreError> {
        let k = suspect_key(at);
        if self.suspects.len() >= MAX_SUSPECTS && !self.suspects.contains_key(&k)? {
            tracing::warn!(max = MAX_SUSPECTS, "suspects list full; not marking another object");
            return Ok(());
        }
        let value = encode(s)?;
        self.mutate(|g| self.suspects.insert(g, k, value))?;
        Ok(())
    }

    /// Every marked version, oldest key first.
    pub fn suspects(&self) -> Result<Vec<Suspect>, StoreError> {
        let mut out = Vec::new();
        for item in self.suspects.iter() {
            let (_, v) = item?;
            out.push(decode(&v)?);
        }
        Ok(out)
    }

    /// Removes a version's mark (scrub has checked it).
    pub fn clear_suspect(&self, at: &ObjectAt) -> Result<(), StoreError> {
        let k = suspect_key(at);
        self.mutate(|g| self.suspects.remove(g, k))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::integrity::Failure;

    #[test]
    fn reports_mark_once_per_version_and_scrub_clears_them() {
        let dir = tempfile::tempdir().expect("tempdir");
        let meta = MetaStore::open(dir.path(), 1 << 20).expect("open");
        let at = ObjectAt {
            bucket: "b".into(),
            key: "k".into(),
            version_id: "v1".into(),
        };
        let c = Corruption {
            blob: "blob1".into(),
            failure: Failure::Block,
            block: Some(2),
            offset: 131_072,
        };
        let before = crate::metrics::global().bitrot_count();
        report(&meta, &at, &c, "read", None);
        report(&meta, &at, &c, "copy", Some("REQ"));
        assert!(crate::metrics::global().bitrot_count() >= before + 2);
        let all = meta.suspects().expect("suspects");
        assert_eq!(all.len(), 1, "one mark per version");
        assert_eq!(
            (all[0].blob.as_str(), all[0].offset, all[0].found_by.as_str()),
            ("blob1", 131_072, "copy")
        );
        meta.clear_suspect(&at).expect("clear");
        assert!(meta.suspects().expect("suspects").is_empty());
    }
}
