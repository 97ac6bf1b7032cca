//! The bucket lifecycle configuration: our model of S3's rules (stored in the bucket record),
//! its validation when read from PutBucketLifecycleConfiguration's s3s DTO, and the DTO form
//! GetBucketLifecycleConfiguration returns. Bad input is rejected whole, with S3's error codes
//! and a message naming the rule.

use serde::{Deserialize, Serialize};

use s3s::dto;
use s3s::S3Error;

use crate::model::object::Tag;
use crate::util::clock::DAY_MS;
use crate::util::errors;

/// S3 accepts at most 1000 rules per bucket.
pub const MAX_RULES: usize = 1000;
/// Longest rule ID.
pub const MAX_ID_CHARS: usize = 255;
/// S3's bound on NewerNoncurrentVersions.
pub const MAX_NEWER_NONCURRENT: u32 = 100;
/// S3: objects go to STANDARD_IA no sooner than 30 days after creation (or noncurrency).
pub const MIN_STANDARD_IA_DAYS: u32 = 30;

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct LifecycleConfig {
    pub rules: Vec<Rule>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Rule {
    pub id: String,
    pub enabled: bool,
    pub filter: Filter,
    pub expiration: Option<Expiration>,
    pub noncurrent_expiration: Option<NoncurrentExpiration>,
    /// AbortIncompleteMultipartUpload's DaysAfterInitiation.
    pub abort_multipart_days: Option<u32>,
    pub transitions: Vec<Transition>,
    pub noncurrent_transitions: Vec<NoncurrentTransition>,
}

/// Which objects a rule applies to, in the form the client gave it (so Get echoes it back).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub enum Filter {
    /// `<Filter/>` (or `<Filter><Prefix/></Filter>`): every object.
    All,
    Prefix(String),
    Tag(Tag),
    SizeGreaterThan(u64),
    SizeLessThan(u64),
    And {
        prefix: Option<String>,
        tags: Vec<Tag>,
        size_greater_than: Option<u64>,
        size_less_than: Option<u64>,
    },
    /// The deprecated top-level `<Prefix>` of a rule.
    LegacyPrefix(String),
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub enum Expiration {
    Days(u32),
    /// Midnight UTC, in ms since the epoch.
    Date(i64),
    ExpiredObjectDeleteMarker,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct NoncurrentExpiration {
    pub days: u32,
    pub newer_versions: Option<u32>,
}

/// The storage classes lifecycle rules may move objects to.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TargetClass {
    /// Ordered by coldness: when several transitions are due, the coldest wins.
    StandardIa,
    Glacier,
}

impl From<TargetClass> for crate::model::object::StorageClass {
    fn from(c: TargetClass) -> Self {
        match c {
            TargetClass::StandardIa => Self::StandardIa,
            TargetClass::Glacier => Self::Glacier,
        }
    }
}

impl TargetClass {
    pub fn as_str(self) -> &'static str {
        match self {
            TargetClass::StandardIa => "STANDARD_IA",
            TargetClass::Glacier => "GLACIER",
        }
    }
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq)]
pub enum When {
    Days(u32),
    /// Midnight UTC, in ms since the epoch.
    Date(i64),
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Transition {
    pub when: When,
    pub class: TargetClass,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct NoncurrentTransition {
    pub days: u32,
    pub newer_versions: Option<u32>,
    pub class: TargetClass,
}

impl Rule {
    pub fn has_tag_filter(&self) -> bool {
        match &self.filter {
            Filter::Tag(_) => true,
            Filter::And { tags, .. } => !tags.is_empty(),
            _ => false,
        }
    }

    fn has_size_filter(&self) -> bool {
        match &self.filter {
            Filter::SizeGreaterThan(_) | Filter::SizeLessThan(_) => true,
            Filter::And {
                size_greater_than,
                size_less_than,
                ..
            } => size_greater_than.is_some() || size_less_than.is_some(),
            _ => false,
        }
    }
}

/// Error naming the rule, with S3's code.
fn invalid(rule: &str, msg: impl std::fmt::Display) -> S3Error {
    errors::invalid_argument(format!("Rule '{rule}': {msg}"))
}

fn malformed(rule: &str, msg: impl std::fmt::Display) -> S3Error {
    errors::malformed_xml_because(format!("Rule '{rule}': {msg}"))
}

fn days(rule: &str, what: &str, v: i32, min: i32) -> Result<u32, S3Error> {
    if v < min {
        let req = if min == 0 {
            "a non-negative integer"
        } else {
            "a positive integer"
        };
        return Err(invalid(rule, format!("'{what}' must be {req}")));
    }
    Ok(v as u32)
}

fn midnight(rule: &str, what: &str, ts: &dto::Timestamp) -> Result<i64, S3Error> {
    let ms = crate::util::timestamp_to_ms(ts);
    if ms.rem_euclid(DAY_MS) != 0 {
        return Err(invalid(rule, format!("'{what}' must be at midnight GMT")));
    }
    Ok(ms)
}

fn tag(rule: &str, t: &dto::Tag) -> Result<Tag, S3Error> {
    let key = t.key.clone().unwrap_or_default();
    let value = t.value.clone().unwrap_or_default();
    if key.is_empty() || key.chars().count() > 128 {
        return Err(invalid(rule, "a tag key must be 1 to 128 characters"));
    }
    if value.chars().count() > 256 {
        return Err(invalid(rule, "a tag value must be at most 256 characters"));
    }
    Ok(Tag { key, value })
}

fn size(rule: &str, what: &str, v: i64) -> Result<u64, S3Error> {
    u64::try_from(v).map_err(|_| invalid(rule, format!("'{what}' must be a non-negative integer")))
}

fn class(rule: &str, c: Option<&dto::TransitionStorageClass>) -> Result<TargetClass, S3Error> {
    match c.map(|c| c.as_str()) {
        None => Err(malformed(rule, "a transition needs a StorageClass")),
        Some("STANDARD_IA") => Ok(TargetClass::StandardIa),
        Some("GLACIER") => Ok(TargetClass::Glacier),
        Some(other) => Err(errors::invalid_storage_class(format!(
            "Rule '{rule}': storage class {other} is not supported (STANDARD_IA or GLACIER)"
        ))),
    }
}

fn filter_from_dto(rule: &str, f: &dto::LifecycleRuleFilter) -> Result<Filter, S3Error> {
    let given = [
        f.and.is_some(),
        f.prefix.is_some(),
        f.tag.is_some(),
        f.object_size_greater_than.is_some(),
        f.object_size_less_than.is_some(),
    ];
    if given.iter().filter(|g| **g).count() > 1 {
        return Err(malformed(rule, "a Filter holds one of Prefix, Tag, ObjectSize* or And"));
    }
    if let Some(p) = &f.prefix {
        return Ok(Filter::Prefix(p.clone()));
    }
    if let Some(t) = &f.tag {
        return Ok(Filter::Tag(tag(rule, t)?));
    }
    if let Some(v) = f.object_size_greater_than {
        return Ok(Filter::SizeGreaterThan(size(rule, "ObjectSizeGreaterThan", v)?));
    }
    if let Some(v) = f.object_size_less_than {
        let v = size(rule, "ObjectSizeLessThan", v)?;
        if v == 0 {
            return Err(invalid(rule, "'ObjectSizeLessThan' must be positive"));
        }
        return Ok(Filter::SizeLessThan(v));
    }
    let Some(and) = &f.and else { return Ok(Filter::All) };
    let mut tags: Vec<Tag> = Vec::new();
    for t in and.tags.as_deref().unwrap_or_default() {
        let t = tag(rule, t)?;
        if tags.iter().any(|x| x.key == t.key) {
            return Err(invalid(rule, "Duplicate Tag Keys are not allowed"));
        }
        tags.push(t);
    }
    let gt = and
        .object_size_greater_than
        .map(|v| size(rule, "ObjectSizeGreaterThan", v))
        .transpose()?;
    let lt = and
        .object_size_less_than
        .map(|v| size(rule, "ObjectSizeLessThan", v))
        .transpose()?;
    if let (Some(gt), Some(lt)) = (gt, lt) {
        if gt >= lt {
            return Err(invalid(
                rule,
                "'ObjectSizeGreaterThan' must be less than 'ObjectSizeLessThan'",
            ));
        }
    }
    if lt == Some(0) {
        return Err(invalid(rule, "'ObjectSizeLessThan' must be positive"));
    }
    Ok(Filter::And {
        prefix: and.prefix.clone(),
        tags,
        size_greater_than: gt,
        size_less_than: lt,
    })
}

/// Reads and validates PutBucketLifecycleConfiguration's body. Nothing is partially
/// accepted: the first problem is the answer.
pub fn from_dto(cfg: &dto::BucketLifecycleConfiguration) -> Result<LifecycleConfig, S3Error> {
    if cfg.rules.is_empty() {
        return Err(errors::malformed_xml_because(
            "A lifecycle configuration needs at least one Rule",
        ));
    }
    if cfg.rules.len() > MAX_RULES {
        return Err(errors::invalid_argument(format!(
            "A lifecycle configuration holds at most {MAX_RULES} rules"
        )));
    }
    let mut rules: Vec<Rule> = Vec::with_capacity(cfg.rules.len());
    for (i, r) in cfg.rules.iter().enumerate() {
        let rule = rule_from_dto(i, r)?;
        if rules.iter().any(|x| x.id == rule.id) {
            return Err(invalid(
                &rule.id,
                "Rule ID must be unique. Found same ID for more than one rule",
            ));
        }
        rules.push(rule);
    }
    Ok(LifecycleConfig { rules })
}

fn rule_from_dto(index: usize, r: &dto::LifecycleRule) -> Result<Rule, S3Error> {
    let id = match r.id.as_deref() {
        Some(id) if !id.is_empty() => id.to_string(),
        // S3 names rules that come without an ID.
        _ => format!("rule-{}-{:012x}", index + 1, rand::random::<u64>() & 0xffff_ffff_ffff),
    };
    let name = id.as_str();
    if id.chars().count() > MAX_ID_CHARS {
        return Err(errors::invalid_argument(format!(
            "Rule {}: ID length should not exceed allowed limit of {MAX_ID_CHARS}",
            index + 1
        )));
    }
    let enabled = match r.status.as_str() {
        "Enabled" => true,
        "Disabled" => false,
        other => {
            return Err(malformed(
                name,
                format!("Status must be Enabled or Disabled, not {other:?}"),
            ))
        }
    };
    let filter = match (&r.filter, &r.prefix) {
        (Some(_), Some(_)) => return Err(malformed(name, "give either Filter or Prefix, not both")),
        (None, None) => return Err(malformed(name, "a rule needs a Filter (or the legacy Prefix)")),
        (Some(f), None) => filter_from_dto(name, f)?,
        (None, Some(p)) => Filter::LegacyPrefix(p.clone()),
    };
    let mut rule = Rule {
        id: id.clone(),
        enabled,
        filter,
        expiration: None,
        noncurrent_expiration: None,
        abort_multipart_days: None,
        transitions: Vec::new(),
        noncurrent_transitions: Vec::new(),
    };
    if let Some(e) = &r.expiration {
        rule.expiration = expiration_from_dto(name, e, rule.has_tag_filter())?;
    }
    if let Some(n) = &r.noncurrent_version_expiration {
        rule.noncurrent_expiration = Some(noncurrent_expiration_from_dto(name, n)?);
    }
    if let Some(a) = &r.abort_incomplete_multipart_upload {
        rule.abort_multipart_days = Some(abort_days_from_dto(name, a, &rule)?);
    }
    for t in r.transitions.as_deref().unwrap_or_default() {
        let t = transition_from_dto(name, t)?;
        if rule.transitions.iter().any(|x| x.class == t.class) {
            return Err(invalid(
                name,
                format!("more than one Transition to {}", t.class.as_str()),
            ));
        }
        rule.transitions.push(t);
    }
    for t in r.noncurrent_version_transitions.as_deref().unwrap_or_default() {
        let t = noncurrent_transition_from_dto(name, t)?;
        if rule.noncurrent_transitions.iter().any(|x| x.class == t.class) {
            return Err(invalid(
                name,
                format!("more than one NoncurrentVersionTransition to {}", t.class.as_str()),
            ));
        }
        rule.noncurrent_transitions.push(t);
    }
    check_ordering(&rule)?;
    let has_action = rule.expiration.is_some()
        || rule.noncurrent_expiration.is_some()
        || rule.abort_multipart_days.is_some()
        || !rule.transitions.is_empty()
        || !rule.noncurrent_transitions.is_empty();
    if !has_action {
        return Err(invalid(name, "At least one action needs to be specified in a rule"));
    }
    Ok(rule)
}

/// `Expiration`: exactly one of Days, Date and ExpiredObjectDeleteMarker (the last not with
/// a tag filter).
fn expiration_from_dto(
    name: &str,
    e: &dto::LifecycleExpiration,
    tag_filter: bool,
) -> Result<Option<Expiration>, S3Error> {
    let given = [
        e.days.is_some(),
        e.date.is_some(),
        e.expired_object_delete_marker.is_some(),
    ];
    if given.iter().filter(|g| **g).count() != 1 {
        return Err(malformed(
            name,
            "Expiration holds exactly one of Days, Date and ExpiredObjectDeleteMarker",
        ));
    }
    Ok(match (e.days, &e.date, e.expired_object_delete_marker) {
        (Some(d), _, _) => Some(Expiration::Days(days(name, "Days", d, 1)?)),
        (_, Some(t), _) => Some(Expiration::Date(midnight(name, "Date", t)?)),
        (_, _, Some(true)) => {
            if tag_filter {
                return Err(invalid(
                    name,
                    "ExpiredObjectDeleteMarker cannot be specified with a tag-based filter",
                ));
            }
            Some(Expiration::ExpiredObjectDeleteMarker)
        }
        _ => None,
    })
}

fn noncurrent_expiration_from_dto(
    name: &str,
    n: &dto::NoncurrentVersionExpiration,
) -> Result<NoncurrentExpiration, S3Error> {
    let Some(d) = n.noncurrent_days else {
        return Err(malformed(name, "NoncurrentVersionExpiration needs NoncurrentDays"));
    };
    Ok(NoncurrentExpiration {
        days: days(name, "NoncurrentDays", d, 1)?,
        newer_versions: newer_versions(name, n.newer_noncurrent_versions)?,
    })
}

/// `AbortIncompleteMultipartUpload`: uploads have no tags or size, so neither filter may apply.
fn abort_days_from_dto(name: &str, a: &dto::AbortIncompleteMultipartUpload, rule: &Rule) -> Result<u32, S3Error> {
    let Some(d) = a.days_after_initiation else {
        return Err(malformed(
            name,
            "AbortIncompleteMultipartUpload needs DaysAfterInitiation",
        ));
    };
    if rule.has_tag_filter() {
        return Err(invalid(
            name,
            "Tag-based filter cannot be used with AbortIncompleteMultipartUpload",
        ));
    }
    if rule.has_size_filter() {
        return Err(invalid(
            name,
            "Object size filters cannot be used with AbortIncompleteMultipartUpload",
        ));
    }
    days(name, "DaysAfterInitiation", d, 1)
}

fn transition_from_dto(name: &str, t: &dto::Transition) -> Result<Transition, S3Error> {
    let class = class(name, t.storage_class.as_ref())?;
    let when = match (t.days, &t.date) {
        (Some(d), None) => When::Days(days(name, "Days", d, 0)?),
        (None, Some(date)) => When::Date(midnight(name, "Date", date)?),
        _ => return Err(malformed(name, "Transition holds exactly one of Days and Date")),
    };
    if class == TargetClass::StandardIa && matches!(when, When::Days(d) if d < MIN_STANDARD_IA_DAYS) {
        return Err(invalid(
            name,
            format!("'Days' in the Transition action must be at least {MIN_STANDARD_IA_DAYS} for STANDARD_IA"),
        ));
    }
    Ok(Transition { when, class })
}

fn noncurrent_transition_from_dto(
    name: &str,
    t: &dto::NoncurrentVersionTransition,
) -> Result<NoncurrentTransition, S3Error> {
    let class = class(name, t.storage_class.as_ref())?;
    let Some(d) = t.noncurrent_days else {
        return Err(malformed(name, "NoncurrentVersionTransition needs NoncurrentDays"));
    };
    let d = days(name, "NoncurrentDays", d, 0)?;
    if class == TargetClass::StandardIa && d < MIN_STANDARD_IA_DAYS {
        return Err(invalid(
            name,
            format!(
                "'NoncurrentDays' in the NoncurrentVersionTransition action must be at least {MIN_STANDARD_IA_DAYS} for STANDARD_IA"
            ),
        ));
    }
    Ok(NoncurrentTransition {
        days: d,
        newer_versions: newer_versions(name, t.newer_noncurrent_versions)?,
        class,
    })
}

fn newer_versions(rule: &str, v: Option<i32>) -> Result<Option<u32>, S3Error> {
    match v {
        None => Ok(None),
        Some(n) if (1..=MAX_NEWER_NONCURRENT as i32).contains(&n) => Ok(Some(n as u32)),
        Some(_) => Err(invalid(
            rule,
            format!("'NewerNoncurrentVersions' must be between 1 and {MAX_NEWER_NONCURRENT}"),
        )),
    }
}

/// S3's consistency checks between a rule's actions: Days and Date are not mixed, objects
/// expire after they transition, and STANDARD_IA comes before GLACIER.
fn check_ordering(rule: &Rule) -> Result<(), S3Error> {
    let name = rule.id.as_str();
    let exp = match rule.expiration {
        Some(Expiration::Days(d)) => Some(When::Days(d)),
        Some(Expiration::Date(t)) => Some(When::Date(t)),
        _ => None,
    };
    let all: Vec<When> = rule.transitions.iter().map(|t| t.when).chain(exp).collect();
    let by_days = all.iter().any(|w| matches!(w, When::Days(_)));
    let by_date = all.iter().any(|w| matches!(w, When::Date(_)));
    if by_days && by_date {
        return Err(invalid(
            name,
            "Found mixed 'Date' and 'Days' based Expiration and Transition actions",
        ));
    }
    let key = |w: &When| match *w {
        When::Days(d) => i64::from(d),
        When::Date(t) => t,
    };
    if let Some(e) = &exp {
        if rule.transitions.iter().any(|t| key(&t.when) >= key(e)) {
            return Err(invalid(
                name,
                "the Expiration action must come later than every Transition action",
            ));
        }
    }
    let at = |c: TargetClass| rule.transitions.iter().find(|t| t.class == c).map(|t| key(&t.when));
    if let (Some(ia), Some(gl)) = (at(TargetClass::StandardIa), at(TargetClass::Glacier)) {
        if ia >= gl {
            return Err(invalid(
                name,
                "the Transition to GLACIER must come later than the Transition to STANDARD_IA",
            ));
        }
    }
    if let Some(n) = &rule.noncurrent_expiration {
        if rule.noncurrent_transitions.iter().any(|t| t.days >= n.days) {
            return Err(invalid(
                name,
                "NoncurrentVersionExpiration must come later than every NoncurrentVersionTransition",
            ));
        }
    }
    let nc = |c: TargetClass| {
        rule.noncurrent_transitions
            .iter()
            .find(|t| t.class == c)
            .map(|t| t.days)
    };
    if let (Some(ia), Some(gl)) = (nc(TargetClass::StandardIa), nc(TargetClass::Glacier)) {
        if ia >= gl {
            return Err(invalid(
                name,
                "the NoncurrentVersionTransition to GLACIER must come later than the one to STANDARD_IA",
            ));
        }
    }
    Ok(())
}

fn tag_to_dto(t: &Tag) -> dto::Tag {
    dto::Tag {
        key: Some(t.key.clone()),
        value: Some(t.value.clone()),
    }
}

fn days_dto(d: u32) -> i32 {
    i32::try_from(d).unwrap_or(i32::MAX)
}

/// The rules as GetBucketLifecycleConfiguration returns them.
pub fn to_dto(cfg: &LifecycleConfig) -> Vec<dto::LifecycleRule> {
    cfg.rules.iter().map(rule_to_dto).collect()
}

fn rule_to_dto(r: &Rule) -> dto::LifecycleRule {
    let mut filter = dto::LifecycleRuleFilter::default();
    let mut prefix = None;
    match &r.filter {
        Filter::All => {}
        Filter::Prefix(p) => filter.prefix = Some(p.clone()),
        Filter::Tag(t) => filter.tag = Some(tag_to_dto(t)),
        Filter::SizeGreaterThan(v) => filter.object_size_greater_than = Some(*v as i64),
        Filter::SizeLessThan(v) => filter.object_size_less_than = Some(*v as i64),
        Filter::And {
            prefix: p,
            tags,
            size_greater_than,
            size_less_than,
        } => {
            filter.and = Some(dto::LifecycleRuleAndOperator {
                prefix: p.clone(),
                tags: (!tags.is_empty()).then(|| tags.iter().map(tag_to_dto).collect()),
                object_size_greater_than: size_greater_than.map(|v| v as i64),
                object_size_less_than: size_less_than.map(|v| v as i64),
            })
        }
        Filter::LegacyPrefix(p) => prefix = Some(p.clone()),
    }
    let date = |ms: i64| crate::util::ms_to_timestamp(ms);
    dto::LifecycleRule {
        id: Some(r.id.clone()),
        status: dto::ExpirationStatus::from_static(if r.enabled {
            dto::ExpirationStatus::ENABLED
        } else {
            dto::ExpirationStatus::DISABLED
        }),
        filter: prefix.is_none().then_some(filter),
        prefix,
        expiration: r.expiration.as_ref().map(|e| match e {
            Expiration::Days(d) => dto::LifecycleExpiration {
                days: Some(days_dto(*d)),
                ..Default::default()
            },
            Expiration::Date(t) => dto::LifecycleExpiration {
                date: Some(date(*t)),
                ..Default::default()
            },
            Expiration::ExpiredObjectDeleteMarker => dto::LifecycleExpiration {
                expired_object_delete_marker: Some(true),
                ..Default::default()
            },
        }),
        noncurrent_version_expiration: r
            .noncurrent_expiration
            .as_ref()
            .map(|n| dto::NoncurrentVersionExpiration {
                noncurrent_days: Some(days_dto(n.days)),
                newer_noncurrent_versions: n.newer_versions.map(days_dto),
            }),
        abort_incomplete_multipart_upload: r.abort_multipart_days.map(|d| dto::AbortIncompleteMultipartUpload {
            days_after_initiation: Some(days_dto(d)),
        }),
        transitions: (!r.transitions.is_empty()).then(|| {
            r.transitions
                .iter()
                .map(|t| dto::Transition {
                    days: match t.when {
                        When::Days(d) => Some(days_dto(d)),
                        When::Date(_) => None,
                    },
                    date: match t.when {
                        When::Date(ms) => Some(date(ms)),
                        When::Days(_) => None,
                    },
                    storage_class: Some(dto::TransitionStorageClass::from_static(t.class.as_str())),
                })
                .collect()
        }),
        noncurrent_version_transitions: (!r.noncurrent_transitions.is_empty()).then(|| {
            r.noncurrent_transitions
                .iter()
                .map(|t| dto::NoncurrentVersionTransition {
                    noncurrent_days: Some(days_dto(t.days)),
                    newer_noncurrent_versions: t.newer_versions.map(days_dto),
                    storage_class: Some(dto::TransitionStorageClass::from_static(t.class.as_str())),
                })
                .collect()
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(xml: &str) -> Result<LifecycleConfig, S3Error> {
        let mut d = s3s::xml::Deserializer::new(xml.as_bytes());
        let cfg = <dto::BucketLifecycleConfiguration as s3s::xml::Deserialize>::deserialize(&mut d)
            .map_err(|e| errors::malformed_xml_because(format!("{e:?}")))?;
        from_dto(&cfg)
    }

    fn rule(body: &str) -> String {
        format!(
            "<LifecycleConfiguration><Rule><ID>r1</ID><Status>Enabled</Status>{body}</Rule></LifecycleConfiguration>"
        )
    }

    fn err(xml: &str) -> (String, String) {
        let e = parse(xml).expect_err("should be rejected");
        (
            e.code().as_str().to_string(),
            e.message().unwrap_or_default().to_string(),
        )
    }

    #[test]
    fn accepts_every_element_and_round_trips() {
        let xml = "<LifecycleConfiguration>\
            <Rule><ID>a</ID><Status>Enabled</Status><Filter><Prefix>logs/</Prefix></Filter>\
              <Transition><Days>30</Days><StorageClass>STANDARD_IA</StorageClass></Transition>\
              <Transition><Days>90</Days><StorageClass>GLACIER</StorageClass></Transition>\
              <Expiration><Days>365</Days></Expiration>\
              <NoncurrentVersionTransition><NoncurrentDays>40</NoncurrentDays><StorageClass>STANDARD_IA</StorageClass></NoncurrentVersionTransition>\
              <NoncurrentVersionExpiration><NoncurrentDays>100</NoncurrentDays><NewerNoncurrentVersions>3</NewerNoncurrentVersions></NoncurrentVersionExpiration>\
              <AbortIncompleteMultipartUpload><DaysAfterInitiation>7</DaysAfterInitiation></AbortIncompleteMultipartUpload></Rule>\
            <Rule><ID>b</ID><Status>Disabled</Status><Filter><And><Prefix>x/</Prefix>\
              <Tag><Key>k</Key><Value>v</Value></Tag><Tag><Key>k2</Key><Value>v2</Value></Tag>\
              <ObjectSizeGreaterThan>10</ObjectSizeGreaterThan><ObjectSizeLessThan>100</ObjectSizeLessThan></And></Filter>\
              <Expiration><Date>2030-01-01T00:00:00Z</Date></Expiration></Rule>\
            <Rule><ID>c</ID><Status>Enabled</Status><Prefix>old/</Prefix><Expiration><ExpiredObjectDeleteMarker>true</ExpiredObjectDeleteMarker></Expiration></Rule>\
            <Rule><ID>d</ID><Status>Enabled</Status><Filter><Tag><Key>t</Key><Value>1</Value></Tag></Filter><Expiration><Days>1</Days></Expiration></Rule>\
            <Rule><ID>e</ID><Status>Enabled</Status><Filter></Filter><Expiration><Days>1</Days></Expiration></Rule>\
            <Rule><ID>f</ID><Status>Enabled</Status><Filter><ObjectSizeLessThan>5</ObjectSizeLessThan></Filter><Expiration><Days>1</Days></Expiration></Rule>\
            </LifecycleConfiguration>";
        let cfg = parse(xml).expect("valid");
        assert_eq!(cfg.rules.len(), 6);
        assert_eq!(cfg.rules[0].transitions.len(), 2);
        assert_eq!(
            cfg.rules[0].noncurrent_expiration,
            Some(NoncurrentExpiration {
                days: 100,
                newer_versions: Some(3)
            })
        );
        assert!(!cfg.rules[1].enabled);
        assert_eq!(cfg.rules[1].expiration, Some(Expiration::Date(1_893_456_000_000)));
        assert_eq!(cfg.rules[2].filter, Filter::LegacyPrefix("old/".into()));
        assert_eq!(cfg.rules[4].filter, Filter::All);
        let back = from_dto(&dto::BucketLifecycleConfiguration { rules: to_dto(&cfg) }).expect("echo accepted");
        assert_eq!(back, cfg);
    }

    #[test]
    fn rejects_bad_rules_naming_them() {
        let cases: &[(&str, &str, &str)] = &[
            ("<Filter/><Expiration><Days>0</Days></Expiration>", "InvalidArgument", "Days"),
            ("<Filter/><Expiration><Days>-3</Days></Expiration>", "InvalidArgument", "Days"),
            ("<Filter/><Expiration><Days>3</Days><ExpiredObjectDeleteMarker>true</ExpiredObjectDeleteMarker></Expiration>", "MalformedXML", "exactly one"),
            ("<Filter/><Expiration><Date>2030-01-01T10:00:00Z</Date></Expiration>", "InvalidArgument", "midnight"),
            ("<Filter/>", "InvalidArgument", "At least one action"),
            ("<Expiration><Days>3</Days></Expiration>", "MalformedXML", "Filter"),
            ("<Filter/><Prefix>a</Prefix><Expiration><Days>3</Days></Expiration>", "MalformedXML", "not both"),
            ("<Filter><Prefix>a</Prefix><Tag><Key>k</Key><Value>v</Value></Tag></Filter><Expiration><Days>3</Days></Expiration>", "MalformedXML", "one of"),
            ("<Filter><Tag><Key>k</Key><Value>v</Value></Tag></Filter><AbortIncompleteMultipartUpload><DaysAfterInitiation>1</DaysAfterInitiation></AbortIncompleteMultipartUpload>", "InvalidArgument", "AbortIncompleteMultipartUpload"),
            ("<Filter><Tag><Key>k</Key><Value>v</Value></Tag></Filter><Expiration><ExpiredObjectDeleteMarker>true</ExpiredObjectDeleteMarker></Expiration>", "InvalidArgument", "ExpiredObjectDeleteMarker"),
            ("<Filter/><Transition><Days>10</Days><StorageClass>STANDARD_IA</StorageClass></Transition>", "InvalidArgument", "30"),
            ("<Filter/><Transition><Days>10</Days><StorageClass>DEEP_ARCHIVE</StorageClass></Transition>", "InvalidStorageClass", "DEEP_ARCHIVE"),
            ("<Filter/><Transition><Days>10</Days></Transition>", "MalformedXML", "StorageClass"),
            ("<Filter/><Transition><Days>100</Days><StorageClass>GLACIER</StorageClass></Transition><Expiration><Days>50</Days></Expiration>", "InvalidArgument", "later"),
            ("<Filter/><Transition><Date>2030-01-01T00:00:00Z</Date><StorageClass>GLACIER</StorageClass></Transition><Expiration><Days>50</Days></Expiration>", "InvalidArgument", "mixed"),
            ("<Filter/><Transition><Days>60</Days><StorageClass>GLACIER</StorageClass></Transition><Transition><Days>90</Days><StorageClass>STANDARD_IA</StorageClass></Transition>", "InvalidArgument", "GLACIER"),
            ("<Filter/><NoncurrentVersionExpiration><NoncurrentDays>3</NoncurrentDays><NewerNoncurrentVersions>101</NewerNoncurrentVersions></NoncurrentVersionExpiration>", "InvalidArgument", "NewerNoncurrentVersions"),
            ("<Filter/><NoncurrentVersionExpiration><NewerNoncurrentVersions>3</NewerNoncurrentVersions></NoncurrentVersionExpiration>", "MalformedXML", "NoncurrentDays"),
            ("<Filter><And><Tag><Key>k</Key><Value>1</Value></Tag><Tag><Key>k</Key><Value>2</Value></Tag></And></Filter><Expiration><Days>3</Days></Expiration>", "InvalidArgument", "Duplicate"),
            ("<Filter><And><ObjectSizeGreaterThan>100</ObjectSizeGreaterThan><ObjectSizeLessThan>10</ObjectSizeLessThan></And></Filter><Expiration><Days>3</Days></Expiration>", "InvalidArgument", "ObjectSize"),
            ("<Filter><ObjectSizeGreaterThan>-1</ObjectSizeGreaterThan></Filter><Expiration><Days>3</Days></Expiration>", "InvalidArgument", "ObjectSize"),
        ];
        for (body, code, needle) in cases {
            let (c, m) = err(&rule(body));
            assert_eq!(&c, code, "{body}: {m}");
            assert!(m.contains(needle), "{body}: message {m:?} lacks {needle:?}");
            assert!(m.contains("'r1'"), "{body}: {m:?} names no rule");
        }
        let (c, m) = err("<LifecycleConfiguration><Rule><ID>x</ID><Status>On</Status><Filter/><Expiration><Days>1</Days></Expiration></Rule></LifecycleConfiguration>");
        assert_eq!(c, "MalformedXML", "{m}");
    }

    #[test]
    fn ids_unique_and_bounded_rule_count() {
        let two = "<Rule><ID>same</ID><Status>Enabled</Status><Filter/><Expiration><Days>1</Days></Expiration></Rule>";
        let (c, m) = err(&format!("<LifecycleConfiguration>{two}{two}</LifecycleConfiguration>"));
        assert_eq!(c, "InvalidArgument");
        assert!(m.contains("unique") && m.contains("same"), "{m}");
        let long = "x".repeat(256);
        let (c, _) = err(&format!(
            "<LifecycleConfiguration><Rule><ID>{long}</ID><Status>Enabled</Status><Filter/><Expiration><Days>1</Days></Expiration></Rule></LifecycleConfiguration>"
        ));
        assert_eq!(c, "InvalidArgument");
        let ok255 = "x".repeat(255);
        assert!(parse(&format!(
            "<LifecycleConfiguration><Rule><ID>{ok255}</ID><Status>Enabled</Status><Filter/><Expiration><Days>1</Days></Expiration></Rule></LifecycleConfiguration>"
        ))
        .is_ok());
        let many: String = (0..=MAX_RULES)
            .map(|i| format!("<Rule><ID>r{i}</ID><Status>Enabled</Status><Filter/><Expiration><Days>1</Days></Expiration></Rule>"))
            .collect();
        let (c, _) = err(&format!("<LifecycleConfiguration>{many}</LifecycleConfiguration>"));
        assert_eq!(c, "InvalidArgument");
        // A rule without an ID gets one.
        let cfg = parse("<LifecycleConfiguration><Rule><Status>Enabled</Status><Filter/><Expiration><Days>1</Days></Expiration></Rule></LifecycleConfiguration>").expect("valid");
        assert!(!cfg.rules[0].id.is_empty());
    }
}
