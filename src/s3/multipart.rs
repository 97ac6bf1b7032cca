//! Multipart uploads: Create, UploadPart, Complete, Abort, ListParts, ListMultipartUploads.
//!
//! Each part is its own immutable blob. Completing an upload copies no bytes: the object
//! record lists the part blobs in order, written in the same sled transaction that removes
//! the upload, so a crash leaves either the upload or the object, never both or neither.

use md5::{Digest, Md5};
use s3s::dto::*;
use s3s::{S3Request, S3Response, S3Result};

use super::checksum::{self, Claimed};
use super::encryption::{connection_is_secure, customer_key_headers, report, sse_request};
use super::errors;
use super::errors::store_error;
use super::{caller, check_key, etag, object_headers, Strata};
use crate::store::blob::{Ingested, IngestedBody};
use crate::store::meta::Rejected;
use crate::store::records::{BlobRef, ObjectData, ObjectRecord, PartRecord, StorageClass as Class, UploadRecord};
use crate::store::BlobStore;
use crate::util::{ms_to_timestamp, now_ms};

/// Every part but the last must be at least this big (S3's rule).
pub const MIN_PART_SIZE: u64 = 5 * 1024 * 1024;
pub const MAX_PART_NUMBER: i32 = 10_000;
const DEFAULT_MAX_PARTS: i32 = 1000;
const DEFAULT_MAX_UPLOADS: i32 = 1000;

fn no_such_upload() -> s3s::S3Error {
    errors::no_such_upload()
}

/// The upload, checked to belong to bucket/key.
fn upload(s: &Strata, bucket: &str, key: &str, upload_id: &str) -> S3Result<UploadRecord> {
    match s.store.meta.upload(upload_id).map_err(store_error)? {
        Some(u) if u.bucket == bucket && u.key == key => Ok(u),
        _ => Err(no_such_upload()),
    }
}

pub async fn create(
    s: &Strata,
    req: S3Request<CreateMultipartUploadInput>,
) -> S3Result<S3Response<CreateMultipartUploadOutput>> {
    let owner = caller(&req)?;
    let input = req.input;
    let bucket = s.bucket(&input.bucket)?;
    check_key(&input.key)?;
    let user_metadata = s.user_metadata(input.metadata)?;
    let tags = super::tagging::from_header(input.tagging.as_deref())?;
    let acl = super::acl::object_acl_from_request(s, &bucket, &owner, input.acl.as_ref(), &req.headers)?;
    let encryption = s.encryption_for_write(&bucket, &sse_request!(input), connection_is_secure(&req.extensions))?;
    let sse = report(encryption.as_ref().map(|(e, _)| e));
    let storage_class = super::storage_class::requested(input.storage_class.as_ref())?;
    let id = BlobStore::new_id();
    let rec = UploadRecord {
        storage_class,
        acl,
        tags,
        encryption: encryption.map(|(e, _)| e),
        bucket: input.bucket.clone(),
        key: input.key.clone(),
        owner,
        initiated_ms: now_ms(),
        headers: object_headers(
            input.content_type,
            input.content_encoding,
            input.content_disposition,
            input.content_language,
            input.cache_control,
            input.expires,
            input.website_redirect_location,
        ),
        user_metadata,
        checksum_algorithm: input.checksum_algorithm.as_ref().map(|a| a.as_str().to_string()),
        checksum_type: input.checksum_type.as_ref().map(|t| t.as_str().to_string()),
    };
    s.store.meta.put_upload(&id, &rec).map_err(store_error)?;
    s.store.meta.durable().await.map_err(store_error)?;
    Ok(S3Response::new(CreateMultipartUploadOutput {
        bucket: Some(input.bucket),
        key: Some(input.key),
        upload_id: Some(id),
        checksum_algorithm: input.checksum_algorithm,
        checksum_type: input.checksum_type,
        server_side_encryption: sse.server_side_encryption,
        ssekms_key_id: sse.kms_key_id,
        sse_customer_algorithm: sse.customer_algorithm,
        sse_customer_key_md5: sse.customer_key_md5,
        ..Default::default()
    }))
}

/// Makes sure an ingested part is a blob file. Parts are ingested with no inline budget,
/// so only an empty body comes back inline; it gets an empty file.
pub(super) async fn into_blob(s: &Strata, ingested: Ingested, class: Class) -> S3Result<(BlobRef, Ingested)> {
    let id = match &ingested.body {
        IngestedBody::Pending(id) => id.clone(),
        IngestedBody::Inline(bytes) if bytes.is_empty() => {
            let id = BlobStore::new_id();
            s.store.blobs.write_empty(&id).await.map_err(store_error)?;
            id
        }
        IngestedBody::Inline(_) => return Err(super::errors::internal("part", "non-empty part was buffered inline")),
    };
    if let Err(e) = s.store.blobs.publish(&id, class.is_cold()).await {
        s.store.blobs.discard(&id);
        return Err(store_error(e));
    }
    let blob = BlobRef {
        id,
        size: ingested.size,
        md5: ingested.md5.to_vec(),
        crc64: Some(ingested.crc64),
        sealed: ingested.sealed,
        cold: class.is_cold(),
        // An empty part written by `write_empty` has an empty table.
        block_size: ingested
            .block_size
            .or_else(crate::store::integrity::new_blob_block_size),
    };
    Ok((blob, ingested))
}

/// Records a finished part; frees the part it replaces.
pub(super) async fn record_part(s: &Strata, upload_id: &str, number: i32, part: PartRecord) -> S3Result<()> {
    match s.store.meta.put_part(upload_id, number as u32, &part) {
        Ok(replaced) => {
            if let Some(old) = replaced.durable().await.map_err(store_error)? {
                s.store.blobs.remove(vec![old.blob]);
            }
            Ok(())
        }
        Err(rejected) => {
            s.store.blobs.remove(vec![part.blob]);
            Err(match rejected {
                Rejected::Condition(()) => no_such_upload(),
                Rejected::Store(e) => store_error(e),
            })
        }
    }
}

pub fn check_part_number(n: i32) -> S3Result<()> {
    if !(1..=MAX_PART_NUMBER).contains(&n) {
        return Err(errors::invalid_argument(
            "Part number must be an integer between 1 and 10000, inclusive",
        ));
    }
    Ok(())
}

pub async fn upload_part(s: &Strata, req: S3Request<UploadPartInput>) -> S3Result<S3Response<UploadPartOutput>> {
    let secure = connection_is_secure(&req.extensions);
    let input = req.input;
    check_part_number(input.part_number)?;
    let up = upload(s, &input.bucket, &input.key, &input.upload_id)?;
    // Parts are sealed with the upload's data key (SSE-C: each part request repeats the key).
    let part_key = s.data_key_for_read(up.encryption.as_ref(), customer_key_headers!(input), secure)?;
    if input.content_length.unwrap_or(0) as u64 > s.limits.max_object_size {
        return Err(errors::entity_too_large());
    }
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
    // Parts are always blob files: no inline budget.
    let ingested = super::object::ingest_verified(
        s,
        input.body,
        claimed,
        &req.headers,
        req.trailing_headers.as_ref(),
        input.content_length,
        0,
        part_key.as_ref(),
    )
    .await?;
    let (blob, ingested) = into_blob(s, ingested, up.storage_class).await?;
    let part_etag = hex::encode(ingested.md5);
    let checksums = checksum::full_object(&ingested.checksums);
    record_part(
        s,
        &input.upload_id,
        input.part_number,
        PartRecord {
            blob,
            etag: part_etag.clone(),
            last_modified_ms: now_ms(),
            checksums: checksums.clone(),
        },
    )
    .await?;
    let c = checksum::to_dto(&checksums);
    let sse = report(up.encryption.as_ref());
    Ok(S3Response::new(UploadPartOutput {
        e_tag: Some(etag(&part_etag)),
        server_side_encryption: sse.server_side_encryption,
        ssekms_key_id: sse.kms_key_id,
        sse_customer_algorithm: sse.customer_algorithm,
        sse_customer_key_md5: sse.customer_key_md5,
        checksum_crc32: c.checksum_crc32,
        checksum_crc32c: c.checksum_crc32c,
        checksum_crc64nvme: c.checksum_crc64nvme,
        checksum_sha1: c.checksum_sha1,
        checksum_sha256: c.checksum_sha256,
        ..Default::default()
    }))
}

/// The parts a CompleteMultipartUpload names, checked as S3 checks them: ascending numbers,
/// each uploaded with the given ETag and checksums, every part but the last at least 5 MiB.
fn choose_parts<'a>(
    requested: &[CompletedPart],
    stored: &'a std::collections::BTreeMap<u32, PartRecord>,
) -> S3Result<Vec<&'a PartRecord>> {
    let mut chosen: Vec<&PartRecord> = Vec::with_capacity(requested.len());
    let mut last_number = 0;
    for p in requested {
        let n = p
            .part_number
            .ok_or_else(|| errors::invalid_part("A part number is missing"))?;
        if n <= last_number {
            return Err(errors::invalid_part_order());
        }
        last_number = n;
        let invalid = || {
            errors::invalid_part("One or more of the specified parts could not be found. The part may not have been uploaded, or the specified entity tag may not match the part's entity tag.")
        };
        let part = stored.get(&(n as u32)).ok_or_else(invalid)?;
        if let Some(e) = &p.e_tag {
            if e.value().trim_matches('"') != part.etag {
                return Err(invalid());
            }
        }
        let claims = [
            (&p.checksum_crc32, &part.checksums.crc32),
            (&p.checksum_crc32c, &part.checksums.crc32c),
            (&p.checksum_crc64nvme, &part.checksums.crc64nvme),
            (&p.checksum_sha1, &part.checksums.sha1),
            (&p.checksum_sha256, &part.checksums.sha256),
        ];
        if claims
            .iter()
            .any(|(claimed, have)| claimed.is_some() && *claimed != *have)
        {
            return Err(errors::invalid_part(format!(
                "The checksum of part {n} does not match the uploaded part"
            )));
        }
        chosen.push(part);
    }
    if let Some((_, all_but_last)) = chosen.split_last() {
        if all_but_last.iter().any(|p| p.blob.size < MIN_PART_SIZE) {
            return Err(errors::entity_too_small());
        }
    }
    Ok(chosen)
}

/// S3's ETag of a multipart object: the MD5 of the parts' MD5s, then `-<part count>`.
fn multipart_etag(chosen: &[&PartRecord]) -> String {
    let mut md5s = Md5::new();
    for p in chosen {
        md5s.update(&p.blob.md5);
    }
    format!("{}-{}", hex::encode(md5s.finalize()), chosen.len())
}

/// Whole-object checksums the client sent with CompleteMultipartUpload must match ours.
fn check_claimed_object_checksums(
    input: &CompleteMultipartUploadInput,
    checksums: &crate::store::records::Checksums,
) -> S3Result<()> {
    let claims = [
        (&input.checksum_crc32, &checksums.crc32),
        (&input.checksum_crc32c, &checksums.crc32c),
        (&input.checksum_crc64nvme, &checksums.crc64nvme),
        (&input.checksum_sha1, &checksums.sha1),
        (&input.checksum_sha256, &checksums.sha256),
    ];
    for (claimed, have) in claims {
        if let (Some(c), Some(h)) = (claimed, have) {
            if c != h {
                return Err(errors::bad_digest(
                    "The checksum you specified did not match the calculated checksum of the object.",
                ));
            }
        }
    }
    Ok(())
}

pub async fn complete(
    s: &Strata,
    req: S3Request<CompleteMultipartUploadInput>,
) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
    let mut input = req.input;
    let bucket = s.bucket(&input.bucket)?;
    let up = upload(s, &input.bucket, &input.key, &input.upload_id)?;
    let requested = input.multipart_upload.take().and_then(|m| m.parts).unwrap_or_default();
    if requested.is_empty() {
        return Err(errors::malformed_xml_because("You must specify at least one part"));
    }
    let stored: std::collections::BTreeMap<u32, PartRecord> = s
        .store
        .meta
        .parts(&input.upload_id)
        .map_err(store_error)?
        .into_iter()
        .collect();

    let chosen = choose_parts(&requested, &stored)?;
    let object_etag = multipart_etag(&chosen);
    let sums: Vec<_> = chosen.iter().map(|p| (&p.checksums, p.blob.size)).collect();
    let checksums = checksum::multipart(up.checksum_algorithm.as_deref(), up.checksum_type.as_deref(), &sums);
    check_claimed_object_checksums(&input, &checksums)?;

    let blobs: Vec<BlobRef> = chosen.iter().map(|p| p.blob.clone()).collect();
    let used: std::collections::HashSet<&str> = blobs.iter().map(|b| b.id.as_str()).collect();
    let unused: Vec<BlobRef> = stored
        .values()
        .filter(|p| !used.contains(p.blob.id.as_str()))
        .map(|p| p.blob.clone())
        .collect();
    let stamp = s.new_version(&bucket)?;
    let rec = ObjectRecord {
        version_id: stamp.version_id,
        seq: stamp.seq,
        versioned: stamp.versioned,
        delete_marker: false,
        acl: up.acl.clone(),
        tags: up.tags.clone(),
        encryption: up.encryption.clone(),
        size: blobs.iter().map(|b| b.size).sum(),
        etag: object_etag,
        last_modified_ms: now_ms(),
        owner: up.owner.clone(),
        headers: up.headers.clone(),
        user_metadata: up.user_metadata.clone(),
        checksums,
        parts_count: Some(blobs.len() as u32),
        data: ObjectData::Blobs(blobs),
        storage_class: up.storage_class,
        restored_until_ms: None,
    };
    let all_parts: Vec<u32> = stored.keys().copied().collect();
    let result = s.store.meta.complete_upload(
        &input.upload_id,
        &all_parts,
        &input.bucket,
        &input.key,
        &rec,
        bucket.versioning_mode(),
        |current| {
            super::conditional::check_write(
                input.if_match.as_ref(),
                input.if_none_match.as_ref(),
                current.map(|c| c.etag.as_str()),
            )
        },
    );
    let replaced = match result {
        Ok(r) => r,
        Err(Rejected::Condition(Some(e))) => return Err(e),
        Err(Rejected::Condition(None)) => return Err(no_such_upload()),
        Err(Rejected::Store(e)) => return Err(store_error(e)),
    };
    s.settle(&input.bucket, &input.key, replaced).await?;
    // Uploaded parts the completion left out: unreferenced once the completion is durable.
    s.store.blobs.remove(unused);
    let c = checksum::to_dto(&rec.checksums);
    let sse = report(rec.encryption.as_ref());
    Ok(S3Response::new(CompleteMultipartUploadOutput {
        server_side_encryption: sse.server_side_encryption,
        ssekms_key_id: sse.kms_key_id,
        version_id: super::reported_version(&bucket, &rec),
        bucket: Some(input.bucket.clone()),
        key: Some(input.key.clone()),
        location: Some(format!("/{}/{}", input.bucket, input.key)),
        e_tag: Some(etag(&rec.etag)),
        checksum_crc32: c.checksum_crc32,
        checksum_crc32c: c.checksum_crc32c,
        checksum_crc64nvme: c.checksum_crc64nvme,
        checksum_sha1: c.checksum_sha1,
        checksum_sha256: c.checksum_sha256,
        checksum_type: c.checksum_type,
        ..Default::default()
    }))
}

/// Removes an upload and frees its parts. Fails with NoSuchUpload if it is gone.
pub(super) async fn discard_upload(s: &Strata, upload_id: &str) -> S3Result<()> {
    if s.store.remove_upload(upload_id).await.map_err(store_error)?.is_none() {
        return Err(no_such_upload());
    }
    Ok(())
}

pub async fn abort(
    s: &Strata,
    req: S3Request<AbortMultipartUploadInput>,
) -> S3Result<S3Response<AbortMultipartUploadOutput>> {
    let input = req.input;
    upload(s, &input.bucket, &input.key, &input.upload_id)?;
    discard_upload(s, &input.upload_id).await?;
    Ok(S3Response::new(AbortMultipartUploadOutput::default()))
}

pub async fn list_parts(s: &Strata, req: S3Request<ListPartsInput>) -> S3Result<S3Response<ListPartsOutput>> {
    let input = req.input;
    let up = upload(s, &input.bucket, &input.key, &input.upload_id)?;
    let max = input.max_parts.unwrap_or(DEFAULT_MAX_PARTS).clamp(0, DEFAULT_MAX_PARTS) as usize;
    let marker = input.part_number_marker.unwrap_or(0).max(0) as u32;
    let all = s.store.meta.parts(&input.upload_id).map_err(store_error)?;
    let mut after: Vec<(u32, PartRecord)> = all.into_iter().filter(|(n, _)| *n > marker).collect();
    let truncated = after.len() > max;
    after.truncate(max);
    let next = after.last().map(|(n, _)| *n as i32);
    let parts: Vec<Part> = after
        .into_iter()
        .map(|(n, p)| {
            let c = checksum::to_dto(&p.checksums);
            Part {
                part_number: Some(n as i32),
                e_tag: Some(etag(&p.etag)),
                size: Some(p.blob.size as i64),
                last_modified: Some(ms_to_timestamp(p.last_modified_ms)),
                checksum_crc32: c.checksum_crc32,
                checksum_crc32c: c.checksum_crc32c,
                checksum_crc64nvme: c.checksum_crc64nvme,
                checksum_sha1: c.checksum_sha1,
                checksum_sha256: c.checksum_sha256,
            }
        })
        .collect();
    let owner = super::list::owner(&up.owner);
    Ok(S3Response::new(ListPartsOutput {
        bucket: Some(input.bucket),
        key: Some(input.key),
        upload_id: Some(input.upload_id),
        part_number_marker: input.part_number_marker,
        next_part_number_marker: next,
        max_parts: Some(max as i32),
        is_truncated: Some(truncated),
        parts: Some(parts),
        initiator: Some(Initiator {
            id: owner.id.clone(),
            display_name: owner.display_name.clone(),
        }),
        owner: Some(owner),
        storage_class: Some(StorageClass::from(up.storage_class.as_str().to_string())),
        checksum_algorithm: up.checksum_algorithm.map(ChecksumAlgorithm::from),
        checksum_type: up.checksum_type.map(ChecksumType::from),
        ..Default::default()
    }))
}

pub async fn list_uploads(
    s: &Strata,
    req: S3Request<ListMultipartUploadsInput>,
) -> S3Result<S3Response<ListMultipartUploadsOutput>> {
    let input = req.input;
    s.bucket(&input.bucket)?;
    let max = input
        .max_uploads
        .unwrap_or(DEFAULT_MAX_UPLOADS)
        .clamp(0, DEFAULT_MAX_UPLOADS) as usize;
    let prefix = input.prefix.clone().unwrap_or_default();
    let key_marker = input.key_marker.clone().unwrap_or_default();
    let id_marker = input.upload_id_marker.clone();
    let mut uploads: Vec<(String, UploadRecord)> = s
        .store
        .meta
        .uploads_in(&input.bucket)
        .map_err(store_error)?
        .into_iter()
        .filter(|(_, u)| u.key.starts_with(&prefix))
        .filter(|(id, u)| match &id_marker {
            Some(m) if u.key == key_marker => id.as_str() > m.as_str(),
            _ => u.key.as_str() > key_marker.as_str() || key_marker.is_empty(),
        })
        .collect();
    uploads.sort_by(|a, b| (&a.1.key, a.1.initiated_ms, &a.0).cmp(&(&b.1.key, b.1.initiated_ms, &b.0)));

    let mut list = Vec::new();
    let mut prefixes: Vec<String> = Vec::new();
    let mut truncated = false;
    let mut last: Option<(String, String)> = None;
    for (id, u) in uploads {
        if list.len() + prefixes.len() >= max {
            truncated = true;
            break;
        }
        if let Some(d) = input.delimiter.as_deref().filter(|d| !d.is_empty()) {
            if let Some(pos) = u.key[prefix.len()..].find(d) {
                let cp = u.key[..prefix.len() + pos + d.len()].to_string();
                if prefixes.last() != Some(&cp) {
                    prefixes.push(cp);
                }
                continue;
            }
        }
        last = Some((u.key.clone(), id.clone()));
        let owner = super::list::owner(&u.owner);
        list.push(MultipartUpload {
            key: Some(u.key),
            upload_id: Some(id),
            initiated: Some(ms_to_timestamp(u.initiated_ms)),
            initiator: Some(Initiator {
                id: owner.id.clone(),
                display_name: owner.display_name.clone(),
            }),
            owner: Some(owner),
            storage_class: Some(StorageClass::from(u.storage_class.as_str().to_string())),
            checksum_algorithm: u.checksum_algorithm.map(ChecksumAlgorithm::from),
            checksum_type: u.checksum_type.map(ChecksumType::from),
        });
    }
    Ok(S3Response::new(ListMultipartUploadsOutput {
        bucket: Some(input.bucket),
        prefix: input.prefix,
        delimiter: input.delimiter,
        key_marker: input.key_marker,
        upload_id_marker: input.upload_id_marker,
        max_uploads: Some(max as i32),
        is_truncated: Some(truncated),
        next_key_marker: if truncated {
            last.as_ref().map(|l| l.0.clone())
        } else {
            None
        },
        next_upload_id_marker: if truncated { last.map(|l| l.1) } else { None },
        uploads: Some(list),
        common_prefixes: (!prefixes.is_empty())
            .then(|| prefixes.into_iter().map(|p| CommonPrefix { prefix: Some(p) }).collect()),
        encoding_type: input.encoding_type,
        ..Default::default()
    }))
}
