//! The HTTP front: the accept loop and connection serving ([`server`]), TLS ([`tls`]), the
//! routes answered in front of s3s (health, readiness, [`metrics`], the [`website`] endpoint),
//! and the s3s compatibility shims ([`signing_region`]). Everything that knows about sockets,
//! HTTP versions or paths outside the S3 API lives here; the S3 semantics live in `s3/`.

pub mod metrics;
pub mod server;
pub mod signing_region;
pub mod tls;
pub mod website;

/// The operation label of a request s3s did not name: our own endpoints, CORS preflights,
/// and requests refused before routing (bad signature, unknown bucket path…).
pub fn fallback_op(method: &http::Method, path: &str, headers: &http::HeaderMap) -> &'static str {
    match path {
        "/_strata/health" => "health",
        "/_strata/ready" => "ready",
        metrics::PATH => "metrics",
        p if p.starts_with(crate::admin::ADMIN_PREFIX) => "admin",
        _ if method == http::Method::OPTIONS
            && headers.contains_key(http::header::ORIGIN)
            && headers.contains_key(http::header::ACCESS_CONTROL_REQUEST_METHOD) =>
        {
            "preflight"
        }
        _ => "unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fallback_ops() {
        let h = http::HeaderMap::new();
        assert_eq!(fallback_op(&http::Method::GET, "/_strata/metrics", &h), "metrics");
        assert_eq!(fallback_op(&http::Method::GET, "/_strata/admin/keys", &h), "admin");
        assert_eq!(fallback_op(&http::Method::OPTIONS, "/b/k", &h), "unknown");
        let mut pre = http::HeaderMap::new();
        pre.insert(http::header::ORIGIN, http::HeaderValue::from_static("https://x"));
        pre.insert(
            http::header::ACCESS_CONTROL_REQUEST_METHOD,
            http::HeaderValue::from_static("GET"),
        );
        assert_eq!(fallback_op(&http::Method::OPTIONS, "/b/k", &pre), "preflight");
    }
}
