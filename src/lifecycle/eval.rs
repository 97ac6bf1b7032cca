//! Pure lifecycle evaluation: given a bucket's rules, the facts about one object version (or
//! one multipart upload) and the time, which action is due. No I/O and no clock: `now_ms` is
//! a parameter, so every S3 timing rule is unit-tested with chosen times.
//!
//! S3 semantics implemented here:
//! - "Days" counts from the version's creation; the action is due at the first midnight UTC at
//!   or after creation + N days. A "Date" applies from that midnight on.
//! - NoncurrentDays counts from when the version became noncurrent (its successor's creation),
//!   rounded the same way; NewerNoncurrentVersions keeps that many newer noncurrent versions.
//! - ExpiredObjectDeleteMarker removes a current delete marker that is the key's only version.
//! - Disabled rules do nothing. Among the due actions of all matching rules, expiration wins
//!   over transition, and of several due transitions the coldest class wins.
//! - Delete markers have no tags (tag filters never match them); size filters do not apply to
//!   them.

use crate::model::lifecycle::{Expiration, Filter, Rule, TargetClass, When};
use crate::store::records::Tag;
use crate::util::clock::{ceil_to_midnight, DAY_MS};

/// Where a version stands among its key's versions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Standing {
    /// The latest version; `noncurrent_versions` is how many older versions the key has.
    Current { noncurrent_versions: u64 },
    /// An older version: noncurrent since `since_ms` (the next newer version's creation), with
    /// `newer_noncurrent` noncurrent versions newer than it.
    Noncurrent { since_ms: i64, newer_noncurrent: u64 },
}

/// What the evaluation needs to know about one stored version.
#[derive(Clone, Copy, Debug)]
pub struct VersionFacts<'a> {
    pub key: &'a str,
    pub size: u64,
    pub tags: &'a [Tag],
    pub last_modified_ms: i64,
    pub delete_marker: bool,
    pub standing: Standing,
}

/// The action due for a version.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Keep,
    /// Expire the current version: a delete marker in a versioning bucket, a delete otherwise.
    ExpireCurrent,
    /// Permanently delete a current delete marker that is the key's only version.
    RemoveDeleteMarker,
    /// Permanently delete a noncurrent version.
    ExpireNoncurrent,
    /// Move the current version's bytes to a colder class.
    Transition(TargetClass),
    /// Move a noncurrent version's bytes to a colder class.
    TransitionNoncurrent(TargetClass),
}

/// When something created at `start_ms` is due, `days` later (rounded up to midnight UTC).
pub fn due_after_days(start_ms: i64, days: u32) -> i64 {
    ceil_to_midnight(start_ms.saturating_add(i64::from(days).saturating_mul(DAY_MS)))
}

fn has_tags(have: &[Tag], want: &[Tag]) -> bool {
    want.iter()
        .all(|w| have.iter().any(|h| h.key == w.key && h.value == w.value))
}

/// Does `filter` select this version?
pub fn matches(filter: &Filter, v: &VersionFacts) -> bool {
    let size_ok = |gt: Option<u64>, lt: Option<u64>| {
        v.delete_marker || (gt.is_none_or(|g| v.size > g) && lt.is_none_or(|l| v.size < l))
    };
    match filter {
        Filter::All => true,
        Filter::Prefix(p) | Filter::LegacyPrefix(p) => v.key.starts_with(p.as_str()),
        Filter::Tag(t) => has_tags(v.tags, std::slice::from_ref(t)),
        Filter::SizeGreaterThan(g) => size_ok(Some(*g), None),
        Filter::SizeLessThan(l) => size_ok(None, Some(*l)),
        Filter::And {
            prefix,
            tags,
            size_greater_than,
            size_less_than,
        } => {
            prefix.as_deref().is_none_or(|p| v.key.starts_with(p))
                && has_tags(v.tags, tags)
                && size_ok(*size_greater_than, *size_less_than)
        }
    }
}

/// The action due for version `v` at `now_ms` under `rules`.
pub fn evaluate(rules: &[Rule], v: &VersionFacts, now_ms: i64) -> Action {
    let mut expire = false;
    let mut transition: Option<TargetClass> = None;
    for rule in rules.iter().filter(|r| r.enabled && matches(&r.filter, v)) {
        match v.standing {
            Standing::Current { noncurrent_versions } => {
                if v.delete_marker {
                    if noncurrent_versions == 0 && rule.expiration == Some(Expiration::ExpiredObjectDeleteMarker) {
                        return Action::RemoveDeleteMarker;
                    }
                    continue;
                }
                expire |= match rule.expiration {
                    Some(Expiration::Days(d)) => now_ms >= due_after_days(v.last_modified_ms, d),
                    Some(Expiration::Date(t)) => now_ms >= t,
                    _ => false,
                };
                for t in &rule.transitions {
                    let due = match t.when {
                        When::Days(d) => now_ms >= due_after_days(v.last_modified_ms, d),
                        When::Date(at) => now_ms >= at,
                    };
                    if due {
                        transition = transition.max(Some(t.class));
                    }
                }
            }
            Standing::Noncurrent {
                since_ms,
                newer_noncurrent,
            } => {
                let due = |days: u32, keep: Option<u32>| {
                    now_ms >= due_after_days(since_ms, days) && newer_noncurrent >= u64::from(keep.unwrap_or(0))
                };
                if let Some(n) = &rule.noncurrent_expiration {
                    expire |= due(n.days, n.newer_versions);
                }
                if !v.delete_marker {
                    for t in &rule.noncurrent_transitions {
                        if due(t.days, t.newer_versions) {
                            transition = transition.max(Some(t.class));
                        }
                    }
                }
            }
        }
    }
    let current = matches!(v.standing, Standing::Current { .. });
    match (expire, transition, current) {
        (true, _, true) => Action::ExpireCurrent,
        (true, _, false) => Action::ExpireNoncurrent,
        (false, Some(c), true) => Action::Transition(c),
        (false, Some(c), false) => Action::TransitionNoncurrent(c),
        (false, None, _) => Action::Keep,
    }
}

/// Is an incomplete multipart upload of `key`, started at `initiated_ms`, due to be aborted?
pub fn abort_upload_due(rules: &[Rule], key: &str, initiated_ms: i64, now_ms: i64) -> bool {
    let facts = VersionFacts {
        key,
        size: 0,
        tags: &[],
        last_modified_ms: initiated_ms,
        delete_marker: false,
        standing: Standing::Current { noncurrent_versions: 0 },
    };
    rules.iter().any(|r| {
        r.enabled
            && matches(&r.filter, &facts)
            && r.abort_multipart_days
                .is_some_and(|d| now_ms >= due_after_days(initiated_ms, d))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::lifecycle::{NoncurrentExpiration, NoncurrentTransition, Transition};
    use proptest::prelude::*;

    const DAY: i64 = DAY_MS;
    /// 2030-01-01T00:00:00Z.
    const JAN1: i64 = 1_893_456_000_000;

    fn rule(filter: Filter) -> Rule {
        Rule {
            id: "r".into(),
            enabled: true,
            filter,
            expiration: None,
            noncurrent_expiration: None,
            abort_multipart_days: None,
            transitions: Vec::new(),
            noncurrent_transitions: Vec::new(),
        }
    }

    fn expire_days(filter: Filter, d: u32) -> Rule {
        Rule {
            expiration: Some(Expiration::Days(d)),
            ..rule(filter)
        }
    }

    fn current<'a>(key: &'a str, created: i64, tags: &'a [Tag]) -> VersionFacts<'a> {
        VersionFacts {
            key,
            size: 100,
            tags,
            last_modified_ms: created,
            delete_marker: false,
            standing: Standing::Current { noncurrent_versions: 0 },
        }
    }

    fn tag(k: &str, v: &str) -> Tag {
        Tag {
            key: k.into(),
            value: v.into(),
        }
    }

    #[test]
    fn days_round_up_to_the_next_midnight() {
        let rules = [expire_days(Filter::All, 3)];
        // Created 10:30 on Jan 1: + 3 days = Jan 4 10:30, due at Jan 5 00:00.
        let created = JAN1 + 10 * 3_600_000 + 30 * 60_000;
        let v = current("a", created, &[]);
        assert_eq!(due_after_days(created, 3), JAN1 + 4 * DAY);
        assert_eq!(evaluate(&rules, &v, JAN1 + 4 * DAY - 1), Action::Keep);
        assert_eq!(evaluate(&rules, &v, JAN1 + 3 * DAY + 12 * 3_600_000), Action::Keep);
        assert_eq!(evaluate(&rules, &v, JAN1 + 4 * DAY), Action::ExpireCurrent);
        // Created exactly at midnight: due exactly N days later.
        let v = current("a", JAN1, &[]);
        assert_eq!(evaluate(&rules, &v, JAN1 + 3 * DAY - 1), Action::Keep);
        assert_eq!(evaluate(&rules, &v, JAN1 + 3 * DAY), Action::ExpireCurrent);
    }

    #[test]
    fn dates_apply_from_their_midnight() {
        let rules = [Rule {
            expiration: Some(Expiration::Date(JAN1 + 10 * DAY)),
            ..rule(Filter::All)
        }];
        let v = current("a", JAN1 + 20 * DAY, &[]);
        assert_eq!(evaluate(&rules, &v, JAN1 + 10 * DAY - 1), Action::Keep);
        assert_eq!(evaluate(&rules, &v, JAN1 + 10 * DAY), Action::ExpireCurrent);
        assert_eq!(evaluate(&rules, &v, JAN1 + 30 * DAY), Action::ExpireCurrent);
    }

    #[test]
    fn filters_by_prefix_tags_and_size() {
        let now = JAN1 + 10 * DAY;
        let t = [tag("class", "tmp"), tag("owner", "me")];
        let cases = [
            (Filter::Prefix("logs/".into()), "logs/a", &t[..], 100, true),
            (Filter::Prefix("logs/".into()), "log/a", &t[..], 100, false),
            (Filter::LegacyPrefix("".into()), "anything", &[][..], 100, true),
            (Filter::Tag(tag("class", "tmp")), "x", &t[..], 100, true),
            (Filter::Tag(tag("class", "keep")), "x", &t[..], 100, false),
            (Filter::Tag(tag("class", "tmp")), "x", &[][..], 100, false),
            (Filter::SizeGreaterThan(100), "x", &[][..], 100, false),
            (Filter::SizeGreaterThan(99), "x", &[][..], 100, true),
            (Filter::SizeLessThan(100), "x", &[][..], 100, false),
            (Filter::SizeLessThan(101), "x", &[][..], 100, true),
            (
                Filter::And {
                    prefix: Some("a/".into()),
                    tags: vec![tag("class", "tmp"), tag("owner", "me")],
                    size_greater_than: Some(10),
                    size_less_than: Some(1000),
                },
                "a/b",
                &t[..],
                100,
                true,
            ),
            (
                Filter::And {
                    prefix: Some("a/".into()),
                    tags: vec![tag("class", "tmp"), tag("owner", "you")],
                    size_greater_than: None,
                    size_less_than: None,
                },
                "a/b",
                &t[..],
                100,
                false,
            ),
            (
                Filter::And {
                    prefix: None,
                    tags: vec![],
                    size_greater_than: Some(10),
                    size_less_than: Some(50),
                },
                "a/b",
                &t[..],
                100,
                false,
            ),
        ];
        for (filter, key, tags, size, expect) in cases {
            let rules = [expire_days(filter.clone(), 1)];
            let v = VersionFacts {
                size,
                ..current(key, JAN1, tags)
            };
            let want = if expect { Action::ExpireCurrent } else { Action::Keep };
            assert_eq!(evaluate(&rules, &v, now), want, "{filter:?} on {key} {tags:?} {size}");
        }
    }

    #[test]
    fn disabled_rules_do_nothing() {
        let mut r = expire_days(Filter::All, 1);
        r.enabled = false;
        r.abort_multipart_days = Some(1);
        assert_eq!(evaluate(&[r.clone()], &current("a", 0, &[]), JAN1), Action::Keep);
        assert!(!abort_upload_due(&[r], "a", 0, JAN1));
    }

    #[test]
    fn noncurrent_days_count_from_the_successor_and_keep_newer_versions() {
        let rules = [Rule {
            noncurrent_expiration: Some(NoncurrentExpiration {
                days: 5,
                newer_versions: Some(2),
            }),
            ..rule(Filter::All)
        }];
        let v = |since: i64, newer: u64| VersionFacts {
            key: "a",
            size: 1,
            tags: &[],
            last_modified_ms: JAN1 - 100 * DAY, // old: creation time does not count
            delete_marker: false,
            standing: Standing::Noncurrent {
                since_ms: since,
                newer_noncurrent: newer,
            },
        };
        let since = JAN1 + 6 * 3_600_000; // became noncurrent Jan 1 06:00 → due Jan 7 00:00
        assert_eq!(evaluate(&rules, &v(since, 2), JAN1 + 6 * DAY - 1), Action::Keep);
        assert_eq!(evaluate(&rules, &v(since, 2), JAN1 + 6 * DAY), Action::ExpireNoncurrent);
        // The two newest noncurrent versions are kept whatever their age.
        assert_eq!(evaluate(&rules, &v(since, 0), JAN1 + 60 * DAY), Action::Keep);
        assert_eq!(evaluate(&rules, &v(since, 1), JAN1 + 60 * DAY), Action::Keep);
        assert_eq!(
            evaluate(&rules, &v(since, 7), JAN1 + 60 * DAY),
            Action::ExpireNoncurrent
        );
        // A current-version expiration never touches noncurrent versions.
        let only_current = [expire_days(Filter::All, 1)];
        assert_eq!(evaluate(&only_current, &v(since, 9), JAN1 + 60 * DAY), Action::Keep);
    }

    #[test]
    fn delete_markers() {
        let eodm = [Rule {
            expiration: Some(Expiration::ExpiredObjectDeleteMarker),
            ..rule(Filter::Prefix("a".into()))
        }];
        let marker = |others: u64| VersionFacts {
            key: "a",
            size: 0,
            tags: &[],
            last_modified_ms: JAN1,
            delete_marker: true,
            standing: Standing::Current {
                noncurrent_versions: others,
            },
        };
        assert_eq!(evaluate(&eodm, &marker(0), JAN1), Action::RemoveDeleteMarker);
        assert_eq!(evaluate(&eodm, &marker(1), JAN1 + 900 * DAY), Action::Keep);
        // Days expiration does not "expire" a delete marker again, nor remove it.
        let days = [expire_days(Filter::All, 1)];
        assert_eq!(evaluate(&days, &marker(0), JAN1 + 9 * DAY), Action::Keep);
        // Size filters do not apply to markers; tag filters never match them.
        let sized = [Rule {
            expiration: Some(Expiration::ExpiredObjectDeleteMarker),
            ..rule(Filter::SizeGreaterThan(10))
        }];
        assert_eq!(evaluate(&sized, &marker(0), JAN1), Action::RemoveDeleteMarker);
        assert!(!matches(&Filter::Tag(tag("k", "v")), &marker(0)));
        // A noncurrent delete marker is a noncurrent version like any other.
        let nce = [Rule {
            noncurrent_expiration: Some(NoncurrentExpiration {
                days: 1,
                newer_versions: None,
            }),
            ..rule(Filter::All)
        }];
        let old_marker = VersionFacts {
            standing: Standing::Noncurrent {
                since_ms: JAN1,
                newer_noncurrent: 0,
            },
            ..marker(0)
        };
        assert_eq!(evaluate(&nce, &old_marker, JAN1 + DAY), Action::ExpireNoncurrent);
    }

    #[test]
    fn expiration_wins_over_transition_and_the_coldest_transition_wins() {
        let ia = Transition {
            when: When::Days(30),
            class: TargetClass::StandardIa,
        };
        let glacier = Transition {
            when: When::Days(60),
            class: TargetClass::Glacier,
        };
        let tiers = Rule {
            transitions: vec![ia.clone(), glacier],
            ..rule(Filter::All)
        };
        let v = current("a", JAN1, &[]);
        assert_eq!(
            evaluate(std::slice::from_ref(&tiers), &v, JAN1 + 29 * DAY),
            Action::Keep
        );
        assert_eq!(
            evaluate(std::slice::from_ref(&tiers), &v, JAN1 + 30 * DAY),
            Action::Transition(TargetClass::StandardIa)
        );
        assert_eq!(
            evaluate(std::slice::from_ref(&tiers), &v, JAN1 + 61 * DAY),
            Action::Transition(TargetClass::Glacier)
        );
        // Another rule expiring the same object earlier wins over both transitions.
        let expire = expire_days(Filter::Prefix("a".into()), 45);
        assert_eq!(
            evaluate(&[tiers.clone(), expire.clone()], &v, JAN1 + 40 * DAY),
            Action::Transition(TargetClass::StandardIa)
        );
        assert_eq!(
            evaluate(&[tiers.clone(), expire.clone()], &v, JAN1 + 70 * DAY),
            Action::ExpireCurrent
        );
        assert_eq!(evaluate(&[expire, tiers], &v, JAN1 + 50 * DAY), Action::ExpireCurrent);
        // Noncurrent: expiration over transition.
        let nc = Rule {
            noncurrent_transitions: vec![NoncurrentTransition {
                days: 30,
                newer_versions: None,
                class: TargetClass::StandardIa,
            }],
            noncurrent_expiration: Some(NoncurrentExpiration {
                days: 60,
                newer_versions: None,
            }),
            ..rule(Filter::All)
        };
        let old = VersionFacts {
            standing: Standing::Noncurrent {
                since_ms: JAN1,
                newer_noncurrent: 0,
            },
            ..current("a", 0, &[])
        };
        assert_eq!(
            evaluate(std::slice::from_ref(&nc), &old, JAN1 + 30 * DAY),
            Action::TransitionNoncurrent(TargetClass::StandardIa)
        );
        assert_eq!(evaluate(&[nc], &old, JAN1 + 60 * DAY), Action::ExpireNoncurrent);
    }

    #[test]
    fn multipart_uploads_abort_after_their_days() {
        let r = Rule {
            abort_multipart_days: Some(2),
            ..rule(Filter::Prefix("up/".into()))
        };
        let started = JAN1 + 3_600_000;
        assert!(!abort_upload_due(
            std::slice::from_ref(&r),
            "up/a",
            started,
            JAN1 + 3 * DAY - 1
        ));
        assert!(abort_upload_due(
            std::slice::from_ref(&r),
            "up/a",
            started,
            JAN1 + 3 * DAY
        ));
        assert!(!abort_upload_due(&[r], "other/a", started, JAN1 + 30 * DAY));
    }

    proptest! {
        /// Never due a day early: a Days rule never acts before created + N days, always acts
        /// from the midnight after, and acting is monotone in time.
        #[test]
        fn days_rule_due_exactly_at_the_rounded_time(created in 0i64..4_000_000_000_000, d in 1u32..2000, dt in 0i64..(3 * DAY_MS)) {
            let rules = [expire_days(Filter::All, d)];
            let v = current("k", created, &[]);
            let due = due_after_days(created, d);
            prop_assert!(due >= created + i64::from(d) * DAY_MS);
            prop_assert!(due < created + i64::from(d) * DAY_MS + DAY_MS);
            prop_assert_eq!(due.rem_euclid(DAY_MS), 0);
            prop_assert_eq!(evaluate(&rules, &v, due - 1 - dt), Action::Keep);
            prop_assert_eq!(evaluate(&rules, &v, due + dt), Action::ExpireCurrent);
        }

        /// Adding a disabled rule never changes the outcome; adding an enabled one never turns
        /// an expiration into something milder.
        #[test]
        fn rules_compose(d1 in 1u32..100, d2 in 1u32..100, now_days in 0i64..300, newer in 0u64..5, noncurrent in any::<bool>()) {
            let a = expire_days(Filter::All, d1);
            let mut b = Rule {
                noncurrent_expiration: Some(NoncurrentExpiration { days: d2, newer_versions: Some(2) }),
                transitions: vec![Transition { when: When::Days(d2), class: TargetClass::Glacier }],
                ..rule(Filter::All)
            };
            let v = VersionFacts {
                standing: if noncurrent {
                    Standing::Noncurrent { since_ms: JAN1, newer_noncurrent: newer }
                } else {
                    Standing::Current { noncurrent_versions: newer }
                },
                ..current("k", JAN1, &[])
            };
            let now = JAN1 + now_days * DAY_MS;
            let alone = evaluate(std::slice::from_ref(&a), &v, now);
            b.enabled = false;
            prop_assert_eq!(evaluate(&[a.clone(), b.clone()], &v, now), alone);
            b.enabled = true;
            let both = evaluate(&[b, a], &v, now);
            if alone == Action::ExpireCurrent {
                prop_assert_eq!(both, Action::ExpireCurrent);
            }
        }
    }
}
