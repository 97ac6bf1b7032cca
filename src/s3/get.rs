//! GetObject and HeadObject of stored bytes (with transform parameters they go to
//! `derived.rs`). The two answer the same question, what this object's bytes and headers are
//! for this request, so one function ([`answer`]) decides it from the fields both inputs
//! share ([`ReadRequest`]); GET then adds the verified body stream and HEAD only the header
//! s3s 0.14 lacks.

use s3s::dto::*;
use s3s::{S3Request, S3Response, S3Result};

use super::checksum;
use super::conditional::{self, Conditions, Kind};
use super::encryption::{connection_is_secure, report, CustomerKeyHeaders};
use super::errors;
use super::{etag, reported_version, Strata};
use crate::store::crypto::Key256;
use crate::store::records::{Checksums, ObjectRecord};
use crate::util::ms_to_timestamp;

/// S3's content type for objects stored without one.
const DEFAULT_CONTENT_TYPE: &str = "binary/octet-stream";

/// The fields GetObjectInput and HeadObjectInput share, moved out of either.
struct ReadRequest {
    bucket: String,
    key: String,
    version_id: Option<String>,
    if_match: Option<ETagCondition>,
    if_none_match: Option<ETagCondition>,
    if_modified_since: Option<Timestamp>,
    if_unmodified_since: Option<Timestamp>,
    part_number: Option<i32>,
    range: Option<Range>,
    checksum_mode: Option<ChecksumMode>,
    sse_customer_algorithm: Option<String>,
    sse_customer_key: Option<String>,
    sse_customer_key_md5: Option<String>,
    response_content_type: Option<String>,
    response_content_encoding: Option<String>,
    response_content_disposition: Option<String>,
    response_content_language: Option<String>,
    response_cache_control: Option<String>,
    response_expires: Option<Timestamp>,
}

/// Moves the shared fields out of a GetObjectInput or a HeadObjectInput (same names in both).
macro_rules! read_request {
    ($input:expr) => {{
        let i = $input;
        ReadRequest {
            bucket: i.bucket,
            key: i.key,
            version_id: i.version_id,
            if_match: i.if_match,
            if_none_match: i.if_none_match,
            if_modified_since: i.if_modified_since,
            if_unmodified_since: i.if_unmodified_since,
            part_number: i.part_number,
            range: i.range,
            checksum_mode: i.checksum_mode,
            sse_customer_algorithm: i.sse_customer_algorithm,
            sse_customer_key: i.sse_customer_key,
            sse_customer_key_md5: i.sse_customer_key_md5,
            response_content_type: i.response_content_type,
            response_content_encoding: i.response_content_encoding,
            response_content_disposition: i.response_content_disposition,
            response_content_language: i.response_content_language,
            response_cache_control: i.response_cache_control,
            response_expires: i.response_expires,
        }
    }};
}

/// What GET and HEAD answer: the record, its data key, the bytes selected and every header.
struct Answer {
    rec: ObjectRecord,
    data_key: Option<Key256>,
    sel: Selection,
    headers: ObjectHeadersOut,
}

/// The response headers of GET and HEAD, as the s3s output fields they fill.
struct ObjectHeadersOut {
    content_length: i64,
    content_range: Option<String>,
    parts_count: Option<i32>,
    e_tag: ETag,
    last_modified: Timestamp,
    content_type: String,
    content_encoding: Option<String>,
    content_disposition: Option<String>,
    content_language: Option<String>,
    cache_control: Option<String>,
    expires: Option<Timestamp>,
    website_redirect_location: Option<String>,
    storage_class: Option<StorageClass>,
    restore: Option<String>,
    metadata: Option<Metadata>,
    version_id: Option<String>,
    sse: super::encryption::SseReport,
    checksum: Checksum,
    tag_count: Option<i32>,
}

/// Whether the request is a GET (which a GLACIER object must be restored for) or a HEAD
/// (which S3 answers for any storage class).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Verb {
    Get,
    Head,
}

/// Decides GET and HEAD alike: the version, its SSE-C key (HEAD of an SSE-C object needs the
/// key too), the conditionals, the range or part, and the headers.
fn answer(s: &Strata, r: ReadRequest, secure: bool, verb: Verb) -> S3Result<Answer> {
    let rec = s.object_at(&r.bucket, &r.key, r.version_id.as_deref())?;
    let bucket = s.bucket(&r.bucket)?;
    if verb == Verb::Get {
        super::storage_class::check_readable(&rec)?;
    }
    let customer = CustomerKeyHeaders {
        algorithm: r.sse_customer_algorithm.as_deref(),
        key: r.sse_customer_key.as_deref(),
        key_md5: r.sse_customer_key_md5.as_deref(),
    };
    let data_key = s.data_key_for_read(rec.encryption.as_ref(), customer, secure)?;
    conditional::check(
        &Conditions {
            if_match: r.if_match.as_ref(),
            if_none_match: r.if_none_match.as_ref(),
            if_modified_since: r.if_modified_since.as_ref(),
            if_unmodified_since: r.if_unmodified_since.as_ref(),
        },
        &rec.etag,
        rec.last_modified_ms,
        Kind::Read,
    )?;
    let sel = select(&rec, r.part_number, r.range.as_ref())?;
    let want_checksums = r
        .checksum_mode
        .as_ref()
        .is_some_and(|m| m.as_str() == ChecksumMode::ENABLED)
        && sel.is_whole(&rec);
    let h = &rec.headers;
    let headers = ObjectHeadersOut {
        content_length: (sel.end - sel.start) as i64,
        content_range: sel.content_range.clone(),
        parts_count: sel.parts_count,
        e_tag: etag(&rec.etag),
        last_modified: ms_to_timestamp(rec.last_modified_ms),
        content_type: r.response_content_type.unwrap_or_else(|| content_type(&rec)),
        content_encoding: r.response_content_encoding.or_else(|| h.content_encoding.clone()),
        content_disposition: r.response_content_disposition.or_else(|| h.content_disposition.clone()),
        content_language: r.response_content_language.or_else(|| h.content_language.clone()),
        cache_control: r.response_cache_control.or_else(|| h.cache_control.clone()),
        expires: r.response_expires.or_else(|| h.expires_ms.map(ms_to_timestamp)),
        website_redirect_location: h.website_redirect_location.clone(),
        storage_class: super::storage_class::reported(&rec),
        restore: super::storage_class::restore_header(&rec),
        metadata: metadata(&rec),
        version_id: reported_version(&bucket, &rec),
        sse: report(rec.encryption.as_ref()),
        checksum: checksums_if(want_checksums, &rec.checksums),
        tag_count: (!rec.tags.is_empty()).then_some(rec.tags.len() as i32),
    };
    Ok(Answer {
        rec,
        data_key,
        sel,
        headers,
    })
}

pub async fn get(s: &Strata, req: S3Request<GetObjectInput>) -> S3Result<S3Response<GetObjectOutput>> {
    if let Some(raw) = transform_params(&req.uri)? {
        return super::derived::get(s, req, raw).await;
    }
    let secure = connection_is_secure(&req.extensions);
    let request_id = super::errors::request_id(&req.extensions);
    let (bucket, key) = (req.input.bucket.clone(), req.input.key.clone());
    let a = answer(s, read_request!(req.input), secure, Verb::Get)?;
    let body = super::read::object_stream(
        s,
        &bucket,
        &key,
        &a.rec,
        a.data_key.as_ref(),
        a.sel.start,
        a.sel.end,
        super::read::Purpose::Get,
        request_id,
    );
    // The first step is read before the headers go out, so most rot is a clean 500.
    let body = super::read::response_body(body).await?;
    let h = a.headers;
    let c = h.checksum;
    Ok(S3Response::new(GetObjectOutput {
        body: Some(body),
        content_length: Some(h.content_length),
        content_range: h.content_range,
        parts_count: h.parts_count,
        accept_ranges: Some("bytes".to_string()),
        e_tag: Some(h.e_tag),
        last_modified: Some(h.last_modified),
        content_type: Some(h.content_type),
        content_encoding: h.content_encoding,
        content_disposition: h.content_disposition,
        content_language: h.content_language,
        cache_control: h.cache_control,
        expires: h.expires,
        website_redirect_location: h.website_redirect_location,
        storage_class: h.storage_class,
        restore: h.restore,
        metadata: h.metadata,
        version_id: h.version_id,
        server_side_encryption: h.sse.server_side_encryption,
        ssekms_key_id: h.sse.kms_key_id,
        sse_customer_algorithm: h.sse.customer_algorithm,
        sse_customer_key_md5: h.sse.customer_key_md5,
        tag_count: h.tag_count,
        checksum_crc32: c.checksum_crc32,
        checksum_crc32c: c.checksum_crc32c,
        checksum_crc64nvme: c.checksum_crc64nvme,
        checksum_sha1: c.checksum_sha1,
        checksum_sha256: c.checksum_sha256,
        checksum_type: c.checksum_type,
        ..Default::default()
    }))
}

pub async fn head(s: &Strata, req: S3Request<HeadObjectInput>) -> S3Result<S3Response<HeadObjectOutput>> {
    if let Some(raw) = transform_params(&req.uri)? {
        return super::derived::head(s, req, raw).await;
    }
    let secure = connection_is_secure(&req.extensions);
    let a = answer(s, read_request!(req.input), secure, Verb::Head)?;
    let h = a.headers;
    let c = h.checksum;
    let mut resp = S3Response::new(HeadObjectOutput {
        content_length: Some(h.content_length),
        content_range: h.content_range,
        parts_count: h.parts_count,
        accept_ranges: Some("bytes".to_string()),
        e_tag: Some(h.e_tag),
        last_modified: Some(h.last_modified),
        content_type: Some(h.content_type),
        content_encoding: h.content_encoding,
        content_disposition: h.content_disposition,
        content_language: h.content_language,
        cache_control: h.cache_control,
        expires: h.expires,
        website_redirect_location: h.website_redirect_location,
        storage_class: h.storage_class,
        restore: h.restore,
        metadata: h.metadata,
        version_id: h.version_id,
        server_side_encryption: h.sse.server_side_encryption,
        ssekms_key_id: h.sse.kms_key_id,
        sse_customer_algorithm: h.sse.customer_algorithm,
        sse_customer_key_md5: h.sse.customer_key_md5,
        checksum_crc32: c.checksum_crc32,
        checksum_crc32c: c.checksum_crc32c,
        checksum_crc64nvme: c.checksum_crc64nvme,
        checksum_sha1: c.checksum_sha1,
        checksum_sha256: c.checksum_sha256,
        checksum_type: c.checksum_type,
        ..Default::default()
    });
    // The SDKs read `x-amz-tagging-count` on HEAD too; s3s 0.14's HeadObjectOutput lacks it.
    if let Some(n) = h.tag_count {
        resp.headers.insert("x-amz-tagging-count", http::HeaderValue::from(n));
    }
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
