//! Strata: a self-hosted, S3-compatible object store with image transforms built in.
//! See ARCHITECTURE.md for the map of modules and how a request flows through them.
//!
//! The modules form layers, and a module uses only those listed before it (`tests/layers.rs`
//! checks this on every test run):
//!
//! util → model → metrics → store → auth → transform → config → derivative → backup →
//! lifecycle → s3 → admin → http → cli

pub mod util;

pub mod model;

pub mod metrics;

pub mod store;

pub mod auth;

pub mod transform;

pub mod config;

pub mod derivative;

pub mod backup;

pub mod lifecycle;

pub mod s3;

pub mod admin;

pub mod http;

pub mod cli;
