//! CopyObject and UploadPartCopy: stream the source's bytes into a new blob (blobs are never
//! shared between objects, so deleting one object can never free another's bytes). The
//! source is read verified (`s3/read.rs`): a block that fails its check fails the ingest
//! before anything is published or committed, and the copy answers `500 InternalError`.

use s3s::checksum::ChecksumHasher;
use s3s::dto::*;
use s3s::{S3Request, S3Response, S3Result};

use super::checksum;
use super::conditional::{self, Conditions, Kind};
use super::encryption::{connection_is_secure, copy_source_key_headers, customer_key_headers, report, sse_request};
use super::errors;
use super::errors::ingest_error;
use super::multipart::{check_part_number, into_blob, record_part};
use super::object::{commit_object, discard, publish_body};
use super::read::{object_stream, ObjectStream, Purpose};
use super::{caller, check_key, etag, object_headers, reported_version, Strata};
use crate::store::blob::Ingested;
use crate::store::crypto::Key256;
use crate::store::records::{BucketRecord, ObjectData, ObjectRecord, PartRecord, StorageClass};
use crate::util::{ms_to_timestamp, now_ms};

/// The bucket, key and (optional) version id a copy reads from.
fn source(cs: &CopySource) -> S3Result<(&str, &str, Option<&str>)> {
    match cs {
        CopySource::Bucket {
            bucket,
            key,
            version_id,
        } => Ok((bucket, key, version_id.as_deref())),
        _ => Err(errors::not_implemented("Access point copy sources are not supported")),
    }
}

/// Hasher computing the algorithm the source object was stored with (or a requested one).
fn hasher_like(rec: &ObjectRecord, requested: Option<&ChecksumAlgorithm>) -> ChecksumHasher {
    let mut h = ChecksumHasher::default();
    let c = &rec.checksums;
    match requested.map(|a| a.as_str().to_ascii_uppercase()) {
        Some(a) if a == "CRC32" => h.crc32 = Some(Default::default()),
        Some(a) if a == "CRC32C" => h.crc32c = Some(Default::default()),
        Some(a) if a == "CRC64NVME" => h.crc64nvme = Some(Default::default()),
        Some(a) if a == "SHA1" => h.sha1 = Some(Default::default()),
        Some(a) if a == "SHA256" => h.sha256 = Some(Default::default()),
        _ => {
            if c.crc32.is_some() {
                h.crc32 = Some(Default::default());
            }
            if c.crc32c.is_some() {
                h.crc32c = Some(Default::default());
            }
            if c.crc64nvme.is_some() {
                h.crc64nvme = Some(Default::default());
            }
            if c.sha1.is_some() {
                h.sha1 = Some(Default::default());
            }
            if c.sha256.is_some() {
                h.sha256 = Some(Default::default());
            }
        }
    }
    h
}

/// Streams a copy's source into a new (pending) blob; a source that fails its checks is
/// `500 InternalError`, whatever the ingest made of the failed stream.
async fn ingest_source(
    s: &Strata,
    source: ObjectStream,
    hasher: ChecksumHasher,
    inline_max: usize,
    seal: Option<&Key256>,
) -> S3Result<Ingested> {
    let corrupt = source.corruption();
    match s.store.blobs.ingest(source, hasher, inline_max, u64::MAX, seal).await {
        Ok(i) => Ok(i),
        Err(_) if corrupt.get().is_some() => Err(super::errors::stored_data_corrupt()),
        Err(e) => Err(ingest_error(e)),
    }
}

/// The version a copy reads, once the caller is allowed to read it and the copy-source
/// conditions hold. A delete marker as the latest version is NoSuchKey; naming one by id is
/// InvalidRequest, as S3 answers.
fn source_record(
    s: &Strata,
    req: &crate::auth::RequestFacts,
    cs: &CopySource,
    cond: &Conditions<'_>,
) -> S3Result<(String, String, ObjectRecord)> {
    let (bucket, key, version_id) = source(cs)?;
    let rec = match s.object_at(bucket, key, version_id) {
        Err(e) if version_id.is_some() && e.code() == &s3s::S3ErrorCode::MethodNotAllowed => {
            return Err(errors::invalid_request(
                "The source of a copy request may not specifically refer to a delete marker by version id.",
            ))
        }
        other => other?,
    };
    s.authz.authorize_copy_source(req, bucket, key, &rec)?;
    super::storage_class::check_readable(&rec)?;
    conditional::check(cond, &rec.etag, rec.last_modified_ms, Kind::CopySource)?;
    Ok((bucket.to_string(), key.to_string(), rec))
}

pub async fn copy_object(s: &Strata, req: S3Request<CopyObjectInput>) -> S3Result<S3Response<CopyObjectOutput>> {
    let who = caller(&req)?;
    let facts = crate::auth::RequestFacts::of(&req);
    let request_id = super::errors::request_id(&req.extensions);
    let input = req.input;
    let bucket = s.bucket(&input.bucket)?;
    check_key(&input.key)?;
    let tags = match input.tagging_directive.as_ref().map(|d| d.as_str()) {
        Some(TaggingDirective::REPLACE) => Some(super::tagging::from_header(input.tagging.as_deref())?),
        _ => None,
    };
    let acl = super::acl::object_acl_from_request(s, &bucket, &who, input.acl.as_ref(), &req.headers)?;
    let secure = connection_is_secure(&req.extensions);
    let encryption = s.encryption_for_write(&bucket, &sse_request!(input), secure)?;
    let (src_bucket, src_key, src) = source_record(
        s,
        &facts,
        &input.copy_source,
        &Conditions {
            if_match: input.copy_source_if_match.as_ref(),
            if_none_match: input.copy_source_if_none_match.as_ref(),
            if_modified_since: input.copy_source_if_modified_since.as_ref(),
            if_unmodified_since: input.copy_source_if_unmodified_since.as_ref(),
        },
    )?;
    let replace = input
        .metadata_directive
        .as_ref()
        .is_some_and(|d| d.as_str() == MetadataDirective::REPLACE);
    let same_version = source(&input.copy_source)?.2.is_none();
    // Copying an object onto itself with new encryption is how S3 clients encrypt in place.
    let changes_encryption = input.server_side_encryption.is_some() || input.sse_customer_key.is_some();
    // S3: a copy is STANDARD unless it names a class; copying onto itself with a class is
    // how clients change an object's class.
    let storage_class = super::storage_class::requested(input.storage_class.as_ref())?;
    let onto_itself = same_version && src_bucket == input.bucket && src_key == input.key;
    let changes_nothing =
        !replace && !changes_encryption && input.storage_class.is_none() && input.checksum_algorithm.is_none();
    if onto_itself && changes_nothing {
        return Err(errors::invalid_request("This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata, storage class, website redirect location or encryption attributes."));
    }
    let (headers, user_metadata) = if replace {
        (
            object_headers(
                input.content_type,
                input.content_encoding,
                input.content_disposition,
                input.content_language,
                input.cache_control,
                input.expires,
                input.website_redirect_location,
            ),
            s.user_metadata(input.metadata)?,
        )
    } else {
        (src.headers.clone(), src.user_metadata.clone())
    };
    let hasher = hasher_like(&src, input.checksum_algorithm.as_ref());
    let src_key_material = s.data_key_for_read(src.encryption.as_ref(), copy_source_key_headers!(input), secure)?;
    let source = object_stream(
        s,
        &src_bucket,
        &src_key,
        &src,
        src_key_material.as_ref(),
        0,
        src.size,
        Purpose::Copy,
        request_id,
    );
    let seal = encryption.as_ref().map(|(_, k)| k);
    let (ingested, data) = copy_bytes(s, source, hasher, seal, storage_class).await?;
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
        tags: tags.unwrap_or_else(|| src.tags.clone()),
        encryption: encryption.map(|(e, _)| e),
        size: ingested.size,
        etag: hex::encode(ingested.md5),
        last_modified_ms: now_ms(),
        owner: who,
        headers,
        user_metadata,
        checksums: checksum::full_object(&ingested.checksums),
        parts_count: None,
        data,
        storage_class,
        restored_until_ms: None,
    };
    let rec = commit_object(s, &bucket, &input.bucket, &input.key, rec, None, None).await?;
    let src_bucket_rec = s.bucket(&src_bucket)?;
    Ok(S3Response::new(copy_output(&bucket, &rec, &src_bucket_rec, &src)))
}

/// Streams the (verified) source bytes into a new blob and publishes it on `class`'s volume.
/// Nothing is left behind on failure.
async fn copy_bytes(
    s: &Strata,
    source: ObjectStream,
    hasher: ChecksumHasher,
    seal: Option<&Key256>,
    class: StorageClass,
) -> S3Result<(Ingested, ObjectData)> {
    let ingested = ingest_source(s, source, hasher, s.limits.inline_max_bytes, seal).await?;
    match publish_body(s, &ingested, class).await {
        Ok(data) => Ok((ingested, data)),
        Err(e) => {
            discard(s, &ingested);
            Err(e)
        }
    }
}

/// CopyObject's answer: the new version, the source version, the new ETag and checksums.
fn copy_output(
    bucket: &BucketRecord,
    rec: &ObjectRecord,
    src_bucket: &BucketRecord,
    src: &ObjectRecord,
) -> CopyObjectOutput {
    let c = checksum::to_dto(&rec.checksums);
    let sse = report(rec.encryption.as_ref());
    CopyObjectOutput {
        server_side_encryption: sse.server_side_encryption,
        ssekms_key_id: sse.kms_key_id,
        sse_customer_algorithm: sse.customer_algorithm,
        sse_customer_key_md5: sse.customer_key_md5,
        version_id: reported_version(bucket, rec),
        copy_source_version_id: reported_version(src_bucket, src),
        copy_object_result: Some(CopyObjectResult {
            e_tag: Some(etag(&rec.etag)),
            last_modified: Some(ms_to_timestamp(rec.last_modified_ms)),
            checksum_crc32: c.checksum_crc32,
            checksum_crc32c: c.checksum_crc32c,
            checksum_crc64nvme: c.checksum_crc64nvme,
            checksum_sha1: c.checksum_sha1,
            checksum_sha256: c.checksum_sha256,
            checksum_type: c.checksum_type,
        }),
        ..Default::default()
    }
}

/// Parses `bytes=first-last` (both required, inclusive) against an object of `size` bytes.
fn parse_copy_range(range: &str, size: u64) -> S3Result<(u64, u64)> {
    let invalid = || {
        errors::invalid_argument("The x-amz-copy-source-range value must be of the form bytes=first-last where first and last are the zero-based offsets of the first and last bytes to copy")
    };
    let spec = range.trim().strip_prefix("bytes=").ok_or_else(invalid)?;
    let (a, b) = spec.split_once('-').ok_or_else(invalid)?;
    let first: u64 = a.trim().parse().map_err(|_| invalid())?;
    let last: u64 = b.trim().parse().map_err(|_| invalid())?;
    if first > last {
        return Err(invalid());
    }
    if last >= size {
        return Err(errors::invalid_range());
    }
    Ok((first, last + 1))
}

pub async fn upload_part_copy(
    s: &Strata,
    req: S3Request<UploadPartCopyInput>,
) -> S3Result<S3Response<UploadPartCopyOutput>> {
    let facts = crate::auth::RequestFacts::of(&req);
    let secure = connection_is_secure(&req.extensions);
    let request_id = super::errors::request_id(&req.extensions);
    let input = req.input;
    check_part_number(input.part_number)?;
    let upload = match s.store.meta.upload(&input.upload_id) {
        Ok(Some(u)) if u.bucket == input.bucket && u.key == input.key => u,
        Ok(_) => return Err(errors::no_such_upload()),
        Err(e) => return Err(super::errors::store_error(e)),
    };
    // The part is sealed with the upload's data key (SSE-C uploads: the request repeats the key).
    let part_key = s.data_key_for_read(upload.encryption.as_ref(), customer_key_headers!(input), secure)?;
    let (src_bucket, src_key, src) = source_record(
        s,
        &facts,
        &input.copy_source,
        &Conditions {
            if_match: input.copy_source_if_match.as_ref(),
            if_none_match: input.copy_source_if_none_match.as_ref(),
            if_modified_since: input.copy_source_if_modified_since.as_ref(),
            if_unmodified_since: input.copy_source_if_unmodified_since.as_ref(),
        },
    )?;
    let src_key_material = s.data_key_for_read(src.encryption.as_ref(), copy_source_key_headers!(input), secure)?;
    let (start, end) = match &input.copy_source_range {
        Some(r) => parse_copy_range(r, src.size)?,
        None => (0, src.size),
    };
    let source = object_stream(
        s,
        &src_bucket,
        &src_key,
        &src,
        src_key_material.as_ref(),
        start,
        end,
        Purpose::Copy,
        request_id,
    );
    let ingested = ingest_source(s, source, hasher_like(&src, None), 0, part_key.as_ref()).await?;
    let (blob, ingested) = into_blob(s, ingested, upload.storage_class).await?;
    let part_etag = hex::encode(ingested.md5);
    let checksums = checksum::full_object(&ingested.checksums);
    let now = now_ms();
    record_part(
        s,
        &input.upload_id,
        input.part_number,
        PartRecord {
            blob,
            etag: part_etag.clone(),
            last_modified_ms: now,
            checksums: checksums.clone(),
        },
    )
    .await?;
    let c = checksum::to_dto(&checksums);
    let sse = report(upload.encryption.as_ref());
    Ok(S3Response::new(UploadPartCopyOutput {
        server_side_encryption: sse.server_side_encryption,
        ssekms_key_id: sse.kms_key_id,
        sse_customer_algorithm: sse.customer_algorithm,
        sse_customer_key_md5: sse.customer_key_md5,
        copy_part_result: Some(CopyPartResult {
            e_tag: Some(etag(&part_etag)),
            last_modified: Some(ms_to_timestamp(now)),
            checksum_crc32: c.checksum_crc32,
            checksum_crc32c: c.checksum_crc32c,
            checksum_crc64nvme: c.checksum_crc64nvme,
            checksum_sha1: c.checksum_sha1,
            checksum_sha256: c.checksum_sha256,
        }),
        ..Default::default()
    }))
}

#[cfg(test)]
mod tests {
    use super::parse_copy_range;

    #[test]
    fn copy_range_bounds() {
        assert_eq!(parse_copy_range("bytes=0-9", 100).ok(), Some((0, 10)));
        assert!(parse_copy_range("bytes=5-100", 100).is_err());
        assert!(parse_copy_range("bytes=9-0", 100).is_err());
        assert!(parse_copy_range("0-9", 100).is_err());
        assert!(parse_copy_range("bytes=-9", 100).is_err());
    }
}
