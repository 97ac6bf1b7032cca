//! Bucket lifecycle management (S3 lifecycle rules): the rule model and its validation
//! ([`rules`]), the pure evaluation of one version against the rules ([`eval`]), the worker
//! that applies due actions on a schedule and on demand ([`worker`]), and the admin endpoint
//! behind `strata lifecycle run` ([`admin`]). The S3 configuration API is `s3/lifecycle.rs`.

pub mod admin;
pub mod eval;
pub mod rules;
pub mod worker;

pub use worker::{Lifecycle, RunReport};
