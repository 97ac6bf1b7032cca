//! Object and bucket tagging: the `x-amz-tagging` header on writes, Put/Get/DeleteObjectTagging
//! and Put/Get/DeleteBucketTagging, with S3's limits on tag sets.

use s3s::dto::*;
use s3s::{S3Request, S3Response, S3Result};

use super::errors;
use super::errors::store_error;
use super::Strata;
use crate::store::records::Tag as StoredTag;

/// S3's limits: 10 tags per object, 50 per bucket; keys up to 128 and values up to 256
/// Unicode characters.
const MAX_OBJECT_TAGS: usize = 10;
const MAX_BUCKET_TAGS: usize = 50;
const MAX_TAG_KEY_CHARS: usize = 128;
const MAX_TAG_VALUE_CHARS: usize = 256;

fn validate(tags: &[StoredTag], max: usize) -> S3Result<()> {
    if tags.len() > max {
        return Err(errors::invalid_tag(format!("Object tags cannot be greater than {max}")));
    }
    for (i, t) in tags.iter().enumerate() {
        if t.key.is_empty() || t.key.chars().count() > MAX_TAG_KEY_CHARS {
            return Err(errors::invalid_tag("The TagKey you have provided is invalid"));
        }
        if t.value.chars().count() > MAX_TAG_VALUE_CHARS {
            return Err(errors::invalid_tag("The TagValue you have provided is invalid"));
        }
        if tags[..i].iter().any(|o| o.key == t.key) {
            return Err(errors::invalid_tag("Cannot provide multiple Tags with the same key"));
        }
    }
    Ok(())
}

/// Tags from the `x-amz-tagging` header (a URL query string: `a=1&b=2`).
pub fn from_header(header: Option<&str>) -> S3Result<Vec<StoredTag>> {
    let Some(h) = header.filter(|h| !h.is_empty()) else {
        return Ok(Vec::new());
    };
    let decode = |s: &str| {
        crate::util::query::decode_utf8(s).ok_or_else(|| errors::invalid_argument("The header 'x-amz-tagging' shall be encoded as UTF-8 then URLEncoded URL query parameters without tag name duplicates."))
    };
    let mut tags = Vec::new();
    for p in crate::util::query::params(h) {
        tags.push(StoredTag {
            key: decode(p.raw_name)?,
            value: decode(p.raw_value)?,
        });
    }
    validate(&tags, MAX_OBJECT_TAGS)?;
    Ok(tags)
}

fn from_dto(set: Vec<Tag>, max: usize) -> S3Result<Vec<StoredTag>> {
    let tags: Vec<StoredTag> = set
        .into_iter()
        .map(|t| StoredTag {
            key: t.key.unwrap_or_default(),
            value: t.value.unwrap_or_default(),
        })
        .collect();
    validate(&tags, max)?;
    Ok(tags)
}

fn to_dto(tags: &[StoredTag]) -> Vec<Tag> {
    tags.iter()
        .map(|t| Tag {
            key: Some(t.key.clone()),
            value: Some(t.value.clone()),
        })
        .collect()
}

/// Sets the tags of one version; NoSuchKey / NoSuchVersion when it does not exist.
async fn set_object_tags(
    s: &Strata,
    bucket: &str,
    key: &str,
    version_id: Option<&str>,
    tags: Vec<StoredTag>,
) -> S3Result<Option<String>> {
    let b = s.bucket(bucket)?;
    // Resolves the version first so a missing one gets S3's exact error.
    s.object_at(bucket, key, version_id)?;
    let updated = s
        .store
        .meta
        .update_version(bucket, key, version_id, |r| r.tags = tags.clone())
        .map_err(store_error)?;
    let Some(updated) = updated else {
        return Err(errors::no_such_key());
    };
    let rec = updated.durable().await.map_err(store_error)?;
    Ok(super::reported_version(&b, &rec))
}

pub async fn put_object(
    s: &Strata,
    req: S3Request<PutObjectTaggingInput>,
) -> S3Result<S3Response<PutObjectTaggingOutput>> {
    let input = req.input;
    let tags = from_dto(input.tagging.tag_set, MAX_OBJECT_TAGS)?;
    let version_id = set_object_tags(s, &input.bucket, &input.key, input.version_id.as_deref(), tags).await?;
    Ok(S3Response::new(PutObjectTaggingOutput { version_id }))
}

pub async fn get_object(
    s: &Strata,
    req: S3Request<GetObjectTaggingInput>,
) -> S3Result<S3Response<GetObjectTaggingOutput>> {
    let input = req.input;
    let b = s.bucket(&input.bucket)?;
    let rec = s.object_at(&input.bucket, &input.key, input.version_id.as_deref())?;
    Ok(S3Response::new(GetObjectTaggingOutput {
        tag_set: to_dto(&rec.tags),
        version_id: super::reported_version(&b, &rec),
    }))
}

pub async fn delete_object(
    s: &Strata,
    req: S3Request<DeleteObjectTaggingInput>,
) -> S3Result<S3Response<DeleteObjectTaggingOutput>> {
    let input = req.input;
    let version_id = set_object_tags(s, &input.bucket, &input.key, input.version_id.as_deref(), Vec::new()).await?;
    Ok(S3Response::new(DeleteObjectTaggingOutput { version_id }))
}

pub async fn put_bucket(
    s: &Strata,
    req: S3Request<PutBucketTaggingInput>,
) -> S3Result<S3Response<PutBucketTaggingOutput>> {
    let input = req.input;
    let tags = from_dto(input.tagging.tag_set, MAX_BUCKET_TAGS)?;
    s.update_bucket(&input.bucket, |b| {
        b.tags = Some(tags.clone());
        Ok(())
    })
    .await?;
    Ok(S3Response::new(PutBucketTaggingOutput::default()))
}

pub async fn get_bucket(
    s: &Strata,
    req: S3Request<GetBucketTaggingInput>,
) -> S3Result<S3Response<GetBucketTaggingOutput>> {
    let b = s.bucket(&req.input.bucket)?;
    match b.tags {
        Some(tags) => Ok(S3Response::new(GetBucketTaggingOutput { tag_set: to_dto(&tags) })),
        None => Err(errors::no_such_tag_set()),
    }
}

pub async fn delete_bucket(
    s: &Strata,
    req: S3Request<DeleteBucketTaggingInput>,
) -> S3Result<S3Response<DeleteBucketTaggingOutput>> {
    s.update_bucket(&req.input.bucket, |b| {
        b.tags = None;
        Ok(())
    })
    .await?;
    Ok(S3Response::new(DeleteBucketTaggingOutput::default()))
}
