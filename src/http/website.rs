//! The website endpoint: serves a bucket's website to anonymous GET/HEAD requests.
//!
//! Each object fetch is rewritten into an unsigned path-style GetObject/HeadObject and handed
//! to the same s3s service the S3 API uses, so the object is authorized exactly like an
//! anonymous S3 read (the `Authorizer`) and served by the normal read path (Range, If-*,
//! ETag, Content-Type, image transforms). Only what a website adds happens here: index
//! documents, the `dir` → `dir/` redirect, redirect-all and routing rules (resolved by
//! `crate::model::website`), `x-amz-website-redirect-location`, and turning S3's XML errors into the
//! error document or an HTML error page.

use hyper::body::Incoming;
use s3s::service::S3Service;
use s3s::Body;

use crate::auth::ClientInfo;
use crate::model::website::{self, WebsiteConfig};
use crate::store::Store;

/// Request headers a website fetch passes on to the object read; everything else (signatures,
/// `x-amz-*` such as SSE-C keys) is dropped, as website endpoints ignore authentication.
const PASSED_HEADERS: [&str; 8] = [
    "range",
    "if-match",
    "if-none-match",
    "if-modified-since",
    "if-unmodified-since",
    "accept",
    "referer",
    "user-agent",
];

/// Of those, the ones that also apply to the error document and the directory probe.
const PASSED_TO_DOCUMENTS: [&str; 3] = ["accept", "referer", "user-agent"];

const HTML: &str = "text/html; charset=utf-8";

/// Where website requests come from: the main listener (host-based only) or a website-only
/// listener.
#[derive(Clone, Debug)]
pub struct WebsiteHosts {
    /// `website.domain`.
    pub domain: String,
    /// Every request on this listener is a website request.
    pub every_request: bool,
}

/// The Host of a request (HTTP/2 carries it in the URI's authority).
fn host_of(req: &http::Request<Incoming>) -> Option<String> {
    req.headers()
        .get(http::header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or_else(|| req.uri().authority().map(|a| a.as_str().to_string()))
}

impl WebsiteHosts {
    /// The bucket if `req` is a website request.
    pub fn bucket(&self, req: &http::Request<Incoming>) -> Option<String> {
        if self.domain.is_empty() && !self.every_request {
            return None;
        }
        let host = host_of(req)?;
        website::bucket_from_host(&host, &self.domain, self.every_request)
    }
}

fn html_error(status: http::StatusCode, code: &str, message: &str, details: &[(&str, &str)]) -> http::Response<Body> {
    let page = website::error_page(status.as_u16(), code, message, details);
    let mut resp = http::Response::new(Body::from(page));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static(HTML));
    resp
}

fn redirect(location: &str, status: u16) -> http::Response<Body> {
    let mut resp = http::Response::new(Body::empty());
    *resp.status_mut() = http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::MOVED_PERMANENTLY);
    match http::HeaderValue::from_str(location) {
        Ok(v) => {
            resp.headers_mut().insert(http::header::LOCATION, v);
        }
        Err(_) => {
            return html_error(
                http::StatusCode::INTERNAL_SERVER_ERROR,
                "InternalError",
                "The redirect location is not a valid header value",
                &[],
            )
        }
    }
    resp
}

/// The transform parameters of the query (`w`, `f`, …); S3's website endpoint ignores any
/// other query parameter, so nothing else reaches the object read.
fn transform_query(query: Option<&str>) -> String {
    crate::util::query::params(query.unwrap_or(""))
        .filter(|p| {
            crate::util::query::decode_strict(p.raw_name)
                .is_some_and(|n| crate::transform::params::TRANSFORM_PARAMS.contains(&n.as_str()))
        })
        .map(|p| p.raw)
        .collect::<Vec<_>>()
        .join("&")
}

/// One anonymous object read through the s3s service.
struct Fetch<'a> {
    service: &'a S3Service,
    bucket: &'a str,
    client: ClientInfo,
    headers: &'a http::HeaderMap,
}

impl Fetch<'_> {
    async fn call(&self, method: &http::Method, key: &str, query: &str, pass: &[&str]) -> http::Response<Body> {
        let mut uri = format!("/{}/{}", self.bucket, website::encode_key(key));
        if !query.is_empty() {
            uri.push('?');
            uri.push_str(query);
        }
        let mut builder = http::Request::builder()
            .method(method.clone())
            .uri(uri)
            // An IP literal: s3s parses the path style whatever `domain` is configured.
            .header(http::header::HOST, "127.0.0.1");
        for name in pass {
            for v in self.headers.get_all(*name) {
                builder = builder.header(*name, v);
            }
        }
        let mut req = match builder.body(Body::empty()) {
            Ok(r) => r,
            Err(_) => {
                return html_error(
                    http::StatusCode::BAD_REQUEST,
                    "InvalidURI",
                    "Couldn't parse the specified URI.",
                    &[],
                )
            }
        };
        req.extensions_mut().insert(self.client);
        match self.service.call(req).await {
            Ok(resp) => resp,
            Err(e) => {
                tracing::error!(error = ?e, "website fetch failed without an S3 response");
                html_error(
                    http::StatusCode::INTERNAL_SERVER_ERROR,
                    "InternalError",
                    "We encountered an internal error. Please try again.",
                    &[],
                )
            }
        }
    }
}

/// The `<Code>` and `<Message>` of an S3 XML error body (error bodies are in memory).
fn xml_error(resp: &http::Response<Body>) -> (String, String) {
    let text = resp
        .body()
        .bytes()
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    let element = |name: &str| {
        let open = format!("<{name}>");
        let close = format!("</{name}>");
        text.split_once(&open)
            .and_then(|(_, rest)| rest.split_once(&close))
            .map(|(v, _)| {
                v.replace("&lt;", "<")
                    .replace("&gt;", ">")
                    .replace("&quot;", "\"")
                    .replace("&apos;", "'")
                    .replace("&amp;", "&")
            })
    };
    let fallback = resp.status().canonical_reason().unwrap_or("Error");
    (
        element("Code").unwrap_or_else(|| fallback.to_string()),
        element("Message").unwrap_or_else(|| fallback.to_string()),
    )
}

/// Serves one website request for `bucket`.
pub async fn serve(
    service: &S3Service,
    store: &Store,
    bucket: &str,
    client: ClientInfo,
    req: http::Request<Incoming>,
) -> http::Response<Body> {
    let record = match store.meta.bucket(bucket) {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, bucket, "bucket lookup failed for a website request");
            return html_error(
                http::StatusCode::INTERNAL_SERVER_ERROR,
                "InternalError",
                "We encountered an internal error. Please try again.",
                &[],
            );
        }
    };
    let Some(record) = record else {
        return html_error(
            http::StatusCode::NOT_FOUND,
            "NoSuchBucket",
            "The specified bucket does not exist",
            &[("BucketName", bucket)],
        );
    };
    let method = req.method().clone();
    let mut resp = if method != http::Method::GET && method != http::Method::HEAD {
        let mut resp = html_error(
            http::StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            "The specified method is not allowed against this resource.",
            &[("Method", method.as_str()), ("ResourceType", "OBJECT")],
        );
        resp.headers_mut()
            .insert(http::header::ALLOW, http::HeaderValue::from_static("GET, HEAD"));
        resp
    } else {
        match &record.website {
            None => html_error(
                http::StatusCode::NOT_FOUND,
                "NoSuchWebsiteConfiguration",
                "The specified bucket does not have a website configuration",
                &[("BucketName", bucket)],
            ),
            Some(config) => serve_configured(service, bucket, config, client, &req).await,
        }
    };
    // CORS applies as on the S3 endpoint: the bucket's rules decorate every answer.
    let origin = req.headers().get("origin").and_then(|v| v.to_str().ok());
    if let (Some(origin), Some(rules)) = (origin, record.cors.as_deref()) {
        if let Some(cors) = crate::model::cors::actual(rules, origin, method.as_str()) {
            cors.apply(resp.headers_mut());
        }
    }
    resp
}

async fn serve_configured(
    service: &S3Service,
    bucket: &str,
    config: &WebsiteConfig,
    client: ClientInfo,
    req: &http::Request<Incoming>,
) -> http::Response<Body> {
    let Ok(key) = urlencoding::decode(req.uri().path().trim_start_matches('/')) else {
        return html_error(
            http::StatusCode::BAD_REQUEST,
            "InvalidURI",
            "Couldn't parse the specified URI.",
            &[],
        );
    };
    let host = host_of(req).unwrap_or_default();
    let scheme = if client.secure { "https" } else { "http" };
    let wreq = website::Request {
        key: &key,
        scheme,
        host: &host,
    };
    let fetch_key = match config.first_step(&wreq) {
        website::Step::Redirect { location, status } => return redirect(&location, status),
        website::Step::Fetch { key } => key,
    };
    let fetch = Fetch {
        service,
        bucket,
        client,
        headers: req.headers(),
    };
    let method = req.method();
    let resp = fetch
        .call(method, &fetch_key, &transform_query(req.uri().query()), &PASSED_HEADERS)
        .await;
    let status = resp.status();
    if status.is_success() || status.is_redirection() {
        // An object can name its own redirect (`x-amz-website-redirect-location`).
        if let Some(location) = resp
            .headers()
            .get("x-amz-website-redirect-location")
            .and_then(|v| v.to_str().ok())
            .filter(|l| !l.is_empty())
        {
            return redirect(location, 301);
        }
        return resp;
    }
    let (code, message) = xml_error(&resp);
    if status == http::StatusCode::NOT_FOUND {
        // `dir` when `dir/index.html` exists: S3 redirects to the "directory".
        if let Some(index) = config.directory_index(&key) {
            let probe = fetch.call(&http::Method::HEAD, &index, "", &PASSED_TO_DOCUMENTS).await;
            if probe.status() == http::StatusCode::OK {
                return redirect(&format!("/{}/", website::encode_key(&key)), 302);
            }
        }
    }
    if let Some((location, redirect_status)) = config.on_error(&wreq, status.as_u16()) {
        return redirect(&location, redirect_status);
    }
    if status.is_client_error() {
        if let Some(error_key) = &config.error_key {
            let mut doc = fetch.call(method, error_key, "", &PASSED_TO_DOCUMENTS).await;
            if doc.status() == http::StatusCode::OK {
                // The error document's body with the error's status; its validators would
                // make caches treat the error as the document.
                *doc.status_mut() = status;
                for name in ["etag", "last-modified", "accept-ranges", "x-amz-version-id"] {
                    doc.headers_mut().remove(name);
                }
                return doc;
            }
        }
    }
    let mut details: Vec<(&str, &str)> = Vec::new();
    if code == "NoSuchKey" {
        details.push(("Key", &fetch_key));
    }
    html_error(status, &code, &message, &details)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_transform_parameters_reach_the_object_read() {
        assert_eq!(transform_query(Some("w=100&f=png")), "w=100&f=png");
        assert_eq!(
            transform_query(Some("utm_source=x&w=120&versionId=abc&acl&f=png")),
            "w=120&f=png"
        );
        assert_eq!(transform_query(Some("X-Amz-Signature=00&uploads")), "");
        assert_eq!(transform_query(None), "");
    }

    #[test]
    #[allow(clippy::disallowed_methods)] // a message with markup, to test the XML reading
    fn xml_errors_are_read_for_the_html_page() {
        let mut e = s3s::S3Error::with_message(s3s::S3ErrorCode::NoSuchKey, "The key <x> does not exist.");
        e.set_status_code(http::StatusCode::NOT_FOUND);
        let resp = e.to_http_response().expect("error response");
        assert_eq!(
            xml_error(&resp),
            ("NoSuchKey".to_string(), "The key <x> does not exist.".to_string())
        );
        let mut bare = http::Response::new(Body::empty());
        *bare.status_mut() = http::StatusCode::FORBIDDEN;
        assert_eq!(xml_error(&bare), ("Forbidden".to_string(), "Forbidden".to_string()));
    }
}
