//! `GET /_strata/metrics`: who may scrape (`[metrics] auth`: loopback peers, a bearer token,
//! or anyone), the per-bucket usage scan behind the bucket gauges (on a blocking thread, at
//! most once per `metrics.usage_refresh_secs`, however many scrapes arrive), and the
//! Prometheus text response.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use s3s::Body;

use crate::config::{MetricsAuth, MetricsConfig};
use crate::store::MetaStore;

pub const PATH: &str = "/_strata/metrics";

pub struct Endpoint {
    cfg: MetricsConfig,
    meta: MetaStore,
    /// When the last usage scan finished; held while scanning so that concurrent scrapes
    /// wait for one scan instead of starting their own.
    last_scan: tokio::sync::Mutex<Option<Instant>>,
}

fn text(status: http::StatusCode, body: &'static str) -> http::Response<Body> {
    let mut resp = http::Response::new(Body::from(body.to_string()));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("text/plain"));
    resp
}

/// Equal strings, compared without an early exit so the time taken does not tell how much
/// of a guessed token was right (the length may leak; tokens are not secret in length).
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

impl Endpoint {
    pub fn new(cfg: MetricsConfig, meta: MetaStore) -> Self {
        Self {
            cfg,
            meta,
            last_scan: tokio::sync::Mutex::new(None),
        }
    }
}

/// The refusal to send when a request may not read the metrics (`None`: it may).
fn refusal(cfg: &MetricsConfig, peer: SocketAddr, headers: &http::HeaderMap) -> Option<http::Response<Body>> {
    match cfg.auth {
        MetricsAuth::Public => None,
        MetricsAuth::Loopback => {
            if peer.ip().to_canonical().is_loopback() {
                None
            } else {
                Some(text(
                    http::StatusCode::FORBIDDEN,
                    "metrics are served to loopback clients only (see [metrics] auth)\n",
                ))
            }
        }
        MetricsAuth::Token => {
            let expected = cfg.bearer_token.as_deref().unwrap_or_default();
            let given = headers
                .get(http::header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
                .map(str::trim);
            match given {
                Some(t) if !expected.is_empty() && constant_time_eq(t.as_bytes(), expected.as_bytes()) => None,
                _ => {
                    let mut resp = text(http::StatusCode::UNAUTHORIZED, "a valid bearer token is required\n");
                    resp.headers_mut().insert(
                        http::header::WWW_AUTHENTICATE,
                        http::HeaderValue::from_static("Bearer realm=\"strata-metrics\""),
                    );
                    Some(resp)
                }
            }
        }
    }
}

impl Endpoint {
    /// Rescans bucket usage if the last scan is older than the refresh interval.
    async fn refresh_usage(&self) {
        let mut last = self.last_scan.lock().await;
        let interval = Duration::from_secs(self.cfg.usage_refresh_secs);
        if last.is_some_and(|t| t.elapsed() < interval) {
            return;
        }
        let meta = self.meta.clone();
        match tokio::task::spawn_blocking(move || crate::store::usage::all_usage(&meta)).await {
            Ok(Ok(all)) => {
                crate::metrics::global().set_usage(&all);
                *last = Some(Instant::now());
            }
            Ok(Err(e)) => tracing::warn!(error = %e, "bucket usage scan failed"),
            Err(e) => tracing::warn!(error = %e, "bucket usage scan panicked"),
        }
    }

    pub async fn serve(
        &self,
        peer: SocketAddr,
        method: &http::Method,
        headers: &http::HeaderMap,
    ) -> http::Response<Body> {
        if let Some(refused) = refusal(&self.cfg, peer, headers) {
            return refused;
        }
        if method != http::Method::GET && method != http::Method::HEAD {
            let mut resp = text(http::StatusCode::METHOD_NOT_ALLOWED, "use GET\n");
            resp.headers_mut()
                .insert(http::header::ALLOW, http::HeaderValue::from_static("GET, HEAD"));
            return resp;
        }
        self.refresh_usage().await;
        let body = crate::metrics::global().render();
        let mut resp = http::Response::new(Body::from(body));
        resp.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static(prometheus_client::encoding::prometheus_text::CONTENT_TYPE),
        );
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(cfg: &MetricsConfig, peer: &str, auth: Option<&str>) -> u16 {
        let mut h = http::HeaderMap::new();
        if let Some(a) = auth {
            h.insert(
                http::header::AUTHORIZATION,
                http::HeaderValue::from_str(a).expect("header"),
            );
        }
        let peer: SocketAddr = peer.parse().expect("addr");
        match refusal(cfg, peer, &h) {
            None => 200,
            Some(r) => r.status().as_u16(),
        }
    }

    #[test]
    fn loopback_token_and_public_access() {
        let loopback = MetricsConfig::default();
        assert_eq!(status(&loopback, "127.0.0.1:5", None), 200);
        assert_eq!(status(&loopback, "127.8.9.10:5", None), 200);
        assert_eq!(status(&loopback, "[::1]:5", None), 200);
        assert_eq!(status(&loopback, "[::ffff:127.0.0.1]:5", None), 200);
        assert_eq!(status(&loopback, "192.0.2.7:5", None), 403);
        assert_eq!(status(&loopback, "[fd00::2]:5", None), 403);
        let token = MetricsConfig {
            auth: MetricsAuth::Token,
            bearer_token: Some("s3cret".into()),
            ..Default::default()
        };
        assert_eq!(status(&token, "192.0.2.7:5", Some("Bearer s3cret")), 200);
        assert_eq!(status(&token, "127.0.0.1:5", None), 401, "loopback needs the token too");
        assert_eq!(status(&token, "192.0.2.7:5", Some("Bearer s3cre")), 401);
        assert_eq!(status(&token, "192.0.2.7:5", Some("Basic s3cret")), 401);
        let public = MetricsConfig {
            auth: MetricsAuth::Public,
            ..Default::default()
        };
        assert_eq!(status(&public, "192.0.2.7:5", None), 200);
    }

    #[test]
    fn token_comparison() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secret2"));
        assert!(!constant_time_eq(b"", b"x"));
    }
}
