//! Mapping of internal failures to S3 errors. Internal details are logged, not sent.

use s3s::{s3_error, S3Error, S3ErrorCode};

use crate::store::blob::IngestError;
use crate::store::StoreError;

pub fn store_error(e: StoreError) -> S3Error {
    if e.is_out_of_space() {
        tracing::error!(error = %e, "volume is full");
        let mut err = S3Error::with_message(
            S3ErrorCode::Custom("InsufficientStorage".into()),
            "The server has no space left to store this request; retry later.",
        );
        err.set_status_code(http::StatusCode::INSUFFICIENT_STORAGE);
        return err;
    }
    tracing::error!(error = %e, "storage failure");
    s3_error!(InternalError, "We encountered an internal error. Please try again.")
}

pub fn ingest_error(e: IngestError) -> S3Error {
    match e {
        IngestError::Stalled => s3_error!(
            RequestTimeout,
            "Your socket connection to the server was not read from or written to within the timeout period."
        ),
        IngestError::TooLarge => s3_error!(
            EntityTooLarge,
            "Your proposed upload exceeds the maximum allowed object size."
        ),
        IngestError::Body(msg) => {
            tracing::warn!(error = %msg, "request body failed");
            // s3s's body-verification error types are private; their messages name the variant.
            if msg.contains("Sha256Mismatch") {
                let mut err = S3Error::with_message(
                    S3ErrorCode::Custom("XAmzContentSHA256Mismatch".into()),
                    "The provided 'x-amz-content-sha256' header does not match what was computed.",
                );
                err.set_status_code(http::StatusCode::BAD_REQUEST);
                err
            } else if msg.contains("SignatureMismatch") {
                s3_error!(
                    SignatureDoesNotMatch,
                    "The chunk signature does not match what was computed."
                )
            } else {
                s3_error!(IncompleteBody, "The request body terminated unexpectedly: {msg}")
            }
        }
        IngestError::Store(e) => store_error(e),
    }
}

pub fn internal(what: &str, e: impl std::fmt::Display) -> S3Error {
    tracing::error!(error = %e, "{what}");
    s3_error!(InternalError, "We encountered an internal error. Please try again.")
}

/// The id `server.rs` gives each request (its `x-amz-request-id`), in the request extensions so
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
    s3_error!(InternalError, "We encountered an internal error. Please try again.")
}
