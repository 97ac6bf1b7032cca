//! HTTP conditional requests as S3 evaluates them (RFC 9110 precedence): If-Match beats
//! If-Unmodified-Since, If-None-Match beats If-Modified-Since. s3s parses the headers but
//! evaluates none of them.

use s3s::dto::{ETagCondition, Timestamp};
use s3s::{S3Error, S3Result};

use super::errors;
use crate::util::timestamp_to_ms;

pub struct Conditions<'a> {
    pub if_match: Option<&'a ETagCondition>,
    pub if_none_match: Option<&'a ETagCondition>,
    pub if_modified_since: Option<&'a Timestamp>,
    pub if_unmodified_since: Option<&'a Timestamp>,
}

fn matches(cond: &ETagCondition, etag: &str) -> bool {
    match cond {
        ETagCondition::Any => true,
        ETagCondition::ETag(e) => e.value() == etag,
    }
}

/// HTTP dates have second precision; compare at that precision.
fn seconds(ms: i64) -> i64 {
    ms.div_euclid(1000)
}

/// What a failed condition means for this kind of request.
pub enum Kind {
    /// GET/HEAD: a failed If-None-Match / If-Modified-Since is 304 Not Modified.
    Read,
    /// Copy source conditions: every failure is 412.
    CopySource,
}

pub fn check(c: &Conditions<'_>, etag: &str, last_modified_ms: i64, kind: Kind) -> S3Result<()> {
    let modified = seconds(last_modified_ms);
    match c.if_match {
        Some(cond) if !matches(cond, etag) => return Err(precondition_failed()),
        Some(_) => {}
        None => {
            if let Some(t) = c.if_unmodified_since {
                if modified > seconds(timestamp_to_ms(t)) {
                    return Err(precondition_failed());
                }
            }
        }
    }
    let not_modified = match c.if_none_match {
        Some(cond) => matches(cond, etag),
        None => c
            .if_modified_since
            .is_some_and(|t| modified <= seconds(timestamp_to_ms(t))),
    };
    if not_modified {
        return Err(match kind {
            Kind::Read => not_modified_error(etag),
            Kind::CopySource => precondition_failed(),
        });
    }
    Ok(())
}

pub fn precondition_failed() -> S3Error {
    errors::precondition_failed()
}

fn not_modified_error(etag: &str) -> S3Error {
    let mut err = errors::not_modified();
    let mut headers = http::HeaderMap::new();
    if let Ok(v) = http::HeaderValue::from_str(&format!("\"{etag}\"")) {
        headers.insert(http::header::ETAG, v);
    }
    err.set_headers(headers);
    err
}

/// Conditional writes (PUT / CompleteMultipartUpload): `If-None-Match: *` means "only if
/// absent"; `If-Match: etag` means "only if the current object has this ETag".
pub fn check_write(
    if_match: Option<&ETagCondition>,
    if_none_match: Option<&ETagCondition>,
    current_etag: Option<&str>,
) -> S3Result<()> {
    if let Some(cond) = if_none_match {
        if let Some(etag) = current_etag {
            if matches(cond, etag) {
                return Err(precondition_failed());
            }
        }
    }
    if let Some(cond) = if_match {
        match current_etag {
            None => return Err(errors::no_such_key()),
            Some(etag) if !matches(cond, etag) => return Err(precondition_failed()),
            Some(_) => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use s3s::dto::ETag;

    fn etag(s: &str) -> ETagCondition {
        ETagCondition::ETag(ETag::Strong(s.to_string()))
    }

    fn ts(ms: i64) -> Timestamp {
        crate::util::ms_to_timestamp(ms)
    }

    fn none() -> Conditions<'static> {
        Conditions {
            if_match: None,
            if_none_match: None,
            if_modified_since: None,
            if_unmodified_since: None,
        }
    }

    #[test]
    fn if_match_overrides_unmodified_since() {
        let m = etag("abc");
        let early = ts(1_000);
        let c = Conditions {
            if_match: Some(&m),
            if_unmodified_since: Some(&early),
            ..none()
        };
        assert!(check(&c, "abc", 5_000_000, Kind::Read).is_ok());
        assert!(check(&c, "zzz", 5_000_000, Kind::Read).is_err());
    }

    #[test]
    fn if_none_match_gives_304_for_reads_and_412_for_copies() {
        let m = etag("abc");
        let c = Conditions {
            if_none_match: Some(&m),
            ..none()
        };
        let read = check(&c, "abc", 0, Kind::Read).expect_err("must fail");
        assert_eq!(read.status_code(), Some(http::StatusCode::NOT_MODIFIED));
        let copy = check(&c, "abc", 0, Kind::CopySource).expect_err("must fail");
        assert_eq!(copy.status_code(), Some(http::StatusCode::PRECONDITION_FAILED));
        assert!(check(&c, "other", 0, Kind::Read).is_ok());
    }

    #[test]
    fn modified_since_compares_whole_seconds() {
        let since = ts(10_000);
        let c = Conditions {
            if_modified_since: Some(&since),
            ..none()
        };
        assert!(
            check(&c, "e", 10_900, Kind::Read).is_err(),
            "same second is not modified"
        );
        assert!(check(&c, "e", 11_000, Kind::Read).is_ok());
    }

    #[test]
    fn write_conditions() {
        let any = ETagCondition::Any;
        assert!(check_write(None, Some(&any), None).is_ok());
        assert!(check_write(None, Some(&any), Some("e")).is_err());
        let m = etag("e");
        assert!(check_write(Some(&m), None, None).is_err());
        assert!(check_write(Some(&m), None, Some("e")).is_ok());
        assert!(check_write(Some(&m), None, Some("f")).is_err());
    }
}
