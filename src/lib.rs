//! Strata: a self-hosted, S3-compatible object store with image transforms built in.
//! See ARCHITECTURE.md for the map of modules and how a request flows through them.

pub mod admin;
pub mod admin_buckets;
pub mod admin_client;
pub mod auth;
pub mod backup;
pub mod cli_bucket;
pub mod clock;
pub mod config;
pub mod cors;
pub mod derivative;
pub mod lifecycle;
pub mod metrics;
pub mod s3;
pub mod server;
pub mod signing_region;
pub mod store;
#[cfg(test)]
mod test_mutation;
pub mod tls;
pub mod transform;
pub mod util;
pub mod website;
pub mod website_endpoint;
