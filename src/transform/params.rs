//! Query string of an object GET → validated [`RawSpec`] → canonical [`Spec`] (the cache key).
//!
//! Parameters: `w`, `h` (1..=8192), `dpr` (1..=4, fractional allowed, folded into `w`/`h`),
//! `fit` (cover|contain|fill|inside|outside), `f` (jpeg|jpg|png|webp|avif|gif|auto), `q` (1..=100),
//! `bg` (`RRGGBB` or `RRGGBBAA`), `strip` (true|false|1|0). Standard S3 GET parameters
//! (`versionId`, `partNumber`, `response-*`, `X-Amz-*`, `x-id`) are ignored; any other parameter
//! next to a transform parameter is an error, as is a repeated parameter or a bad value.

use std::fmt::Write as _;

use super::codec::AVIF_SUPPORTED;
use super::error::TransformError;
use crate::util::query::decode_strict as percent_decode;

/// Largest accepted `w` / `h`, also after multiplying by `dpr`.
pub const MAX_DIMENSION: u32 = 8192;
/// Quality used for lossy outputs when `q` is absent.
pub const DEFAULT_QUALITY: u8 = 80;

pub const TRANSFORM_PARAMS: [&str; 8] = ["w", "h", "dpr", "fit", "f", "q", "bg", "strip"];

/// How the image is fitted into the `w`×`h` box (sharp / imgproxy semantics).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Fit {
    /// Scale to fill the box, then crop the overflow around the centre.
    Cover,
    /// Scale to fit inside the box, then pad to exactly `w`×`h` with `bg`.
    Contain,
    /// Stretch to exactly `w`×`h`, ignoring the aspect ratio.
    Fill,
    /// Scale to fit inside the box, preserving aspect; never enlarges.
    Inside,
    /// Scale so the box is covered, preserving aspect; no crop.
    Outside,
    /// Not a query value: what a [`Spec`] holds when fewer than two dimensions were given.
    /// The given dimension is met exactly (enlarging allowed), the other follows the aspect
    /// ratio; with no dimension at all the size is unchanged.
    Scale,
}

impl Fit {
    pub fn as_str(self) -> &'static str {
        match self {
            Fit::Cover => "cover",
            Fit::Contain => "contain",
            Fit::Fill => "fill",
            Fit::Inside => "inside",
            Fit::Outside => "outside",
            Fit::Scale => "scale",
        }
    }
}

/// The `f` parameter as asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FormatParam {
    Jpeg,
    Png,
    Webp,
    Avif,
    Gif,
    /// Chosen from the `Accept` header by [`super::negotiate::choose_format`].
    Auto,
}

/// A concrete output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OutputFormat {
    Jpeg,
    Png,
    Webp,
    Avif,
    Gif,
}

impl OutputFormat {
    pub fn content_type(&self) -> &'static str {
        match self {
            OutputFormat::Jpeg => "image/jpeg",
            OutputFormat::Png => "image/png",
            OutputFormat::Webp => "image/webp",
            OutputFormat::Avif => "image/avif",
            OutputFormat::Gif => "image/gif",
        }
    }

    pub fn extension(&self) -> &'static str {
        match self {
            OutputFormat::Jpeg => "jpg",
            OutputFormat::Png => "png",
            OutputFormat::Webp => "webp",
            OutputFormat::Avif => "avif",
            OutputFormat::Gif => "gif",
        }
    }

    /// Name used in the canonical spec.
    pub fn as_str(&self) -> &'static str {
        match self {
            OutputFormat::Jpeg => "jpeg",
            OutputFormat::Png => "png",
            OutputFormat::Webp => "webp",
            OutputFormat::Avif => "avif",
            OutputFormat::Gif => "gif",
        }
    }

    /// Whether `q` affects the output.
    pub fn is_lossy(&self) -> bool {
        matches!(self, OutputFormat::Jpeg | OutputFormat::Webp | OutputFormat::Avif)
    }

    /// Whether the output keeps an alpha channel (GIF: binary transparency only).
    pub fn supports_alpha(&self) -> bool {
        !matches!(self, OutputFormat::Jpeg)
    }
}

/// An RGBA colour (`bg`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Rgba {
    pub r: u8,
    pub g: u8,
    pub b: u8,
    pub a: u8,
}

impl Rgba {
    pub const WHITE: Rgba = Rgba {
        r: 255,
        g: 255,
        b: 255,
        a: 255,
    };
    pub const TRANSPARENT: Rgba = Rgba { r: 0, g: 0, b: 0, a: 0 };

    fn hex(&self) -> String {
        format!("{:02x}{:02x}{:02x}{:02x}", self.r, self.g, self.b, self.a)
    }
}

/// Validated query parameters, before the output format is known (`f=auto`, absent `f`).
///
/// `width`/`height` are device pixels: `dpr` has already been multiplied in.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RawSpec {
    pub width: Option<u32>,
    pub height: Option<u32>,
    /// `dpr` × 1000 as given (1000 when absent); informational, already folded into the sizes.
    pub dpr_milli: u32,
    pub fit: Option<Fit>,
    pub format: Option<FormatParam>,
    pub quality: Option<u8>,
    pub background: Option<Rgba>,
    pub strip: bool,
}

/// A fully resolved transform: concrete output format, defaults filled in.
/// Two requests that must produce the same bytes have equal `Spec`s and equal [`Spec::canonical`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Spec {
    /// Output width in pixels (after `dpr`); `None` = follow the aspect ratio / source.
    pub width: Option<u32>,
    pub height: Option<u32>,
    /// Never `Fit::Scale` when both dimensions are set; always `Scale` or `Inside` otherwise.
    pub fit: Fit,
    pub format: OutputFormat,
    /// Encoder quality, 1..=100 (unused for PNG/GIF; then fixed to 100).
    pub quality: u8,
    /// Letterbox colour for `contain` and the flattening colour for JPEG (opaque for JPEG).
    pub background: Rgba,
    /// Accepted for compatibility; metadata is never copied either way (we re-encode).
    pub strip: bool,
}

impl Spec {
    /// The cache-key form: fixed field order, every field present.
    /// `w=200,h=150,fit=cover,f=webp,q=90,bg=00000000,strip=1`; an absent dimension is `-`,
    /// `q=-` for lossless formats. `dpr` does not appear: it is folded into `w`/`h`
    /// (`w=200&dpr=2` and `w=400` are the same derivative).
    pub fn canonical(&self) -> String {
        let mut s = String::with_capacity(64);
        let dim = |v: Option<u32>| v.map_or_else(|| "-".to_string(), |v| v.to_string());
        let _ = write!(
            s,
            "w={},h={},fit={},f={},",
            dim(self.width),
            dim(self.height),
            self.fit.as_str(),
            self.format.as_str()
        );
        if self.format.is_lossy() {
            let _ = write!(s, "q={},", self.quality);
        } else {
            s.push_str("q=-,");
        }
        let _ = write!(s, "bg={},strip={}", self.background.hex(), u8::from(self.strip));
        s
    }

    pub fn output_format(&self) -> OutputFormat {
        self.format
    }
}

/// Whether the query names any transform parameter (otherwise the GET is a plain GetObject).
pub fn is_transform_query(query: &str) -> bool {
    crate::util::query::params(query)
        .any(|p| percent_decode(p.raw_name).is_some_and(|k| TRANSFORM_PARAMS.contains(&k.as_str())))
}

fn is_s3_param(key: &str) -> bool {
    let lower = key.to_ascii_lowercase();
    lower == "versionid"
        || lower == "partnumber"
        || lower == "x-id"
        || lower.starts_with("response-")
        || lower.starts_with("x-amz-")
}

/// Parses the raw query string (without `?`). `Ok(None)`: no transform parameter at all.
pub fn parse_query(query: &str) -> Result<Option<RawSpec>, TransformError> {
    if !is_transform_query(query) {
        return Ok(None);
    }
    let mut raw = RawSpec {
        width: None,
        height: None,
        dpr_milli: 1000,
        fit: None,
        format: None,
        quality: None,
        background: None,
        strip: true,
    };
    let mut seen: Vec<String> = Vec::new();
    let mut dpr_seen = false;
    for p in crate::util::query::params(query) {
        let (k, v) = (p.raw_name, p.raw_value);
        let key = percent_decode(k).ok_or_else(|| TransformError::invalid(k, "malformed percent-encoding in name"))?;
        if is_s3_param(&key) {
            continue;
        }
        if !TRANSFORM_PARAMS.contains(&key.as_str()) {
            return Err(TransformError::invalid(
                &key,
                "unknown parameter (allowed: w, h, dpr, fit, f, q, bg, strip)",
            ));
        }
        if seen.contains(&key) {
            return Err(TransformError::invalid(&key, "given more than once"));
        }
        seen.push(key.clone());
        let value =
            percent_decode(v).ok_or_else(|| TransformError::invalid(&key, "malformed percent-encoding in value"))?;
        let value = value.as_str();
        match key.as_str() {
            "w" => raw.width = Some(parse_dimension("w", value)?),
            "h" => raw.height = Some(parse_dimension("h", value)?),
            "dpr" => {
                raw.dpr_milli = parse_dpr(value)?;
                dpr_seen = true;
            }
            "fit" => raw.fit = Some(parse_fit(value)?),
            "f" => raw.format = Some(parse_format(value)?),
            "q" => raw.quality = Some(parse_quality(value)?),
            "bg" => raw.background = Some(parse_bg(value)?),
            "strip" => raw.strip = parse_bool("strip", value)?,
            _ => return Err(TransformError::Internal(format!("unhandled param {key}"))),
        }
    }
    if dpr_seen {
        if raw.width.is_none() && raw.height.is_none() {
            return Err(TransformError::invalid("dpr", "dpr needs w or h (it multiplies them)"));
        }
        raw.width = apply_dpr(raw.width, raw.dpr_milli)?;
        raw.height = apply_dpr(raw.height, raw.dpr_milli)?;
    }
    Ok(Some(raw))
}

fn apply_dpr(dim: Option<u32>, dpr_milli: u32) -> Result<Option<u32>, TransformError> {
    let Some(d) = dim else { return Ok(None) };
    // Round half up; both factors are small so u64 cannot overflow.
    let scaled = (u64::from(d) * u64::from(dpr_milli) + 500) / 1000;
    if scaled > u64::from(MAX_DIMENSION) {
        return Err(TransformError::invalid(
            "dpr",
            format!("{d} x dpr gives {scaled} px, more than the {MAX_DIMENSION} px limit"),
        ));
    }
    // scaled >= d >= 1 because dpr >= 1.
    Ok(Some(scaled.max(1) as u32))
}

fn parse_dimension(param: &str, v: &str) -> Result<u32, TransformError> {
    let n = parse_uint(v)
        .ok_or_else(|| TransformError::invalid(param, format!("expected an integer 1..={MAX_DIMENSION}")))?;
    if !(1..=u64::from(MAX_DIMENSION)).contains(&n) {
        return Err(TransformError::invalid(
            param,
            format!("{n} is out of range 1..={MAX_DIMENSION}"),
        ));
    }
    Ok(n as u32)
}

/// Plain decimal digits only (no sign, no spaces), at most 10 of them.
fn parse_uint(v: &str) -> Option<u64> {
    if v.is_empty() || v.len() > 10 || !v.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    v.parse().ok()
}

fn parse_dpr(v: &str) -> Result<u32, TransformError> {
    let msg = "expected a number 1..=4 (at most 3 decimals, e.g. 1.5)";
    let (int, frac) = v.split_once('.').unwrap_or((v, ""));
    if int.is_empty()
        || int.len() > 1
        || !int.bytes().all(|b| b.is_ascii_digit())
        || frac.len() > 3
        || !frac.bytes().all(|b| b.is_ascii_digit())
        || (v.contains('.') && frac.is_empty())
    {
        return Err(TransformError::invalid("dpr", msg));
    }
    let int: u32 = int.parse().map_err(|_| TransformError::invalid("dpr", msg))?;
    let mut milli = int * 1000;
    let mut scale = 100;
    for b in frac.bytes() {
        milli += u32::from(b - b'0') * scale;
        scale /= 10;
    }
    if !(1000..=4000).contains(&milli) {
        return Err(TransformError::invalid("dpr", format!("{v} is out of range 1..=4")));
    }
    Ok(milli)
}

fn parse_fit(v: &str) -> Result<Fit, TransformError> {
    Ok(match v {
        "cover" => Fit::Cover,
        "contain" => Fit::Contain,
        "fill" => Fit::Fill,
        "inside" => Fit::Inside,
        "outside" => Fit::Outside,
        _ => {
            return Err(TransformError::invalid(
                "fit",
                "expected cover, contain, fill, inside or outside",
            ))
        }
    })
}

fn parse_format(v: &str) -> Result<FormatParam, TransformError> {
    Ok(match v {
        "jpeg" | "jpg" => FormatParam::Jpeg,
        "png" => FormatParam::Png,
        "webp" => FormatParam::Webp,
        "gif" => FormatParam::Gif,
        "auto" => FormatParam::Auto,
        "avif" if AVIF_SUPPORTED => FormatParam::Avif,
        "avif" => {
            return Err(TransformError::invalid(
                "f",
                "avif output is not supported by this build",
            ))
        }
        _ => {
            return Err(TransformError::invalid(
                "f",
                "expected jpeg, jpg, png, webp, avif, gif or auto",
            ))
        }
    })
}

fn parse_quality(v: &str) -> Result<u8, TransformError> {
    match parse_uint(v) {
        Some(n @ 1..=100) => Ok(n as u8),
        Some(n) => Err(TransformError::invalid("q", format!("{n} is out of range 1..=100"))),
        None => Err(TransformError::invalid("q", "expected an integer 1..=100")),
    }
}

fn parse_bg(v: &str) -> Result<Rgba, TransformError> {
    let v = v.strip_prefix('#').unwrap_or(v);
    let bad = || TransformError::invalid("bg", "expected a hex colour RRGGBB or RRGGBBAA");
    if !(v.len() == 6 || v.len() == 8) || !v.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad());
    }
    let byte = |i: usize| u8::from_str_radix(&v[i..i + 2], 16).map_err(|_| bad());
    Ok(Rgba {
        r: byte(0)?,
        g: byte(2)?,
        b: byte(4)?,
        a: if v.len() == 8 { byte(6)? } else { 255 },
    })
}

fn parse_bool(param: &str, v: &str) -> Result<bool, TransformError> {
    match v {
        "1" | "true" => Ok(true),
        "0" | "false" => Ok(false),
        _ => Err(TransformError::invalid(param, "expected true, false, 1 or 0")),
    }
}

/// Fills in defaults once the output format is known (see [`super::resolve`]).
pub(crate) fn finish(raw: RawSpec, format: OutputFormat) -> Spec {
    let fit = match (raw.width, raw.height) {
        (Some(_), Some(_)) => raw.fit.unwrap_or(Fit::Cover),
        // With one dimension (or none) the box has the image's own aspect ratio, so
        // cover/contain/fill/outside all reduce to a plain scale; only `inside` differs
        // (it never enlarges).
        _ => match raw.fit {
            Some(Fit::Inside) => Fit::Inside,
            _ => Fit::Scale,
        },
    };
    let fit = if raw.width.is_none() && raw.height.is_none() {
        Fit::Scale
    } else {
        fit
    };
    let quality = if format.is_lossy() {
        raw.quality.unwrap_or(DEFAULT_QUALITY)
    } else {
        100
    };
    let background = match (format.supports_alpha(), raw.background) {
        (true, Some(bg)) => bg,
        (true, None) => Rgba::TRANSPARENT,
        (false, Some(bg)) => Rgba { a: 255, ..bg },
        (false, None) => Rgba::WHITE,
    };
    Spec {
        width: raw.width,
        height: raw.height,
        fit,
        format,
        quality,
        background,
        strip: raw.strip,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn raw(q: &str) -> RawSpec {
        match parse_query(q) {
            Ok(Some(r)) => r,
            other => panic!("{q}: expected a spec, got {other:?}"),
        }
    }

    fn err_param(q: &str) -> String {
        match parse_query(q) {
            Err(TransformError::InvalidArgument { param, .. }) => param,
            other => panic!("{q}: expected InvalidArgument, got {other:?}"),
        }
    }

    fn canon(q: &str, f: OutputFormat) -> String {
        finish(raw(q), f).canonical()
    }

    #[test]
    fn no_transform_params_is_plain_get() {
        assert_eq!(parse_query("").unwrap(), None);
        assert_eq!(parse_query("versionId=abc&x-id=GetObject").unwrap(), None);
        assert_eq!(parse_query("foo=bar").unwrap(), None);
        assert!(!is_transform_query("versionId=1&response-content-type=x"));
        assert!(is_transform_query("versionId=1&w=3"));
        assert!(is_transform_query("%77=3")); // %77 = 'w'
        assert!(!is_transform_query("width=3"));
    }

    #[test]
    fn width_and_height_bounds() {
        assert_eq!(raw("w=1").width, Some(1));
        assert_eq!(raw("w=8192").width, Some(8192));
        assert_eq!(raw("h=8192").height, Some(8192));
        for bad in [
            "w=0",
            "w=8193",
            "w=-1",
            "w=1.5",
            "w=",
            "w",
            "w=abc",
            "w=+5",
            "w=99999999999",
        ] {
            assert_eq!(err_param(bad), "w", "{bad}");
        }
        assert_eq!(err_param("h=0"), "h");
    }

    #[test]
    fn dpr_multiplies_and_rounds() {
        let r = raw("w=200&h=101&dpr=1.5");
        assert_eq!((r.width, r.height, r.dpr_milli), (Some(300), Some(152), 1500));
        assert_eq!(raw("w=100&dpr=2").width, Some(200));
        assert_eq!(raw("w=3&dpr=1.25").width, Some(4)); // 3.75 -> 4
        assert_eq!(raw("w=2048&dpr=4").width, Some(8192));
        assert_eq!(err_param("w=2049&dpr=4"), "dpr");
        for bad in ["0.5", "4.01", "5", "1.", ".5", "1.2345", "abc", "", "-1", "NaN", "inf"] {
            assert_eq!(err_param(&format!("w=10&dpr={bad}")), "dpr", "{bad}");
        }
        assert_eq!(err_param("dpr=2&f=png"), "dpr");
        // folded: same canonical key as the device-pixel request
        assert_eq!(
            canon("w=100&dpr=2", OutputFormat::Png),
            canon("w=200", OutputFormat::Png)
        );
    }

    #[test]
    fn fit_values() {
        assert_eq!(raw("w=1&h=1&fit=cover").fit, Some(Fit::Cover));
        assert_eq!(raw("w=1&h=1&fit=contain").fit, Some(Fit::Contain));
        assert_eq!(raw("w=1&h=1&fit=fill").fit, Some(Fit::Fill));
        assert_eq!(raw("w=1&h=1&fit=inside").fit, Some(Fit::Inside));
        assert_eq!(raw("w=1&h=1&fit=outside").fit, Some(Fit::Outside));
        assert_eq!(err_param("w=1&fit=scale"), "fit");
        assert_eq!(err_param("w=1&fit=COVER"), "fit");
    }

    #[test]
    fn fit_defaults() {
        assert_eq!(finish(raw("w=1&h=2"), OutputFormat::Png).fit, Fit::Cover);
        assert_eq!(finish(raw("w=1"), OutputFormat::Png).fit, Fit::Scale);
        assert_eq!(finish(raw("h=1&fit=cover"), OutputFormat::Png).fit, Fit::Scale);
        assert_eq!(finish(raw("h=1&fit=inside"), OutputFormat::Png).fit, Fit::Inside);
        assert_eq!(finish(raw("f=png&fit=inside"), OutputFormat::Png).fit, Fit::Scale);
    }

    #[test]
    fn format_values() {
        assert_eq!(raw("f=jpeg").format, Some(FormatParam::Jpeg));
        assert_eq!(raw("f=jpg").format, Some(FormatParam::Jpeg));
        assert_eq!(raw("f=png").format, Some(FormatParam::Png));
        assert_eq!(raw("f=webp").format, Some(FormatParam::Webp));
        assert_eq!(raw("f=gif").format, Some(FormatParam::Gif));
        assert_eq!(raw("f=auto").format, Some(FormatParam::Auto));
        assert_eq!(err_param("f=bmp"), "f");
        assert_eq!(err_param("f=JPEG"), "f");
        if AVIF_SUPPORTED {
            assert_eq!(raw("f=avif").format, Some(FormatParam::Avif));
        } else {
            match parse_query("f=avif") {
                Err(TransformError::InvalidArgument { param, message }) => {
                    assert_eq!(param, "f");
                    assert_eq!(message, "avif output is not supported by this build");
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn quality_bounds_and_default() {
        assert_eq!(raw("q=1").quality, Some(1));
        assert_eq!(raw("q=100").quality, Some(100));
        for bad in ["0", "101", "50.5", "", "x"] {
            assert_eq!(err_param(&format!("q={bad}")), "q", "{bad}");
        }
        assert_eq!(finish(raw("w=5"), OutputFormat::Jpeg).quality, DEFAULT_QUALITY);
        assert_eq!(finish(raw("w=5"), OutputFormat::Webp).quality, 80);
        assert_eq!(finish(raw("w=5&q=33"), OutputFormat::Webp).quality, 33);
        // q does not change lossless outputs, so it must not split the cache key
        assert_eq!(
            canon("w=5&q=33", OutputFormat::Png),
            canon("w=5&q=90", OutputFormat::Png)
        );
    }

    #[test]
    fn background_parsing_and_defaults() {
        let c = |r, g, b, a| Rgba { r, g, b, a };
        assert_eq!(raw("bg=ff8000").background, Some(c(255, 128, 0, 255)));
        assert_eq!(raw("bg=FF800080").background, Some(c(255, 128, 0, 128)));
        assert_eq!(raw("bg=%23ff8000").background, Some(c(255, 128, 0, 255)));
        for bad in ["fff", "ff80001", "gg0000", "", "ff8000ff00"] {
            assert_eq!(err_param(&format!("bg={bad}")), "bg", "{bad}");
        }
        assert_eq!(finish(raw("w=1"), OutputFormat::Png).background, Rgba::TRANSPARENT);
        assert_eq!(finish(raw("w=1"), OutputFormat::Webp).background, Rgba::TRANSPARENT);
        assert_eq!(finish(raw("w=1"), OutputFormat::Jpeg).background, Rgba::WHITE);
        // JPEG has no alpha: the colour is made opaque
        assert_eq!(
            finish(raw("w=1&bg=10203040"), OutputFormat::Jpeg).background,
            c(16, 32, 48, 255)
        );
    }

    #[test]
    fn strip_values() {
        assert!(raw("w=1").strip);
        assert!(raw("strip=true").strip);
        assert!(raw("strip=1").strip);
        assert!(!raw("strip=false").strip);
        assert!(!raw("strip=0").strip);
        assert_eq!(err_param("strip=no"), "strip");
    }

    #[test]
    fn unknown_and_duplicate_params() {
        assert_eq!(err_param("w=10&width=20"), "width");
        assert_eq!(err_param("w=10&W=20"), "W");
        assert_eq!(err_param("w=10&w=20"), "w");
        assert_eq!(err_param("w=10&q=5&q=5"), "q");
    }

    #[test]
    fn s3_params_are_ignored() {
        let q = "versionId=3&partNumber=1&response-content-type=image%2Fpng\
                 &response-cache-control=no&X-Amz-Algorithm=AWS4-HMAC-SHA256\
                 &X-Amz-Signature=abc&x-amz-date=1&x-id=GetObject&w=10";
        assert_eq!(raw(q).width, Some(10));
    }

    #[test]
    fn percent_encoding() {
        assert_eq!(raw("%77=1%32").width, Some(12));
        assert_eq!(raw("fit=co%76er&w=1&h=1").fit, Some(Fit::Cover));
        assert_eq!(err_param("w=1%2"), "w");
        assert_eq!(err_param("w=1%zz"), "w");
        assert_eq!(err_param("w=%FF"), "w"); // not UTF-8
        assert_eq!(err_param("w=1+"), "w"); // '+' is a space
    }

    #[test]
    fn canonical_form() {
        assert_eq!(
            canon("h=150&w=200&q=90", OutputFormat::Webp),
            "w=200,h=150,fit=cover,f=webp,q=90,bg=00000000,strip=1"
        );
        assert_eq!(
            canon("w=200", OutputFormat::Jpeg),
            "w=200,h=-,fit=scale,f=jpeg,q=80,bg=ffffffff,strip=1"
        );
        assert_eq!(
            canon("h=10&fit=inside&strip=0&bg=00ff00", OutputFormat::Png),
            "w=-,h=10,fit=inside,f=png,q=-,bg=00ff00ff,strip=0"
        );
        assert_eq!(
            canon("h=150&w=200", OutputFormat::Webp),
            canon("w=200&h=150", OutputFormat::Webp)
        );
        // explicit default == implicit default
        assert_eq!(
            canon("w=200&h=150&fit=cover&q=80&strip=1", OutputFormat::Jpeg),
            canon("w=200&h=150", OutputFormat::Jpeg)
        );
    }

    proptest! {
        #[test]
        fn canonical_is_invariant_under_reordering(
            w in 1u32..=2048, h in 1u32..=2048, q in 1u8..=100,
            fit in 0usize..5, f in 0usize..4, dpr in 0usize..3,
            bg in any::<u32>(), strip in any::<bool>(),
            use_h in any::<bool>(), extra_s3 in any::<bool>(),
            seed in any::<u64>(),
        ) {
            let fits = ["cover", "contain", "fill", "inside", "outside"];
            let fmts = ["jpeg", "png", "webp", "gif"];
            let dprs = ["1", "1.5", "2"];
            let mut pairs = vec![
                format!("w={w}"),
                format!("q={q}"),
                format!("fit={}", fits[fit]),
                format!("f={}", fmts[f]),
                format!("dpr={}", dprs[dpr]),
                format!("bg={bg:08x}"),
                format!("strip={}", u8::from(strip)),
            ];
            if use_h { pairs.push(format!("h={h}")); }
            if extra_s3 { pairs.push("versionId=xyz".into()); pairs.push("X-Amz-Date=1".into()); }
            let base = pairs.join("&");
            // deterministic shuffle from the seed
            let mut shuffled = pairs.clone();
            let mut s = seed | 1;
            for i in (1..shuffled.len()).rev() {
                s ^= s << 13; s ^= s >> 7; s ^= s << 17;
                shuffled.swap(i, (s % (i as u64 + 1)) as usize);
            }
            let other = shuffled.join("&");
            let a = parse_query(&base).unwrap().unwrap();
            let b = parse_query(&other).unwrap().unwrap();
            let fa = finish(a, OutputFormat::Webp);
            let fb = finish(b, OutputFormat::Webp);
            prop_assert_eq!(fa.canonical(), fb.canonical());
            prop_assert_eq!(fa, fb);
        }
    }
}
