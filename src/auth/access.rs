//! The one `authorize` decision every S3 request passes through (s3s `S3Access::check`).
//!
//! Rules of this stage: anonymous requests are denied; SigV2 is refused unless enabled (s3s
//! checks no clock skew for it); the root key may do anything; any other key may touch only
//! buckets it owns. `CreateBucket` and `ListBuckets` are let through: the handlers answer
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

/// True when the request was signed with AWS Signature Version 2 (header or query form).
pub fn is_sigv2(headers: &http::HeaderMap, uri: &http::Uri) -> bool {
    let header_v2 = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("AWS "));
    let query_v2 = uri
        .query()
        .is_some_and(|q| q.split('&').any(|p| p.starts_with("AWSAccessKeyId=")));
    header_v2 || query_v2
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
        if !self.allow_sigv2 && is_sigv2(cx.headers(), cx.uri()) {
            return Err(s3_error!(
                AccessDenied,
                "Signature Version 2 is disabled on this server; use Signature Version 4"
            ));
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
