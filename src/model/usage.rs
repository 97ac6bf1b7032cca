//! What a bucket holds, as counted by a usage scan (`store::usage`): the figure the metrics
//! endpoint exports and the admin API returns. A plain value here so that `metrics` need not
//! depend on the store.

use serde::Serialize;

#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct Usage {
    /// Current versions that are objects (not delete markers).
    pub objects: u64,
    /// Their bytes (object size, as clients see it).
    pub bytes: u64,
    pub noncurrent_objects: u64,
    pub noncurrent_bytes: u64,
    /// Delete markers, current or not.
    pub delete_markers: u64,
    /// Incomplete multipart uploads.
    pub uploads: u64,
    /// Bytes of the parts uploaded to them so far.
    pub upload_bytes: u64,
}
