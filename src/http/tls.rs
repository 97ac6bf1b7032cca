//! HTTPS: everything TLS, so `server.rs` only chooses between plain and TLS connections.
//!
//! Owns: loading the PEM certificate chain and private key (errors name the file; a key that
//! does not match the certificate is refused at start-up), the rustls `ServerConfig` (ring
//! provider, TLS 1.2 + 1.3, ALPN `h2` then `http/1.1`), re-reading both files on SIGHUP
//! through a certificate resolver whose current key is swapped under a lock (open connections
//! keep theirs; a failed reload keeps the old certificate), the handshake with the same
//! first-bytes deadline plain connections get, the [`Stream`] type that is either a plain TCP
//! or a TLS connection, and `strata dev-cert` (a self-signed certificate from rcgen).

use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::task::{Context, Poll};
use std::time::Duration;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;

/// The first bytes of every HTTP/2 connection (hyper-util tells the protocols apart by it).
pub(crate) const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// The crypto provider of every TLS object we make: ring (not rustls' default aws-lc-rs).
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Reads a PEM certificate chain (leaf first) and its private key, and checks that the key
/// belongs to the leaf certificate. Every error names the file it is about.
pub fn load_certified_key(cert: &Path, key: &Path, provider: &CryptoProvider) -> anyhow::Result<CertifiedKey> {
    let cert_pem =
        std::fs::read(cert).map_err(|e| anyhow::anyhow!("cannot read TLS certificate file {}: {e}", cert.display()))?;
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow::anyhow!("TLS certificate file {} is not valid PEM: {e}", cert.display()))?;
    if chain.is_empty() {
        anyhow::bail!(
            "TLS certificate file {} holds no PEM CERTIFICATE section",
            cert.display()
        );
    }

    let key_pem = std::fs::read(key).map_err(|e| anyhow::anyhow!("cannot read TLS key file {}: {e}", key.display()))?;
    let key_der = match PrivateKeyDer::from_pem_slice(&key_pem) {
        Ok(k) => k,
        Err(rustls::pki_types::pem::Error::NoItemsFound) => anyhow::bail!(
            "TLS key file {} holds no PEM private key (PKCS#8, PKCS#1 RSA or SEC1 EC)",
            key.display()
        ),
        Err(e) => anyhow::bail!("TLS key file {} is not valid PEM: {e}", key.display()),
    };
    let signing_key = provider
        .key_provider
        .load_private_key(key_der)
        .map_err(|e| anyhow::anyhow!("TLS key file {}: unusable private key: {e}", key.display()))?;

    let certified = CertifiedKey::new(chain, signing_key);
    match certified.keys_match() {
        Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => Ok(certified),
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) => anyhow::bail!(
            "the private key in {} does not match the certificate in {}",
            key.display(),
            cert.display()
        ),
        Err(e) => anyhow::bail!("TLS certificate file {}: unusable certificate: {e}", cert.display()),
    }
}

/// Hands every handshake the current certificate; a reload replaces it for later handshakes.
#[derive(Debug)]
struct SwappableCert {
    current: RwLock<Arc<CertifiedKey>>,
}

impl SwappableCert {
    fn get(&self) -> Arc<CertifiedKey> {
        match self.current.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn set(&self, key: CertifiedKey) {
        let key = Arc::new(key);
        match self.current.write() {
            Ok(mut g) => *g = key,
            Err(poisoned) => *poisoned.into_inner() = key,
        }
    }
}

impl ResolvesServerCert for SwappableCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.get())
    }
}

/// The TLS side of the listener: certificate files, the swappable certificate, the acceptor.
pub struct Tls {
    cert: PathBuf,
    key: PathBuf,
    provider: Arc<CryptoProvider>,
    resolver: Arc<SwappableCert>,
    acceptor: TlsAcceptor,
}

impl Tls {
    /// Loads the certificate and key (failing with a message naming the file) and builds
    /// the server configuration.
    pub fn load(cert: &Path, key: &Path) -> anyhow::Result<Arc<Tls>> {
        let provider = provider();
        let certified = load_certified_key(cert, key, &provider)?;
        let resolver = Arc::new(SwappableCert {
            current: RwLock::new(Arc::new(certified)),
        });
        let mut config = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| anyhow::anyhow!("TLS configuration: {e}"))?
            .with_no_client_auth()
            .with_cert_resolver(resolver.clone());
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Arc::new(Tls {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            provider,
            resolver,
            acceptor: TlsAcceptor::from(Arc::new(config)),
        }))
    }

    /// Re-reads both files; on any error the current certificate stays in use.
    pub fn reload(&self) -> anyhow::Result<()> {
        let certified = load_certified_key(&self.cert, &self.key, &self.provider)?;
        self.resolver.set(certified);
        Ok(())
    }

    /// Re-reads the certificate and key on every SIGHUP (without TLS, SIGHUP is logged and
    /// ignored, so `systemctl reload` never stops the server). Registers the handler at once
    /// (SIGHUP's default action would end the process), so call it before the server
    /// announces itself; the handler lives as long as the runtime.
    pub fn reload_on_sighup(tls: Option<Arc<Tls>>) -> anyhow::Result<()> {
        #[cfg(not(unix))]
        let _ = tls;
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            let mut hangups = signal(SignalKind::hangup()).map_err(|e| anyhow::anyhow!("cannot handle SIGHUP: {e}"))?;
            tokio::spawn(async move {
                while hangups.recv().await.is_some() {
                    let Some(tls) = tls.clone() else {
                        tracing::info!("SIGHUP: no TLS certificate configured; nothing to reload");
                        continue;
                    };
                    let job = tls.clone();
                    match tokio::task::spawn_blocking(move || job.reload()).await {
                        Ok(Ok(())) => tracing::info!(
                            cert = %tls.cert.display(),
                            key = %tls.key.display(),
                            "SIGHUP: reloaded the TLS certificate and key"
                        ),
                        Ok(Err(e)) => tracing::error!(
                            error = %format!("{e:#}"),
                            "SIGHUP: TLS reload failed; still serving the previous certificate"
                        ),
                        Err(e) => tracing::error!(error = %e, "SIGHUP: TLS reload task failed"),
                    }
                }
            });
        }
        Ok(())
    }

    /// The TLS handshake, then the first bytes of a request, both within `timeout` (the
    /// plain listener's first-bytes bound: hyper's protocol detection has no timeout, and a
    /// client that completes a handshake and then says nothing must not hold a connection
    /// slot). The bytes read are replayed to hyper by the returned stream.
    pub async fn accept(&self, tcp: TcpStream, timeout: Duration) -> io::Result<Stream> {
        let deadline = tokio::time::Instant::now() + timeout;
        let timed_out = || io::Error::new(io::ErrorKind::TimedOut, "no TLS handshake and request in time");
        let mut tls = tokio::time::timeout_at(deadline, self.acceptor.accept(tcp))
            .await
            .map_err(|_| timed_out())??;
        let mut first = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let n = tokio::time::timeout_at(deadline, tls.read(&mut buf))
                .await
                .map_err(|_| timed_out())??;
            if n == 0 {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "closed before a request"));
            }
            first.extend_from_slice(&buf[..n]);
            let preface = H2_PREFACE;
            if first.len() >= preface.len() || !preface.starts_with(&first) {
                break;
            }
        }
        Ok(Stream::Tls(Box::new(TlsConn {
            inner: tls,
            replay: first,
            pos: 0,
        })))
    }
}

/// A TLS connection whose first bytes were already read (by [`Tls::accept`]).
pub struct TlsConn {
    inner: tokio_rustls::server::TlsStream<TcpStream>,
    replay: Vec<u8>,
    pos: usize,
}

/// A client connection: plain TCP or TLS.
pub enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsConn>),
}

impl Stream {
    /// Whether the bytes travel encrypted (the `aws:SecureTransport` condition key).
    pub fn is_secure(&self) -> bool {
        matches!(self, Stream::Tls(_))
    }
}

impl AsyncRead for Stream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(t) => {
                if t.pos < t.replay.len() {
                    let n = (t.replay.len() - t.pos).min(buf.remaining());
                    buf.put_slice(&t.replay[t.pos..t.pos + n]);
                    t.pos += n;
                    if t.pos == t.replay.len() {
                        t.replay = Vec::new();
                        t.pos = 0;
                    }
                    return Poll::Ready(Ok(()));
                }
                Pin::new(&mut t.inner).poll_read(cx, buf)
            }
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(t) => Pin::new(&mut t.inner).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Stream::Tls(t) => Pin::new(&mut t.inner).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Stream::Plain(s) => s.is_write_vectored(),
            Stream::Tls(t) => t.inner.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(t) => Pin::new(&mut t.inner).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(t) => Pin::new(&mut t.inner).poll_shutdown(cx),
        }
    }
}

/// The answer of a plain listener with `tls.redirect_http`: the same host, path and query on
/// https at `https_port`; 301 for GET and HEAD, 308 (which keeps the method and body) for
/// the rest. A request without a usable host gets 400.
pub fn https_redirect<B>(req: &http::Request<B>, https_port: u16) -> http::Response<s3s::Body> {
    let authority = req.uri().authority().cloned().or_else(|| {
        req.headers()
            .get(http::header::HOST)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<http::uri::Authority>().ok())
    });
    let path = req.uri().path_and_query().map_or("/", |p| p.as_str());
    let location = authority.and_then(|a| {
        let port = if https_port == 443 {
            String::new()
        } else {
            format!(":{https_port}")
        };
        let url = format!("https://{}{port}{path}", a.host());
        http::HeaderValue::from_str(&url).ok()
    });
    let mut resp = http::Response::new(s3s::Body::empty());
    match location {
        Some(location) => {
            *resp.status_mut() = if matches!(*req.method(), http::Method::GET | http::Method::HEAD) {
                http::StatusCode::MOVED_PERMANENTLY
            } else {
                http::StatusCode::PERMANENT_REDIRECT
            };
            resp.headers_mut().insert(http::header::LOCATION, location);
        }
        None => *resp.status_mut() = http::StatusCode::BAD_REQUEST,
    }
    resp
}

/// How long a `strata dev-cert` certificate is valid (the longest lifetime Apple's clients
/// accept for a TLS server certificate).
pub const DEV_CERT_DAYS: i64 = 825;

/// Writes a self-signed certificate for `hosts` (IP addresses become IP SANs, anything else
/// DNS SANs) and its new ECDSA P-256 key. The key file is created with mode 0600. Each file
/// is written beside its destination and renamed over it, so a server reloading on SIGHUP
/// never reads half a file.
pub fn write_dev_cert(cert: &Path, key: &Path, hosts: &[String]) -> anyhow::Result<()> {
    let Some(first) = hosts.first() else {
        anyhow::bail!("dev-cert needs at least one --host");
    };
    let mut params = rcgen::CertificateParams::new(hosts.to_vec())
        .map_err(|e| anyhow::anyhow!("invalid --host (an IP address or a DNS name): {e}"))?;
    let mut name = rcgen::DistinguishedName::new();
    name.push(
        rcgen::DnType::CommonName,
        format!("Strata development certificate for {first}"),
    );
    params.distinguished_name = name;
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::hours(1);
    params.not_after = now + time::Duration::days(DEV_CERT_DAYS);
    params.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    let key_pair = rcgen::KeyPair::generate().map_err(|e| anyhow::anyhow!("cannot generate a key: {e}"))?;
    let certificate = params
        .self_signed(&key_pair)
        .map_err(|e| anyhow::anyhow!("cannot make the certificate: {e}"))?;
    write_replacing(key, key_pair.serialize_pem().as_bytes(), 0o600)?;
    write_replacing(cert, certificate.pem().as_bytes(), 0o644)?;
    Ok(())
}

/// Writes `bytes` to a temporary file beside `path` (created with `mode` on Unix), then
/// renames it over `path`.
fn write_replacing(path: &Path, bytes: &[u8], mode: u32) -> anyhow::Result<()> {
    use std::io::Write;
    let file_name = path
        .file_name()
        .ok_or_else(|| anyhow::anyhow!("{} is not a file path", path.display()))?;
    let mut tmp_name = file_name.to_os_string();
    tmp_name.push(format!(".tmp-{}", std::process::id()));
    let tmp = path.with_file_name(tmp_name);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    let result = (|| -> io::Result<()> {
        let mut f = options.open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        anyhow::bail!("cannot write {}: {e}", path.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dev_cert(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
        let cert = dir.join(format!("{name}.pem"));
        let key = dir.join(format!("{name}.key"));
        write_dev_cert(&cert, &key, &["127.0.0.1".to_string(), "localhost".to_string()]).expect("dev cert");
        (cert, key)
    }

    #[test]
    fn dev_cert_loads_and_its_key_is_private() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (cert, key) = dev_cert(dir.path(), "a");
        load_certified_key(&cert, &key, &provider()).expect("load");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&key).expect("stat").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn load_errors_name_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (cert_a, key_a) = dev_cert(dir.path(), "a");
        let (_cert_b, key_b) = dev_cert(dir.path(), "b");
        let p = provider();

        let err = format!("{:#}", load_certified_key(&cert_a, &key_b, &p).expect_err("mismatch"));
        assert!(err.contains("does not match") && err.contains("b.key"), "{err}");

        let missing = dir.path().join("missing.pem");
        let err = format!("{:#}", load_certified_key(&missing, &key_a, &p).expect_err("missing"));
        assert!(err.contains("missing.pem"), "{err}");

        let garbage = dir.path().join("garbage.pem");
        std::fs::write(
            &garbage,
            "-----BEGIN CERTIFICATE-----\n@@@@\n-----END CERTIFICATE-----\n",
        )
        .expect("write");
        let err = format!("{:#}", load_certified_key(&garbage, &key_a, &p).expect_err("garbage"));
        assert!(err.contains("garbage.pem"), "{err}");

        std::fs::write(&garbage, "not pem at all\n").expect("write");
        let err = format!("{:#}", load_certified_key(&cert_a, &garbage, &p).expect_err("no key"));
        assert!(
            err.contains("garbage.pem") && err.contains("no PEM private key"),
            "{err}"
        );
        let err = format!("{:#}", load_certified_key(&garbage, &key_a, &p).expect_err("no cert"));
        assert!(
            err.contains("garbage.pem") && err.contains("no PEM CERTIFICATE"),
            "{err}"
        );
    }

    #[test]
    fn redirects_keep_host_path_and_query() {
        let req = |method: &str, uri: &str, host: Option<&str>| {
            let mut b = http::Request::builder().method(method).uri(uri);
            if let Some(h) = host {
                b = b.header("host", h);
            }
            b.body(()).expect("request")
        };
        let location = |r: &http::Response<s3s::Body>| {
            r.headers()
                .get("location")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let r = https_redirect(&req("GET", "/b/k?versionId=1", Some("127.0.0.1:9080")), 9443);
        assert_eq!(r.status(), 301);
        assert_eq!(location(&r).as_deref(), Some("https://127.0.0.1:9443/b/k?versionId=1"));
        let r = https_redirect(&req("PUT", "/b/k", Some("[::1]:80")), 443);
        assert_eq!(r.status(), 308);
        assert_eq!(location(&r).as_deref(), Some("https://[::1]/b/k"));
        let r = https_redirect(&req("GET", "http://example.com:80/x", None), 8443);
        assert_eq!(location(&r).as_deref(), Some("https://example.com:8443/x"));
        let r = https_redirect(&req("GET", "/x", Some("bad host")), 8443);
        assert_eq!(r.status(), 400);
        let r = https_redirect(&req("GET", "/x", None), 8443);
        assert_eq!(r.status(), 400);
    }

    #[test]
    fn reload_swaps_the_certificate_and_a_failed_reload_keeps_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (cert, key) = dev_cert(dir.path(), "live");
        let tls = Tls::load(&cert, &key).expect("load");
        let before = tls.resolver.get().cert[0].clone();

        std::fs::write(&cert, "broken").expect("write");
        assert!(tls.reload().is_err());
        assert_eq!(tls.resolver.get().cert[0], before);

        dev_cert(dir.path(), "live");
        tls.reload().expect("reload");
        assert_ne!(tls.resolver.get().cert[0], before);
    }
}
