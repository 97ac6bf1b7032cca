//! Small value types of an object that configuration refers to as well as records: its tags
//! and its storage class. They live here so lifecycle rules (a model) need not reach up into
//! the store; `store::records` re-exports them.

use serde::{Deserialize, Serialize};

/// One key/value tag of an object or bucket.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Tag {
    pub key: String,
    pub value: String,
}

/// The storage classes Strata keeps. STANDARD lives in `<data>/blobs`; STANDARD_IA and GLACIER
/// live on the operator's cheaper cold volume, and GLACIER objects must be restored
/// (RestoreObject) before they can be read, as in S3.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum StorageClass {
    #[default]
    Standard,
    StandardIa,
    Glacier,
}

impl StorageClass {
    pub fn as_str(self) -> &'static str {
        match self {
            StorageClass::Standard => "STANDARD",
            StorageClass::StandardIa => "STANDARD_IA",
            StorageClass::Glacier => "GLACIER",
        }
    }

    /// Parses an S3 storage-class name; `None` for classes Strata does not keep.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "STANDARD" => Some(StorageClass::Standard),
            "STANDARD_IA" => Some(StorageClass::StandardIa),
            "GLACIER" => Some(StorageClass::Glacier),
            _ => None,
        }
    }

    /// Whether this class's bytes live on the cold volume.
    pub fn is_cold(self) -> bool {
        self != StorageClass::Standard
    }
}
