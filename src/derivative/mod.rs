//! Derivatives of stored images: the disk cache ([`cache`]), the bounded CPU pool ([`pool`]),
//! and [`Derivatives::fetch`], which serves a derivative from cache or makes it once no matter
//! how many identical requests arrive together (single flight).

pub mod cache;
pub mod hot;
pub mod pool;

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use bytes::Bytes;

use crate::store::crypto::Key256;
use crate::store::records::ObjectRecord;
use crate::store::Store;
use tokio::sync::OnceCell;

use crate::metrics::TransformResult;
use crate::transform::{self, Spec, TransformError};
pub use cache::{derivative_id, source_id, Derivative, DerivativeCache};
use pool::{PoolError, TransformPool};

/// Why a derivative could not be produced. Cloneable so every waiter of a single flight
/// gets the same answer.
#[derive(Debug, Clone)]
pub enum DerivativeError {
    Transform(TransformError),
    /// The CPU pool's queue is full.
    Busy,
    /// Reading the source failed (already mapped to an S3 error message).
    Source(String),
    /// The source's stored bytes failed their check (already reported by `store::bitrot`).
    SourceCorrupt,
    Internal(String),
}

type Flight = Arc<OnceCell<Result<Derivative, DerivativeError>>>;

pub struct Derivatives {
    pub cache: Arc<DerivativeCache>,
    pub hot: hot::HotCache,
    pool: TransformPool,
    limits: transform::Limits,
    inflight: Mutex<HashMap<String, Flight>>,
}

impl Derivatives {
    pub fn new(
        cache: Arc<DerivativeCache>,
        memory_bytes: usize,
        workers: usize,
        queue: usize,
        limits: transform::Limits,
    ) -> Self {
        Self {
            cache,
            hot: hot::HotCache::new(memory_bytes),
            pool: TransformPool::new(workers, queue),
            limits,
            inflight: Mutex::new(HashMap::new()),
        }
    }

    pub fn limits(&self) -> &transform::Limits {
        &self.limits
    }

    /// A derivative from the disk cache; with `seal`, its stored bytes are encrypted under a
    /// key derived from the source's data key and are opened here (failure = a miss).
    async fn cached(&self, src: &str, der: &str, seal: Option<&Key256>) -> Option<Derivative> {
        let cache = self.cache.clone();
        let (s, d) = (src.to_string(), der.to_string());
        let found = tokio::task::spawn_blocking(move || cache.get(&s, &d))
            .await
            .ok()
            .flatten()?;
        match seal {
            None => Some(found),
            Some(key) => {
                let plain = derivative_key(key, der)
                    .open_with_random_nonce(&found.bytes, der.as_bytes())
                    .ok()?;
                Some(Derivative {
                    bytes: Bytes::from(plain),
                    ..found
                })
            }
        }
    }

    /// Returns the derivative and whether it came from the cache. `load_source` reads the
    /// original's bytes; it runs only on a miss, once per concurrent group of identical requests.
    pub async fn fetch<F, Fut>(
        &self,
        src: &str,
        der: &str,
        spec: &Spec,
        seal: Option<&Key256>,
        load_source: F,
    ) -> Result<(Derivative, bool), DerivativeError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Bytes, DerivativeError>>,
    {
        if let Some(d) = self.hot.get(der) {
            crate::metrics::global().cache_lookup(true);
            return Ok((d, true));
        }
        if let Some(d) = self.cached(src, der, seal).await {
            self.hot.put(src, &d);
            crate::metrics::global().cache_lookup(true);
            return Ok((d, true));
        }
        let flight: Flight = {
            let mut map = self.inflight.lock().unwrap_or_else(|p| p.into_inner());
            map.entry(der.to_string()).or_default().clone()
        };
        let mut made_here = false;
        let result = flight
            .get_or_init(|| async {
                made_here = true;
                self.make(src, der, spec, seal, load_source).await
            })
            .await
            .clone();
        {
            let mut map = self.inflight.lock().unwrap_or_else(|p| p.into_inner());
            if map.get(der).is_some_and(|f| Arc::ptr_eq(f, &flight)) {
                map.remove(der);
            }
        }
        // Waiters of someone else's flight got it from "cache" in effect; report a miss only
        // for the request that did the work.
        crate::metrics::global().cache_lookup(!made_here);
        result.map(|d| (d, !made_here))
    }

    async fn make<F, Fut>(
        &self,
        src: &str,
        der: &str,
        spec: &Spec,
        seal: Option<&Key256>,
        load_source: F,
    ) -> Result<Derivative, DerivativeError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Bytes, DerivativeError>>,
    {
        // Another flight may have finished between our cache check and now.
        if let Some(d) = self.cached(src, der, seal).await {
            return Ok(d);
        }
        let source = load_source().await?;
        let spec2 = spec.clone();
        let limits = self.limits.clone();
        let ran = self
            .pool
            .run(move || {
                // Timed on the worker: queue wait is not pipeline time.
                let started = std::time::Instant::now();
                (transform::run(&source, &spec2, &limits), started.elapsed())
            })
            .await;
        let metrics = crate::metrics::global();
        let out = match ran {
            Ok((Ok(out), took)) => {
                metrics.transform(TransformResult::Ok, Some(took));
                out
            }
            Ok((Err(e), took)) => {
                metrics.transform(TransformResult::Error, Some(took));
                return Err(DerivativeError::Transform(e));
            }
            Err(PoolError::Busy) => {
                metrics.transform(TransformResult::RejectedBusy, None);
                return Err(DerivativeError::Busy);
            }
            Err(PoolError::Failed(m)) => {
                metrics.transform(TransformResult::Error, None);
                return Err(DerivativeError::Internal(m));
            }
        };
        let content_type = out.format.content_type().to_string();
        let cache = self.cache.clone();
        // Derivatives of encrypted originals are stored encrypted too.
        let stored_bytes = match seal {
            None => Some(out.bytes.clone()),
            Some(key) => derivative_key(key, der)
                .seal_with_random_nonce(&out.bytes, der.as_bytes())
                .ok()
                .map(Bytes::from),
        };
        let Some(stored_bytes) = stored_bytes else {
            return Err(DerivativeError::Internal("could not encrypt the derivative".into()));
        };
        let (s, d, ct, bytes) = (src.to_string(), der.to_string(), content_type.clone(), stored_bytes);
        let stored = tokio::task::spawn_blocking(move || cache.put(&s, &d, &ct, &bytes)).await;
        if let Ok(Err(e)) | Err(e) = stored.map_err(std::io::Error::other) {
            tracing::warn!(error = %e, "could not store derivative in the cache");
        }
        let made = Derivative {
            content_type,
            bytes: out.bytes,
            id: der.to_string(),
        };
        self.hot.put(src, &made);
        Ok(made)
    }

    /// Forgets every derivative of one source version, in memory and on disk.
    ///
    /// (Derivative keys: see [`derivative_key`].)
    pub fn purge_source(self: &Arc<Self>, src: String) {
        self.hot.purge_source(&src);
        let cache = self.cache.clone();
        tokio::task::spawn_blocking(move || cache.purge_source(&src));
    }

    /// Frees what a deleted or replaced version held: its blobs (queued for the deferred
    /// unlink) and its derivatives. Called once its removal is durable, by DeleteObject,
    /// overwrites, the lifecycle worker and forced bucket deletes alike.
    pub fn retire_version(self: &Arc<Self>, store: &Store, bucket: &str, key: &str, old: &ObjectRecord) {
        store.blobs.remove(old.blobs().to_vec());
        self.purge_source(source_id(bucket, key, &old.version_id));
    }
}

/// The key a derivative of an encrypted original is stored under: derived from the
/// original's data key and the derivative's id, so it is as secret as the original.
fn derivative_key(data_key: &Key256, derivative: &str) -> Key256 {
    let mut label = b"strata-derivative:".to_vec();
    label.extend_from_slice(derivative.as_bytes());
    data_key.derive(&label)
}
