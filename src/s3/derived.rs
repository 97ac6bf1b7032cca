//! GET/HEAD of an object with transform parameters (`?w=200&h=150&f=webp&q=90`): served from
//! the derivative cache, or made from the stored original on a miss.
//!
//! Authorization is the plain GET's (s3s checked it before we get here; for presigned URLs the
//! transform parameters are part of what was signed). The cache key includes the object's
//! version id, so an overwritten or deleted original can never yield an old derivative.

use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use s3s::dto::*;
use s3s::{S3Error, S3Request, S3Response, S3Result};

use super::conditional::{self, Conditions, Kind};
use super::encryption::{customer_key_headers, CustomerKeyHeaders};
use super::errors;
use super::{etag, read, Strata};
use crate::derivative::{derivative_id, source_id, Derivative, DerivativeError};
use crate::store::crypto::Key256;
use crate::store::integrity::corruption_of;
use crate::store::records::ObjectRecord;
use crate::transform::{self, RawSpec, TransformError};
use crate::util::ms_to_timestamp;

/// Bytes read to recognise the source format.
const SNIFF_BYTES: u64 = 64;

pub fn transform_error(e: &TransformError) -> S3Error {
    match e {
        TransformError::InvalidArgument { param, message } => {
            errors::invalid_argument(format!("Invalid transform parameter {param}: {message}"))
        }
        TransformError::UnsupportedSource(m) => {
            errors::unsupported_media_type(format!("The object is not an image this server can transform: {m}"))
        }
        TransformError::TooLarge(m) => errors::image_too_large(format!("The image exceeds a transform limit: {m}")),
        TransformError::Corrupt(m) => errors::invalid_image(format!("The image could not be decoded: {m}")),
        TransformError::Timeout => errors::slow_down("The transform took too long; please retry later."),
        TransformError::Internal(m) => super::errors::internal("transform", m),
    }
}

fn derivative_error(e: DerivativeError) -> S3Error {
    match e {
        DerivativeError::Transform(t) => transform_error(&t),
        DerivativeError::Busy => errors::slow_down("Too many transforms are queued; please reduce your request rate."),
        DerivativeError::SourceCorrupt => super::errors::stored_data_corrupt(),
        DerivativeError::Source(m) | DerivativeError::Internal(m) => super::errors::internal("derivative", m),
    }
}

/// The object a transform reads, and who asks (for the report of a failed check).
struct Original<'a> {
    bucket: &'a str,
    key: &'a str,
    rec: &'a ObjectRecord,
    request_id: Option<&'a str>,
}

/// Reads `[0, len)` of an object into memory (callers bound `len`), verified: only checked
/// bytes reach the pipeline, and so the derivative caches.
async fn read_prefix(s: &Strata, o: &Original<'_>, key: Option<&Key256>, len: u64) -> Result<Bytes, DerivativeError> {
    let end = len.min(o.rec.size);
    let mut stream = read::object_stream(
        s,
        o.bucket,
        o.key,
        o.rec,
        key,
        0,
        end,
        read::Purpose::Transform,
        o.request_id.map(str::to_string),
    );
    let mut buf = BytesMut::with_capacity(end as usize);
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(c) => buf.extend_from_slice(&c),
            Err(e) if corruption_of(&e).is_some() => return Err(DerivativeError::SourceCorrupt),
            Err(e) => return Err(DerivativeError::Source(e.to_string())),
        }
    }
    Ok(buf.freeze())
}

/// What GET and HEAD share: the derivative (made if needed) and its response headers.
struct Served {
    derivative: Derivative,
    hit: bool,
    auto: bool,
    rec: ObjectRecord,
}

#[allow(clippy::too_many_arguments)]
async fn serve(
    s: &Strata,
    bucket: &str,
    key: &str,
    version_id: Option<&str>,
    raw: RawSpec,
    headers: &http::HeaderMap,
    anonymous: bool,
    cond: &Conditions<'_>,
    has_range: bool,
    customer: CustomerKeyHeaders<'_>,
    secure: bool,
    request_id: Option<&str>,
) -> S3Result<Served> {
    if has_range {
        return Err(errors::invalid_argument(
            "Range and partNumber cannot be combined with transform parameters",
        ));
    }
    let rec = s.object_at(bucket, key, version_id)?;
    super::storage_class::check_readable(&rec)?;
    let data_key = s.data_key_for_read(rec.encryption.as_ref(), customer, secure)?;
    let src = source_id(bucket, key, &rec.version_id);
    let original = Original {
        bucket,
        key,
        rec: &rec,
        request_id,
    };
    let format = match s.derivatives.hot.source_format(&src) {
        Some(f) => f,
        None => {
            let head = read_prefix(s, &original, data_key.as_ref(), SNIFF_BYTES)
                .await
                .map_err(derivative_error)?;
            let f = transform::sniff(&head).ok_or_else(|| {
                transform_error(&TransformError::UnsupportedSource(
                    "unrecognised format (JPEG, PNG, WebP and GIF can be transformed)".into(),
                ))
            })?;
            s.derivatives.hot.remember_source(&src, f);
            f
        }
    };
    let auto = raw.is_auto_format();
    let accept = headers.get(http::header::ACCEPT).and_then(|v| v.to_str().ok());
    let spec = transform::resolve(raw, accept, format);
    let canonical = spec.canonical();
    if anonymous {
        if let Some(presets) = s
            .transform
            .buckets
            .get(bucket)
            .and_then(|b| b.anonymous_presets.as_ref())
        {
            if !presets.iter().any(|p| p == &canonical) {
                return Err(errors::access_denied_because(
                    "This transform is not one of the bucket's allowed presets",
                ));
            }
        }
    }
    let der = derivative_id(&src, &canonical);
    conditional::check(cond, &der, rec.last_modified_ms, Kind::Read)?;
    let max_source = s.derivatives.limits().max_source_bytes;
    if rec.size > max_source {
        return Err(transform_error(&TransformError::TooLarge(format!(
            "the original is {} bytes; the limit is {max_source}",
            rec.size
        ))));
    }
    let (derivative, hit) = s
        .derivatives
        .fetch(&src, &der, &spec, data_key.as_ref(), || async {
            read_prefix(s, &original, data_key.as_ref(), rec.size).await
        })
        .await
        .map_err(derivative_error)?;
    Ok(Served {
        derivative,
        hit,
        auto,
        rec,
    })
}

fn cache_control(s: &Strata, bucket: &str, versioned: bool) -> String {
    if versioned {
        return s.transform.cache_control_versioned.clone();
    }
    s.transform
        .buckets
        .get(bucket)
        .and_then(|b| b.cache_control.clone())
        .unwrap_or_else(|| s.transform.cache_control.clone())
}

fn extra_headers(served: &Served) -> http::HeaderMap {
    let mut h = http::HeaderMap::new();
    h.insert(
        "x-strata-cache",
        http::HeaderValue::from_static(if served.hit { "hit" } else { "miss" }),
    );
    if served.auto {
        h.insert(http::header::VARY, http::HeaderValue::from_static("Accept"));
    }
    h
}

pub async fn get(s: &Strata, req: S3Request<GetObjectInput>, raw: RawSpec) -> S3Result<S3Response<GetObjectOutput>> {
    let input = &req.input;
    let cond = Conditions {
        if_match: input.if_match.as_ref(),
        if_none_match: input.if_none_match.as_ref(),
        if_modified_since: input.if_modified_since.as_ref(),
        if_unmodified_since: input.if_unmodified_since.as_ref(),
    };
    let served = serve(
        s,
        &input.bucket,
        &input.key,
        input.version_id.as_deref(),
        raw,
        &req.headers,
        req.credentials.is_none(),
        &cond,
        input.range.is_some() || input.part_number.is_some(),
        customer_key_headers!(input),
        super::encryption::connection_is_secure(&req.extensions),
        super::errors::request_id(&req.extensions).as_deref(),
    )
    .await?;
    let d = &served.derivative;
    let body = d.bytes.clone();
    let output = GetObjectOutput {
        content_length: Some(body.len() as i64),
        body: Some(StreamingBlob::wrap(futures::stream::iter([Ok::<_, std::io::Error>(
            body,
        )]))),
        content_type: Some(d.content_type.clone()),
        e_tag: Some(etag(&d.id)),
        last_modified: Some(ms_to_timestamp(served.rec.last_modified_ms)),
        cache_control: Some(cache_control(s, &input.bucket, input.version_id.is_some())),
        ..Default::default()
    };
    let mut resp = S3Response::new(output);
    resp.headers = extra_headers(&served);
    Ok(resp)
}

pub async fn head(s: &Strata, req: S3Request<HeadObjectInput>, raw: RawSpec) -> S3Result<S3Response<HeadObjectOutput>> {
    let input = &req.input;
    let cond = Conditions {
        if_match: input.if_match.as_ref(),
        if_none_match: input.if_none_match.as_ref(),
        if_modified_since: input.if_modified_since.as_ref(),
        if_unmodified_since: input.if_unmodified_since.as_ref(),
    };
    let served = serve(
        s,
        &input.bucket,
        &input.key,
        input.version_id.as_deref(),
        raw,
        &req.headers,
        req.credentials.is_none(),
        &cond,
        input.range.is_some() || input.part_number.is_some(),
        customer_key_headers!(input),
        super::encryption::connection_is_secure(&req.extensions),
        super::errors::request_id(&req.extensions).as_deref(),
    )
    .await?;
    let d = &served.derivative;
    let output = HeadObjectOutput {
        content_length: Some(d.bytes.len() as i64),
        content_type: Some(d.content_type.clone()),
        e_tag: Some(etag(&d.id)),
        last_modified: Some(ms_to_timestamp(served.rec.last_modified_ms)),
        cache_control: Some(cache_control(s, &input.bucket, input.version_id.is_some())),
        ..Default::default()
    };
    let mut resp = S3Response::new(output);
    resp.headers = extra_headers(&served);
    Ok(resp)
}
