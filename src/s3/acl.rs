//! Access control lists on buckets and objects: canned ACLs and `x-amz-grant-*` headers on
//! writes, Put/GetBucketAcl and Put/GetObjectAcl (headers or the XML body form), and Block
//! Public Access's refusal of public ACLs. The ACL model itself is `auth::acl`; the decision
//! that uses it is `auth::access`.

use s3s::dto::*;
use s3s::{S3Request, S3Response, S3Result};

use super::errors;
use super::errors::store_error;
use super::{caller, Strata};
use crate::auth::access::{bucket_acl, object_acl};
use crate::model::acl::Acl;
use crate::store::records::BucketRecord;

fn public_acl_blocked() -> s3s::S3Error {
    errors::access_denied_because(
        "Access Denied: public ACLs are blocked by this bucket's Block Public Access settings",
    )
}

/// The ACL a write asks for with a canned name or grant headers (`None`: the default,
/// private), refused when it is public and Block Public Access blocks public ACLs.
fn acl_from_request(
    s: &Strata,
    bucket: &BucketRecord,
    owner: &str,
    canned: Option<&str>,
    headers: &http::HeaderMap,
) -> S3Result<Option<Acl>> {
    let granted = Acl::from_grant_headers(headers, owner)?;
    let acl = match (canned, granted) {
        (Some(_), Some(_)) => {
            return Err(errors::invalid_request(
                "Specifying both Canned ACLs and Header Grants is not allowed",
            ))
        }
        (Some(name), None) => Some(Acl::canned(name, owner, &bucket.owner)?),
        (None, granted) => granted,
    };
    if let Some(acl) = &acl {
        acl.check_users_exist(|id| user_exists(s, id))?;
        if acl.is_public() && s.authz.public_access_block(bucket).block_public_acls {
            return Err(public_acl_blocked());
        }
    }
    Ok(acl)
}

/// Is `id` a principal of this server (grants may only name those)?
fn user_exists(s: &Strata, id: &str) -> bool {
    id == s.authz.root_access_key || matches!(s.store.meta.key(id), Ok(Some(_)))
}

/// The ACL of a new object from PutObject / CopyObject / CreateMultipartUpload.
pub fn object_acl_from_request(
    s: &Strata,
    bucket: &BucketRecord,
    owner: &str,
    canned: Option<&ObjectCannedACL>,
    headers: &http::HeaderMap,
) -> S3Result<Option<Acl>> {
    acl_from_request(s, bucket, owner, canned.map(|c| c.as_str()), headers)
}

/// The ACL of a new bucket from CreateBucket. The bucket has no Block Public Access setting
/// yet, so the server-wide default decides whether a public ACL is refused.
pub fn bucket_acl_from_request(
    s: &Strata,
    new_bucket: &BucketRecord,
    canned: Option<&BucketCannedACL>,
    headers: &http::HeaderMap,
) -> S3Result<Option<Acl>> {
    acl_from_request(s, new_bucket, &new_bucket.owner, canned.map(|c| c.as_str()), headers)
}

/// An ACL from a PutBucketAcl / PutObjectAcl request: canned, grant headers or XML body.
fn acl_from_put(
    s: &Strata,
    bucket: &BucketRecord,
    owner: &str,
    canned: Option<&str>,
    body: Option<&AccessControlPolicy>,
    headers: &http::HeaderMap,
) -> S3Result<Acl> {
    let from_headers = acl_from_request(s, bucket, owner, canned, headers)?;
    let acl = match (from_headers, body) {
        (Some(_), Some(_)) => {
            return Err(errors::unexpected_content(
                "This request does not support content when ACL headers are given",
            ))
        }
        (Some(acl), None) => acl,
        (None, Some(policy)) => Acl::from_dto(policy, owner, |id| user_exists(s, id))?,
        (None, None) => {
            return Err(errors::missing_security_header(
                "Your request was missing a required header: an ACL header or an AccessControlPolicy body",
            ))
        }
    };
    if acl.is_public() && s.authz.public_access_block(bucket).block_public_acls {
        return Err(public_acl_blocked());
    }
    Ok(acl)
}

/// Display names are the key names given at `strata key create`.
fn display_name(s: &Strata, id: &str) -> Option<String> {
    if id == s.authz.root_access_key {
        return Some("root".to_string());
    }
    s.store.meta.key(id).ok().flatten().map(|k| k.name)
}

pub async fn put_bucket(s: &Strata, req: S3Request<PutBucketAclInput>) -> S3Result<S3Response<PutBucketAclOutput>> {
    let input = req.input;
    let bucket = s.bucket(&input.bucket)?;
    let acl = acl_from_put(
        s,
        &bucket,
        &bucket.owner,
        input.acl.as_ref().map(|a| a.as_str()),
        input.access_control_policy.as_ref(),
        &req.headers,
    )?;
    s.update_bucket(&input.bucket, |b| {
        b.acl = Some(acl.clone());
        Ok(())
    })
    .await?;
    Ok(S3Response::new(PutBucketAclOutput::default()))
}

pub async fn get_bucket(s: &Strata, req: S3Request<GetBucketAclInput>) -> S3Result<S3Response<GetBucketAclOutput>> {
    let bucket = s.bucket(&req.input.bucket)?;
    let (owner, grants) = bucket_acl(&bucket).to_dto(|id| display_name(s, id));
    Ok(S3Response::new(GetBucketAclOutput {
        owner: Some(owner),
        grants: Some(grants),
    }))
}

pub async fn put_object(s: &Strata, req: S3Request<PutObjectAclInput>) -> S3Result<S3Response<PutObjectAclOutput>> {
    let _ = caller(&req)?;
    let input = req.input;
    let bucket = s.bucket(&input.bucket)?;
    let rec = s.object_at(&input.bucket, &input.key, input.version_id.as_deref())?;
    let acl = acl_from_put(
        s,
        &bucket,
        &rec.owner,
        input.acl.as_ref().map(|a| a.as_str()),
        input.access_control_policy.as_ref(),
        &req.headers,
    )?;
    let updated = s
        .store
        .meta
        .update_version(&input.bucket, &input.key, input.version_id.as_deref(), |r| {
            r.acl = Some(acl.clone())
        })
        .map_err(store_error)?;
    let Some(updated) = updated else {
        return Err(errors::no_such_key());
    };
    updated.durable().await.map_err(store_error)?;
    Ok(S3Response::new(PutObjectAclOutput::default()))
}

pub async fn get_object(s: &Strata, req: S3Request<GetObjectAclInput>) -> S3Result<S3Response<GetObjectAclOutput>> {
    let input = req.input;
    let rec = s.object_at(&input.bucket, &input.key, input.version_id.as_deref())?;
    let (owner, grants) = object_acl(&rec).to_dto(|id| display_name(s, id));
    Ok(S3Response::new(GetObjectAclOutput {
        owner: Some(owner),
        grants: Some(grants),
        ..Default::default()
    }))
}
