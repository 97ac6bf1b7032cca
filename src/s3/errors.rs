//! Mapping of internal failures to S3 errors. Internal details are logged, not sent. The
//! errors themselves are built by the named constructors of [`crate::util::errors`],
//! re-exported here so handlers write `errors::no_such_key()`.

use s3s::S3Error;

pub use crate::util::errors::*;

use crate::store::blob::IngestError;
use crate::store::StoreError;

pub fn store_error(e: StoreError) -> S3Error {
    if e.is_out_of_space() {
        tracing::error!(error = %e, "volume is full");
        return insufficient_storage();
    }
    tracing::error!(error = %e, "storage failure");
    internal_error()
}

pub fn ingest_error(e: IngestError) -> S3Error {
    match e {
        IngestError::Stalled => request_timeout(),
        IngestError::TooLarge => entity_too_large(),
        IngestError::Body(msg) => {
            tracing::warn!(error = %msg, "request body failed");
            // s3s's body-verification error types are private; their messages name the variant.
            if msg.contains("Sha256Mismatch") {
                x_amz_content_sha256_mismatch()
            } else if msg.contains("SignatureMismatch") {
                signature_does_not_match("The chunk signature does not match what was computed.")
            } else {
                incomplete_body(format!("The request body terminated unexpectedly: {msg}"))
            }
        }
        IngestError::Store(e) => store_error(e),
    }
}

pub fn internal(what: &str, e: impl std::fmt::Display) -> S3Error {
    tracing::error!(error = %e, "{what}");
    internal_error()
}

/// The id `http/server.rs` gives each request (its `x-amz-request-id`), in the request extensions so
/// error bodies can carry it too.
#[derive(Clone, Debug)]
pub struct RequestId(pub String);

/// The request id of a request's extensions, if the server put one there.
pub fn request_id(ext: &http::Extensions) -> Option<String> {
    ext.get::<RequestId>().map(|r| r.0.clone())
}

/// Adds `<RequestId>` to an error's XML body (as S3 does) unless it has one.
pub fn with_request_id(mut e: S3Error, id: Option<&str>) -> S3Error {
    if let (None, Some(id)) = (e.request_id(), id) {
        e.set_request_id(id);
    }
    e
}

/// Stored bytes failed their checksum before anything was sent (or copied): S3's
/// `500 InternalError`. Not logged here: `store::bitrot::report` wrote the one line.
pub fn stored_data_corrupt() -> S3Error {
    internal_error()
}
