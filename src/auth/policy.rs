//! Bucket policies: the subset of the AWS IAM policy language that S3 bucket policies use here.
//! This module owns parsing and validating a document attached to one bucket ([`Policy::parse`]),
//! deciding what it says about one request ([`Policy::evaluate`]) and whether it grants access to
//! the public ([`Policy::is_public`], for Block Public Access).
//!
//! Supported: Effect Allow/Deny; Principal `"*"` or `{"AWS": ...}` naming access key ids (bare or
//! as `arn:aws:iam::<account>:user/<key id>`); `s3:` actions and bucket ARNs with `*`/`?`; the
//! condition operators IpAddress, NotIpAddress, Bool, String(Not)Equals, String(Not)EqualsIgnoreCase
//! and String(Not)Like, each also with `IfExists`, on aws:SourceIp, aws:SecureTransport,
//! aws:Referer, aws:username and s3:prefix. Anything else (NotPrincipal, NotAction, NotResource,
//! other keys or operators) is refused at parse time rather than ignored, so a stored policy never
//! means less than its author wrote.

use std::collections::HashSet;
use std::net::IpAddr;

use serde_json::{Map, Value};

/// S3's limit on the size of a bucket policy document.
pub const MAX_POLICY_BYTES: usize = 20 * 1024;

const RESOURCE_PREFIX: &str = "arn:aws:s3:::";
const INVALID_SYNTAX: &str = "Invalid policy syntax.";
const INVALID_RESOURCE: &str = "Policy has invalid resource";
const INVALID_PRINCIPAL: &str = "Invalid principal in policy";

/// AWS calls a policy non-public when it "limits access to a set of CIDRs" without saying how
/// small; we take /8 (IPv4) and /32 (IPv6) or narrower as such a set, so `0.0.0.0/1`-style
/// ranges that merely look like a restriction still count as public.
const MIN_PINNING_PREFIX_V4: u8 = 8;
const MIN_PINNING_PREFIX_V6: u8 = 32;

/// What a policy says about one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// A Deny statement matched: this overrides every Allow and every other grant.
    Deny,
    Allow,
    /// No statement matched; the caller falls back to its other rules (ownership, ACLs).
    NoOpinion,
}

/// The facts about a request that a policy can look at.
#[derive(Debug, Clone, Copy)]
pub struct PolicyRequest<'a> {
    /// Access key id of the caller; `None` = anonymous.
    pub principal: Option<&'a str>,
    /// The caller's key name, for `aws:username`.
    pub username: Option<&'a str>,
    /// e.g. `s3:GetObject`.
    pub action: &'a str,
    /// `arn:aws:s3:::bucket` or `arn:aws:s3:::bucket/key`.
    pub resource: &'a str,
    pub source_ip: Option<IpAddr>,
    pub secure_transport: bool,
    pub referer: Option<&'a str>,
    /// `s3:prefix` (ListBucket requests).
    pub prefix: Option<&'a str>,
}

/// A parsed, validated bucket policy.
#[derive(Debug, Clone)]
pub struct Policy {
    statements: Vec<Statement>,
}

#[derive(Debug, Clone)]
struct Statement {
    effect: Effect,
    principal: Principal,
    /// Patterns matched case-insensitively (IAM action names are).
    actions: Vec<String>,
    /// Full ARN patterns matched case-sensitively (object keys are).
    resources: Vec<String>,
    /// All must hold.
    conditions: Vec<Condition>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Effect {
    Allow,
    Deny,
}

#[derive(Debug, Clone)]
enum Principal {
    Anyone,
    AccessKeys(Vec<String>),
}

/// One operator applied to one key: true when any of its values matches (inverted for the
/// negated operators).
#[derive(Debug, Clone)]
struct Condition {
    negated: bool,
    if_exists: bool,
    test: Test,
}

/// A condition key with the values it is compared with, typed by what the key holds.
#[derive(Debug, Clone)]
enum Test {
    SourceIp(Vec<Cidr>),
    SecureTransport(Vec<bool>),
    Text(TextKey, TextMatch, Vec<String>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TextKey {
    Referer,
    Prefix,
    Username,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TextMatch {
    Equals,
    EqualsIgnoreCase,
    Like,
}

/// What an operator compares, apart from negation and `IfExists`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OperatorKind {
    Ip,
    Bool,
    Text(TextMatch),
}

#[derive(Debug, Clone, Copy)]
struct Cidr {
    network: IpAddr,
    prefix_len: u8,
}

impl Policy {
    /// `bucket` is the bucket the policy is being attached to: every Resource must be inside it.
    /// The error is the message for S3's `MalformedPolicy`.
    pub fn parse(json: &[u8], bucket: &str) -> Result<Policy, String> {
        if json.len() > MAX_POLICY_BYTES {
            return Err(format!(
                "Policy document exceeds the maximum size of {MAX_POLICY_BYTES} bytes"
            ));
        }
        let Ok(Value::Object(fields)) = serde_json::from_slice::<Value>(json) else {
            return Err(INVALID_SYNTAX.into());
        };
        reject_unknown_fields(&fields, &["Version", "Id", "Statement"])?;
        match fields.get("Version") {
            None => {}
            Some(Value::String(version)) if version == "2012-10-17" || version == "2008-10-17" => {}
            Some(_) => return Err("Invalid policy version: must be 2012-10-17 or 2008-10-17".into()),
        }
        if fields.get("Id").is_some_and(|id| !id.is_string()) {
            return Err("Id must be a string".into());
        }
        let statements = match fields.get("Statement") {
            None => return Err(missing_field("Statement")),
            Some(Value::Array(many)) => many.as_slice(),
            Some(one) => std::slice::from_ref(one),
        };
        if statements.is_empty() {
            return Err("Policy has no statements".into());
        }
        let mut sids = HashSet::new();
        let mut parsed = Vec::with_capacity(statements.len());
        for statement in statements {
            let Value::Object(statement) = statement else {
                return Err(INVALID_SYNTAX.into());
            };
            if let Some(Value::String(sid)) = statement.get("Sid") {
                if !sids.insert(sid.as_str()) {
                    return Err("Statement IDs (SID) in a single policy must be unique".into());
                }
            }
            parsed.push(Statement::parse(statement, bucket)?);
        }
        Ok(Policy { statements: parsed })
    }

    /// Explicit Deny wins over Allow; no match is `NoOpinion`. With `ignore_public_statements`
    /// (S3's RestrictPublicBuckets) Allow statements that are public on their own are skipped;
    /// Deny statements never are.
    pub fn evaluate(&self, req: &PolicyRequest, ignore_public_statements: bool) -> Decision {
        let mut allowed = false;
        for statement in &self.statements {
            let is_allow = statement.effect == Effect::Allow;
            // Deny statements must still be checked after an Allow matched; Allows need not.
            if is_allow && (allowed || (ignore_public_statements && statement.is_public())) {
                continue;
            }
            if statement.applies_to(req) {
                if !is_allow {
                    return Decision::Deny;
                }
                allowed = true;
            }
        }
        if allowed {
            Decision::Allow
        } else {
            Decision::NoOpinion
        }
    }

    /// True when some Allow statement grants access to everyone without a condition pinning
    /// who or where the caller is (see `Condition::pins_caller`).
    pub fn is_public(&self) -> bool {
        self.statements.iter().any(Statement::is_public)
    }
}

impl Statement {
    fn parse(fields: &Map<String, Value>, bucket: &str) -> Result<Statement, String> {
        for unsupported in ["NotPrincipal", "NotAction", "NotResource"] {
            if fields.contains_key(unsupported) {
                return Err(format!("{unsupported} is not supported"));
            }
        }
        reject_unknown_fields(
            fields,
            &["Sid", "Effect", "Principal", "Action", "Resource", "Condition"],
        )?;
        if fields.get("Sid").is_some_and(|sid| !sid.is_string()) {
            return Err("Sid must be a string".into());
        }
        let effect = match required_field(fields, "Effect")?.as_str() {
            Some("Allow") => Effect::Allow,
            Some("Deny") => Effect::Deny,
            _ => return Err("Invalid effect: must be Allow or Deny".into()),
        };
        let principal = parse_principal(required_field(fields, "Principal")?)?;
        let actions = string_list(required_field(fields, "Action")?)
            .ok_or("Action must be a string or a non-empty array of strings")?
            .into_iter()
            .map(parse_action)
            .collect::<Result<_, _>>()?;
        let resources = string_list(required_field(fields, "Resource")?)
            .ok_or(INVALID_RESOURCE)?
            .into_iter()
            .map(|resource| parse_resource(resource, bucket))
            .collect::<Result<_, _>>()?;
        let conditions = match fields.get("Condition") {
            None => Vec::new(),
            Some(blocks) => parse_conditions(blocks)?,
        };
        Ok(Statement {
            effect,
            principal,
            actions,
            resources,
            conditions,
        })
    }

    fn applies_to(&self, req: &PolicyRequest) -> bool {
        let principal_matches = match &self.principal {
            Principal::Anyone => true,
            Principal::AccessKeys(keys) => req.principal.is_some_and(|caller| keys.iter().any(|key| key == caller)),
        };
        principal_matches
            && self
                .actions
                .iter()
                .any(|pattern| wildcard_match(pattern, req.action, true))
            && self
                .resources
                .iter()
                .any(|pattern| wildcard_match(pattern, req.resource, false))
            && self.conditions.iter().all(|condition| condition.holds(req))
    }

    fn is_public(&self) -> bool {
        self.effect == Effect::Allow
            && matches!(self.principal, Principal::Anyone)
            && !self.conditions.iter().any(Condition::pins_caller)
    }
}

impl Condition {
    fn holds(&self, req: &PolicyRequest) -> bool {
        let any_value_matches = match &self.test {
            Test::SourceIp(cidrs) => req.source_ip.map(|ip| cidrs.iter().any(|cidr| cidr.contains(ip))),
            Test::SecureTransport(values) => Some(values.contains(&req.secure_transport)),
            Test::Text(key, how, values) => key
                .value_in(req)
                .map(|actual| values.iter().any(|value| how.matches(value, actual))),
        };
        match any_value_matches {
            // As in AWS: a missing key fails the positive operators and satisfies the negated
            // ones; `...IfExists` lets it through either way.
            None => self.if_exists || self.negated,
            Some(matched) => matched != self.negated,
        }
    }

    /// Whether this condition keeps a `Principal: "*"` grant from being public. Following AWS's
    /// "meaning of public", simplified: an `IpAddress` on source ranges no wider than /8 (v4) or
    /// /32 (v6), or a `StringEquals` on aws:username (anonymous callers have none). Referer and
    /// SecureTransport are not: any client can send the header or use TLS. Negated and `IfExists`
    /// operators never pin: they let in everyone outside a set, or everyone lacking the key.
    fn pins_caller(&self) -> bool {
        if self.negated || self.if_exists {
            return false;
        }
        match &self.test {
            Test::SourceIp(cidrs) => cidrs.iter().all(Cidr::is_narrow),
            Test::Text(TextKey::Username, TextMatch::Equals, _) => true,
            _ => false,
        }
    }
}

impl TextMatch {
    fn matches(self, policy_value: &str, actual: &str) -> bool {
        match self {
            TextMatch::Equals => policy_value == actual,
            TextMatch::EqualsIgnoreCase => policy_value
                .chars()
                .flat_map(char::to_lowercase)
                .eq(actual.chars().flat_map(char::to_lowercase)),
            TextMatch::Like => wildcard_match(policy_value, actual, false),
        }
    }
}

impl TextKey {
    fn value_in<'a>(self, req: &PolicyRequest<'a>) -> Option<&'a str> {
        match self {
            TextKey::Referer => req.referer,
            TextKey::Prefix => req.prefix,
            TextKey::Username => req.username,
        }
    }
}

impl Cidr {
    /// `a.b.c.d/n`, `v6::/n`, or a bare address (a single host).
    fn parse(text: &str) -> Option<Cidr> {
        let (address, prefix_len) = match text.split_once('/') {
            Some((address, len)) => (address, Some(len)),
            None => (text, None),
        };
        let network: IpAddr = address.parse().ok()?;
        let max_len = if network.is_ipv4() { 32 } else { 128 };
        let prefix_len = match prefix_len {
            None => max_len,
            Some(len) if !len.is_empty() && len.bytes().all(|b| b.is_ascii_digit()) => {
                len.parse::<u8>().ok().filter(|len| *len <= max_len)?
            }
            Some(_) => return None,
        };
        Some(Cidr { network, prefix_len })
    }

    fn contains(&self, ip: IpAddr) -> bool {
        // A v4 client on a dual-stack listener arrives as ::ffff:a.b.c.d; compare it as v4.
        // Both sides are left-aligned in a u128 so one mask works for either family.
        let (network, address) = match (self.network, ip.to_canonical()) {
            (IpAddr::V4(network), IpAddr::V4(address)) => (
                u128::from(u32::from(network)) << 96,
                u128::from(u32::from(address)) << 96,
            ),
            (IpAddr::V6(network), IpAddr::V6(address)) => (u128::from(network), u128::from(address)),
            _ => return false,
        };
        let mask = u128::MAX.checked_shl(128 - u32::from(self.prefix_len)).unwrap_or(0);
        network & mask == address & mask
    }

    fn is_narrow(&self) -> bool {
        let min_len = if self.network.is_ipv4() {
            MIN_PINNING_PREFIX_V4
        } else {
            MIN_PINNING_PREFIX_V6
        };
        self.prefix_len >= min_len
    }
}

fn parse_principal(value: &Value) -> Result<Principal, String> {
    let aws = match value {
        Value::String(star) if star == "*" => return Ok(Principal::Anyone),
        Value::Object(types) => {
            if let Some(other) = types.keys().find(|kind| *kind != "AWS") {
                return Err(format!("Unsupported principal type {other}: only AWS is supported"));
            }
            types.get("AWS").ok_or(INVALID_PRINCIPAL)?
        }
        _ => return Err(INVALID_PRINCIPAL.into()),
    };
    let names = string_list(aws).ok_or(INVALID_PRINCIPAL)?;
    // Every name is validated, even next to a "*", so a typo is reported rather than stored.
    let keys = names
        .iter()
        .filter(|name| **name != "*")
        .map(|name| {
            access_key_of(name)
                .map(str::to_owned)
                .ok_or_else(|| format!("{INVALID_PRINCIPAL}: {name}"))
        })
        .collect::<Result<_, _>>()?;
    Ok(if names.contains(&"*") {
        Principal::Anyone
    } else {
        Principal::AccessKeys(keys)
    })
}

/// The access key id a principal names: a bare id or `arn:aws:iam::<account>:user/<id>`. The
/// account is ignored because keys, not accounts, are the identities here.
fn access_key_of(principal: &str) -> Option<&str> {
    let id = match principal.strip_prefix("arn:aws:iam::") {
        None => principal,
        Some(rest) => rest.split_once(':')?.1.strip_prefix("user/")?,
    };
    let valid =
        (1..=128).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b"_+=,.@-".contains(&b));
    valid.then_some(id)
}

fn parse_action(action: &str) -> Result<String, String> {
    if action == "*" {
        return Ok(action.to_owned());
    }
    // The service prefix is case-insensitive in IAM, as are action names.
    let name = match action.split_once(':') {
        Some((service, name)) if service.eq_ignore_ascii_case("s3") => name,
        _ => "",
    };
    let valid = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'*' || b == b'?');
    if !valid {
        return Err(format!("Policy has invalid action: {action}"));
    }
    Ok(action.to_owned())
}

fn parse_resource(resource: &str, bucket: &str) -> Result<String, String> {
    let path = resource.strip_prefix(RESOURCE_PREFIX).ok_or(INVALID_RESOURCE)?;
    // Like S3: the bucket part must be this bucket, spelled out (no wildcards).
    let bucket_part = path.split_once('/').map_or(path, |(bucket_part, _)| bucket_part);
    if bucket_part != bucket {
        return Err(INVALID_RESOURCE.into());
    }
    Ok(resource.to_owned())
}

fn parse_conditions(blocks: &Value) -> Result<Vec<Condition>, String> {
    let Value::Object(blocks) = blocks else {
        return Err("Condition must be an object".into());
    };
    let mut conditions = Vec::new();
    for (operator_name, keys) in blocks {
        let (kind, negated, if_exists) =
            parse_operator(operator_name).ok_or_else(|| format!("Invalid Condition operator: {operator_name}"))?;
        let Value::Object(keys) = keys else {
            return Err(format!("Condition operator {operator_name} must map keys to values"));
        };
        if keys.is_empty() {
            return Err(format!("Condition operator {operator_name} has no keys"));
        }
        for (key, values) in keys {
            let test = parse_test(kind, operator_name, key, values)?;
            conditions.push(Condition {
                negated,
                if_exists,
                test,
            });
        }
    }
    Ok(conditions)
}

/// The operator's kind, whether it is negated, and whether it carries the `IfExists` suffix.
fn parse_operator(name: &str) -> Option<(OperatorKind, bool, bool)> {
    use OperatorKind::{Bool, Ip, Text};
    use TextMatch::{Equals, EqualsIgnoreCase, Like};
    let base_name = name.strip_suffix("IfExists");
    let (kind, negated) = match base_name.unwrap_or(name) {
        "IpAddress" => (Ip, false),
        "NotIpAddress" => (Ip, true),
        "Bool" => (Bool, false),
        "StringEquals" => (Text(Equals), false),
        "StringNotEquals" => (Text(Equals), true),
        "StringEqualsIgnoreCase" => (Text(EqualsIgnoreCase), false),
        "StringNotEqualsIgnoreCase" => (Text(EqualsIgnoreCase), true),
        "StringLike" => (Text(Like), false),
        "StringNotLike" => (Text(Like), true),
        _ => return None,
    };
    Some((kind, negated, base_name.is_some()))
}

fn parse_test(kind: OperatorKind, operator_name: &str, key: &str, values: &Value) -> Result<Test, String> {
    // Condition keys are case-insensitive in IAM.
    let key_lowercase = key.to_ascii_lowercase();
    let text_key = match key_lowercase.as_str() {
        "aws:referer" => Some(TextKey::Referer),
        "s3:prefix" => Some(TextKey::Prefix),
        "aws:username" => Some(TextKey::Username),
        "aws:sourceip" | "aws:securetransport" => None,
        _ => return Err(format!("Invalid Condition key: {key}")),
    };
    let invalid_value = || format!("Invalid Condition value for {key}");
    let values = one_or_many(values).ok_or_else(invalid_value)?;
    let test = match (kind, text_key, key_lowercase.as_str()) {
        (OperatorKind::Ip, None, "aws:sourceip") => values
            .iter()
            .map(|v| v.as_str().and_then(Cidr::parse))
            .collect::<Option<_>>()
            .map(Test::SourceIp),
        (OperatorKind::Bool, None, "aws:securetransport") => values
            .iter()
            .map(json_bool)
            .collect::<Option<_>>()
            .map(Test::SecureTransport),
        (OperatorKind::Text(how), Some(text_key), _) => {
            let strings = values
                .iter()
                .map(|v| v.as_str().map(str::to_owned))
                .collect::<Option<_>>();
            strings.map(|strings| Test::Text(text_key, how, strings))
        }
        _ => {
            return Err(format!(
                "Condition operator {operator_name} cannot be used with key {key}"
            ))
        }
    };
    test.ok_or_else(invalid_value)
}

/// Bool accepts `true`/`false` as JSON booleans or strings (policies usually quote them).
fn json_bool(value: &Value) -> Option<bool> {
    match value {
        Value::Bool(b) => Some(*b),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Some(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Some(false),
        _ => None,
    }
}

/// A value or a non-empty array of values, as IAM allows for every list field.
fn one_or_many(value: &Value) -> Option<&[Value]> {
    match value {
        Value::Array(many) if many.is_empty() => None,
        Value::Array(many) => Some(many),
        one => Some(std::slice::from_ref(one)),
    }
}

fn string_list(value: &Value) -> Option<Vec<&str>> {
    one_or_many(value)?.iter().map(Value::as_str).collect()
}

fn required_field<'a>(fields: &'a Map<String, Value>, name: &str) -> Result<&'a Value, String> {
    fields.get(name).ok_or_else(|| missing_field(name))
}

fn missing_field(name: &str) -> String {
    format!("Missing required field {name}")
}

fn reject_unknown_fields(fields: &Map<String, Value>, known: &[&str]) -> Result<(), String> {
    match fields.keys().find(|name| !known.contains(&name.as_str())) {
        Some(unknown) => Err(format!("Unknown field {unknown}")),
        None => Ok(()),
    }
}

/// IAM glob: `*` matches any run of characters (including none), `?` exactly one. Iterative
/// two-pointer matching that backtracks only to the last `*`: O(pattern × text) at worst, never
/// exponential, whatever the pattern.
fn wildcard_match(pattern: &str, text: &str, ignore_ascii_case: bool) -> bool {
    fn char_at(s: &str, index: usize) -> Option<char> {
        s.get(index..)?.chars().next()
    }
    let (mut p, mut t) = (0, 0);
    // After a `*`: where the pattern resumes, and the text position that `*` has swallowed up to.
    let mut last_star: Option<(usize, usize)> = None;
    while let Some(text_char) = char_at(text, t) {
        match char_at(pattern, p) {
            Some('*') => {
                p += 1;
                last_star = Some((p, t));
                continue;
            }
            Some(pattern_char)
                if pattern_char == '?'
                    || pattern_char == text_char
                    || (ignore_ascii_case && pattern_char.eq_ignore_ascii_case(&text_char)) =>
            {
                p += pattern_char.len_utf8();
                t += text_char.len_utf8();
                continue;
            }
            _ => {}
        }
        // Mismatch: let the last `*` swallow one more character and retry from there.
        let Some((resume, swallowed)) = last_star else {
            return false;
        };
        let Some(skipped) = char_at(text, swallowed) else {
            return false;
        };
        p = resume;
        t = swallowed + skipped.len_utf8();
        last_star = Some((resume, t));
    }
    pattern.get(p..).is_some_and(|rest| rest.bytes().all(|b| b == b'*'))
}

/// Fuzz entry point (for cargo-fuzz, or the loop test below): parses arbitrary bytes and, if they
/// form a policy for bucket `bucket`, evaluates it against a few fixed requests. Never panics.
pub fn fuzz_parse_and_evaluate(data: &[u8]) {
    let Ok(policy) = Policy::parse(data, "bucket") else {
        return;
    };
    std::hint::black_box(policy.is_public());
    for request in &fuzz_requests() {
        for ignore_public_statements in [false, true] {
            std::hint::black_box(policy.evaluate(request, ignore_public_statements));
        }
    }
}

fn fuzz_requests() -> [PolicyRequest<'static>; 4] {
    let anonymous = PolicyRequest {
        principal: None,
        username: None,
        action: "s3:GetObject",
        resource: "arn:aws:s3:::bucket/photos/cat.jpg",
        source_ip: None,
        secure_transport: false,
        referer: None,
        prefix: None,
    };
    [
        anonymous,
        PolicyRequest {
            principal: Some("AKIAEXAMPLE"),
            username: Some("alice"),
            source_ip: Some(IpAddr::from([192, 0, 2, 7])),
            secure_transport: true,
            referer: Some("https://example.com/page"),
            ..anonymous
        },
        PolicyRequest {
            action: "s3:ListBucket",
            resource: "arn:aws:s3:::bucket",
            source_ip: Some(IpAddr::from([0x2001, 0xdb8, 0, 0, 0, 0, 0, 1])),
            prefix: Some("home/alice/"),
            ..anonymous
        },
        PolicyRequest {
            action: "S3:PUTOBJECT",
            resource: "arn:aws:s3:::bucket/ünï/?*/",
            ..anonymous
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use Decision::{Allow, Deny, NoOpinion};

    const ANYONE: &str = r#""*""#;
    const ALICE: &str = r#"{"AWS":"AKIAALICE"}"#;
    const GET: &str = r#""s3:GetObject""#;
    const OBJECTS: &str = r#""arn:aws:s3:::photos/*""#;

    fn parse(document: &str) -> Result<Policy, String> {
        Policy::parse(document.as_bytes(), "photos")
    }

    /// One statement from raw JSON fragments; an empty fragment leaves its field out.
    fn stmt(effect: &str, principal: &str, action: &str, resource: &str, condition: &str) -> String {
        let fields = [
            ("Principal", principal),
            ("Action", action),
            ("Resource", resource),
            ("Condition", condition),
        ];
        let present = fields.iter().filter(|(_, value)| !value.is_empty());
        let rest: String = present.map(|(name, value)| format!(r#","{name}":{value}"#)).collect();
        format!(r#"{{"Effect":"{effect}"{rest}}}"#)
    }

    fn policy(statements: &[String]) -> Policy {
        let document = format!(r#"{{"Version":"2012-10-17","Statement":[{}]}}"#, statements.join(","));
        parse(&document).unwrap_or_else(|error| panic!("{document}: {error}"))
    }

    fn parse_error(statement: &str) -> String {
        parse(&format!(r#"{{"Statement":[{statement}]}}"#)).expect_err(statement)
    }

    /// Everyone may GetObject, under `condition`.
    fn public_get(condition: &str) -> Policy {
        policy(&[stmt("Allow", ANYONE, GET, OBJECTS, condition)])
    }

    fn condition_error(condition: &str) -> String {
        parse_error(&stmt("Allow", ANYONE, GET, OBJECTS, condition))
    }

    /// An anonymous GetObject of photos/cat.jpg over TLS, changed by `edit`.
    fn get(edit: impl FnOnce(&mut PolicyRequest<'static>)) -> PolicyRequest<'static> {
        let mut request = PolicyRequest {
            principal: None,
            username: None,
            action: "s3:GetObject",
            resource: "arn:aws:s3:::photos/cat.jpg",
            source_ip: None,
            secure_transport: true,
            referer: None,
            prefix: None,
        };
        edit(&mut request);
        request
    }

    fn anonymous_get() -> PolicyRequest<'static> {
        get(|_| {})
    }

    fn alice(request: &mut PolicyRequest<'static>) {
        request.principal = Some("AKIAALICE");
        request.username = Some("alice");
    }

    fn ip(text: &str) -> Option<IpAddr> {
        Some(text.parse().expect("test address"))
    }

    #[test]
    fn top_level_fields_are_validated() {
        let ok = stmt("Allow", ANYONE, GET, OBJECTS, "");
        for version in [r#""Version":"2012-10-17","#, r#""Version":"2008-10-17","#, ""] {
            let document = format!(r#"{{{version}"Id":"x","Statement":{ok}}}"#);
            assert!(parse(&document).is_ok(), "{document}");
        }
        let with_sid = ok.replacen('{', r#"{"Sid":"a","#, 1);
        let bad_version = format!(r#"{{"Version":"2020-01-01","Statement":[{ok}]}}"#);
        let duplicate_sids = format!(r#"{{"Statement":[{with_sid},{with_sid}]}}"#);
        let too_big = format!(r#"{{"Id":"{}","Statement":{ok}}}"#, "x".repeat(MAX_POLICY_BYTES));
        #[rustfmt::skip]
        let cases = [
            (bad_version, "Invalid policy version: must be 2012-10-17 or 2008-10-17"),
            (format!(r#"{{"Id":7,"Statement":[{ok}]}}"#), "Id must be a string"),
            (format!(r#"{{"Foo":1,"Statement":[{ok}]}}"#), "Unknown field Foo"),
            (duplicate_sids, "Statement IDs (SID) in a single policy must be unique"),
            (too_big, "Policy document exceeds the maximum size of 20480 bytes"),
            (r#"{"Version":"2012-10-17"}"#.into(), "Missing required field Statement"),
            (r#"{"Statement":[]}"#.into(), "Policy has no statements"),
            (r#"{"Statement":["x"]}"#.into(), INVALID_SYNTAX),
            ("[1]".into(), INVALID_SYNTAX),
            (r#"{"Statement":"#.into(), INVALID_SYNTAX),
        ];
        for (document, expected) in cases {
            assert_eq!(parse(&document).expect_err(&document), expected);
        }
    }

    #[test]
    fn statement_fields_are_validated() {
        let anything = stmt("Allow", ANYONE, GET, OBJECTS, "");
        let with = |field: &str| anything.replacen('{', &format!("{{{field},"), 1);
        #[rustfmt::skip]
        let cases = [
            (stmt("Allow", "", GET, OBJECTS, ""), "Missing required field Principal"),
            (stmt("Allow", ANYONE, "", OBJECTS, ""), "Missing required field Action"),
            (stmt("Allow", ANYONE, GET, "", ""), "Missing required field Resource"),
            (anything.replace(r#""Effect":"Allow","#, ""), "Missing required field Effect"),
            (stmt("Maybe", ANYONE, GET, OBJECTS, ""), "Invalid effect: must be Allow or Deny"),
            (with(r#""Foo":1"#), "Unknown field Foo"),
            (with(r#""Sid":1"#), "Sid must be a string"),
            (with(r#""NotPrincipal":"*""#), "NotPrincipal is not supported"),
            (with(r#""NotAction":"*""#), "NotAction is not supported"),
            (with(r#""NotResource":"*""#), "NotResource is not supported"),
            (stmt("Allow", ANYONE, "[]", OBJECTS, ""), "Action must be a string or a non-empty array of strings"),
            (stmt("Allow", ANYONE, GET, "[]", ""), INVALID_RESOURCE),
            (stmt("Allow", ANYONE, GET, OBJECTS, "[]"), "Condition must be an object"),
        ];
        for (statement, expected) in cases {
            assert_eq!(parse_error(&statement), expected, "{statement}");
        }
    }

    #[test]
    fn principals_name_access_keys_or_everyone() {
        let alice_arn = r#"{"AWS":["AKIACAROL","arn:aws:iam::123456789012:user/AKIAALICE"]}"#;
        let bob = get(|r| r.principal = Some("AKIABOB"));
        let lowercase_alice = get(|r| r.principal = Some("akiaalice"));
        #[rustfmt::skip]
        let cases = [
            (ANYONE, anonymous_get(), Allow),
            (ANYONE, get(alice), Allow),
            (r#"{"AWS":"*"}"#, anonymous_get(), Allow),
            (r#"{"AWS":["AKIABOB","*"]}"#, anonymous_get(), Allow),
            (ALICE, get(alice), Allow),
            (ALICE, anonymous_get(), NoOpinion),
            (ALICE, bob, NoOpinion),
            (ALICE, lowercase_alice, NoOpinion),
            (alice_arn, get(alice), Allow),
            (alice_arn, bob, NoOpinion),
            (alice_arn, anonymous_get(), NoOpinion),
        ];
        for (principal, request, expected) in cases {
            let policy = policy(&[stmt("Allow", principal, r#""s3:*""#, OBJECTS, "")]);
            assert_eq!(policy.evaluate(&request, false), expected, "{principal} {request:?}");
        }
        let too_long = "A".repeat(129);
        for name in [
            "arn:aws:iam::123456789012:root",
            "arn:aws:iam::1:user/path/AKIA",
            "has space",
            "",
            &too_long,
        ] {
            let error = parse_error(&stmt(
                "Allow",
                &format!(r#"{{"AWS":["*","{name}"]}}"#),
                GET,
                OBJECTS,
                "",
            ));
            assert_eq!(error, format!("Invalid principal in policy: {name}"));
        }
        #[rustfmt::skip]
        let cases = [
            (r#""AKIAALICE""#, INVALID_PRINCIPAL),
            (r#"{"AWS":[]}"#, INVALID_PRINCIPAL),
            (r#"{"AWS":7}"#, INVALID_PRINCIPAL),
            (r#"{}"#, INVALID_PRINCIPAL),
            (r#"{"Service":"s3.amazonaws.com"}"#, "Unsupported principal type Service: only AWS is supported"),
        ];
        for (principal, expected) in cases {
            assert_eq!(parse_error(&stmt("Allow", principal, GET, OBJECTS, "")), expected);
        }
    }

    #[test]
    fn actions_match_case_insensitively_with_wildcards() {
        let put = get(|r| r.action = "s3:PutObject");
        #[rustfmt::skip]
        let cases = [
            (GET, anonymous_get(), Allow),
            (r#""S3:getobject""#, anonymous_get(), Allow),
            (r#""s3:Get*""#, anonymous_get(), Allow),
            (r#""s3:?etObjec?""#, anonymous_get(), Allow),
            (r#""s3:*""#, anonymous_get(), Allow),
            (r#""*""#, anonymous_get(), Allow),
            (r#""s3:Get*""#, put, NoOpinion),
            (r#"["s3:GetObject","s3:ListBucket"]"#, put, NoOpinion),
            (r#"["s3:GetObject","s3:PutObject"]"#, put, Allow),
            (r#""s3:?utObjec""#, put, NoOpinion),
        ];
        for (action, request, expected) in cases {
            let policy = policy(&[stmt("Allow", ANYONE, action, OBJECTS, "")]);
            assert_eq!(
                policy.evaluate(&request, false),
                expected,
                "{action} {}",
                request.action
            );
        }
        for invalid in ["iam:PassRole", "s3:", "s3:Get Object", "ec2:*", "s3", "s3:Get/Object"] {
            let error = parse_error(&stmt("Allow", ANYONE, &format!("\"{invalid}\""), OBJECTS, ""));
            assert_eq!(error, format!("Policy has invalid action: {invalid}"));
        }
    }

    #[test]
    fn resources_must_be_in_the_bucket_and_match_case_sensitively() {
        let list = get(|r| (r.action, r.resource) = ("s3:ListBucket", "arn:aws:s3:::photos"));
        #[rustfmt::skip]
        let cases = [
            (r#""arn:aws:s3:::photos""#, list, Allow),
            (r#""arn:aws:s3:::photos""#, anonymous_get(), NoOpinion),
            (OBJECTS, list, NoOpinion),
            (r#""arn:aws:s3:::photos/c?t.*""#, anonymous_get(), Allow),
            (r#""arn:aws:s3:::photos/CAT.jpg""#, anonymous_get(), NoOpinion),
            (r#"["arn:aws:s3:::photos/dog/*","arn:aws:s3:::photos/cat.jpg"]"#, anonymous_get(), Allow),
        ];
        for (resource, request, expected) in cases {
            let policy = policy(&[stmt("Allow", ANYONE, r#""s3:*""#, resource, "")]);
            assert_eq!(
                policy.evaluate(&request, false),
                expected,
                "{resource} {}",
                request.resource
            );
        }
        #[rustfmt::skip]
        let invalid = [
            r#""arn:aws:s3:::videos/*""#, r#""arn:aws:s3:::photo*/*""#, r#""arn:aws:s3:::*""#, r#""*""#, "7",
            r#""arn:aws:s3:::photos2""#, r#""arn:aws:iam:::photos/*""#, r#""arn:aws:s3:::photos?""#,
            r#"["arn:aws:s3:::photos/*","arn:aws:s3:::a/*"]"#,
        ];
        for resource in invalid {
            assert_eq!(
                parse_error(&stmt("Allow", ANYONE, r#""s3:*""#, resource, "")),
                INVALID_RESOURCE,
                "{resource}"
            );
        }
    }

    #[test]
    fn explicit_deny_wins_and_no_match_is_no_opinion() {
        let everything = stmt(
            "Allow",
            ANYONE,
            r#""s3:*""#,
            r#"["arn:aws:s3:::photos","arn:aws:s3:::photos/*"]"#,
            "",
        );
        let deny_alice = stmt("Deny", ALICE, r#""s3:Get*""#, OBJECTS, "");
        let alice_put = get(|r| {
            alice(r);
            r.action = "s3:PutObject";
        });
        // Statement order must not matter.
        for policy in [
            policy(&[everything.clone(), deny_alice.clone()]),
            policy(&[deny_alice, everything]),
        ] {
            assert_eq!(policy.evaluate(&get(alice), false), Deny);
            assert_eq!(policy.evaluate(&get(alice), true), Deny);
            assert_eq!(policy.evaluate(&anonymous_get(), false), Allow);
            assert_eq!(policy.evaluate(&alice_put, false), Allow);
        }
        let deny_delete = policy(&[stmt("Deny", ANYONE, r#""s3:DeleteObject""#, OBJECTS, "")]);
        assert_eq!(deny_delete.evaluate(&anonymous_get(), false), NoOpinion);
    }

    #[test]
    fn ip_conditions_match_cidrs_of_both_families() {
        let inside = public_get(r#"{"IpAddress":{"aws:SourceIp":["192.0.2.0/24","2001:db8::/32","198.51.100.7"]}}"#);
        let outside = public_get(r#"{"NotIpAddress":{"aws:sourceip":"10.0.0.0/8"}}"#);
        let anywhere = public_get(r#"{"IpAddress":{"aws:SourceIp":["0.0.0.0/0","::/0"]}}"#);
        #[rustfmt::skip]
        let cases = [
            (ip("192.0.2.200"), Allow, Allow, Allow),
            (ip("::ffff:192.0.2.1"), Allow, Allow, Allow),
            (ip("198.51.100.7"), Allow, Allow, Allow),
            (ip("198.51.100.8"), NoOpinion, Allow, Allow),
            (ip("2001:db8:ffff::1"), Allow, Allow, Allow),
            (ip("2001:db9::1"), NoOpinion, Allow, Allow),
            (ip("10.1.2.3"), NoOpinion, NoOpinion, Allow),
            // Missing key: the positive operator fails, the negated one holds (AWS without IfExists).
            (None, NoOpinion, Allow, NoOpinion),
        ];
        for (source_ip, expected_inside, expected_outside, expected_anywhere) in cases {
            let request = get(|r| r.source_ip = source_ip);
            assert_eq!(inside.evaluate(&request, false), expected_inside, "{source_ip:?}");
            assert_eq!(outside.evaluate(&request, false), expected_outside, "{source_ip:?}");
            assert_eq!(anywhere.evaluate(&request, false), expected_anywhere, "{source_ip:?}");
        }
        for bad in [
            r#""300.0.0.1""#,
            r#""10.0.0.0/33""#,
            r#""::/129""#,
            r#""10.0.0.0/""#,
            r#""10.0.0.0/+8""#,
            "7",
            "[]",
        ] {
            let error = condition_error(&format!(r#"{{"IpAddress":{{"aws:SourceIp":{bad}}}}}"#));
            assert_eq!(error, "Invalid Condition value for aws:SourceIp", "{bad}");
        }
    }

    #[test]
    fn secure_transport_accepts_strings_and_booleans() {
        let deny_http = stmt(
            "Deny",
            ANYONE,
            r#""s3:*""#,
            OBJECTS,
            r#"{"Bool":{"aws:SecureTransport":"false"}}"#,
        );
        let policy = policy(&[stmt("Allow", ANYONE, r#""s3:*""#, OBJECTS, ""), deny_http]);
        let http_get = get(|r| r.secure_transport = false);
        assert_eq!(policy.evaluate(&anonymous_get(), false), Allow);
        assert_eq!(policy.evaluate(&http_get, false), Deny);
        let tls_only = public_get(r#"{"Bool":{"aws:SecureTransport":[true]}}"#);
        assert_eq!(tls_only.evaluate(&anonymous_get(), false), Allow);
        assert_eq!(tls_only.evaluate(&http_get, false), NoOpinion);
        let error = condition_error(r#"{"Bool":{"aws:SecureTransport":"yes"}}"#);
        assert_eq!(error, "Invalid Condition value for aws:SecureTransport");
    }

    #[test]
    fn string_operators_compare_the_referer() {
        #[rustfmt::skip]
        let cases = [
            (r#"{"StringEquals":{"aws:Referer":["https://a/","https://b/"]}}"#, Some("https://b/"), Allow),
            (r#"{"StringEquals":{"aws:Referer":"https://a.test/"}}"#, Some("https://A.test/"), NoOpinion),
            (r#"{"StringEqualsIgnoreCase":{"aws:Referer":"https://Ä.test/"}}"#, Some("https://ä.TEST/"), Allow),
            (r#"{"StringNotEqualsIgnoreCase":{"aws:Referer":"https://a.test/"}}"#, Some("HTTPS://A.TEST/"), NoOpinion),
            (r#"{"StringNotEqualsIgnoreCase":{"aws:Referer":"https://a.test/"}}"#, Some("https://b.test/"), Allow),
            (r#"{"StringLike":{"aws:Referer":"https://*.example/?"}}"#, Some("https://www.example/x"), Allow),
            (r#"{"StringLike":{"aws:Referer":"https://*.example/?"}}"#, Some("https://www.example/xy"), NoOpinion),
            (r#"{"StringNotLike":{"aws:Referer":["*evil*","*bad*"]}}"#, Some("https://good.example/"), Allow),
            (r#"{"StringNotLike":{"aws:Referer":["*evil*","*bad*"]}}"#, Some("https://bad.example/"), NoOpinion),
            (r#"{"StringNotEquals":{"aws:Referer":"x"}}"#, Some("x"), NoOpinion),
            (r#"{"StringNotEquals":{"aws:Referer":"x"}}"#, Some("y"), Allow),
            // Missing key: positive operators fail, negated ones hold, IfExists always holds.
            (r#"{"StringEquals":{"aws:Referer":"x"}}"#, None, NoOpinion),
            (r#"{"StringLike":{"aws:Referer":"*"}}"#, None, NoOpinion),
            (r#"{"StringNotEquals":{"aws:Referer":"x"}}"#, None, Allow),
            (r#"{"StringNotLike":{"aws:Referer":"*"}}"#, None, Allow),
            (r#"{"StringEqualsIfExists":{"aws:Referer":"x"}}"#, None, Allow),
            (r#"{"StringEqualsIfExists":{"aws:Referer":"x"}}"#, Some("y"), NoOpinion),
            (r#"{"StringNotLikeIfExists":{"aws:Referer":"*"}}"#, None, Allow),
            (r#"{"StringNotLikeIfExists":{"aws:Referer":"*"}}"#, Some("y"), NoOpinion),
            (r#"{"IpAddressIfExists":{"aws:SourceIp":"10.0.0.0/8"}}"#, None, Allow),
            (r#"{"NotIpAddressIfExists":{"aws:SourceIp":"10.0.0.0/8"}}"#, None, Allow),
        ];
        for (condition, referer, expected) in cases {
            let request = get(|r| r.referer = referer);
            assert_eq!(
                public_get(condition).evaluate(&request, false),
                expected,
                "{condition} {referer:?}"
            );
        }
    }

    #[test]
    fn string_operators_compare_prefix_and_username() {
        let condition = r#"{"StringLike":{"s3:prefix":["home/*",""]}}"#;
        let home = policy(&[stmt(
            "Allow",
            ANYONE,
            r#""s3:ListBucket""#,
            r#""arn:aws:s3:::photos""#,
            condition,
        )]);
        let list =
            |prefix| get(|r| (r.action, r.resource, r.prefix) = ("s3:ListBucket", "arn:aws:s3:::photos", prefix));
        assert_eq!(home.evaluate(&list(Some("home/alice/")), false), Allow);
        assert_eq!(home.evaluate(&list(Some("")), false), Allow);
        assert_eq!(home.evaluate(&list(Some("etc/")), false), NoOpinion);
        assert_eq!(home.evaluate(&list(None), false), NoOpinion);

        let alice_only = public_get(r#"{"StringEquals":{"aws:username":"alice"}}"#);
        assert_eq!(alice_only.evaluate(&get(alice), false), Allow);
        assert_eq!(
            alice_only.evaluate(&get(|r| r.username = Some("bob")), false),
            NoOpinion
        );
        assert_eq!(
            alice_only.evaluate(&get(|r| r.username = Some("Alice")), false),
            NoOpinion
        );
        assert_eq!(alice_only.evaluate(&anonymous_get(), false), NoOpinion);
    }

    #[test]
    fn conditions_and_across_operators_and_keys_or_across_values() {
        let ip_and_text = r#"{
            "IpAddress": {"aws:SourceIp": "192.0.2.0/24"},
            "StringLike": {"aws:Referer": "https://a/*", "s3:prefix": ["p/*", "q/*"]}
        }"#;
        let policy = public_get(ip_and_text);
        let (near, far) = (ip("192.0.2.1"), ip("192.0.3.1"));
        #[rustfmt::skip]
        let cases = [
            (near, Some("https://a/x"), Some("q/1"), Allow),
            (near, Some("https://a/x"), Some("p/1"), Allow),
            (far, Some("https://a/x"), Some("q/1"), NoOpinion),
            (near, Some("https://b/x"), Some("q/1"), NoOpinion),
            (near, Some("https://a/x"), Some("r/1"), NoOpinion),
            (near, Some("https://a/x"), None, NoOpinion),
        ];
        for (source_ip, referer, prefix, expected) in cases {
            let request = get(|r| (r.source_ip, r.referer, r.prefix) = (source_ip, referer, prefix));
            assert_eq!(policy.evaluate(&request, false), expected, "{request:?}");
        }
    }

    #[test]
    fn unsupported_condition_operators_and_keys_are_named() {
        #[rustfmt::skip]
        let cases = [
            (r#"{"NumericEquals":{"s3:max-keys":"1"}}"#, "Invalid Condition operator: NumericEquals"),
            (r#"{"ForAnyValue:StringLike":{"aws:Referer":"x"}}"#, "Invalid Condition operator: ForAnyValue:StringLike"),
            (r#"{"IfExists":{"aws:Referer":"x"}}"#, "Invalid Condition operator: IfExists"),
            (r#"{"StringEquals":{"aws:UserAgent":"x"}}"#, "Invalid Condition key: aws:UserAgent"),
            (r#"{"StringEquals":{}}"#, "Condition operator StringEquals has no keys"),
            (r#"{"StringEquals":"x"}"#, "Condition operator StringEquals must map keys to values"),
            (r#"{"StringEquals":{"aws:Referer":[1]}}"#, "Invalid Condition value for aws:Referer"),
            (r#"{"StringEquals":{"aws:Referer":[]}}"#, "Invalid Condition value for aws:Referer"),
        ];
        for (condition, expected) in cases {
            assert_eq!(condition_error(condition), expected);
        }
        #[rustfmt::skip]
        let mismatched = [
            ("IpAddress", "aws:Referer"), ("StringEquals", "aws:SourceIp"), ("BoolIfExists", "aws:username"),
            ("Bool", "aws:SourceIp"), ("StringLike", "aws:SecureTransport"),
        ];
        for (operator, key) in mismatched {
            let error = condition_error(&format!(r#"{{"{operator}":{{"{key}":"true"}}}}"#));
            assert_eq!(
                error,
                format!("Condition operator {operator} cannot be used with key {key}")
            );
        }
    }

    #[test]
    fn public_means_an_unpinned_allow_to_everyone() {
        #[rustfmt::skip]
        let cases = [
            ("", true),
            (r#"{"IpAddress":{"aws:SourceIp":["10.0.0.0/8","2001:db8::/32"]}}"#, false),
            (r#"{"IpAddress":{"aws:SourceIp":"192.0.2.7"}}"#, false),
            (r#"{"StringEquals":{"aws:username":"alice"}}"#, false),
            (r#"{"StringLike":{"aws:Referer":"x"},"StringEquals":{"aws:username":["alice","bob"]}}"#, false),
            (r#"{"IpAddress":{"aws:SourceIp":["10.0.0.0/8","0.0.0.0/1"]}}"#, true),
            (r#"{"IpAddress":{"aws:SourceIp":"2001::/16"}}"#, true),
            (r#"{"IpAddressIfExists":{"aws:SourceIp":"10.0.0.0/8"}}"#, true),
            (r#"{"NotIpAddress":{"aws:SourceIp":"10.0.0.0/8"}}"#, true),
            (r#"{"StringEquals":{"aws:Referer":"https://a.example/"}}"#, true),
            (r#"{"Bool":{"aws:SecureTransport":"true"}}"#, true),
            (r#"{"StringLike":{"aws:username":"a*"}}"#, true),
            (r#"{"StringNotEquals":{"aws:username":"alice"}}"#, true),
            (r#"{"StringEqualsIfExists":{"aws:username":"alice"}}"#, true),
        ];
        for (condition, expected) in cases {
            assert_eq!(public_get(condition).is_public(), expected, "{condition}");
        }
        let to_alice = stmt("Allow", ALICE, r#""*""#, OBJECTS, "");
        let deny_everyone = stmt("Deny", ANYONE, r#""*""#, OBJECTS, "");
        assert!(!policy(&[to_alice, deny_everyone]).is_public());
    }

    #[test]
    fn ignoring_public_statements_keeps_private_allows_and_all_denies() {
        let deny_bob = stmt(
            "Deny",
            ANYONE,
            r#""*""#,
            OBJECTS,
            r#"{"StringEquals":{"aws:username":"bob"}}"#,
        );
        let public_and_alice = [
            stmt("Allow", ANYONE, GET, OBJECTS, ""),
            stmt("Allow", ALICE, GET, OBJECTS, ""),
        ];
        let policy = policy(&[public_and_alice[0].clone(), public_and_alice[1].clone(), deny_bob]);
        let bob = get(|r| (r.principal, r.username) = (Some("AKIABOB"), Some("bob")));
        assert_eq!(policy.evaluate(&anonymous_get(), false), Allow);
        assert_eq!(policy.evaluate(&anonymous_get(), true), NoOpinion);
        assert_eq!(policy.evaluate(&get(alice), true), Allow);
        assert_eq!(policy.evaluate(&bob, false), Deny);
        assert_eq!(policy.evaluate(&bob, true), Deny);
        let pinned = public_get(r#"{"IpAddress":{"aws:SourceIp":"192.0.2.0/24"}}"#);
        assert_eq!(pinned.evaluate(&get(|r| r.source_ip = ip("192.0.2.9")), true), Allow);
    }

    #[test]
    fn wildcard_matching() {
        #[rustfmt::skip]
        let cases = [
            ("", "", true), ("*", "", true), ("?", "", false), ("a*b*c", "aXXbYYc", true), ("a*b*c", "aXXbYYcd", false),
            ("*.jpg", "x.jpg.png", false), ("a?c", "abc", true), ("a?c", "ac", false), ("**a**", "bab", true),
            ("é?", "éü", true), ("?", "ü", true), ("a*", "b", false),
        ];
        for (pattern, text, expected) in cases {
            assert_eq!(wildcard_match(pattern, text, false), expected, "{pattern} ~ {text}");
        }
        assert!(wildcard_match("S3:get*", "s3:GetObject", true));
        assert!(!wildcard_match("S3:get*", "s3:GetObject", false));
        // Exponential for naive recursion; must return promptly here.
        let pattern = format!("{}b", "*a".repeat(5_000));
        assert!(!wildcard_match(&pattern, &"a".repeat(10_000), false));
    }

    /// Marsaglia's xorshift64: deterministic, dependency-free randomness for the fuzz loop.
    struct XorShift(u64);

    impl XorShift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn below(&mut self, bound: usize) -> usize {
            (self.next() % bound.max(1) as u64) as usize
        }
    }

    #[test]
    fn fuzzing_mutated_policies_never_panics() {
        let seeds = [
            r#"{"Version": "2012-10-17", "Statement": [{"Sid": "a", "Effect": "Allow", "Principal": "*",
                "Action": ["s3:Get*", "s3:ListBucket"], "Resource": ["arn:aws:s3:::bucket", "arn:aws:s3:::bucket/*"],
                "Condition": {"IpAddress": {"aws:SourceIp": ["192.0.2.0/24", "2001:db8::/32"]},
                              "StringLike": {"s3:prefix": "home/*"}}}]}"#,
            r#"{"Statement": {"Effect": "Deny", "Principal": {"AWS": ["AKIAEXAMPLE", "arn:aws:iam::1:user/X"]},
                "Action": "s3:*", "Resource": "arn:aws:s3:::bucket/p?o*/*",
                "Condition": {"Bool": {"aws:SecureTransport": false},
                              "NotIpAddressIfExists": {"aws:SourceIp": "10.0.0.0/8"}}}}"#,
            r#"{"Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "*",
                "Resource": "arn:aws:s3:::bucket/*", "Condition": {"StringNotLike": {"aws:Referer": ["*evil*"]},
                "StringEqualsIgnoreCase": {"aws:username": "ALICE"}}}]}"#,
            r#"{"Statement": [
                {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::bucket/a/*"},
                {"Effect": "Deny", "Principal": {"AWS": "AKIAEXAMPLE"}, "Action": "s3:Put*",
                 "Resource": "arn:aws:s3:::bucket/*"}]}"#,
        ];
        #[rustfmt::skip]
        const TOKENS: &[&str] = &[
            "*", "?", "\"", ",", "[", "]", "{", "}", ":", "\"*\"", "IfExists", "Not", "/0", "/129", "::", "\\u0000",
            "ü", "true", "null", "1e999", "[]", "{}", "arn:aws:s3:::bucket/", "aws:Referer", "StringLike", "\\ud800",
        ];
        let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
        let requests = fuzz_requests();
        let mut parsed = 0;
        for iteration in 0..200_000 {
            let mut input = seeds[rng.below(seeds.len())].as_bytes().to_vec();
            if iteration % 64 == 0 {
                input = (0..rng.below(256)).map(|_| rng.next() as u8).collect();
            }
            let mutations = if rng.below(4) == 0 { 2 + rng.below(4) } else { 1 };
            for _ in 0..mutations {
                let at = rng.below(input.len() + 1);
                let end = (at + rng.below(32)).min(input.len());
                // Text inserted right after a '/' mostly lands in a pattern and keeps the policy valid.
                let slash = input[at..]
                    .iter()
                    .position(|&b| b == b'/')
                    .map_or(at, |offset| at + offset + 1);
                let letters: Vec<u8> = (0..rng.below(8)).map(|_| b'a' + rng.below(26) as u8).collect();
                match rng.below(6) {
                    0 if at < input.len() => input[at] = rng.next() as u8,
                    1 => drop(input.splice(at..at, TOKENS[rng.below(TOKENS.len())].bytes())),
                    2 => drop(input.drain(at..end)),
                    3 => drop(input.splice(slash..slash, "*?a".repeat(rng.below(400)).into_bytes())),
                    4 => drop(input.splice(slash..slash, letters)),
                    _ => drop(input.splice(at..at, input[at..end].to_vec())),
                }
            }
            fuzz_parse_and_evaluate(&input);
            if let Ok(policy) = Policy::parse(&input, "bucket") {
                parsed += 1;
                // RestrictPublicBuckets may only turn an Allow into NoOpinion, and only in a public policy.
                for request in &requests {
                    let (all, without_public) = (policy.evaluate(request, false), policy.evaluate(request, true));
                    assert_eq!(all == Deny, without_public == Deny);
                    assert!(without_public != Allow || all == Allow);
                    assert!(policy.is_public() || all == without_public);
                }
            }
        }
        // Enough inputs survive mutation that the evaluator, not just the parser, is exercised.
        assert!(parsed > 20_000, "only {parsed} inputs parsed");
    }
}
