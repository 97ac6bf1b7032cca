//! Bucket lifecycle configuration: Put/Get/DeleteBucketLifecycleConfiguration. The rules, their
//! validation and evaluation live in `crate::lifecycle`; the worker applies them.

use s3s::dto::*;
use s3s::{S3Request, S3Response, S3Result};

use super::errors;
use super::Strata;
use crate::model::lifecycle as rules;

pub async fn put(
    s: &Strata,
    req: S3Request<PutBucketLifecycleConfigurationInput>,
) -> S3Result<S3Response<PutBucketLifecycleConfigurationOutput>> {
    let input = req.input;
    let Some(cfg) = input.lifecycle_configuration.as_ref() else {
        return Err(errors::malformed_xml_because("The lifecycle configuration is missing"));
    };
    let config = rules::from_dto(cfg)?;
    s.update_bucket(&input.bucket, |b| {
        b.lifecycle = Some(config.clone());
        Ok(())
    })
    .await?;
    Ok(S3Response::new(PutBucketLifecycleConfigurationOutput::default()))
}

pub async fn get(
    s: &Strata,
    req: S3Request<GetBucketLifecycleConfigurationInput>,
) -> S3Result<S3Response<GetBucketLifecycleConfigurationOutput>> {
    let bucket = s.bucket(&req.input.bucket)?;
    match bucket.lifecycle {
        Some(cfg) => Ok(S3Response::new(GetBucketLifecycleConfigurationOutput {
            rules: Some(rules::to_dto(&cfg)),
            ..Default::default()
        })),
        None => Err(errors::no_such_lifecycle_configuration()),
    }
}

pub async fn delete(
    s: &Strata,
    req: S3Request<DeleteBucketLifecycleInput>,
) -> S3Result<S3Response<DeleteBucketLifecycleOutput>> {
    s.update_bucket(&req.input.bucket, |b| {
        b.lifecycle = None;
        Ok(())
    })
    .await?;
    Ok(S3Response::new(DeleteBucketLifecycleOutput::default()))
}
