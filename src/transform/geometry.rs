//! Pure size arithmetic: from (oriented) source dimensions and the requested box to the resize
//! target, the crop rectangle and the canvas (letterbox). No pixels here.
//!
//! Semantics follow sharp / imgproxy: `cover` fills the box and crops the centre, `contain` fits
//! inside and pads to exactly the box, `fill` stretches, `inside` fits inside and never enlarges,
//! `outside` covers the box without cropping; one dimension alone is met exactly and the other
//! follows the aspect ratio. Every dimension is at least 1 px.

use super::params::Fit;

/// An integer rectangle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rect {
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
}

/// How one source becomes one output.
///
/// 1. Scale the whole source to `resized` (conceptually).
/// 2. Keep `crop` of it (a sub-rectangle of `resized`; all of it unless `cover`).
/// 3. Place that at `offset` on a `canvas` filled with the background (`contain`; otherwise
///    the canvas is exactly the crop and the offset is 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    pub resized: (u32, u32),
    pub crop: Rect,
    pub canvas: (u32, u32),
    pub offset: (u32, u32),
}

impl Plan {
    /// The part of the source (in source pixels, fractional) that `crop` shows.
    pub fn source_crop(&self, src_w: u32, src_h: u32) -> (f64, f64, f64, f64) {
        let sx = f64::from(src_w) / f64::from(self.resized.0.max(1));
        let sy = f64::from(src_h) / f64::from(self.resized.1.max(1));
        let left = f64::from(self.crop.x) * sx;
        let top = f64::from(self.crop.y) * sy;
        let width = (f64::from(self.crop.width) * sx).min(f64::from(src_w) - left);
        let height = (f64::from(self.crop.height) * sy).min(f64::from(src_h) - top);
        (left, top, width.max(0.0), height.max(0.0))
    }

    /// Output pixel count, without overflow.
    pub fn output_pixels(&self) -> u64 {
        u64::from(self.canvas.0) * u64::from(self.canvas.1)
    }

    /// Pixels of the resize target (what the resizer allocates).
    pub fn crop_pixels(&self) -> u64 {
        u64::from(self.crop.width) * u64::from(self.crop.height)
    }
}

/// `round(a * b / c)`, at least 1, saturating at `u32::MAX`. `c` must be > 0.
fn mul_div_round(a: u32, b: u32, c: u32) -> u32 {
    let c = u64::from(c.max(1));
    let v = (u64::from(a) * u64::from(b) + c / 2) / c;
    v.clamp(1, u64::from(u32::MAX)) as u32
}

/// Whether the source is relatively wider than the box: `sw/sh >= w/h`.
fn wider_than_box(sw: u32, sh: u32, w: u32, h: u32) -> bool {
    u64::from(sw) * u64::from(h) >= u64::from(w) * u64::from(sh)
}

/// Largest aspect-preserving size that fits inside `w`×`h`.
fn fit_inside(sw: u32, sh: u32, w: u32, h: u32) -> (u32, u32) {
    if wider_than_box(sw, sh, w, h) {
        (w, mul_div_round(sh, w, sw).min(h))
    } else {
        (mul_div_round(sw, h, sh).min(w), h)
    }
}

/// Smallest aspect-preserving size that covers `w`×`h`.
fn fit_outside(sw: u32, sh: u32, w: u32, h: u32) -> (u32, u32) {
    if wider_than_box(sw, sh, w, h) {
        (mul_div_round(sw, h, sh).max(w), h)
    } else {
        (w, mul_div_round(sh, w, sw).max(h))
    }
}

fn whole(resized: (u32, u32)) -> Plan {
    Plan {
        resized,
        crop: Rect {
            x: 0,
            y: 0,
            width: resized.0,
            height: resized.1,
        },
        canvas: resized,
        offset: (0, 0),
    }
}

/// Computes the plan for a source of `src_w`×`src_h` (already oriented as displayed).
pub fn plan(src_w: u32, src_h: u32, width: Option<u32>, height: Option<u32>, fit: Fit) -> Plan {
    let (sw, sh) = (src_w.max(1), src_h.max(1));
    match (width, height) {
        (None, None) => whole((sw, sh)),
        (Some(w), None) => {
            let w = w.max(1);
            let w = if fit == Fit::Inside { w.min(sw) } else { w };
            whole((w, mul_div_round(sh, w, sw)))
        }
        (None, Some(h)) => {
            let h = h.max(1);
            let h = if fit == Fit::Inside { h.min(sh) } else { h };
            whole((mul_div_round(sw, h, sh), h))
        }
        (Some(w), Some(h)) => {
            let (w, h) = (w.max(1), h.max(1));
            match fit {
                Fit::Fill => whole((w, h)),
                Fit::Inside => {
                    if sw <= w && sh <= h {
                        whole((sw, sh))
                    } else {
                        whole(fit_inside(sw, sh, w, h))
                    }
                }
                Fit::Outside => whole(fit_outside(sw, sh, w, h)),
                // `Scale` never comes with two dimensions from `params`; treat it as cover.
                Fit::Cover | Fit::Scale => {
                    let resized = fit_outside(sw, sh, w, h);
                    Plan {
                        resized,
                        crop: Rect {
                            x: (resized.0 - w) / 2,
                            y: (resized.1 - h) / 2,
                            width: w,
                            height: h,
                        },
                        canvas: (w, h),
                        offset: (0, 0),
                    }
                }
                Fit::Contain => {
                    let resized = fit_inside(sw, sh, w, h);
                    Plan {
                        offset: ((w - resized.0) / 2, (h - resized.1) / 2),
                        canvas: (w, h),
                        ..whole(resized)
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn rect(x: u32, y: u32, width: u32, height: u32) -> Rect {
        Rect { x, y, width, height }
    }

    #[test]
    fn cover_landscape_into_landscape_box() {
        let p = plan(2560, 1600, Some(200), Some(150), Fit::Cover);
        assert_eq!(p.resized, (240, 150));
        assert_eq!(p.crop, rect(20, 0, 200, 150));
        assert_eq!((p.canvas, p.offset), ((200, 150), (0, 0)));
        let (l, t, w, h) = p.source_crop(2560, 1600);
        assert!((l - 213.33).abs() < 0.01 && t == 0.0, "{l} {t}");
        assert!((w - 2133.33).abs() < 0.01 && (h - 1600.0).abs() < 1e-9, "{w} {h}");
    }

    #[test]
    fn cover_portrait_into_landscape_box() {
        let p = plan(1000, 2000, Some(300), Some(200), Fit::Cover);
        assert_eq!(p.resized, (300, 600));
        assert_eq!(p.crop, rect(0, 200, 300, 200));
        assert_eq!(p.canvas, (300, 200));
    }

    #[test]
    fn cover_upscales_small_source() {
        let p = plan(100, 50, Some(400), Some(400), Fit::Cover);
        assert_eq!(p.resized, (800, 400));
        assert_eq!(p.crop, rect(200, 0, 400, 400));
    }

    #[test]
    fn contain_letterboxes() {
        let p = plan(2560, 1600, Some(200), Some(150), Fit::Contain);
        assert_eq!(p.resized, (200, 125));
        assert_eq!(p.crop, rect(0, 0, 200, 125));
        assert_eq!(p.canvas, (200, 150));
        assert_eq!(p.offset, (0, 12));
        let p = plan(1000, 2000, Some(300), Some(200), Fit::Contain);
        assert_eq!((p.resized, p.canvas, p.offset), ((100, 200), (300, 200), (100, 0)));
    }

    #[test]
    fn fill_stretches() {
        let p = plan(2560, 1600, Some(100), Some(300), Fit::Fill);
        assert_eq!(p.resized, (100, 300));
        assert_eq!(p.crop, rect(0, 0, 100, 300));
        assert_eq!((p.canvas, p.offset), ((100, 300), (0, 0)));
    }

    #[test]
    fn inside_fits_and_never_enlarges() {
        assert_eq!(plan(2560, 1600, Some(200), Some(150), Fit::Inside).canvas, (200, 125));
        assert_eq!(plan(1000, 2000, Some(300), Some(200), Fit::Inside).canvas, (100, 200));
        // box larger than the source: unchanged
        assert_eq!(plan(640, 480, Some(1000), Some(1000), Fit::Inside).canvas, (640, 480));
        // one dimension fits already, the other does not: shrink
        assert_eq!(plan(640, 480, Some(2000), Some(240), Fit::Inside).canvas, (320, 240));
        // one dimension given: never enlarge either
        assert_eq!(plan(640, 480, Some(2000), None, Fit::Inside).canvas, (640, 480));
        assert_eq!(plan(640, 480, None, Some(120), Fit::Inside).canvas, (160, 120));
    }

    #[test]
    fn outside_covers_without_crop() {
        let p = plan(2560, 1600, Some(200), Some(150), Fit::Outside);
        assert_eq!(p.resized, (240, 150));
        assert_eq!(p.crop, rect(0, 0, 240, 150));
        assert_eq!(p.canvas, (240, 150));
        let p = plan(1000, 2000, Some(300), Some(200), Fit::Outside);
        assert_eq!(p.canvas, (300, 600));
    }

    #[test]
    fn one_dimension_scales_exactly() {
        assert_eq!(plan(2560, 1600, Some(800), None, Fit::Scale).canvas, (800, 500));
        assert_eq!(plan(2560, 1600, None, Some(100), Fit::Scale).canvas, (160, 100));
        // enlarging allowed with Scale (sharp: width is exactly w)
        assert_eq!(plan(100, 50, Some(300), None, Fit::Scale).canvas, (300, 150));
        assert_eq!(plan(100, 50, None, None, Fit::Scale).canvas, (100, 50));
    }

    #[test]
    fn never_zero() {
        assert_eq!(plan(10000, 1, Some(10), None, Fit::Scale).canvas, (10, 1));
        assert_eq!(plan(1, 10000, Some(1), Some(1), Fit::Contain).resized, (1, 1));
        assert_eq!(plan(1, 10000, Some(100), Some(100), Fit::Inside).canvas, (1, 100));
        assert_eq!(plan(10000, 1, Some(5), Some(5), Fit::Cover).crop, rect(24997, 0, 5, 5));
    }

    proptest! {
        #[test]
        fn invariants(sw in 1u32..20000, sh in 1u32..20000, w in 1u32..=8192, h in 1u32..=8192) {
            for fit in [Fit::Cover, Fit::Contain, Fit::Fill, Fit::Inside, Fit::Outside] {
                let p = plan(sw, sh, Some(w), Some(h), fit);
                prop_assert!(p.resized.0 >= 1 && p.resized.1 >= 1);
                prop_assert!(p.crop.x + p.crop.width <= p.resized.0);
                prop_assert!(p.crop.y + p.crop.height <= p.resized.1);
                prop_assert!(p.offset.0 + p.crop.width <= p.canvas.0);
                prop_assert!(p.offset.1 + p.crop.height <= p.canvas.1);
                match fit {
                    Fit::Cover | Fit::Contain | Fit::Fill => prop_assert_eq!(p.canvas, (w, h)),
                    Fit::Inside => prop_assert!(p.canvas.0 <= w.max(1) && p.canvas.1 <= h
                        && p.canvas.0 <= sw && p.canvas.1 <= sh),
                    Fit::Outside => prop_assert!(p.canvas.0 >= w && p.canvas.1 >= h),
                    Fit::Scale => {}
                }
                let (l, t, cw, ch) = p.source_crop(sw, sh);
                prop_assert!(l >= 0.0 && t >= 0.0 && l + cw <= f64::from(sw) + 1e-6
                    && t + ch <= f64::from(sh) + 1e-6);
            }
        }
    }
}
