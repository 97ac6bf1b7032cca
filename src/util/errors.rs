//! The one place S3 errors are built. Every error Strata answers with (from handlers, the
//! access check, model validation, the admin API, CORS and the website endpoint) comes from a
//! named constructor here, so a code always goes out with its status and, where S3 has one,
//! its standard message; codes s3s has no variant for (`InvalidPartNumber`,
//! `InsufficientStorage`, `AccessForbidden`, …) get their status set in one place.
//!
//! It sits in `util` (the bottom layer) because model validation below the store builds
//! errors too. Mapping internal failures (`StoreError`, ingest errors) to these lives in
//! `s3::errors`. Nothing else builds an `S3Error` by hand: clippy's `disallowed-macros` /
//! `disallowed-methods` (clippy.toml) refuse `s3_error!` and `S3Error::{new, with_message, …}`
//! outside this file, and the source-scan test below fails the build's tests if one appears.

#![allow(clippy::disallowed_methods)]

use std::borrow::Cow;

use http::StatusCode;
use s3s::{S3Error, S3ErrorCode};

/// An error message: a `&'static str` or a formatted `String`.
pub type Msg = Cow<'static, str>;

fn with(code: S3ErrorCode, msg: impl Into<Msg>) -> S3Error {
    S3Error::with_message(code, msg)
}

/// A code s3s has no variant for, with the status S3 sends it with.
fn custom(code: &'static str, status: StatusCode, msg: impl Into<Msg>) -> S3Error {
    let mut e = S3Error::with_message(S3ErrorCode::Custom(code.into()), msg);
    e.set_status_code(status);
    e
}

/// A known code whose status s3s would get wrong (or leave unset) for this use.
fn with_status(code: S3ErrorCode, status: StatusCode, msg: impl Into<Msg>) -> S3Error {
    let mut e = S3Error::with_message(code, msg);
    e.set_status_code(status);
    e
}

// --- Missing things (404) -------------------------------------------------------------------

pub fn no_such_bucket() -> S3Error {
    with(S3ErrorCode::NoSuchBucket, "The specified bucket does not exist")
}

pub fn no_such_key() -> S3Error {
    with(S3ErrorCode::NoSuchKey, "The specified key does not exist.")
}

pub fn no_such_version() -> S3Error {
    with(S3ErrorCode::NoSuchVersion, "The specified version does not exist.")
}

pub fn no_such_upload() -> S3Error {
    with(
        S3ErrorCode::NoSuchUpload,
        "The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.",
    )
}

pub fn no_such_tag_set() -> S3Error {
    with(S3ErrorCode::NoSuchTagSet, "The TagSet does not exist")
}

pub fn no_such_bucket_policy() -> S3Error {
    with(S3ErrorCode::NoSuchBucketPolicy, "The bucket policy does not exist")
}

pub fn no_such_cors_configuration() -> S3Error {
    with(
        S3ErrorCode::NoSuchCORSConfiguration,
        "The CORS configuration does not exist",
    )
}

pub fn no_such_lifecycle_configuration() -> S3Error {
    with(
        S3ErrorCode::NoSuchLifecycleConfiguration,
        "The lifecycle configuration does not exist",
    )
}

pub fn no_such_website_configuration() -> S3Error {
    with(
        S3ErrorCode::NoSuchWebsiteConfiguration,
        "The specified bucket does not have a website configuration",
    )
}

pub fn no_such_public_access_block_configuration() -> S3Error {
    custom(
        "NoSuchPublicAccessBlockConfiguration",
        StatusCode::NOT_FOUND,
        "The public access block configuration was not found",
    )
}

pub fn server_side_encryption_configuration_not_found() -> S3Error {
    with_status(
        S3ErrorCode::ServerSideEncryptionConfigurationNotFoundError,
        StatusCode::NOT_FOUND,
        "The server side encryption configuration was not found",
    )
}

// --- Refusals (403) -------------------------------------------------------------------------

pub fn access_denied() -> S3Error {
    with(S3ErrorCode::AccessDenied, "Access Denied")
}

/// `AccessDenied` saying why (public ACLs blocked, SigV2 disabled, admin is root-only, …).
pub fn access_denied_because(msg: impl Into<Msg>) -> S3Error {
    with(S3ErrorCode::AccessDenied, msg)
}

/// `AccessDenied` with an explicit 403 (for responses rebuilt outside s3s's dispatch).
pub fn access_denied_403(msg: impl Into<Msg>) -> S3Error {
    with_status(S3ErrorCode::AccessDenied, StatusCode::FORBIDDEN, msg)
}

pub fn invalid_access_key_id() -> S3Error {
    S3Error::new(S3ErrorCode::InvalidAccessKeyId)
}

pub fn signature_does_not_match(msg: impl Into<Msg>) -> S3Error {
    with(S3ErrorCode::SignatureDoesNotMatch, msg)
}

/// CORS refusal (`AccessForbidden`, 403): S3's code for a preflight or request no rule allows.
pub fn access_forbidden(msg: &'static str) -> S3Error {
    custom("AccessForbidden", StatusCode::FORBIDDEN, msg)
}

// --- Bad requests (400) ---------------------------------------------------------------------

pub fn invalid_argument(msg: impl Into<Msg>) -> S3Error {
    with(S3ErrorCode::InvalidArgument, msg)
}

/// `InvalidArgument` with an explicit 400.
pub fn invalid_argument_400(msg: impl Into<Msg>) -> S3Error {
    with_status(S3ErrorCode::InvalidArgument, StatusCode::BAD_REQUEST, msg)
}

pub fn invalid_version_id() -> S3Error {
    invalid_argument("Invalid version id specified")
}

pub fn invalid_request(msg: impl Into<Msg>) -> S3Error {
    with(S3ErrorCode::InvalidRequest, msg)
}

/// CORS preflight without what it needs (`BadRequest`, 400).
pub fn bad_request(msg: &'static str) -> S3Error {
    custom("BadRequest", StatusCode::BAD_REQUEST, msg)
}

/// The standard message for an XML body that does not match the schema.
pub const MALFORMED_XML_MESSAGE: &str =
    "The XML you provided was not well-formed or did not validate against our published schema";

pub fn malformed_xml() -> S3Error {
    malformed_xml_because(MALFORMED_XML_MESSAGE)
}

/// `MalformedXML` saying what is wrong (a lifecycle rule, a missing part list, …).
pub fn malformed_xml_because(msg: impl Into<Msg>) -> S3Error {
    with(S3ErrorCode::MalformedXML, msg)
}

/// `MalformedXML` with an explicit 400.
pub fn malformed_xml_400(msg: impl Into<Msg>) -> S3Error {
    with_status(S3ErrorCode::MalformedXML, StatusCode::BAD_REQUEST, msg)
}

pub fn malformed_acl(msg: impl Into<Msg>) -> S3Error {
    with(S3ErrorCode::MalformedACLError, msg)
}

pub fn malformed_policy(msg: impl Into<Msg>) -> S3Error {
    with_status(S3ErrorCode::MalformedPolicy, StatusCode::BAD_REQUEST, msg)
}

pub fn unresolvable_grant_by_email_address() -> S3Error {
    with(
        S3ErrorCode::UnresolvableGrantByEmailAddress,
        "The e-mail address you provided does not match any account on record.",
    )
}

pub fn missing_security_header(msg: impl Into<Msg>) -> S3Error {
    with(S3ErrorCode::MissingSecurityHeader, msg)
}

pub fn unexpected_content(msg: impl Into<Msg>) -> S3Error {
    with(S3ErrorCode::UnexpectedContent, msg)
}

pub fn invalid_bucket_name() -> S3Error {
    with(S3ErrorCode::InvalidBucketName, "The specified bucket is not valid.")
}

pub fn key_too_long() -> S3Error {
    with(S3ErrorCode::KeyTooLongError, "Your key is too long")
}

pub fn invalid_tag(msg: impl Into<Msg>) -> S3Error {
    with(S3ErrorCode::InvalidTag, msg)
}

pub fn invalid_digest() -> S3Error {
    with(
        S3ErrorCode::InvalidDigest,
        "The Content-MD5 you specified is not valid.",
    )
}

pub fn bad_digest(msg: impl Into<Msg>) -> S3Error {
    with(S3ErrorCode::BadDigest, msg)
}

/// The body's `x-amz-content-sha256` did not match (s3s has no variant for the code).
pub fn x_amz_content_sha256_mismatch() -> S3Error {
    custom(
        "XAmzContentSHA256Mismatch",
        StatusCode::BAD_REQUEST,
        "The provided 'x-amz-content-sha256' header does not match what was computed.",
    )
}

pub fn incomplete_body(msg: impl Into<Msg>) -> S3Error {
    with(S3ErrorCode::IncompleteBody, msg)
}

pub fn invalid_part(msg: impl Into<Msg>) -> S3Error {
    with(S3ErrorCode::InvalidPart, msg)
}

pub fn invalid_part_order() -> S3Error {
    with(
        S3ErrorCode::InvalidPartOrder,
        "The list of parts was not in ascending order. Parts must be ordered by part number.",
    )
}

pub fn entity_too_small() -> S3Error {
    with(
        S3ErrorCode::EntityTooSmall,
        "Your proposed upload is smaller than the minimum allowed object size.",
    )
}

pub fn entity_too_large() -> S3Error {
    with(
        S3ErrorCode::EntityTooLarge,
        "Your proposed upload exceeds the maximum allowed object size.",
    )
}

pub fn metadata_too_large(msg: impl Into<Msg>) -> S3Error {
    with(S3ErrorCode::MetadataTooLarge, msg)
}

/// An XML request body declared larger than the limit (400 rather than s3s's 500).
pub fn max_message_length_exceeded(msg: impl Into<Msg>) -> S3Error {
    with_status(S3ErrorCode::MaxMessageLengthExceeded, StatusCode::BAD_REQUEST, msg)
}

pub fn invalid_storage_class(msg: impl Into<Msg>) -> S3Error {
    with(S3ErrorCode::InvalidStorageClass, msg)
}

pub fn invalid_encryption_algorithm() -> S3Error {
    with(
        S3ErrorCode::InvalidEncryptionAlgorithmError,
        "The encryption request you specified is not valid. The valid value is AES256.",
    )
}

/// An SSE-KMS key id the keyring does not know.
pub fn kms_not_found(msg: impl Into<Msg>) -> S3Error {
    custom("KMS.NotFoundException", StatusCode::BAD_REQUEST, msg)
}

pub fn request_timeout() -> S3Error {
    with(
        S3ErrorCode::RequestTimeout,
        "Your socket connection to the server was not read from or written to within the timeout period.",
    )
}

/// The region a request was signed for is not ours (`AuthorizationHeaderMalformed`, 400).
pub fn authorization_header_malformed(msg: impl Into<Msg>) -> S3Error {
    with_status(S3ErrorCode::AuthorizationHeaderMalformed, StatusCode::BAD_REQUEST, msg)
}

/// A presigned URL's credential names the wrong region (400).
pub fn authorization_query_parameters_error(msg: impl Into<Msg>) -> S3Error {
    with_status(
        S3ErrorCode::AuthorizationQueryParametersError,
        StatusCode::BAD_REQUEST,
        msg,
    )
}

// --- State and method -----------------------------------------------------------------------

pub fn bucket_not_empty() -> S3Error {
    with(
        S3ErrorCode::BucketNotEmpty,
        "The bucket you tried to delete is not empty",
    )
}

pub fn bucket_already_exists() -> S3Error {
    with(
        S3ErrorCode::BucketAlreadyExists,
        "The requested bucket name is not available. Please select a different name and try again.",
    )
}

pub fn bucket_already_owned_by_you() -> S3Error {
    with(
        S3ErrorCode::BucketAlreadyOwnedByYou,
        "Your previous request to create the named bucket succeeded and you already own it.",
    )
}

/// 405 (e.g. a version id that names a delete marker).
pub fn method_not_allowed() -> S3Error {
    with_status(
        S3ErrorCode::MethodNotAllowed,
        StatusCode::METHOD_NOT_ALLOWED,
        "The specified method is not allowed against this resource.",
    )
}

pub fn method_not_allowed_because(msg: impl Into<Msg>) -> S3Error {
    with(S3ErrorCode::MethodNotAllowed, msg)
}

pub fn invalid_object_state(msg: impl Into<Msg>) -> S3Error {
    with(S3ErrorCode::InvalidObjectState, msg)
}

/// A conflicting operation is in progress (409).
pub fn operation_aborted(msg: impl Into<Msg>) -> S3Error {
    with_status(S3ErrorCode::OperationAborted, StatusCode::CONFLICT, msg)
}

/// The admin API's answer for deleting an access key that does not exist (404).
pub fn no_such_access_key() -> S3Error {
    with_status(
        S3ErrorCode::InvalidArgument,
        StatusCode::NOT_FOUND,
        "No such access key",
    )
}

pub fn not_implemented(msg: impl Into<Msg>) -> S3Error {
    with(S3ErrorCode::NotImplemented, msg)
}

// --- Reads ----------------------------------------------------------------------------------

pub fn invalid_range() -> S3Error {
    with(S3ErrorCode::InvalidRange, "The requested range is not satisfiable")
}

/// `partNumber` beyond the object's parts (416).
pub fn invalid_part_number() -> S3Error {
    custom(
        "InvalidPartNumber",
        StatusCode::RANGE_NOT_SATISFIABLE,
        "The requested partnumber is not satisfiable",
    )
}

pub fn not_modified() -> S3Error {
    S3Error::new(S3ErrorCode::NotModified)
}

pub fn precondition_failed() -> S3Error {
    with(
        S3ErrorCode::PreconditionFailed,
        "At least one of the pre-conditions you specified did not hold",
    )
}

// --- Transforms -----------------------------------------------------------------------------

/// The object is not an image this server can transform (415).
pub fn unsupported_media_type(msg: impl Into<Msg>) -> S3Error {
    custom("UnsupportedMediaType", StatusCode::UNSUPPORTED_MEDIA_TYPE, msg)
}

/// The image exceeds a transform limit (413).
pub fn image_too_large(msg: impl Into<Msg>) -> S3Error {
    custom("ImageTooLarge", StatusCode::PAYLOAD_TOO_LARGE, msg)
}

/// The image could not be decoded (422).
pub fn invalid_image(msg: impl Into<Msg>) -> S3Error {
    custom("InvalidImage", StatusCode::UNPROCESSABLE_ENTITY, msg)
}

/// Back off and retry (503).
pub fn slow_down(msg: impl Into<Msg>) -> S3Error {
    custom("SlowDown", StatusCode::SERVICE_UNAVAILABLE, msg)
}

// --- Our failures (5xx) ---------------------------------------------------------------------

/// `500 InternalError` with S3's message; what went wrong is logged by the caller, not sent.
pub fn internal_error() -> S3Error {
    with(
        S3ErrorCode::InternalError,
        "We encountered an internal error. Please try again.",
    )
}

/// The volume is full (507).
pub fn insufficient_storage() -> S3Error {
    custom(
        "InsufficientStorage",
        StatusCode::INSUFFICIENT_STORAGE,
        "The server has no space left to store this request; retry later.",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What building an S3 error by hand looks like in source.
    const HAND_BUILT: &[&str] = &[
        "s3_error!",
        "S3Error::new(",
        "S3Error::with_message(",
        "S3Error::with_message_fmt(",
        "S3Error::with_source(",
        "S3Error::internal_error(",
        "S3ErrorCode::Custom(",
        "S3ErrorCode::from_bytes(",
        ".set_code(",
    ];

    fn rust_files(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else { return };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                rust_files(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }

    /// Every S3 error outside this file comes from a constructor here: no handler, model or
    /// endpoint spells a code by hand (unit tests below a file's `#[cfg(test)]` may).
    #[test]
    fn no_s3_error_is_built_outside_this_module() {
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let me = src.join("util").join("errors.rs");
        let mut files = Vec::new();
        rust_files(&src, &mut files);
        assert!(
            files.len() > 20,
            "found only {} source files under {}",
            files.len(),
            src.display()
        );
        let mut found = Vec::new();
        for file in files.iter().filter(|f| **f != me) {
            let text = std::fs::read_to_string(file).expect("read source file");
            let code = text.split("\n#[cfg(test)]\nmod tests").next().unwrap_or_default();
            for (n, line) in code.lines().enumerate() {
                let line = line.trim_start();
                if line.starts_with("//") {
                    continue;
                }
                if let Some(p) = HAND_BUILT.iter().find(|p| line.contains(*p)) {
                    found.push(format!("{}:{}: {p}", file.display(), n + 1));
                }
            }
        }
        assert!(
            found.is_empty(),
            "S3 errors built by hand; add a named constructor to src/util/errors.rs instead:\n{}",
            found.join("\n")
        );
    }

    #[test]
    fn custom_codes_carry_their_status() {
        for (e, code, status) in [
            (invalid_part_number(), "InvalidPartNumber", 416),
            (insufficient_storage(), "InsufficientStorage", 507),
            (
                no_such_public_access_block_configuration(),
                "NoSuchPublicAccessBlockConfiguration",
                404,
            ),
            (access_forbidden("x"), "AccessForbidden", 403),
            (bad_request("x"), "BadRequest", 400),
            (kms_not_found("x"), "KMS.NotFoundException", 400),
            (x_amz_content_sha256_mismatch(), "XAmzContentSHA256Mismatch", 400),
            (slow_down("x"), "SlowDown", 503),
        ] {
            assert_eq!(e.code().as_str(), code);
            assert_eq!(e.status_code().map(|s| s.as_u16()), Some(status), "{code}");
        }
    }

    #[test]
    fn standard_messages() {
        assert_eq!(no_such_key().message(), Some("The specified key does not exist."));
        assert_eq!(no_such_bucket().code(), &S3ErrorCode::NoSuchBucket);
        assert_eq!(access_denied().message(), Some("Access Denied"));
        assert_eq!(invalid_version_id().code(), &S3ErrorCode::InvalidArgument);
        assert_eq!(malformed_xml().message(), Some(MALFORMED_XML_MESSAGE));
        assert_eq!(not_modified().message(), None);
    }
}
