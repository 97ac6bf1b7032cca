//! The one `authorize` decision every S3 request passes through (s3s `S3Access::check`, and
//! the second look a CopyObject takes at its source).
//!
//! Signatures first: SigV2 header signatures are refused unless enabled (s3s checks no clock
//! skew for them, so a captured request could be replayed forever); SigV2 presigned URLs are
//! accepted with an `Expires` at most seven days ahead, because that is what `aws s3 presign`
//! and boto3 produce for us-east-1 by default.
//!
//! Then, in S3's order of evaluation:
//! 1. the root key may do anything;
//! 2. an explicit `Deny` in the bucket policy refuses, whoever asks (bucket owner included);
//! 3. the bucket owner may do anything in its bucket (S3's object ownership: the bucket owner
//!    can always read and delete what is in it);
//! 4. an `Allow` in the bucket policy, or a grant in the bucket's or object's ACL, permits;
//! 5. everything else, anonymous requests included, is AccessDenied.
//!
//! Block Public Access is applied here too: with `IgnorePublicAcls` grants to AllUsers and
//! AuthenticatedUsers count for nothing, with `RestrictPublicBuckets` public policy statements
//! count for nothing. A bucket without its own setting gets the server-wide default (on).

use std::net::{IpAddr, SocketAddr};

use s3s::access::{S3Access, S3AccessContext};
use s3s::path::S3Path;
use s3s::{S3Request, S3Result};

use super::policy::{Decision, Policy, PolicyRequest};
use crate::model::acl::{permission_for_action, Acl};
use crate::store::records::{BucketRecord, ObjectRecord, PublicAccessBlock};
use crate::store::MetaStore;
use crate::util::errors;
use crate::util::query::uri_param as query_param;

pub struct Authorizer {
    pub root_access_key: String,
    pub meta: MetaStore,
    pub allow_sigv2: bool,
    /// Block Public Access for buckets that have no setting of their own.
    pub block_public_access_default: bool,
}

/// Longest lifetime of a presigned URL, as S3 allows for SigV4 (seven days).
pub const MAX_PRESIGNED_SECS: i64 = 7 * 24 * 3600;

/// What the network layer knows about a request's connection; `http/server.rs` puts it in the
/// request extensions so policy conditions (`aws:SourceIp`, `aws:SecureTransport`) see it.
#[derive(Clone, Copy, Debug)]
pub struct ClientInfo {
    pub addr: SocketAddr,
    pub secure: bool,
}

/// The facts about a request that access decisions depend on.
#[derive(Clone, Debug, Default)]
pub struct RequestFacts {
    /// `None`: anonymous.
    pub access_key: Option<String>,
    pub source_ip: Option<IpAddr>,
    pub secure: bool,
    pub referer: Option<String>,
    /// The `prefix` of a listing (`s3:prefix`).
    pub prefix: Option<String>,
}

impl RequestFacts {
    fn from_parts(
        access_key: Option<String>,
        uri: &http::Uri,
        headers: &http::HeaderMap,
        client: Option<&ClientInfo>,
    ) -> Self {
        Self {
            access_key,
            source_ip: client.map(|c| c.addr.ip().to_canonical()),
            secure: client.is_some_and(|c| c.secure),
            referer: headers
                .get(http::header::REFERER)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string),
            prefix: query_param(uri, "prefix"),
        }
    }

    pub fn of<T>(req: &S3Request<T>) -> Self {
        Self::from_parts(
            req.credentials.as_ref().map(|c| c.access_key.clone()),
            &req.uri,
            &req.headers,
            req.extensions.get::<ClientInfo>(),
        )
    }
}

/// What a request acts on, as far as access decisions care.
#[derive(Clone, Copy)]
pub struct Target<'a> {
    pub bucket_name: &'a str,
    pub bucket: &'a BucketRecord,
    /// `None` for bucket operations.
    pub key: Option<&'a str>,
    /// The version the request reaches, when its ACL matters (object reads and ACL calls).
    pub object: Option<&'a ObjectRecord>,
    /// The request names a version (`versionId`): `s3:GetObjectVersion` and friends.
    pub versioned: bool,
}

/// How a request was signed with AWS Signature Version 2, if it was.
#[derive(Debug, PartialEq, Eq)]
pub enum SigV2 {
    /// `Authorization: AWS key:signature` (no clock-skew check in s3s).
    Header,
    /// `?AWSAccessKeyId=…&Expires=…&Signature=…`, with its absolute expiry time.
    Presigned { expires: Option<i64> },
}

pub fn sigv2_kind(headers: &http::HeaderMap, uri: &http::Uri) -> Option<SigV2> {
    let header_v2 = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("AWS "));
    if header_v2 {
        return Some(SigV2::Header);
    }
    let query = uri.query()?;
    if !crate::util::query::has(query, "AWSAccessKeyId") {
        return None;
    }
    let expires = crate::util::query::get(query, "Expires").and_then(|v| v.parse().ok());
    Some(SigV2::Presigned { expires })
}

/// The IAM action an S3 operation needs (`versioned`: the request names a version).
pub fn action_for(op: &str, versioned: bool) -> String {
    let name = match op {
        "GetObject" | "HeadObject" if versioned => "GetObjectVersion",
        "GetObject" | "HeadObject" => "GetObject",
        "DeleteObject" if versioned => "DeleteObjectVersion",
        "DeleteObjects" => "DeleteObject",
        "GetObjectAcl" if versioned => "GetObjectVersionAcl",
        "PutObjectAcl" if versioned => "PutObjectVersionAcl",
        "GetObjectTagging" if versioned => "GetObjectVersionTagging",
        "PutObjectTagging" if versioned => "PutObjectVersionTagging",
        "DeleteObjectTagging" if versioned => "DeleteObjectVersionTagging",
        "PutObject"
        | "PostObject"
        | "CopyObject"
        | "CreateMultipartUpload"
        | "UploadPart"
        | "UploadPartCopy"
        | "CompleteMultipartUpload" => "PutObject",
        "ListObjects" | "ListObjectsV2" | "HeadBucket" => "ListBucket",
        "ListObjectVersions" => "ListBucketVersions",
        "ListMultipartUploads" => "ListBucketMultipartUploads",
        "ListParts" => "ListMultipartUploadParts",
        "GetBucketCors" => "GetBucketCORS",
        "PutBucketCors" | "DeleteBucketCors" => "PutBucketCORS",
        "GetPublicAccessBlock" => "GetBucketPublicAccessBlock",
        "PutPublicAccessBlock" | "DeletePublicAccessBlock" => "PutBucketPublicAccessBlock",
        "DeleteBucketTagging" => "PutBucketTagging",
        "GetBucketLifecycleConfiguration" => "GetLifecycleConfiguration",
        "PutBucketLifecycleConfiguration" | "DeleteBucketLifecycle" => "PutLifecycleConfiguration",
        other => other,
    };
    format!("s3:{name}")
}

/// Operations only the bucket owner (or root) may perform, whatever a policy or ACL says:
/// they change who else may do things, so delegating them would allow escalation.
fn owner_only(op: &str) -> bool {
    matches!(
        op,
        "PutBucketPolicy"
            | "DeleteBucketPolicy"
            | "PutPublicAccessBlock"
            | "DeletePublicAccessBlock"
            | "DeleteBucket"
            | "PutBucketVersioning"
    )
}

/// Object-level operations whose permission an object ACL can grant.
fn reads_object_acl(op: &str) -> bool {
    matches!(op, "GetObject" | "HeadObject" | "GetObjectAcl" | "PutObjectAcl")
}

fn denied() -> s3s::S3Error {
    errors::access_denied()
}

impl Authorizer {
    pub fn is_root(&self, access_key: &str) -> bool {
        access_key == self.root_access_key
    }

    /// A bucket's record for an access decision; a store failure is an InternalError.
    fn bucket_record(&self, name: &str) -> S3Result<Option<BucketRecord>> {
        self.meta.bucket(name).map_err(|e| {
            tracing::error!(error = %e, "bucket lookup failed during authorization");
            errors::internal_error()
        })
    }

    /// The Block Public Access settings in force for `bucket`.
    pub fn public_access_block(&self, bucket: &BucketRecord) -> PublicAccessBlock {
        bucket
            .public_access_block
            .unwrap_or(if self.block_public_access_default {
                PublicAccessBlock::ALL_ON
            } else {
                PublicAccessBlock::ALL_OFF
            })
    }

    /// Is `facts` allowed to perform `op` on `target`? The one decision; see the module doc
    /// for the order of the rules.
    pub fn authorize(&self, facts: &RequestFacts, op: &str, target: &Target<'_>) -> S3Result<()> {
        let Target {
            bucket_name,
            bucket,
            key,
            object,
            versioned,
        } = *target;
        let caller = facts.access_key.as_deref();
        if caller.is_some_and(|k| self.is_root(k)) {
            return Ok(());
        }
        let action = action_for(op, versioned);
        let resource = match key {
            Some(k) => format!("arn:aws:s3:::{bucket_name}/{k}"),
            None => format!("arn:aws:s3:::{bucket_name}"),
        };
        let pab = self.public_access_block(bucket);
        let policy = match &bucket.policy {
            Some(text) => match Policy::parse(text.as_bytes(), bucket_name) {
                Ok(p) => Some(p),
                Err(e) => {
                    // Stored policies were validated when put; a parse failure means the
                    // parser changed. Fail closed for everyone but the owner.
                    tracing::error!(bucket = bucket_name, error = %e, "stored bucket policy no longer parses");
                    None
                }
            },
            None => None,
        };
        let verdict = policy.as_ref().map(|p| {
            // aws:username is the caller's key name: one more read, only when a policy exists.
            let username = caller.and_then(|k| self.meta.key(k).ok().flatten()).map(|r| r.name);
            p.evaluate(
                &PolicyRequest {
                    principal: caller,
                    username: username.as_deref(),
                    action: &action,
                    resource: &resource,
                    source_ip: facts.source_ip,
                    secure_transport: facts.secure,
                    referer: facts.referer.as_deref(),
                    prefix: facts.prefix.as_deref(),
                },
                pab.restrict_public_buckets,
            )
        });
        if verdict == Some(Decision::Deny) {
            return Err(denied());
        }
        let is_owner = caller.is_some_and(|k| k == bucket.owner);
        if is_owner {
            return Ok(());
        }
        if owner_only(op) {
            return Err(denied());
        }
        if verdict == Some(Decision::Allow) {
            return Ok(());
        }
        let ignore_public = pab.ignore_public_acls;
        let via_object_acl = key.is_some() && reads_object_acl(op);
        let granted = match permission_for_action(&action, via_object_acl) {
            None => false,
            Some(perm) if via_object_acl => match object {
                Some(rec) => object_acl(rec).allows(caller, perm, ignore_public),
                None => false,
            },
            Some(perm) => bucket_acl(bucket).allows(caller, perm, ignore_public),
        };
        if granted {
            Ok(())
        } else {
            Err(denied())
        }
    }

    /// A CopyObject / UploadPartCopy source: the caller must be allowed to read it.
    pub fn authorize_copy_source(
        &self,
        facts: &RequestFacts,
        bucket: &str,
        key: &str,
        src: &ObjectRecord,
    ) -> S3Result<()> {
        let Some(rec) = self.bucket_record(bucket)? else {
            return Err(errors::no_such_bucket());
        };
        let target = Target {
            bucket_name: bucket,
            bucket: &rec,
            key: Some(key),
            object: Some(src),
            versioned: src.versioned,
        };
        self.authorize(facts, "GetObject", &target)
    }

    /// May the caller delete `key` from `bucket` (one entry of a DeleteObjects request)?
    pub fn authorize_delete(
        &self,
        facts: &RequestFacts,
        bucket_name: &str,
        bucket: &BucketRecord,
        key: &str,
        versioned: bool,
    ) -> S3Result<()> {
        let target = Target {
            bucket_name,
            bucket,
            key: Some(key),
            object: None,
            versioned,
        };
        self.authorize(facts, "DeleteObject", &target)
    }
}

impl Authorizer {
    /// An HTML form upload, once s3s has verified its policy signature and conditions: the
    /// caller must be allowed to put the form's key. s3s 0.14 reads the canned ACL only from an
    /// `x-amz-acl` field, while browsers' forms (and boto3's `generate_presigned_post`) use
    /// `acl`; the policy pins that field with an exact-match condition, so its value is taken
    /// from there.
    pub fn authorize_post_object(&self, req: &mut S3Request<s3s::dto::PostObjectInput>) -> S3Result<()> {
        if req.input.acl.is_none() {
            let pinned = req.input.policy.as_ref().and_then(|p| {
                p.conditions.iter().find_map(|c| match c {
                    s3s::post_policy::PostPolicyCondition::Eq { field, value } if field == "acl" => Some(value.clone()),
                    _ => None,
                })
            });
            req.input.acl = pinned.map(s3s::dto::ObjectCannedACL::from);
        }
        let facts = RequestFacts::of(req);
        let Some(bucket) = self.bucket_record(&req.input.bucket)? else {
            return Ok(());
        };
        let target = Target {
            bucket_name: &req.input.bucket,
            bucket: &bucket,
            key: Some(&req.input.key),
            object: None,
            versioned: false,
        };
        self.authorize(&facts, "PutObject", &target)
    }
}

/// An object's ACL; objects stored without one are private to their owner.
pub fn object_acl(rec: &ObjectRecord) -> Acl {
    rec.acl.clone().unwrap_or_else(|| Acl::private(&rec.owner))
}

/// A bucket's ACL; buckets stored without one are private to their owner.
pub fn bucket_acl(rec: &BucketRecord) -> Acl {
    rec.acl.clone().unwrap_or_else(|| Acl::private(&rec.owner))
}

#[async_trait::async_trait]
impl S3Access for Authorizer {
    async fn check(&self, cx: &mut S3AccessContext<'_>) -> S3Result<()> {
        match sigv2_kind(cx.headers(), cx.uri()) {
            Some(SigV2::Header) if !self.allow_sigv2 => {
                return Err(errors::access_denied_because(
                    "Signature Version 2 request signing is disabled on this server; use Signature Version 4",
                ));
            }
            Some(SigV2::Presigned { expires }) => {
                let now = time::OffsetDateTime::now_utc().unix_timestamp();
                if expires.is_none_or(|e| e - now > MAX_PRESIGNED_SECS) {
                    return Err(errors::access_denied_because(
                        "Presigned URLs may be valid for at most seven days",
                    ));
                }
            }
            _ => {}
        }
        let access_key = cx.credentials().map(|c| c.access_key.clone());
        let client = cx.extensions_mut().get::<ClientInfo>().copied();
        let op = cx.s3_op().name().to_string();
        let op = op.as_str();
        let facts = RequestFacts::from_parts(access_key.clone(), cx.uri(), cx.headers(), client.as_ref());
        if access_key.as_deref().is_some_and(|k| self.is_root(k)) {
            return Ok(());
        }
        let (bucket_name, key) = match cx.s3_path() {
            // ListBuckets: any signed caller (the handler lists only its own buckets).
            S3Path::Root => return if access_key.is_some() { Ok(()) } else { Err(denied()) },
            S3Path::Bucket { bucket } => (bucket.to_string(), None),
            S3Path::Object { bucket, key } => (bucket.to_string(), Some(key.to_string())),
        };
        if op == "CreateBucket" {
            // Any signed caller may create a bucket; the handler answers BucketAlreadyExists.
            return if access_key.is_some() { Ok(()) } else { Err(denied()) };
        }
        let Some(bucket) = self.bucket_record(&bucket_name)? else {
            // Let the handler answer NoSuchBucket.
            return Ok(());
        };
        if op == "DeleteObjects" {
            // Decided key by key in the handler, each refusal reported as that key's error.
            return Ok(());
        }
        if op == "PostObject" {
            // The key is in the form: decided in `authorize_post_object` once s3s has parsed it.
            return Ok(());
        }
        let version_id = query_param(cx.uri(), "versionId");
        let is_owner = access_key.as_deref().is_some_and(|k| k == bucket.owner);
        // The object's ACL matters only to callers who are not the bucket owner.
        let object = match (&key, is_owner, reads_object_acl(op)) {
            (Some(k), false, true) => {
                let found = match &version_id {
                    Some(v) => self.meta.object_version(&bucket_name, k, v),
                    None => self.meta.object(&bucket_name, k),
                };
                found.ok().flatten()
            }
            _ => None,
        };
        let target = Target {
            bucket_name: &bucket_name,
            bucket: &bucket,
            key: key.as_deref(),
            object: object.as_ref(),
            versioned: version_id.is_some(),
        };
        self.authorize(&facts, op, &target)
    }
}
