//! Bucket CORS configuration: Put/Get/DeleteBucketCors. The rules and their matching live in
//! `crate::model::cors`; `http/server.rs` answers preflights and decorates responses with them.

use s3s::dto::*;
use s3s::{S3Request, S3Response, S3Result};

use super::errors;
use super::Strata;
use crate::model::cors::{rules_from_dto, rules_to_dto};

pub async fn put(s: &Strata, req: S3Request<PutBucketCorsInput>) -> S3Result<S3Response<PutBucketCorsOutput>> {
    let input = req.input;
    let rules = rules_from_dto(&input.cors_configuration)?;
    s.update_bucket(&input.bucket, |b| {
        b.cors = Some(rules.clone());
        Ok(())
    })
    .await?;
    Ok(S3Response::new(PutBucketCorsOutput::default()))
}

pub async fn get(s: &Strata, req: S3Request<GetBucketCorsInput>) -> S3Result<S3Response<GetBucketCorsOutput>> {
    let bucket = s.bucket(&req.input.bucket)?;
    match bucket.cors {
        Some(rules) => Ok(S3Response::new(GetBucketCorsOutput {
            cors_rules: Some(rules_to_dto(&rules)),
        })),
        None => Err(errors::no_such_cors_configuration()),
    }
}

pub async fn delete(s: &Strata, req: S3Request<DeleteBucketCorsInput>) -> S3Result<S3Response<DeleteBucketCorsOutput>> {
    s.update_bucket(&req.input.bucket, |b| {
        b.cors = None;
        Ok(())
    })
    .await?;
    Ok(S3Response::new(DeleteBucketCorsOutput::default()))
}
