//! The DCT-domain part of JPEG shrink-on-load, in Rust: libjpeg's reduced inverse DCTs
//! (1×1, 2×2, 4×4 from `jidctred.c`, and the 8×8 "islow" from `jidctint.c`) and its
//! YCbCr → RGB conversion, bit-exact with libjpeg's C, over whole rows of blocks so the compiler
//! vectorises them (an AVX2 copy is picked at run time).
//!
//! Why: without NASM, libjpeg's IDCTs run as portable scalar C and cost as much as the entropy
//! decoding itself (2.4 of 9.2 ms for a 2560×1600 photo at 1/4 scale). `jpeg.rs` lets libjpeg
//! entropy-decode into coefficient arrays (`jpeg_read_coefficients`) and calls this module.
//!
//! The arithmetic is libjpeg's fixed point (13 fractional bits, 2 extra bits between passes).
//! It is written without libjpeg's zero-coefficient shortcuts, which are exact, so results
//! are identical and every block takes the same branch-free path. 32-bit wrapping arithmetic:
//! valid files stay far inside it (libjpeg's SIMD code uses the same widths); a hostile file
//! can only make wrong pixels, never a panic.

/// Fractional bits of the fixed-point constants.
const CONST_BITS: u32 = 13;
/// Extra precision carried from the first pass to the second.
const PASS1_BITS: u32 = 2;

/// A coefficient block in natural (row-major) order, as libjpeg stores it.
pub type Block = [i16; 64];

/// libjpeg's `FIX(x)`: `x` in 13-bit fixed point.
const fn fix(x: f64) -> i32 {
    (x * (1 << CONST_BITS) as f64 + 0.5) as i32
}

#[inline(always)]
fn descale(x: i32, n: u32) -> i32 {
    x.wrapping_add(1 << (n - 1)) >> n
}

/// The IDCT's last step: back to a sample around 128, clamped to 0..=255.
#[inline(always)]
fn sample(x: i32) -> u8 {
    x.wrapping_add(128).clamp(0, 255) as u8
}

#[inline(always)]
fn mul(a: i32, b: i32) -> i32 {
    a.wrapping_mul(b)
}

/// Inverse-transforms one row of blocks of one component to `size`×`size` samples a block:
/// block `i` lands at columns `i*size..` of the `size` rows `out[r*stride..]`.
/// `quant` is the component's quantisation table in natural order.
pub fn idct_row(size: usize, blocks: &[Block], quant: &[i32; 64], out: &mut [u8], stride: usize) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2 (checked just above).
            unsafe { idct_row_avx2(size, blocks, quant, out, stride) };
            return;
        }
    }
    idct_row_generic(size, blocks, quant, out, stride);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn idct_row_avx2(size: usize, blocks: &[Block], quant: &[i32; 64], out: &mut [u8], stride: usize) {
    idct_row_generic(size, blocks, quant, out, stride);
}

#[inline(always)]
fn idct_row_generic(size: usize, blocks: &[Block], quant: &[i32; 64], out: &mut [u8], stride: usize) {
    // One loop per size with a direct call, so each IDCT is inlined into (and vectorised
    // with) the AVX2 copy of this function; a function pointer would compile it without.
    match size {
        1 => {
            for (o, block) in out.iter_mut().zip(blocks) {
                *o = sample(descale(mul(i32::from(block[0]), quant[0]), 3));
            }
        }
        2 => {
            for (i, block) in blocks.iter().enumerate() {
                idct_2x2(block, quant, &mut out[i * 2..], stride);
            }
        }
        4 => {
            for (i, block) in blocks.iter().enumerate() {
                idct_4x4(block, quant, &mut out[i * 4..], stride);
            }
        }
        _ => {
            for (i, block) in blocks.iter().enumerate() {
                idct_8x8(block, quant, &mut out[i * 8..], stride);
            }
        }
    }
}

/// Dequantised coefficients in i32, the first step of every size.
#[inline(always)]
fn dequantize(block: &Block, quant: &[i32; 64]) -> [i32; 64] {
    let mut z = [0i32; 64];
    for i in 0..64 {
        z[i] = mul(i32::from(block[i]), quant[i]);
    }
    z
}

/// `jpeg_idct_2x2`: only coefficients 0, 1, 3, 5 and 7 of each dimension matter.
#[inline(always)]
fn idct_2x2(block: &Block, quant: &[i32; 64], out: &mut [u8], stride: usize) {
    const C7: i32 = -fix(0.720959822);
    const C5: i32 = fix(0.850430095);
    const C3: i32 = -fix(1.272758580);
    const C1: i32 = fix(3.624509785);
    let z = dequantize(block, quant);
    let mut ws = [[0i32; 8]; 2];
    for c in 0..8 {
        let even = z[c] << (CONST_BITS + 2);
        let odd = mul(z[56 + c], C7)
            .wrapping_add(mul(z[40 + c], C5))
            .wrapping_add(mul(z[24 + c], C3))
            .wrapping_add(mul(z[8 + c], C1));
        ws[0][c] = descale(even.wrapping_add(odd), CONST_BITS - PASS1_BITS + 2);
        ws[1][c] = descale(even.wrapping_sub(odd), CONST_BITS - PASS1_BITS + 2);
    }
    for (r, w) in ws.iter().enumerate() {
        let even = w[0] << (CONST_BITS + 2);
        let odd = mul(w[7], C7)
            .wrapping_add(mul(w[5], C5))
            .wrapping_add(mul(w[3], C3))
            .wrapping_add(mul(w[1], C1));
        let shift = CONST_BITS + PASS1_BITS + 3 + 2;
        out[r * stride] = sample(descale(even.wrapping_add(odd), shift));
        out[r * stride + 1] = sample(descale(even.wrapping_sub(odd), shift));
    }
}

/// `jpeg_idct_4x4`: coefficient 4 of each dimension is not needed.
#[inline(always)]
fn idct_4x4(block: &Block, quant: &[i32; 64], out: &mut [u8], stride: usize) {
    const E2: i32 = fix(1.847759065);
    const E6: i32 = -fix(0.765366865);
    const A7: i32 = -fix(0.211164243);
    const A5: i32 = fix(1.451774981);
    const A3: i32 = -fix(2.172734803);
    const A1: i32 = fix(1.061594337);
    const B7: i32 = -fix(0.509795579);
    const B5: i32 = -fix(0.601344887);
    const B3: i32 = fix(0.899976223);
    const B1: i32 = fix(2.562915447);
    // One 1-D 4-point output from the 8 inputs `v(0..8)`, as libjpeg writes both passes.
    #[inline(always)]
    fn pass(v: impl Fn(usize) -> i32, shift: u32) -> [i32; 4] {
        let t0 = v(0) << (CONST_BITS + 1);
        let t2 = mul(v(2), E2).wrapping_add(mul(v(6), E6));
        let (t10, t12) = (t0.wrapping_add(t2), t0.wrapping_sub(t2));
        let (z1, z2, z3, z4) = (v(7), v(5), v(3), v(1));
        let o0 = mul(z1, A7)
            .wrapping_add(mul(z2, A5))
            .wrapping_add(mul(z3, A3))
            .wrapping_add(mul(z4, A1));
        let o2 = mul(z1, B7)
            .wrapping_add(mul(z2, B5))
            .wrapping_add(mul(z3, B3))
            .wrapping_add(mul(z4, B1));
        [
            descale(t10.wrapping_add(o2), shift),
            descale(t12.wrapping_add(o0), shift),
            descale(t12.wrapping_sub(o0), shift),
            descale(t10.wrapping_sub(o2), shift),
        ]
    }
    let z = dequantize(block, quant);
    let mut ws = [[0i32; 8]; 4];
    for c in 0..8 {
        let col = pass(|r| z[r * 8 + c], CONST_BITS - PASS1_BITS + 1);
        for r in 0..4 {
            ws[r][c] = col[r];
        }
    }
    for (r, w) in ws.iter().enumerate() {
        let row = pass(|c| w[c], CONST_BITS + PASS1_BITS + 3 + 1);
        for (c, v) in row.into_iter().enumerate() {
            out[r * stride + c] = sample(v);
        }
    }
}

/// `jpeg_idct_islow`: the full 8×8 (Loeffler–Ligtenberg–Moschytz, as libjpeg 6b).
#[inline(always)]
fn idct_8x8(block: &Block, quant: &[i32; 64], out: &mut [u8], stride: usize) {
    #[inline(always)]
    fn pass(v: impl Fn(usize) -> i32, shift: u32) -> [i32; 8] {
        // even part
        let (z2, z3) = (v(2), v(6));
        let z1 = mul(z2.wrapping_add(z3), fix(0.541196100));
        let t2 = z1.wrapping_add(mul(z3, -fix(1.847759065)));
        let t3 = z1.wrapping_add(mul(z2, fix(0.765366865)));
        let (z2, z3) = (v(0), v(4));
        let t0 = z2.wrapping_add(z3) << CONST_BITS;
        let t1 = z2.wrapping_sub(z3) << CONST_BITS;
        let (t10, t13) = (t0.wrapping_add(t3), t0.wrapping_sub(t3));
        let (t11, t12) = (t1.wrapping_add(t2), t1.wrapping_sub(t2));
        // odd part
        let (o0, o1, o2, o3) = (v(7), v(5), v(3), v(1));
        let (z1, z2, z3, z4) = (
            o0.wrapping_add(o3),
            o1.wrapping_add(o2),
            o0.wrapping_add(o2),
            o1.wrapping_add(o3),
        );
        let z5 = mul(z3.wrapping_add(z4), fix(1.175875602));
        let o0 = mul(o0, fix(0.298631336));
        let o1 = mul(o1, fix(2.053119869));
        let o2 = mul(o2, fix(3.072711026));
        let o3 = mul(o3, fix(1.501321110));
        let z1 = mul(z1, -fix(0.899976223));
        let z2 = mul(z2, -fix(2.562915447));
        let z3 = mul(z3, -fix(1.961570560)).wrapping_add(z5);
        let z4 = mul(z4, -fix(0.390180644)).wrapping_add(z5);
        let o0 = o0.wrapping_add(z1).wrapping_add(z3);
        let o1 = o1.wrapping_add(z2).wrapping_add(z4);
        let o2 = o2.wrapping_add(z2).wrapping_add(z3);
        let o3 = o3.wrapping_add(z1).wrapping_add(z4);
        [
            descale(t10.wrapping_add(o3), shift),
            descale(t11.wrapping_add(o2), shift),
            descale(t12.wrapping_add(o1), shift),
            descale(t13.wrapping_add(o0), shift),
            descale(t13.wrapping_sub(o0), shift),
            descale(t12.wrapping_sub(o1), shift),
            descale(t11.wrapping_sub(o2), shift),
            descale(t10.wrapping_sub(o3), shift),
        ]
    }
    let z = dequantize(block, quant);
    let mut ws = [[0i32; 8]; 8];
    for c in 0..8 {
        let col = pass(|r| z[r * 8 + c], CONST_BITS - PASS1_BITS);
        for r in 0..8 {
            ws[r][c] = col[r];
        }
    }
    for (r, w) in ws.iter().enumerate() {
        let row = pass(|c| w[c], CONST_BITS + PASS1_BITS + 3);
        for (c, v) in row.into_iter().enumerate() {
            out[r * stride + c] = sample(v);
        }
    }
}

/// libjpeg's horizontal 2× chroma upsampling of one row (4:2:2 sources): `fancy` is
/// `h2v1_fancy_upsample` (3/4 nearer + 1/4 further sample; libjpeg's choice when the output is
/// scaled to 2/8 or more), else `h2v1_upsample` (each sample twice; its choice at 1/8).
/// `out` has twice `input`'s length. Like libjpeg, rows of two samples or fewer are never
/// upsampled the fancy way.
pub fn upsample_h2(input: &[u8], out: &mut [u8], fancy: bool) {
    let n = input.len();
    if !fancy || n <= 2 {
        for (pair, &v) in out.chunks_exact_mut(2).zip(input) {
            pair.fill(v);
        }
        return;
    }
    let at = |i: usize| u16::from(input[i]);
    out[0] = input[0];
    out[1] = ((at(0) * 3 + at(1) + 2) >> 2) as u8;
    for i in 1..n - 1 {
        let near = at(i) * 3;
        out[2 * i] = ((near + at(i - 1) + 1) >> 2) as u8;
        out[2 * i + 1] = ((near + at(i + 1) + 2) >> 2) as u8;
    }
    out[2 * n - 2] = ((at(n - 1) * 3 + at(n - 2) + 1) >> 2) as u8;
    out[2 * n - 1] = input[n - 1];
}

/// libjpeg's `ycc_rgb_convert` for one row: `out` gets `y.len()` RGB pixels.
pub fn ycc_to_rgb(y: &[u8], cb: &[u8], cr: &[u8], out: &mut [u8]) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2 (checked just above).
            unsafe { ycc_to_rgb_avx2(y, cb, cr, out) };
            return;
        }
    }
    ycc_to_rgb_generic(y, cb, cr, out);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn ycc_to_rgb_avx2(y: &[u8], cb: &[u8], cr: &[u8], out: &mut [u8]) {
    ycc_to_rgb_generic(y, cb, cr, out);
}

#[inline(always)]
fn ycc_to_rgb_generic(y: &[u8], cb: &[u8], cr: &[u8], out: &mut [u8]) {
    // 16-bit fixed point, as jdcolor.c builds its tables.
    const HALF: i32 = 1 << 15;
    const R_CR: i32 = 91881; // FIX(1.40200)
    const B_CB: i32 = 116130; // FIX(1.77200)
    const G_CR: i32 = -46802; // -FIX(0.71414)
    const G_CB: i32 = -22554; // -FIX(0.34414)
    let clamp = |v: i32| v.clamp(0, 255) as u8;
    for (((px, &y), &cb), &cr) in out.chunks_exact_mut(3).zip(y).zip(cb).zip(cr) {
        let (y, cb, cr) = (i32::from(y), i32::from(cb) - 128, i32::from(cr) - 128);
        px[0] = clamp(y + ((R_CR * cr + HALF) >> 16));
        px[1] = clamp(y + ((G_CB * cb + HALF + G_CR * cr) >> 16));
        px[2] = clamp(y + ((B_CB * cb + HALF) >> 16));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block_with(dc: i16, ac: &[(usize, i16)]) -> Block {
        let mut b = [0i16; 64];
        b[0] = dc;
        for &(i, v) in ac {
            b[i] = v;
        }
        b
    }

    /// A flat block decodes to one value at every size, and sizes agree on it.
    #[test]
    fn dc_only_blocks_are_flat_at_every_size() {
        let quant = [16i32; 64];
        for dc in [-64i16, -8, 0, 5, 40, 63] {
            let b = [block_with(dc, &[])];
            let mut seen = Vec::new();
            for size in [1usize, 2, 4, 8] {
                let mut out = vec![0u8; size * size];
                idct_row(size, &b, &quant, &mut out, size);
                assert!(out.iter().all(|&v| v == out[0]), "size {size}: {out:?}");
                seen.push(out[0]);
            }
            // dc*16/8 + 128, clamped: the mean of the block
            let mean = (i32::from(dc) * 16 / 8 + 128).clamp(0, 255);
            for v in seen {
                assert!((i32::from(v) - mean).abs() <= 1, "dc {dc}: {v} vs {mean}");
            }
        }
    }

    /// The reduced sizes are averages of the full one: a 2×2 output sample is close to the mean
    /// of the 4×4 quadrant of the 8×8 output it stands for.
    #[test]
    fn reduced_sizes_approximate_box_averages_of_the_full_idct() {
        let quant = [4i32; 64];
        let b = [block_with(10, &[(1, -30), (8, 22), (9, 9), (3, 7), (24, -5), (17, 4)])];
        let mut full = vec![0u8; 64];
        idct_row(8, &b, &quant, &mut full, 8);
        for size in [1usize, 2, 4] {
            let mut out = vec![0u8; size * size];
            idct_row(size, &b, &quant, &mut out, size);
            let cell = 8 / size;
            for r in 0..size {
                for c in 0..size {
                    let mut sum = 0u32;
                    for y in 0..cell {
                        for x in 0..cell {
                            sum += u32::from(full[(r * cell + y) * 8 + c * cell + x]);
                        }
                    }
                    let mean = sum as f64 / (cell * cell) as f64;
                    let got = f64::from(out[r * size + c]);
                    assert!((got - mean).abs() < 6.0, "size {size} ({r},{c}): {got} vs {mean}");
                }
            }
        }
    }

    #[test]
    fn hostile_coefficients_do_not_panic() {
        let quant = [i32::from(u16::MAX); 64];
        let b = [[i16::MIN; 64], [i16::MAX; 64]];
        for size in [1usize, 2, 4, 8] {
            let mut out = vec![0u8; 2 * size * size];
            idct_row(size, &b, &quant, &mut out, 2 * size);
        }
    }

    #[test]
    fn ycc_conversion_matches_known_colours() {
        let mut out = [0u8; 9];
        // white, black, and JPEG's pure red (Y 76, Cb 85, Cr 255)
        ycc_to_rgb(&[255, 0, 76], &[128, 128, 85], &[128, 128, 255], &mut out);
        assert_eq!(&out[0..3], &[255, 255, 255]);
        assert_eq!(&out[3..6], &[0, 0, 0]);
        assert!(out[6] >= 250 && out[7] <= 3 && out[8] <= 3, "{:?}", &out[6..9]);
    }
}
