//! The admin API under `/_strata/admin/` (key management), served through s3s's custom route
//! hook so that requests are SigV4-verified exactly like S3 requests; only the root key may
//! use it. `_strata` is not a valid bucket name, so these paths never collide with S3.
//!
//! - `POST   /_strata/admin/keys?name=NAME` → `{"access_key": …, "secret_key": …, "name": …}`
//! - `GET    /_strata/admin/keys`           → `[{"access_key": …, "name": …, "created_ms": …}]`
//! - `DELETE /_strata/admin/keys/ID`        → 204, or 404 when no such key
//! - `/_strata/admin/buckets…`              → bucket administration ([`buckets`])
//! - `POST   /_strata/admin/backup?to=DIR`  → NDJSON progress lines ([`backup`])
//! - `POST   /_strata/admin/lifecycle/run`  → one lifecycle run ([`lifecycle`])

pub mod backup;
pub mod buckets;
pub mod lifecycle;

use http::{Method, StatusCode};
use s3s::route::S3Route;
use s3s::validation::NameValidation;
use s3s::{Body, S3Request, S3Response, S3Result};
use serde::Serialize;

use crate::store::MetaStore;
use crate::util::errors;

pub const ADMIN_PREFIX: &str = "/_strata/admin/";

/// AWS bucket-name rules, plus our reserved `_strata` so admin paths reach the route.
pub struct StrataNames;

impl NameValidation for StrataNames {
    fn validate_bucket_name(&self, name: &str) -> bool {
        name == crate::s3::RESERVED_BUCKET || s3s::path::check_bucket_name(name)
    }
}

pub struct AdminRoute {
    pub meta: MetaStore,
    /// For backups (metadata snapshot + blob copies).
    pub store: crate::store::Store,
    pub root_access_key: String,
    pub buckets: crate::admin::buckets::BucketAdmin,
    pub lifecycle: std::sync::Arc<crate::lifecycle::Lifecycle>,
}

#[derive(Serialize)]
pub struct KeyInfo {
    pub access_key: String,
    pub name: String,
    pub created_ms: i64,
}

#[derive(Serialize)]
pub struct NewKey {
    pub access_key: String,
    pub secret_key: String,
    pub name: String,
}

pub(crate) fn json<T: Serialize>(status: StatusCode, value: &T) -> S3Result<S3Response<Body>> {
    let bytes = serde_json::to_vec(value).map_err(|e| crate::s3::errors::internal("admin json", e))?;
    let mut resp = S3Response::with_status(Body::from(bytes), status);
    resp.headers.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    Ok(resp)
}

pub(crate) use crate::util::query::uri_param as query_param;

#[async_trait::async_trait]
impl S3Route for AdminRoute {
    fn is_match(
        &self,
        _method: &Method,
        uri: &http::Uri,
        _headers: &http::HeaderMap,
        _ext: &mut http::Extensions,
    ) -> bool {
        uri.path().starts_with(ADMIN_PREFIX)
    }

    async fn check_access(&self, req: &mut S3Request<Body>) -> S3Result<()> {
        match &req.credentials {
            Some(c) if c.access_key == self.root_access_key => Ok(()),
            _ => Err(errors::access_denied_because("The admin API is for the root key only")),
        }
    }

    async fn call(&self, req: S3Request<Body>) -> S3Result<S3Response<Body>> {
        let path = req.uri.path().trim_start_matches(ADMIN_PREFIX).to_string();
        let store_err = crate::s3::errors::store_error;
        match (req.method.clone(), path.as_str()) {
            (Method::POST, "keys") => {
                let name = query_param(&req.uri, "name").filter(|n| !n.is_empty() && n.len() <= 128);
                let Some(name) = name else {
                    return Err(errors::invalid_argument("name must be 1 to 128 characters"));
                };
                let (access_key, secret_key) = crate::auth::keys::create_key(&self.meta, &name)
                    .map_err(|e| crate::s3::errors::internal("create key", e))?;
                self.meta.durable().await.map_err(store_err)?;
                tracing::info!(access_key = %access_key, name = %name, "access key created");
                json(
                    StatusCode::OK,
                    &NewKey {
                        access_key,
                        secret_key,
                        name,
                    },
                )
            }
            (Method::GET, "keys") => {
                let keys: Vec<KeyInfo> = self
                    .meta
                    .keys()
                    .map_err(store_err)?
                    .into_iter()
                    .map(|(access_key, k)| KeyInfo {
                        access_key,
                        name: k.name,
                        created_ms: k.created_ms,
                    })
                    .collect();
                json(StatusCode::OK, &keys)
            }
            (Method::DELETE, p) if p.starts_with("keys/") => {
                let id = &p["keys/".len()..];
                if !self.meta.delete_key(id).map_err(store_err)? {
                    return Err(errors::no_such_access_key());
                }
                self.meta.durable().await.map_err(store_err)?;
                tracing::info!(access_key = %id, "access key deleted");
                Ok(S3Response::with_status(Body::empty(), StatusCode::NO_CONTENT))
            }
            (Method::GET, "buckets") => self.buckets.list().await,
            (Method::POST, "buckets") => self.buckets.create(&req.uri).await,
            (Method::GET, p) if p.starts_with("buckets/") && p.ends_with("/usage") => {
                let name = p.strip_prefix("buckets/").and_then(|r| r.strip_suffix("/usage"));
                self.buckets.usage(name.unwrap_or_default()).await
            }
            (Method::DELETE, p) if p.starts_with("buckets/") => {
                self.buckets.delete(&p["buckets/".len()..], &req.uri).await
            }
            (Method::POST, "backup") => {
                let to = query_param(&req.uri, "to").unwrap_or_default();
                crate::admin::backup::start(&self.store, &to)
            }
            (Method::POST, "lifecycle/run") => crate::admin::lifecycle::run(&self.lifecycle, &req.uri).await,
            _ => Err(errors::method_not_allowed_because("Unknown admin operation")),
        }
    }
}
