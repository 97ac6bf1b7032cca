//! Bucket versioning: PutBucketVersioning, GetBucketVersioning and ListObjectVersions.
//! How writes and deletes treat versions lives in `store::versions`.

use s3s::dto::*;
use s3s::{S3Request, S3Response, S3Result};

use super::errors;
use super::errors::store_error;
use super::list::{encoder, max_keys, page, Entry, DEFAULT_MAX_KEYS};
use super::{etag, Strata};
use crate::store::records::{ObjectRecord, Versioning};
use crate::store::MetaStore;
use crate::util::ms_to_timestamp;

pub async fn put(
    s: &Strata,
    req: S3Request<PutBucketVersioningInput>,
) -> S3Result<S3Response<PutBucketVersioningOutput>> {
    let input = req.input;
    let wanted = match input.versioning_configuration.status.as_ref().map(|st| st.as_str()) {
        Some(BucketVersioningStatus::ENABLED) => Versioning::Enabled,
        Some(BucketVersioningStatus::SUSPENDED) => Versioning::Suspended,
        _ => return Err(errors::malformed_xml()),
    };
    if input.versioning_configuration.mfa_delete.is_some() {
        return Err(errors::not_implemented("MFA Delete is not supported"));
    }
    s.update_bucket(&input.bucket, |b| {
        b.versioning = Some(wanted);
        Ok(())
    })
    .await?;
    Ok(S3Response::new(PutBucketVersioningOutput::default()))
}

pub async fn get(
    s: &Strata,
    req: S3Request<GetBucketVersioningInput>,
) -> S3Result<S3Response<GetBucketVersioningOutput>> {
    let b = s.bucket(&req.input.bucket)?;
    let status = b.versioning.map(|v| {
        BucketVersioningStatus::from_static(match v {
            Versioning::Enabled => BucketVersioningStatus::ENABLED,
            Versioning::Suspended => BucketVersioningStatus::SUSPENDED,
        })
    });
    Ok(S3Response::new(GetBucketVersioningOutput {
        status,
        ..Default::default()
    }))
}

/// One listed version of a key, in S3's order (newest first).
enum Listed {
    Version(String, bool, Box<ObjectRecord>),
    Prefix(String),
}

/// One page of ListObjectVersions being filled: at most `max` entries; `more` once one did
/// not fit.
struct Page {
    listed: Vec<Listed>,
    max: usize,
    more: bool,
}

impl Page {
    fn new(max: usize) -> Self {
        Self {
            listed: Vec::new(),
            max,
            more: false,
        }
    }

    /// Adds `item` if there is room; false (and `more`) when the page is full.
    fn push(&mut self, item: Listed) -> bool {
        if self.listed.len() == self.max {
            self.more = true;
            return false;
        }
        self.listed.push(item);
        true
    }
}

/// Every version of bucket/key, the latest first, then the noncurrent ones newest first.
fn versions_of(meta: &MetaStore, bucket: &str, key: &str) -> S3Result<Vec<ObjectRecord>> {
    let mut all = Vec::new();
    if let Some(cur) = meta.object(bucket, key).map_err(store_error)? {
        all.push(cur);
    }
    for v in meta.noncurrent_versions(bucket, key) {
        all.push(v.map_err(store_error)?);
    }
    Ok(all)
}

/// The listed entries as S3 reports them: versions, delete markers and common prefixes.
fn entries(
    listed: Vec<Listed>,
    enc: &impl Fn(String) -> String,
) -> (Vec<ObjectVersion>, Vec<DeleteMarkerEntry>, Vec<CommonPrefix>) {
    let mut versions = Vec::new();
    let mut markers = Vec::new();
    let mut prefixes = Vec::new();
    for item in listed {
        match item {
            Listed::Prefix(p) => prefixes.push(CommonPrefix { prefix: Some(enc(p)) }),
            Listed::Version(key, latest, v) if v.delete_marker => markers.push(DeleteMarkerEntry {
                key: Some(enc(key)),
                version_id: Some(v.client_version_id().to_string()),
                is_latest: Some(latest),
                last_modified: Some(ms_to_timestamp(v.last_modified_ms)),
                owner: Some(super::list::owner(&v.owner)),
            }),
            Listed::Version(key, latest, v) => versions.push(ObjectVersion {
                key: Some(enc(key)),
                version_id: Some(v.client_version_id().to_string()),
                is_latest: Some(latest),
                last_modified: Some(ms_to_timestamp(v.last_modified_ms)),
                e_tag: Some(etag(&v.etag)),
                size: Some(v.size as i64),
                storage_class: Some(ObjectVersionStorageClass::from(v.storage_class.as_str().to_string())),
                owner: Some(super::list::owner(&v.owner)),
                ..Default::default()
            }),
        }
    }
    (versions, markers, prefixes)
}

/// ListObjectVersions: keys in order (with a delimiter, common prefixes collapse as in
/// ListObjects); within a key the latest version first, then the noncurrent ones newest
/// first. `max-keys` counts versions, delete markers and prefixes. The markers resume after
/// `version-id-marker` of `key-marker`, or after all of `key-marker`'s versions.
pub async fn list(
    s: &Strata,
    req: S3Request<ListObjectVersionsInput>,
) -> S3Result<S3Response<ListObjectVersionsOutput>> {
    let input = req.input;
    s.bucket(&input.bucket)?;
    let enc = encoder(input.encoding_type.as_ref())?;
    let max = max_keys(input.max_keys)?;
    let prefix = input.prefix.clone().unwrap_or_default();
    let meta = &s.store.meta;
    let mut out = Page::new(max);

    // The rest of the key the previous page stopped inside.
    if let (Some(key), Some(vmarker)) = (&input.key_marker, &input.version_id_marker) {
        if key.starts_with(&prefix) && !vmarker.is_empty() {
            let all = versions_of(meta, &input.bucket, key)?;
            let pos = all.iter().position(|v| v.client_version_id() == vmarker.as_str());
            let Some(pos) = pos else {
                return Err(errors::invalid_version_id());
            };
            for (i, v) in all.into_iter().enumerate().skip(pos + 1) {
                if !out.push(Listed::Version(key.clone(), i == 0, Box::new(v))) {
                    break;
                }
            }
        }
    }
    if !out.more && max > 0 {
        // Each key contributes at least one entry, so `remaining` keys always fill the page;
        // at least one is asked for so a page filled exactly by the marker's key still learns
        // whether anything follows.
        let remaining = (max - out.listed.len()).max(1);
        let keys = page(
            meta,
            &input.bucket,
            &prefix,
            input.delimiter.as_deref(),
            input.key_marker.as_deref(),
            remaining,
            true,
        )?;
        'keys: for entry in keys.entries {
            match entry {
                Entry::Prefix(p) => {
                    if !out.push(Listed::Prefix(p)) {
                        break 'keys;
                    }
                }
                Entry::Object(key, _) => {
                    for (i, v) in versions_of(meta, &input.bucket, &key)?.into_iter().enumerate() {
                        if !out.push(Listed::Version(key.clone(), i == 0, Box::new(v))) {
                            break 'keys;
                        }
                    }
                }
            }
        }
        out.more |= keys.truncated;
    }

    let more = out.more;
    let (next_key, next_version) = match out.listed.last() {
        Some(Listed::Version(k, _, v)) if more => (Some(k.clone()), Some(v.client_version_id().to_string())),
        Some(Listed::Prefix(p)) if more => (Some(p.clone()), None),
        _ => (None, None),
    };
    let (versions, markers, prefixes) = entries(out.listed, &enc);
    Ok(S3Response::new(ListObjectVersionsOutput {
        name: Some(input.bucket),
        prefix: Some(enc(prefix)),
        delimiter: input.delimiter.map(&enc),
        key_marker: Some(enc(input.key_marker.unwrap_or_default())),
        version_id_marker: Some(input.version_id_marker.unwrap_or_default()),
        max_keys: Some(input.max_keys.unwrap_or(DEFAULT_MAX_KEYS)),
        is_truncated: Some(more),
        next_key_marker: next_key.map(&enc),
        next_version_id_marker: next_version,
        encoding_type: input.encoding_type,
        versions: (!versions.is_empty()).then_some(versions),
        delete_markers: (!markers.is_empty()).then_some(markers),
        common_prefixes: (!prefixes.is_empty()).then_some(prefixes),
        ..Default::default()
    }))
}
