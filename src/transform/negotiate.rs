//! `f=auto`: choosing the output format from the request's `Accept` header.
//!
//! Only explicit `image/avif` / `image/webp` entries count (a bare `*/*` or `image/*` does not
//! mean the client can decode WebP, as curl and old browsers show). `;q=0` means "not
//! acceptable". The caller must add `Vary: Accept` to responses produced with `f=auto`.

use super::codec::AVIF_SUPPORTED;
use super::params::OutputFormat;
use super::probe::SourceFormat;

/// The q-value (0..=1000) the Accept header gives to exactly `media_type`, if it lists it.
/// The first entry for the type wins; a malformed q-value makes the entry count as q=1.
fn explicit_q(accept: &str, media_type: &str) -> Option<u16> {
    for range in accept.split(',') {
        let mut parts = range.split(';');
        let ty = parts.next().unwrap_or("").trim();
        if !ty.eq_ignore_ascii_case(media_type) {
            continue;
        }
        let mut q = 1000;
        for p in parts {
            if let Some((k, v)) = p.split_once('=') {
                if k.trim().eq_ignore_ascii_case("q") {
                    q = parse_qvalue(v.trim()).unwrap_or(1000);
                }
            }
        }
        return Some(q);
    }
    None
}

/// RFC 9110 qvalue: `0`, `0.xxx`, `1`, `1.000` → thousandths.
fn parse_qvalue(v: &str) -> Option<u16> {
    let (int, frac) = v.split_once('.').unwrap_or((v, ""));
    if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let int: u16 = match int {
        "0" => 0,
        "1" => 1,
        _ => return None,
    };
    let mut milli = int * 1000;
    let mut scale = 100;
    for b in frac.bytes() {
        milli += u16::from(b - b'0') * scale;
        scale /= 10;
    }
    (milli <= 1000).then_some(milli)
}

fn accepts(accept: Option<&str>, media_type: &str) -> bool {
    accept.and_then(|a| explicit_q(a, media_type)).is_some_and(|q| q > 0)
}

/// Output format for `f=auto`: AVIF if accepted and built in, else WebP if accepted, else the
/// source's family: JPEG → JPEG; PNG, GIF and WebP → PNG (lossless, keeps any alpha).
pub fn choose_format(accept: Option<&str>, source: SourceFormat) -> OutputFormat {
    if AVIF_SUPPORTED && accepts(accept, "image/avif") {
        return OutputFormat::Avif;
    }
    if accepts(accept, "image/webp") {
        return OutputFormat::Webp;
    }
    fallback_format(source)
}

/// The format family of a source when the client's Accept does not help.
pub fn fallback_format(source: SourceFormat) -> OutputFormat {
    match source {
        SourceFormat::Jpeg => OutputFormat::Jpeg,
        SourceFormat::Png | SourceFormat::Gif | SourceFormat::Webp => OutputFormat::Png,
    }
}

/// Output format when `f` is absent: the same format as the source.
pub fn same_as_source(source: SourceFormat) -> OutputFormat {
    match source {
        SourceFormat::Jpeg => OutputFormat::Jpeg,
        SourceFormat::Png => OutputFormat::Png,
        SourceFormat::Webp => OutputFormat::Webp,
        SourceFormat::Gif => OutputFormat::Gif,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHROME: &str = "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8";

    #[test]
    fn browser_accept_picks_modern_format() {
        let want = if AVIF_SUPPORTED {
            OutputFormat::Avif
        } else {
            OutputFormat::Webp
        };
        assert_eq!(choose_format(Some(CHROME), SourceFormat::Jpeg), want);
        assert_eq!(
            choose_format(Some("image/webp,*/*"), SourceFormat::Png),
            OutputFormat::Webp
        );
    }

    #[test]
    fn zero_q_means_not_accepted() {
        assert_eq!(
            choose_format(Some("image/webp;q=0, image/*"), SourceFormat::Jpeg),
            OutputFormat::Jpeg
        );
        assert_eq!(
            choose_format(Some("image/webp ; q=0.000"), SourceFormat::Png),
            OutputFormat::Png
        );
        assert_eq!(
            choose_format(Some("image/webp;q=0.001"), SourceFormat::Png),
            OutputFormat::Webp
        );
        assert_eq!(
            choose_format(Some("image/avif;q=0,image/webp;q=0.5"), SourceFormat::Jpeg),
            OutputFormat::Webp
        );
    }

    #[test]
    fn wildcards_and_missing_header_fall_back_to_source_family() {
        assert_eq!(choose_format(None, SourceFormat::Jpeg), OutputFormat::Jpeg);
        assert_eq!(choose_format(Some("*/*"), SourceFormat::Jpeg), OutputFormat::Jpeg);
        assert_eq!(choose_format(Some("image/*"), SourceFormat::Png), OutputFormat::Png);
        assert_eq!(choose_format(Some(""), SourceFormat::Gif), OutputFormat::Png);
        assert_eq!(choose_format(Some("text/html"), SourceFormat::Webp), OutputFormat::Png);
    }

    #[test]
    fn case_whitespace_and_bad_q() {
        assert_eq!(
            choose_format(Some("text/html, IMAGE/WEBP ;Q=0.9"), SourceFormat::Jpeg),
            OutputFormat::Webp
        );
        // malformed q is treated as 1 (lenient), not as a reason to refuse
        assert_eq!(
            choose_format(Some("image/webp;q=abc"), SourceFormat::Jpeg),
            OutputFormat::Webp
        );
        assert_eq!(parse_qvalue("1.000"), Some(1000));
        assert_eq!(parse_qvalue("0.5"), Some(500));
        assert_eq!(parse_qvalue("1.5"), None);
        assert_eq!(parse_qvalue("2"), None);
    }

    #[test]
    fn avif_is_never_chosen_without_support() {
        if !AVIF_SUPPORTED {
            assert_ne!(
                choose_format(Some("image/avif"), SourceFormat::Jpeg),
                OutputFormat::Avif
            );
        }
    }
}
