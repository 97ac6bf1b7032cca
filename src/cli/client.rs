//! Client side of the admin API, used by `strata key …` while a server owns the data dir:
//! requests are SigV4-signed with the root key (aws-sigv4) and sent over plain HTTP, or over
//! HTTPS trusting the certificates of a CA bundle file (rustls, ring provider).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use aws_sigv4::http_request::{sign, PayloadChecksumKind, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use crate::auth::RootKey;

pub struct AdminClient {
    pub endpoint: String,
    pub root: RootKey,
    pub region: String,
    /// PEM certificates to trust for an `https://` endpoint (e.g. a `strata dev-cert`
    /// certificate, or the CA that issued the server's).
    pub ca_bundle: Option<PathBuf>,
}

impl AdminClient {
    /// Sends a signed request to `path` (under the endpoint); returns status and body.
    pub async fn call(&self, method: &str, path_and_query: &str) -> anyhow::Result<(u16, String)> {
        let resp = self.send(method, path_and_query).await?;
        let status = resp.status().as_u16();
        let body = resp.into_body().collect().await?.to_bytes();
        Ok((status, String::from_utf8_lossy(&body).into_owned()))
    }

    /// Like [`AdminClient::call`] for a streamed response: a 2xx body is handed to `on_line`
    /// line by line as it arrives (returns the status and `""`); any other status returns the
    /// whole body.
    pub async fn call_lines(
        &self,
        method: &str,
        path_and_query: &str,
        mut on_line: impl FnMut(&str),
    ) -> anyhow::Result<(u16, String)> {
        let resp = self.send(method, path_and_query).await?;
        let status = resp.status().as_u16();
        if !(200..300).contains(&status) {
            let body = resp.into_body().collect().await?.to_bytes();
            return Ok((status, String::from_utf8_lossy(&body).into_owned()));
        }
        let mut body = resp.into_body();
        let mut pending: Vec<u8> = Vec::new();
        while let Some(frame) = body.frame().await {
            let Ok(data) = frame?.into_data() else { continue };
            pending.extend_from_slice(&data);
            while let Some(nl) = pending.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = pending.drain(..=nl).collect();
                on_line(String::from_utf8_lossy(&line).trim_end());
            }
        }
        if !pending.is_empty() {
            on_line(String::from_utf8_lossy(&pending).trim_end());
        }
        Ok((status, String::new()))
    }

    async fn send(&self, method: &str, path_and_query: &str) -> anyhow::Result<http::Response<hyper::body::Incoming>> {
        let url = format!("{}{}", self.endpoint.trim_end_matches('/'), path_and_query);
        let mut req = http::Request::builder()
            .method(method)
            .uri(&url)
            .body(Full::new(Bytes::new()))?;
        let host = req
            .uri()
            .authority()
            .map(|a| a.as_str().to_string())
            .ok_or_else(|| anyhow::anyhow!("endpoint {} has no host", self.endpoint))?;
        req.headers_mut().insert(http::header::HOST, host.parse()?);

        let identity = aws_credential_types::Credentials::new(
            &self.root.access_key,
            &self.root.secret_key,
            None,
            None,
            "strata-cli",
        )
        .into();
        let mut settings = SigningSettings::default();
        settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name("s3")
            .time(SystemTime::now())
            .settings(settings)
            .build()?
            .into();
        let headers: Vec<(&str, &str)> = req
            .headers()
            .iter()
            .filter_map(|(k, v)| v.to_str().ok().map(|v| (k.as_str(), v)))
            .collect();
        let signable = SignableRequest::new(method, url.clone(), headers.into_iter(), SignableBody::Bytes(&[]))?;
        let (instructions, _) = sign(signable, &params)?.into_parts();
        instructions.apply_to_request_http1x(&mut req);

        let resp = if req.uri().scheme_str() == Some("https") {
            self.send_https(req).await?
        } else {
            let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
            client
                .request(req)
                .await
                .map_err(|e| anyhow::anyhow!("cannot reach the server at {}: {e}", self.endpoint))?
        };
        Ok(resp)
    }
}

impl AdminClient {
    /// One request over a new HTTPS connection that trusts only `ca_bundle`.
    async fn send_https(
        &self,
        mut req: http::Request<Full<Bytes>>,
    ) -> anyhow::Result<http::Response<hyper::body::Incoming>> {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, ServerName};

        let ca = self.ca_bundle.as_ref().ok_or_else(|| {
            anyhow::anyhow!(
                "{} is https: pass --ca-bundle FILE (the PEM certificate(s) to trust)",
                self.endpoint
            )
        })?;
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(ca)
            .map_err(|e| anyhow::anyhow!("cannot read CA bundle {}: {e}", ca.display()))?
        {
            let cert = cert.map_err(|e| anyhow::anyhow!("CA bundle {} is not valid PEM: {e}", ca.display()))?;
            roots
                .add(cert)
                .map_err(|e| anyhow::anyhow!("CA bundle {}: unusable certificate: {e}", ca.display()))?;
        }
        if roots.is_empty() {
            anyhow::bail!("CA bundle {} holds no PEM CERTIFICATE section", ca.display());
        }
        let mut config = rustls::ClientConfig::builder_with_provider(crate::http::tls::provider())
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];

        let host = req
            .uri()
            .host()
            .ok_or_else(|| anyhow::anyhow!("endpoint {} has no host", self.endpoint))?;
        let host = host.trim_start_matches('[').trim_end_matches(']').to_string();
        let port = req.uri().port_u16().unwrap_or(443);
        let name = ServerName::try_from(host.clone())
            .map_err(|e| anyhow::anyhow!("endpoint {}: invalid host: {e}", self.endpoint))?;
        let unreachable =
            |e: &dyn std::fmt::Display| anyhow::anyhow!("cannot reach the server at {}: {e}", self.endpoint);
        let tcp = tokio::net::TcpStream::connect((host.as_str(), port))
            .await
            .map_err(|e| unreachable(&e))?;
        let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(name, tcp)
            .await
            .map_err(|e| unreachable(&e))?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls))
            .await
            .map_err(|e| unreachable(&e))?;
        tokio::spawn(conn);
        // Origin form on the wire, as a client library would send it (signed above as is).
        let origin = req.uri().path_and_query().map_or("/", |p| p.as_str()).parse()?;
        *req.uri_mut() = origin;
        sender.send_request(req).await.map_err(|e| unreachable(&e))
    }
}
