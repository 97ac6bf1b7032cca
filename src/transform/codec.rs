//! Decoding (with limits and JPEG shrink-on-load) and encoding per output format.
//!
//! Decoded pixels are always 8-bit interleaved RGB or RGBA ([`Pixels`]), the common currency of
//! the pipeline. JPEG sources that the output will reduce by 2× or more are decoded by libjpeg
//! with its scaled IDCT (1/2, 1/4, 1/8: libvips' shrink-on-load, see `jpeg`), leaving at least a
//! factor of two for the Lanczos resize as libvips does. Full-size JPEG decodes (unless libjpeg
//! has its SIMD), CMYK/YCCK JPEGs, and JPEGs libjpeg rejects or warns about fall back to `image`'s
//! decoder (zune-jpeg), as does everything else (png, image-webp, gif). JPEG output comes from
//! `jpeg::encode`, lossy WebP from libwebp (`webp` crate).

use std::io::Cursor;
use std::panic::{catch_unwind, AssertUnwindSafe};

use image::{DynamicImage, ExtendedColorType, ImageDecoder, ImageEncoder, ImageError};

use super::error::TransformError;
use super::jpeg;
use super::params::OutputFormat;
use super::probe::{SourceFormat, SourceInfo};

/// Whether this build can encode AVIF. It cannot: `image`'s `avif` feature (rav1e) is not
/// enabled, so `f=avif` is a 400 and `f=auto` never picks AVIF.
pub const AVIF_SUPPORTED: bool = false;

/// 8-bit interleaved pixels, RGB (`alpha == false`) or RGBA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pixels {
    pub width: u32,
    pub height: u32,
    pub alpha: bool,
    pub data: Vec<u8>,
}

impl Pixels {
    pub fn channels(&self) -> usize {
        if self.alpha {
            4
        } else {
            3
        }
    }

    fn from_dynamic(img: DynamicImage) -> Pixels {
        let (width, height) = (img.width(), img.height());
        let alpha = img.color().has_alpha();
        let data = match img {
            DynamicImage::ImageRgb8(b) => b.into_raw(),
            DynamicImage::ImageRgba8(b) => b.into_raw(),
            other if alpha => other.to_rgba8().into_raw(),
            other => other.to_rgb8().into_raw(),
        };
        Pixels {
            width,
            height,
            alpha,
            data,
        }
    }

    pub(crate) fn into_dynamic(self) -> Result<DynamicImage, TransformError> {
        let bad = || TransformError::Internal("pixel buffer size mismatch".into());
        Ok(if self.alpha {
            DynamicImage::ImageRgba8(image::RgbaImage::from_raw(self.width, self.height, self.data).ok_or_else(bad)?)
        } else {
            DynamicImage::ImageRgb8(image::RgbImage::from_raw(self.width, self.height, self.data).ok_or_else(bad)?)
        })
    }
}

/// A decoded source.
#[derive(Debug)]
pub struct Decoded {
    pub pixels: Pixels,
    /// Embedded ICC profile, if any (re-embedded in the output; see `pipeline`).
    pub icc: Option<Vec<u8>>,
}

/// Largest width/height each encoder can write.
pub fn max_output_dimension(format: OutputFormat) -> u32 {
    match format {
        OutputFormat::Webp => 16383,
        OutputFormat::Jpeg | OutputFormat::Gif => 65535,
        OutputFormat::Avif | OutputFormat::Png => 65535,
    }
}

fn map_image_error(e: ImageError) -> TransformError {
    match e {
        ImageError::Limits(l) => TransformError::TooLarge(l.to_string()),
        ImageError::Unsupported(u) => TransformError::UnsupportedSource(u.to_string()),
        ImageError::Decoding(d) => TransformError::Corrupt(d.to_string()),
        ImageError::Parameter(p) => TransformError::Corrupt(p.to_string()),
        ImageError::IoError(io) => TransformError::Corrupt(format!("truncated or unreadable: {io}")),
        ImageError::Encoding(e) => TransformError::Internal(e.to_string()),
    }
}

/// The JPEG scaled-IDCT size (1, 2, 4 of 8; 8 = no shrink) that keeps the decoded image at
/// least `min_w`×`min_h`.
pub fn jpeg_idct_size(width: u32, height: u32, min_w: u32, min_h: u32) -> u32 {
    let scaled = |len: u32, k: u32| (u64::from(len) * u64::from(k)).div_ceil(8);
    for k in [1, 2, 4] {
        if scaled(width, k) >= u64::from(min_w) && scaled(height, k) >= u64::from(min_h) {
            return k;
        }
    }
    8
}

/// Whether a JPEG's entropy-coded data is followed by an EOI marker. The decoders are lenient
/// and would fill a truncated scan with grey; we call such a file corrupt instead.
fn jpeg_is_complete(input: &[u8]) -> bool {
    // Find the first SOS by walking the segments, then look for FF D9 after it. Entropy-coded
    // data never contains FF D9 (0xFF is stuffed as FF 00), so any FF D9 after SOS is an EOI.
    let mut pos = 2usize;
    let sos = loop {
        while input.get(pos) == Some(&0xFF) {
            pos += 1;
        }
        let Some(&marker) = input.get(pos) else {
            return false;
        };
        pos += 1;
        if matches!(marker, 0x01 | 0xD0..=0xD8) {
            continue;
        }
        if marker == 0xDA {
            break pos;
        }
        let Some(len) = input.get(pos..pos + 2) else {
            return false;
        };
        pos += usize::from(u16::from_be_bytes([len[0], len[1]]));
    };
    input
        .get(sos..)
        .is_some_and(|rest| rest.windows(2).rev().any(|w| w == [0xFF, 0xD9]))
}

/// Decodes `input` (already probed as `info`) to RGB/RGBA 8-bit.
///
/// `min_size` is the smallest (stored-orientation) size the pipeline needs; a JPEG may be
/// decoded smaller than its full size but never below it. `max_alloc` bounds decoder memory.
pub fn decode(
    input: &[u8],
    info: &SourceInfo,
    min_size: (u32, u32),
    max_alloc: u64,
) -> Result<Decoded, TransformError> {
    // Third-party decoders are fuzzed but not proven panic-free: contain any panic.
    catch_unwind(AssertUnwindSafe(|| decode_inner(input, info, min_size, max_alloc)))
        .unwrap_or_else(|_| Err(TransformError::Internal("image decoder panicked".into())))
}

fn decode_inner(
    input: &[u8],
    info: &SourceInfo,
    min_size: (u32, u32),
    max_alloc: u64,
) -> Result<Decoded, TransformError> {
    if info.format == SourceFormat::Jpeg {
        if !jpeg_is_complete(input) {
            return Err(TransformError::Corrupt(
                "jpeg: truncated (no end-of-image marker after the scan data)".into(),
            ));
        }
        let k = jpeg_idct_size(info.width, info.height, min_size.0, min_size.1);
        if jpeg::libjpeg_decodes(k) {
            if let Some(d) = jpeg::decode_scaled(input, k, max_alloc)? {
                return Ok(d);
            }
        } else if u64::from(info.width) * u64::from(info.height) * 3 > max_alloc {
            // image's JPEG decoder does not hold its output to the limit: refuse here.
            return Err(TransformError::TooLarge(format!(
                "jpeg: decoding {}x{} needs more than the {max_alloc}-byte allocation limit",
                info.width, info.height
            )));
        }
    }
    let mut reader = image::ImageReader::with_format(Cursor::new(input), info.format.image_format());
    let mut limits = image::Limits::default();
    limits.max_alloc = Some(max_alloc);
    reader.limits(limits);
    let mut decoder = reader.into_decoder().map_err(map_image_error)?;
    let icc = decoder.icc_profile().ok().flatten();
    let img = DynamicImage::from_decoder(decoder).map_err(map_image_error)?;
    Ok(Decoded {
        pixels: Pixels::from_dynamic(img),
        icc,
    })
}

/// Encodes RGB/RGBA pixels. JPEG input must be RGB (the pipeline flattens first).
/// `icc` is embedded where the format allows (JPEG, PNG, WebP).
pub fn encode(px: &Pixels, format: OutputFormat, quality: u8, icc: Option<&[u8]>) -> Result<Vec<u8>, TransformError> {
    let color = if px.alpha {
        ExtendedColorType::Rgba8
    } else {
        ExtendedColorType::Rgb8
    };
    let enc_err = |e: ImageError| TransformError::Internal(format!("encoding failed: {e}"));
    let mut out = Vec::new();
    match format {
        OutputFormat::Jpeg => {
            if px.alpha {
                return Err(TransformError::Internal(
                    "jpeg encoder given RGBA; flatten first".into(),
                ));
            }
            out = jpeg::encode(px, quality, icc)?;
        }
        OutputFormat::Png => {
            let mut enc = image::codecs::png::PngEncoder::new_with_quality(
                &mut out,
                image::codecs::png::CompressionType::Fast,
                image::codecs::png::FilterType::Adaptive,
            );
            if let Some(icc) = icc {
                let _ = enc.set_icc_profile(icc.to_vec());
            }
            enc.write_image(&px.data, px.width, px.height, color).map_err(enc_err)?;
        }
        OutputFormat::Webp => {
            let enc = if px.alpha {
                webp::Encoder::from_rgba(&px.data, px.width, px.height)
            } else {
                webp::Encoder::from_rgb(&px.data, px.width, px.height)
            };
            let mem = enc
                .encode_simple(false, f32::from(quality))
                .map_err(|e| TransformError::Internal(format!("webp encoding failed: {e:?}")))?;
            out = match icc {
                Some(icc) => webp_with_iccp(&mem, icc, px.width, px.height)?,
                None => mem.to_vec(),
            };
        }
        OutputFormat::Gif => {
            let mut enc = image::codecs::gif::GifEncoder::new_with_speed(&mut out, 10);
            enc.encode(&px.data, px.width, px.height, color).map_err(enc_err)?;
        }
        OutputFormat::Avif => {
            return Err(TransformError::Internal(
                "avif output is not supported by this build".into(),
            ))
        }
    }
    Ok(out)
}

/// Adds an ICCP chunk to a libwebp-produced file (simple `VP8 `/`VP8L` or extended `VP8X`),
/// converting it to the extended format as the container spec requires.
fn webp_with_iccp(webp: &[u8], icc: &[u8], width: u32, height: u32) -> Result<Vec<u8>, TransformError> {
    let bad = || TransformError::Internal("unexpected webp container from libwebp".into());
    if webp.len() < 20 || &webp[0..4] != b"RIFF" || &webp[8..12] != b"WEBP" {
        return Err(bad());
    }
    let chunk = |kind: &[u8], data: &[u8], out: &mut Vec<u8>| -> Result<(), TransformError> {
        let len = u32::try_from(data.len()).map_err(|_| bad())?;
        out.extend_from_slice(kind);
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(data);
        if data.len() % 2 == 1 {
            out.push(0);
        }
        Ok(())
    };
    let body = &webp[12..];
    let mut out = Vec::with_capacity(webp.len() + icc.len() + 32);
    out.extend_from_slice(b"RIFF\0\0\0\0WEBP");
    if &body[0..4] == b"VP8X" {
        // Extended already (alpha): set the ICC flag, insert ICCP right after VP8X.
        let vp8x = body.get(0..18).ok_or_else(bad)?;
        let mut vp8x = vp8x.to_vec();
        vp8x[8] |= 0x20;
        out.extend_from_slice(&vp8x);
        chunk(b"ICCP", icc, &mut out)?;
        out.extend_from_slice(body.get(18..).ok_or_else(bad)?);
    } else {
        let mut vp8x = [0u8; 10];
        vp8x[0] = 0x20;
        let (w1, h1) = (width.saturating_sub(1), height.saturating_sub(1));
        vp8x[4..7].copy_from_slice(&w1.to_le_bytes()[0..3]);
        vp8x[7..10].copy_from_slice(&h1.to_le_bytes()[0..3]);
        chunk(b"VP8X", &vp8x, &mut out)?;
        chunk(b"ICCP", icc, &mut out)?;
        out.extend_from_slice(body);
    }
    let riff_len = u32::try_from(out.len() - 8).map_err(|_| bad())?;
    out[4..8].copy_from_slice(&riff_len.to_le_bytes());
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idct_size_leaves_enough_pixels() {
        // 2560x1600 needed at least 480x300 (2x a 240x150 resize): 1/4 gives 640x400.
        assert_eq!(jpeg_idct_size(2560, 1600, 480, 300), 2);
        assert_eq!(jpeg_idct_size(2560, 1600, 320, 200), 1);
        assert_eq!(jpeg_idct_size(2560, 1600, 321, 200), 2);
        assert_eq!(jpeg_idct_size(2560, 1600, 1600, 1000), 8);
        assert_eq!(jpeg_idct_size(2560, 1600, 5120, 3200), 8);
        assert_eq!(jpeg_idct_size(1, 1, 1, 1), 1);
    }

    #[test]
    fn webp_iccp_is_well_formed_and_decodable() {
        let px = Pixels {
            width: 3,
            height: 2,
            alpha: false,
            data: vec![200; 18],
        };
        let icc = b"fake icc profile, odd len";
        for alpha in [false, true] {
            let px = if alpha {
                Pixels {
                    alpha: true,
                    data: vec![100; 24],
                    ..px.clone()
                }
            } else {
                px.clone()
            };
            let out = encode(&px, OutputFormat::Webp, 80, Some(icc)).unwrap();
            assert_eq!(&out[12..16], b"VP8X");
            assert_eq!(out[20] & 0x20, 0x20, "ICC flag");
            assert_eq!(&out[30..34], b"ICCP");
            let riff = u32::from_le_bytes(out[4..8].try_into().unwrap()) as usize;
            assert_eq!(riff + 8, out.len());
            let mut dec = image::codecs::webp::WebPDecoder::new(Cursor::new(&out)).unwrap();
            assert_eq!(dec.icc_profile().unwrap().as_deref(), Some(&icc[..]));
            assert_eq!(dec.dimensions(), (3, 2));
            let img = DynamicImage::from_decoder(dec).unwrap();
            assert_eq!(img.color().has_alpha(), alpha);
        }
    }

    #[test]
    fn jpeg_completeness() {
        let dir = crate::transform::test_image_dir();
        let jpg = std::fs::read(dir.join("storm-1920x1280.jpg")).unwrap();
        assert!(jpeg_is_complete(&jpg));
        assert!(!jpeg_is_complete(&jpg[..jpg.len() / 2]));
        assert!(!jpeg_is_complete(&jpg[..100]));
    }

    fn mean_abs_diff(a: &[u8], b: &[u8]) -> f64 {
        assert_eq!(a.len(), b.len());
        let sum: u64 = a.iter().zip(b).map(|(x, y)| u64::from(x.abs_diff(*y))).sum();
        sum as f64 / a.len() as f64
    }

    fn probe_jpeg(src: &[u8]) -> SourceInfo {
        let info = crate::transform::probe::probe(src).unwrap();
        assert_eq!(info.format, SourceFormat::Jpeg);
        info
    }

    #[test]
    fn libjpeg_scaled_decode_matches_full_decode_and_resize() {
        let dir = crate::transform::test_image_dir();
        for name in ["storm-1920x1280.jpg", "twowings-2560x1600.jpg"] {
            let src = std::fs::read(dir.join(name)).unwrap();
            let info = probe_jpeg(&src);
            let full = image::load_from_memory(&src).unwrap();
            for k in [1u32, 2, 4] {
                let d = jpeg::decode_scaled(&src, k, u64::MAX).unwrap().expect("libjpeg path");
                let (w, h) = (info.width * k / 8, info.height * k / 8);
                assert_eq!((d.pixels.width, d.pixels.height, d.pixels.alpha), (w, h, false));
                let reference = full.resize_exact(w, h, image::imageops::FilterType::Triangle).to_rgb8();
                let diff = mean_abs_diff(&d.pixels.data, reference.as_raw());
                assert!(diff < 3.0, "{name} at {k}/8: mean abs diff {diff}");
            }
            // full size: the same pixels as image's decoder, up to IDCT/upsampling rounding
            let d = jpeg::decode_scaled(&src, 8, u64::MAX).unwrap().unwrap();
            let diff = mean_abs_diff(&d.pixels.data, full.to_rgb8().as_raw());
            assert!(diff < 1.5, "{name} full size: mean abs diff {diff}");
        }
    }

    #[test]
    fn jpeg_decode_respects_max_alloc() {
        let dir = crate::transform::test_image_dir();
        let src = std::fs::read(dir.join("twowings-2560x1600.jpg")).unwrap();
        let info = probe_jpeg(&src);
        // 1/8 scale is 320x200x3 = 192000 bytes
        assert!(decode(&src, &info, (320, 200), 192_000).is_ok());
        let r = decode(&src, &info, (320, 200), 191_999);
        assert!(matches!(r, Err(TransformError::TooLarge(_))), "{r:?}");
        let r = decode(&src, &info, (2560, 1600), 10_000_000);
        assert!(
            matches!(r, Err(TransformError::TooLarge(_))),
            "{:?}",
            r.map(|d| d.pixels.width)
        );
    }

    fn test_jpeg(color: jpeg_encoder::ColorType, w: u16, h: u16) -> Vec<u8> {
        let n = match color {
            jpeg_encoder::ColorType::Luma => 1,
            jpeg_encoder::ColorType::Rgb => 3,
            _ => 4,
        };
        let pixels: Vec<u8> = (0..usize::from(w) * usize::from(h) * n)
            .map(|i| ((i * 7) % 251) as u8)
            .collect();
        let mut out = Vec::new();
        jpeg_encoder::Encoder::new(&mut out, 90)
            .encode(&pixels, w, h, color)
            .unwrap();
        out
    }

    #[test]
    fn grey_and_cmyk_jpegs_decode_to_rgb() {
        let grey = test_jpeg(jpeg_encoder::ColorType::Luma, 64, 48);
        let d = decode(&grey, &probe_jpeg(&grey), (16, 12), 1 << 20).unwrap();
        assert_eq!((d.pixels.width, d.pixels.height), (16, 12));
        assert!(d.pixels.data.chunks(3).all(|p| p[0] == p[1] && p[1] == p[2]));
        // CMYK is not something libjpeg converts to RGB: image's decoder takes it
        let cmyk = test_jpeg(jpeg_encoder::ColorType::Cmyk, 64, 48);
        assert!(jpeg::decode_scaled(&cmyk, 2, 1 << 20).unwrap().is_none());
        let d = decode(&cmyk, &probe_jpeg(&cmyk), (16, 12), 1 << 20).unwrap();
        assert_eq!((d.pixels.width, d.pixels.height, d.pixels.alpha), (64, 48, false));
    }

    #[test]
    fn jpeg_icc_is_read_and_embedded() {
        // one APP2 segment, and a profile that needs three
        for len in [3000usize, 150_000] {
            let icc: Vec<u8> = (0..len).map(|i| (i % 253) as u8).collect();
            let px = Pixels {
                width: 40,
                height: 30,
                alpha: false,
                data: vec![128; 40 * 30 * 3],
            };
            let jpg = encode(&px, OutputFormat::Jpeg, 80, Some(&icc)).unwrap();
            let mut dec = image::codecs::jpeg::JpegDecoder::new(Cursor::new(&jpg)).unwrap();
            assert_eq!(dec.icc_profile().unwrap().as_deref(), Some(&icc[..]), "{len}");
            let d = decode(&jpg, &probe_jpeg(&jpg), (10, 8), 1 << 20).unwrap();
            assert_eq!(d.pixels.width, 10);
            assert_eq!(d.icc.as_deref(), Some(&icc[..]), "{len}");
        }
    }

    #[test]
    fn damaged_jpeg_scan_data_is_corrupt_or_decoded_never_panics() {
        let dir = crate::transform::test_image_dir();
        let src = std::fs::read(dir.join("storm-1920x1280.jpg")).unwrap();
        let info = probe_jpeg(&src);
        let mut s = 0x9E3779B97F4A7C15u64;
        for _ in 0..20 {
            let mut v = src.clone();
            for _ in 0..16 {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                let i = 1000 + (s as usize) % (v.len() - 1000);
                v[i] ^= (s >> 40) as u8 | 1;
            }
            match decode(&v, &info, (240, 160), 64 << 20) {
                Ok(d) => assert!(d.pixels.width >= 240 && d.pixels.height >= 160),
                Err(TransformError::Corrupt(_)) => {}
                Err(e) => panic!("unexpected {e:?}"),
            }
        }
    }
}
