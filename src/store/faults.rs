//! Crash points for the crash-consistency tests: with `STRATA_CRASH_AT=<point>` in its
//! environment the process aborts (no unwinding, no flushing: like a power cut for the
//! process) the first time the write path reaches that point. Unset, a point costs one
//! load of an initialised `OnceLock`.
//!
//! Points, in write-path order: `blob-written` (body in tmp/, block table not yet written,
//! nothing fsynced), `blob-table-written` (body and block table written, not fsynced),
//! `blob-synced` (fsynced, not renamed), `blob-renamed` (in blobs/, directory not fsynced),
//! `blob-published` (directory fsynced, no metadata yet), `meta-applied` (metadata in sled's
//! memory, not flushed), `meta-durable` (flushed, response not sent).

use std::sync::OnceLock;

pub const POINTS: [&str; 7] = [
    "blob-written",
    "blob-table-written",
    "blob-synced",
    "blob-renamed",
    "blob-published",
    "meta-applied",
    "meta-durable",
];

static CRASH_AT: OnceLock<Option<String>> = OnceLock::new();

pub fn crash_point(name: &str) {
    let armed = CRASH_AT.get_or_init(|| std::env::var("STRATA_CRASH_AT").ok());
    if armed.as_deref() == Some(name) {
        eprintln!("strata: crash point {name} reached: aborting (STRATA_CRASH_AT)");
        std::process::abort();
    }
}
