//! The network side: binds the listener, builds the s3s service (auth, access, admin route,
//! virtual hosts), answers `/_strata/health` and `/_strata/ready` in front of s3s, and serves
//! HTTP/1.1 and HTTP/2 with bounded header size and read timeouts until asked to stop. With
//! TLS configured the listener hands out TLS connections (`tls.rs`), optionally beside a
//! plain-HTTP listener that serves or redirects.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use s3s::config::{S3Config, StaticConfigProvider};
use s3s::service::{S3Service, S3ServiceBuilder};
use s3s::Body;
use tokio::net::TcpListener;

use crate::admin::{AdminRoute, StrataNames};
use crate::auth::{Authorizer, KeyAuth, RootKey};
use crate::config::Config;
use crate::derivative::{DerivativeCache, Derivatives};
use crate::lifecycle::Lifecycle;
use crate::metrics::body::{Counted, Direction};
use crate::s3::Strata;
use crate::store::Store;
use crate::util::errors;

use super::tls::H2_PREFACE;

/// Largest request head (request line + headers) we buffer.
const MAX_HEADER_BYTES: usize = 64 * 1024;
/// How long open connections get to finish after a shutdown signal.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// The S3 service, and the lifecycle worker that shares its derivative cache (started by
/// [`serve`]).
pub fn build_service(cfg: &Config, store: &Store, root: &RootKey) -> anyhow::Result<(S3Service, Arc<Lifecycle>)> {
    let authz = Arc::new(Authorizer {
        root_access_key: root.access_key.clone(),
        meta: store.meta.clone(),
        allow_sigv2: cfg.allow_sigv2,
        block_public_access_default: cfg.block_public_access,
    });
    let cache = DerivativeCache::open(&cfg.data_dir, cfg.transform.cache_max_bytes)
        .map_err(|e| anyhow::anyhow!("cannot open the derivative cache: {e}"))?;
    crate::metrics::global().watch_cache(cache.clone());
    let derivatives = Arc::new(Derivatives::new(
        cache,
        cfg.transform.memory_cache_bytes,
        cfg.transform.worker_count(),
        cfg.transform.queue,
        cfg.transform.limits(),
    ));
    let lifecycle = Arc::new(Lifecycle::new(
        store.clone(),
        derivatives.clone(),
        cfg.lifecycle.clone(),
        Arc::new(crate::util::clock::SystemClock),
    ));
    let strata = Strata {
        store: store.clone(),
        limits: cfg.limits.clone(),
        region: cfg.region.clone(),
        authz: authz.clone(),
        derivatives: derivatives.clone(),
        transform: cfg.transform.clone(),
        keyring: crate::store::keyring::Keyring::open(&cfg.master_key_path(), store.meta.clone())
            .map_err(|e| anyhow::anyhow!("{e}"))?,
        default_kms_key_id: cfg.encryption.default_kms_key_id.clone(),
        website_max_routing_rules: cfg.website.max_routing_rules,
    };
    let mut b = S3ServiceBuilder::new(strata);
    b.set_auth(KeyAuth {
        root: root.clone(),
        meta: store.meta.clone(),
    });
    b.set_access(SharedAuthorizer(authz));
    b.set_route(AdminRoute {
        meta: store.meta.clone(),
        store: store.clone(),
        root_access_key: root.access_key.clone(),
        buckets: crate::admin::buckets::BucketAdmin {
            store: store.clone(),
            derivatives,
            region: cfg.region.clone(),
            root_access_key: root.access_key.clone(),
            delete_batch: cfg.limits.bucket_delete_batch,
        },
        lifecycle: lifecycle.clone(),
    });
    b.set_validation(StrataNames);
    if let Some(domain) = &cfg.domain {
        let host =
            s3s::host::SingleDomain::new(domain).map_err(|e| anyhow::anyhow!("invalid --domain {domain}: {e:?}"))?;
        b.set_host(host);
    }
    let mut s3cfg = S3Config::default();
    s3cfg.xml_max_body_size = cfg.limits.max_xml_body_bytes;
    s3cfg.post_object_max_file_size = cfg.limits.max_post_object_bytes;
    s3cfg.presigned_url_max_skew_time_secs = cfg.limits.max_clock_skew_secs;
    b.set_config(Arc::new(StaticConfigProvider::new(Arc::new(s3cfg))));
    Ok((b.build(), lifecycle))
}

/// `S3Access` needs an owned value; the handlers share the same authorizer.
struct SharedAuthorizer(Arc<Authorizer>);

#[async_trait::async_trait]
impl s3s::access::S3Access for SharedAuthorizer {
    async fn check(&self, cx: &mut s3s::access::S3AccessContext<'_>) -> s3s::S3Result<()> {
        // s3s names the operation only here: hand it to the request wrapper for metrics.
        let op = crate::metrics::intern_op(cx.s3_op().name());
        if let Some(slot) = cx.extensions_mut().get::<crate::metrics::OpSlot>() {
            slot.set(op);
        }
        self.0.check(cx).await
    }

    async fn post_object(&self, req: &mut s3s::S3Request<s3s::dto::PostObjectInput>) -> s3s::S3Result<()> {
        self.0.authorize_post_object(req)
    }
}

fn plain(status: http::StatusCode, text: &'static str) -> http::Response<Body> {
    let mut resp = http::Response::new(Body::from(text.to_string()));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("text/plain"));
    resp
}

/// Ready = metadata answers and the data dir takes a write.
fn readiness(store: &Store) -> bool {
    let probe = store.data_dir.join("tmp").join(".ready-probe");
    let writable = std::fs::write(&probe, b"ok").is_ok() && std::fs::remove_file(&probe).is_ok();
    writable && store.meta.bucket("_probe").is_ok()
}

/// Waits until a new connection has sent enough bytes for hyper to tell HTTP/1 from HTTP/2.
/// hyper-util's protocol detection has no timeout of its own (the header read timeout starts
/// after it), so without this a client that connects and sends nothing holds a connection
/// slot forever. Returns false on timeout or close.
async fn request_started(stream: &tokio::net::TcpStream, timeout: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut buf = [0u8; 24];
    loop {
        let n = match tokio::time::timeout_at(deadline, stream.peek(&mut buf)).await {
            Ok(Ok(n)) => n,
            _ => return false,
        };
        if n == 0 {
            return false;
        }
        if n >= H2_PREFACE.len() || !H2_PREFACE.starts_with(&buf[..n]) {
            return true;
        }
        // A partial HTTP/2 preface: peek returns at once while no new byte has arrived.
        if tokio::time::timeout_at(deadline, tokio::time::sleep(Duration::from_millis(5)))
            .await
            .is_err()
        {
            return false;
        }
    }
}

/// Methods and sub-resources whose request body is an XML document s3s buffers in memory.
fn has_xml_body(method: &http::Method, query: &str) -> bool {
    const PUT_XML: [&str; 14] = [
        "acl",
        "cors",
        "tagging",
        "lifecycle",
        "versioning",
        "policy",
        "encryption",
        "website",
        "logging",
        "notification",
        "replication",
        "publicAccessBlock",
        "ownershipControls",
        "object-lock",
    ];
    let has = |name: &str| crate::util::query::has(query, name);
    match *method {
        http::Method::POST => has("delete") || has("uploadId"),
        http::Method::PUT => !has("partNumber") && PUT_XML.iter().any(|k| has(k)),
        _ => false,
    }
}

/// Refuses an XML request body that declares more than the limit before anything is read.
/// (s3s enforces the limit too, but reports an over-long body as a 500.)
fn oversized_xml(req: &http::Request<Incoming>, limit: usize) -> Option<http::Response<Body>> {
    let declared: u64 = req
        .headers()
        .get("x-amz-decoded-content-length")
        .or_else(|| req.headers().get(http::header::CONTENT_LENGTH))
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())?;
    if declared <= limit as u64 || !has_xml_body(req.method(), req.uri().query().unwrap_or("")) {
        return None;
    }
    let err = errors::max_message_length_exceeded(format!(
        "Your request was too big: XML bodies are limited to {limit} bytes."
    ));
    match err.to_http_response() {
        Ok(resp) => Some(resp),
        Err(_) => Some(plain(http::StatusCode::BAD_REQUEST, "request body too large\n")),
    }
}

/// What the front of the server needs besides the s3s service.
#[derive(Clone)]
struct Front {
    store: Store,
    xml_limit: usize,
    /// Base domain of virtual-hosted-style requests, to find a request's bucket for CORS.
    domain: Option<String>,
    /// The connection is TLS (`aws:SecureTransport`).
    secure: bool,
    /// A plain listener with `tls.redirect_http`: every request is redirected to this port
    /// on https.
    redirect_to_port: Option<u16>,
    /// `/_strata/metrics`.
    metrics: Arc<crate::http::metrics::Endpoint>,
    /// Which requests are website requests (`website.rs`).
    website: crate::http::website::WebsiteHosts,
    /// The SigV4 signing-region pre-check (`signing_region.rs`).
    signing_region: Arc<crate::http::signing_region::SigningRegion>,
}

/// The bucket a request addresses (virtual-hosted or path style), for CORS.
fn request_bucket(req: &http::Request<Incoming>, domain: Option<&str>) -> Option<String> {
    if let Some(domain) = domain {
        let host = req.headers().get(http::header::HOST)?.to_str().ok()?;
        let host = host.rsplit_once(':').map_or(host, |(h, _)| h);
        if let Some(bucket) = host.strip_suffix(domain).and_then(|b| b.strip_suffix('.')) {
            return Some(bucket.to_string());
        }
    }
    let first = req.uri().path().trim_start_matches('/').split('/').next()?;
    let bucket = urlencoding::decode(first).ok()?.into_owned();
    (!bucket.is_empty()).then_some(bucket)
}

/// The CORS rules of the bucket a request addresses, if it has any.
fn bucket_cors_rules(front: &Front, req: &http::Request<Incoming>) -> Option<Vec<crate::model::cors::CorsRule>> {
    request_bucket(req, front.domain.as_deref())
        .and_then(|b| front.store.meta.bucket(&b).ok().flatten())
        .and_then(|b| b.cors)
}

fn header_str<'a>(req: &'a http::Request<Incoming>, name: &str) -> Option<&'a str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

/// S3's answer to a CORS preflight (`OPTIONS` with `Origin` and
/// `Access-Control-Request-Method`), from the bucket's CORS rules.
fn preflight(front: &Front, req: &http::Request<Incoming>) -> Option<http::Response<Body>> {
    if req.method() != http::Method::OPTIONS {
        return None;
    }
    let origin = header_str(req, "origin")?;
    let method = header_str(req, "access-control-request-method")?;
    let requested_headers = header_str(req, "access-control-request-headers").unwrap_or("");
    let forbidden = |e: s3s::S3Error| {
        e.to_http_response()
            .unwrap_or_else(|_| plain(http::StatusCode::FORBIDDEN, "CORS request not allowed\n"))
    };
    let rules = bucket_cors_rules(front, req);
    let Some(rules) = rules else {
        return Some(forbidden(crate::model::cors::cors_not_enabled()));
    };
    match crate::model::cors::preflight(&rules, origin, method, requested_headers) {
        Some(allowed) => {
            let mut resp = http::Response::new(Body::empty());
            allowed.apply(resp.headers_mut());
            Some(resp)
        }
        None => Some(forbidden(crate::model::cors::preflight_denied())),
    }
}

/// The CORS headers an actual (non-preflight) cross-origin request gets, errors included.
fn cors_headers(front: &Front, req: &http::Request<Incoming>) -> Option<crate::model::cors::CorsHeaders> {
    let origin = header_str(req, "origin")?;
    let rules = bucket_cors_rules(front, req)?;
    crate::model::cors::actual(&rules, origin, req.method().as_str())
}

/// s3s answers a POST form that breaks one of its policy's conditions with 400
/// InvalidPolicyDocument; S3 answers 403 AccessDenied ("Invalid according to Policy"), and
/// browser code and SDKs expect that. Error bodies are small and already in memory.
fn post_condition_as_access_denied(mut resp: http::Response<Body>) -> http::Response<Body> {
    let Some(bytes) = resp.body_mut().bytes() else {
        return resp;
    };
    let text = String::from_utf8_lossy(&bytes);
    if !text.contains("<Code>InvalidPolicyDocument</Code>") || !text.contains("Policy condition") {
        return resp;
    }
    let detail = text
        .split_once("<Message>")
        .and_then(|(_, rest)| rest.split_once("</Message>"))
        .map(|(m, _)| m.replace("&apos;", "'").replace("&quot;", "\"").replace("&amp;", "&"))
        .unwrap_or_default();
    errors::access_denied_403(format!("Invalid according to Policy: {detail}"))
        .to_http_response()
        .unwrap_or(resp)
}

/// s3s answers an XML body that does not match the schema (e.g. a website RoutingRule
/// without its Redirect) with a bare `MalformedXML`; S3 says what is wrong in general terms.
fn malformed_xml_with_message(resp: http::Response<Body>) -> http::Response<Body> {
    let Some(bytes) = resp.body().bytes() else {
        return resp;
    };
    let text = String::from_utf8_lossy(&bytes);
    if !text.contains("<Code>MalformedXML</Code>") || text.contains("<Message>") {
        return resp;
    }
    errors::malformed_xml_400(errors::MALFORMED_XML_MESSAGE)
        .to_http_response()
        .unwrap_or(resp)
}

/// Our own endpoints first; everything else is S3.
async fn route(
    service: S3Service,
    front: Front,
    peer: std::net::SocketAddr,
    req: http::Request<Incoming>,
) -> http::Response<Body> {
    if let Some(port) = front.redirect_to_port {
        return crate::http::tls::https_redirect(&req, port);
    }
    if let Some(bucket) = front.website.bucket(&req) {
        let client = crate::auth::ClientInfo {
            addr: peer,
            secure: front.secure,
        };
        return crate::http::website::serve(&service, &front.store, &bucket, client, req).await;
    }
    if let Some(answer) = preflight(&front, &req) {
        return answer;
    }
    let cors = cors_headers(&front, &req);
    let is_post = req.method() == http::Method::POST;
    let mut resp = respond(service, front, peer, req).await;
    if let Some(status) = resp.extensions().get::<crate::s3::StatusOverride>() {
        *resp.status_mut() = status.0;
    }
    if is_post && resp.status() == http::StatusCode::BAD_REQUEST {
        resp = post_condition_as_access_denied(resp);
    }
    if resp.status() == http::StatusCode::BAD_REQUEST {
        resp = malformed_xml_with_message(resp);
    }
    if let Some(cors) = cors {
        cors.apply(resp.headers_mut());
    }
    resp
}

/// Most a refused request's body is read (and dropped) before the refusal is sent.
const REFUSED_BODY_DRAIN_MAX_BYTES: u64 = 8 << 20;
/// Longest a refused request's body is waited for.
const REFUSED_BODY_DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// Reads and drops up to [`REFUSED_BODY_DRAIN_MAX_BYTES`] of a request that is refused before
/// its body was read. Why: a server that answers and closes while the client is still
/// sending leaves unread bytes in the socket, the kernel then answers with a TCP reset, and
/// the client often reports the reset instead of our 400 (seen with the SDK's streamed
/// uploads under a wrong signing region). Past the bound the refusal is sent anyway.
async fn drain_refused_body(mut body: Incoming) {
    use http_body_util::BodyExt;
    let drain = async {
        let mut read = 0u64;
        while let Some(Ok(frame)) = body.frame().await {
            if let Some(data) = frame.data_ref() {
                read += data.len() as u64;
                if read > REFUSED_BODY_DRAIN_MAX_BYTES {
                    break;
                }
            }
        }
    };
    let _ = tokio::time::timeout(REFUSED_BODY_DRAIN_TIMEOUT, drain).await;
}

async fn respond(
    service: S3Service,
    front: Front,
    peer: std::net::SocketAddr,
    mut req: http::Request<Incoming>,
) -> http::Response<Body> {
    if let Some(refused) = oversized_xml(&req, front.xml_limit) {
        return refused;
    }
    let store = front.store;
    req.extensions_mut().insert(crate::auth::ClientInfo {
        addr: peer,
        secure: front.secure,
    });
    match req.uri().path() {
        "/_strata/health" => plain(http::StatusCode::OK, "ok\n"),
        crate::http::metrics::PATH => front.metrics.serve(peer, req.method(), req.headers()).await,
        "/_strata/ready" => {
            let ok = tokio::task::spawn_blocking(move || readiness(&store))
                .await
                .unwrap_or(false);
            if ok {
                plain(http::StatusCode::OK, "ready\n")
            } else {
                plain(http::StatusCode::SERVICE_UNAVAILABLE, "not ready\n")
            }
        }
        _ => {
            if let Err(refusal) = front.signing_region.check(&mut req).await {
                let id = req
                    .extensions()
                    .get::<crate::s3::errors::RequestId>()
                    .map_or(String::new(), |r| r.0.clone());
                // A client waiting for `100 Continue` has not sent its body: nothing to drain.
                let expects_continue = req
                    .headers()
                    .get(http::header::EXPECT)
                    .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
                if !expects_continue {
                    drain_refused_body(req.into_body()).await;
                }
                return refusal.response(&id);
            }
            match service
                .call(req.map(|b| Body::http_body(Counted::new(b, Direction::Received))))
                .await
            {
                Ok(resp) => resp,
                Err(e) => {
                    tracing::error!(error = ?e, "request failed without an S3 response");
                    plain(http::StatusCode::INTERNAL_SERVER_ERROR, "internal error\n")
                }
            }
        }
    }
}

/// What a listener's connections are.
#[derive(Clone)]
enum Kind {
    /// HTTPS (`listen` with TLS configured).
    Tls(Arc<crate::http::tls::Tls>),
    /// Plain HTTP (`listen` without TLS, or `tls.http_listen`).
    Plain,
    /// `tls.http_listen` with `tls.redirect_http`: redirects to the HTTPS port.
    Redirect(u16),
    /// `website.listen`: plain HTTP, every request a website request.
    Website,
}

/// Accepts from `listener`, or never when there is none.
async fn accept_from(listener: Option<&TcpListener>) -> std::io::Result<(tokio::net::TcpStream, std::net::SocketAddr)> {
    match listener {
        Some(l) => l.accept().await,
        None => std::future::pending().await,
    }
}

async fn bind(addr: std::net::SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {addr}: {e}"))
}

/// The sockets one server accepts on, and what each kind of connection gets.
struct Listeners {
    /// `listen`: HTTPS with TLS configured, else plain HTTP.
    main: TcpListener,
    main_kind: Kind,
    scheme: &'static str,
    /// `tls.http_listen` beside HTTPS: plain, or redirecting to HTTPS.
    plain: Option<TcpListener>,
    plain_kind: Kind,
    /// `website.listen`: every request a website request.
    website: Option<TcpListener>,
}

impl Listeners {
    async fn bind(cfg: &Config, tls: Option<&Arc<crate::http::tls::Tls>>) -> anyhow::Result<Self> {
        let main = bind(cfg.listen).await?;
        let (main_kind, scheme) = match tls {
            Some(tls) => (Kind::Tls(tls.clone()), "https"),
            None => (Kind::Plain, "http"),
        };
        let plain = match cfg.tls.http_listen.filter(|_| tls.is_some()) {
            Some(a) => Some(bind(a).await?),
            None => None,
        };
        let plain_kind = if cfg.tls.redirect_http {
            Kind::Redirect(main.local_addr()?.port())
        } else {
            Kind::Plain
        };
        let website = match cfg.website.listen {
            Some(a) => Some(bind(a).await?),
            None => None,
        };
        Ok(Self {
            main,
            main_kind,
            scheme,
            plain,
            plain_kind,
            website,
        })
    }

    /// Prints where the server listens (tests and scripts read the last line).
    fn announce(&self, cfg: &Config) -> anyhow::Result<()> {
        use std::io::Write;
        let addr = self.main.local_addr()?;
        let scheme = self.scheme;
        let mut out = std::io::stdout().lock();
        if let Some(website) = &self.website {
            writeln!(out, "website on http://{}", website.local_addr()?)?;
        }
        if !cfg.website.domain.is_empty() {
            writeln!(
                out,
                "website on {scheme}://<bucket>.{}:{}",
                cfg.website.domain,
                addr.port()
            )?;
        }
        if let Some(plain) = &self.plain {
            let plain_addr = plain.local_addr()?;
            match self.plain_kind {
                Kind::Redirect(_) => writeln!(out, "also listening on http://{plain_addr} (redirects to https)")?,
                _ => writeln!(out, "also listening on http://{plain_addr}")?,
            }
        }
        writeln!(out, "listening on {scheme}://{addr}")?;
        out.flush()?;
        Ok(())
    }

    /// The next connection from any listener, with the kind it came in on.
    async fn accept(&self) -> (std::io::Result<(tokio::net::TcpStream, std::net::SocketAddr)>, Kind) {
        tokio::select! {
            res = self.main.accept() => (res, self.main_kind.clone()),
            res = accept_from(self.plain.as_ref()) => (res, self.plain_kind.clone()),
            res = accept_from(self.website.as_ref()) => (res, Kind::Website),
        }
    }
}

/// hyper's connection settings: HTTP/1.1 and HTTP/2 with bounded headers and read timeout.
fn http_builder(cfg: &Config) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(cfg.limits.header_read_timeout_secs))
        .max_buf_size(MAX_HEADER_BYTES);
    builder.http2().max_header_list_size(MAX_HEADER_BYTES as u32);
    builder
}

/// One request, wrapped: a request id and an operation slot in the extensions, the route,
/// then the request metrics, the `x-amz-request-id` header and the access log line.
async fn handle(
    service: S3Service,
    front: Front,
    peer: std::net::SocketAddr,
    mut req: http::Request<Incoming>,
) -> http::Response<Counted<Body>> {
    let request_id = format!("{:016X}", rand::random::<u64>());
    let started = std::time::Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let op_slot = crate::metrics::OpSlot::default();
    let fallback_op = super::fallback_op(&method, &path, req.headers());
    req.extensions_mut().insert(op_slot.clone());
    req.extensions_mut()
        .insert(crate::s3::errors::RequestId(request_id.clone()));
    let mut resp = route(service, front, peer, req).await;
    crate::metrics::global().request(
        op_slot.get().unwrap_or(fallback_op),
        resp.status().as_u16(),
        started.elapsed(),
    );
    if let Ok(v) = http::HeaderValue::from_str(&request_id) {
        resp.headers_mut().insert("x-amz-request-id", v);
    }
    tracing::info!(
        target: "strata::access",
        request_id = %request_id,
        %peer,
        %method,
        path = %path,
        status = resp.status().as_u16(),
        micros = started.elapsed().as_micros() as u64,
    );
    resp.map(|b| Counted::new(b, Direction::Sent))
}

/// Serves one accepted connection to its end: the TLS handshake or the first request bytes
/// within `first_byte_timeout`, then HTTP until the client or a graceful shutdown closes it.
async fn serve_connection<S>(
    kind: Kind,
    stream: tokio::net::TcpStream,
    peer: std::net::SocketAddr,
    builder: auto::Builder<TokioExecutor>,
    svc: S,
    watcher: hyper_util::server::graceful::Watcher,
    first_byte_timeout: Duration,
) where
    S: hyper::service::Service<http::Request<Incoming>, Response = http::Response<Counted<Body>>, Error = Infallible>
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    let stream = match kind {
        Kind::Tls(tls) => match tls.accept(stream, first_byte_timeout).await {
            Ok(s) => s,
            Err(e) => {
                tracing::debug!(%peer, error = %e, "TLS connection closed before a request");
                return;
            }
        },
        Kind::Plain | Kind::Redirect(_) | Kind::Website => {
            if !request_started(&stream, first_byte_timeout).await {
                tracing::debug!(%peer, "closed a connection that sent no request in time");
                return;
            }
            crate::http::tls::Stream::Plain(stream)
        }
    };
    let conn = builder.serve_connection(TokioIo::new(stream), svc).into_owned();
    if let Err(e) = watcher.watch(conn).await {
        tracing::debug!(%peer, error = %e, "connection ended with an error");
    }
}

/// Binds `cfg.listen` (and `tls.http_listen`), prints `listening on http://ADDR` (or
/// `https://`; a plain listener beside HTTPS is announced first as `also listening on
/// http://ADDR`), and serves until `shutdown` resolves.
pub async fn serve(cfg: Config, store: Store, root: RootKey, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    let (service, lifecycle) = build_service(&cfg, &store, &root)?;
    lifecycle.spawn_schedule();
    let tls = match cfg.tls.files() {
        Some((cert, key)) => Some(crate::http::tls::Tls::load(cert, key)?),
        None => None,
    };
    let listeners = Listeners::bind(&cfg, tls.as_ref()).await?;
    crate::http::tls::Tls::reload_on_sighup(tls.clone())?;
    listeners.announce(&cfg)?;
    let addr = listeners.main.local_addr()?;
    tracing::info!(%addr, tls = tls.is_some(), data_dir = %cfg.data_dir.display(), "strata is serving");
    let metrics = Arc::new(crate::http::metrics::Endpoint::new(
        cfg.metrics.clone(),
        store.meta.clone(),
    ));
    let signing_region = Arc::new(crate::http::signing_region::SigningRegion::new(
        cfg.region.clone(),
        Arc::new(KeyAuth {
            root: root.clone(),
            meta: store.meta.clone(),
        }),
    ));
    let builder = http_builder(&cfg);
    let first_byte_timeout = Duration::from_secs(cfg.limits.header_read_timeout_secs);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    tokio::pin!(shutdown);

    let connections = Arc::new(tokio::sync::Semaphore::new(cfg.limits.max_connections.max(1)));
    loop {
        // At the connection limit, stop accepting: new clients queue in the kernel backlog.
        let permit = tokio::select! {
            p = connections.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let (accepted, kind) = tokio::select! {
            accepted = listeners.accept() => accepted,
            () = &mut shutdown => break,
        };
        let (stream, peer) = match accepted {
            Ok(s) => s,
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let front = Front {
            store: store.clone(),
            xml_limit: cfg.limits.max_xml_body_bytes,
            domain: cfg.domain.clone(),
            secure: matches!(kind, Kind::Tls(_)),
            redirect_to_port: match kind {
                Kind::Redirect(port) => Some(port),
                _ => None,
            },
            metrics: metrics.clone(),
            website: crate::http::website::WebsiteHosts {
                domain: cfg.website.domain.clone(),
                every_request: matches!(kind, Kind::Website),
            },
            signing_region: signing_region.clone(),
        };
        let service = service.clone();
        let svc = hyper::service::service_fn(move |req: http::Request<Incoming>| {
            let (service, front) = (service.clone(), front.clone());
            async move { Ok::<_, Infallible>(handle(service, front, peer, req).await) }
        });
        let (watcher, builder) = (graceful.watcher(), builder.clone());
        tokio::spawn(async move {
            let _permit = permit;
            serve_connection(kind, stream, peer, builder, svc, watcher, first_byte_timeout).await;
        });
    }

    tracing::info!("shutting down: waiting for open requests");
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown()).await.is_err() {
        tracing::warn!("some connections did not finish in time");
    }
    store.meta.flush_blocking()?;
    Ok(())
}
