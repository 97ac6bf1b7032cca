//! Bucket CORS rules: validating a `PutBucketCors` configuration the way S3 does, giving it back
//! for `GetBucketCors`, and deciding which `Access-Control-*` headers a preflight (`OPTIONS`) or
//! an actual cross-origin request gets.
//!
//! S3's evaluation, which this follows: the *first* rule (in configuration order) whose
//! `AllowedOrigin` matches the `Origin` header, whose `AllowedMethod` holds the method (for a
//! preflight, the `Access-Control-Request-Method`), and, for a preflight only, whose
//! `AllowedHeader`s cover every name in `Access-Control-Request-Headers`, decides the answer.
//! Origins match case-sensitively, header names case-insensitively; `*` in either matches any
//! run of characters, the empty one included. A rule without `AllowedHeader` allows no
//! requested header.
//!
//! Rules are stored in the metadata store as MessagePack, hence the plain serde model.

use http::header::{self, HeaderName};
use http::{HeaderMap, HeaderValue};
use s3s::dto;
use s3s::{S3Error, S3Result};
use serde::{Deserialize, Serialize};

use crate::util::errors;

/// Most rules one configuration may hold (S3: "You can add up to 100 rules").
pub const MAX_RULES: usize = 100;
/// Longest rule ID, in characters (S3: "The value cannot be longer than 255 characters").
pub const MAX_RULE_ID_CHARS: usize = 255;
/// The only methods S3 accepts in `AllowedMethod`, spelt as S3 requires (upper case).
pub const SUPPORTED_METHODS: [&str; 5] = ["GET", "PUT", "POST", "DELETE", "HEAD"];
/// What S3 puts in `Vary` on every CORS answer, preflight or actual: the answer depends on all
/// three request headers, so a shared cache must not reuse it for another origin.
pub const VARY_NAMES: [&str; 3] = [
    "Origin",
    "Access-Control-Request-Headers",
    "Access-Control-Request-Method",
];

/// One `CORSRule`, kept exactly as the client sent it (S3 gives values back unnormalised).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct CorsRule {
    pub id: Option<String>,
    pub allowed_origins: Vec<String>,
    pub allowed_methods: Vec<String>,
    pub allowed_headers: Vec<String>,
    pub expose_headers: Vec<String>,
    pub max_age_secs: Option<i32>,
}

/// The `Access-Control-*` response headers a matching rule produces; [`CorsHeaders::apply`]
/// writes them into a response.
///
/// What S3 sends, and so what this holds:
/// - `Access-Control-Allow-Origin`: the request's `Origin`, or `*` when the pattern that matched
///   is exactly `*`;
/// - `Access-Control-Allow-Credentials: true` unless that pattern is `*` (a browser refuses
///   credentials with a `*` origin anyway);
/// - `Access-Control-Allow-Methods`: all of the rule's methods, joined by `", "` (not just the
///   one asked for: that is what S3 answers, whatever its OPTIONS page says);
/// - `Access-Control-Allow-Headers` (preflight only): the requested names, lowercased, in the
///   order requested;
/// - `Access-Control-Expose-Headers`: the rule's `ExposeHeader`s, when it has any;
/// - `Access-Control-Max-Age` (preflight only): the rule's `MaxAgeSeconds`, when set;
/// - `Vary: Origin, Access-Control-Request-Headers, Access-Control-Request-Method`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CorsHeaders {
    pub allow_origin: String,
    pub allow_credentials: bool,
    pub allow_methods: Vec<String>,
    pub allow_headers: Vec<String>,
    pub expose_headers: Vec<String>,
    pub max_age_secs: Option<i32>,
}

/// Validates a `PutBucketCors` body and converts it, as S3 does: 1 to 100 rules, each with at
/// least one origin and one method (`MalformedXML` otherwise, as for a schema violation); only
/// GET, PUT, POST, DELETE and HEAD as methods; at most one `*` per origin and per allowed header;
/// no `*` in an expose header; an ID of at most 255 characters; no negative `MaxAgeSeconds`
/// (`InvalidRequest` for these).
pub fn rules_from_dto(cfg: &dto::CORSConfiguration) -> S3Result<Vec<CorsRule>> {
    if cfg.cors_rules.is_empty() || cfg.cors_rules.len() > MAX_RULES {
        return Err(errors::malformed_xml());
    }
    cfg.cors_rules.iter().map(rule_from_dto).collect()
}

fn rule_from_dto(rule: &dto::CORSRule) -> S3Result<CorsRule> {
    if rule.allowed_origins.is_empty() || rule.allowed_methods.is_empty() {
        return Err(errors::malformed_xml());
    }
    if let Some(method) = rule
        .allowed_methods
        .iter()
        .find(|m| !SUPPORTED_METHODS.contains(&m.as_str()))
    {
        return Err(errors::invalid_request(format!(
            "Found unsupported HTTP method in CORS config. Unsupported method is {method}"
        )));
    }
    if let Some(origin) = rule.allowed_origins.iter().find(|o| o.matches('*').count() > 1) {
        return Err(errors::invalid_request(format!(
            "AllowedOrigin \"{origin}\" can not have more than one wildcard."
        )));
    }
    let allowed_headers = rule.allowed_headers.clone().unwrap_or_default();
    if let Some(name) = allowed_headers.iter().find(|h| h.matches('*').count() > 1) {
        return Err(errors::invalid_request(format!(
            "AllowedHeader \"{name}\" can not have more than one wildcard."
        )));
    }
    let expose_headers = rule.expose_headers.clone().unwrap_or_default();
    if let Some(name) = expose_headers.iter().find(|h| h.contains('*')) {
        return Err(errors::invalid_request(format!(
            "ExposeHeader \"{name}\" contains wildcard. We currently do not support wildcard for ExposeHeader."
        )));
    }
    if rule
        .id
        .as_ref()
        .is_some_and(|id| id.chars().count() > MAX_RULE_ID_CHARS)
    {
        return Err(errors::invalid_request(format!(
            "The ID of a CORSRule can not be longer than {MAX_RULE_ID_CHARS} characters."
        )));
    }
    if rule.max_age_seconds.is_some_and(|secs| secs < 0) {
        return Err(errors::invalid_request("MaxAgeSeconds can not be negative."));
    }
    Ok(CorsRule {
        id: rule.id.clone(),
        allowed_origins: rule.allowed_origins.clone(),
        allowed_methods: rule.allowed_methods.clone(),
        allowed_headers,
        expose_headers,
        max_age_secs: rule.max_age_seconds,
    })
}

/// The stored rules as `GetBucketCors` returns them; empty lists are left out, as S3 does.
pub fn rules_to_dto(rules: &[CorsRule]) -> Vec<dto::CORSRule> {
    let non_empty = |list: &Vec<String>| (!list.is_empty()).then(|| list.clone());
    rules
        .iter()
        .map(|rule| dto::CORSRule {
            allowed_headers: non_empty(&rule.allowed_headers),
            allowed_methods: rule.allowed_methods.clone(),
            allowed_origins: rule.allowed_origins.clone(),
            expose_headers: non_empty(&rule.expose_headers),
            id: rule.id.clone(),
            max_age_seconds: rule.max_age_secs,
        })
        .collect()
}

/// Answers a preflight: `origin` is the `Origin` header, `method` the
/// `Access-Control-Request-Method`, `request_headers` the raw `Access-Control-Request-Headers`
/// value (comma-separated, possibly empty). `None` means no rule allows it: S3 then answers 403
/// (see [`preflight_denied`]) with no `Access-Control-*` header at all.
pub fn preflight(rules: &[CorsRule], origin: &str, method: &str, request_headers: &str) -> Option<CorsHeaders> {
    let requested = requested_header_names(request_headers);
    rules.iter().find_map(|rule| {
        let pattern = rule.matching_origin(origin)?;
        let allowed = rule.allows_method(method) && requested.iter().all(|name| rule.allows_header(name));
        allowed.then(|| CorsHeaders::new(rule, pattern, origin, requested.clone(), rule.max_age_secs))
    })
}

/// The CORS headers for an actual (non-`OPTIONS`) request carrying `Origin`: the first rule
/// matching origin and method, without `Allow-Headers`/`Max-Age` (they only mean something on
/// a preflight). Request headers are not checked. `None`: S3 serves the request anyway, just
/// without CORS headers. S3 has been seen to match on `Access-Control-Request-Method` instead of
/// the real method when an actual request carries one; the caller decides which to pass.
pub fn actual(rules: &[CorsRule], origin: &str, method: &str) -> Option<CorsHeaders> {
    rules.iter().find_map(|rule| {
        let pattern = rule.matching_origin(origin)?;
        rule.allows_method(method)
            .then(|| CorsHeaders::new(rule, pattern, origin, Vec::new(), None))
    })
}

impl CorsRule {
    /// The first `AllowedOrigin` pattern matching `origin` (case-sensitively).
    fn matching_origin(&self, origin: &str) -> Option<&str> {
        self.allowed_origins
            .iter()
            .map(String::as_str)
            .find(|pattern| wildcard_match(pattern, origin, false))
    }

    fn allows_method(&self, method: &str) -> bool {
        self.allowed_methods.iter().any(|allowed| allowed == method)
    }

    fn allows_header(&self, name: &str) -> bool {
        self.allowed_headers
            .iter()
            .any(|pattern| wildcard_match(pattern, name, true))
    }
}

impl CorsHeaders {
    fn new(
        rule: &CorsRule,
        matched_pattern: &str,
        origin: &str,
        allow_headers: Vec<String>,
        max_age_secs: Option<i32>,
    ) -> CorsHeaders {
        let any_origin = matched_pattern == "*";
        CorsHeaders {
            allow_origin: if any_origin { "*".to_owned() } else { origin.to_owned() },
            allow_credentials: !any_origin,
            allow_methods: rule.allowed_methods.clone(),
            allow_headers,
            expose_headers: rule.expose_headers.clone(),
            max_age_secs,
        }
    }

    /// Writes these headers into `headers`, replacing any earlier `Access-Control-*` of the same
    /// name, and merges [`VARY_NAMES`] into `Vary`. A value that is not a valid header value
    /// (say, an origin with a control character) is skipped, never a panic.
    pub fn apply(&self, headers: &mut HeaderMap) {
        insert_if_valid(headers, header::ACCESS_CONTROL_ALLOW_ORIGIN, &self.allow_origin);
        if self.allow_credentials {
            headers.insert(
                header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
                HeaderValue::from_static("true"),
            );
        }
        let lists = [
            (header::ACCESS_CONTROL_ALLOW_METHODS, &self.allow_methods),
            (header::ACCESS_CONTROL_ALLOW_HEADERS, &self.allow_headers),
            (header::ACCESS_CONTROL_EXPOSE_HEADERS, &self.expose_headers),
        ];
        for (name, values) in lists {
            if !values.is_empty() {
                insert_if_valid(headers, name, &values.join(", "));
            }
        }
        if let Some(secs) = self.max_age_secs {
            headers.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from(secs));
        }
        merge_vary(headers, &VARY_NAMES);
    }
}

fn insert_if_valid(headers: &mut HeaderMap, name: HeaderName, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        headers.insert(name, value);
    }
}

/// Adds `names` to the response's `Vary` without clobbering what is there: an existing
/// `Vary: Accept` becomes `Vary: Accept, Origin, ...`, names already present (in any case) are
/// not repeated, and `Vary: *` is left alone since it already covers everything. Values that are
/// not plain text cannot be merged into, so ours then goes in a second `Vary` line.
pub fn merge_vary(headers: &mut HeaderMap, names: &[&str]) {
    let mut merged: Vec<String> = Vec::new();
    let mut mergeable = true;
    for value in headers.get_all(header::VARY) {
        let Ok(text) = value.to_str() else {
            mergeable = false;
            continue;
        };
        for item in text.split(',').map(str::trim).filter(|item| !item.is_empty()) {
            if !merged.iter().any(|known| known.eq_ignore_ascii_case(item)) {
                merged.push(item.to_owned());
            }
        }
    }
    if merged.iter().any(|item| item == "*") {
        return;
    }
    let missing: Vec<&str> = names
        .iter()
        .copied()
        .filter(|name| !merged.iter().any(|known| known.eq_ignore_ascii_case(name)))
        .collect();
    if missing.is_empty() {
        return;
    }
    if mergeable {
        merged.extend(missing.iter().map(|name| (*name).to_owned()));
        insert_if_valid(headers, header::VARY, &merged.join(", "));
    } else if let Ok(value) = HeaderValue::from_str(&missing.join(", ")) {
        headers.append(header::VARY, value);
    }
}

/// `Access-Control-Request-Headers` split into lowercased names, in the order given, empty items
/// and repeats dropped.
fn requested_header_names(raw: &str) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for name in raw.split(',').map(str::trim).filter(|name| !name.is_empty()) {
        let name = name.to_ascii_lowercase();
        if !names.contains(&name) {
            names.push(name);
        }
    }
    names
}

/// Glob match where `*` stands for any run of bytes (the empty one too) and everything else is
/// literal. Iterative with single-star backtracking, so O(pattern × text) at worst instead of
/// the exponential blow-up of the recursive version, even for patterns with many stars (which
/// validation forbids, but stored rules are not re-validated on every request).
fn wildcard_match(pattern: &str, text: &str, ignore_ascii_case: bool) -> bool {
    let (pattern, text) = (pattern.as_bytes(), text.as_bytes());
    let same = |a: u8, b: u8| {
        if ignore_ascii_case {
            a.eq_ignore_ascii_case(&b)
        } else {
            a == b
        }
    };
    let (mut p, mut t) = (0, 0);
    // After the last `*` seen: where the pattern resumes, and where in the text the star's run
    // currently ends. On a mismatch the star swallows one more byte and matching resumes.
    let mut last_star: Option<(usize, usize)> = None;
    while let Some(&text_byte) = text.get(t) {
        match pattern.get(p) {
            Some(b'*') => {
                p += 1;
                last_star = Some((p, t));
            }
            Some(&pattern_byte) if same(pattern_byte, text_byte) => {
                p += 1;
                t += 1;
            }
            _ => match last_star {
                Some((resume_p, star_end)) => {
                    p = resume_p;
                    t = star_end + 1;
                    last_star = Some((resume_p, star_end + 1));
                }
                None => return false,
            },
        }
    }
    pattern.get(p..).is_some_and(|rest| rest.iter().all(|&b| b == b'*'))
}

/// S3's 403 for a preflight to a bucket without a CORS configuration.
pub fn cors_not_enabled() -> S3Error {
    errors::access_forbidden("CORSResponse: CORS is not enabled for this bucket.")
}

/// S3's 403 for a preflight that no rule allows (message verbatim, typo included).
pub fn preflight_denied() -> S3Error {
    errors::access_forbidden(
        "CORSResponse: This CORS request is not allowed. This is usually because the evalution of Origin, \
         request method / Access-Control-Request-Method or Access-Control-Request-Headers are not whitelisted \
         by the resource's CORS spec.",
    )
}

/// S3's 400 for an `OPTIONS` request without `Origin`.
pub fn preflight_missing_origin() -> S3Error {
    errors::bad_request("Insufficient information. Origin request header needed.")
}

/// S3's 400 for an `OPTIONS` request without `Access-Control-Request-Method`.
pub fn preflight_missing_method() -> S3Error {
    errors::bad_request("Invalid Access-Control-Request-Method: null")
}

/// Fuzz entry: never panics on any input. `data` is parsed as a `PutBucketCors` body with s3s's
/// own XML deserializer; an accepted configuration must survive `rules_to_dto` →
/// `rules_from_dto` unchanged and is then matched against a few fixed origins, methods and
/// request headers. The text of `data` is also tried as origin and request headers against a
/// fixed rule set, to exercise the wildcard matcher with hostile input.
/// Returns a fingerprint of how far the input got, for the fuzzer's pool.
pub fn fuzz(data: &[u8]) -> u8 {
    let o = fuzz_outcome(data);
    u8::from(o.xml_parsed) | u8::from(o.rules_accepted) << 1 | u8::from(o.any_match) << 2
}

#[derive(Debug, Default, Clone, Copy)]
struct FuzzOutcome {
    xml_parsed: bool,
    rules_accepted: bool,
    any_match: bool,
}

fn fuzz_outcome(data: &[u8]) -> FuzzOutcome {
    const ORIGINS: [&str; 6] = [
        "https://example.com",
        "http://app.example.com:8080",
        "HTTPS://EXAMPLE.COM",
        "null",
        "",
        "*",
    ];
    const METHODS: [&str; 4] = ["GET", "PUT", "OPTIONS", "get"];
    const REQUEST_HEADERS: [&str; 3] = ["", "x-amz-date, Content-Type", " X-Custom ,, authorization"];
    let mut outcome = FuzzOutcome::default();

    let mut deserializer = s3s::xml::Deserializer::new(data);
    let parsed = <dto::CORSConfiguration as s3s::xml::Deserialize>::deserialize(&mut deserializer)
        .and_then(|cfg| deserializer.expect_eof().map(|()| cfg));
    if let Ok(cfg) = parsed {
        outcome.xml_parsed = true;
        if let Ok(rules) = rules_from_dto(&cfg) {
            outcome.rules_accepted = true;
            let echoed = dto::CORSConfiguration {
                cors_rules: rules_to_dto(&rules),
            };
            // What GetBucketCors shows must be accepted back by PutBucketCors unchanged.
            assert_eq!(
                rules_from_dto(&echoed).ok().as_ref(),
                Some(&rules),
                "rules changed through the DTO"
            );
            for origin in ORIGINS {
                for method in METHODS {
                    for request_headers in REQUEST_HEADERS {
                        let answer = preflight(&rules, origin, method, request_headers);
                        outcome.any_match |= answer.is_some();
                        check_answer(answer.as_ref(), &rules, origin, method);
                    }
                }
            }
        }
    }

    let text = String::from_utf8_lossy(data);
    let fixed_rules = [CorsRule {
        id: None,
        allowed_origins: vec!["https://*.example.com".to_owned(), "*".to_owned()],
        allowed_methods: vec!["GET".to_owned()],
        allowed_headers: vec!["x-amz-*".to_owned(), "content-type".to_owned()],
        expose_headers: Vec::new(),
        max_age_secs: None,
    }];
    let answer = preflight(&fixed_rules, &text, "GET", &text);
    check_answer(answer.as_ref(), &fixed_rules, &text, "GET");
    outcome
}

/// Invariants of any preflight answer, checked by the fuzz entry.
fn check_answer(answer: Option<&CorsHeaders>, rules: &[CorsRule], origin: &str, method: &str) {
    let actual_answer = actual(rules, origin, method);
    // A preflight is stricter than an actual request (it also checks headers).
    assert!(
        answer.is_none() || actual_answer.is_some(),
        "preflight matched but actual did not"
    );
    for headers in answer.iter().copied().chain(actual_answer.as_ref()) {
        assert!(
            headers.allow_methods.iter().any(|m| m == method),
            "answered for another method"
        );
        let mut response = HeaderMap::new();
        response.insert(header::VARY, HeaderValue::from_static("Accept"));
        headers.apply(&mut response);
        let vary: Vec<&str> = response
            .get_all(header::VARY)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        assert_eq!(
            vary,
            ["Accept, Origin, Access-Control-Request-Headers, Access-Control-Request-Method"]
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::StatusCode;
    use s3s::S3ErrorCode;

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    fn rule(origins: &[&str], methods: &[&str], allowed_headers: &[&str]) -> CorsRule {
        CorsRule {
            id: None,
            allowed_origins: strings(origins),
            allowed_methods: strings(methods),
            allowed_headers: strings(allowed_headers),
            expose_headers: Vec::new(),
            max_age_secs: None,
        }
    }

    fn dto_rule(origins: &[&str], methods: &[&str]) -> dto::CORSRule {
        dto::CORSRule {
            allowed_origins: strings(origins),
            allowed_methods: strings(methods),
            ..Default::default()
        }
    }

    fn config(rules: Vec<dto::CORSRule>) -> dto::CORSConfiguration {
        dto::CORSConfiguration { cors_rules: rules }
    }

    fn parse_config_xml(xml: &str) -> dto::CORSConfiguration {
        let mut d = s3s::xml::Deserializer::new(xml.as_bytes());
        let cfg = <dto::CORSConfiguration as s3s::xml::Deserialize>::deserialize(&mut d).expect("valid XML");
        d.expect_eof().expect("nothing after the document");
        cfg
    }

    fn error_of(result: S3Result<Vec<CorsRule>>) -> (S3ErrorCode, String) {
        let error = result.expect_err("expected an error");
        (error.code().clone(), error.message().unwrap_or_default().to_owned())
    }

    fn header(map: &HeaderMap, name: HeaderName) -> Option<&str> {
        map.get(name).and_then(|v| v.to_str().ok())
    }

    #[test]
    fn valid_configuration_round_trips() {
        let xml = r#"<CORSConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
            <CORSRule>
              <ID>web</ID>
              <AllowedOrigin>https://*.example.com</AllowedOrigin>
              <AllowedMethod>GET</AllowedMethod><AllowedMethod>PUT</AllowedMethod>
              <AllowedHeader>x-AMZ-*</AllowedHeader>
              <ExposeHeader>ETag</ExposeHeader>
              <MaxAgeSeconds>3000</MaxAgeSeconds>
            </CORSRule>
            <CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>HEAD</AllowedMethod></CORSRule>
          </CORSConfiguration>"#;
        let rules = rules_from_dto(&parse_config_xml(xml)).expect("valid");
        assert_eq!(
            rules[0],
            CorsRule {
                id: Some("web".to_owned()),
                allowed_origins: strings(&["https://*.example.com"]),
                allowed_methods: strings(&["GET", "PUT"]),
                allowed_headers: strings(&["x-AMZ-*"]),
                expose_headers: strings(&["ETag"]),
                max_age_secs: Some(3000),
            }
        );
        assert_eq!(rules[1], rule(&["*"], &["HEAD"], &[]));
        let back = rules_to_dto(&rules);
        assert_eq!(back[1].allowed_headers, None, "empty lists are left out");
        assert_eq!(back[1].expose_headers, None);
        assert_eq!(rules_from_dto(&config(back)).expect("valid"), rules);
    }

    #[test]
    fn rule_count_limits() {
        let (code, _) = error_of(rules_from_dto(&config(Vec::new())));
        assert_eq!(code, S3ErrorCode::MalformedXML);
        let at_limit = vec![dto_rule(&["*"], &["GET"]); MAX_RULES];
        assert_eq!(
            rules_from_dto(&config(at_limit)).expect("at the limit").len(),
            MAX_RULES
        );
        let over = vec![dto_rule(&["*"], &["GET"]); MAX_RULES + 1];
        assert_eq!(error_of(rules_from_dto(&config(over))).0, S3ErrorCode::MalformedXML);
    }

    #[test]
    fn rules_need_an_origin_and_a_method() {
        let no_origin = config(vec![dto_rule(&[], &["GET"])]);
        assert_eq!(error_of(rules_from_dto(&no_origin)).0, S3ErrorCode::MalformedXML);
        let no_method = config(vec![dto_rule(&["*"], &[])]);
        assert_eq!(error_of(rules_from_dto(&no_method)).0, S3ErrorCode::MalformedXML);
    }

    #[test]
    fn unsupported_methods_are_named_in_the_error() {
        for method in ["PATCH", "OPTIONS", "get", ""] {
            let (code, message) = error_of(rules_from_dto(&config(vec![dto_rule(&["*"], &["GET", method])])));
            assert_eq!(code, S3ErrorCode::InvalidRequest);
            assert_eq!(
                message,
                format!("Found unsupported HTTP method in CORS config. Unsupported method is {method}")
            );
        }
    }

    #[test]
    fn wildcard_limits_use_s3_messages() {
        let (code, message) = error_of(rules_from_dto(&config(vec![dto_rule(&["*example*.com"], &["GET"])])));
        assert_eq!(code, S3ErrorCode::InvalidRequest);
        assert_eq!(
            message,
            "AllowedOrigin \"*example*.com\" can not have more than one wildcard."
        );

        let mut two_star_header = dto_rule(&["*"], &["GET"]);
        two_star_header.allowed_headers = Some(strings(&["x-*-*"]));
        let (code, message) = error_of(rules_from_dto(&config(vec![two_star_header])));
        assert_eq!(code, S3ErrorCode::InvalidRequest);
        assert_eq!(message, "AllowedHeader \"x-*-*\" can not have more than one wildcard.");

        let mut star_expose = dto_rule(&["*"], &["GET"]);
        star_expose.expose_headers = Some(strings(&["*"]));
        assert_eq!(
            error_of(rules_from_dto(&config(vec![star_expose]))).0,
            S3ErrorCode::InvalidRequest
        );
    }

    #[test]
    fn long_ids_and_negative_max_age_are_refused() {
        let mut long_id = dto_rule(&["*"], &["GET"]);
        long_id.id = Some("é".repeat(MAX_RULE_ID_CHARS));
        assert!(
            rules_from_dto(&config(vec![long_id.clone()])).is_ok(),
            "counted in characters"
        );
        long_id.id = Some("x".repeat(MAX_RULE_ID_CHARS + 1));
        assert_eq!(
            error_of(rules_from_dto(&config(vec![long_id]))).0,
            S3ErrorCode::InvalidRequest
        );

        let mut negative = dto_rule(&["*"], &["GET"]);
        negative.max_age_seconds = Some(-1);
        assert_eq!(
            error_of(rules_from_dto(&config(vec![negative]))).0,
            S3ErrorCode::InvalidRequest
        );
    }

    #[test]
    fn preflight_echoes_origin_and_lowercased_headers() {
        let mut web = rule(
            &["https://*.example.com"],
            &["GET", "PUT"],
            &["x-amz-*", "Content-Type"],
        );
        web.expose_headers = strings(&["ETag", "x-amz-request-id"]);
        web.max_age_secs = Some(600);
        let answer = preflight(
            &[web],
            "https://app.example.com",
            "PUT",
            "X-Amz-Date,content-type, x-amz-date",
        )
        .expect("allowed");
        assert_eq!(
            answer,
            CorsHeaders {
                allow_origin: "https://app.example.com".to_owned(),
                allow_credentials: true,
                allow_methods: strings(&["GET", "PUT"]),
                allow_headers: strings(&["x-amz-date", "content-type"]),
                expose_headers: strings(&["ETag", "x-amz-request-id"]),
                max_age_secs: Some(600),
            }
        );
        let mut response = HeaderMap::new();
        answer.apply(&mut response);
        assert_eq!(
            header(&response, header::ACCESS_CONTROL_ALLOW_ORIGIN),
            Some("https://app.example.com")
        );
        assert_eq!(
            header(&response, header::ACCESS_CONTROL_ALLOW_CREDENTIALS),
            Some("true")
        );
        assert_eq!(
            header(&response, header::ACCESS_CONTROL_ALLOW_METHODS),
            Some("GET, PUT")
        );
        assert_eq!(
            header(&response, header::ACCESS_CONTROL_ALLOW_HEADERS),
            Some("x-amz-date, content-type")
        );
        assert_eq!(
            header(&response, header::ACCESS_CONTROL_EXPOSE_HEADERS),
            Some("ETag, x-amz-request-id")
        );
        assert_eq!(header(&response, header::ACCESS_CONTROL_MAX_AGE), Some("600"));
        assert_eq!(
            header(&response, header::VARY),
            Some("Origin, Access-Control-Request-Headers, Access-Control-Request-Method")
        );
    }

    #[test]
    fn star_origin_answers_star_without_credentials() {
        let answer = preflight(&[rule(&["*"], &["GET"], &[])], "http://random:1234", "GET", "").expect("allowed");
        assert_eq!(answer.allow_origin, "*");
        assert!(!answer.allow_credentials);
        let mut response = HeaderMap::new();
        answer.apply(&mut response);
        assert_eq!(header(&response, header::ACCESS_CONTROL_ALLOW_CREDENTIALS), None);
        assert_eq!(header(&response, header::ACCESS_CONTROL_ALLOW_HEADERS), None);
        assert_eq!(header(&response, header::ACCESS_CONTROL_MAX_AGE), None);
    }

    #[test]
    fn first_matching_rule_and_pattern_win() {
        let specific = rule(&["https://a.example", "*"], &["GET"], &[]);
        let any = rule(&["*"], &["GET", "PUT"], &["*"]);
        let rules = [specific, any];
        let answer = preflight(&rules, "https://a.example", "GET", "").expect("allowed");
        assert_eq!(
            answer.allow_origin, "https://a.example",
            "the specific pattern comes first"
        );
        assert_eq!(answer.allow_methods, strings(&["GET"]));
        // The first rule allows no headers, so a request with headers falls to the second.
        let answer = preflight(&rules, "https://a.example", "GET", "x-custom").expect("allowed");
        assert_eq!(answer.allow_origin, "*");
        assert_eq!(answer.allow_methods, strings(&["GET", "PUT"]));
        assert_eq!(answer.allow_headers, strings(&["x-custom"]));
    }

    #[test]
    fn preflight_denials() {
        let rules = [rule(&["http://*.origin.com"], &["GET"], &["x-amz-*"])];
        assert!(preflight(&rules, "http://test.origin.com", "GET", "").is_some());
        assert!(
            preflight(&rules, "http://test.origin.com/", "GET", "").is_none(),
            "trailing slash"
        );
        assert!(
            preflight(&rules, "HTTP://TEST.ORIGIN.COM", "GET", "").is_none(),
            "origins are case-sensitive"
        );
        assert!(
            preflight(&rules, "https://test.origin.com", "GET", "").is_none(),
            "scheme must match"
        );
        assert!(
            preflight(&rules, "http://test.origin.com", "PUT", "").is_none(),
            "method not allowed"
        );
        assert!(
            preflight(&rules, "http://test.origin.com", "get", "").is_none(),
            "methods are exact"
        );
        assert!(preflight(&rules, "http://test.origin.com", "GET", "x-amz-date, authorization").is_none());
        assert!(preflight(&[], "http://test.origin.com", "GET", "").is_none());
        let no_allowed_headers = [rule(&["*"], &["GET"], &[])];
        assert!(preflight(&no_allowed_headers, "http://x", "GET", "content-type").is_none());
    }

    #[test]
    fn star_origin_matches_the_empty_run() {
        let rules = [rule(&["http://*origin.com"], &["GET"], &[])];
        assert!(preflight(&rules, "http://origin.com", "GET", "").is_some());
        assert!(preflight(&[rule(&["*"], &["GET"], &[])], "", "GET", "").is_some());
    }

    #[test]
    fn actual_ignores_request_headers_and_sends_no_preflight_fields() {
        let mut web = rule(&["https://example.com"], &["GET", "HEAD"], &[]);
        web.max_age_secs = Some(3000);
        web.expose_headers = strings(&["ETag"]);
        let answer = actual(&[web.clone()], "https://example.com", "GET").expect("allowed");
        assert_eq!(answer.allow_headers, Vec::<String>::new());
        assert_eq!(answer.max_age_secs, None);
        assert_eq!(answer.expose_headers, strings(&["ETag"]));
        assert!(answer.allow_credentials);
        assert!(actual(&[web.clone()], "https://example.com", "PUT").is_none());
        assert!(actual(&[web], "https://other.example", "GET").is_none());
    }

    #[test]
    fn apply_merges_vary_and_skips_invalid_values() {
        let answer = CorsHeaders {
            allow_origin: "https://bad\u{7f}origin".to_owned(),
            allow_credentials: true,
            allow_methods: strings(&["GET"]),
            allow_headers: strings(&["x-\nbad"]),
            expose_headers: Vec::new(),
            max_age_secs: None,
        };
        let mut response = HeaderMap::new();
        response.insert(header::VARY, HeaderValue::from_static("Accept"));
        response.append(header::VARY, HeaderValue::from_static("origin, Accept-Encoding"));
        answer.apply(&mut response);
        assert_eq!(header(&response, header::ACCESS_CONTROL_ALLOW_ORIGIN), None);
        assert_eq!(header(&response, header::ACCESS_CONTROL_ALLOW_HEADERS), None);
        assert_eq!(header(&response, header::ACCESS_CONTROL_ALLOW_METHODS), Some("GET"));
        let vary: Vec<&str> = response
            .get_all(header::VARY)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        assert_eq!(
            vary,
            ["Accept, origin, Accept-Encoding, Access-Control-Request-Headers, Access-Control-Request-Method"]
        );
    }

    #[test]
    fn merge_vary_respects_star_and_opaque_values() {
        let mut star = HeaderMap::new();
        star.insert(header::VARY, HeaderValue::from_static("*"));
        merge_vary(&mut star, &VARY_NAMES);
        assert_eq!(header(&star, header::VARY), Some("*"));

        let mut opaque = HeaderMap::new();
        opaque.insert(
            header::VARY,
            HeaderValue::from_bytes(b"caf\xe9").expect("obs-text is allowed"),
        );
        merge_vary(&mut opaque, &["Origin"]);
        let all: Vec<&[u8]> = opaque.get_all(header::VARY).iter().map(HeaderValue::as_bytes).collect();
        assert_eq!(all, [&b"caf\xe9"[..], b"Origin"]);

        let mut already = HeaderMap::new();
        already.insert(header::VARY, HeaderValue::from_static("ORIGIN"));
        merge_vary(&mut already, &["Origin"]);
        assert_eq!(header(&already, header::VARY), Some("ORIGIN"));
    }

    #[test]
    fn wildcard_match_cases() {
        assert!(wildcard_match("*", "", false));
        assert!(wildcard_match("a*c", "abbbc", false));
        assert!(wildcard_match("a*c", "ac", false));
        assert!(!wildcard_match("a*c", "abcd", false));
        assert!(wildcard_match("a*b*c", "aXbYbZc", false));
        assert!(!wildcard_match("abc", "ABC", false));
        assert!(wildcard_match("x-AMZ-*", "x-amz-date", true));
        assert!(!wildcard_match("", "a", false));
        assert!(wildcard_match("**", "anything", false));
        assert!(wildcard_match("héllo*", "héllo wörld", false));
    }

    #[test]
    fn wildcard_match_is_not_exponential() {
        let text = "a".repeat(20_000);
        let pattern = format!("{}b", "*a".repeat(30));
        // Naive recursion explores ~C(20000, 30) splits here; this takes at most 61 × 20000 steps.
        assert!(!wildcard_match(&pattern, &text, false));
        assert!(wildcard_match(&pattern.replace('b', "a"), &text, false));
    }

    #[test]
    fn cors_errors_carry_s3_codes_and_statuses() {
        let denied = preflight_denied();
        assert_eq!(denied.code().as_str(), "AccessForbidden");
        assert_eq!(denied.status_code(), Some(StatusCode::FORBIDDEN));
        assert!(denied
            .message()
            .unwrap_or_default()
            .starts_with("CORSResponse: This CORS request is not allowed."));
        assert_eq!(cors_not_enabled().code().as_str(), "AccessForbidden");
        assert_eq!(preflight_missing_origin().code().as_str(), "BadRequest");
        assert_eq!(preflight_missing_method().status_code(), Some(StatusCode::BAD_REQUEST));
    }

    #[test]
    fn rules_round_trip_through_message_pack() {
        let mut stored = rule(&["https://*.example.com"], &["GET"], &["*"]);
        stored.id = Some("r1".to_owned());
        stored.max_age_secs = Some(10);
        let bytes = rmp_serde::to_vec(&vec![stored.clone()]).expect("encodes");
        let back: Vec<CorsRule> = rmp_serde::from_slice(&bytes).expect("decodes");
        assert_eq!(back, vec![stored]);
    }

    const SEED_CONFIG: &str = "<CORSConfiguration><CORSRule><ID>r</ID><AllowedOrigin>https://*.example.com</AllowedOrigin><AllowedMethod>GET</AllowedMethod><AllowedMethod>PUT</AllowedMethod><AllowedHeader>x-amz-*</AllowedHeader><AllowedHeader>content-type</AllowedHeader><ExposeHeader>ETag</ExposeHeader><MaxAgeSeconds>3000</MaxAgeSeconds></CORSRule><CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod></CORSRule></CORSConfiguration>";

    /// Tokens that push mutations towards interesting parser and matcher states.
    const TOKENS: &[&str] = &[
        "<",
        ">",
        "</",
        "/>",
        "*",
        "**",
        ",",
        " ",
        "&amp;",
        "&#42;",
        "&bogus;",
        "GET",
        "PATCH",
        "-1",
        "99999999999",
        "<AllowedOrigin>*</AllowedOrigin>",
        "<AllowedHeader>*</AllowedHeader>",
        "<AllowedMethod>PUT</AllowedMethod>",
        "</CORSRule><CORSRule>",
        "https://example.com",
        "\u{00e9}",
        "\0",
    ];

    use crate::util::test_mutation::{mutate, XorShift};

    #[test]
    fn seed_is_accepted_by_the_fuzz_entry() {
        let outcome = fuzz_outcome(SEED_CONFIG.as_bytes());
        assert!(
            outcome.xml_parsed && outcome.rules_accepted && outcome.any_match,
            "{outcome:?}"
        );
        fuzz(SEED_CONFIG.as_bytes());
        fuzz(b"");
    }

    #[test]
    fn fuzz_survives_100k_mutations() {
        let mut rng = XorShift(0x2545_F491_4F6C_DD1D);
        // Accepted inputs become seeds too, so mutations reach deeper than one step.
        let mut corpus: Vec<Vec<u8>> = vec![SEED_CONFIG.into()];
        let (mut parsed, mut accepted, mut rejected, mut matched) = (0, 0, 0, 0);
        for _ in 0..100_000 {
            let parent = rng.below(corpus.len());
            let data = mutate(&mut rng, &corpus[parent], TOKENS);
            let outcome = fuzz_outcome(&data);
            parsed += usize::from(outcome.xml_parsed);
            accepted += usize::from(outcome.rules_accepted);
            rejected += usize::from(outcome.xml_parsed && !outcome.rules_accepted);
            matched += usize::from(outcome.any_match);
            if outcome.rules_accepted && corpus.len() < 256 {
                corpus.push(data);
            }
        }
        // The mutations must reach validation both ways and the matcher, or the loop proves little.
        assert!(accepted > 1_000, "accepted {accepted} of {parsed} parsed");
        assert!(rejected > 100, "rejected {rejected} of {parsed} parsed");
        assert!(matched > 1_000, "matched {matched}");
        eprintln!("cors fuzz: {parsed} parsed, {accepted} accepted, {rejected} rejected, {matched} matched");
    }
}
