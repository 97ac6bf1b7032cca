//! `POST /_strata/admin/lifecycle/run[?bucket=B][&now=RFC3339]` (root only, routed by
//! `admin/mod.rs`): one lifecycle run, answered with its [`crate::lifecycle::RunReport`] as JSON once it is
//! done. `now` is honoured only when the config sets `lifecycle.allow_clock_override` (a
//! test-only switch); otherwise it is a 400.

use http::StatusCode;
use s3s::{Body, S3Response, S3Result};

use crate::admin::{json, query_param};
use crate::lifecycle::Lifecycle;
use crate::s3::errors::store_error;
use crate::util::errors;

pub async fn run(lifecycle: &Lifecycle, uri: &http::Uri) -> S3Result<S3Response<Body>> {
    let now_ms = match query_param(uri, "now").filter(|s| !s.is_empty()) {
        None => None,
        Some(_) if !lifecycle.settings().allow_clock_override => {
            return Err(errors::invalid_argument(
                "now is only accepted when the server sets lifecycle.allow_clock_override (test only)",
            ));
        }
        Some(text) => {
            let t = time::OffsetDateTime::parse(&text, &time::format_description::well_known::Rfc3339)
                .map_err(|_| errors::invalid_argument("now must be an RFC 3339 time, like 2030-01-31T00:00:00Z"))?;
            Some((t.unix_timestamp_nanos() / 1_000_000) as i64)
        }
    };
    let bucket = query_param(uri, "bucket").filter(|b| !b.is_empty());
    if let Some(b) = &bucket {
        if lifecycle.store().meta.bucket(b).map_err(store_error)?.is_none() {
            return Err(errors::no_such_bucket());
        }
    }
    let report = lifecycle.run(bucket.as_deref(), now_ms).await.map_err(store_error)?;
    json(StatusCode::OK, &report)
}
