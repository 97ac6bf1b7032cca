//! Client side of the admin API, used by `strata key …` while a server owns the data dir:
//! requests are SigV4-signed with the root key (aws-sigv4) and sent over plain HTTP.

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
}

impl AdminClient {
    /// Sends a signed request to `path` (under the endpoint); returns status and body.
    pub async fn call(&self, method: &str, path_and_query: &str) -> anyhow::Result<(u16, String)> {
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

        let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
        let resp = client
            .request(req)
            .await
            .map_err(|e| anyhow::anyhow!("cannot reach the server at {}: {e}", self.endpoint))?;
        let status = resp.status().as_u16();
        let body = resp.into_body().collect().await?.to_bytes();
        Ok((status, String::from_utf8_lossy(&body).into_owned()))
    }
}
