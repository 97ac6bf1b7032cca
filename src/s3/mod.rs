//! The S3 API: `impl s3s::S3 for Strata`, one concern per file. This file holds the shared
//! state and helpers; each operation lives in the file named after its concern.

mod bucket;
pub use bucket::RESERVED_BUCKET;
pub mod checksum;
pub mod conditional;
mod copy;
mod derived;
pub mod errors;
mod list;
mod multipart;
mod object;

use std::collections::BTreeMap;
use std::sync::Arc;

use s3s::dto::*;
use s3s::{s3_error, S3Request, S3Response, S3Result, S3};

use crate::auth::Authorizer;
use crate::config::{Limits, TransformConfig};
use crate::derivative::{source_id, Derivatives};
use crate::store::records::{BucketRecord, ObjectHeaders, ObjectRecord};
use crate::store::Store;
use errors::store_error;

/// S3 keys are at most 1024 bytes of UTF-8.
pub const MAX_KEY_BYTES: usize = 1024;

pub struct Strata {
    pub store: Store,
    pub limits: Limits,
    pub region: String,
    pub authz: Arc<Authorizer>,
    pub derivatives: Arc<Derivatives>,
    pub transform: TransformConfig,
}

/// The access key of a signed request (s3s has already rejected unsigned ones).
fn caller<T>(req: &S3Request<T>) -> S3Result<String> {
    req.credentials
        .as_ref()
        .map(|c| c.access_key.clone())
        .ok_or_else(|| s3_error!(AccessDenied, "Access Denied"))
}

fn check_key(key: &str) -> S3Result<()> {
    if key.len() > MAX_KEY_BYTES {
        return Err(s3_error!(KeyTooLongError, "Your key is too long"));
    }
    if key.is_empty() {
        return Err(s3_error!(InvalidArgument, "Object key must not be empty"));
    }
    // Listings are XML 1.0, which cannot carry these characters at all (not even escaped):
    // one such key would make its bucket unlistable for every client.
    let unrepresentable =
        |c: char| matches!(c, '\u{0}'..='\u{8}' | '\u{B}' | '\u{C}' | '\u{E}'..='\u{1F}' | '\u{FFFE}' | '\u{FFFF}');
    if key.chars().any(unrepresentable) {
        return Err(s3_error!(
            InvalidArgument,
            "Object key contains a control character that cannot be represented in XML"
        ));
    }
    Ok(())
}

impl Strata {
    fn bucket(&self, name: &str) -> S3Result<BucketRecord> {
        match self.store.meta.bucket(name) {
            Ok(Some(b)) => Ok(b),
            Ok(None) => Err(s3_error!(NoSuchBucket, "The specified bucket does not exist")),
            Err(e) => Err(store_error(e)),
        }
    }

    /// The current record of bucket/key, or NoSuchBucket / NoSuchKey.
    fn object(&self, bucket: &str, key: &str) -> S3Result<ObjectRecord> {
        match self.store.meta.object(bucket, key) {
            Ok(Some(rec)) => Ok(rec),
            Ok(None) => {
                self.bucket(bucket)?;
                Err(s3_error!(NoSuchKey, "The specified key does not exist."))
            }
            Err(e) => Err(store_error(e)),
        }
    }

    /// Frees what a replaced or deleted version held: its blobs (after the grace period)
    /// and every derivative made from it.
    fn retire(&self, bucket: &str, key: &str, old: &ObjectRecord) {
        self.store.blobs.remove(old.blobs().to_vec());
        self.derivatives.purge_source(source_id(bucket, key, &old.version_id));
    }

    fn user_metadata(&self, m: Option<Metadata>) -> S3Result<BTreeMap<String, String>> {
        let m: BTreeMap<String, String> = m.unwrap_or_default().into_iter().collect();
        let total: usize = m.iter().map(|(k, v)| k.len() + v.len()).sum();
        if total > self.limits.max_user_metadata_bytes {
            return Err(s3_error!(
                MetadataTooLarge,
                "Your metadata headers exceed the maximum allowed metadata size ({} bytes)",
                self.limits.max_user_metadata_bytes
            ));
        }
        Ok(m)
    }
}

/// Stored headers from the request fields S3 persists.
#[allow(clippy::too_many_arguments)]
fn object_headers(
    content_type: Option<ContentType>,
    content_encoding: Option<ContentEncoding>,
    content_disposition: Option<ContentDisposition>,
    content_language: Option<ContentLanguage>,
    cache_control: Option<CacheControl>,
    expires: Option<Expires>,
    website_redirect_location: Option<WebsiteRedirectLocation>,
) -> ObjectHeaders {
    ObjectHeaders {
        content_type: content_type.map(|c| c.to_string()),
        content_encoding,
        content_disposition,
        content_language,
        cache_control,
        expires_ms: expires.as_ref().map(crate::util::timestamp_to_ms),
        website_redirect_location,
    }
}

fn etag(value: &str) -> ETag {
    ETag::Strong(value.to_string())
}

#[async_trait::async_trait]
impl S3 for Strata {
    async fn create_bucket(&self, req: S3Request<CreateBucketInput>) -> S3Result<S3Response<CreateBucketOutput>> {
        bucket::create(self, req).await
    }
    async fn delete_bucket(&self, req: S3Request<DeleteBucketInput>) -> S3Result<S3Response<DeleteBucketOutput>> {
        bucket::delete(self, req).await
    }
    async fn head_bucket(&self, req: S3Request<HeadBucketInput>) -> S3Result<S3Response<HeadBucketOutput>> {
        bucket::head(self, req).await
    }
    async fn list_buckets(&self, req: S3Request<ListBucketsInput>) -> S3Result<S3Response<ListBucketsOutput>> {
        bucket::list(self, req).await
    }
    async fn get_bucket_location(
        &self,
        req: S3Request<GetBucketLocationInput>,
    ) -> S3Result<S3Response<GetBucketLocationOutput>> {
        bucket::location(self, req).await
    }
    async fn put_object(&self, req: S3Request<PutObjectInput>) -> S3Result<S3Response<PutObjectOutput>> {
        object::put(self, req).await
    }
    async fn get_object(&self, req: S3Request<GetObjectInput>) -> S3Result<S3Response<GetObjectOutput>> {
        object::get(self, req).await
    }
    async fn head_object(&self, req: S3Request<HeadObjectInput>) -> S3Result<S3Response<HeadObjectOutput>> {
        object::head(self, req).await
    }
    async fn delete_object(&self, req: S3Request<DeleteObjectInput>) -> S3Result<S3Response<DeleteObjectOutput>> {
        object::delete(self, req).await
    }
    async fn delete_objects(&self, req: S3Request<DeleteObjectsInput>) -> S3Result<S3Response<DeleteObjectsOutput>> {
        object::delete_many(self, req).await
    }
    async fn copy_object(&self, req: S3Request<CopyObjectInput>) -> S3Result<S3Response<CopyObjectOutput>> {
        copy::copy_object(self, req).await
    }
    async fn list_objects(&self, req: S3Request<ListObjectsInput>) -> S3Result<S3Response<ListObjectsOutput>> {
        list::list_v1(self, req).await
    }
    async fn list_objects_v2(&self, req: S3Request<ListObjectsV2Input>) -> S3Result<S3Response<ListObjectsV2Output>> {
        list::list_v2(self, req).await
    }
    async fn create_multipart_upload(
        &self,
        req: S3Request<CreateMultipartUploadInput>,
    ) -> S3Result<S3Response<CreateMultipartUploadOutput>> {
        multipart::create(self, req).await
    }
    async fn upload_part(&self, req: S3Request<UploadPartInput>) -> S3Result<S3Response<UploadPartOutput>> {
        multipart::upload_part(self, req).await
    }
    async fn upload_part_copy(
        &self,
        req: S3Request<UploadPartCopyInput>,
    ) -> S3Result<S3Response<UploadPartCopyOutput>> {
        copy::upload_part_copy(self, req).await
    }
    async fn complete_multipart_upload(
        &self,
        req: S3Request<CompleteMultipartUploadInput>,
    ) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
        multipart::complete(self, req).await
    }
    async fn abort_multipart_upload(
        &self,
        req: S3Request<AbortMultipartUploadInput>,
    ) -> S3Result<S3Response<AbortMultipartUploadOutput>> {
        multipart::abort(self, req).await
    }
    async fn list_parts(&self, req: S3Request<ListPartsInput>) -> S3Result<S3Response<ListPartsOutput>> {
        multipart::list_parts(self, req).await
    }
    async fn list_multipart_uploads(
        &self,
        req: S3Request<ListMultipartUploadsInput>,
    ) -> S3Result<S3Response<ListMultipartUploadsOutput>> {
        multipart::list_uploads(self, req).await
    }
}
