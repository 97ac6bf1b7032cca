//! Bucket operations: CreateBucket, DeleteBucket, HeadBucket, ListBuckets, GetBucketLocation.

use s3s::dto::*;
use s3s::{S3Request, S3Response, S3Result};

use super::errors;
use super::errors::store_error;
use super::{caller, Strata};
use crate::store::records::BucketRecord;
use crate::util::{ms_to_timestamp, now_ms};

/// `_strata` passes s3s's name check only so that `/_strata/...` can be routed to us.
pub const RESERVED_BUCKET: &str = "_strata";

pub async fn create(s: &Strata, req: S3Request<CreateBucketInput>) -> S3Result<S3Response<CreateBucketOutput>> {
    let owner = caller(&req)?;
    let headers = req.headers;
    let name = req.input.bucket;
    if name == RESERVED_BUCKET || !s3s::path::check_bucket_name(&name) {
        return Err(errors::invalid_bucket_name());
    }
    let region = req
        .input
        .create_bucket_configuration
        .and_then(|c| c.location_constraint)
        .map(|l| l.as_str().to_string())
        .filter(|l| !l.is_empty())
        .unwrap_or_else(|| s.region.clone());
    let mut rec = BucketRecord::new(&owner, now_ms(), &region);
    rec.acl = super::acl::bucket_acl_from_request(s, &rec, req.input.acl.as_ref(), &headers)?;
    match s.store.meta.create_bucket(&name, &rec).map_err(store_error)? {
        None => {}
        Some(existing) if existing.owner == owner => return Err(errors::bucket_already_owned_by_you()),
        Some(_) => return Err(errors::bucket_already_exists()),
    }
    s.store.meta.durable().await.map_err(store_error)?;
    Ok(S3Response::new(CreateBucketOutput {
        location: Some(format!("/{name}")),
    }))
}

pub async fn delete(s: &Strata, req: S3Request<DeleteBucketInput>) -> S3Result<S3Response<DeleteBucketOutput>> {
    let name = req.input.bucket;
    s.bucket(&name)?;
    if !s.store.meta.bucket_is_empty(&name).map_err(store_error)? {
        return Err(errors::bucket_not_empty());
    }
    // In-progress multipart uploads die with the bucket.
    let uploads = s.store.meta.uploads_in(&name).map_err(store_error)?;
    for (id, _) in uploads {
        super::multipart::discard_upload(s, &id).await?;
    }
    s.store.meta.delete_bucket(&name).map_err(store_error)?;
    s.store.meta.durable().await.map_err(store_error)?;
    Ok(S3Response::new(DeleteBucketOutput {}))
}

pub async fn head(s: &Strata, req: S3Request<HeadBucketInput>) -> S3Result<S3Response<HeadBucketOutput>> {
    let rec = s.bucket(&req.input.bucket)?;
    Ok(S3Response::new(HeadBucketOutput {
        bucket_region: Some(rec.region),
        ..Default::default()
    }))
}

pub async fn list(s: &Strata, req: S3Request<ListBucketsInput>) -> S3Result<S3Response<ListBucketsOutput>> {
    let who = caller(&req)?;
    let is_root = s.authz.is_root(&who);
    let prefix = req.input.prefix.unwrap_or_default();
    let buckets: Vec<Bucket> = s
        .store
        .meta
        .buckets()
        .map_err(store_error)?
        .into_iter()
        .filter(|(name, b)| (is_root || b.owner == who) && name.starts_with(&prefix))
        .map(|(name, b)| Bucket {
            name: Some(name),
            creation_date: Some(ms_to_timestamp(b.created_ms)),
            bucket_region: Some(b.region),
        })
        .collect();
    Ok(S3Response::new(ListBucketsOutput {
        buckets: Some(buckets),
        owner: Some(super::list::owner(&who)),
        ..Default::default()
    }))
}

pub async fn location(
    s: &Strata,
    req: S3Request<GetBucketLocationInput>,
) -> S3Result<S3Response<GetBucketLocationOutput>> {
    let rec = s.bucket(&req.input.bucket)?;
    // S3 reports us-east-1 as an empty location constraint.
    let constraint = (rec.region != "us-east-1").then(|| BucketLocationConstraint::from(rec.region));
    Ok(S3Response::new(GetBucketLocationOutput {
        location_constraint: constraint,
    }))
}
