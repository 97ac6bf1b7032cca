//! The one error type of the transform module, and how each variant maps to an HTTP status.

use thiserror::Error;

/// Everything that can go wrong between a query string and an encoded derivative.
///
/// Suggested mapping for the server (see [`TransformError::http_status`]):
/// `InvalidArgument` → 400 InvalidArgument, `UnsupportedSource` → 415, `TooLarge` → 413,
/// `Corrupt` → 422, `Timeout` → 503 (retryable), `Internal` → 500.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TransformError {
    /// A transform query parameter is unknown, repeated or out of range.
    #[error("invalid transform parameter `{param}`: {message}")]
    InvalidArgument { param: String, message: String },
    /// The object is not an image, or is in a format we do not read.
    #[error("unsupported source: {0}")]
    UnsupportedSource(String),
    /// A limit (source bytes, source pixels, output pixels) would be exceeded.
    #[error("too large: {0}")]
    TooLarge(String),
    /// The image claims to be a supported format but its data is truncated or malformed.
    #[error("corrupt image: {0}")]
    Corrupt(String),
    /// The per-request deadline passed between two pipeline steps.
    #[error("transform deadline exceeded")]
    Timeout,
    /// A bug or an encoder failure that is not the client's fault.
    #[error("internal transform error: {0}")]
    Internal(String),
}

impl TransformError {
    pub(crate) fn invalid(param: &str, message: impl Into<String>) -> Self {
        TransformError::InvalidArgument {
            param: param.to_string(),
            message: message.into(),
        }
    }

    /// The HTTP status code the server should answer with.
    pub fn http_status(&self) -> u16 {
        match self {
            TransformError::InvalidArgument { .. } => 400,
            TransformError::UnsupportedSource(_) => 415,
            TransformError::TooLarge(_) => 413,
            TransformError::Corrupt(_) => 422,
            TransformError::Timeout => 503,
            TransformError::Internal(_) => 500,
        }
    }
}
