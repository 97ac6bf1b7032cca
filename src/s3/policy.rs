//! Bucket policies: Put/Get/DeleteBucketPolicy and GetBucketPolicyStatus. A policy is
//! validated (`auth::policy`) before it is stored, and stored as the owner sent it.

use s3s::dto::*;
use s3s::{S3Request, S3Response, S3Result};

use super::errors;
use super::Strata;
use crate::auth::policy::Policy;

pub async fn put(s: &Strata, req: S3Request<PutBucketPolicyInput>) -> S3Result<S3Response<PutBucketPolicyOutput>> {
    let input = req.input;
    let bucket = s.bucket(&input.bucket)?;
    let policy = Policy::parse(input.policy.as_bytes(), &input.bucket).map_err(errors::malformed_policy)?;
    if policy.is_public() && s.authz.public_access_block(&bucket).block_public_policy {
        return Err(errors::access_denied_because(
            "Access Denied: public policies are blocked by this bucket's Block Public Access settings",
        ));
    }
    let text = input.policy;
    s.update_bucket(&input.bucket, |b| {
        b.policy = Some(text.clone());
        Ok(())
    })
    .await?;
    Ok(S3Response::new(PutBucketPolicyOutput::default()))
}

pub async fn get(s: &Strata, req: S3Request<GetBucketPolicyInput>) -> S3Result<S3Response<GetBucketPolicyOutput>> {
    let bucket = s.bucket(&req.input.bucket)?;
    match bucket.policy {
        Some(policy) => Ok(S3Response::new(GetBucketPolicyOutput { policy: Some(policy) })),
        None => Err(errors::no_such_bucket_policy()),
    }
}

pub async fn delete(
    s: &Strata,
    req: S3Request<DeleteBucketPolicyInput>,
) -> S3Result<S3Response<DeleteBucketPolicyOutput>> {
    s.update_bucket(&req.input.bucket, |b| {
        b.policy = None;
        Ok(())
    })
    .await?;
    Ok(S3Response::new(DeleteBucketPolicyOutput::default()))
}

pub async fn status(
    s: &Strata,
    req: S3Request<GetBucketPolicyStatusInput>,
) -> S3Result<S3Response<GetBucketPolicyStatusOutput>> {
    let bucket = s.bucket(&req.input.bucket)?;
    let Some(text) = bucket.policy else {
        return Err(errors::no_such_bucket_policy());
    };
    let public = Policy::parse(text.as_bytes(), &req.input.bucket).is_ok_and(|p| p.is_public());
    Ok(S3Response::new(GetBucketPolicyStatusOutput {
        policy_status: Some(PolicyStatus {
            is_public: Some(public),
        }),
    }))
}
