//! ListObjects (v1) and ListObjectsV2 over the sorted `objects` tree.
//!
//! With a delimiter, every key under a common prefix collapses into that prefix and the scan
//! seeks straight past the prefix's key range, so a page costs O(page), not O(children).
//! Keys and common prefixes share one ordered sequence; a page is the first `max_keys`
//! entries strictly after the marker (a common prefix at or before the marker is skipped).

use std::ops::Bound;

use base64::Engine;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use s3s::dto::*;
use s3s::{S3Request, S3Response, S3Result};

use super::errors;
use super::errors::store_error;
use super::{etag, Strata};
use crate::store::records::ObjectRecord;
use crate::store::MetaStore;
use crate::util::ms_to_timestamp;

pub(super) const DEFAULT_MAX_KEYS: i32 = 1000;

/// Characters left as-is by `encoding-type=url` (RFC 3986 unreserved, plus `/`).
const URL_ENCODE_SET: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b'/');

pub enum Entry {
    Object(String, Box<ObjectRecord>),
    Prefix(String),
}

impl Entry {
    fn name(&self) -> &str {
        match self {
            Entry::Object(k, _) | Entry::Prefix(k) => k,
        }
    }
}

pub struct Page {
    pub entries: Vec<Entry>,
    pub truncated: bool,
}

/// The smallest byte string greater than every key starting with `prefix`, if one exists.
fn prefix_end(prefix: &str) -> Option<Vec<u8>> {
    let mut bytes = prefix.as_bytes().to_vec();
    while let Some(last) = bytes.pop() {
        if last < 0xff {
            bytes.push(last + 1);
            return Some(bytes);
        }
    }
    None
}

/// One page of entries under `prefix`, after `after`, grouped by `delimiter`. Keys whose
/// latest version is a delete marker are left out unless `with_delete_markers`.
pub fn page(
    meta: &MetaStore,
    bucket: &str,
    prefix: &str,
    delimiter: Option<&str>,
    after: Option<&str>,
    max_keys: usize,
    with_delete_markers: bool,
) -> S3Result<Page> {
    let delimiter = delimiter.filter(|d| !d.is_empty());
    let mut entries = Vec::new();
    let mut from: Bound<Vec<u8>> = match after {
        Some(a) if a >= prefix => Bound::Excluded(a.as_bytes().to_vec()),
        _ => Bound::Included(prefix.as_bytes().to_vec()),
    };
    if max_keys == 0 {
        return Ok(Page {
            entries,
            truncated: false,
        });
    }
    'scan: loop {
        for item in meta.scan_objects(bucket, from.clone()) {
            let (key, rec) = item.map_err(store_error)?;
            if !key.starts_with(prefix) {
                break 'scan;
            }
            // A deleted key is skipped, not seeked past: a later key under the same common
            // prefix may still be live and make the prefix appear.
            if rec.delete_marker && !with_delete_markers {
                continue;
            }
            let group = delimiter.and_then(|d| {
                key[prefix.len()..]
                    .find(d)
                    .map(|pos| key[..prefix.len() + pos + d.len()].to_string())
            });
            let entry = match group {
                Some(common) => {
                    let skip = after.is_some_and(|a| common.as_str() <= a);
                    let next = prefix_end(&common);
                    if !skip {
                        entries.push(Entry::Prefix(common));
                    }
                    match next {
                        Some(n) => from = Bound::Included(n),
                        None => break 'scan,
                    }
                    if entries.len() > max_keys {
                        break 'scan;
                    }
                    continue 'scan;
                }
                None => Entry::Object(key, Box::new(rec)),
            };
            entries.push(entry);
            if entries.len() > max_keys {
                break 'scan;
            }
        }
        break;
    }
    let truncated = entries.len() > max_keys;
    entries.truncate(max_keys);
    Ok(Page { entries, truncated })
}

pub fn owner(access_key: &str) -> Owner {
    Owner {
        id: Some(access_key.to_string()),
        display_name: Some(access_key.to_string()),
    }
}

pub(super) fn encoder(encoding: Option<&EncodingType>) -> S3Result<impl Fn(String) -> String> {
    let url = match encoding.map(|e| e.as_str()) {
        None => false,
        Some(e) if e == EncodingType::URL => true,
        Some(_) => return Err(errors::invalid_argument("Invalid Encoding Method specified in Request")),
    };
    Ok(move |s: String| {
        if url {
            utf8_percent_encode(&s, URL_ENCODE_SET).to_string()
        } else {
            s
        }
    })
}

pub(super) fn max_keys(requested: Option<i32>) -> S3Result<usize> {
    match requested {
        None => Ok(DEFAULT_MAX_KEYS as usize),
        Some(n) if n < 0 => Err(errors::invalid_argument("max-keys must be non-negative")),
        Some(n) => Ok(n.min(DEFAULT_MAX_KEYS) as usize),
    }
}

struct Rendered {
    contents: Vec<Object>,
    prefixes: Vec<CommonPrefix>,
    last: Option<String>,
}

fn render(page: Page, with_owner: bool, enc: &impl Fn(String) -> String) -> Rendered {
    let last = page.entries.last().map(|e| e.name().to_string());
    let mut contents = Vec::new();
    let mut prefixes = Vec::new();
    for entry in page.entries {
        match entry {
            Entry::Object(key, rec) => contents.push(Object {
                key: Some(enc(key)),
                size: Some(rec.size as i64),
                e_tag: Some(etag(&rec.etag)),
                last_modified: Some(ms_to_timestamp(rec.last_modified_ms)),
                storage_class: Some(ObjectStorageClass::from(rec.storage_class.as_str().to_string())),
                owner: with_owner.then(|| owner(&rec.owner)),
                ..Default::default()
            }),
            Entry::Prefix(p) => prefixes.push(CommonPrefix { prefix: Some(enc(p)) }),
        }
    }
    Rendered {
        contents,
        prefixes,
        last,
    }
}

fn encode_token(last: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(last.as_bytes())
}

fn decode_token(token: &str) -> S3Result<String> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| errors::invalid_argument("The continuation token provided is incorrect"))
}

pub async fn list_v2(s: &Strata, req: S3Request<ListObjectsV2Input>) -> S3Result<S3Response<ListObjectsV2Output>> {
    let input = req.input;
    s.bucket(&input.bucket)?;
    let enc = encoder(input.encoding_type.as_ref())?;
    let max = max_keys(input.max_keys)?;
    let prefix = input.prefix.clone().unwrap_or_default();
    let after = match &input.continuation_token {
        Some(t) => Some(decode_token(t)?),
        None => input.start_after.clone(),
    };
    let page = page(
        &s.store.meta,
        &input.bucket,
        &prefix,
        input.delimiter.as_deref(),
        after.as_deref(),
        max,
        false,
    )?;
    let truncated = page.truncated;
    let r = render(page, input.fetch_owner.unwrap_or(false), &enc);
    let key_count = (r.contents.len() + r.prefixes.len()) as i32;
    Ok(S3Response::new(ListObjectsV2Output {
        name: Some(input.bucket),
        prefix: Some(enc(prefix)),
        delimiter: input.delimiter.map(&enc),
        max_keys: Some(input.max_keys.unwrap_or(DEFAULT_MAX_KEYS)),
        key_count: Some(key_count),
        is_truncated: Some(truncated),
        continuation_token: input.continuation_token,
        next_continuation_token: if truncated {
            r.last.as_deref().map(encode_token)
        } else {
            None
        },
        start_after: input.start_after.map(&enc),
        encoding_type: input.encoding_type,
        contents: (!r.contents.is_empty()).then_some(r.contents),
        common_prefixes: (!r.prefixes.is_empty()).then_some(r.prefixes),
        ..Default::default()
    }))
}

pub async fn list_v1(s: &Strata, req: S3Request<ListObjectsInput>) -> S3Result<S3Response<ListObjectsOutput>> {
    let input = req.input;
    s.bucket(&input.bucket)?;
    let enc = encoder(input.encoding_type.as_ref())?;
    let max = max_keys(input.max_keys)?;
    let prefix = input.prefix.clone().unwrap_or_default();
    let page = page(
        &s.store.meta,
        &input.bucket,
        &prefix,
        input.delimiter.as_deref(),
        input.marker.as_deref(),
        max,
        false,
    )?;
    let truncated = page.truncated;
    let r = render(page, true, &enc);
    Ok(S3Response::new(ListObjectsOutput {
        name: Some(input.bucket),
        prefix: Some(enc(prefix)),
        marker: Some(enc(input.marker.unwrap_or_default())),
        delimiter: input.delimiter.map(&enc),
        max_keys: Some(input.max_keys.unwrap_or(DEFAULT_MAX_KEYS)),
        is_truncated: Some(truncated),
        next_marker: if truncated { r.last.map(&enc) } else { None },
        encoding_type: input.encoding_type,
        contents: (!r.contents.is_empty()).then_some(r.contents),
        common_prefixes: (!r.prefixes.is_empty()).then_some(r.prefixes),
        ..Default::default()
    }))
}
