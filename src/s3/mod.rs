//! The S3 API: `impl s3s::S3 for Strata`, one concern per file. This file holds the shared
//! state and helpers; each operation lives in the file named after its concern.

mod acl;
mod bucket;
pub use bucket::RESERVED_BUCKET;
pub mod checksum;
pub mod conditional;
mod copy;
mod cors;
mod derived;
mod encryption;
pub mod errors;
mod get;
mod lifecycle;
mod list;
pub(crate) mod multipart;
pub(crate) mod object;
mod policy;
mod public_access;
mod read;
mod storage_class;
mod tagging;
mod versioning;
mod website;

use std::collections::BTreeMap;
use std::sync::Arc;

use s3s::dto::*;
use s3s::{S3Request, S3Response, S3Result, S3};

use crate::auth::Authorizer;
use crate::config::{Limits, TransformConfig};
use crate::derivative::Derivatives;
use crate::store::faults::{crash_point, CrashPoint};
use crate::store::meta::Rejected;
use crate::store::records::{BucketRecord, ObjectHeaders, ObjectRecord, VersioningMode, NULL_VERSION};
use crate::store::{Retires, Store, Unflushed};
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
    /// Master and SSE-KMS keys.
    pub keyring: crate::store::keyring::Keyring,
    pub default_kms_key_id: Option<String>,
    /// `website.max_routing_rules`.
    pub website_max_routing_rules: usize,
}

/// A response status s3s 0.14 cannot express: it ignores `S3Response::status` for most
/// operations (RestoreObject's 202), so handlers put this in the response extensions and
/// `http/server.rs` applies it.
#[derive(Clone, Copy, Debug)]
pub struct StatusOverride(pub http::StatusCode);

/// Who made a request (see [`caller_or_anonymous`]); kept fallible for the handlers that
/// must know a signed caller.
fn caller<T>(req: &S3Request<T>) -> S3Result<String> {
    Ok(caller_or_anonymous(req))
}

/// Who made a request: the access key, or `anonymous` for an unsigned request that the
/// access policy let through (S3 records such writes as owned by the anonymous user).
fn caller_or_anonymous<T>(req: &S3Request<T>) -> String {
    req.credentials
        .as_ref()
        .map_or_else(|| ANONYMOUS.to_string(), |c| c.access_key.clone())
}

/// The owner name of objects written by unsigned requests (a public-read-write bucket).
pub const ANONYMOUS: &str = "anonymous";

fn check_key(key: &str) -> S3Result<()> {
    if key.len() > MAX_KEY_BYTES {
        return Err(errors::key_too_long());
    }
    if key.is_empty() {
        return Err(errors::invalid_argument("Object key must not be empty"));
    }
    // Listings are XML 1.0, which cannot carry these characters at all (not even escaped):
    // one such key would make its bucket unlistable for every client.
    let unrepresentable =
        |c: char| matches!(c, '\u{0}'..='\u{8}' | '\u{B}' | '\u{C}' | '\u{E}'..='\u{1F}' | '\u{FFFE}' | '\u{FFFF}');
    if key.chars().any(unrepresentable) {
        return Err(errors::invalid_argument(
            "Object key contains a control character that cannot be represented in XML",
        ));
    }
    Ok(())
}

impl Strata {
    fn bucket(&self, name: &str) -> S3Result<BucketRecord> {
        match self.store.meta.bucket(name) {
            Ok(Some(b)) => Ok(b),
            Ok(None) => Err(errors::no_such_bucket()),
            Err(e) => Err(store_error(e)),
        }
    }

    /// The version of bucket/key a request names with `versionId` (or the latest). S3's
    /// answers: a malformed id is 400 InvalidArgument, an unknown one 404 NoSuchVersion, and
    /// naming a delete marker 405 MethodNotAllowed.
    fn object_at(&self, bucket: &str, key: &str, version_id: Option<&str>) -> S3Result<ObjectRecord> {
        let found = match version_id {
            None => self.store.meta.object(bucket, key),
            Some(v) => {
                if v != NULL_VERSION && ObjectRecord::seq_of_version_id(v).is_none() {
                    return Err(errors::invalid_version_id());
                }
                self.store.meta.object_version(bucket, key, v)
            }
        };
        match found {
            Ok(Some(rec)) if rec.delete_marker => {
                let mut e = match version_id {
                    None => errors::no_such_key(),
                    Some(_) => errors::method_not_allowed(),
                };
                e.set_headers(delete_marker_headers(&rec));
                Err(e)
            }
            Ok(Some(rec)) => Ok(rec),
            Ok(None) => {
                self.bucket(bucket)?;
                Err(match version_id {
                    None => errors::no_such_key(),
                    Some(_) => errors::no_such_version(),
                })
            }
            Err(e) => Err(store_error(e)),
        }
    }

    /// Changes bucket `name`'s configuration with `change` and waits until it is durable.
    async fn update_bucket(
        &self,
        name: &str,
        change: impl Fn(&mut BucketRecord) -> S3Result<()>,
    ) -> S3Result<BucketRecord> {
        let updated = match self.store.meta.update_bucket(name, change) {
            Ok(Some(b)) => b,
            Ok(None) => return Err(errors::no_such_bucket()),
            Err(Rejected::Condition(e)) => return Err(e),
            Err(Rejected::Store(e)) => return Err(store_error(e)),
        };
        self.store.meta.durable().await.map_err(store_error)?;
        Ok(updated)
    }

    /// Identity of a new version of an object in `bucket` (versioned only while Enabled).
    fn new_version(&self, bucket: &BucketRecord) -> S3Result<VersionStamp> {
        let seq = self.store.meta.next_seq().map_err(store_error)?;
        Ok(VersionStamp {
            version_id: ObjectRecord::version_id_for(seq),
            seq,
            versioned: bucket.versioning_mode() == VersioningMode::Enabled,
        })
    }

    /// The one tail of every object write and delete (PUT, CopyObject, CompleteMultipartUpload,
    /// DeleteObject): the change becomes durable, between the `meta-applied` and
    /// `meta-durable` crash points, and only then is what it retired freed (blobs after the
    /// grace period, every derivative made from them). Returns what the change produced.
    async fn settle<T: Retires>(&self, bucket: &str, key: &str, change: Unflushed<T>) -> S3Result<T> {
        crash_point(CrashPoint::MetaApplied);
        let done = change.durable().await.map_err(store_error)?;
        crash_point(CrashPoint::MetaDurable);
        self.free_retired(bucket, key, &done);
        Ok(done)
    }

    /// [`Strata::settle`] for changes to several keys made durable together (DeleteObjects).
    async fn settle_many<T: Retires>(
        &self,
        bucket: &str,
        changes: Unflushed<Vec<(String, T)>>,
    ) -> S3Result<Vec<(String, T)>> {
        crash_point(CrashPoint::MetaApplied);
        let done = changes.durable().await.map_err(store_error)?;
        crash_point(CrashPoint::MetaDurable);
        for (key, change) in &done {
            self.free_retired(bucket, key, change);
        }
        Ok(done)
    }

    fn free_retired(&self, bucket: &str, key: &str, change: &impl Retires) {
        for old in change.retired() {
            self.derivatives.retire_version(&self.store, bucket, key, old);
        }
    }

    fn user_metadata(&self, m: Option<Metadata>) -> S3Result<BTreeMap<String, String>> {
        let m: BTreeMap<String, String> = m.unwrap_or_default().into_iter().collect();
        let total: usize = m.iter().map(|(k, v)| k.len() + v.len()).sum();
        if total > self.limits.max_user_metadata_bytes {
            return Err(errors::metadata_too_large(format!(
                "Your metadata headers exceed the maximum allowed metadata size ({} bytes)",
                self.limits.max_user_metadata_bytes
            )));
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

/// A new version's identity, fixed before its record is written.
struct VersionStamp {
    version_id: String,
    seq: u64,
    versioned: bool,
}

/// The `x-amz-version-id` a response reports for `rec`: none in buckets that never had
/// versioning, `null` for null versions, the id otherwise.
fn reported_version(bucket: &BucketRecord, rec: &ObjectRecord) -> Option<String> {
    (bucket.versioning.is_some() || rec.versioned).then(|| rec.client_version_id().to_string())
}

/// Headers S3 sends when the version a request reached is a delete marker.
fn delete_marker_headers(rec: &ObjectRecord) -> http::HeaderMap {
    let mut h = http::HeaderMap::new();
    h.insert("x-amz-delete-marker", http::HeaderValue::from_static("true"));
    if let Ok(v) = http::HeaderValue::from_str(rec.client_version_id()) {
        h.insert("x-amz-version-id", v);
    }
    h
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
        let id = errors::request_id(&req.extensions);
        get::get(self, req)
            .await
            .map_err(|e| errors::with_request_id(e, id.as_deref()))
    }
    async fn head_object(&self, req: S3Request<HeadObjectInput>) -> S3Result<S3Response<HeadObjectOutput>> {
        get::head(self, req).await
    }
    async fn delete_object(&self, req: S3Request<DeleteObjectInput>) -> S3Result<S3Response<DeleteObjectOutput>> {
        object::delete(self, req).await
    }
    async fn delete_objects(&self, req: S3Request<DeleteObjectsInput>) -> S3Result<S3Response<DeleteObjectsOutput>> {
        object::delete_many(self, req).await
    }
    async fn copy_object(&self, req: S3Request<CopyObjectInput>) -> S3Result<S3Response<CopyObjectOutput>> {
        let id = errors::request_id(&req.extensions);
        copy::copy_object(self, req)
            .await
            .map_err(|e| errors::with_request_id(e, id.as_deref()))
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
        let id = errors::request_id(&req.extensions);
        copy::upload_part_copy(self, req)
            .await
            .map_err(|e| errors::with_request_id(e, id.as_deref()))
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

    // ---- versioning ----
    async fn put_bucket_versioning(
        &self,
        req: S3Request<PutBucketVersioningInput>,
    ) -> S3Result<S3Response<PutBucketVersioningOutput>> {
        versioning::put(self, req).await
    }
    async fn get_bucket_versioning(
        &self,
        req: S3Request<GetBucketVersioningInput>,
    ) -> S3Result<S3Response<GetBucketVersioningOutput>> {
        versioning::get(self, req).await
    }
    async fn list_object_versions(
        &self,
        req: S3Request<ListObjectVersionsInput>,
    ) -> S3Result<S3Response<ListObjectVersionsOutput>> {
        versioning::list(self, req).await
    }

    // ---- ACLs ----
    async fn put_bucket_acl(&self, req: S3Request<PutBucketAclInput>) -> S3Result<S3Response<PutBucketAclOutput>> {
        acl::put_bucket(self, req).await
    }
    async fn get_bucket_acl(&self, req: S3Request<GetBucketAclInput>) -> S3Result<S3Response<GetBucketAclOutput>> {
        acl::get_bucket(self, req).await
    }
    async fn put_object_acl(&self, req: S3Request<PutObjectAclInput>) -> S3Result<S3Response<PutObjectAclOutput>> {
        acl::put_object(self, req).await
    }
    async fn get_object_acl(&self, req: S3Request<GetObjectAclInput>) -> S3Result<S3Response<GetObjectAclOutput>> {
        acl::get_object(self, req).await
    }

    // ---- bucket policy and Block Public Access ----
    async fn put_bucket_policy(
        &self,
        req: S3Request<PutBucketPolicyInput>,
    ) -> S3Result<S3Response<PutBucketPolicyOutput>> {
        policy::put(self, req).await
    }
    async fn get_bucket_policy(
        &self,
        req: S3Request<GetBucketPolicyInput>,
    ) -> S3Result<S3Response<GetBucketPolicyOutput>> {
        policy::get(self, req).await
    }
    async fn delete_bucket_policy(
        &self,
        req: S3Request<DeleteBucketPolicyInput>,
    ) -> S3Result<S3Response<DeleteBucketPolicyOutput>> {
        policy::delete(self, req).await
    }
    async fn get_bucket_policy_status(
        &self,
        req: S3Request<GetBucketPolicyStatusInput>,
    ) -> S3Result<S3Response<GetBucketPolicyStatusOutput>> {
        policy::status(self, req).await
    }
    async fn put_public_access_block(
        &self,
        req: S3Request<PutPublicAccessBlockInput>,
    ) -> S3Result<S3Response<PutPublicAccessBlockOutput>> {
        public_access::put(self, req).await
    }
    async fn get_public_access_block(
        &self,
        req: S3Request<GetPublicAccessBlockInput>,
    ) -> S3Result<S3Response<GetPublicAccessBlockOutput>> {
        public_access::get(self, req).await
    }
    async fn delete_public_access_block(
        &self,
        req: S3Request<DeletePublicAccessBlockInput>,
    ) -> S3Result<S3Response<DeletePublicAccessBlockOutput>> {
        public_access::delete(self, req).await
    }

    // ---- storage classes ----
    async fn restore_object(&self, req: S3Request<RestoreObjectInput>) -> S3Result<S3Response<RestoreObjectOutput>> {
        storage_class::restore_object(self, req).await
    }

    // ---- CORS ----
    async fn put_bucket_cors(&self, req: S3Request<PutBucketCorsInput>) -> S3Result<S3Response<PutBucketCorsOutput>> {
        cors::put(self, req).await
    }
    async fn get_bucket_cors(&self, req: S3Request<GetBucketCorsInput>) -> S3Result<S3Response<GetBucketCorsOutput>> {
        cors::get(self, req).await
    }
    async fn delete_bucket_cors(
        &self,
        req: S3Request<DeleteBucketCorsInput>,
    ) -> S3Result<S3Response<DeleteBucketCorsOutput>> {
        cors::delete(self, req).await
    }

    // ---- tagging ----
    async fn put_object_tagging(
        &self,
        req: S3Request<PutObjectTaggingInput>,
    ) -> S3Result<S3Response<PutObjectTaggingOutput>> {
        tagging::put_object(self, req).await
    }
    async fn get_object_tagging(
        &self,
        req: S3Request<GetObjectTaggingInput>,
    ) -> S3Result<S3Response<GetObjectTaggingOutput>> {
        tagging::get_object(self, req).await
    }
    async fn delete_object_tagging(
        &self,
        req: S3Request<DeleteObjectTaggingInput>,
    ) -> S3Result<S3Response<DeleteObjectTaggingOutput>> {
        tagging::delete_object(self, req).await
    }
    async fn put_bucket_tagging(
        &self,
        req: S3Request<PutBucketTaggingInput>,
    ) -> S3Result<S3Response<PutBucketTaggingOutput>> {
        tagging::put_bucket(self, req).await
    }
    async fn get_bucket_tagging(
        &self,
        req: S3Request<GetBucketTaggingInput>,
    ) -> S3Result<S3Response<GetBucketTaggingOutput>> {
        tagging::get_bucket(self, req).await
    }
    async fn delete_bucket_tagging(
        &self,
        req: S3Request<DeleteBucketTaggingInput>,
    ) -> S3Result<S3Response<DeleteBucketTaggingOutput>> {
        tagging::delete_bucket(self, req).await
    }

    // ---- default encryption ----
    async fn put_bucket_encryption(
        &self,
        req: S3Request<PutBucketEncryptionInput>,
    ) -> S3Result<S3Response<PutBucketEncryptionOutput>> {
        encryption::put_bucket(self, req).await
    }
    async fn get_bucket_encryption(
        &self,
        req: S3Request<GetBucketEncryptionInput>,
    ) -> S3Result<S3Response<GetBucketEncryptionOutput>> {
        encryption::get_bucket(self, req).await
    }
    async fn delete_bucket_encryption(
        &self,
        req: S3Request<DeleteBucketEncryptionInput>,
    ) -> S3Result<S3Response<DeleteBucketEncryptionOutput>> {
        encryption::delete_bucket(self, req).await
    }

    // ---- static website ----
    async fn put_bucket_website(
        &self,
        req: S3Request<PutBucketWebsiteInput>,
    ) -> S3Result<S3Response<PutBucketWebsiteOutput>> {
        website::put(self, req).await
    }
    async fn get_bucket_website(
        &self,
        req: S3Request<GetBucketWebsiteInput>,
    ) -> S3Result<S3Response<GetBucketWebsiteOutput>> {
        website::get(self, req).await
    }
    async fn delete_bucket_website(
        &self,
        req: S3Request<DeleteBucketWebsiteInput>,
    ) -> S3Result<S3Response<DeleteBucketWebsiteOutput>> {
        website::delete(self, req).await
    }

    // ---- lifecycle ----
    async fn put_bucket_lifecycle_configuration(
        &self,
        req: S3Request<PutBucketLifecycleConfigurationInput>,
    ) -> S3Result<S3Response<PutBucketLifecycleConfigurationOutput>> {
        lifecycle::put(self, req).await
    }
    async fn get_bucket_lifecycle_configuration(
        &self,
        req: S3Request<GetBucketLifecycleConfigurationInput>,
    ) -> S3Result<S3Response<GetBucketLifecycleConfigurationOutput>> {
        lifecycle::get(self, req).await
    }
    async fn delete_bucket_lifecycle(
        &self,
        req: S3Request<DeleteBucketLifecycleInput>,
    ) -> S3Result<S3Response<DeleteBucketLifecycleOutput>> {
        lifecycle::delete(self, req).await
    }
}
