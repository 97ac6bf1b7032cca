//! On-the-fly image transforms for object GETs (`?w=&h=&fit=&f=&q=&dpr=&bg=&strip=`).
//!
//! # API (what the server calls)
//!
//! ```text
//! is_transform_query(query: &str) -> bool                  // any transform param present?
//! parse_query(query: &str) -> Result<Option<RawSpec>, TransformError>   // None: plain GET
//! probe(head: &[u8]) -> Result<SourceInfo, TransformError> // magic + header only, no pixels
//! resolve(raw: RawSpec, accept: Option<&str>, source: SourceFormat) -> Spec   // f=auto etc.
//! run(input: &[u8], spec: &Spec, limits: &Limits) -> Result<Output, TransformError>
//!
//! Spec::canonical(&self) -> String          // derivative-cache key part, fixed field order
//! Spec::output_format(&self) -> OutputFormat
//! OutputFormat::content_type(&self) -> &'static str
//! OutputFormat::extension(&self) -> &'static str
//! RawSpec::is_auto_format(&self) -> bool    // true: add `Vary: Accept` to the response
//! TransformError::http_status(&self) -> u16
//! Limits::default()  // 50 MP source, 64 MiB source, 8192*8192 output px, 10 s
//! Output { bytes: bytes::Bytes, width: u32, height: u32, format: OutputFormat }
//! ```
//!
//! A request flows: `parse_query` (400 on `InvalidArgument`) → read the object → `probe` on its
//! first bytes (415 on `UnsupportedSource`, before any decoding) → `resolve` with the request's
//! `Accept` → cache lookup by (bucket, key, version, `spec.canonical()`) → on a miss, `run` on a
//! CPU pool (it blocks; it is synchronous and single-threaded).
//!
//! Files: `params` (query → spec), `negotiate` (Accept → format), `probe` (headers),
//! `geometry` (sizes and rectangles), `codec` (decode / encode), `jpeg` (libjpeg and the JPEG
//! encoder), `scaled_idct` (the DCT-domain shrink in Rust), `pipeline` (the steps),
//! `error`.

pub mod codec;
pub mod error;
pub mod geometry;
pub mod jpeg;
pub mod negotiate;
pub mod params;
pub mod pipeline;
pub mod probe;
pub mod scaled_idct;

pub use codec::AVIF_SUPPORTED;
pub use error::TransformError;
pub use geometry::{Plan, Rect};
pub use negotiate::choose_format;
pub use params::{
    is_transform_query, parse_query, Fit, FormatParam, OutputFormat, RawSpec, Rgba, Spec, DEFAULT_QUALITY,
    MAX_DIMENSION,
};
pub use pipeline::{run, Limits, Output};
pub use probe::{probe, sniff, SourceFormat, SourceInfo};

impl RawSpec {
    /// Whether the output format depends on `Accept` (the response must carry `Vary: Accept`).
    pub fn is_auto_format(&self) -> bool {
        self.format == Some(FormatParam::Auto)
    }
}

/// Fixes the output format and fills in every default.
///
/// `f=auto` → [`choose_format`] on `accept`; no `f` → the source's own format; explicit `f`
/// → that format. (`f=avif` cannot reach here in a build without AVIF: `parse_query` refuses it.)
pub fn resolve(raw: RawSpec, accept: Option<&str>, source: SourceFormat) -> Spec {
    let format = match raw.format {
        Some(FormatParam::Auto) => choose_format(accept, source),
        None => negotiate::same_as_source(source),
        Some(FormatParam::Jpeg) => OutputFormat::Jpeg,
        Some(FormatParam::Png) => OutputFormat::Png,
        Some(FormatParam::Webp) => OutputFormat::Webp,
        Some(FormatParam::Gif) => OutputFormat::Gif,
        Some(FormatParam::Avif) => OutputFormat::Avif,
    };
    params::finish(raw, format)
}

/// Where the shared test photos live: `$STRATA_TESTDATA`, else `../shared/testdata/images`
/// next to the crate (`/work/main` → `/work/shared/testdata/images`).
#[cfg(test)]
pub(crate) fn test_image_dir() -> std::path::PathBuf {
    std::env::var_os("STRATA_TESTDATA")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/testdata/images").into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolve_applies_auto_and_defaults() {
        let raw = parse_query("w=200&h=150&f=auto").unwrap().unwrap();
        assert!(raw.is_auto_format());
        let s = resolve(raw.clone(), Some("image/webp,*/*"), SourceFormat::Jpeg);
        assert_eq!(s.output_format(), OutputFormat::Webp);
        assert_eq!(s.canonical(), "w=200,h=150,fit=cover,f=webp,q=80,bg=00000000,strip=1");
        let s = resolve(raw, None, SourceFormat::Jpeg);
        assert_eq!(s.canonical(), "w=200,h=150,fit=cover,f=jpeg,q=80,bg=ffffffff,strip=1");
        let raw = parse_query("w=10").unwrap().unwrap();
        assert!(!raw.is_auto_format());
        assert_eq!(resolve(raw.clone(), None, SourceFormat::Gif).format, OutputFormat::Gif);
        assert_eq!(
            resolve(raw, Some("image/webp"), SourceFormat::Webp).format,
            OutputFormat::Webp
        );
    }

    #[test]
    fn content_types_and_extensions() {
        assert_eq!(OutputFormat::Jpeg.content_type(), "image/jpeg");
        assert_eq!(OutputFormat::Webp.content_type(), "image/webp");
        assert_eq!(OutputFormat::Png.extension(), "png");
        assert_eq!(OutputFormat::Jpeg.extension(), "jpg");
        assert_eq!(OutputFormat::Gif.content_type(), "image/gif");
        assert_eq!(OutputFormat::Avif.content_type(), "image/avif");
    }

    #[test]
    fn error_statuses() {
        assert_eq!(TransformError::Timeout.http_status(), 503);
        assert_eq!(TransformError::UnsupportedSource(String::new()).http_status(), 415);
        assert_eq!(
            TransformError::InvalidArgument {
                param: "w".into(),
                message: String::new()
            }
            .http_status(),
            400
        );
    }
}
