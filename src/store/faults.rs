//! Crash points for the crash-consistency tests: with `STRATA_CRASH_AT=<point>` in its
//! environment the process aborts (no unwinding, no flushing: like a power cut for the
//! process) the first time the write path reaches that point. Unset, a point costs one
//! load of an initialised `OnceLock`.

use std::sync::OnceLock;

/// The steps of the write path, in order; [`CrashPoint::name`] is what `STRATA_CRASH_AT` takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CrashPoint {
    /// Body in tmp/, block table not yet written, nothing fsynced.
    BlobWritten,
    /// Body and block table written, not fsynced.
    BlobTableWritten,
    /// Fsynced, not renamed.
    BlobSynced,
    /// In blobs/, directory not fsynced.
    BlobRenamed,
    /// Directory fsynced, no metadata yet.
    BlobPublished,
    /// Metadata in sled's memory, not flushed.
    MetaApplied,
    /// Flushed, response not sent.
    MetaDurable,
}

impl CrashPoint {
    pub const ALL: [CrashPoint; 7] = [
        CrashPoint::BlobWritten,
        CrashPoint::BlobTableWritten,
        CrashPoint::BlobSynced,
        CrashPoint::BlobRenamed,
        CrashPoint::BlobPublished,
        CrashPoint::MetaApplied,
        CrashPoint::MetaDurable,
    ];

    pub fn name(self) -> &'static str {
        match self {
            CrashPoint::BlobWritten => "blob-written",
            CrashPoint::BlobTableWritten => "blob-table-written",
            CrashPoint::BlobSynced => "blob-synced",
            CrashPoint::BlobRenamed => "blob-renamed",
            CrashPoint::BlobPublished => "blob-published",
            CrashPoint::MetaApplied => "meta-applied",
            CrashPoint::MetaDurable => "meta-durable",
        }
    }
}

/// The point `STRATA_CRASH_AT` names, read once; an unknown name arms nothing.
static CRASH_AT: OnceLock<Option<CrashPoint>> = OnceLock::new();

pub fn crash_point(point: CrashPoint) {
    let armed = CRASH_AT.get_or_init(|| {
        let name = std::env::var("STRATA_CRASH_AT").ok()?;
        let found = CrashPoint::ALL.into_iter().find(|p| p.name() == name);
        if found.is_none() {
            eprintln!("strata: STRATA_CRASH_AT={name} names no crash point: ignored");
        }
        found
    });
    if *armed == Some(point) {
        eprintln!(
            "strata: crash point {} reached: aborting (STRATA_CRASH_AT)",
            point.name()
        );
        std::process::abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_distinct_and_in_write_path_order() {
        let names: Vec<&str> = CrashPoint::ALL.iter().map(|p| p.name()).collect();
        let mut unique = names.clone();
        unique.dedup();
        assert_eq!(unique.len(), names.len());
        assert_eq!(names.first(), Some(&"blob-written"));
        assert_eq!(names.last(), Some(&"meta-durable"));
    }
}
