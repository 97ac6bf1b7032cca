//! Bucket administration through the admin API (root key only, like the rest of it):
//!
//! - `GET    /_strata/admin/buckets`                → `[{"name", "owner", "created_ms",
//!   "created", "versioning", "objects", "bytes", "usage": {…}}]`
//! - `POST   /_strata/admin/buckets?name=&owner=`   → the new bucket (owner: an access key
//!   id, default the root key); 400 InvalidBucketName, 409 BucketAlreadyExists
//! - `DELETE /_strata/admin/buckets/NAME[?force=true]` → `{"bucket", "versions",
//!   "delete_markers", "uploads", "bytes"}`; 409 BucketNotEmpty without `force`. With
//!   `force`, every version, delete marker and incomplete upload goes first (in batches of
//!   `limits.bucket_delete_batch`, each durable before its blobs enter the deferred unlink).
//! - `GET    /_strata/admin/buckets/NAME/usage`     → [`Usage`] of one bucket

use std::sync::Arc;

use http::StatusCode;
use s3s::{Body, S3Response, S3Result};
use serde::Serialize;

use crate::admin::{json, query_param};
use crate::derivative::Derivatives;
use crate::s3::errors::{internal, store_error};
use crate::store::records::{BucketRecord, Versioning};
use crate::store::usage::{self, Usage};
use crate::store::Store;
use crate::util::errors;

/// What the bucket routes need besides the metadata.
pub struct BucketAdmin {
    pub store: Store,
    pub derivatives: Arc<Derivatives>,
    pub region: String,
    pub root_access_key: String,
    /// Versions removed per transaction by a forced delete.
    pub delete_batch: usize,
}

#[derive(Serialize)]
pub struct BucketInfo {
    pub name: String,
    pub owner: String,
    pub created_ms: i64,
    /// RFC 3339.
    pub created: String,
    /// `Enabled`, `Suspended`, or `Unversioned` (never configured).
    pub versioning: &'static str,
    pub objects: u64,
    pub bytes: u64,
    pub usage: Usage,
}

/// What a delete removed.
#[derive(Serialize, Default)]
pub struct Deleted {
    pub bucket: String,
    /// Versions removed, delete markers included.
    pub versions: u64,
    pub delete_markers: u64,
    /// Incomplete multipart uploads aborted.
    pub uploads: u64,
    /// Bytes of object versions and uploaded parts freed.
    pub bytes: u64,
}

fn info(name: String, b: &BucketRecord, usage: Usage) -> BucketInfo {
    let created = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(b.created_ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_default();
    BucketInfo {
        name,
        owner: b.owner.clone(),
        created_ms: b.created_ms,
        created,
        versioning: match b.versioning {
            None => "Unversioned",
            Some(Versioning::Enabled) => "Enabled",
            Some(Versioning::Suspended) => "Suspended",
        },
        objects: usage.objects,
        bytes: usage.bytes,
        usage,
    }
}

fn no_such_bucket() -> s3s::S3Error {
    errors::no_such_bucket()
}

/// Runs a blocking metadata scan off the async threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, crate::store::StoreError> + Send + 'static,
) -> S3Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| internal("admin scan", e))?
        .map_err(store_error)
}

impl BucketAdmin {
    /// `GET /_strata/admin/buckets`
    pub async fn list(&self) -> S3Result<S3Response<Body>> {
        let meta = self.store.meta.clone();
        let (buckets, mut usage) = blocking(move || Ok((meta.buckets()?, usage::all_usage(&meta)?))).await?;
        let out: Vec<BucketInfo> = buckets
            .into_iter()
            .map(|(name, b)| {
                let u = usage.remove(&name).unwrap_or_default();
                info(name, &b, u)
            })
            .collect();
        json(StatusCode::OK, &out)
    }

    /// `POST /_strata/admin/buckets?name=&owner=`
    pub async fn create(&self, uri: &http::Uri) -> S3Result<S3Response<Body>> {
        let name = query_param(uri, "name").unwrap_or_default();
        if name == crate::s3::RESERVED_BUCKET || !s3s::path::check_bucket_name(&name) {
            return Err(errors::invalid_bucket_name());
        }
        let owner = query_param(uri, "owner")
            .filter(|o| !o.is_empty())
            .unwrap_or_else(|| self.root_access_key.clone());
        if owner != self.root_access_key && self.store.meta.key(&owner).map_err(store_error)?.is_none() {
            return Err(errors::invalid_argument(format!("No such access key: {owner}")));
        }
        let rec = BucketRecord::new(&owner, crate::util::now_ms(), &self.region);
        if self
            .store
            .meta
            .create_bucket(&name, &rec)
            .map_err(store_error)?
            .is_some()
        {
            return Err(errors::bucket_already_exists());
        }
        self.store.meta.durable().await.map_err(store_error)?;
        tracing::info!(bucket = %name, owner = %owner, "bucket created through the admin API");
        json(StatusCode::OK, &info(name, &rec, Usage::default()))
    }

    /// `GET /_strata/admin/buckets/NAME/usage`
    pub async fn usage(&self, name: &str) -> S3Result<S3Response<Body>> {
        if self.store.meta.bucket(name).map_err(store_error)?.is_none() {
            return Err(no_such_bucket());
        }
        let (meta, bucket) = (self.store.meta.clone(), name.to_string());
        let u = blocking(move || usage::bucket_usage(&meta, &bucket)).await?;
        #[derive(Serialize)]
        struct Named {
            bucket: String,
            #[serde(flatten)]
            usage: Usage,
        }
        json(
            StatusCode::OK,
            &Named {
                bucket: name.to_string(),
                usage: u,
            },
        )
    }

    /// `DELETE /_strata/admin/buckets/NAME[?force=true]`
    pub async fn delete(&self, name: &str, uri: &http::Uri) -> S3Result<S3Response<Body>> {
        let force = query_param(uri, "force").is_some_and(|v| v == "true" || v == "1");
        let meta = &self.store.meta;
        if meta.bucket(name).map_err(store_error)?.is_none() {
            return Err(no_such_bucket());
        }
        if !force && !meta.bucket_is_empty(name).map_err(store_error)? {
            return Err(errors::bucket_not_empty());
        }
        let mut done = Deleted {
            bucket: name.to_string(),
            ..Default::default()
        };
        // Until a pass finds nothing: a write racing with the delete may add a version.
        loop {
            let removed = self.remove_batch(name, &mut done).await?;
            if removed == 0 && meta.bucket_is_empty(name).map_err(store_error)? {
                break;
            }
        }
        let uploads = meta.uploads_in(name).map_err(store_error)?;
        for (id, _) in uploads {
            self.abort_upload(&id, &mut done).await?;
        }
        meta.delete_bucket(name).map_err(store_error)?;
        meta.durable().await.map_err(store_error)?;
        tracing::info!(
            bucket = %name,
            versions = done.versions,
            uploads = done.uploads,
            bytes = done.bytes,
            "bucket deleted through the admin API"
        );
        json(StatusCode::OK, &done)
    }

    /// One durable batch of removed versions, their bytes handed to the deferred unlink.
    async fn remove_batch(&self, bucket: &str, done: &mut Deleted) -> S3Result<usize> {
        let (meta, b, batch) = (self.store.meta.clone(), bucket.to_string(), self.delete_batch);
        let removed = blocking(move || meta.remove_versions(&b, batch)).await?;
        if removed.is_empty() {
            return Ok(0);
        }
        self.store.meta.durable().await.map_err(store_error)?;
        for (key, rec) in &removed {
            done.versions += 1;
            if rec.delete_marker {
                done.delete_markers += 1;
            } else {
                done.bytes += rec.size;
            }
            self.derivatives.retire_version(&self.store, bucket, key, rec);
        }
        Ok(removed.len())
    }

    async fn abort_upload(&self, upload_id: &str, done: &mut Deleted) -> S3Result<()> {
        // None: completed or aborted meanwhile.
        if let Some(bytes) = self.store.remove_upload(upload_id).await.map_err(store_error)? {
            done.uploads += 1;
            done.bytes += bytes;
        }
        Ok(())
    }
}
