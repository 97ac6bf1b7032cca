//! Single-object operations: PutObject, GetObject, HeadObject, DeleteObject, DeleteObjects,
//! and [`commit_object`], the last step of every write (PUT, COPY, multipart complete).

use bytes::Bytes;
use s3s::dto::*;
use s3s::{S3Request, S3Response, S3Result};

use super::checksum::{self, Claimed};
use super::conditional::{self, Conditions, Kind};
use super::encryption::{connection_is_secure, customer_key_headers, report, sse_request};
use super::errors;
use super::errors::{ingest_error, store_error};
use super::{caller, caller_or_anonymous, check_key, etag, object_headers, reported_version, Strata};
use crate::store::blob::{Ingested, IngestedBody};
use crate::store::crypto::Key256;
use crate::store::meta::Rejected;
use crate::store::records::{
    BlobRef, BucketRecord, Checksums, ObjectData, ObjectRecord, StorageClass, VersioningMode, NULL_VERSION,
};
use crate::util::{ms_to_timestamp, now_ms};

/// S3's content type for objects stored without one.
const DEFAULT_CONTENT_TYPE: &str = "binary/octet-stream";

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
    crate::store::faults::crash_point("meta-applied");
    s.store.meta.durable().await.map_err(store_error)?;
    crate::store::faults::crash_point("meta-durable");
    for old in &change.retired {
        s.retire(bucket_name, key, old);
    }
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

/// Which bytes of an object a GET/HEAD returns.
pub(super) struct Selection {
    pub start: u64,
    pub end: u64,
    pub content_range: Option<String>,
    pub parts_count: Option<i32>,
}

impl Selection {
    fn is_whole(&self, rec: &ObjectRecord) -> bool {
        self.start == 0 && self.end == rec.size && self.content_range.is_none()
    }
}

pub(super) fn select(rec: &ObjectRecord, part_number: Option<i32>, range: Option<&Range>) -> S3Result<Selection> {
    if let Some(n) = part_number {
        if range.is_some() {
            return Err(errors::invalid_request(
                "Cannot specify both Range header and partNumber query parameter",
            ));
        }
        let count = rec.parts_count.unwrap_or(1);
        if n < 1 || n as u32 > count {
            return Err(errors::invalid_part_number());
        }
        let (start, end) = match rec.parts_count {
            None => (0, rec.size),
            Some(_) => {
                let blobs = rec.blobs();
                let idx = (n - 1) as usize;
                let start: u64 = blobs.iter().take(idx).map(|b| b.size).sum();
                let size = blobs.get(idx).map(|b| b.size).unwrap_or(0);
                (start, start + size)
            }
        };
        let content_range =
            (rec.parts_count.is_some() && end > start).then(|| format!("bytes {}-{}/{}", start, end - 1, rec.size));
        return Ok(Selection {
            start,
            end,
            content_range,
            parts_count: Some(count as i32),
        });
    }
    match range {
        None => Ok(Selection {
            start: 0,
            end: rec.size,
            content_range: None,
            parts_count: rec.parts_count.map(|c| c as i32),
        }),
        Some(r) => {
            let r = r.check(rec.size).map_err(|_| errors::invalid_range())?;
            Ok(Selection {
                start: r.start,
                end: r.end,
                content_range: Some(format!("bytes {}-{}/{}", r.start, r.end.saturating_sub(1), rec.size)),
                parts_count: rec.parts_count.map(|c| c as i32),
            })
        }
    }
}

fn content_type(rec: &ObjectRecord) -> String {
    rec.headers
        .content_type
        .clone()
        .unwrap_or_else(|| DEFAULT_CONTENT_TYPE.to_string())
}

fn checksums_if(enabled: bool, c: &Checksums) -> Checksum {
    if enabled {
        checksum::to_dto(c)
    } else {
        Checksum::default()
    }
}

fn metadata(rec: &ObjectRecord) -> Option<Metadata> {
    (!rec.user_metadata.is_empty()).then(|| rec.user_metadata.clone().into_iter().collect())
}

/// The transform parameters of a GET/HEAD, if any (`None`: a plain S3 read).
fn transform_params(uri: &http::Uri) -> S3Result<Option<crate::transform::RawSpec>> {
    crate::transform::parse_query(uri.query().unwrap_or("")).map_err(|e| super::derived::transform_error(&e))
}

pub async fn get(s: &Strata, req: S3Request<GetObjectInput>) -> S3Result<S3Response<GetObjectOutput>> {
    if let Some(raw) = transform_params(&req.uri)? {
        return super::derived::get(s, req, raw).await;
    }
    let secure = connection_is_secure(&req.extensions);
    let request_id = super::errors::request_id(&req.extensions);
    let input = req.input;
    let rec = s.object_at(&input.bucket, &input.key, input.version_id.as_deref())?;
    let bucket = s.bucket(&input.bucket)?;
    super::storage_class::check_readable(&rec)?;
    let data_key = s.data_key_for_read(rec.encryption.as_ref(), customer_key_headers!(input), secure)?;
    let sse = report(rec.encryption.as_ref());
    conditional::check(
        &Conditions {
            if_match: input.if_match.as_ref(),
            if_none_match: input.if_none_match.as_ref(),
            if_modified_since: input.if_modified_since.as_ref(),
            if_unmodified_since: input.if_unmodified_since.as_ref(),
        },
        &rec.etag,
        rec.last_modified_ms,
        Kind::Read,
    )?;
    let sel = select(&rec, input.part_number, input.range.as_ref())?;
    let want_checksums = input
        .checksum_mode
        .as_ref()
        .is_some_and(|m| m.as_str() == ChecksumMode::ENABLED)
        && sel.is_whole(&rec);
    let c = checksums_if(want_checksums, &rec.checksums);
    let body = super::read::object_stream(
        s,
        &input.bucket,
        &input.key,
        &rec,
        data_key.as_ref(),
        sel.start,
        sel.end,
        super::read::Purpose::Get,
        request_id,
    );
    let body = super::read::response_body(body).await?;
    let h = &rec.headers;
    let output = GetObjectOutput {
        body: Some(body),
        content_length: Some((sel.end - sel.start) as i64),
        content_range: sel.content_range,
        parts_count: sel.parts_count,
        accept_ranges: Some("bytes".to_string()),
        e_tag: Some(etag(&rec.etag)),
        last_modified: Some(ms_to_timestamp(rec.last_modified_ms)),
        content_type: Some(input.response_content_type.unwrap_or_else(|| content_type(&rec))),
        content_encoding: input.response_content_encoding.or_else(|| h.content_encoding.clone()),
        content_disposition: input
            .response_content_disposition
            .or_else(|| h.content_disposition.clone()),
        content_language: input.response_content_language.or_else(|| h.content_language.clone()),
        cache_control: input.response_cache_control.or_else(|| h.cache_control.clone()),
        expires: input.response_expires.or_else(|| h.expires_ms.map(ms_to_timestamp)),
        website_redirect_location: h.website_redirect_location.clone(),
        storage_class: super::storage_class::reported(&rec),
        restore: super::storage_class::restore_header(&rec),
        metadata: metadata(&rec),
        version_id: reported_version(&bucket, &rec),
        server_side_encryption: sse.server_side_encryption.clone(),
        ssekms_key_id: sse.kms_key_id.clone(),
        sse_customer_algorithm: sse.customer_algorithm.clone(),
        sse_customer_key_md5: sse.customer_key_md5.clone(),
        tag_count: (!rec.tags.is_empty()).then_some(rec.tags.len() as i32),
        checksum_crc32: c.checksum_crc32,
        checksum_crc32c: c.checksum_crc32c,
        checksum_crc64nvme: c.checksum_crc64nvme,
        checksum_sha1: c.checksum_sha1,
        checksum_sha256: c.checksum_sha256,
        checksum_type: c.checksum_type,
        ..Default::default()
    };
    Ok(S3Response::new(output))
}

pub async fn head(s: &Strata, req: S3Request<HeadObjectInput>) -> S3Result<S3Response<HeadObjectOutput>> {
    if let Some(raw) = transform_params(&req.uri)? {
        return super::derived::head(s, req, raw).await;
    }
    let secure = connection_is_secure(&req.extensions);
    let input = req.input;
    let rec = s.object_at(&input.bucket, &input.key, input.version_id.as_deref())?;
    let bucket = s.bucket(&input.bucket)?;
    // Checks SSE-C headers as GET does (HEAD of an SSE-C object needs the key too).
    s.data_key_for_read(rec.encryption.as_ref(), customer_key_headers!(input), secure)?;
    let sse = report(rec.encryption.as_ref());
    conditional::check(
        &Conditions {
            if_match: input.if_match.as_ref(),
            if_none_match: input.if_none_match.as_ref(),
            if_modified_since: input.if_modified_since.as_ref(),
            if_unmodified_since: input.if_unmodified_since.as_ref(),
        },
        &rec.etag,
        rec.last_modified_ms,
        Kind::Read,
    )?;
    let sel = select(&rec, input.part_number, input.range.as_ref())?;
    let want_checksums = input
        .checksum_mode
        .as_ref()
        .is_some_and(|m| m.as_str() == ChecksumMode::ENABLED)
        && sel.is_whole(&rec);
    let c = checksums_if(want_checksums, &rec.checksums);
    let h = &rec.headers;
    // The SDKs read `x-amz-tagging-count` on HEAD too; s3s 0.14's HeadObjectOutput lacks it.
    let tag_count = (!rec.tags.is_empty()).then(|| http::HeaderValue::from(rec.tags.len()));
    let mut resp = S3Response::new(HeadObjectOutput {
        content_length: Some((sel.end - sel.start) as i64),
        content_range: sel.content_range,
        parts_count: sel.parts_count,
        accept_ranges: Some("bytes".to_string()),
        e_tag: Some(etag(&rec.etag)),
        last_modified: Some(ms_to_timestamp(rec.last_modified_ms)),
        content_type: Some(input.response_content_type.unwrap_or_else(|| content_type(&rec))),
        content_encoding: input.response_content_encoding.or_else(|| h.content_encoding.clone()),
        content_disposition: input
            .response_content_disposition
            .or_else(|| h.content_disposition.clone()),
        content_language: input.response_content_language.or_else(|| h.content_language.clone()),
        cache_control: input.response_cache_control.or_else(|| h.cache_control.clone()),
        expires: input.response_expires.or_else(|| h.expires_ms.map(ms_to_timestamp)),
        website_redirect_location: h.website_redirect_location.clone(),
        storage_class: super::storage_class::reported(&rec),
        restore: super::storage_class::restore_header(&rec),
        metadata: metadata(&rec),
        version_id: reported_version(&bucket, &rec),
        server_side_encryption: sse.server_side_encryption.clone(),
        ssekms_key_id: sse.kms_key_id.clone(),
        sse_customer_algorithm: sse.customer_algorithm.clone(),
        sse_customer_key_md5: sse.customer_key_md5.clone(),
        checksum_crc32: c.checksum_crc32,
        checksum_crc32c: c.checksum_crc32c,
        checksum_crc64nvme: c.checksum_crc64nvme,
        checksum_sha1: c.checksum_sha1,
        checksum_sha256: c.checksum_sha256,
        checksum_type: c.checksum_type,
        ..Default::default()
    });
    if let Some(n) = tag_count {
        resp.headers.insert("x-amz-tagging-count", n);
    }
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

/// Deletes bucket/key the way S3 does for the bucket's versioning state (no durability wait).
fn delete_one(
    s: &Strata,
    bucket: &BucketRecord,
    bucket_name: &str,
    key: &str,
    owner: &str,
    version_id: Option<&str>,
) -> S3Result<Deleted> {
    if let Some(v) = version_id {
        if v != NULL_VERSION && ObjectRecord::seq_of_version_id(v).is_none() {
            return Err(errors::invalid_version_id());
        }
        let removed = s.store.meta.delete_version(bucket_name, key, v).map_err(store_error)?;
        return Ok(match removed {
            Some(d) => Deleted {
                version_id: Some(v.to_string()),
                delete_marker: d.record.delete_marker,
                retired: vec![d.record],
            },
            None => Deleted {
                version_id: Some(v.to_string()),
                delete_marker: false,
                retired: Vec::new(),
            },
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
    let (written, change) = s
        .store
        .meta
        .delete_current(bucket_name, key, mode, marker.as_ref())
        .map_err(store_error)?;
    Ok(Deleted {
        version_id: written.as_ref().map(|m| m.client_version_id().to_string()),
        delete_marker: written.is_some(),
        retired: change.retired,
    })
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
    s.store.meta.durable().await.map_err(store_error)?;
    for old in &done.retired {
        s.retire(&input.bucket, &input.key, old);
    }
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
    let mut deleted = Vec::new();
    let mut errors = Vec::new();
    let mut retired = Vec::new();
    for obj in objects {
        let outcome = s
            .authz
            .authorize_delete(&facts, &input.bucket, &bucket, &obj.key, obj.version_id.is_some())
            .and_then(|()| delete_one(s, &bucket, &input.bucket, &obj.key, &owner, obj.version_id.as_deref()));
        match outcome {
            Ok(done) => {
                if !quiet {
                    let (version_id, marker_version) = match (&obj.version_id, done.delete_marker) {
                        (None, true) => (None, done.version_id.clone()),
                        (Some(v), true) => (Some(v.clone()), Some(v.clone())),
                        (v, false) => (v.clone(), None),
                    };
                    deleted.push(DeletedObject {
                        key: Some(obj.key.clone()),
                        version_id,
                        delete_marker: done.delete_marker.then_some(true),
                        delete_marker_version_id: marker_version,
                    });
                }
                retired.extend(done.retired.into_iter().map(|r| (obj.key.clone(), r)));
            }
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
    s.store.meta.durable().await.map_err(store_error)?;
    for (key, old) in &retired {
        s.retire(&input.bucket, key, old);
    }
    Ok(S3Response::new(DeleteObjectsOutput {
        deleted: Some(deleted),
        errors: (!errors.is_empty()).then_some(errors),
        ..Default::default()
    }))
}
