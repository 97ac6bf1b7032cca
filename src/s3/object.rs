//! Single-object writes: PutObject, DeleteObject, DeleteObjects, and [`commit_object`], the
//! last step of every object write (PUT, COPY, multipart complete). Reads are `get.rs`.

use bytes::Bytes;
use s3s::dto::*;
use s3s::{S3Request, S3Response, S3Result};

use super::checksum::{self, Claimed};
use super::conditional;
use super::encryption::{connection_is_secure, report, sse_request};
use super::errors;
use super::errors::{ingest_error, store_error};
use super::{caller, caller_or_anonymous, check_key, etag, object_headers, reported_version, Strata};
use crate::store::blob::{Ingested, IngestedBody};
use crate::store::crypto::Key256;
use crate::store::meta::Rejected;
use crate::store::records::{
    BlobRef, BucketRecord, ObjectData, ObjectRecord, StorageClass, VersioningMode, NULL_VERSION,
};
use crate::store::{Retires, Unflushed};
use crate::util::now_ms;

/// Turns an ingested body into object data, publishing its blob if it has one.
/// A blob of a cold storage class goes to the cold volume.
pub(super) async fn publish_body(s: &Strata, ingested: &Ingested, class: StorageClass) -> S3Result<ObjectData> {
    Ok(match &ingested.body {
        IngestedBody::Inline(b) => ObjectData::Inline(b.to_vec()),
        IngestedBody::Pending(id) => {
            s.store.blobs.publish(id, class.is_cold()).await.map_err(store_error)?;
            ObjectData::Blobs(vec![BlobRef {
                id: id.clone(),
                size: ingested.size,
                md5: ingested.md5.to_vec(),
                crc64: Some(ingested.crc64),
                sealed: ingested.sealed,
                cold: class.is_cold(),
                block_size: ingested.block_size,
            }])
        }
    })
}

pub(super) fn discard(s: &Strata, ingested: &Ingested) {
    if let IngestedBody::Pending(id) = &ingested.body {
        s.store.blobs.discard(id);
    }
}

/// Writes `rec` as the latest version of bucket/key, following the bucket's versioning
/// (atomically checking write conditions), waits until it is durable, then frees the bytes
/// of any version it replaced.
pub(super) async fn commit_object(
    s: &Strata,
    bucket: &BucketRecord,
    bucket_name: &str,
    key: &str,
    rec: ObjectRecord,
    if_match: Option<&ETagCondition>,
    if_none_match: Option<&ETagCondition>,
) -> S3Result<ObjectRecord> {
    let result = s
        .store
        .meta
        .put_version(bucket_name, key, &rec, bucket.versioning_mode(), |current| {
            conditional::check_write(if_match, if_none_match, current.map(|c| c.etag.as_str()))
        });
    let change = match result {
        Ok(change) => change,
        Err(rejected) => {
            s.store.blobs.remove(rec.blobs().to_vec());
            return Err(match rejected {
                Rejected::Condition(e) => e,
                Rejected::Store(e) => store_error(e),
            });
        }
    };
    s.settle(bucket_name, key, change).await?;
    Ok(rec)
}

/// Streams a request body in and verifies it: its length against Content-Length, and the
/// client's checksums (headers, aws-chunked trailers, Content-MD5). On any mismatch the bytes
/// are discarded, so nothing unverified ever becomes visible.
#[allow(clippy::too_many_arguments)] // each is a distinct part of the request; a struct would only rename them
pub(super) async fn ingest_verified(
    s: &Strata,
    body: Option<StreamingBlob>,
    mut claimed: Claimed,
    headers: &http::HeaderMap,
    trailers: Option<&s3s::TrailingHeaders>,
    content_length: Option<i64>,
    inline_max: usize,
    seal: Option<&Key256>,
) -> S3Result<Ingested> {
    let hasher = claimed.hasher(headers)?;
    let ingested = match body {
        Some(body) => {
            s.store
                .blobs
                .ingest(body, hasher, inline_max, s.limits.max_object_size, seal)
                .await
        }
        None => {
            let empty = futures::stream::empty::<Result<Bytes, std::io::Error>>();
            s.store.blobs.ingest(empty, hasher, inline_max, 0, seal).await
        }
    }
    .map_err(ingest_error)?;
    let verified = (|| {
        if let Some(len) = content_length {
            if len as u64 != ingested.size {
                return Err(errors::incomplete_body(
                    "You did not provide the number of bytes specified by the Content-Length HTTP header.",
                ));
            }
        }
        let trailers = trailers.and_then(|t| t.take());
        claimed.merge_trailers(trailers.as_ref())?;
        claimed.verify(&ingested.md5, &ingested.checksums)
    })();
    if let Err(e) = verified {
        discard(s, &ingested);
        return Err(e);
    }
    Ok(ingested)
}

pub async fn put(s: &Strata, req: S3Request<PutObjectInput>) -> S3Result<S3Response<PutObjectOutput>> {
    let owner = caller(&req)?;
    let is_form_upload = req.method == http::Method::POST;
    let input = req.input;
    let bucket = s.bucket(&input.bucket)?;
    check_key(&input.key)?;
    let tags = super::tagging::from_header(input.tagging.as_deref())?;
    let acl = super::acl::object_acl_from_request(s, &bucket, &owner, input.acl.as_ref(), &req.headers)?;
    let encryption = s.encryption_for_write(&bucket, &sse_request!(input), connection_is_secure(&req.extensions))?;
    let user_metadata = s.user_metadata(input.metadata)?;
    let storage_class = super::storage_class::requested(input.storage_class.as_ref())?;
    if input.content_length.unwrap_or(0) as u64 > s.limits.max_object_size {
        return Err(errors::entity_too_large());
    }
    let headers = object_headers(
        input.content_type,
        input.content_encoding,
        input.content_disposition,
        input.content_language,
        input.cache_control,
        input.expires,
        input.website_redirect_location,
    );
    let claimed = Claimed {
        algorithm: input.checksum_algorithm.map(|a| a.as_str().to_string()),
        values: Checksum {
            checksum_crc32: input.checksum_crc32,
            checksum_crc32c: input.checksum_crc32c,
            checksum_crc64nvme: input.checksum_crc64nvme,
            checksum_sha1: input.checksum_sha1,
            checksum_sha256: input.checksum_sha256,
            checksum_type: None,
        },
        content_md5: input.content_md5,
    };
    let ingested = ingest_verified(
        s,
        input.body,
        claimed,
        &req.headers,
        req.trailing_headers.as_ref(),
        input.content_length,
        s.limits.inline_max_bytes,
        encryption.as_ref().map(|(_, k)| k),
    )
    .await?;
    let data = match publish_body(s, &ingested, storage_class).await {
        Ok(d) => d,
        Err(e) => {
            discard(s, &ingested);
            return Err(e);
        }
    };
    let stamp = match s.new_version(&bucket) {
        Ok(v) => v,
        Err(e) => {
            discard(s, &ingested);
            return Err(e);
        }
    };
    let rec = ObjectRecord {
        version_id: stamp.version_id,
        seq: stamp.seq,
        versioned: stamp.versioned,
        delete_marker: false,
        acl,
        tags,
        encryption: encryption.map(|(e, _)| e),
        size: ingested.size,
        etag: hex::encode(ingested.md5),
        last_modified_ms: now_ms(),
        owner,
        headers,
        user_metadata,
        checksums: checksum::full_object(&ingested.checksums),
        parts_count: None,
        data,
        storage_class,
        restored_until_ms: None,
    };
    let rec = commit_object(
        s,
        &bucket,
        &input.bucket,
        &input.key,
        rec,
        input.if_match.as_ref(),
        input.if_none_match.as_ref(),
    )
    .await?;
    let c = checksum::to_dto(&rec.checksums);
    let mut headers = http::HeaderMap::new();
    if is_form_upload {
        // s3s answers an HTML form upload from its own template, which has no ETag or version
        // headers; it does pass ours on, and browser code reads them.
        if let Ok(v) = http::HeaderValue::from_str(&format!("\"{}\"", rec.etag)) {
            headers.insert(http::header::ETAG, v);
        }
        if let Some(v) = reported_version(&bucket, &rec).and_then(|v| http::HeaderValue::from_str(&v).ok()) {
            headers.insert("x-amz-version-id", v);
        }
    }
    let sse = report(rec.encryption.as_ref());
    let mut resp = S3Response::new(PutObjectOutput {
        e_tag: Some(etag(&rec.etag)),
        version_id: reported_version(&bucket, &rec),
        server_side_encryption: sse.server_side_encryption,
        ssekms_key_id: sse.kms_key_id,
        sse_customer_algorithm: sse.customer_algorithm,
        sse_customer_key_md5: sse.customer_key_md5,
        checksum_crc32: c.checksum_crc32,
        checksum_crc32c: c.checksum_crc32c,
        checksum_crc64nvme: c.checksum_crc64nvme,
        checksum_sha1: c.checksum_sha1,
        checksum_sha256: c.checksum_sha256,
        checksum_type: c.checksum_type,
        ..Default::default()
    });
    resp.headers = headers;
    Ok(resp)
}

/// What one DELETE did, as S3 reports it.
struct Deleted {
    /// The version removed or the delete marker created.
    version_id: Option<String>,
    /// The version removed was a delete marker, or a delete marker was created.
    delete_marker: bool,
    retired: Vec<ObjectRecord>,
}

impl Retires for Deleted {
    fn retired(&self) -> &[ObjectRecord] {
        &self.retired
    }
}

/// Deletes bucket/key the way S3 does for the bucket's versioning state; durable once the
/// caller settles it.
fn delete_one(
    s: &Strata,
    bucket: &BucketRecord,
    bucket_name: &str,
    key: &str,
    owner: &str,
    version_id: Option<&str>,
) -> S3Result<Unflushed<Deleted>> {
    if let Some(v) = version_id {
        if v != NULL_VERSION && ObjectRecord::seq_of_version_id(v).is_none() {
            return Err(errors::invalid_version_id());
        }
        let removed = s.store.meta.delete_version(bucket_name, key, v).map_err(store_error)?;
        let version_id = Some(v.to_string());
        return Ok(match removed {
            Some(d) => d.map(|d| Deleted {
                version_id,
                delete_marker: d.record.delete_marker,
                retired: vec![d.record],
            }),
            // Nothing changed: S3 answers a delete of a missing version with success too.
            None => Unflushed::unchanged(Deleted {
                version_id,
                delete_marker: false,
                retired: Vec::new(),
            }),
        });
    }
    let mode = bucket.versioning_mode();
    let marker = match mode {
        VersioningMode::Unversioned => None,
        VersioningMode::Enabled | VersioningMode::Suspended => {
            let stamp = s.new_version(bucket)?;
            Some(ObjectRecord::delete_marker(
                stamp.version_id,
                stamp.seq,
                stamp.versioned,
                owner,
                now_ms(),
            ))
        }
    };
    let done = s
        .store
        .meta
        .delete_current(bucket_name, key, mode, marker.as_ref())
        .map_err(store_error)?;
    Ok(done.map(|d| Deleted {
        version_id: d.marker.as_ref().map(|m| m.client_version_id().to_string()),
        delete_marker: d.marker.is_some(),
        retired: d.change.retired,
    }))
}

pub async fn delete(s: &Strata, req: S3Request<DeleteObjectInput>) -> S3Result<S3Response<DeleteObjectOutput>> {
    let owner = caller_or_anonymous(&req);
    let input = req.input;
    let bucket = s.bucket(&input.bucket)?;
    let done = delete_one(
        s,
        &bucket,
        &input.bucket,
        &input.key,
        &owner,
        input.version_id.as_deref(),
    )?;
    let done = s.settle(&input.bucket, &input.key, done).await?;
    Ok(S3Response::new(DeleteObjectOutput {
        delete_marker: done.delete_marker.then_some(true),
        version_id: done.version_id,
        ..Default::default()
    }))
}

/// S3 caps DeleteObjects at 1000 keys per request.
const MAX_DELETE_KEYS: usize = 1000;

pub async fn delete_many(s: &Strata, req: S3Request<DeleteObjectsInput>) -> S3Result<S3Response<DeleteObjectsOutput>> {
    let owner = caller_or_anonymous(&req);
    let facts = crate::auth::RequestFacts::of(&req);
    let input = req.input;
    let bucket = s.bucket(&input.bucket)?;
    let objects = input.delete.objects;
    if objects.len() > MAX_DELETE_KEYS {
        return Err(errors::malformed_xml());
    }
    let quiet = input.delete.quiet.unwrap_or(false);
    let mut pending = Vec::new();
    let mut errors = Vec::new();
    for obj in objects {
        let outcome = s
            .authz
            .authorize_delete(&facts, &input.bucket, &bucket, &obj.key, obj.version_id.is_some())
            .and_then(|()| delete_one(s, &bucket, &input.bucket, &obj.key, &owner, obj.version_id.as_deref()));
        match outcome {
            Ok(done) => pending.push(done.map(|d| (obj.key, (obj.version_id, d)))),
            Err(e) => {
                if e.status_code().is_some_and(|c| c.is_server_error()) || e.code() == &s3s::S3ErrorCode::InternalError
                {
                    tracing::error!(error = ?e, "delete failed");
                }
                errors.push(Error {
                    code: Some(e.code().as_str().to_string()),
                    key: Some(obj.key),
                    message: e.message().map(str::to_string),
                    version_id: obj.version_id,
                });
            }
        }
    }
    let done = s.settle_many(&input.bucket, Unflushed::all(pending)).await?;
    let deleted = if quiet {
        Vec::new()
    } else {
        done.into_iter()
            .map(|(key, (asked, d))| {
                let (version_id, marker_version) = match (asked, d.delete_marker) {
                    (None, true) => (None, d.version_id),
                    (Some(v), true) => (Some(v.clone()), Some(v)),
                    (v, false) => (v, None),
                };
                DeletedObject {
                    key: Some(key),
                    version_id,
                    delete_marker: d.delete_marker.then_some(true),
                    delete_marker_version_id: marker_version,
                }
            })
            .collect()
    };
    Ok(S3Response::new(DeleteObjectsOutput {
        deleted: Some(deleted),
        errors: (!errors.is_empty()).then_some(errors),
        ..Default::default()
    }))
}
