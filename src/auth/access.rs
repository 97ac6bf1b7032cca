//! The one `authorize` decision every S3 request passes through (s3s `S3Access::check`).
//!
//! Rules of this stage: anonymous requests are denied; SigV2 header signatures are refused
//! unless enabled (s3s checks no clock skew for them, so a captured request could be replayed
//! forever); SigV2 presigned URLs are accepted (s3s enforces their `Expires`, which we cap at
//! seven days like SigV4's), because that is what `aws s3 presign` and boto3 produce for
//! us-east-1 by default; the root key may do anything; any other key may touch only buckets
//! it owns. `CreateBucket` and `ListBuckets` are let through: the handlers answer
//! `BucketAlreadyExists` and filter the listing by owner.

use s3s::access::{S3Access, S3AccessContext};
use s3s::path::S3Path;
use s3s::{s3_error, S3Result};

use crate::store::MetaStore;

pub struct Authorizer {
    pub root_access_key: String,
    pub meta: MetaStore,
    pub allow_sigv2: bool,
}

/// Longest lifetime of a presigned URL, as S3 allows for SigV4 (seven days).
pub const MAX_PRESIGNED_SECS: i64 = 7 * 24 * 3600;

/// How a request was signed with AWS Signature Version 2, if it was.
#[derive(Debug, PartialEq, Eq)]
pub enum SigV2 {
    /// `Authorization: AWS key:signature` (no clock-skew check in s3s).
    Header,
    /// `?AWSAccessKeyId=…&Expires=…&Signature=…`, with its absolute expiry time.
    Presigned { expires: Option<i64> },
}

pub fn sigv2_kind(headers: &http::HeaderMap, uri: &http::Uri) -> Option<SigV2> {
    let header_v2 = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("AWS "));
    if header_v2 {
        return Some(SigV2::Header);
    }
    let query = uri.query()?;
    let mut pairs = query.split('&').map(|p| p.split_once('=').unwrap_or((p, "")));
    if !pairs.clone().any(|(k, _)| k == "AWSAccessKeyId") {
        return None;
    }
    let expires = pairs.find(|(k, _)| *k == "Expires").and_then(|(_, v)| v.parse().ok());
    Some(SigV2::Presigned { expires })
}

impl Authorizer {
    pub fn is_root(&self, access_key: &str) -> bool {
        access_key == self.root_access_key
    }

    /// May `access_key` act on `bucket`? Missing buckets are allowed through so the handler
    /// can answer `NoSuchBucket`.
    pub fn may_use_bucket(&self, access_key: &str, bucket: &str) -> S3Result<()> {
        if self.is_root(access_key) {
            return Ok(());
        }
        match self.meta.bucket(bucket) {
            Ok(Some(rec)) if rec.owner != access_key => Err(s3_error!(AccessDenied, "Access Denied")),
            Ok(_) => Ok(()),
            Err(e) => {
                tracing::error!(error = %e, "bucket lookup failed during authorization");
                Err(s3_error!(InternalError))
            }
        }
    }
}

#[async_trait::async_trait]
impl S3Access for Authorizer {
    async fn check(&self, cx: &mut S3AccessContext<'_>) -> S3Result<()> {
        match sigv2_kind(cx.headers(), cx.uri()) {
            Some(SigV2::Header) if !self.allow_sigv2 => {
                return Err(s3_error!(
                    AccessDenied,
                    "Signature Version 2 request signing is disabled on this server; use Signature Version 4"
                ));
            }
            Some(SigV2::Presigned { expires }) => {
                let now = time::OffsetDateTime::now_utc().unix_timestamp();
                if expires.is_none_or(|e| e - now > MAX_PRESIGNED_SECS) {
                    return Err(s3_error!(
                        AccessDenied,
                        "Presigned URLs may be valid for at most seven days"
                    ));
                }
            }
            _ => {}
        }
        let Some(cred) = cx.credentials() else {
            return Err(s3_error!(AccessDenied, "Access Denied"));
        };
        let access_key = cred.access_key.clone();
        let op = cx.s3_op().name();
        if matches!(op, "CreateBucket" | "ListBuckets") {
            return Ok(());
        }
        match cx.s3_path() {
            S3Path::Root => Ok(()),
            S3Path::Bucket { bucket } | S3Path::Object { bucket, .. } => self.may_use_bucket(&access_key, bucket),
        }
    }
}
