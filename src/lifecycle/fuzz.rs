//! The `xml-lifecycle` fuzz entry: lifecycle XML through validation and evaluation, with the
//! invariants checked on every accepted configuration. It lives here, not in `model/`, because
//! it drives the evaluator ([`super::eval`]) as well as the model.

use s3s::dto;

use super::eval;
use crate::model::lifecycle::{from_dto, to_dto};
use crate::model::object::Tag;
use crate::util::clock::DAY_MS;

/// Fuzz entry (`fuzz/targets.rs`, target `xml-lifecycle`): parses `data` as a
/// PutBucketLifecycleConfiguration body, validates it, and for accepted configurations checks
/// invariants: what Get returns is accepted back unchanged, and evaluating any version at any
/// time never expires or transitions through a disabled rule. Returns a fingerprint.
pub fn fuzz(data: &[u8]) -> u8 {
    let mut deserializer = s3s::xml::Deserializer::new(data);
    let parsed = <dto::BucketLifecycleConfiguration as s3s::xml::Deserialize>::deserialize(&mut deserializer)
        .and_then(|cfg| deserializer.expect_eof().map(|()| cfg));
    let Ok(cfg) = parsed else { return 0 };
    let Ok(rules) = from_dto(&cfg) else { return 1 };
    let echoed = dto::BucketLifecycleConfiguration { rules: to_dto(&rules) };
    assert_eq!(
        from_dto(&echoed).ok().as_ref(),
        Some(&rules),
        "Get's form must round-trip"
    );
    let mut disabled = rules.clone();
    for r in &mut disabled.rules {
        r.enabled = false;
    }
    let tags = [Tag {
        key: "k".into(),
        value: "v".into(),
    }];
    let mut any_action = false;
    for key in ["", "logs/a", "k"] {
        for standing in [
            eval::Standing::Current { noncurrent_versions: 0 },
            eval::Standing::Noncurrent {
                since_ms: 0,
                newer_noncurrent: 3,
            },
        ] {
            for delete_marker in [false, true] {
                let v = eval::VersionFacts {
                    key,
                    size: 1000,
                    tags: &tags,
                    last_modified_ms: 0,
                    delete_marker,
                    standing,
                };
                for now in [0, DAY_MS * 365, i64::MAX / 2] {
                    let a = eval::evaluate(&rules.rules, &v, now);
                    any_action |= a != eval::Action::Keep;
                    assert_eq!(
                        eval::evaluate(&disabled.rules, &v, now),
                        eval::Action::Keep,
                        "a disabled rule acted"
                    );
                }
            }
        }
    }
    2 | u8::from(any_action) << 2
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fuzz_entry_accepts_seeds() {
        assert_eq!(fuzz(b"not xml") & 2, 0);
        let seed = "<LifecycleConfiguration><Rule><ID>r1</ID><Status>Enabled</Status><Filter><Prefix>logs/</Prefix></Filter><Expiration><Days>1</Days></Expiration></Rule></LifecycleConfiguration>";
        assert_eq!(fuzz(seed.as_bytes()) & 6, 6);
    }
}
