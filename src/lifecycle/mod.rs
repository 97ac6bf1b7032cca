//! Bucket lifecycle management (S3 lifecycle rules, whose model and validation are
//! `model/lifecycle.rs`): the pure evaluation of one version against the rules ([`eval`]) and
//! the worker that applies due actions on a schedule and on demand ([`worker`]). The S3
//! configuration API is `s3/lifecycle.rs`; `strata lifecycle run` is `admin/lifecycle.rs`.

pub mod eval;
pub mod fuzz;
pub mod worker;

pub use worker::{Lifecycle, RunReport};
