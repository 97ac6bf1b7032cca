//! Fuzz targets shared by the stable-Rust fuzzer (`examples/fuzz.rs`) and the CI corpus replay
//! (`tests/fuzz_corpus.rs`); both include this file with
//! `#[path = "../fuzz/targets.rs"] mod targets;`.
//!
//! A target takes arbitrary bytes, drives one parser or one piece of Strata logic, and
//! **panics** when an invariant is broken (the callers run it under `catch_unwind`). Returning
//! normally means "no bug found". The returned [`Outcome`] is a small fingerprint of what
//! happened (which error kind, which branch); the fuzzer keeps inputs with a new fingerprint in
//! its pool, a cheap stand-in for coverage feedback.
//!
//! Targets (corpus directory `fuzz/corpus/<name>/`):
//!
//! | name | drives |
//! |---|---|
//! | `transform-params` | `parse_query`, `is_transform_query`, `resolve`, `Spec::canonical` |
//! | `image-decode` | `sniff`, `probe`, `run` with small [`image_limits`] |
//! | `xml-delete` | s3s XML → `s3s::dto::Delete` (DeleteObjects body) |
//! | `xml-complete` | s3s XML → `s3s::dto::CompletedMultipartUpload` |
//! | `post-policy` | `s3s::post_policy::PostPolicy::{from_base64, from_json}` |
//! | `headers` | `Range`, `CopySource`, `ETagCondition` parsers, Strata's conditional checks, bucket names / path-style paths with `StrataNames` |
//! | `config-toml` | `toml::from_str::<strata::config::Config>` |
//! | `keys` | `MetaStore::put_version` / `object` / `scan_objects` / `delete_current` with fuzzed keys |
//! | `bucket-policy` | `auth::policy::Policy::parse` + `evaluate` |
//! | `xml-acl` | s3s XML → `AccessControlPolicy` → `auth::acl::Acl::from_dto` (and grant headers) |
//! | `xml-lifecycle` | s3s XML → `BucketLifecycleConfiguration` → `lifecycle::rules::from_dto`, round trip, evaluation |
//! | `xml-cors` | s3s XML → `CORSConfiguration` → `cors::rules_from_dto`, preflight/actual matching |

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use strata::transform::{self, Limits, OutputFormat, SourceFormat, TransformError};

/// Fingerprint of one execution (see the module docs).
pub type Outcome = u64;

/// One fuzz target.
pub struct Target {
    pub name: &'static str,
    /// Runs one input; panics on a broken invariant.
    pub run: fn(&[u8]) -> Outcome,
    /// Tokens the mutator splices in (parameter names, tags, markers …).
    pub dict: &'static [&'static [u8]],
    /// Inputs are cut to this length.
    pub max_len: usize,
}

/// Every target, in the order `all` rotates through them.
pub const TARGETS: &[Target] = &[
    Target {
        name: "transform-params",
        run: transform_params,
        dict: PARAMS_DICT,
        max_len: 1024,
    },
    Target {
        name: "image-decode",
        run: image_decode,
        dict: IMAGE_DICT,
        max_len: 64 * 1024,
    },
    Target {
        name: "xml-delete",
        run: xml_delete,
        dict: XML_DICT,
        max_len: 16 * 1024,
    },
    Target {
        name: "xml-complete",
        run: xml_complete,
        dict: XML_DICT,
        max_len: 16 * 1024,
    },
    Target {
        name: "post-policy",
        run: post_policy,
        dict: POLICY_DICT,
        max_len: 8 * 1024,
    },
    Target {
        name: "headers",
        run: headers,
        dict: HEADERS_DICT,
        max_len: 2048,
    },
    Target {
        name: "config-toml",
        run: config_toml,
        dict: TOML_DICT,
        max_len: 8 * 1024,
    },
    Target {
        name: "keys",
        run: keys,
        dict: KEYS_DICT,
        max_len: 4 * 1024,
    },
    Target {
        name: "bucket-policy",
        run: bucket_policy,
        dict: BUCKET_POLICY_DICT,
        max_len: 8 * 1024,
    },
    Target {
        name: "xml-acl",
        run: xml_acl,
        dict: ACL_DICT,
        max_len: 8 * 1024,
    },
    Target {
        name: "xml-cors",
        run: xml_cors,
        dict: CORS_DICT,
        max_len: 8 * 1024,
    },
    Target {
        name: "xml-lifecycle",
        run: xml_lifecycle,
        dict: LIFECYCLE_DICT,
        max_len: 16 * 1024,
    },
];

const LIFECYCLE_DICT: &[&[u8]] = &[
    b"<LifecycleConfiguration>",
    b"</LifecycleConfiguration>",
    b"<Rule>",
    b"</Rule>",
    b"<ID>r</ID>",
    b"<Status>Enabled</Status>",
    b"<Filter><Prefix>logs/</Prefix></Filter>",
    b"<Filter><Tag><Key>k</Key><Value>v</Value></Tag></Filter>",
    b"<And><Prefix>a/</Prefix><Tag><Key>k</Key><Value>v</Value></Tag></And>",
    b"<Expiration><Days>30</Days></Expiration>",
    b"<Expiration><Date>2030-01-01T00:00:00Z</Date></Expiration>",
    b"<ExpiredObjectDeleteMarker>true</ExpiredObjectDeleteMarker>",
    b"<NoncurrentVersionExpiration><NoncurrentDays>7</NoncurrentDays></NoncurrentVersionExpiration>",
    b"<AbortIncompleteMultipartUpload><DaysAfterInitiation>1</DaysAfterInitiation></AbortIncompleteMultipartUpload>",
    b"<Transition><Days>30</Days><StorageClass>GLACIER</StorageClass></Transition>",
    b"<NewerNoncurrentVersions>2</NewerNoncurrentVersions>",
    b"<ObjectSizeGreaterThan>10</ObjectSizeGreaterThan>",
    b"<ObjectSizeLessThan>1000</ObjectSizeLessThan>",
    b"<Status>Disabled</Status>",
    b"<Prefix>old/</Prefix>",
];

/// Input: a PutBucketLifecycleConfiguration body through s3s's XML deserializer, then
/// Strata's validation and evaluation (`lifecycle::fuzz`: accepted rules must round-trip
/// through Get's form, and disabled rules never act).
pub fn xml_lifecycle(data: &[u8]) -> Outcome {
    let parsed = match parse_xml::<s3s::dto::BucketLifecycleConfiguration>(data) {
        Ok(cfg) => hash_of(&(
            "ok",
            cfg.rules.len().min(8),
            cfg.rules.iter().any(|r| r.filter.is_some()),
        )),
        Err(e) => fp("err", &e),
    };
    hash_of(&(parsed, strata::lifecycle::fuzz::fuzz(data)))
}

const BUCKET_POLICY_DICT: &[&[u8]] = &[
    b"\"Version\"",
    b"\"2012-10-17\"",
    b"\"Statement\"",
    b"\"Effect\"",
    b"\"Allow\"",
    b"\"Deny\"",
    b"\"Principal\"",
    b"\"AWS\"",
    b"\"*\"",
    b"\"Action\"",
    b"\"s3:GetObject\"",
    b"\"s3:*\"",
    b"\"Resource\"",
    b"\"arn:aws:s3:::fuzz/*\"",
    b"\"Condition\"",
    b"\"IpAddress\"",
    b"\"NotIpAddress\"",
    b"\"aws:SourceIp\"",
    b"\"10.0.0.0/8\"",
    b"\"::1/128\"",
    b"\"Bool\"",
    b"\"aws:SecureTransport\"",
    b"\"StringLike\"",
    b"\"aws:Referer\"",
    b"\"s3:prefix\"",
    b"[",
    b"]",
    b"{",
    b"}",
];

const ACL_DICT: &[&[u8]] = &[
    b"<AccessControlPolicy>",
    b"</AccessControlPolicy>",
    b"<AccessControlList>",
    b"<Grant>",
    b"</Grant>",
    b"<Grantee xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xsi:type=\"CanonicalUser\">",
    b"<Grantee xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xsi:type=\"Group\">",
    b"<ID>AKIAOWNER</ID>",
    b"<URI>http://acs.amazonaws.com/groups/global/AllUsers</URI>",
    b"<Permission>READ</Permission>",
    b"<Permission>FULL_CONTROL</Permission>",
    b"<Owner><ID>AKIAOWNER</ID></Owner>",
    b"id=\"AKIAUSER\"",
    b"uri=\"http://acs.amazonaws.com/groups/global/AuthenticatedUsers\"",
    b"emailAddress=\"a@b\"",
    b", ",
];

const CORS_DICT: &[&[u8]] = &[
    b"<CORSConfiguration>",
    b"</CORSConfiguration>",
    b"<CORSRule>",
    b"</CORSRule>",
    b"<AllowedOrigin>https://*.example.com</AllowedOrigin>",
    b"<AllowedOrigin>*</AllowedOrigin>",
    b"<AllowedMethod>GET</AllowedMethod>",
    b"<AllowedMethod>PUT</AllowedMethod>",
    b"<AllowedHeader>*</AllowedHeader>",
    b"<ExposeHeader>ETag</ExposeHeader>",
    b"<MaxAgeSeconds>3000</MaxAgeSeconds>",
    b"<ID>r1</ID>",
];

/// Input: a bucket policy document for bucket `fuzz`. Parsing must not panic; an accepted
/// policy is evaluated against fixed requests (`auth::policy`'s own fuzz entry, which asserts
/// its invariants).
pub fn bucket_policy(data: &[u8]) -> Outcome {
    let accepted = strata::auth::policy::Policy::parse(data, "fuzz").is_ok();
    strata::auth::policy::fuzz_parse_and_evaluate(data);
    hash_of(&accepted)
}

/// Input: a PutBucketAcl / PutObjectAcl XML body, also tried as `x-amz-grant-*` header values
/// (`auth::acl::fuzz`: accepted ACLs must round-trip through the XML form unchanged).
pub fn xml_acl(data: &[u8]) -> Outcome {
    hash_of(&strata::model::acl::fuzz(data))
}

/// Input: a PutBucketCors XML body (`cors::fuzz`: accepted rules must round-trip, and a
/// preflight match implies an actual-request match).
pub fn xml_cors(data: &[u8]) -> Outcome {
    hash_of(&strata::model::cors::fuzz(data))
}

/// Looks a target up by name.
pub fn target(name: &str) -> Option<&'static Target> {
    TARGETS.iter().find(|t| t.name == name)
}

/// Hash of anything hashable (used for fingerprints and file names).
pub fn hash_of<T: Hash + ?Sized>(v: &T) -> u64 {
    let mut h = DefaultHasher::new();
    v.hash(&mut h);
    h.finish()
}

/// Fingerprint of an error message: its first 32 letters and spaces, so `"7 is out of range"`
/// and `"9 is out of range"` count as the same outcome, and names quoted late in a message
/// (fuzzed tags, keys) do not make every input look new.
fn fp(kind: &str, message: &str) -> Outcome {
    let shape: String = message
        .chars()
        .filter(|c| c.is_ascii_alphabetic() || *c == ' ')
        .take(32)
        .collect();
    hash_of(&(kind, shape))
}

// ------------------------------------------------------------------------------ dictionaries

const PARAMS_DICT: &[&[u8]] = &[
    b"w=",
    b"h=",
    b"dpr=",
    b"fit=",
    b"f=",
    b"q=",
    b"bg=",
    b"strip=",
    b"&",
    b"=",
    b"%",
    b"%77",
    b"%3D",
    b"%26",
    b"%zz",
    b"%",
    b"+",
    b"cover",
    b"contain",
    b"fill",
    b"inside",
    b"outside",
    b"jpeg",
    b"jpg",
    b"png",
    b"webp",
    b"avif",
    b"gif",
    b"auto",
    b"true",
    b"false",
    b"0",
    b"1",
    b"8192",
    b"8193",
    b"4294967296",
    b"9999999999",
    b"1.5",
    b"4.0",
    b"4.001",
    b"0.999",
    b"2.",
    b".5",
    b"ffffff",
    b"#00000000",
    b"versionId=",
    b"partNumber=",
    b"response-content-type=",
    b"X-Amz-Date=",
    b"x-id=GetObject",
    b"\n",
    b"image/webp",
    b"image/avif",
    b"*/*",
    b";q=0",
    b";q=0.5",
];

const IMAGE_DICT: &[&[u8]] = &[
    // PNG
    b"\x89PNG\r\n\x1a\n",
    b"IHDR",
    b"IDAT",
    b"IEND",
    b"PLTE",
    b"tRNS",
    b"eXIf",
    b"iCCP",
    b"acTL",
    b"\x00\x00\x00\x0dIHDR",
    b"\x00\x00\x20\x00",
    b"\x7f\xff\xff\xff",
    b"\xff\xff\xff\xff",
    // JPEG markers
    b"\xff\xd8\xff",
    b"\xff\xe0",
    b"\xff\xe1",
    b"\xff\xdb",
    b"\xff\xc0",
    b"\xff\xc2",
    b"\xff\xc4",
    b"\xff\xda",
    b"\xff\xdd",
    b"\xff\xd9",
    b"\xff\xfe",
    b"Exif\x00\x00",
    b"MM\x00\x2a",
    b"II\x2a\x00",
    b"\x01\x12\x00\x03",
    // GIF
    b"GIF89a",
    b"GIF87a",
    b"\x21\xf9\x04",
    b"\x2c",
    b"\x3b",
    // WebP
    b"RIFF",
    b"WEBP",
    b"VP8 ",
    b"VP8L",
    b"VP8X",
    b"ALPH",
    b"ANIM",
    b"ANMF",
    b"EXIF",
    b"ICCP",
    b"\x9d\x01\x2a",
];

const XML_DICT: &[&[u8]] = &[
    b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>",
    b"<Delete>",
    b"</Delete>",
    b"<Delete xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">",
    b"<Object>",
    b"</Object>",
    b"<Key>",
    b"</Key>",
    b"<VersionId>",
    b"</VersionId>",
    b"<Quiet>",
    b"</Quiet>",
    b"true",
    b"false",
    b"<CompleteMultipartUpload>",
    b"</CompleteMultipartUpload>",
    b"<Part>",
    b"</Part>",
    b"<PartNumber>",
    b"</PartNumber>",
    b"<ETag>",
    b"</ETag>",
    b"<ChecksumCRC32>",
    b"</ChecksumCRC32>",
    b"<ChecksumSHA256>",
    b"<ETag/>",
    b"<Key/>",
    b"&amp;",
    b"&lt;",
    b"&#x0;",
    b"&#1114112;",
    b"&bogus;",
    b"<![CDATA[",
    b"]]>",
    b"<!--",
    b"-->",
    b"<!DOCTYPE x [<!ENTITY a \"aaaa\">]>",
    b"\"",
    b"2147483648",
    b"-1",
    b"10001",
];

const POLICY_DICT: &[&[u8]] = &[
    b"{\"expiration\":\"2030-01-01T00:00:00.000Z\",\"conditions\":[",
    b"]}",
    b"{\"bucket\":\"b\"}",
    b"[\"starts-with\",\"$key\",\"\"]",
    b"[\"eq\",\"$acl\",\"public-read\"]",
    b"[\"content-length-range\",0,1048576]",
    b"[\"content-length-range\",-1,18446744073709551616]",
    b"\"expiration\"",
    b"\"conditions\"",
    b"\"$key\"",
    b"null",
    b"1e999",
    b"\\u0000",
    b"\\ud800",
    b"2030-13-01T00:00:00Z",
    b",",
    b":",
    b"{",
    b"}",
    b"[",
    b"]",
];

const HEADERS_DICT: &[&[u8]] = &[
    b"bytes=",
    b"-",
    b",",
    b"0",
    b"18446744073709551615",
    b"18446744073709551616",
    b"9223372036854775807",
    b"9223372036854775808",
    b"\"",
    b"W/\"",
    b"*",
    b"/",
    b"?versionId=",
    b"%2F",
    b"%",
    b"arn:aws:s3:us-east-1:123456789012:accesspoint/ap/object/",
    b"arn:aws:s3-outposts:us-east-1:123456789012:outpost/op-1/object/",
    b"_strata",
    b"xn--",
    b"-s3alias",
    b"..",
    b"192.168.0.1",
    b"\n",
];

const TOML_DICT: &[&[u8]] = &[
    b"listen = \"127.0.0.1:0\"\n",
    b"data_dir = ",
    b"region = ",
    b"[limits]\n",
    b"[transform]\n",
    b"[transform.buckets.b]\n",
    b"[credentials]\n",
    b"deadline_ms = ",
    b"max_source_pixels = ",
    b"inline_max_bytes = ",
    b"workers = ",
    b"anonymous_presets = [\"w=1\"]\n",
    b"18446744073709551615",
    b"-1",
    b"1e400",
    b"nan",
    b"inf",
    b"\"\"\"",
    b"'''",
    b"[[",
    b"]]",
    b"=",
    b"\n",
    b"1979-05-27T07:32:00Z",
];

const KEYS_DICT: &[&[u8]] = &[
    b"/",
    b"//",
    b"../",
    b"./",
    b"..",
    b"\\",
    b"\x00",
    b"\x01",
    b"\xef\xbf\xbf",
    b"\xf4\x8f\xbf\xbf",
    b"\xc3\xa9",
    b"%2F",
    b"~",
    b"\n",
    b" ",
    b"a/b/c",
    b"meta",
    b"blobs",
    b"tmp",
    b"_strata",
];

// ------------------------------------------------------------------------ transform-params

/// Everything the parameter parser may legitimately blame.
const TRANSFORM_PARAMS: [&str; 8] = ["w", "h", "dpr", "fit", "f", "q", "bg", "strip"];

/// Input: `query` or `query\naccept`. Checks: no panic; `Ok(None)` exactly when no transform
/// parameter is present; every error is `InvalidArgument` naming a parameter of the query;
/// parsed values are in range; parameter order does not matter; the canonical form of the
/// resolved spec, written back as a query, resolves to the same canonical form.
pub fn transform_params(data: &[u8]) -> Outcome {
    let text = String::from_utf8_lossy(data);
    let (query, accept) = match text.split_once('\n') {
        Some((q, a)) => (q, Some(a)),
        None => (&*text, None),
    };
    let is_transform = transform::is_transform_query(query);
    let parsed = transform::parse_query(query);
    let raw = match parsed {
        Ok(None) => {
            assert!(!is_transform, "{query:?}: is_transform_query but parse_query gave None");
            return 1;
        }
        Ok(Some(raw)) => raw,
        Err(TransformError::InvalidArgument { param, message }) => {
            assert!(
                is_transform,
                "{query:?}: error {param}/{message} for a non-transform query"
            );
            assert!(!message.is_empty(), "{query:?}: empty error message");
            let named = TRANSFORM_PARAMS.contains(&param.as_str())
                || query.split('&').any(|pair| {
                    let k = pair.split_once('=').map_or(pair, |(k, _)| k);
                    k == param || percent_decoded(k).as_deref() == Some(param.as_str())
                });
            assert!(
                named,
                "{query:?}: error names {param:?}, which is not a parameter of the query"
            );
            let class = if TRANSFORM_PARAMS.contains(&param.as_str()) {
                param.as_str()
            } else {
                "other"
            };
            let shape = fp(class, &message);
            let err = TransformError::InvalidArgument { param, message };
            assert_eq!(err.http_status(), 400);
            assert!(!err.to_string().is_empty());
            return shape;
        }
        Err(other) => panic!("{query:?}: parse_query returned a non-argument error {other:?}"),
    };
    assert!(is_transform);
    for d in [raw.width, raw.height].into_iter().flatten() {
        assert!((1..=transform::MAX_DIMENSION).contains(&d), "{query:?}: dimension {d}");
    }
    assert!(
        (1000..=4000).contains(&raw.dpr_milli),
        "{query:?}: dpr {}",
        raw.dpr_milli
    );
    if let Some(q) = raw.quality {
        assert!((1..=100).contains(&q), "{query:?}: q {q}");
    }
    // Order independence: the same pairs reversed give the same spec.
    let reversed: Vec<&str> = query.split('&').rev().collect();
    let reversed = reversed.join("&");
    match transform::parse_query(&reversed) {
        Ok(Some(r)) => assert_eq!(r, raw, "{query:?}: reversed order {reversed:?} parses differently"),
        other => panic!("{query:?} parsed but its reverse {reversed:?} gave {other:?}"),
    }
    let mut outcome = hash_of(&(raw.width.is_some(), raw.height.is_some(), raw.fit, raw.format));
    for source in [
        SourceFormat::Jpeg,
        SourceFormat::Png,
        SourceFormat::Webp,
        SourceFormat::Gif,
    ] {
        for acc in [None, accept] {
            let spec = transform::resolve(raw.clone(), acc, source);
            let canonical = spec.canonical();
            assert!(canonical.starts_with("w="), "{canonical}");
            assert!((1..=100).contains(&spec.quality), "{query:?}: quality {}", spec.quality);
            if spec.format == OutputFormat::Jpeg {
                assert_eq!(spec.background.a, 255, "{query:?}: JPEG background must be opaque");
            }
            if spec.format == OutputFormat::Avif {
                let avif_supported = transform::AVIF_SUPPORTED;
                assert!(avif_supported, "{query:?}: avif chosen by a build without AVIF");
            }
            // Canonical stability: writing the spec back as a query reproduces it.
            let again = spec_to_query(&spec);
            let reparsed = match transform::parse_query(&again) {
                Ok(Some(r)) => r,
                other => panic!("{query:?}: canonical {canonical} as query {again:?} gave {other:?}"),
            };
            let spec2 = transform::resolve(reparsed, acc, source);
            assert_eq!(
                spec2.canonical(),
                canonical,
                "{query:?}: canonical not stable through {again:?}"
            );
            outcome = outcome.wrapping_mul(31).wrapping_add(hash_of(spec.format.as_str()));
        }
    }
    outcome
}

/// A query that asks for exactly `spec`.
fn spec_to_query(spec: &transform::Spec) -> String {
    let mut parts = Vec::new();
    if let Some(w) = spec.width {
        parts.push(format!("w={w}"));
    }
    if let Some(h) = spec.height {
        parts.push(format!("h={h}"));
    }
    if spec.fit != transform::Fit::Scale {
        parts.push(format!("fit={}", spec.fit.as_str()));
    }
    parts.push(format!("f={}", spec.format.as_str()));
    if spec.format.is_lossy() {
        parts.push(format!("q={}", spec.quality));
    }
    let bg = spec.background;
    parts.push(format!("bg={:02x}{:02x}{:02x}{:02x}", bg.r, bg.g, bg.b, bg.a));
    parts.push(format!("strip={}", u8::from(spec.strip)));
    parts.join("&")
}

/// Percent-decoding as a client would read it (`+` is a space); `None` if malformed.
fn percent_decoded(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

// ---------------------------------------------------------------------------- image-decode

/// The limits the fuzzer runs transforms under: small enough that one execution stays cheap.
pub fn image_limits() -> Limits {
    Limits {
        max_source_pixels: 4_000_000,
        max_source_bytes: 1024 * 1024,
        max_output_pixels: 1_000_000,
        deadline: Duration::from_secs(2),
    }
}

/// Transform requests the image target cycles through (chosen by a hash of the input).
const IMAGE_QUERIES: &[&str] = &[
    "w=64",
    "w=32&h=32&fit=contain&f=png&bg=ff000080",
    "h=48&f=webp&q=50",
    "w=40&h=20&fit=cover&f=jpeg",
    "w=16&fit=inside&f=gif",
    "w=50&h=30&fit=fill&f=png",
    "w=30&h=60&fit=outside&f=jpeg&bg=00ff00",
    "w=2000&f=png",
    "f=webp",
];

/// Checks: `probe` never panics and agrees with `sniff`; `run` never panics, refuses sources
/// over the pixel limit, and its output respects the output limit, has the requested format
/// and probes to the reported size.
pub fn image_decode(data: &[u8]) -> Outcome {
    let limits = image_limits();
    let sniffed = transform::sniff(data);
    let info = transform::probe(data);
    if let Ok(info) = &info {
        assert_eq!(
            sniffed,
            Some(info.format),
            "probe accepted what sniff did not recognise"
        );
        assert!(
            info.width >= 1 && info.height >= 1,
            "probe reported {}x{}",
            info.width,
            info.height
        );
    }
    let query = IMAGE_QUERIES[(hash_of(data) % IMAGE_QUERIES.len() as u64) as usize];
    let raw = match transform::parse_query(query) {
        Ok(Some(raw)) => raw,
        other => panic!("fixed query {query} does not parse: {other:?}"),
    };
    let source = info.as_ref().map(|i| i.format).unwrap_or(SourceFormat::Jpeg);
    let spec = transform::resolve(raw, Some("image/webp,*/*"), source);
    let result = transform::run(data, &spec, &limits);
    match (&info, &result) {
        (Ok(info), _) if info.pixels() > limits.max_source_pixels => {
            assert!(
                matches!(result, Err(TransformError::TooLarge(_))),
                "{}x{} source over the {} px limit was not refused: {result:?}",
                info.width,
                info.height,
                limits.max_source_pixels
            );
        }
        (Err(_), Ok(_)) => panic!("run succeeded on input that probe refused"),
        _ => {}
    }
    match result {
        Ok(out) => {
            assert!(!out.bytes.is_empty(), "empty output");
            assert_eq!(out.format, spec.format);
            assert!(
                u64::from(out.width) * u64::from(out.height) <= limits.max_output_pixels,
                "output {}x{} over the limit",
                out.width,
                out.height
            );
            let back = transform::probe(&out.bytes)
                .unwrap_or_else(|e| panic!("our own {} output does not probe: {e}", out.format.as_str()));
            assert_eq!(
                (back.width, back.height),
                (out.width, out.height),
                "output header disagrees with Output"
            );
            hash_of(&("ok", out.format.as_str(), info.map(|i| i.format.as_str()).ok()))
        }
        Err(e) => {
            let kind = match &e {
                TransformError::InvalidArgument { .. } => "invalid",
                TransformError::UnsupportedSource(_) => "unsupported",
                TransformError::TooLarge(_) => "too-large",
                TransformError::Corrupt(_) => "corrupt",
                TransformError::Timeout => "timeout",
                TransformError::Internal(_) => "internal",
            };
            fp(kind, &e.to_string())
        }
    }
}

// ------------------------------------------------------------------------------------- XML

fn parse_xml<T>(data: &[u8]) -> Result<T, String>
where
    T: for<'xml> s3s::xml::Deserialize<'xml>,
{
    let mut d = s3s::xml::Deserializer::new(data);
    let value = T::deserialize(&mut d).map_err(|e| e.to_string())?;
    d.expect_eof().map_err(|e| e.to_string())?;
    Ok(value)
}

/// DeleteObjects body, parsed exactly as s3s parses it (`deserialize` then `expect_eof`).
pub fn xml_delete(data: &[u8]) -> Outcome {
    match parse_xml::<s3s::dto::Delete>(data) {
        Ok(del) => {
            for obj in &del.objects {
                let _ = (obj.key.len(), obj.version_id.as_deref());
            }
            hash_of(&("ok", del.objects.len().min(4), del.quiet))
        }
        Err(e) => fp("err", &e),
    }
}

/// CompleteMultipartUpload body, parsed exactly as s3s parses it.
pub fn xml_complete(data: &[u8]) -> Outcome {
    match parse_xml::<s3s::dto::CompletedMultipartUpload>(data) {
        Ok(done) => {
            let parts = done.parts.as_deref().unwrap_or_default();
            let numbers: Vec<Option<i32>> = parts.iter().map(|p| p.part_number).collect();
            hash_of(&("ok", parts.len().min(4), numbers.iter().all(Option::is_some)))
        }
        Err(e) => fp("err", &e),
    }
}

// ----------------------------------------------------------------------------- post-policy

/// Input: a base64 policy (as sent in the form) or, if it is not valid base64, the policy JSON
/// itself (then also fed through `from_base64` after encoding it).
pub fn post_policy(data: &[u8]) -> Outcome {
    use base64::Engine as _;
    let engine = base64::engine::general_purpose::STANDARD;
    let text = String::from_utf8_lossy(data);
    let first = s3s::post_policy::PostPolicy::from_base64(&text);
    let json = match engine.decode(text.trim().as_bytes()) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(_) => {
            let encoded = engine.encode(text.as_bytes());
            let _ = s3s::post_policy::PostPolicy::from_base64(&encoded);
            text.into_owned()
        }
    };
    let second = s3s::post_policy::PostPolicy::from_json(&json);
    let mut outcome: Outcome = 0;
    for (i, r) in [first, second].into_iter().enumerate() {
        let v = match r {
            Ok(p) => {
                if let Some((min, max)) = p.content_length_range() {
                    let _ = max.checked_sub(min);
                }
                hash_of(&(i, "ok", p.conditions.len().min(4)))
            }
            Err(e) => fp("err", &e.to_string()),
        };
        outcome = outcome.wrapping_mul(7).wrapping_add(v);
    }
    outcome
}

// --------------------------------------------------------------------------------- headers

/// Every parser gets the whole input and each of its lines: `Range` (+ `check` against a few
/// lengths and a round trip through `to_header_string`), `CopySource` (round trip through
/// `format_to_string`), `ETagCondition` (then Strata's `conditional::check_write`/`check`),
/// `check_bucket_name`, and path-style parsing with Strata's `StrataNames`.
pub fn headers(data: &[u8]) -> Outcome {
    use s3s::dto::{CopySource, ETagCondition, Range};
    use strata::s3::conditional;

    let text = String::from_utf8_lossy(data);
    let mut outcome: Outcome = 0;
    let mut mix = |v: Outcome| outcome = outcome.wrapping_mul(1_000_003).wrapping_add(v);
    let inputs = std::iter::once(&*text).chain(text.lines().take(8));
    for s in inputs {
        // Range
        match Range::parse(s) {
            Ok(r) => {
                let again = r.to_header_string();
                let r2 = Range::parse(&again).unwrap_or_else(|_| panic!("{s:?} -> {again:?} does not parse"));
                assert_eq!(r, r2, "{s:?}: Range round trip");
                for len in [0u64, 1, 10, 1 << 20, u64::MAX / 2, u64::MAX] {
                    if let Ok(sel) = r.check(len) {
                        assert!(
                            sel.start <= sel.end && sel.end <= len,
                            "{s:?}: {sel:?} for length {len}"
                        );
                    }
                }
                mix(hash_of(&("range", matches!(r, Range::Suffix { .. }))));
            }
            Err(_) => mix(2),
        }
        // CopySource
        match CopySource::parse(s) {
            Ok(c) => {
                let again = c.format_to_string();
                if let Ok(c2) = CopySource::parse(&again) {
                    assert_eq!(c, c2, "{s:?}: CopySource round trip through {again:?}");
                }
                mix(hash_of(&("copy", std::mem::discriminant(&c))));
            }
            Err(e) => mix(fp("copy-err", &e.to_string())),
        }
        // ETag conditions and Strata's evaluation of them
        match ETagCondition::parse_http_header(s.as_bytes()) {
            Ok(cond) => {
                let current = cond.as_etag().map(|e| e.value().to_string());
                for etag in [current.as_deref(), Some("d41d8cd98f00b204e9800998ecf8427e"), None] {
                    let _ = conditional::check_write(Some(&cond), None, etag);
                    let _ = conditional::check_write(None, Some(&cond), etag);
                }
                let both = conditional::Conditions {
                    if_match: Some(&cond),
                    if_none_match: Some(&cond),
                    if_modified_since: None,
                    if_unmodified_since: None,
                };
                let any_etag = current.as_deref().unwrap_or("x");
                let _ = conditional::check(&both, any_etag, 0, conditional::Kind::Read);
                let _ = conditional::check(&both, any_etag, i64::MIN, conditional::Kind::CopySource);
                if let Some(cur) = current.as_deref() {
                    // If-Match with the object's own ETag always passes.
                    assert!(
                        conditional::check_write(Some(&cond), None, Some(cur)).is_ok(),
                        "{s:?}: If-Match with the current ETag refused"
                    );
                }
                mix(hash_of(&("etag", cond.is_any())));
            }
            Err(e) => mix(fp("etag-err", &e.to_string())),
        }
        // Bucket names and paths
        let ok = s3s::path::check_bucket_name(s);
        if ok {
            assert!(
                (3..=63).contains(&s.len()),
                "{s:?}: accepted bucket name of length {}",
                s.len()
            );
            assert!(s
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.'));
        }
        mix(u64::from(ok));
        let path = if s.starts_with('/') {
            s.to_string()
        } else {
            format!("/{s}")
        };
        match s3s::path::parse_path_style_with_validation(&path, &strata::admin::StrataNames) {
            Ok(p) => {
                if let Some(b) = p.get_bucket_name() {
                    assert!(
                        s3s::path::check_bucket_name(b) || b == strata::s3::RESERVED_BUCKET,
                        "{s:?}: path accepted with bucket {b:?}"
                    );
                }
                mix(hash_of(&("path", p.is_root(), p.get_object_key().is_some())));
            }
            Err(e) => mix(fp("path-err", &e.to_string())),
        }
    }
    outcome
}

// ----------------------------------------------------------------------------- config-toml

/// `toml::from_str::<Config>`, then the derived values the server computes from it.
pub fn config_toml(data: &[u8]) -> Outcome {
    let text = String::from_utf8_lossy(data);
    match toml::from_str::<strata::config::Config>(&text) {
        Ok(cfg) => {
            let limits = cfg.transform.limits();
            assert_eq!(limits.deadline.as_millis(), u128::from(cfg.transform.deadline_ms));
            assert!(cfg.transform.worker_count() >= 1);
            let _ = format!("{cfg:?}");
            hash_of(&("ok", cfg.transform.buckets.len().min(3), cfg.domain.is_some()))
        }
        Err(e) => fp("err", e.message()),
    }
}

// ------------------------------------------------------------------------------------ keys

const KEYS_BUCKET: &str = "fuzz";
/// A neighbour bucket holding the same keys: its objects must never show up in `fuzz`.
const KEYS_NEIGHBOUR: &str = "fuzz-a";
/// S3's key length limit.
const MAX_KEY_BYTES: usize = 1024;

struct KeysState {
    store: strata::store::Store,
    data_dir: PathBuf,
    execs: u64,
    // Declared last: removed after the store is closed.
    _dir: tempfile::TempDir,
}

static KEYS_STATE: Mutex<Option<KeysState>> = Mutex::new(None);

fn open_keys_state() -> KeysState {
    let dir = tempfile::Builder::new()
        .prefix("strata-fuzz-keys-")
        .tempdir()
        .expect("keys target: cannot create a temp dir");
    let data_dir = dir.path().join("data");
    let store = strata::store::Store::open(&data_dir, &strata::store::StoreOptions::default())
        .expect("keys target: cannot open a store in the temp dir");
    KeysState {
        store,
        data_dir,
        execs: 0,
        _dir: dir,
    }
}

/// Closes the store of the `keys` target and removes its temp dir (call at exit).
pub fn teardown() {
    let mut guard = KEYS_STATE.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(state) = guard.take() {
        check_data_dir(&state.data_dir);
    }
}

/// Cuts `s` to at most `max` bytes on a character boundary.
fn cut(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

fn key_record(key: &str, n: usize) -> strata::store::records::ObjectRecord {
    use strata::store::records::{Checksums, ObjectData, ObjectHeaders, ObjectRecord};
    ObjectRecord {
        version_id: format!("v{n}-{:016x}", hash_of(key)),
        seq: n as u64,
        versioned: false,
        delete_marker: false,
        acl: None,
        tags: Vec::new(),
        encryption: None,
        size: key.len() as u64,
        etag: format!("{:032x}", hash_of(key)),
        last_modified_ms: 0,
        owner: "fuzz".into(),
        headers: ObjectHeaders::default(),
        user_metadata: BTreeMap::new(),
        checksums: Checksums::default(),
        parts_count: None,
        data: ObjectData::Inline(key.as_bytes().to_vec()),
        storage_class: Default::default(),
        restored_until_ms: None,
    }
}

/// Input: up to 8 keys separated by `\n` (lossy UTF-8, each cut to 1024 bytes, empty ones
/// skipped). Each key is written to `fuzz` and to the neighbour bucket `fuzz-a`, then: a point
/// lookup finds it; a scan from the key itself starts at the key; a full scan of `fuzz` lists
/// exactly the written keys, once each, in byte order; every key of a prefix scan starts with
/// the prefix. Everything is deleted afterwards and the bucket must be empty. Every 256
/// executions (and at [`teardown`]) the data dir must hold only `meta/`, `blobs/<00..ff>/`
/// (empty: no blobs are written) and an empty `tmp/`.
pub fn keys(data: &[u8]) -> Outcome {
    use strata::store::records::VersioningMode;
    let mut guard = KEYS_STATE.lock().unwrap_or_else(|p| p.into_inner());
    let state = guard.get_or_insert_with(open_keys_state);
    state.execs += 1;
    let meta = &state.store.meta;
    let text = String::from_utf8_lossy(data);
    let keys: BTreeSet<String> = text
        .split('\n')
        .take(8)
        .map(|k| cut(k, MAX_KEY_BYTES).to_string())
        .filter(|k| !k.is_empty())
        .collect();
    let no_check = |_: Option<&strata::store::records::ObjectRecord>| -> Result<(), ()> { Ok(()) };
    for (n, key) in keys.iter().enumerate() {
        for bucket in [KEYS_BUCKET, KEYS_NEIGHBOUR] {
            if meta
                .put_version(bucket, key, &key_record(key, n), VersioningMode::Unversioned, no_check)
                .is_err()
            {
                panic!("put_version({bucket}, {key:?}) failed");
            }
        }
    }
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check_keys(meta, &keys)));
    // Clean up even when a check failed, so the next execution starts from an empty bucket.
    for key in &keys {
        for bucket in [KEYS_BUCKET, KEYS_NEIGHBOUR] {
            meta.delete_current(bucket, key, VersioningMode::Unversioned, None)
                .unwrap_or_else(|e| panic!("delete_current({bucket}, {key:?}): {e}"))
                .durable_blocking()
                .unwrap_or_else(|e| panic!("flush: {e}"));
        }
    }
    if let Err(p) = result {
        std::panic::resume_unwind(p);
    }
    assert!(
        meta.bucket_is_empty(KEYS_BUCKET).expect("bucket_is_empty"),
        "bucket not empty after deleting every key"
    );
    if state.execs.is_multiple_of(256) {
        check_data_dir(&state.data_dir);
    }
    hash_of(&(
        keys.len(),
        keys.iter().any(|k| k.contains('\0')),
        keys.iter().any(|k| k.contains('/')),
        keys.iter().any(|k| !k.is_ascii()),
    ))
}

fn check_keys(meta: &strata::store::MetaStore, keys: &BTreeSet<String>) {
    for (n, key) in keys.iter().enumerate() {
        let rec = meta
            .object(KEYS_BUCKET, key)
            .unwrap_or_else(|e| panic!("object({key:?}): {e}"))
            .unwrap_or_else(|| panic!("key {key:?} written but not found"));
        assert_eq!(rec, key_record(key, n), "{key:?}: record read back differs");
        let first = meta
            .scan_objects(KEYS_BUCKET, Bound::Included(key.as_bytes().to_vec()))
            .next()
            .unwrap_or_else(|| panic!("scan from {key:?} found nothing"))
            .unwrap_or_else(|e| panic!("scan from {key:?}: {e}"));
        assert_eq!(&first.0, key, "scan from a key must start at that key");
        // Prefix scan: every key from the start of the prefix up to the first non-match
        // starts with it, and the keys that have it as a prefix are all found.
        let prefix = key.as_str();
        let mut found = BTreeSet::new();
        for item in meta.scan_objects(KEYS_BUCKET, Bound::Included(prefix.as_bytes().to_vec())) {
            let (k, _) = item.unwrap_or_else(|e| panic!("scan: {e}"));
            if !k.starts_with(prefix) {
                break;
            }
            found.insert(k);
        }
        let expected: BTreeSet<String> = keys.iter().filter(|k| k.starts_with(prefix)).cloned().collect();
        assert_eq!(found, expected, "prefix scan of {prefix:?}");
        // Exclusive bound: the key itself is skipped.
        if let Some(item) = meta
            .scan_objects(KEYS_BUCKET, Bound::Excluded(key.as_bytes().to_vec()))
            .next()
        {
            let (k, _) = item.unwrap_or_else(|e| panic!("scan after {key:?}: {e}"));
            assert!(k.as_bytes() > key.as_bytes(), "scan after {key:?} returned {k:?}");
        }
    }
    let all: Vec<String> = meta
        .scan_objects(KEYS_BUCKET, Bound::Unbounded)
        .map(|item| item.unwrap_or_else(|e| panic!("full scan: {e}")).0)
        .collect();
    let expected: Vec<String> = keys.iter().cloned().collect(); // BTreeSet<String> = byte order
    assert_eq!(all, expected, "full scan of the bucket");
}

/// The data dir holds only what the store creates, whatever the keys were.
fn check_data_dir(data_dir: &Path) {
    let entries = std::fs::read_dir(data_dir).unwrap_or_else(|e| panic!("read {}: {e}", data_dir.display()));
    for entry in entries {
        let entry = entry.expect("read_dir entry");
        let name = entry.file_name().to_string_lossy().into_owned();
        match name.as_str() {
            "meta" => {}
            "tmp" => {
                let n = std::fs::read_dir(entry.path()).map(|d| d.count()).unwrap_or(0);
                assert_eq!(n, 0, "tmp/ is not empty");
            }
            "blobs" => {
                for shard in std::fs::read_dir(entry.path()).expect("read blobs/") {
                    let shard = shard.expect("blobs/ entry");
                    let sname = shard.file_name().to_string_lossy().into_owned();
                    assert!(
                        sname.len() == 2 && sname.bytes().all(|b| b.is_ascii_hexdigit()),
                        "unexpected entry blobs/{sname}"
                    );
                    let n = std::fs::read_dir(shard.path()).map(|d| d.count()).unwrap_or(0);
                    assert_eq!(n, 0, "blobs/{sname} holds files though no blob was written");
                }
            }
            // The default cold volume (`<data>/cold/{blobs,tmp}`): empty shard dirs only.
            "cold" => {
                let mut stack = vec![entry.path()];
                while let Some(dir) = stack.pop() {
                    for e in std::fs::read_dir(&dir).expect("read cold/") {
                        let e = e.expect("cold/ entry");
                        assert!(e.path().is_dir(), "cold volume holds a file: {}", e.path().display());
                        stack.push(e.path());
                    }
                }
            }
            other => panic!("unexpected entry {other:?} in the data dir"),
        }
    }
    if let Some(parent) = data_dir.parent() {
        let others: Vec<String> = std::fs::read_dir(parent)
            .map(|d| {
                d.filter_map(Result::ok)
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n != "data")
                    .collect()
            })
            .unwrap_or_default();
        assert!(others.is_empty(), "entries created next to the data dir: {others:?}");
    }
}
