//! Block Public Access per bucket: Put/Get/DeletePublicAccessBlock. Buckets without a setting
//! follow the server-wide default (`access.block_public_access`, on), the way S3 buckets
//! follow their account's setting; the decision that uses it is `auth::access`.

use s3s::dto::*;
use s3s::{S3Request, S3Response, S3Result};

use super::Strata;
use crate::store::records::PublicAccessBlock;

fn no_configuration() -> s3s::S3Error {
    super::errors::no_such_public_access_block_configuration()
}

pub async fn put(
    s: &Strata,
    req: S3Request<PutPublicAccessBlockInput>,
) -> S3Result<S3Response<PutPublicAccessBlockOutput>> {
    let input = req.input;
    let c = input.public_access_block_configuration;
    // S3 treats an omitted flag as false.
    let wanted = PublicAccessBlock {
        block_public_acls: c.block_public_acls.unwrap_or(false),
        ignore_public_acls: c.ignore_public_acls.unwrap_or(false),
        block_public_policy: c.block_public_policy.unwrap_or(false),
        restrict_public_buckets: c.restrict_public_buckets.unwrap_or(false),
    };
    s.update_bucket(&input.bucket, |b| {
        b.public_access_block = Some(wanted);
        Ok(())
    })
    .await?;
    Ok(S3Response::new(PutPublicAccessBlockOutput::default()))
}

pub async fn get(
    s: &Strata,
    req: S3Request<GetPublicAccessBlockInput>,
) -> S3Result<S3Response<GetPublicAccessBlockOutput>> {
    let bucket = s.bucket(&req.input.bucket)?;
    let Some(p) = bucket.public_access_block else {
        return Err(no_configuration());
    };
    Ok(S3Response::new(GetPublicAccessBlockOutput {
        public_access_block_configuration: Some(PublicAccessBlockConfiguration {
            block_public_acls: Some(p.block_public_acls),
            ignore_public_acls: Some(p.ignore_public_acls),
            block_public_policy: Some(p.block_public_policy),
            restrict_public_buckets: Some(p.restrict_public_buckets),
        }),
    }))
}

pub async fn delete(
    s: &Strata,
    req: S3Request<DeletePublicAccessBlockInput>,
) -> S3Result<S3Response<DeletePublicAccessBlockOutput>> {
    s.update_bucket(&req.input.bucket, |b| {
        b.public_access_block = None;
        Ok(())
    })
    .await?;
    Ok(S3Response::new(DeletePublicAccessBlockOutput::default()))
}
