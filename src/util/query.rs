//! The one query-string parser. Every place that reads a raw query (policy facts, SigV2
//! detection, the SigV4 region shim, the XML-size guard, image-transform parameters, the
//! website endpoint, the admin API, the `x-amz-tagging` header) goes through here, so they all
//! agree with s3s on what a query says: `application/x-www-form-urlencoded`, pairs split on
//! `&`, empty segments skipped, a segment without `=` is a name with an empty value, `+` is a
//! space, `%XX` is a byte; names are compared after decoding (so `%70refix` is `prefix`, as
//! s3s sees it).
//!
//! Three decodings of one escape grammar, because callers differ in what a bad escape means:
//! [`decode`] (lossy: the default, as s3s decodes), [`decode_utf8`] (bad escapes kept as
//! text, invalid UTF-8 refused: header values the client must encode properly) and
//! [`decode_strict`] (any malformed escape refused: transform parameters, whose errors name
//! the parameter).

/// One `name[=value]` segment of a query, borrowed from it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Param<'a> {
    /// The segment exactly as sent (`a%20b=c`).
    pub raw: &'a str,
    /// The part before the first `=`, still encoded.
    pub raw_name: &'a str,
    /// The part after the first `=` (empty when there is none), still encoded.
    pub raw_value: &'a str,
}

impl Param<'_> {
    /// The decoded name ([`decode`]).
    pub fn name(&self) -> String {
        decode(self.raw_name)
    }

    /// The decoded value ([`decode`]).
    pub fn value(&self) -> String {
        decode(self.raw_value)
    }

    /// Whether the decoded name is `name` (without allocating when nothing is encoded).
    pub fn is(&self, name: &str) -> bool {
        if is_plain(self.raw_name) {
            self.raw_name == name
        } else {
            self.name() == name
        }
    }
}

/// The segments of a raw query (without `?`), in order, empty segments skipped.
pub fn params(query: &str) -> impl Iterator<Item = Param<'_>> + Clone {
    query.split('&').filter(|s| !s.is_empty()).map(|raw| {
        let (raw_name, raw_value) = raw.split_once('=').unwrap_or((raw, ""));
        Param {
            raw,
            raw_name,
            raw_value,
        }
    })
}

/// The query with some segments replaced: `f` gets each segment and returns its replacement
/// (`Some`) or keeps it (`None`); every other byte, empty segments included, stays as sent.
pub fn replace_values(query: &str, mut f: impl FnMut(Param<'_>) -> Option<String>) -> String {
    let mut out = String::with_capacity(query.len());
    for (i, raw) in query.split('&').enumerate() {
        if i > 0 {
            out.push('&');
        }
        let (raw_name, raw_value) = raw.split_once('=').unwrap_or((raw, ""));
        let replaced = (!raw.is_empty())
            .then(|| {
                f(Param {
                    raw,
                    raw_name,
                    raw_value,
                })
            })
            .flatten();
        out.push_str(replaced.as_deref().unwrap_or(raw));
    }
    out
}

/// Every pair of the query, decoded ([`decode`]), in order, repeats kept.
pub fn pairs(query: &str) -> Vec<(String, String)> {
    params(query).map(|p| (p.name(), p.value())).collect()
}

/// The decoded value of the first parameter called `name`, if any.
pub fn get(query: &str, name: &str) -> Option<String> {
    params(query).find(|p| p.is(name)).map(|p| p.value())
}

/// The still-encoded value of the first parameter called `name`, if any.
pub fn get_raw<'a>(query: &'a str, name: &str) -> Option<&'a str> {
    params(query).find(|p| p.is(name)).map(|p| p.raw_value)
}

/// [`get`] on a URI's query.
pub fn uri_param(uri: &http::Uri, name: &str) -> Option<String> {
    get(uri.query()?, name)
}

/// Whether the query has a parameter called `name` (with or without a value).
pub fn has(query: &str, name: &str) -> bool {
    params(query).any(|p| p.is(name))
}

/// Form-decodes `s`: `+` is a space, `%XX` a byte; a malformed escape is kept as text and
/// invalid UTF-8 is replaced (U+FFFD), as s3s decodes queries.
pub fn decode(s: &str) -> String {
    if is_plain(s) {
        return s.to_string();
    }
    String::from_utf8_lossy(&unescape(s).0).into_owned()
}

/// Like [`decode`], but `None` when the bytes are not UTF-8.
pub fn decode_utf8(s: &str) -> Option<String> {
    if is_plain(s) {
        return Some(s.to_string());
    }
    String::from_utf8(unescape(s).0).ok()
}

/// Like [`decode`], but `None` on a malformed escape (`%`, `%4`, `%zz`) or non-UTF-8 bytes.
pub fn decode_strict(s: &str) -> Option<String> {
    if is_plain(s) {
        return Some(s.to_string());
    }
    let (bytes, malformed) = unescape(s);
    if malformed {
        return None;
    }
    String::from_utf8(bytes).ok()
}

fn is_plain(s: &str) -> bool {
    !s.bytes().any(|b| b == b'%' || b == b'+')
}

/// The bytes `s` stands for, and whether any `%` did not start a valid `%XX` escape (such a
/// `%` is kept as itself).
fn unescape(s: &str) -> (Vec<u8>, bool) {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut malformed = false;
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b'%' => match (bytes.get(i + 1).and_then(hex), bytes.get(i + 2).and_then(hex)) {
                (Some(hi), Some(lo)) => {
                    out.push((hi << 4) | lo);
                    i += 3;
                }
                _ => {
                    malformed = true;
                    out.push(b'%');
                    i += 1;
                }
            },
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    (out, malformed)
}

fn hex(b: &u8) -> Option<u8> {
    (*b as char).to_digit(16).and_then(|d| u8::try_from(d).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_escapes_decode_to_bytes_then_utf8() {
        assert_eq!(decode("a%20b%2Fc"), "a b/c");
        assert_eq!(decode("%E2%9C%93"), "✓");
        assert_eq!(decode("%e2%9c%93"), "✓", "lower-case hex");
        assert_eq!(decode_utf8("%E2%9C%93").as_deref(), Some("✓"));
        assert_eq!(decode_strict("%E2%9C%93").as_deref(), Some("✓"));
    }

    #[test]
    fn plus_is_a_space_and_an_encoded_plus_is_a_plus() {
        assert_eq!(decode("a+b"), "a b");
        assert_eq!(decode("a%2Bb"), "a+b");
        assert_eq!(pairs("q=1+2"), [("q".to_string(), "1 2".to_string())]);
    }

    #[test]
    fn malformed_escapes_lossy_kept_or_refused() {
        for s in ["100%", "%4", "%zz", "a%g0"] {
            assert_eq!(decode(s), s, "lossy keeps {s:?}");
            assert_eq!(decode_utf8(s).as_deref(), Some(s), "utf8 keeps {s:?}");
            assert_eq!(decode_strict(s), None, "strict refuses {s:?}");
        }
    }

    #[test]
    fn invalid_utf8_replaced_or_refused() {
        assert_eq!(decode("%FF"), "\u{FFFD}");
        assert_eq!(decode_utf8("%FF"), None);
        assert_eq!(decode_strict("%FF"), None);
    }

    #[test]
    fn repeated_keys_keep_order_and_get_takes_the_first() {
        let q = "a=1&b=2&a=3";
        assert_eq!(
            pairs(q),
            [("a", "1"), ("b", "2"), ("a", "3")].map(|(k, v)| (k.to_string(), v.to_string()))
        );
        assert_eq!(get(q, "a").as_deref(), Some("1"));
        assert_eq!(params(q).filter(|p| p.is("a")).count(), 2);
    }

    #[test]
    fn empty_values_keys_without_equals_and_empty_segments() {
        let q = "delete&x=&&y=1=2&";
        let got: Vec<_> = params(q).map(|p| (p.raw_name, p.raw_value)).collect();
        assert_eq!(got, [("delete", ""), ("x", ""), ("y", "1=2")]);
        assert!(has(q, "delete"));
        assert_eq!(get(q, "delete").as_deref(), Some(""));
        assert_eq!(get(q, "x").as_deref(), Some(""));
        assert_eq!(get(q, "y").as_deref(), Some("1=2"), "only the first `=` splits");
        assert_eq!(get(q, "missing"), None);
        assert!(pairs("").is_empty());
        assert!(pairs("&&").is_empty());
    }

    #[test]
    fn names_compare_decoded() {
        assert!(has("%70refix=a", "prefix"));
        assert_eq!(get("%70refix=a%2Fb", "prefix").as_deref(), Some("a/b"));
        assert_eq!(get_raw("X-Amz-Date=2024&x=%2F", "x"), Some("%2F"));
        assert!(params("a+b=1").next().is_some_and(|p| p.is("a b")));
    }

    #[test]
    fn replace_values_keeps_every_other_byte() {
        let q = "a=1&&X-Amz-Signature=old&b=%2F&";
        let got = replace_values(q, |p| {
            p.is("X-Amz-Signature").then(|| "X-Amz-Signature=new".to_string())
        });
        assert_eq!(got, "a=1&&X-Amz-Signature=new&b=%2F&");
        assert_eq!(replace_values("", |_| Some("x".into())), "");
    }

    #[test]
    fn uri_param_reads_the_query_of_a_uri() {
        let uri: http::Uri = "/b?list-type=2&prefix=photos%2F2024".parse().expect("uri");
        assert_eq!(uri_param(&uri, "prefix").as_deref(), Some("photos/2024"));
        let bare: http::Uri = "/b".parse().expect("uri");
        assert_eq!(uri_param(&bare, "prefix"), None);
    }
}
