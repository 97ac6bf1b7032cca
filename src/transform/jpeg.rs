//! JPEG decoding with DCT-domain shrink-on-load, and JPEG encoding.
//!
//! Decoding goes through libjpeg's API as implemented by mozjpeg (libjpeg-turbo's descendant),
//! vendored by the `mozjpeg-sys` crate and compiled by the `cc` crate with the system C
//! compiler: no CMake, no NASM. Its scaled IDCT (1/8, 2/8, 4/8) is libvips' shrink-on-load.
//! libjpeg-turbo's x86 SIMD is NASM assembly, so the default build runs libjpeg's portable C;
//! the optional cargo feature `nasm-simd` assembles it (needs `nasm` on PATH at build time).
//!
//! Where a path is faster without SIMD, it is taken (measured, see ARCHITECTURE.md):
//! full-size decodes go to `image`'s decoder (zune-jpeg, pure Rust with runtime-detected AVX2)
//! and encoding to `jpeg-encoder` (pure Rust, runtime AVX2); with `nasm-simd` libjpeg does both.
//!
//! libjpeg reports fatal errors through `error_exit`, which must not return: ours unwinds
//! (`extern "C-unwind"`; mozjpeg-sys compiles the C with `-fexceptions`) to a `catch_unwind`
//! in this module, and the decompressor's `Drop` frees everything libjpeg allocated.

use std::ffi::{c_int, c_long, c_ulong};
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};

use mozjpeg_sys as ffi;

use super::codec::{Decoded, Pixels};
use super::error::TransformError;
use super::scaled_idct;

/// Whether libjpeg was built with its SIMD (the `nasm-simd` feature).
pub const SIMD: bool = cfg!(feature = "nasm-simd");

/// Largest whole-image coefficient buffer the Rust-IDCT path takes on for a baseline
/// (single-scan) file, which libjpeg would otherwise decode in a stream of MCU rows: 64 MiB
/// is a 21 MP 4:2:0 photo. Bigger files take libjpeg's own streaming IDCT (progressive files
/// hold the buffer either way).
const COEFFICIENT_PATH_MAX_BYTES: u64 = 64 << 20;

/// Progressive scans decoded before a file is called corrupt (libjpeg-turbo's `-maxscans`
/// guard against scan bombs; real files have about ten).
const MAX_SCANS: c_int = 500;

/// Why libjpeg stopped: the payload our `error_exit` and progress monitor unwind with.
enum Stop {
    /// libjpeg's own fatal error, with its message.
    Libjpeg(String),
    /// More progressive scans than [`MAX_SCANS`].
    TooManyScans,
}

unsafe extern "C-unwind" fn error_exit(cinfo: &mut ffi::jpeg_common_struct) {
    let mut message = String::from("libjpeg error");
    // SAFETY: libjpeg calls this with the cinfo whose `err` we installed; format_message
    // writes at most JMSG_LENGTH_MAX (80) bytes, NUL-terminated.
    unsafe {
        if let Some(format) = cinfo.err.as_ref().and_then(|e| e.format_message) {
            let buffer = [0u8; 80];
            format(cinfo, &buffer);
            let end = buffer.iter().position(|&b| b == 0).unwrap_or(buffer.len());
            message = String::from_utf8_lossy(&buffer[..end]).into_owned();
        }
    }
    // resume_unwind, not panic!: no panic hook, no log line for a bad upload.
    resume_unwind(Box::new(Stop::Libjpeg(message)));
}

/// Counts warnings (recoverable damage) instead of printing them.
unsafe extern "C-unwind" fn emit_message(cinfo: &mut ffi::jpeg_common_struct, level: c_int) {
    // SAFETY: `err` points at the error manager owned by our Decompressor/Compressor.
    if level < 0 {
        if let Some(err) = unsafe { cinfo.err.as_mut() } {
            err.num_warnings += 1;
        }
    }
}

/// libjpeg's progress hook, used as a scan counter.
unsafe extern "C-unwind" fn check_scans(cinfo: &mut ffi::jpeg_common_struct) {
    if cinfo.is_decompressor == 0 {
        return;
    }
    // SAFETY: a decompressor's common struct is the first field of jpeg_decompress_struct.
    let scans =
        unsafe { (*(cinfo as *mut ffi::jpeg_common_struct as *const ffi::jpeg_decompress_struct)).input_scan_number };
    if scans > MAX_SCANS {
        resume_unwind(Box::new(Stop::TooManyScans));
    }
}

fn new_error_mgr() -> Box<ffi::jpeg_error_mgr> {
    // SAFETY: jpeg_std_error fills in every field of a zeroed manager.
    let mut err: Box<ffi::jpeg_error_mgr> = Box::new(unsafe { std::mem::zeroed() });
    unsafe { ffi::jpeg_std_error(&mut err) };
    err.error_exit = Some(error_exit);
    err.emit_message = Some(emit_message);
    err
}

/// Runs libjpeg calls, turning our unwinding payloads back into values; any other panic
/// continues (the caller of the transform contains it).
fn guarded<T>(f: impl FnOnce() -> T) -> Result<T, Stop> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|payload| match payload.downcast::<Stop>() {
        Ok(stop) => *stop,
        Err(other) => resume_unwind(other),
    })
}

/// How one component's coefficients become output samples (see `Decompressor::idct_plan`).
struct ComponentPlan {
    /// IDCT output size per block: 1, 2, 4 or 8.
    size: usize,
    /// Whether rows are upsampled 2× horizontally after the IDCT (4:2:2 chroma).
    up_h: bool,
    /// libjpeg's `downsampled_width`: the real samples of a row before upsampling (its
    /// upsampler replicates the edge beyond them).
    samples: usize,
}

/// A libjpeg decompressor over an in-memory file. Boxed parts stay put: libjpeg keeps raw
/// pointers to the error manager and the progress monitor.
struct Decompressor {
    cinfo: Box<ffi::jpeg_decompress_struct>,
    err: Box<ffi::jpeg_error_mgr>,
    progress: Box<ffi::jpeg_progress_mgr>,
}

impl Decompressor {
    /// Must run inside [`guarded`]: creating can already fail.
    fn new(input: &[u8]) -> Decompressor {
        let mut err = new_error_mgr();
        let progress = Box::new(ffi::jpeg_progress_mgr {
            progress_monitor: Some(check_scans),
            pass_counter: 0,
            pass_limit: 0,
            completed_passes: 0,
            total_passes: 0,
        });
        // SAFETY: a zeroed struct with `err` set is what jpeg_CreateDecompress expects.
        let mut cinfo: Box<ffi::jpeg_decompress_struct> = Box::new(unsafe { std::mem::zeroed() });
        cinfo.common.err = &mut *err;
        let mut d = Decompressor { cinfo, err, progress };
        // SAFETY: the struct is ours and pinned in its box; `input` outlives the decompressor
        // (both live within one call of `decode_scaled`).
        unsafe {
            ffi::jpeg_create_decompress(&mut *d.cinfo);
            d.cinfo.common.progress = &mut *d.progress;
            ffi::jpeg_mem_src(&mut d.cinfo, input.as_ptr(), input.len() as c_ulong);
        }
        d
    }

    fn warnings(&self) -> c_long {
        self.err.num_warnings
    }

    fn components(&self) -> &[ffi::jpeg_component_info] {
        let n = usize::try_from(self.cinfo.num_components).unwrap_or(0);
        if self.cinfo.comp_info.is_null() || n == 0 {
            return &[];
        }
        // SAFETY: after jpeg_read_header, comp_info holds num_components entries.
        unsafe { std::slice::from_raw_parts(self.cinfo.comp_info, n) }
    }

    /// Bytes libjpeg holds for a multi-scan (progressive) image's whole-image DCT coefficient
    /// buffer: 2 bytes a coefficient, every component padded to whole MCUs. It is kept at full
    /// resolution whatever the scaling factor.
    fn coefficient_bytes(&self) -> u64 {
        self.components()
            .iter()
            .map(|c| {
                let pad = |blocks: u32, factor: c_int| {
                    let f = u64::try_from(factor.max(1)).unwrap_or(1);
                    u64::from(blocks).div_ceil(f) * f
                };
                pad(c.width_in_blocks, c.h_samp_factor) * pad(c.height_in_blocks, c.v_samp_factor) * 128
            })
            .sum()
    }

    /// How each component reaches the output at `k`/8 (1, 2 or 4) without libjpeg's IDCT:
    /// libjpeg's own choice of IDCT size (it scales subsampled chroma up in the IDCT), then,
    /// for 4:2:2, libjpeg's horizontal 2× upsampling. Accepted for YCbCr and greyscale with
    /// 4:4:4, 4:2:0 and 4:2:2 sampling; anything else (full size, 4:4:0, 4:1:1, other colour
    /// spaces) returns `None` and libjpeg's scanline path decodes it.
    fn idct_plan(&self, k: u32) -> Option<Vec<ComponentPlan>> {
        use ffi::J_COLOR_SPACE::{JCS_YCbCr, JCS_GRAYSCALE};
        let comps = self.components();
        let colour = matches!(
            (self.cinfo.jpeg_color_space, comps.len()),
            (JCS_YCbCr, 3) | (JCS_GRAYSCALE, 1)
        );
        if !colour || !matches!(k, 1 | 2 | 4) {
            return None;
        }
        let (hmax, vmax) = (self.cinfo.max_h_samp_factor, self.cinfo.max_v_samp_factor);
        let k = k as c_int;
        let width = u64::from(self.cinfo.image_width);
        comps
            .iter()
            .map(|c| {
                let (hc, vc) = (c.h_samp_factor, c.v_samp_factor);
                if hc < 1 || vc < 1 {
                    return None;
                }
                let mut size = k;
                while size < 8 && (hmax * k) % (hc * size * 2) == 0 && (vmax * k) % (vc * size * 2) == 0 {
                    size *= 2;
                }
                if vc * size != vmax * k {
                    return None; // vertical upsampling (4:4:0): libjpeg's, not ours
                }
                let up_h = match hmax * k {
                    n if n == hc * size => false,
                    n if n == 2 * hc * size => true,
                    _ => return None,
                };
                let samples = (width * hc as u64 * size as u64).div_ceil(hmax as u64 * 8);
                Some(ComponentPlan {
                    size: size as usize,
                    up_h,
                    samples: usize::try_from(samples).ok()?,
                })
            })
            .collect()
    }

    /// libjpeg decodes to RGB scanlines itself (IDCT, upsampling, colour conversion).
    fn decode_via_scanlines(&mut self, w: u32, h: u32) -> Option<Vec<u8>> {
        let stride = w as usize * 3;
        let len = stride * h as usize;
        let mut data: Vec<u8> = Vec::with_capacity(len);
        // SAFETY: each call writes one row of `stride` bytes at its row of `data`'s capacity.
        unsafe {
            ffi::jpeg_start_decompress(&mut self.cinfo);
            let base = data.as_mut_ptr();
            while self.cinfo.output_scanline < h {
                let mut row = base.add(self.cinfo.output_scanline as usize * stride);
                if ffi::jpeg_read_scanlines(&mut self.cinfo, &mut row, 1) != 1 {
                    return None; // suspended: cannot happen with a memory source; be safe
                }
            }
            // libjpeg wrote all `h` rows.
            data.set_len(len);
        }
        Some(data)
    }

    /// libjpeg entropy-decodes into coefficient arrays; `scaled_idct` does the rest, one MCU
    /// row at a time: each component's strip at its IDCT size, then per output row the
    /// upsampling libjpeg would do and the colour conversion. Strips, not planes: every large
    /// allocation costs page faults on each decode (measured: planes made 1/2 scale 2× slower).
    /// `fancy`: libjpeg's triangle upsampling (it uses it whenever the output is not 1/8).
    fn decode_via_coefficients(&mut self, plan: &[ComponentPlan], fancy: bool, w: u32, h: u32) -> Option<Vec<u8>> {
        struct Component<'p> {
            plan: &'p ComponentPlan,
            array: *mut ffi::jvirt_barray_control,
            quant: [i32; 64],
            /// Blocks a row that cover what the output needs, and block rows in the image.
            blocks: usize,
            block_rows: usize,
            rows_per_mcu: usize,
            stride: usize,
            /// This MCU row's samples.
            samples: Vec<u8>,
            /// One upsampled row (horizontally upsampled components only).
            wide: Vec<u8>,
        }
        let (w, h) = (w as usize, h as usize);
        let infos: Vec<(u32, u32, c_int, c_int)> = self
            .components()
            .iter()
            .map(|c| (c.width_in_blocks, c.height_in_blocks, c.v_samp_factor, c.quant_tbl_no))
            .collect();
        // SAFETY: libjpeg's documented transcoding entry point, after jpeg_read_header.
        let arrays = unsafe { ffi::jpeg_read_coefficients(&mut self.cinfo) };
        let access = unsafe { self.cinfo.common.mem.as_ref() }.and_then(|m| m.access_virt_barray)?;
        if arrays.is_null() {
            return None;
        }
        let cinfo = &mut self.cinfo;
        // IDCT of block rows `rows` of `c` into `out` (`stride` wide, `size` rows a block row).
        let mut transform = |c: &Component, rows: std::ops::Range<usize>, out: &mut [u8]| {
            let band = c.stride * c.plan.size;
            for (block_row, out) in rows.zip(out.chunks_exact_mut(band)) {
                // SAFETY: one row (within the array's rows) of a libjpeg virtual array, holding
                // at least `width_in_blocks` >= `c.blocks` blocks.
                let blocks = unsafe {
                    let ptrs = access(&mut cinfo.common, c.array, block_row as ffi::JDIMENSION, 1, 0);
                    std::slice::from_raw_parts(*ptrs, c.blocks)
                };
                scaled_idct::idct_row(c.plan.size, blocks, &c.quant, out, c.stride);
            }
        };
        let mut comps = Vec::with_capacity(infos.len());
        for (i, (&(wide, high, v, qno), cp)) in infos.iter().zip(plan).enumerate() {
            let table = *cinfo.quant_tbl_ptrs.get(usize::try_from(qno).ok()?)?;
            // SAFETY: a non-null table pointer is one of libjpeg's, alive until destroy.
            let table = unsafe { table.as_ref() }?;
            // What the output needs: all of it, or the real (pre-upsampling) samples.
            let need_w = if cp.up_h { cp.samples } else { w };
            let blocks = need_w.div_ceil(cp.size).min(wide as usize);
            let block_rows = h.div_ceil(cp.size).min(high as usize);
            let rows_per_mcu = usize::try_from(v).ok()?;
            let stride = blocks * cp.size;
            comps.push(Component {
                plan: cp,
                // SAFETY: jpeg_read_coefficients returns one array per component.
                array: unsafe { *arrays.add(i) },
                quant: std::array::from_fn(|j| i32::from(table.quantval[j])),
                blocks,
                block_rows,
                rows_per_mcu,
                stride,
                samples: vec![0u8; stride * cp.size * rows_per_mcu],
                wide: vec![0u8; if cp.up_h { (2 * cp.samples).max(w) } else { 0 }],
            });
        }
        // Every component fills the same output rows per MCU row (idct_plan checked it).
        let strip_rows = comps.first()?.rows_per_mcu * comps.first()?.plan.size;
        let mut data = vec![0u8; w * h * 3];
        for (mcu_row, out_rows) in data.chunks_mut(strip_rows * w * 3).enumerate() {
            for c in comps.iter_mut() {
                let first = mcu_row * c.rows_per_mcu;
                let rows = first.min(c.block_rows)..(first + c.rows_per_mcu).min(c.block_rows);
                let mut strip = std::mem::take(&mut c.samples);
                transform(c, rows, &mut strip);
                c.samples = strip;
            }
            for (dy, rgb) in out_rows.chunks_exact_mut(w * 3).enumerate() {
                for c in comps.iter_mut().filter(|c| c.plan.up_h) {
                    let n = c.plan.samples;
                    let row = &c.samples[dy * c.stride..][..n];
                    scaled_idct::upsample_h2(row, &mut c.wide[..2 * n], fancy);
                }
                fn row<'c>(c: &'c Component, dy: usize, w: usize) -> &'c [u8] {
                    if c.plan.up_h {
                        &c.wide[..w]
                    } else {
                        &c.samples[dy * c.stride..][..w]
                    }
                }
                match comps.as_slice() {
                    [luma, cb, cr] => scaled_idct::ycc_to_rgb(row(luma, dy, w), row(cb, dy, w), row(cr, dy, w), rgb),
                    [grey] => {
                        for (px, &v) in rgb.chunks_exact_mut(3).zip(row(grey, dy, w)) {
                            px.fill(v);
                        }
                    }
                    _ => return None,
                }
            }
        }
        Some(data)
    }

    /// The ICC profile from the saved APP2 `ICC_PROFILE` markers: chunks numbered 1..=count,
    /// each exactly once. Anything else means no profile.
    fn icc_profile(&self) -> Option<Vec<u8>> {
        let mut chunks: Vec<(u8, u8, &[u8])> = Vec::new();
        let mut marker = self.cinfo.marker_list;
        // SAFETY: libjpeg's saved-marker list, alive until the decompressor is destroyed.
        while let Some(m) = unsafe { marker.as_ref() } {
            let data = if m.data.is_null() {
                &[][..]
            } else {
                unsafe { std::slice::from_raw_parts(m.data, m.data_length as usize) }
            };
            if m.marker == 0xE2 && data.len() > 14 && data.starts_with(b"ICC_PROFILE\0") {
                chunks.push((data[12], data[13], &data[14..]));
            }
            marker = m.next;
        }
        let count = chunks.first()?.1;
        if count == 0 || chunks.len() != usize::from(count) || chunks.iter().any(|c| c.1 != count) {
            return None;
        }
        chunks.sort_by_key(|c| c.0);
        if chunks.iter().enumerate().any(|(i, c)| usize::from(c.0) != i + 1) {
            return None;
        }
        Some(chunks.iter().flat_map(|c| c.2.iter().copied()).collect())
    }
}

impl Drop for Decompressor {
    fn drop(&mut self) {
        // SAFETY: frees libjpeg's pools; a no-op when creation never completed (mem is NULL).
        unsafe { ffi::jpeg_destroy_decompress(&mut self.cinfo) };
    }
}

/// Decodes a JPEG with libjpeg at `k`/8 scale (8: full size) to RGB.
///
/// `Ok(None)` leaves the file to `image`'s decoder: CMYK/YCCK, anything libjpeg rejects, and
/// anything it warns about (recoverable damage such as extraneous bytes before a marker), so
/// such files keep the lenient-or-`Corrupt` outcome of that decoder. A progressive file whose
/// coefficient buffer would exceed `max_alloc` also goes there (its own limits decide).
pub fn decode_scaled(input: &[u8], k: u32, max_alloc: u64) -> Result<Option<Decoded>, TransformError> {
    decode_with(input, k, max_alloc, rust_idct_pays(k))
}

/// [`decode_scaled`] with libjpeg's own IDCT and colour conversion, never the Rust ones: the
/// reference the benchmark (`benches/transform.rs`) and the bit-exactness test compare with.
#[doc(hidden)]
pub fn decode_scaled_libjpeg_idct(input: &[u8], k: u32, max_alloc: u64) -> Result<Option<Decoded>, TransformError> {
    decode_with(input, k, max_alloc, false)
}

/// [`decode_scaled`], optionally never taking the coefficient path.
fn decode_with(input: &[u8], k: u32, max_alloc: u64, coefficients: bool) -> Result<Option<Decoded>, TransformError> {
    let mut result = Ok(None);
    let outcome = guarded(|| {
        let mut d = Decompressor::new(input);
        // SAFETY: every call below is on our live decompressor, in libjpeg's documented order.
        unsafe {
            ffi::jpeg_save_markers(&mut d.cinfo, 0xE2, 0xFFFF);
            ffi::jpeg_read_header(&mut d.cinfo, 1);
        }
        if matches!(
            d.cinfo.jpeg_color_space,
            ffi::J_COLOR_SPACE::JCS_CMYK | ffi::J_COLOR_SPACE::JCS_YCCK
        ) {
            return;
        }
        d.cinfo.out_color_space = ffi::J_COLOR_SPACE::JCS_RGB;
        if k < 8 {
            d.cinfo.scale_num = k.max(1);
            d.cinfo.scale_denom = 8;
        }
        unsafe { ffi::jpeg_calc_output_dimensions(&mut d.cinfo) };
        let (w, h) = (d.cinfo.output_width, d.cinfo.output_height);
        // Refuse before allocating: the RGB output, plus (progressive) libjpeg's coefficient
        // buffer, must fit in max_alloc.
        let out_len = u64::from(w) * u64::from(h) * 3;
        if out_len == 0 || out_len > max_alloc {
            result = Err(TransformError::TooLarge(format!(
                "jpeg: decoding {w}x{h} needs more than the {max_alloc}-byte allocation limit"
            )));
            return;
        }
        let multi_scan = unsafe { ffi::jpeg_has_multiple_scans(&d.cinfo) } != 0;
        if multi_scan && out_len.saturating_add(d.coefficient_bytes()) > max_alloc {
            return;
        }
        // libjpeg's own allocator bound, a second fence behind the check above.
        if let Some(mem) = unsafe { d.cinfo.common.mem.as_mut() } {
            mem.max_memory_to_use = c_long::try_from(max_alloc).unwrap_or(c_long::MAX);
        }
        let Ok(out_len) = usize::try_from(out_len) else {
            return;
        };
        let coefficients_fit = multi_scan
            || (d.coefficient_bytes() <= COEFFICIENT_PATH_MAX_BYTES
                && (out_len as u64).saturating_add(d.coefficient_bytes()) <= max_alloc);
        let data = match d.idct_plan(k) {
            Some(plan) if coefficients && coefficients_fit => d.decode_via_coefficients(&plan, k > 1, w, h),
            _ => d.decode_via_scanlines(w, h),
        };
        let Some(data) = data else {
            return;
        };
        if d.warnings() > 0 {
            return;
        }
        result = Ok(Some(Decoded {
            pixels: Pixels {
                width: w,
                height: h,
                alpha: false,
                data,
            },
            icc: d.icc_profile(),
        }));
    });
    match outcome {
        Ok(()) => result,
        Err(Stop::TooManyScans) => Err(TransformError::Corrupt(format!(
            "jpeg: more than {MAX_SCANS} progressive scans"
        ))),
        Err(Stop::Libjpeg(message)) => {
            tracing::debug!(%message, "libjpeg declined the file; image's decoder takes it");
            Ok(None)
        }
    }
}

/// Encodes RGB pixels. Chroma subsampling as libvips chooses it: 4:2:0 below quality 90,
/// 4:4:4 from 90 up. `icc` is embedded as APP2 segments.
pub fn encode(px: &Pixels, quality: u8, icc: Option<&[u8]>) -> Result<Vec<u8>, TransformError> {
    if px.alpha || px.data.len() as u64 != u64::from(px.width) * u64::from(px.height) * 3 {
        return Err(TransformError::Internal(
            "jpeg encoder needs RGB pixels of the stated size".into(),
        ));
    }
    let quality = quality.clamp(1, 100);
    let jpeg = if cfg!(feature = "nasm-simd") {
        encode_rgb_libjpeg(px, quality)?
    } else {
        encode_rgb_jpeg_encoder(px, quality)?
    };
    Ok(match icc {
        Some(icc) => with_icc(&jpeg, icc),
        None => jpeg,
    })
}

#[doc(hidden)]
pub fn encode_rgb_jpeg_encoder(px: &Pixels, quality: u8) -> Result<Vec<u8>, TransformError> {
    use jpeg_encoder::{ChromaSubsamplingMethod, ColorType, Encoder, SamplingFactor};
    let (Ok(w), Ok(h)) = (u16::try_from(px.width), u16::try_from(px.height)) else {
        return Err(TransformError::Internal("jpeg output larger than 65535 px".into()));
    };
    let mut out = Vec::new();
    let mut enc = Encoder::new(&mut out, quality);
    enc.set_sampling_factor(if quality >= 90 {
        SamplingFactor::F_1_1
    } else {
        SamplingFactor::F_2_2
    });
    // libjpeg's box-averaged chroma, not the encoder's default top-left pick.
    enc.set_chroma_subsampling_method(ChromaSubsamplingMethod::Average);
    enc.encode(&px.data, w, h, ColorType::Rgb)
        .map_err(|e| TransformError::Internal(format!("jpeg encoding failed: {e}")))?;
    Ok(out)
}

#[doc(hidden)]
pub fn encode_rgb_libjpeg(px: &Pixels, quality: u8) -> Result<Vec<u8>, TransformError> {
    struct Compressor {
        cinfo: Box<ffi::jpeg_compress_struct>,
        _err: Box<ffi::jpeg_error_mgr>,
        out: *mut u8,
    }
    impl Drop for Compressor {
        fn drop(&mut self) {
            // SAFETY: frees libjpeg's pools and the buffer jpeg_mem_dest malloc'ed.
            unsafe {
                ffi::jpeg_destroy_compress(&mut self.cinfo);
                if !self.out.is_null() {
                    libc::free(self.out.cast());
                }
            }
        }
    }
    let stride = px.width as usize * 3;
    guarded(|| {
        let mut err = new_error_mgr();
        let mut cinfo: Box<ffi::jpeg_compress_struct> = Box::new(unsafe { std::mem::zeroed() });
        cinfo.common.err = &mut *err;
        let mut c = Compressor {
            cinfo,
            _err: err,
            out: std::ptr::null_mut(),
        };
        let mut out_len: c_ulong = 0;
        // SAFETY: libjpeg's documented compression sequence on our own struct; every row
        // pointer points into `px.data`, which holds `height` rows of `stride` bytes.
        unsafe {
            ffi::jpeg_create_compress(&mut *c.cinfo);
            ffi::jpeg_mem_dest(&mut c.cinfo, &mut c.out, &mut out_len);
            c.cinfo.image_width = px.width;
            c.cinfo.image_height = px.height;
            c.cinfo.input_components = 3;
            c.cinfo.in_color_space = ffi::J_COLOR_SPACE::JCS_RGB;
            // libjpeg-turbo's defaults (baseline, no trellis): the speed we want here.
            ffi::jpeg_c_set_int_param(
                &mut c.cinfo,
                ffi::J_INT_PARAM::JINT_COMPRESS_PROFILE,
                ffi::JCP_FASTEST as c_int,
            );
            ffi::jpeg_set_defaults(&mut c.cinfo);
            ffi::jpeg_set_quality(&mut c.cinfo, c_int::from(quality), 1);
            if quality >= 90 {
                let comps = std::slice::from_raw_parts_mut(c.cinfo.comp_info, 3);
                for comp in comps {
                    comp.h_samp_factor = 1;
                    comp.v_samp_factor = 1;
                }
            }
            ffi::jpeg_start_compress(&mut c.cinfo, 1);
            while c.cinfo.next_scanline < c.cinfo.image_height {
                let row = px.data.as_ptr().add(c.cinfo.next_scanline as usize * stride);
                let rows = [row];
                ffi::jpeg_write_scanlines(&mut c.cinfo, rows.as_ptr(), 1);
            }
            ffi::jpeg_finish_compress(&mut c.cinfo);
            std::slice::from_raw_parts(c.out, out_len as usize).to_vec()
        }
    })
    .map_err(|stop| match stop {
        Stop::Libjpeg(m) => TransformError::Internal(format!("jpeg encoding failed: {m}")),
        Stop::TooManyScans => TransformError::Internal("jpeg encoding failed".into()),
    })
}

/// Inserts `icc` as APP2 `ICC_PROFILE` segments after the SOI and any APP0 (JFIF) segment of
/// an encoder's output. A profile too big for 255 segments is left out.
fn with_icc(jpeg: &[u8], icc: &[u8]) -> Vec<u8> {
    const MAX_CHUNK: usize = 65533 - 14;
    let count = icc.len().div_ceil(MAX_CHUNK);
    if icc.is_empty() || count > 255 || jpeg.get(0..2) != Some(&[0xFF, 0xD8][..]) {
        return jpeg.to_vec();
    }
    let mut at = 2;
    if jpeg.get(2..4) == Some(&[0xFF, 0xE0][..]) {
        if let Some(len) = jpeg.get(4..6) {
            at = (4 + usize::from(u16::from_be_bytes([len[0], len[1]]))).min(jpeg.len());
        }
    }
    let mut out = Vec::with_capacity(jpeg.len() + icc.len() + 18 * count);
    out.extend_from_slice(&jpeg[..at]);
    for (i, chunk) in icc.chunks(MAX_CHUNK).enumerate() {
        let seg_len = (2 + 14 + chunk.len()) as u16; // <= 65533 by MAX_CHUNK
        out.extend_from_slice(&[0xFF, 0xE2]);
        out.extend_from_slice(&seg_len.to_be_bytes());
        out.extend_from_slice(b"ICC_PROFILE\0");
        out.push((i + 1) as u8);
        out.push(count as u8);
        out.extend_from_slice(chunk);
    }
    out.extend_from_slice(&jpeg[at..]);
    out
}

/// Which path decodes a JPEG at `k`/8: libjpeg for scaled decodes, and for full size too when
/// it has its SIMD; otherwise `image`'s decoder is faster at full size.
pub fn libjpeg_decodes(k: u32) -> bool {
    k < 8 || SIMD
}

/// Whether the Rust IDCT beats libjpeg's own at this scale in this build: without SIMD it
/// does below full size (1/4 scale, 2560×1600: 7.7 vs 9.7 ms); libjpeg's SIMD IDCT is faster.
fn rust_idct_pays(k: u32) -> bool {
    k < 8 && !SIMD
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn icc_chunks_must_be_complete() {
        let px = Pixels {
            width: 16,
            height: 8,
            alpha: false,
            data: vec![90; 16 * 8 * 3],
        };
        let icc: Vec<u8> = (0..140_000).map(|i| (i % 251) as u8).collect();
        let jpg = encode(&px, 80, Some(&icc)).unwrap();
        let d = decode_scaled(&jpg, 8, 1 << 20).unwrap().unwrap();
        assert_eq!(d.icc.as_deref(), Some(&icc[..]));
        // drop the second of three APP2 chunks: no profile rather than a wrong one
        let first = jpg.windows(12).position(|w| w == b"ICC_PROFILE\0").unwrap() - 4;
        let seg_len = |at: usize| 2 + usize::from(u16::from_be_bytes([jpg[at + 2], jpg[at + 3]]));
        let second = first + seg_len(first);
        let mut damaged = jpg[..second].to_vec();
        damaged.extend_from_slice(&jpg[second + seg_len(second)..]);
        let d = decode_scaled(&damaged, 8, 1 << 20).unwrap().unwrap();
        assert_eq!(d.icc, None);
    }

    fn jpeg(color: jpeg_encoder::ColorType, sampling: jpeg_encoder::SamplingFactor, w: u16, h: u16) -> Vec<u8> {
        let n = if color == jpeg_encoder::ColorType::Luma { 1 } else { 3 };
        let pixels: Vec<u8> = (0..usize::from(w) * usize::from(h) * n)
            .map(|i| ((i * 31 + (i / 97) * 7) % 256) as u8)
            .collect();
        let mut out = Vec::new();
        let mut enc = jpeg_encoder::Encoder::new(&mut out, 85);
        enc.set_sampling_factor(sampling);
        enc.encode(&pixels, w, h, color).unwrap();
        out
    }

    /// The Rust IDCT path gives libjpeg's own pixels, byte for byte, wherever it applies:
    /// real photos (4:2:0, 4:2:2), 4:4:4, greyscale, progressive, odd sizes, every scale.
    #[test]
    fn coefficient_path_is_bit_exact_with_libjpeg() {
        use jpeg_encoder::{ColorType, SamplingFactor};
        let dir = crate::transform::test_image_dir();
        let mut inputs: Vec<(String, Vec<u8>)> = [
            "storm-1920x1280.jpg",
            "twowings-2560x1600.jpg",
            "hopper-exif-orientation6.jpg",
        ]
        .iter()
        .map(|n| (n.to_string(), std::fs::read(dir.join(n)).unwrap()))
        .collect();
        inputs.push(("444 37x23".into(), jpeg(ColorType::Rgb, SamplingFactor::F_1_1, 37, 23)));
        inputs.push((
            "420 101x67".into(),
            jpeg(ColorType::Rgb, SamplingFactor::F_2_2, 101, 67),
        ));
        inputs.push(("422 77x41".into(), jpeg(ColorType::Rgb, SamplingFactor::F_2_1, 77, 41)));
        inputs.push(("422 9x9".into(), jpeg(ColorType::Rgb, SamplingFactor::F_2_1, 9, 9)));
        inputs.push((
            "grey 45x31".into(),
            jpeg(ColorType::Luma, SamplingFactor::F_1_1, 45, 31),
        ));
        let mut progressive = Vec::new();
        let px: Vec<u8> = (0..90 * 70 * 3).map(|i| ((i * 13) % 251) as u8).collect();
        let mut enc = jpeg_encoder::Encoder::new(&mut progressive, 75);
        enc.set_progressive(true);
        enc.encode(&px, 90, 70, ColorType::Rgb).unwrap();
        inputs.push(("progressive 420 90x70".into(), progressive));
        for (name, src) in &inputs {
            for k in [1u32, 2, 4] {
                let sizes = guarded(|| {
                    let mut d = Decompressor::new(src);
                    unsafe { ffi::jpeg_read_header(&mut d.cinfo, 1) };
                    d.idct_plan(k).is_some()
                });
                assert!(
                    matches!(sizes, Ok(true)),
                    "{name} at {k}/8 must take the coefficient path"
                );
                let fast = decode_with(src, k, u64::MAX, true).unwrap().expect("decodes");
                // (decode_scaled takes this path exactly when rust_idct_pays(k))
                let reference = decode_with(src, k, u64::MAX, false).unwrap().expect("decodes");
                assert_eq!(
                    (fast.pixels.width, fast.pixels.height),
                    (reference.pixels.width, reference.pixels.height),
                    "{name} at {k}/8"
                );
                let differing = fast
                    .pixels
                    .data
                    .iter()
                    .zip(&reference.pixels.data)
                    .filter(|(a, b)| a != b)
                    .count();
                assert_eq!(differing, 0, "{name} at {k}/8: {differing} bytes differ");
            }
        }
    }

    #[test]
    fn not_a_jpeg_is_left_to_the_other_decoder() {
        assert!(decode_scaled(b"\xFF\xD8\xFF\xE0 definitely not", 2, 1 << 20)
            .unwrap()
            .is_none());
        assert!(decode_scaled(b"", 8, 1 << 20).unwrap().is_none());
    }

    #[test]
    fn scan_bombs_are_corrupt() {
        // A progressive JPEG whose scans repeat: libjpeg would happily read thousands.
        let px = Pixels {
            width: 32,
            height: 32,
            alpha: false,
            data: (0..32 * 32 * 3).map(|i| (i % 200) as u8).collect(),
        };
        let mut out = Vec::new();
        let mut enc = jpeg_encoder::Encoder::new(&mut out, 80);
        enc.set_progressive(true);
        enc.encode(&px.data, 32, 32, jpeg_encoder::ColorType::Rgb).unwrap();
        // Repeat the last (refinement-free AC) scan many times before EOI.
        let sos = out.windows(2).rposition(|w| w == [0xFF, 0xDA]).unwrap();
        let eoi = out.len() - 2;
        let scan = out[sos..eoi].to_vec();
        let mut bomb = out[..eoi].to_vec();
        for _ in 0..600 {
            bomb.extend_from_slice(&scan);
        }
        bomb.extend_from_slice(&[0xFF, 0xD9]);
        let r = decode_scaled(&bomb, 8, 64 << 20);
        assert!(matches!(r, Err(TransformError::Corrupt(_))), "{r:?}");
    }
}
