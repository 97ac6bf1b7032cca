//! The signing-region pre-check, in front of the s3s service: the region in a SigV4 credential
//! scope must be the server's (`cfg.region`), as on AWS. s3s itself verifies a signature with
//! whatever region the client put in its scope and then only refuses region strings outside
//! `[a-z0-9-]`, so a client signing for `eu-west-1` would be served silently and one signing
//! for `US` (s3cmd's default `bucket_location`) would get a confusing `InvalidRequest`.
//!
//! What this module owns:
//!
//! - Finding the credential scope of a SigV4 request, in the same order s3s looks: a POST form
//!   upload, SigV2 (header `AWS …` or query `Signature`) and unsigned requests pass untouched;
//!   then a presigned URL (`X-Amz-Signature` in the query, `X-Amz-Credential` holding the
//!   scope), then `Authorization: AWS4-HMAC-SHA256 Credential=AK/DATE/REGION/SERVICE/aws4_request,
//!   SignedHeaders=…, Signature=…`. A scope that does not parse is left to s3s's own errors.
//! - The server's region passes. Any other region gets AWS's answer before s3s sees the request:
//!   `400 AuthorizationHeaderMalformed` ("The authorization header is malformed; the region 'X'
//!   is wrong; expecting 'Y'") for header signatures, `400 AuthorizationQueryParametersError`
//!   ("Error parsing the X-Amz-Credential parameter; the region 'X' is wrong; expecting 'Y'")
//!   for presigned URLs, both with `<Region>Y</Region>` in the body, which clients such as
//!   s3cmd read to retry in the right region.
//! - `US`, the legacy name of us-east-1, when the server's region is `us-east-1` (MinIO accepts
//!   it too). s3s cannot be told to accept it, so we **verify, then re-sign**: we build the
//!   SigV4 canonical request of the received request the way s3s does (method; canonical URI =
//!   the raw path percent-decoded and encoded once, no normalisation, with s3s's fallback to the
//!   raw path as sent when it holds unencoded reserved characters; the canonical query string;
//!   the headers listed in SignedHeaders with trimmed and collapsed values; SignedHeaders; the
//!   payload hash), verify the client's signature over it with region `US` and the secret from
//!   the server's key lookup ([`crate::auth::KeyAuth`]) in constant time (`ring::hmac::verify`),
//!   and only if it matches sign the same canonical request with the scope
//!   `DATE/us-east-1/SERVICE/aws4_request`, replacing Credential and Signature in the
//!   Authorization header. A presigned URL's canonical query string contains `X-Amz-Credential`
//!   itself, so there the new signature covers the canonical request with the new credential
//!   value, and `X-Amz-Credential` and `X-Amz-Signature` are replaced in the query.
//!
//! **Why re-signing accepts nothing the client did not sign.** We produce a valid signature for
//! exactly one canonical request C (for a presigned URL: C with the credential value replaced by
//! ours), and only after checking that the client signed C with the secret of the access key it
//! names. s3s then verifies the rewritten request from scratch: it computes its own canonical
//! request C' from the bytes it receives and accepts only if our signature matches C', i.e.
//! (HMAC-SHA256 being a PRF) only if C' = C. So every element s3s treats as signed — method,
//! path, query, signed headers, payload hash, date — is what the client signed; if our
//! canonicalisation ever differed from s3s's, the result is a refusal (s3s's
//! SignatureDoesNotMatch), never an acceptance. The body's hash, aws-chunked framing and the
//! clock-skew and expiry checks stay with s3s, unchanged.
//!
//! **What is and is not accepted with `US`.** Header signatures whose `x-amz-content-sha256` is
//! a hex SHA-256, `UNSIGNED-PAYLOAD` or `STREAMING-UNSIGNED-PAYLOAD-TRAILER` (aws-chunked without
//! chunk signatures: aws-sdk-s3 sends streamed bodies so over HTTPS), and presigned URLs.
//! Not accepted: signed streaming payloads (`STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER]`, and
//! the ECDSA variants), whose every chunk signature is chained from the seed signature under the
//! client's scope and so cannot be re-signed without re-signing the body (aws-sdk-s3 sends
//! streamed bodies so over plain HTTP, and does not follow the hint); an unknown access
//! key; a signature that does not verify under our canonicalisation; a header or date we cannot
//! parse. Those get `AuthorizationHeaderMalformed` / `AuthorizationQueryParametersError` with
//! `<Region>us-east-1</Region>`, so a client that follows the hint retries with us-east-1.

use std::sync::Arc;

use http::{HeaderMap, HeaderValue, Method, Uri, Version};
use percent_encoding::{percent_decode_str, percent_encode, AsciiSet, NON_ALPHANUMERIC};
use ring::{digest, hmac};
use s3s::auth::S3Auth;

/// The name s3cmd (`bucket_location = US`) and some old SDKs sign us-east-1 requests with.
pub const LEGACY_US: &str = "US";
/// The region `US` stands for.
pub const US_EAST_1: &str = "us-east-1";
const ALGORITHM: &str = "AWS4-HMAC-SHA256";
const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";
const STREAMING_UNSIGNED_TRAILER: &str = "STREAMING-UNSIGNED-PAYLOAD-TRAILER";

/// SigV4's unreserved characters are kept, everything else is `%XX` (upper-case hex).
const ENCODE_ALL: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');
/// The same, keeping `/` (the canonical URI).
const ENCODE_PATH: &AsciiSet = &ENCODE_ALL.remove(b'/');

/// The pre-check: the server's region and where secrets come from.
pub struct SigningRegion {
    region: String,
    keys: Arc<dyn S3Auth>,
}

/// Where a SigV4 request carries its signature.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Carrier {
    /// The `Authorization` header.
    Header,
    /// The query string (`X-Amz-Signature`, `X-Amz-Credential`, …).
    Presigned,
}

/// A SigV4 signature found on a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scope {
    pub carrier: Carrier,
    pub algorithm: String,
    pub access_key: String,
    /// `YYYYMMDD` of the credential scope.
    pub date: String,
    pub region: String,
    pub service: String,
    /// As listed (`None` when a presigned URL has no `X-Amz-SignedHeaders`).
    pub signed_headers: Option<Vec<String>>,
    pub signature: String,
}

/// A request refused for its signing region: AWS's answer, naming the region to use.
#[derive(Debug, PartialEq, Eq)]
pub struct Refusal {
    pub carrier: Carrier,
    /// The region the client signed with.
    pub got: String,
    /// The region it should sign with.
    pub expected: String,
}

impl Refusal {
    /// `400` with `AuthorizationHeaderMalformed` or `AuthorizationQueryParametersError`, the
    /// message AWS sends, and `<Region>` after the message, in s3s's XML error form.
    pub fn response(&self, request_id: &str) -> http::Response<s3s::Body> {
        let mut err = match self.carrier {
            Carrier::Header => crate::util::errors::authorization_header_malformed(format!(
                "The authorization header is malformed; the region '{}' is wrong; expecting '{}'",
                self.got, self.expected
            )),
            Carrier::Presigned => crate::util::errors::authorization_query_parameters_error(format!(
                "Error parsing the X-Amz-Credential parameter; the region '{}' is wrong; expecting '{}'",
                self.got, self.expected
            )),
        };
        err.set_request_id(request_id);
        let mut resp = match err.to_http_response() {
            Ok(resp) => resp,
            Err(e) => {
                tracing::error!(error = %e, "cannot serialize a signing-region refusal");
                let mut resp = http::Response::new(s3s::Body::from("wrong signing region\n".to_string()));
                *resp.status_mut() = http::StatusCode::BAD_REQUEST;
                return resp;
            }
        };
        // s3s's error element has no field for <Region>: add it where AWS puts it.
        let region = format!("<Region>{}</Region>", xml_escape(&self.expected));
        if let Some(xml) = resp.body().bytes().map(|b| String::from_utf8_lossy(&b).into_owned()) {
            let at = xml
                .find("<RequestId>")
                .or_else(|| xml.rfind("</Error>"))
                .unwrap_or(xml.len());
            let mut with_region = xml;
            with_region.insert_str(at, &region);
            *resp.body_mut() = s3s::Body::from(with_region);
        }
        resp
    }
}

fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

impl SigningRegion {
    pub fn new(region: impl Into<String>, keys: Arc<dyn S3Auth>) -> Self {
        SigningRegion {
            region: region.into(),
            keys,
        }
    }

    /// Passes the request (possibly re-signed for us-east-1, see the module doc) or refuses it.
    pub async fn check<B>(&self, req: &mut http::Request<B>) -> Result<(), Refusal> {
        let Some(scope) = find_scope(req.method(), req.uri(), req.headers()) else {
            return Ok(());
        };
        if scope.region == self.region {
            return Ok(());
        }
        if scope.region == LEGACY_US && self.region == US_EAST_1 {
            match self.resign(req, &scope).await {
                Ok(()) => return Ok(()),
                Err(why) => {
                    let payload = unique_header(req.headers(), "x-amz-content-sha256").unwrap_or("none");
                    tracing::debug!(
                        reason = why,
                        access_key = %scope.access_key,
                        payload = %payload,
                        "region US not accepted"
                    );
                    return Err(Refusal {
                        carrier: scope.carrier,
                        got: scope.region,
                        expected: US_EAST_1.to_string(),
                    });
                }
            }
        }
        Err(Refusal {
            carrier: scope.carrier,
            got: scope.region,
            expected: self.region.clone(),
        })
    }

    async fn resign<B>(&self, req: &mut http::Request<B>, scope: &Scope) -> Result<(), &'static str> {
        let secret = self
            .keys
            .get_secret_key(&scope.access_key)
            .await
            .map_err(|_| "unknown access key")?;
        let rewrite = resign_for(
            req.method(),
            req.uri(),
            req.version(),
            req.headers(),
            scope,
            secret.expose(),
            US_EAST_1,
        )?;
        match rewrite {
            Rewrite::Authorization(value) => {
                let value = HeaderValue::from_str(&value).map_err(|_| "unrepresentable header")?;
                req.headers_mut().insert(http::header::AUTHORIZATION, value);
            }
            Rewrite::Uri(uri) => *req.uri_mut() = uri,
        }
        let payload = match unique_header(req.headers(), "x-amz-content-sha256") {
            Some(p) if p.len() == 64 => "sha256",
            Some(p) => p,
            None => "none",
        };
        tracing::debug!(
            access_key = %scope.access_key,
            carrier = ?scope.carrier,
            payload = %payload,
            "re-signed a request signed for US as us-east-1"
        );
        Ok(())
    }
}

/// What to change in a request that verified under one region so it verifies under another.
#[derive(Debug)]
pub enum Rewrite {
    /// The new `Authorization` header value.
    Authorization(String),
    /// The URI with the new `X-Amz-Credential` and `X-Amz-Signature`.
    Uri(Uri),
}

/// The SigV4 signature of a request, if it has one, as s3s finds it (see the module doc).
pub fn find_scope(method: &Method, uri: &Uri, headers: &HeaderMap) -> Option<Scope> {
    if *method == Method::POST && is_form_upload(headers) {
        return None;
    }
    let query = query_pairs(uri.query().unwrap_or(""));
    if query.iter().any(|(n, _)| n == "Signature") {
        return None; // SigV2 presigned
    }
    let authorization = unique_header(headers, "authorization");
    if authorization.is_some_and(|a| a.starts_with("AWS ")) {
        return None; // SigV2 header
    }
    if query.iter().any(|(n, _)| n == "X-Amz-Signature") {
        let credential = unique_param(&query, "X-Amz-Credential")?;
        let (access_key, date, region, service) = parse_credential(credential)?;
        return Some(Scope {
            carrier: Carrier::Presigned,
            algorithm: unique_param(&query, "X-Amz-Algorithm").unwrap_or("").to_string(),
            access_key,
            date,
            region,
            service,
            signed_headers: unique_param(&query, "X-Amz-SignedHeaders")
                .map(|s| s.split(';').map(str::to_string).collect()),
            signature: unique_param(&query, "X-Amz-Signature").unwrap_or("").to_string(),
        });
    }
    parse_authorization(authorization?)
}

fn is_form_upload(headers: &HeaderMap) -> bool {
    unique_header(headers, "content-type").is_some_and(|ct| {
        let essence = ct.split(';').next().unwrap_or("").trim();
        essence.eq_ignore_ascii_case("multipart/form-data")
    })
}

/// The value of a header that appears exactly once (s3s ignores repeated auth headers).
fn unique_header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    let mut values = headers.get_all(name).iter();
    let first = values.next()?;
    if values.next().is_some() {
        return None;
    }
    first.to_str().ok()
}

fn unique_param<'a>(query: &'a [(String, String)], name: &str) -> Option<&'a str> {
    let mut values = query.iter().filter(|(n, _)| n == name);
    let first = values.next()?;
    if values.next().is_some() {
        return None;
    }
    Some(first.1.as_str())
}

/// `AK/YYYYMMDD/REGION/SERVICE/aws4_request` → (access key, date, region, service).
fn parse_credential(credential: &str) -> Option<(String, String, String, String)> {
    let mut parts = credential.split('/');
    let access_key = parts.next()?;
    let date = parts.next()?;
    let region = parts.next()?;
    let service = parts.next()?;
    if parts.next()? != "aws4_request" || parts.next().is_some() {
        return None;
    }
    if date.len() != 8 || !date.bytes().all(|b| b.is_ascii_digit()) || service.is_empty() {
        return None;
    }
    Some((access_key.into(), date.into(), region.into(), service.into()))
}

/// `AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…` (spaces after the commas
/// optional). Other algorithms and unparsable values are left to s3s.
fn parse_authorization(value: &str) -> Option<Scope> {
    let rest = value.strip_prefix(ALGORITHM)?;
    if !rest.starts_with(|c: char| c.is_ascii_whitespace()) {
        return None;
    }
    let (mut credential, mut signed_headers, mut signature) = (None, None, None);
    for part in rest.split(',') {
        let part = part.trim();
        if let Some(v) = part.strip_prefix("Credential=") {
            credential = Some(v);
        } else if let Some(v) = part.strip_prefix("SignedHeaders=") {
            signed_headers = Some(v);
        } else if let Some(v) = part.strip_prefix("Signature=") {
            signature = Some(v);
        }
    }
    let (access_key, date, region, service) = parse_credential(credential?)?;
    Some(Scope {
        carrier: Carrier::Header,
        algorithm: ALGORITHM.to_string(),
        access_key,
        date,
        region,
        service,
        signed_headers: signed_headers.map(|s| s.split(';').map(str::to_string).collect()),
        signature: signature.unwrap_or("").to_string(),
    })
}

/// The query string decoded as s3s decodes it (`application/x-www-form-urlencoded`: `+` is a
/// space, empty pairs skipped, invalid UTF-8 replaced).
pub fn query_pairs(query: &str) -> Vec<(String, String)> {
    crate::util::query::pairs(query)
}

fn encode(s: &str, set: &'static AsciiSet) -> String {
    percent_encode(s.as_bytes(), set).to_string()
}

/// Characters s3s treats as a sign that the client signed the path as sent, unencoded.
fn has_unencoded_reserved(path: &str) -> bool {
    path.bytes()
        .any(|b| !(b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'/' | b'%')))
}

/// The canonical URIs s3s tries, in its order: the path decoded and encoded once, then (only
/// when it holds unencoded reserved characters) the raw path as sent.
fn canonical_uris(raw_path: &str) -> Result<Vec<String>, &'static str> {
    let decoded = percent_decode_str(raw_path)
        .decode_utf8()
        .map_err(|_| "path is not UTF-8")?;
    let mut uris = vec![encode(&decoded, ENCODE_PATH)];
    if has_unencoded_reserved(raw_path) && uris[0] != raw_path {
        uris.push(raw_path.to_string());
    }
    Ok(uris)
}

/// The canonical query string of decoded pairs (all of them: leave out `X-Amz-Signature`
/// before calling for a presigned URL). Sorted by encoded name; equal names keep their order.
pub fn canonical_query(pairs: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> = pairs.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    let mut encoded: Vec<(String, String)> = sorted
        .into_iter()
        .map(|(n, v)| (encode(n, ENCODE_ALL), encode(v, ENCODE_ALL)))
        .collect();
    encoded.sort_by(|a, b| a.0.cmp(&b.0));
    encoded
        .iter()
        .map(|(n, v)| format!("{n}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// Trims and collapses runs of whitespace to one space.
fn normalize_value(value: &str) -> String {
    value.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The canonical headers block (each line ending in `\n`) and the SignedHeaders line of the
/// listed headers present in the request, as s3s builds them: values of a repeated header
/// joined by `,`, values that are not UTF-8 ignored, `authorization` skipped, `host` taken from
/// the URI's authority on HTTP/2 when absent.
fn canonical_headers(
    names: &[String],
    headers: &HeaderMap,
    uri: &Uri,
    version: Version,
) -> Result<(String, String), &'static str> {
    let mut block = String::new();
    let mut listed: Vec<&str> = Vec::new();
    for name in names {
        if name == "authorization" || listed.contains(&name.as_str()) {
            continue;
        }
        if name.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err("signed header names must be lower case");
        }
        let mut values: Vec<String> = headers
            .get_all(name.as_str())
            .iter()
            .filter_map(|v| std::str::from_utf8(v.as_bytes()).ok())
            .map(normalize_value)
            .collect();
        if values.is_empty() && name == "host" && version >= Version::HTTP_2 {
            if let Some(authority) = uri.authority() {
                values.push(normalize_value(authority.as_str()));
            }
        }
        if values.is_empty() {
            continue;
        }
        block.push_str(name);
        block.push(':');
        block.push_str(&values.join(","));
        block.push('\n');
        listed.push(name);
    }
    Ok((block, listed.join(";")))
}

/// A SigV4 canonical request from its parts (`canonical_headers` ends in `\n`).
pub fn canonical_request(
    method: &str,
    canonical_uri: &str,
    canonical_query: &str,
    canonical_headers: &str,
    signed_headers: &str,
    payload: &str,
) -> String {
    format!("{method}\n{canonical_uri}\n{canonical_query}\n{canonical_headers}\n{signed_headers}\n{payload}")
}

/// `AWS4-HMAC-SHA256\n<amz-date>\n<date>/<region>/<service>/aws4_request\n<hex sha256(C)>`.
pub fn string_to_sign(amz_date: &str, date: &str, region: &str, service: &str, canonical: &str) -> String {
    let hash = hex::encode(digest::digest(&digest::SHA256, canonical.as_bytes()));
    format!("{ALGORITHM}\n{amz_date}\n{date}/{region}/{service}/aws4_request\n{hash}")
}

/// The SigV4 signing key for one day, region and service.
pub fn signing_key(secret: &str, date: &str, region: &str, service: &str) -> hmac::Key {
    let step = |key: &[u8], data: &str| hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), data.as_bytes());
    let k_date = step(format!("AWS4{secret}").as_bytes(), date);
    let k_region = step(k_date.as_ref(), region);
    let k_service = step(k_region.as_ref(), service);
    let k_signing = step(k_service.as_ref(), "aws4_request");
    hmac::Key::new(hmac::HMAC_SHA256, k_signing.as_ref())
}

/// The hex signature of a string to sign.
pub fn sign(key: &hmac::Key, string_to_sign: &str) -> String {
    hex::encode(hmac::sign(key, string_to_sign.as_bytes()))
}

/// `YYYYMMDDTHHMMSSZ`, exactly (s3s re-formats the date it parsed into the string to sign, so
/// only this form is sure to mean the same bytes to both of us).
fn valid_amz_date(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 16 && b[8] == b'T' && b[15] == b'Z' && b[..8].iter().chain(&b[9..15]).all(u8::is_ascii_digit)
}

/// Verifies the request's signature under its own scope (`scope.region`) with `secret`, and
/// returns what makes it a request signed for `new_region` over the same canonical request.
/// Errors say what could not be verified.
pub fn resign_for(
    method: &Method,
    uri: &Uri,
    version: Version,
    headers: &HeaderMap,
    scope: &Scope,
    secret: &str,
    new_region: &str,
) -> Result<Rewrite, &'static str> {
    if scope.algorithm != ALGORITHM {
        return Err("unknown algorithm");
    }
    let client_signature = decode_signature(&scope.signature).ok_or("malformed signature")?;
    let names = scope.signed_headers.as_deref().ok_or("no signed headers")?;
    let query = query_pairs(uri.query().unwrap_or(""));
    let (amz_date, payload, mut query_for_signing) = match scope.carrier {
        Carrier::Header => {
            let amz_date = unique_header(headers, "x-amz-date").ok_or("no x-amz-date")?;
            let payload = unique_header(headers, "x-amz-content-sha256").ok_or("no x-amz-content-sha256")?;
            let payload_ok = payload == UNSIGNED_PAYLOAD
                || payload == STREAMING_UNSIGNED_TRAILER
                || (payload.len() == 64 && payload.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')));
            if !payload_ok {
                return Err("signed streaming or unknown payload");
            }
            (amz_date, payload, query.clone())
        }
        Carrier::Presigned => {
            let amz_date = unique_param(&query, "X-Amz-Date").ok_or("no X-Amz-Date")?;
            let rest: Vec<(String, String)> = query.iter().filter(|(n, _)| n != "X-Amz-Signature").cloned().collect();
            (amz_date, UNSIGNED_PAYLOAD, rest)
        }
    };
    if !valid_amz_date(amz_date) || amz_date[..8] != scope.date {
        return Err("malformed date");
    }
    let mut sorted_names = names.to_vec();
    if scope.carrier == Carrier::Header {
        sorted_names.sort();
    }
    let (header_block, signed_line) = canonical_headers(&sorted_names, headers, uri, version)?;
    let old_key = signing_key(secret, &scope.date, &scope.region, &scope.service);
    let new_key = signing_key(secret, &scope.date, new_region, &scope.service);

    for canonical_uri in canonical_uris(uri.path())? {
        let canonical = |query: &[(String, String)]| {
            canonical_request(
                method.as_str(),
                &canonical_uri,
                &canonical_query(query),
                &header_block,
                &signed_line,
                payload,
            )
        };
        let old = canonical(&query_for_signing);
        let sts = string_to_sign(amz_date, &scope.date, &scope.region, &scope.service, &old);
        if hmac::verify(&old_key, sts.as_bytes(), &client_signature).is_err() {
            continue;
        }
        let credential = format!(
            "{}/{}/{new_region}/{}/aws4_request",
            scope.access_key, scope.date, scope.service
        );
        return Ok(match scope.carrier {
            Carrier::Header => {
                let sts = string_to_sign(amz_date, &scope.date, new_region, &scope.service, &old);
                let signature = sign(&new_key, &sts);
                Rewrite::Authorization(format!(
                    "{ALGORITHM} Credential={credential}, SignedHeaders={}, Signature={signature}",
                    names.join(";")
                ))
            }
            Carrier::Presigned => {
                for pair in query_for_signing.iter_mut().filter(|(n, _)| n == "X-Amz-Credential") {
                    pair.1 = credential.clone();
                }
                let new = canonical(&query_for_signing);
                let sts = string_to_sign(amz_date, &scope.date, new_region, &scope.service, &new);
                let signature = sign(&new_key, &sts);
                Rewrite::Uri(with_query_params(uri, &credential, &signature)?)
            }
        });
    }
    Err("signature does not match")
}

/// 64 lower-case hex digits → 32 bytes.
fn decode_signature(hex_sig: &str) -> Option<Vec<u8>> {
    if hex_sig.len() != 64 || !hex_sig.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    hex::decode(hex_sig).ok()
}

/// `uri` with the values of `X-Amz-Credential` and `X-Amz-Signature` replaced; every other
/// byte of the query is kept as sent.
fn with_query_params(uri: &Uri, credential: &str, signature: &str) -> Result<Uri, &'static str> {
    let rewritten = crate::util::query::replace_values(uri.query().unwrap_or(""), |p| {
        if p.is("X-Amz-Credential") {
            Some(format!("X-Amz-Credential={}", encode(credential, ENCODE_ALL)))
        } else if p.is("X-Amz-Signature") {
            Some(format!("X-Amz-Signature={signature}"))
        } else {
            None
        }
    });
    let path_and_query = format!("{}?{rewritten}", uri.path());
    let mut parts = uri.clone().into_parts();
    parts.path_and_query = Some(path_and_query.parse().map_err(|_| "unrepresentable URI")?);
    Uri::from_parts(parts).map_err(|_| "unrepresentable URI")
}

#[cfg(test)]
mod tests {
    use super::*;

    // The examples of "Signature Calculations for the Authorization Header: Transferring
    // Payload in a Single Chunk" and "Query String Authentication" in the S3 API reference.
    const AK: &str = "AKIAIOSFODNN7EXAMPLE";
    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
    const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    const HOST: &str = "examplebucket.s3.amazonaws.com";

    fn request(method: &str, uri: &str, headers: &[(&str, &str)]) -> http::Request<()> {
        let mut b = http::Request::builder().method(method).uri(uri);
        for (n, v) in headers {
            b = b.header(*n, *v);
        }
        b.body(()).expect("request")
    }

    /// The canonical request of a header-signed request, built by the module's own functions.
    fn canonical_of(req: &http::Request<()>, names: &[&str], payload: &str) -> String {
        let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        let (block, line) = canonical_headers(&names, req.headers(), req.uri(), req.version()).expect("headers");
        let uri = &canonical_uris(req.uri().path()).expect("uri")[0];
        let query = canonical_query(&query_pairs(req.uri().query().unwrap_or("")));
        canonical_request(req.method().as_str(), uri, &query, &block, &line, payload)
    }

    fn signature_of(canonical: &str, region: &str) -> String {
        let sts = string_to_sign("20130524T000000Z", "20130524", region, "s3", canonical);
        sign(&signing_key(SECRET, "20130524", region, "s3"), &sts)
    }

    #[test]
    fn aws_example_get_object() {
        let req = request(
            "GET",
            "/test.txt",
            &[
                ("host", HOST),
                ("range", "bytes=0-9"),
                ("x-amz-content-sha256", EMPTY_SHA256),
                ("x-amz-date", "20130524T000000Z"),
            ],
        );
        let c = canonical_of(
            &req,
            &["host", "range", "x-amz-content-sha256", "x-amz-date"],
            EMPTY_SHA256,
        );
        assert_eq!(
            c,
            format!(
                "GET\n/test.txt\n\nhost:{HOST}\nrange:bytes=0-9\nx-amz-content-sha256:{EMPTY_SHA256}\n\
                 x-amz-date:20130524T000000Z\n\nhost;range;x-amz-content-sha256;x-amz-date\n{EMPTY_SHA256}"
            )
        );
        let sts = string_to_sign("20130524T000000Z", "20130524", "us-east-1", "s3", &c);
        assert!(sts.ends_with("\n7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972"));
        assert_eq!(
            signature_of(&c, "us-east-1"),
            "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
        );
    }

    #[test]
    fn aws_example_put_object() {
        let payload = "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072";
        let req = request(
            "PUT",
            "/test$file.text",
            &[
                ("date", "Fri, 24 May 2013 00:00:00 GMT"),
                ("host", HOST),
                ("x-amz-content-sha256", payload),
                ("x-amz-date", "20130524T000000Z"),
                ("x-amz-storage-class", "REDUCED_REDUNDANCY"),
            ],
        );
        let names = [
            "date",
            "host",
            "x-amz-content-sha256",
            "x-amz-date",
            "x-amz-storage-class",
        ];
        let c = canonical_of(&req, &names, payload);
        assert!(c.starts_with("PUT\n/test%24file.text\n\ndate:Fri, 24 May 2013 00:00:00 GMT\n"));
        assert_eq!(
            signature_of(&c, "us-east-1"),
            "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd"
        );
        // `$` unencoded in the path: the raw path is the second candidate, as in s3s.
        assert_eq!(
            canonical_uris("/test$file.text").unwrap(),
            vec!["/test%24file.text".to_string(), "/test$file.text".to_string()]
        );
    }

    #[test]
    fn aws_example_get_bucket_lifecycle() {
        let req = request(
            "GET",
            "/?lifecycle",
            &[
                ("host", HOST),
                ("x-amz-content-sha256", EMPTY_SHA256),
                ("x-amz-date", "20130524T000000Z"),
            ],
        );
        let c = canonical_of(&req, &["host", "x-amz-content-sha256", "x-amz-date"], EMPTY_SHA256);
        assert!(c.starts_with("GET\n/\nlifecycle=\n"));
        assert_eq!(
            signature_of(&c, "us-east-1"),
            "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543"
        );
    }

    #[test]
    fn aws_example_list_objects() {
        let req = request(
            "GET",
            "/?max-keys=2&prefix=J",
            &[
                ("host", HOST),
                ("x-amz-content-sha256", EMPTY_SHA256),
                ("x-amz-date", "20130524T000000Z"),
            ],
        );
        let c = canonical_of(&req, &["host", "x-amz-content-sha256", "x-amz-date"], EMPTY_SHA256);
        assert!(c.starts_with("GET\n/\nmax-keys=2&prefix=J\n"));
        assert_eq!(
            signature_of(&c, "us-east-1"),
            "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7"
        );
    }

    #[test]
    fn aws_example_presigned_get_object() {
        let query = "X-Amz-Algorithm=AWS4-HMAC-SHA256\
            &X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request\
            &X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host\
            &X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404";
        let req = request("GET", &format!("/test.txt?{query}"), &[("host", HOST)]);
        let scope = find_scope(req.method(), req.uri(), req.headers()).expect("a presigned scope");
        assert_eq!(scope.carrier, Carrier::Presigned);
        assert_eq!((scope.region.as_str(), scope.access_key.as_str()), ("us-east-1", AK));
        let pairs: Vec<_> = query_pairs(query)
            .into_iter()
            .filter(|(n, _)| n != "X-Amz-Signature")
            .collect();
        let (block, line) = canonical_headers(&["host".into()], req.headers(), req.uri(), req.version()).unwrap();
        let c = canonical_request(
            "GET",
            "/test.txt",
            &canonical_query(&pairs),
            &block,
            &line,
            UNSIGNED_PAYLOAD,
        );
        assert_eq!(
            signature_of(&c, "us-east-1"),
            "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"
        );
        // And the whole verify step accepts it (re-signing for us-east-1 is then the identity).
        let Rewrite::Uri(uri) = resign_for(
            req.method(),
            req.uri(),
            req.version(),
            req.headers(),
            &scope,
            SECRET,
            "us-east-1",
        )
        .expect("verifies") else {
            panic!("a presigned URL is rewritten in its query");
        };
        assert_eq!(uri, *req.uri());
    }

    #[test]
    fn scope_detection_follows_s3s() {
        let get = |uri: &str, headers: &[(&str, &str)]| {
            let r = request("GET", uri, headers);
            find_scope(r.method(), r.uri(), r.headers())
        };
        let v4 = "AWS4-HMAC-SHA256 Credential=AK/20250101/US/s3/aws4_request,SignedHeaders=host,Signature=00";
        let header = get("/b/k", &[("authorization", v4)]).expect("header scope");
        assert_eq!(
            (header.carrier, header.region.as_str(), header.signed_headers),
            (Carrier::Header, "US", Some(vec!["host".to_string()]))
        );
        assert_eq!(get("/b/k", &[]), None, "unsigned");
        assert_eq!(get("/b/k", &[("authorization", "AWS AK:sig")]), None, "SigV2 header");
        assert_eq!(
            get("/b/k?AWSAccessKeyId=AK&Expires=1&Signature=x", &[]),
            None,
            "SigV2 query"
        );
        assert_eq!(get("/b/k", &[("authorization", "AWS4-HMAC-SHA256 Credential=/")]), None);
        assert_eq!(
            get("/b/k", &[("authorization", v4), ("authorization", v4)]),
            None,
            "repeated"
        );
        let post = request(
            "POST",
            "/b",
            &[
                ("content-type", "multipart/form-data; boundary=x"),
                ("authorization", v4),
            ],
        );
        assert_eq!(find_scope(post.method(), post.uri(), post.headers()), None, "POST form");
        let presigned = get(
            "/b/k?X-Amz-Credential=AK%2F20250101%2Feu-west-1%2Fs3%2Faws4_request&X-Amz-Signature=00",
            &[("authorization", v4)],
        )
        .expect("presigned scope wins over the header, as in s3s");
        assert_eq!(
            (presigned.carrier, presigned.region.as_str()),
            (Carrier::Presigned, "eu-west-1")
        );
    }

    #[test]
    fn refusal_body_is_aws_shaped() {
        let r = Refusal {
            carrier: Carrier::Header,
            got: "eu-west-1".into(),
            expected: "us-east-1".into(),
        };
        let resp = r.response("ABC123");
        assert_eq!(resp.status(), 400);
        let body = String::from_utf8(resp.body().bytes().expect("in memory").to_vec()).unwrap();
        assert!(
            body.contains(
                "<Code>AuthorizationHeaderMalformed</Code><Message>The authorization header is malformed; \
             the region &apos;eu-west-1&apos; is wrong; expecting &apos;us-east-1&apos;</Message>\
             <Region>us-east-1</Region><RequestId>ABC123</RequestId></Error>"
            ) || body.contains(
                "<Code>AuthorizationHeaderMalformed</Code><Message>The authorization header is malformed; \
             the region 'eu-west-1' is wrong; expecting 'us-east-1'</Message>\
             <Region>us-east-1</Region><RequestId>ABC123</RequestId></Error>"
            ),
            "{body}"
        );
        let q = Refusal {
            carrier: Carrier::Presigned,
            got: "US".into(),
            expected: "us-east-1".into(),
        };
        let body = String::from_utf8(q.response("X").body().bytes().unwrap().to_vec()).unwrap();
        assert!(
            body.contains("<Code>AuthorizationQueryParametersError</Code>"),
            "{body}"
        );
        assert!(body.contains("Error parsing the X-Amz-Credential parameter"), "{body}");
        assert!(body.contains("<Region>us-east-1</Region>"), "{body}");
    }

    // ---- requests signed by aws-sigv4 with region US ----

    use aws_sigv4::http_request::{
        sign as sigv4_sign, PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SignatureLocation,
        SigningSettings, UriPathNormalizationMode,
    };
    use proptest::prelude::*;

    const SDK_SECRET: &str = "strata-unit-secret-0123456789";

    /// Signs `req` in place with aws-sigv4 (the S3 settings: single encoding, no path
    /// normalisation, `x-amz-content-sha256`), region `US`.
    fn sdk_sign(req: &mut http::Request<()>, body: &[u8], presigned: bool) {
        let identity = aws_credential_types::Credentials::new("AKUNIT", SDK_SECRET, None, None, "unit").into();
        let mut settings = SigningSettings::default();
        settings.percent_encoding_mode = PercentEncodingMode::Single;
        settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
        if presigned {
            settings.signature_location = SignatureLocation::QueryParams;
            settings.expires_in = Some(std::time::Duration::from_secs(600));
        } else {
            settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
        }
        let params = aws_sigv4::sign::v4::SigningParams::builder()
            .identity(&identity)
            .region(LEGACY_US)
            .name("s3")
            .time(std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_750_000_000))
            .settings(settings)
            .build()
            .expect("params")
            .into();
        let url = format!("http://127.0.0.1:9000{}", req.uri());
        let headers: Vec<(String, String)> = req
            .headers()
            .iter()
            .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap().to_string()))
            .collect();
        let signable = SignableRequest::new(
            req.method().as_str(),
            url,
            headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            if presigned {
                SignableBody::UnsignedPayload
            } else {
                SignableBody::Bytes(body)
            },
        )
        .expect("signable");
        let (instructions, _) = sigv4_sign(signable, &params).expect("sign").into_parts();
        instructions.apply_to_request_http1x(req);
    }

    fn verify(req: &http::Request<()>) -> Result<Rewrite, &'static str> {
        let scope = find_scope(req.method(), req.uri(), req.headers()).ok_or("no scope")?;
        assert_eq!(scope.region, LEGACY_US);
        resign_for(
            req.method(),
            req.uri(),
            req.version(),
            req.headers(),
            &scope,
            SDK_SECRET,
            US_EAST_1,
        )
    }

    /// A request as aws-sigv4 would sign it: a key with characters that need encoding, a query,
    /// and a few headers (values with inner runs of spaces).
    type Pairs = Vec<(String, String)>;

    fn arb_request() -> impl Strategy<Value = (String, String, Pairs, Pairs)> {
        let method = prop::sample::select(vec!["GET", "PUT", "HEAD", "DELETE", "POST"]).prop_map(str::to_string);
        let key = "[a-zA-Z0-9 _.~!$&'()*+,;=:@%-]{1,24}(/[a-zA-Z0-9 ._-]{1,8}){0,2}";
        // Distinct names: with a repeated name aws-sigv4 orders by value, s3s keeps the order sent.
        let query = prop::collection::btree_map("[a-z][a-z0-9-]{0,8}", "[a-zA-Z0-9 /+=._-]{0,12}", 0..4)
            .prop_map(|m| m.into_iter().collect::<Vec<_>>());
        let headers = prop::collection::btree_map(
            "x-amz-meta-[a-z]{1,6}",
            "[a-zA-Z0-9]{1,5}( {1,3}[a-zA-Z0-9]{1,5}){0,2}",
            0..3,
        )
        .prop_map(|m| m.into_iter().collect::<Vec<_>>());
        (method, key, query, headers)
    }

    fn build(method: &str, key: &str, query: &[(String, String)], headers: &[(String, String)]) -> http::Request<()> {
        let path = format!("/bucket/{}", encode(key, ENCODE_PATH));
        let qs: Vec<String> = query
            .iter()
            .map(|(n, v)| format!("{}={}", encode(n, ENCODE_ALL), encode(v, ENCODE_ALL)))
            .collect();
        let uri = if qs.is_empty() {
            path
        } else {
            format!("{path}?{}", qs.join("&"))
        };
        let mut b = http::Request::builder()
            .method(method)
            .uri(uri)
            .header("host", "127.0.0.1:9000");
        for (n, v) in headers {
            b = b.header(n.as_str(), v.as_str());
        }
        b.body(()).unwrap()
    }

    /// Replaces the byte at `at` (mod len) of `s` by another alphanumeric one.
    fn flip(s: &str, at: usize) -> String {
        let mut bytes = s.as_bytes().to_vec();
        let i = at % bytes.len();
        bytes[i] = if bytes[i] == b'a' { b'b' } else { b'a' };
        String::from_utf8(bytes).unwrap()
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, .. ProptestConfig::default() })]

        #[test]
        fn sdk_signed_us_requests_verify_and_any_change_does_not(
            (method, key, query, headers) in arb_request(),
            presigned in any::<bool>(),
            which in 0usize..5,
            at in any::<usize>(),
        ) {
            let mut req = build(&method, &key, &query, &headers);
            sdk_sign(&mut req, b"", presigned);
            let rewrite = verify(&req);
            prop_assert!(rewrite.is_ok(), "{:?} {:?}", rewrite, req);

            // The rewritten request verifies under us-east-1 and names it.
            let mut resigned = req.clone();
            match rewrite.unwrap() {
                Rewrite::Authorization(v) => {
                    prop_assert!(v.contains("/us-east-1/s3/aws4_request"));
                    resigned.headers_mut().insert("authorization", v.parse().unwrap());
                }
                Rewrite::Uri(u) => *resigned.uri_mut() = u,
            }
            let scope = find_scope(resigned.method(), resigned.uri(), resigned.headers()).unwrap();
            prop_assert_eq!(scope.region.as_str(), US_EAST_1);
            let again = resign_for(
                resigned.method(), resigned.uri(), resigned.version(), resigned.headers(), &scope, SDK_SECRET, US_EAST_1,
            );
            prop_assert!(again.is_ok(), "the re-signed request verifies as us-east-1: {:?}", again);

            // One byte changed in one signed element: refused.
            let mut tampered = req.clone();
            match which {
                0 => *tampered.method_mut() = if method == "GET" { Method::PUT } else { Method::GET },
                1 => {
                    // The key (changed before encoding: `%3A` and `%3a` are the same byte).
                    let query = tampered.uri().query().map(|q| format!("?{q}")).unwrap_or_default();
                    let new = format!("/bucket/{}{query}", encode(&flip(&key, at), ENCODE_PATH));
                    *tampered.uri_mut() = new.parse().unwrap();
                }
                2 => {
                    // A signed header's value (the host when there is no other).
                    let name = headers.first().map(|h| h.0.clone()).unwrap_or_else(|| "host".into());
                    let old = tampered.headers().get(&name).unwrap().to_str().unwrap().to_string();
                    tampered.headers_mut().insert(http::HeaderName::from_bytes(name.as_bytes()).unwrap(), flip(&old, at).parse().unwrap());
                }
                3 => {
                    // The date (header or query), kept well-formed.
                    let date = scope_date_time(&req);
                    let last = if date.as_bytes()[14] == b'0' { '1' } else { '0' };
                    let changed = format!("{}{last}Z", &date[..14]);
                    if presigned {
                        let q = tampered.uri().query().unwrap().replace(&date, &changed);
                        *tampered.uri_mut() = format!("{}?{q}", tampered.uri().path()).parse().unwrap();
                    } else {
                        tampered.headers_mut().insert("x-amz-date", changed.parse().unwrap());
                    }
                }
                _ => {
                    // The signature itself.
                    let sig = find_scope(req.method(), req.uri(), req.headers()).unwrap().signature;
                    let bad = flip(&sig, at);
                    if presigned {
                        let q = tampered.uri().query().unwrap().replace(&sig, &bad);
                        *tampered.uri_mut() = format!("{}?{q}", tampered.uri().path()).parse().unwrap();
                    } else {
                        let a = tampered.headers().get("authorization").unwrap().to_str().unwrap().replace(&sig, &bad);
                        tampered.headers_mut().insert("authorization", a.parse().unwrap());
                    }
                }
            }
            prop_assert!(verify(&tampered).is_err(), "tampered element {} still verified: {:?}", which, tampered);
        }

        #[test]
        fn a_changed_query_value_or_payload_hash_is_refused(
            key in "[a-z0-9]{1,12}",
            value in "[a-z0-9]{1,12}",
            at in any::<usize>(),
        ) {
            let query = vec![("prefix".to_string(), value.clone())];
            let mut req = build("GET", &key, &query, &[]);
            sdk_sign(&mut req, b"body", false);
            prop_assert!(verify(&req).is_ok());

            let mut q = req.clone();
            let pq = format!("{}?prefix={}", q.uri().path(), flip(&value, at));
            *q.uri_mut() = pq.parse().unwrap();
            prop_assert!(verify(&q).is_err());

            let mut p = req.clone();
            let hash = p.headers().get("x-amz-content-sha256").unwrap().to_str().unwrap().to_string();
            let other = flip(&hash, at);
            p.headers_mut().insert("x-amz-content-sha256", other.parse().unwrap());
            prop_assert!(verify(&p).is_err());
        }
    }

    fn scope_date_time(req: &http::Request<()>) -> String {
        if let Some(d) = req.headers().get("x-amz-date") {
            return d.to_str().unwrap().to_string();
        }
        unique_param(&query_pairs(req.uri().query().unwrap()), "X-Amz-Date")
            .unwrap()
            .to_string()
    }

    #[test]
    fn signed_streaming_and_wrong_secret_are_not_resigned() {
        let mut req = build("PUT", "k", &[], &[]);
        sdk_sign(&mut req, b"abc", false);
        let scope = find_scope(req.method(), req.uri(), req.headers()).unwrap();
        assert_eq!(
            resign_for(
                req.method(),
                req.uri(),
                req.version(),
                req.headers(),
                &scope,
                "not-the-secret",
                US_EAST_1
            )
            .err(),
            Some("signature does not match")
        );
        req.headers_mut().insert(
            "x-amz-content-sha256",
            "STREAMING-AWS4-HMAC-SHA256-PAYLOAD".parse().unwrap(),
        );
        assert_eq!(verify(&req).err(), Some("signed streaming or unknown payload"));
    }
}
