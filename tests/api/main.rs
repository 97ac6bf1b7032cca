//! Strata's API integration tests: every test starts a real `strata serve` on an ephemeral
//! port over a fresh data directory and drives it with aws-sdk-s3 (or, for what the SDK
//! cannot send, a raw HTTP client with our own SigV4 signing).
//!
//! One test crate on purpose: a single link keeps build times low on small machines.
//!
//! The harness is in `fixtures/` (server, SDK client and [`fixtures::ClientExt`], assertions,
//! raw HTTP, offline tools). A test usually starts with one line:
//! `let (server, client, bucket) = TestServer::with_bucket("tag").await;`.

#![allow(clippy::unwrap_used)] // test helpers: a panic is a failed test

mod fixtures;

mod access_control;
mod admin_buckets;
mod auth;
mod backup;
mod bitrot;
mod bitrot_reads;
mod buckets;
mod checksums;
mod conditional;
mod copy;
mod cors_post_tagging;
mod crash_points;
mod diskfull;
mod encryption;
mod errors;
mod kill_cycles;
mod legacy_blobs;
mod lifecycle;
mod list;
mod metrics;
mod multipart;
mod objects;
mod principals;
mod restart;
mod security;
mod signing_region;
mod storage_classes;
mod tls;
mod transforms;
mod versioning;
mod website;
