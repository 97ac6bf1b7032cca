//! The transform pipeline: small steps with one signature, run in order, deadline checked
//! between steps (in the spirit of imgproxy's `processing/pipeline.go`).
//!
//! probe → check limits (from the header, before any pixel is decoded) → decode (JPEG
//! shrink-on-load) → resize+crop (fast_image_resize, Lanczos3, in the stored orientation) →
//! orient (EXIF, applied to the already small image) → compose (letterbox, flatten for JPEG) →
//! encode. Metadata is never copied (we re-encode); the source ICC profile is re-embedded in
//! JPEG/PNG/WebP outputs because we do not convert colour spaces.

use std::time::{Duration, Instant};

use bytes::Bytes;
use fast_image_resize as fr;
use image::metadata::Orientation;

use super::codec::{self, Pixels};
use super::error::TransformError;
use super::geometry::{self, Plan};
use super::params::{OutputFormat, Rgba, Spec};
use super::probe::{self, swaps_axes, SourceInfo};

/// Bounds on one transform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Source width × height, checked from the header before decoding. Default 50 MP.
    pub max_source_pixels: u64,
    /// Size of the encoded source object. Default 64 MiB.
    pub max_source_bytes: u64,
    /// Output width × height. Default 67_108_864 (8192 × 8192), so every box the parameters
    /// allow fits; it still stops `outside` / one-dimension requests on extreme aspect ratios.
    pub max_output_pixels: u64,
    /// Wall-clock budget, checked between steps. Default 10 s.
    pub deadline: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_source_pixels: 50_000_000,
            max_source_bytes: 64 * 1024 * 1024,
            max_output_pixels: 8192 * 8192,
            deadline: Duration::from_secs(10),
        }
    }
}

/// An encoded derivative.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    pub bytes: Bytes,
    pub width: u32,
    pub height: u32,
    pub format: OutputFormat,
}

/// State handed from step to step.
struct Ctx<'a> {
    input: &'a [u8],
    spec: &'a Spec,
    limits: &'a Limits,
    info: Option<SourceInfo>,
    plan: Option<Plan>,
    pixels: Option<Pixels>,
    icc: Option<Vec<u8>>,
    encoded: Option<Vec<u8>>,
}

impl Ctx<'_> {
    fn info(&self) -> Result<SourceInfo, TransformError> {
        self.info.ok_or_else(|| missing("source info"))
    }
    fn plan(&self) -> Result<Plan, TransformError> {
        self.plan.ok_or_else(|| missing("plan"))
    }
    fn take_pixels(&mut self) -> Result<Pixels, TransformError> {
        self.pixels.take().ok_or_else(|| missing("pixels"))
    }
}

fn missing(what: &str) -> TransformError {
    TransformError::Internal(format!("pipeline step ran without {what}"))
}

/// Every step has this signature.
type Step = fn(&mut Ctx<'_>) -> Result<(), TransformError>;

const STEPS: [(&str, Step); 7] = [
    ("probe", step_probe),
    ("check_limits", step_check_limits),
    ("decode", step_decode),
    ("resize", step_resize),
    ("orient", step_orient),
    ("compose", step_compose),
    ("encode", step_encode),
];

/// Runs the whole pipeline on a complete source object.
pub fn run(input: &[u8], spec: &Spec, limits: &Limits) -> Result<Output, TransformError> {
    let deadline = Instant::now() + limits.deadline;
    let mut ctx = Ctx {
        input,
        spec,
        limits,
        info: None,
        plan: None,
        pixels: None,
        icc: None,
        encoded: None,
    };
    for (_name, step) in STEPS {
        if Instant::now() >= deadline {
            return Err(TransformError::Timeout);
        }
        step(&mut ctx)?;
    }
    let plan = ctx.plan()?;
    let bytes = ctx.encoded.take().ok_or_else(|| missing("encoded output"))?;
    Ok(Output {
        bytes: Bytes::from(bytes),
        width: plan.canvas.0,
        height: plan.canvas.1,
        format: spec.format,
    })
}

fn step_probe(ctx: &mut Ctx<'_>) -> Result<(), TransformError> {
    // Cheap and first: a huge body is refused before its header is even parsed.
    if ctx.input.len() as u64 > ctx.limits.max_source_bytes {
        return Err(TransformError::TooLarge(format!(
            "source is {} bytes, limit {}",
            ctx.input.len(),
            ctx.limits.max_source_bytes
        )));
    }
    ctx.info = Some(probe::probe(ctx.input)?);
    Ok(())
}

fn step_check_limits(ctx: &mut Ctx<'_>) -> Result<(), TransformError> {
    let info = ctx.info()?;
    if info.pixels() > ctx.limits.max_source_pixels {
        return Err(TransformError::TooLarge(format!(
            "source is {}x{} = {} pixels, limit {}",
            info.width,
            info.height,
            info.pixels(),
            ctx.limits.max_source_pixels
        )));
    }
    let (ow, oh) = info.oriented_dimensions();
    let plan = geometry::plan(ow, oh, ctx.spec.width, ctx.spec.height, ctx.spec.fit);
    let max_dim = codec::max_output_dimension(ctx.spec.format);
    if plan.output_pixels() > ctx.limits.max_output_pixels || plan.canvas.0 > max_dim || plan.canvas.1 > max_dim {
        return Err(TransformError::TooLarge(format!(
            "output would be {}x{}, limits {} pixels and {} px per side for {}",
            plan.canvas.0,
            plan.canvas.1,
            ctx.limits.max_output_pixels,
            max_dim,
            ctx.spec.format.as_str()
        )));
    }
    ctx.plan = Some(plan);
    Ok(())
}

fn step_decode(ctx: &mut Ctx<'_>) -> Result<(), TransformError> {
    let info = ctx.info()?;
    let plan = ctx.plan()?;
    // Keep at least 2x the resize target for the convolution (as libvips does), in the
    // stored orientation.
    let need = (plan.resized.0.saturating_mul(2), plan.resized.1.saturating_mul(2));
    let need = if swaps_axes(info.orientation) {
        (need.1, need.0)
    } else {
        need
    };
    // 8 bytes a pixel covers 16-bit RGBA; the pixel count was checked against the limit.
    let max_alloc = info.pixels().saturating_mul(8).saturating_add(16 << 20);
    let decoded = codec::decode(ctx.input, &info, need, max_alloc)?;
    ctx.pixels = Some(decoded.pixels);
    ctx.icc = decoded.icc;
    Ok(())
}

/// Maps a rectangle given in displayed (oriented) coordinates to stored coordinates.
/// `(w, h)` are the stored dimensions.
fn unorient_rect(o: Orientation, (w, h): (f64, f64), (x, y, rw, rh): (f64, f64, f64, f64)) -> (f64, f64, f64, f64) {
    match o {
        Orientation::NoTransforms => (x, y, rw, rh),
        Orientation::FlipHorizontal => (w - x - rw, y, rw, rh),
        Orientation::FlipVertical => (x, h - y - rh, rw, rh),
        Orientation::Rotate180 => (w - x - rw, h - y - rh, rw, rh),
        // displayed (ox, oy) comes from stored (oy, h - ox)
        Orientation::Rotate90 => (y, h - x - rw, rh, rw),
        // displayed (ox, oy) comes from stored (w - oy, ox)
        Orientation::Rotate270 => (w - y - rh, x, rh, rw),
        // transpose: displayed (ox, oy) comes from stored (oy, ox)
        Orientation::Rotate90FlipH => (y, x, rh, rw),
        // transverse: displayed (ox, oy) comes from stored (w - oy, h - ox)
        Orientation::Rotate270FlipH => (w - y - rh, h - x - rw, rh, rw),
    }
}

fn step_resize(ctx: &mut Ctx<'_>) -> Result<(), TransformError> {
    let info = ctx.info()?;
    let plan = ctx.plan()?;
    let px = ctx.take_pixels()?;
    let (ow, oh) = info.oriented_dimensions();
    let crop = plan.source_crop(ow, oh);
    let (sl, st, sw, sh) = unorient_rect(info.orientation, (f64::from(info.width), f64::from(info.height)), crop);
    // The decoder may have shrunk the image (or reported other dimensions than the header).
    let fx = f64::from(px.width) / f64::from(info.width);
    let fy = f64::from(px.height) / f64::from(info.height);
    let (dw, dh) = (f64::from(px.width), f64::from(px.height));
    let left = (sl * fx).clamp(0.0, dw);
    let top = (st * fy).clamp(0.0, dh);
    let cw = (sw * fx).min(dw - left).max(0.0);
    let ch = (sh * fy).min(dh - top).max(0.0);
    let (tw, th) = if swaps_axes(info.orientation) {
        (plan.crop.height, plan.crop.width)
    } else {
        (plan.crop.width, plan.crop.height)
    };
    let identity = tw == px.width && th == px.height && left == 0.0 && top == 0.0 && cw == dw && ch == dh;
    if identity {
        ctx.pixels = Some(px);
        return Ok(());
    }
    let pixel_type = if px.alpha {
        fr::PixelType::U8x4
    } else {
        fr::PixelType::U8x3
    };
    let internal = |e: &dyn std::fmt::Display| TransformError::Internal(format!("resize: {e}"));
    let src = fr::images::ImageRef::new(px.width, px.height, &px.data, pixel_type).map_err(|e| internal(&e))?;
    let mut dst = fr::images::Image::new(tw, th, pixel_type);
    let options = fr::ResizeOptions::new()
        .resize_alg(fr::ResizeAlg::Convolution(fr::FilterType::Lanczos3))
        .crop(left, top, cw, ch);
    fr::Resizer::new()
        .resize(&src, &mut dst, &options)
        .map_err(|e| internal(&e))?;
    ctx.pixels = Some(Pixels {
        width: tw,
        height: th,
        alpha: px.alpha,
        data: dst.into_vec(),
    });
    Ok(())
}

fn step_orient(ctx: &mut Ctx<'_>) -> Result<(), TransformError> {
    let info = ctx.info()?;
    if info.orientation == Orientation::NoTransforms {
        return Ok(());
    }
    let px = ctx.take_pixels()?;
    let alpha = px.alpha;
    let mut img = px.into_dynamic()?;
    img.apply_orientation(info.orientation);
    let (width, height) = (img.width(), img.height());
    let data = if alpha {
        img.into_rgba8().into_raw()
    } else {
        img.into_rgb8().into_raw()
    };
    ctx.pixels = Some(Pixels {
        width,
        height,
        alpha,
        data,
    });
    Ok(())
}

fn step_compose(ctx: &mut Ctx<'_>) -> Result<(), TransformError> {
    let plan = ctx.plan()?;
    let bg = ctx.spec.background;
    let mut px = ctx.take_pixels()?;
    if (px.width, px.height) != (plan.crop.width, plan.crop.height) {
        return Err(TransformError::Internal(format!(
            "resized to {}x{}, planned {}x{}",
            px.width, px.height, plan.crop.width, plan.crop.height
        )));
    }
    if plan.canvas != (px.width, px.height) {
        px = letterbox(&px, plan.canvas, plan.offset, bg)?;
    }
    if px.alpha && !ctx.spec.format.supports_alpha() {
        px = flatten(&px, bg);
    }
    ctx.pixels = Some(px);
    Ok(())
}

/// Places `px` at `offset` on a `canvas` filled with `bg`. The canvas has alpha when the
/// image or the colour does.
fn letterbox(px: &Pixels, canvas: (u32, u32), offset: (u32, u32), bg: Rgba) -> Result<Pixels, TransformError> {
    let alpha = px.alpha || bg.a < 255;
    let ch = if alpha { 4 } else { 3 };
    let fill: &[u8] = if alpha {
        &[bg.r, bg.g, bg.b, bg.a]
    } else {
        &[bg.r, bg.g, bg.b]
    };
    let (cw, chh) = (canvas.0 as usize, canvas.1 as usize);
    let len = cw
        .checked_mul(chh)
        .and_then(|p| p.checked_mul(ch))
        .ok_or_else(|| TransformError::TooLarge("canvas size overflows".into()))?;
    let mut data = Vec::with_capacity(len);
    for _ in 0..cw * chh {
        data.extend_from_slice(fill);
    }
    let (ox, oy) = (offset.0 as usize, offset.1 as usize);
    let (w, h) = (px.width as usize, px.height as usize);
    if ox + w > cw || oy + h > chh {
        return Err(TransformError::Internal("letterbox offset out of canvas".into()));
    }
    let sc = px.channels();
    for y in 0..h {
        let src = &px.data[y * w * sc..(y + 1) * w * sc];
        let row = (oy + y) * cw * ch + ox * ch;
        let dst = &mut data[row..row + w * ch];
        if sc == ch {
            dst.copy_from_slice(src);
        } else {
            for (d, s) in dst.chunks_exact_mut(4).zip(src.chunks_exact(3)) {
                d[..3].copy_from_slice(s);
                d[3] = 255;
            }
        }
    }
    Ok(Pixels {
        width: canvas.0,
        height: canvas.1,
        alpha,
        data,
    })
}

/// Composites RGBA over an opaque `bg` and drops the alpha channel.
fn flatten(px: &Pixels, bg: Rgba) -> Pixels {
    let bgc = [u32::from(bg.r), u32::from(bg.g), u32::from(bg.b)];
    let mut data = Vec::with_capacity(px.data.len() / 4 * 3);
    for p in px.data.chunks_exact(4) {
        let a = u32::from(p[3]);
        for c in 0..3 {
            let v = (u32::from(p[c]) * a + bgc[c] * (255 - a) + 127) / 255;
            data.push(v as u8);
        }
    }
    Pixels {
        width: px.width,
        height: px.height,
        alpha: false,
        data,
    }
}

fn step_encode(ctx: &mut Ctx<'_>) -> Result<(), TransformError> {
    let px = ctx.take_pixels()?;
    let icc = ctx.icc.as_deref();
    ctx.encoded = Some(codec::encode(&px, ctx.spec.format, ctx.spec.quality, icc)?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transform::params::Fit;
    use crate::transform::{parse_query, resolve, test_image_dir};
    use image::{DynamicImage, GenericImageView};

    fn read(name: &str) -> Vec<u8> {
        let p = test_image_dir().join(name);
        std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    }

    fn spec_for(query: &str, source: &[u8]) -> Spec {
        let raw = parse_query(query).unwrap().unwrap();
        let info = probe::probe(source).unwrap();
        resolve(raw, Some("image/webp"), info.format)
    }

    fn transform(name: &str, query: &str) -> (Output, DynamicImage) {
        let src = read(name);
        let spec = spec_for(query, &src);
        let out = run(&src, &spec, &Limits::default()).unwrap_or_else(|e| panic!("{name}?{query}: {e}"));
        let img = image::load_from_memory(&out.bytes).unwrap();
        assert_eq!(
            (img.width(), img.height()),
            (out.width, out.height),
            "{name}?{query}: reported size"
        );
        let fmt = image::guess_format(&out.bytes).unwrap();
        let want = match out.format {
            OutputFormat::Jpeg => image::ImageFormat::Jpeg,
            OutputFormat::Png => image::ImageFormat::Png,
            OutputFormat::Webp => image::ImageFormat::WebP,
            OutputFormat::Gif => image::ImageFormat::Gif,
            OutputFormat::Avif => image::ImageFormat::Avif,
        };
        assert_eq!(fmt, want, "{name}?{query}");
        (out, img)
    }

    fn min_alpha(img: &DynamicImage) -> u8 {
        img.to_rgba8().pixels().map(|p| p.0[3]).min().unwrap_or(255)
    }

    #[test]
    fn jpeg_to_webp_cover() {
        let (out, img) = transform("twowings-2560x1600.jpg", "w=200&h=150&f=webp&q=90");
        assert_eq!((out.width, out.height, out.format), (200, 150, OutputFormat::Webp));
        assert!(!img.color().has_alpha());
    }

    #[test]
    fn jpeg_every_fit() {
        let cases = [
            ("w=200&h=150&fit=cover", (200, 150)),
            ("w=200&h=150&fit=contain", (200, 150)),
            ("w=200&h=150&fit=fill", (200, 150)),
            ("w=200&h=150&fit=inside", (200, 125)),
            ("w=200&h=150&fit=outside", (240, 150)),
            ("w=800", (800, 500)),
            ("h=100", (160, 100)),
            ("w=5000&fit=inside", (2560, 1600)),
        ];
        for (q, dims) in cases {
            let (out, _) = transform("twowings-2560x1600.jpg", &format!("{q}&f=jpeg"));
            assert_eq!((out.width, out.height), dims, "{q}");
        }
    }

    #[test]
    fn contain_letterbox_uses_bg() {
        // 2560x1600 in 200x150: image 200x125 at y=12, red bars above and below.
        let (_, img) = transform("twowings-2560x1600.jpg", "w=200&h=150&fit=contain&bg=ff0000&f=png");
        let top = img.get_pixel(100, 2).0;
        let bottom = img.get_pixel(100, 147).0;
        assert_eq!(top, [255, 0, 0, 255]);
        assert_eq!(bottom, [255, 0, 0, 255]);
        // Default bg for PNG is transparent.
        let (_, img) = transform("twowings-2560x1600.jpg", "w=200&h=150&fit=contain&f=png");
        assert_eq!(img.get_pixel(100, 2).0[3], 0);
        assert_eq!(img.get_pixel(100, 75).0[3], 255);
        // JPEG: white by default.
        let (_, img) = transform("twowings-2560x1600.jpg", "w=200&h=150&fit=contain&f=jpeg");
        let p = img.get_pixel(100, 2).0;
        assert!(p[0] > 245 && p[1] > 245 && p[2] > 245, "{p:?}");
    }

    /// Mean absolute difference per channel between two same-size RGB images.
    fn mean_diff(a: &DynamicImage, b: &DynamicImage) -> f64 {
        assert_eq!(a.dimensions(), b.dimensions());
        let (a, b) = (a.to_rgb8(), b.to_rgb8());
        let sum: u64 = a
            .as_raw()
            .iter()
            .zip(b.as_raw())
            .map(|(x, y)| u64::from(x.abs_diff(*y)))
            .sum();
        sum as f64 / a.as_raw().len() as f64
    }

    #[test]
    fn exif_orientation_is_applied() {
        let name = "hopper-exif-orientation6.jpg";
        // Reference: full decode, rotate, then resize with image's own filter.
        let mut reference = image::load_from_memory(&read(name)).unwrap();
        reference.apply_orientation(Orientation::Rotate90);
        for (q, w, h) in [
            ("w=64&h=32&fit=fill", 64, 32),
            ("w=40&h=100&fit=fill", 40, 100),
            ("w=96&h=48&fit=cover", 96, 48),
        ] {
            let (out, img) = transform(name, &format!("{q}&f=png"));
            assert_eq!((out.width, out.height), (w, h));
            let expect = if q.contains("cover") {
                // cover 128x128 -> 96x96 then crop rows 24..72
                reference
                    .resize_exact(96, 96, image::imageops::FilterType::Lanczos3)
                    .crop_imm(0, 24, 96, 48)
            } else {
                reference.resize_exact(w, h, image::imageops::FilterType::Lanczos3)
            };
            let good = mean_diff(&img, &expect);
            // and it must be clearly worse against the un-rotated image
            let unrotated = image::load_from_memory(&read(name)).unwrap();
            let wrong = if q.contains("cover") {
                unrotated
                    .resize_exact(96, 96, image::imageops::FilterType::Lanczos3)
                    .crop_imm(0, 24, 96, 48)
            } else {
                unrotated.resize_exact(w, h, image::imageops::FilterType::Lanczos3)
            };
            let bad = mean_diff(&img, &wrong);
            assert!(good < 6.0, "{q}: diff to rotated reference {good}");
            assert!(bad > 3.0 * good, "{q}: rotated {good} vs unrotated {bad}");
        }
    }

    #[test]
    fn unorient_rect_round_trips_corners() {
        // Check the rect mapping against apply_orientation on a 3x2 image whose pixels
        // encode their own stored coordinates.
        let (w, h) = (3u32, 2u32);
        let stored = image::RgbImage::from_fn(w, h, |x, y| image::Rgb([x as u8, y as u8, 0]));
        for o in [
            Orientation::NoTransforms,
            Orientation::FlipHorizontal,
            Orientation::FlipVertical,
            Orientation::Rotate180,
            Orientation::Rotate90,
            Orientation::Rotate270,
            Orientation::Rotate90FlipH,
            Orientation::Rotate270FlipH,
        ] {
            let mut shown = DynamicImage::ImageRgb8(stored.clone());
            shown.apply_orientation(o);
            let shown = shown.to_rgb8();
            for (ox, oy, p) in shown.enumerate_pixels() {
                let (x, y, rw, rh) = unorient_rect(
                    o,
                    (f64::from(w), f64::from(h)),
                    (f64::from(ox), f64::from(oy), 1.0, 1.0),
                );
                assert_eq!((rw, rh), (1.0, 1.0));
                assert_eq!((x as u8, y as u8), (p.0[0], p.0[1]), "{o:?} at {ox},{oy}");
            }
        }
    }

    #[test]
    fn alpha_survives_for_png_and_webp() {
        let (_, img) = transform("gulp-alpha-1920x1200.png", "w=300&f=png");
        assert!(img.color().has_alpha());
        assert!(min_alpha(&img) < 255);
        let (_, img) = transform("gulp-alpha-1920x1200.png", "w=300&f=webp");
        assert!(img.color().has_alpha());
        assert!(min_alpha(&img) < 255);
    }

    #[test]
    fn alpha_is_flattened_for_jpeg() {
        let (out, img) = transform("gulp-alpha-1920x1200.png", "w=300&f=jpeg");
        assert_eq!((out.width, out.height), (300, 188));
        assert!(!img.color().has_alpha());
        // Flattened onto black vs white must differ where the source is translucent.
        let (_, black) = transform("gulp-alpha-1920x1200.png", "w=300&f=jpeg&bg=000000");
        assert!(mean_diff(&img, &black) > 10.0);
    }

    #[test]
    fn gif_and_webp_sources() {
        let (out, _) = transform("hopper.gif", "w=64&f=png");
        assert_eq!((out.width, out.height), (64, 64));
        let (out, _) = transform("hopper.gif", "w=64");
        assert_eq!(out.format, OutputFormat::Gif);
        let (out, _) = transform("flower-480x360.webp", "w=240&h=240&fit=cover&f=jpeg");
        assert_eq!((out.width, out.height), (240, 240));
        let (out, _) = transform("flower-480x360.webp", "h=90");
        assert_eq!((out.width, out.height, out.format), (120, 90, OutputFormat::Webp));
        let (out, _) = transform("coffee-600x400.png", "w=150&f=auto");
        assert_eq!((out.width, out.height, out.format), (150, 100, OutputFormat::Webp));
    }

    #[test]
    fn format_only_keeps_size() {
        let (out, _) = transform("coffee-600x400.png", "f=jpeg&q=70");
        assert_eq!((out.width, out.height), (600, 400));
    }

    #[test]
    fn shrink_on_load_matches_full_decode() {
        // The scaled-IDCT path must look like the full-decode path.
        let src = read("storm-1920x1280.jpg");
        let spec = spec_for("w=240&h=160&fit=fill&f=png", &src);
        let out = run(&src, &spec, &Limits::default()).unwrap();
        let fast = image::load_from_memory(&out.bytes).unwrap();
        let slow = image::load_from_memory(&src)
            .unwrap()
            .resize_exact(240, 160, image::imageops::FilterType::Lanczos3);
        let d = mean_diff(&fast, &slow);
        assert!(d < 3.0, "mean diff {d}");
    }

    /// A PNG with a valid signature and IHDR claiming `w`×`h`, then a tiny IDAT and IEND.
    fn forged_png(w: u32, h: u32) -> Vec<u8> {
        fn chunk(out: &mut Vec<u8>, kind: &[u8], data: &[u8]) {
            out.extend_from_slice(&(data.len() as u32).to_be_bytes());
            out.extend_from_slice(kind);
            out.extend_from_slice(data);
            out.extend_from_slice(&[0, 0, 0, 0]); // CRC not checked by the probe
        }
        let mut v = b"\x89PNG\r\n\x1a\n".to_vec();
        let mut ihdr = Vec::new();
        ihdr.extend_from_slice(&w.to_be_bytes());
        ihdr.extend_from_slice(&h.to_be_bytes());
        ihdr.extend_from_slice(&[8, 6, 0, 0, 0]);
        chunk(&mut v, b"IHDR", &ihdr);
        chunk(&mut v, b"IDAT", &[0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01]);
        chunk(&mut v, b"IEND", &[]);
        v
    }

    #[test]
    fn decompression_bomb_is_rejected_from_header() {
        let bomb = forged_png(30000, 30000);
        let spec = spec_for("w=100", &bomb);
        let t = Instant::now();
        let r = run(&bomb, &spec, &Limits::default());
        assert!(matches!(r, Err(TransformError::TooLarge(_))), "{r:?}");
        // Generous bound for a loaded CI box; the header check itself takes microseconds.
        assert!(t.elapsed() < Duration::from_millis(250), "{:?}", t.elapsed());
    }

    #[test]
    fn source_bytes_and_output_limits() {
        let src = read("coffee-600x400.png");
        let spec = spec_for("w=100", &src);
        let small = Limits {
            max_source_bytes: 1000,
            ..Limits::default()
        };
        assert!(matches!(run(&src, &spec, &small), Err(TransformError::TooLarge(_))));
        // one dimension on an extreme aspect ratio: 8192 wide from 600x400 is fine,
        // but not against a tiny output limit
        let spec = spec_for("w=8192", &src);
        let tight = Limits {
            max_output_pixels: 1_000_000,
            ..Limits::default()
        };
        assert!(matches!(run(&src, &spec, &tight), Err(TransformError::TooLarge(_))));
        // WebP cannot be wider than 16383
        let tall = forged_png(1, 4000);
        let spec = spec_for("h=8192&f=webp", &tall);
        assert_eq!(spec.fit, Fit::Scale);
        assert!(matches!(
            run(&tall, &spec, &Limits::default()),
            Err(TransformError::TooLarge(_)) | Err(TransformError::Corrupt(_))
        ));
    }

    #[test]
    fn truncated_inputs_are_corrupt() {
        for name in [
            "twowings-2560x1600.jpg",
            "storm-1920x1280.jpg",
            "coffee-600x400.png",
            "gulp-alpha-1920x1200.png",
        ] {
            let src = read(name);
            let cut = &src[..src.len() * 2 / 3];
            for q in ["w=100", "w=2000&f=png"] {
                let spec = spec_for(q, cut);
                let r = run(cut, &spec, &Limits::default());
                assert!(matches!(r, Err(TransformError::Corrupt(_))), "{name}?{q}: {r:?}");
            }
        }
    }

    #[test]
    fn forged_png_with_small_claim_is_corrupt_not_panic() {
        let png = forged_png(64, 64);
        let spec = spec_for("w=10", &png);
        let r = run(&png, &spec, &Limits::default());
        assert!(matches!(r, Err(TransformError::Corrupt(_))), "{r:?}");
    }

    #[test]
    fn non_image_is_unsupported() {
        let spec = spec_for("w=10", &read("coffee-600x400.png"));
        let r = run(b"<html>not an image</html>", &spec, &Limits::default());
        assert!(matches!(r, Err(TransformError::UnsupportedSource(_))), "{r:?}");
    }

    #[test]
    fn deadline_is_enforced() {
        let src = read("coffee-600x400.png");
        let spec = spec_for("w=100", &src);
        let limits = Limits {
            deadline: Duration::ZERO,
            ..Limits::default()
        };
        assert_eq!(run(&src, &spec, &limits), Err(TransformError::Timeout));
    }

    #[test]
    fn garbage_after_magic_never_panics() {
        let spec = spec_for("w=10", &read("coffee-600x400.png"));
        let real = [
            read("hopper.gif"),
            read("hopper-exif-orientation6.jpg"),
            read("flower-480x360.webp"),
        ];
        let mut s = 0x2545F4914F6CDD1Du64;
        for src in &real {
            for _ in 0..40 {
                let mut v = src.clone();
                // flip a few bytes past the first 20
                for _ in 0..8 {
                    s ^= s << 13;
                    s ^= s >> 7;
                    s ^= s << 17;
                    let i = 20 + (s as usize) % (v.len() - 20);
                    v[i] ^= (s >> 32) as u8 | 1;
                }
                let _ = run(&v, &spec, &Limits::default());
            }
        }
    }
}
