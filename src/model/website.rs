//! Static website hosting, the pure part: a bucket's website configuration as stored in its
//! record, S3's validation rules for it, how a website request resolves (index documents,
//! redirect-all, routing rules) and the HTML error page. No I/O: `http/website.rs` does
//! the fetching, `s3/website.rs` the Put/Get/DeleteBucketWebsite API.

use serde::{Deserialize, Serialize};

/// A bucket's website configuration (PutBucketWebsite), kept apart from the s3s DTOs so the
/// stored form does not change with the API crate.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
pub struct WebsiteConfig {
    /// `IndexDocument/Suffix`, e.g. `index.html`: appended to requests for `/` and `dir/`.
    pub index_suffix: Option<String>,
    /// `ErrorDocument/Key`: served (with the error's status) for 4xx errors.
    pub error_key: Option<String>,
    /// `RedirectAllRequestsTo`: every request is redirected; excludes everything else.
    pub redirect_all: Option<RedirectAll>,
    /// `RoutingRules`, evaluated in order; the first match wins.
    #[serde(default)]
    pub rules: Vec<RoutingRule>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct RedirectAll {
    pub host_name: String,
    /// `http` or `https`; `None`: the protocol of the request.
    pub protocol: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct RoutingRule {
    pub condition: Option<Condition>,
    pub redirect: Redirect,
}

/// Both parts, when given, must hold.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
pub struct Condition {
    pub key_prefix_equals: Option<String>,
    /// A 4xx or 5xx status: the rule applies only after the object fetch failed with it.
    pub http_error_code_returned_equals: Option<u16>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
pub struct Redirect {
    pub protocol: Option<String>,
    pub host_name: Option<String>,
    pub replace_key_prefix_with: Option<String>,
    pub replace_key_with: Option<String>,
    /// 3xx; `None`: 301.
    pub http_redirect_code: Option<u16>,
}

/// How a configuration was refused: S3's error code and message.
#[derive(Debug, PartialEq)]
pub struct Invalid {
    pub code: InvalidCode,
    pub message: String,
}

/// The two S3 codes a website configuration is refused with (`s3::website` builds the error).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvalidCode {
    InvalidArgument,
    MalformedXml,
}

fn invalid(message: impl Into<String>) -> Invalid {
    Invalid {
        code: InvalidCode::InvalidArgument,
        message: message.into(),
    }
}

fn malformed(message: impl Into<String>) -> Invalid {
    Invalid {
        code: InvalidCode::MalformedXml,
        message: message.into(),
    }
}

fn valid_protocol(p: &str) -> Result<(), Invalid> {
    if p == "http" || p == "https" {
        Ok(())
    } else {
        Err(invalid(format!(
            "Invalid protocol \"{p}\": valid protocols are http and https"
        )))
    }
}

/// Parses an `HttpErrorCodeReturnedEquals` / `HttpRedirectCode` value.
pub fn parse_status(text: &str, what: &str, range: std::ops::RangeInclusive<u16>) -> Result<u16, Invalid> {
    match text.trim().parse::<u16>() {
        Ok(code) if range.contains(&code) => Ok(code),
        _ => Err(invalid(format!("The provided {what} ({text}) is not valid"))),
    }
}

impl WebsiteConfig {
    /// S3's rules for a website configuration; `max_rules` is the routing-rule bound.
    pub fn validate(&self, max_rules: usize) -> Result<(), Invalid> {
        if let Some(all) = &self.redirect_all {
            if self.index_suffix.is_some() || self.error_key.is_some() || !self.rules.is_empty() {
                return Err(invalid(
                    "RedirectAllRequestsTo cannot be provided in conjunction with other Routing Rules, \
                     IndexDocument or ErrorDocument",
                ));
            }
            if all.host_name.is_empty() {
                return Err(invalid("RedirectAllRequestsTo HostName must not be empty"));
            }
            if let Some(p) = &all.protocol {
                valid_protocol(p)?;
            }
            return Ok(());
        }
        match self.index_suffix.as_deref() {
            None => {
                return Err(invalid(
                    "A value for IndexDocument Suffix must be provided if RedirectAllRequestsTo is empty",
                ))
            }
            Some("") => return Err(invalid("The IndexDocument Suffix is not well formed: it is empty")),
            Some(s) if s.contains('/') => {
                return Err(invalid(
                    "The IndexDocument Suffix is not well formed: it must not contain '/'",
                ))
            }
            Some(_) => {}
        }
        if self.error_key.as_deref() == Some("") {
            return Err(invalid("The ErrorDocument Key must not be empty"));
        }
        if self.rules.len() > max_rules {
            return Err(malformed(format!(
                "A website configuration may have at most {max_rules} routing rules, this one has {}",
                self.rules.len()
            )));
        }
        for rule in &self.rules {
            if let Some(c) = &rule.condition {
                if c.key_prefix_equals.is_none() && c.http_error_code_returned_equals.is_none() {
                    return Err(invalid(
                        "Condition cannot be empty: give KeyPrefixEquals or HttpErrorCodeReturnedEquals",
                    ));
                }
            }
            let r = &rule.redirect;
            if r.replace_key_with.is_some() && r.replace_key_prefix_with.is_some() {
                return Err(invalid(
                    "You can only define ReplaceKeyPrefix or ReplaceKey but not both.",
                ));
            }
            if r.protocol.is_none()
                && r.host_name.is_none()
                && r.replace_key_with.is_none()
                && r.replace_key_prefix_with.is_none()
                && r.http_redirect_code.is_none()
            {
                return Err(invalid("A Redirect must name at least one of its elements"));
            }
            if let Some(p) = &r.protocol {
                valid_protocol(p)?;
            }
            if r.host_name.as_deref() == Some("") {
                return Err(invalid("Redirect HostName must not be empty"));
            }
        }
        Ok(())
    }
}

/// What a website request addresses, as the endpoint saw it.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// The decoded path without its leading `/` (empty for the root).
    pub key: &'a str,
    /// `http` or `https`: the default protocol of redirects.
    pub scheme: &'a str,
    /// The request's Host (with port): the default host of redirects.
    pub host: &'a str,
}

/// The first thing to do for a request.
#[derive(Debug, PartialEq)]
pub enum Step {
    Redirect {
        location: String,
        status: u16,
    },
    /// Fetch this key (the index document already appended for `/` and `dir/`).
    Fetch {
        key: String,
    },
}

/// Percent-encodes a key for a URL path, keeping its `/`s.
pub fn encode_key(key: &str) -> String {
    key.split('/')
        .map(|seg| urlencoding::encode(seg).into_owned())
        .collect::<Vec<_>>()
        .join("/")
}

impl RoutingRule {
    /// Does the rule apply to `key` (after a fetch that failed with `error`, or before any
    /// fetch when `error` is `None`)?
    fn matches(&self, key: &str, error: Option<u16>) -> bool {
        let cond = self.condition.as_ref();
        let prefix_ok = cond
            .and_then(|c| c.key_prefix_equals.as_deref())
            .is_none_or(|p| key.starts_with(p));
        let wanted = cond.and_then(|c| c.http_error_code_returned_equals);
        prefix_ok && wanted == error
    }

    fn location(&self, req: &Request<'_>) -> (String, u16) {
        let r = &self.redirect;
        let proto = r.protocol.as_deref().unwrap_or(req.scheme);
        let host = r.host_name.as_deref().unwrap_or(req.host);
        let key = if let Some(k) = &r.replace_key_with {
            k.clone()
        } else if let Some(p) = &r.replace_key_prefix_with {
            let matched = self
                .condition
                .as_ref()
                .and_then(|c| c.key_prefix_equals.as_deref())
                .unwrap_or("");
            format!("{p}{}", req.key.get(matched.len()..).unwrap_or(""))
        } else {
            req.key.to_string()
        };
        (
            format!("{proto}://{host}/{}", encode_key(&key)),
            r.http_redirect_code.unwrap_or(301),
        )
    }
}

impl WebsiteConfig {
    /// Redirect-all, then the routing rules without an error condition, then the object
    /// (with the index document for `/` and `dir/`).
    pub fn first_step(&self, req: &Request<'_>) -> Step {
        if let Some(all) = &self.redirect_all {
            let proto = all.protocol.as_deref().unwrap_or(req.scheme);
            return Step::Redirect {
                location: format!("{proto}://{}/{}", all.host_name, encode_key(req.key)),
                status: 301,
            };
        }
        if let Some(rule) = self.rules.iter().find(|r| r.matches(req.key, None)) {
            let (location, status) = rule.location(req);
            return Step::Redirect { location, status };
        }
        Step::Fetch {
            key: self.index_for(req.key),
        }
    }

    /// The key a path names: the index document for the root and for "directories".
    pub fn index_for(&self, key: &str) -> String {
        match &self.index_suffix {
            Some(suffix) if key.is_empty() || key.ends_with('/') => format!("{key}{suffix}"),
            _ => key.to_string(),
        }
    }

    /// For `dir` (no trailing slash), the index document whose existence makes S3 answer
    /// 302 to `dir/`.
    pub fn directory_index(&self, key: &str) -> Option<String> {
        let suffix = self.index_suffix.as_deref()?;
        (!key.is_empty() && !key.ends_with('/')).then(|| format!("{key}/{suffix}"))
    }

    /// The routing rule redirect for a fetch that failed with `status`, if one applies.
    pub fn on_error(&self, req: &Request<'_>, status: u16) -> Option<(String, u16)> {
        self.rules
            .iter()
            .find(|r| r.matches(req.key, Some(status)))
            .map(|r| r.location(req))
    }
}

fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// S3's HTML error page of a website endpoint: `<title>404 Not Found</title>` and a list of
/// `Code`, `Message` and details such as `Key` or `BucketName`.
pub fn error_page(status: u16, code: &str, message: &str, details: &[(&str, &str)]) -> String {
    let reason = http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Error");
    let title = format!("{status} {reason}");
    let mut items = format!(
        "<li>Code: {}</li>\n<li>Message: {}</li>\n",
        escape_html(code),
        escape_html(message)
    );
    for (name, value) in details {
        items.push_str(&format!("<li>{}: {}</li>\n", escape_html(name), escape_html(value)));
    }
    format!(
        "<html>\n<head><title>{title}</title></head>\n<body>\n<h1>{title}</h1>\n<ul>\n{items}</ul>\n<hr/>\n</body>\n</html>\n"
    )
}

/// The bucket a website request is for. On the main listener only hosts under `domain`
/// (`<bucket>.<domain>[:port]`) are website requests; on a website-only listener
/// (`every_request`) any host is, its first label naming the bucket.
pub fn bucket_from_host(host: &str, domain: &str, every_request: bool) -> Option<String> {
    let host = host.to_ascii_lowercase();
    // Strip a port (not inside an IPv6 literal).
    let name = match host.rsplit_once(':') {
        Some((h, port)) if !h.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host.as_str(),
    };
    let name = name.trim_end_matches('.');
    if !domain.is_empty() {
        if let Some(bucket) = name.strip_suffix(domain).and_then(|b| b.strip_suffix('.')) {
            return (!bucket.is_empty()).then(|| bucket.to_string());
        }
    }
    if every_request {
        let first = name.split('.').next().unwrap_or("");
        return (!first.is_empty()).then(|| first.to_string());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn site() -> WebsiteConfig {
        WebsiteConfig {
            index_suffix: Some("index.html".into()),
            error_key: Some("error.html".into()),
            ..Default::default()
        }
    }

    fn rule(prefix: Option<&str>, code: Option<u16>, redirect: Redirect) -> RoutingRule {
        RoutingRule {
            condition: (prefix.is_some() || code.is_some()).then(|| Condition {
                key_prefix_equals: prefix.map(str::to_string),
                http_error_code_returned_equals: code,
            }),
            redirect,
        }
    }

    fn req(key: &str) -> Request<'_> {
        Request {
            key,
            scheme: "http",
            host: "b.s3-website.localhost:9000",
        }
    }

    #[test]
    fn validation_follows_s3() {
        assert_eq!(site().validate(50), Ok(()));
        let no_index = WebsiteConfig::default();
        assert_eq!(
            no_index.validate(50).map_err(|e| e.code),
            Err(InvalidCode::InvalidArgument)
        );
        for bad in ["", "a/index.html"] {
            let c = WebsiteConfig {
                index_suffix: Some(bad.into()),
                ..Default::default()
            };
            assert!(c.validate(50).is_err(), "{bad:?}");
        }
        let all = RedirectAll {
            host_name: "example.com".into(),
            protocol: Some("https".into()),
        };
        let only_all = WebsiteConfig {
            redirect_all: Some(all.clone()),
            ..Default::default()
        };
        assert_eq!(only_all.validate(50), Ok(()));
        let mixed = WebsiteConfig {
            redirect_all: Some(all),
            ..site()
        };
        assert!(mixed.validate(50).is_err());
        let both = Redirect {
            replace_key_with: Some("a".into()),
            replace_key_prefix_with: Some("b".into()),
            ..Default::default()
        };
        let c = WebsiteConfig {
            rules: vec![rule(Some("x/"), None, both)],
            ..site()
        };
        assert!(c.validate(50).unwrap_err().message.contains("not both"));
        let empty_redirect = WebsiteConfig {
            rules: vec![rule(Some("x/"), None, Redirect::default())],
            ..site()
        };
        assert!(empty_redirect.validate(50).is_err());
        let many = WebsiteConfig {
            rules: vec![
                rule(
                    None,
                    Some(404),
                    Redirect {
                        host_name: Some("h".into()),
                        ..Default::default()
                    }
                );
                51
            ],
            ..site()
        };
        assert!(many.validate(50).is_err());
        assert!(many.validate(51).is_ok());
        assert!(parse_status("302", "HttpRedirectCode", 300..=399).is_ok());
        assert!(parse_status("200", "HttpRedirectCode", 300..=399).is_err());
        assert!(parse_status("x", "HttpRedirectCode", 300..=399).is_err());
    }

    #[test]
    fn index_documents_for_root_and_directories() {
        let c = site();
        assert_eq!(
            c.first_step(&req("")),
            Step::Fetch {
                key: "index.html".into()
            }
        );
        assert_eq!(
            c.first_step(&req("docs/")),
            Step::Fetch {
                key: "docs/index.html".into()
            }
        );
        assert_eq!(c.first_step(&req("a.css")), Step::Fetch { key: "a.css".into() });
        assert_eq!(c.directory_index("docs"), Some("docs/index.html".into()));
        assert_eq!(c.directory_index("docs/"), None);
        assert_eq!(c.directory_index(""), None);
    }

    #[test]
    fn redirect_all_keeps_the_path() {
        let c = WebsiteConfig {
            redirect_all: Some(RedirectAll {
                host_name: "example.com".into(),
                protocol: None,
            }),
            ..Default::default()
        };
        assert_eq!(
            c.first_step(&req("a b/c.html")),
            Step::Redirect {
                location: "http://example.com/a%20b/c.html".into(),
                status: 301
            }
        );
    }

    #[test]
    fn routing_rules_in_order() {
        let c = WebsiteConfig {
            rules: vec![
                rule(
                    Some("docs/"),
                    None,
                    Redirect {
                        replace_key_prefix_with: Some("documents/".into()),
                        ..Default::default()
                    },
                ),
                rule(
                    Some("docs/"),
                    None,
                    Redirect {
                        replace_key_with: Some("never.html".into()),
                        ..Default::default()
                    },
                ),
                rule(
                    None,
                    Some(404),
                    Redirect {
                        protocol: Some("https".into()),
                        host_name: Some("fallback.example".into()),
                        replace_key_prefix_with: Some("report-404/".into()),
                        replace_key_with: None,
                        http_redirect_code: Some(302),
                    },
                ),
            ],
            ..site()
        };
        assert_eq!(
            c.first_step(&req("docs/a.html")),
            Step::Redirect {
                location: "http://b.s3-website.localhost:9000/documents/a.html".into(),
                status: 301
            }
        );
        // Error-conditioned rules wait for the fetch.
        assert_eq!(c.first_step(&req("x.html")), Step::Fetch { key: "x.html".into() });
        assert_eq!(
            c.on_error(&req("x.html"), 404),
            Some(("https://fallback.example/report-404/x.html".into(), 302))
        );
        assert_eq!(c.on_error(&req("x.html"), 403), None);
    }

    #[test]
    fn error_page_is_s3_html() {
        let page = error_page(404, "NoSuchKey", "The specified key does not exist.", &[("Key", "<x>")]);
        assert!(page.contains("<title>404 Not Found</title>"), "{page}");
        assert!(page.contains("<li>Code: NoSuchKey</li>"));
        assert!(page.contains("<li>Key: &lt;x&gt;</li>"));
    }

    #[test]
    fn buckets_from_hosts() {
        let d = "s3-website.localhost";
        assert_eq!(
            bucket_from_host("site.s3-website.localhost:9000", d, false),
            Some("site".into())
        );
        assert_eq!(
            bucket_from_host("my.site.S3-Website.localhost", d, false),
            Some("my.site".into())
        );
        assert_eq!(bucket_from_host("127.0.0.1:9000", d, false), None);
        assert_eq!(bucket_from_host("s3-website.localhost", d, false), None);
        assert_eq!(bucket_from_host("site.example.com:8080", d, true), Some("site".into()));
        assert_eq!(bucket_from_host("site.example.com", "", false), None);
    }
}
