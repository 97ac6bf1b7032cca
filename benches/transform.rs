//! Criterion bench of the transform pipeline on the shared photos (cold: decode + resize +
//! encode every iteration, no cache). Run pinned to one core for per-core figures:
//! `taskset -c 0 cargo bench --bench transform`.
//!
//! Besides criterion's wall-clock figures it prints ops per CPU-second (from /proc/self/stat,
//! all threads, as vips_bench.py does), which stays meaningful on a busy shared machine.
//!
//! Test images: `$STRATA_TESTDATA`, else `../shared/testdata/images` next to the crate.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use strata::transform::{parse_query, probe, resolve, run, Limits};

fn image_dir() -> PathBuf {
    std::env::var_os("STRATA_TESTDATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/testdata/images").into())
}

/// CPU seconds used by this process so far (user + system, all threads), Linux only.
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0) // USER_HZ is 100 on Linux
}

/// Ops per CPU-second over 5 s; only for names containing `$CPU_RATE_FILTER` when set.
fn cpu_rate(name: &str, mut op: impl FnMut()) {
    if std::env::var("CPU_RATE_FILTER").is_ok_and(|f| !name.contains(&f)) {
        return;
    }
    let (Some(c0), t0) = (cpu_seconds(), Instant::now()) else {
        return;
    };
    let mut n = 0u32;
    while t0.elapsed() < Duration::from_secs(5) {
        op();
        n += 1;
    }
    let wall = t0.elapsed().as_secs_f64();
    if let Some(c1) = cpu_seconds() {
        eprintln!(
            "{name}: {n} ops in {wall:.2} s wall = {:.1} ops/s; {:.2} CPU-s = {:.1} ops/CPU-s",
            f64::from(n) / wall,
            c1 - c0,
            f64::from(n) / (c1 - c0).max(0.01)
        );
    }
}

fn bench_case(c: &mut Criterion, name: &str, file: &str, query: &str) {
    let path = image_dir().join(file);
    let src = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let raw = parse_query(query).expect("valid query").expect("transform query");
    let info = probe(&src).expect("probe");
    let spec = resolve(raw, None, info.format);
    let limits = Limits::default();
    let out = run(&src, &spec, &limits).expect("transform");
    eprintln!(
        "{name}: {} {}x{} -> {} {}x{} ({} bytes)",
        file,
        info.width,
        info.height,
        spec.canonical(),
        out.width,
        out.height,
        out.bytes.len()
    );
    cpu_rate(name, || {
        run(&src, &spec, &limits).expect("transform");
    });
    let mut g = c.benchmark_group("transform");
    g.throughput(Throughput::Elements(1));
    g.bench_function(name, |b| b.iter(|| run(&src, &spec, &limits).expect("transform")));
    g.finish();
}

/// JPEG decode alone at each shrink-on-load scale: the Rust IDCT over libjpeg's coefficients
/// beside libjpeg's own IDCT (`decode_scaled` picks whichever is faster in this build), and at
/// full size image's decoder (zune-jpeg, what the default build uses there).
fn bench_jpeg_decode(c: &mut Criterion, file: &str) {
    use strata::transform::jpeg;
    let path = image_dir().join(file);
    let src = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut g = c.benchmark_group("jpeg_decode");
    for k in [1u32, 2, 4] {
        let rust = format!("{file} {k}/8 rust idct");
        let libjpeg = format!("{file} {k}/8 libjpeg idct");
        cpu_rate(&rust, || drop(jpeg::decode_scaled(&src, k, u64::MAX).expect("decode")));
        cpu_rate(&libjpeg, || {
            drop(jpeg::decode_scaled_libjpeg_idct(&src, k, u64::MAX).expect("decode"))
        });
        g.bench_function(&rust, |b| {
            b.iter(|| jpeg::decode_scaled(&src, k, u64::MAX).expect("decode"))
        });
        g.bench_function(&libjpeg, |b| {
            b.iter(|| jpeg::decode_scaled_libjpeg_idct(&src, k, u64::MAX).expect("decode"))
        });
    }
    let full = format!("{file} 8/8 image's decoder (zune-jpeg)");
    let zune = || image::load_from_memory_with_format(&src, image::ImageFormat::Jpeg).expect("decode");
    cpu_rate(&full, || drop(zune()));
    g.bench_function(&full, |b| b.iter(zune));
    g.finish();
}

/// JPEG encode of a 1280x800 RGB frame at q80: the Rust encoder (default build) beside
/// libjpeg's C (the encoder under `nasm-simd`; here built as the default build builds it).
fn bench_jpeg_encode(c: &mut Criterion, file: &str) {
    use strata::transform::jpeg;
    let path = image_dir().join(file);
    let src = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let px = jpeg::decode_scaled(&src, 4, u64::MAX)
        .expect("decode")
        .expect("a baseline JPEG")
        .pixels;
    let mut g = c.benchmark_group("jpeg_encode");
    let name = format!("{}x{} q80", px.width, px.height);
    let rust = format!("{name} jpeg-encoder");
    let libjpeg = format!("{name} libjpeg");
    cpu_rate(&rust, || drop(jpeg::encode_rgb_jpeg_encoder(&px, 80).expect("encode")));
    cpu_rate(&libjpeg, || drop(jpeg::encode_rgb_libjpeg(&px, 80).expect("encode")));
    g.bench_function(&rust, |b| {
        b.iter(|| jpeg::encode_rgb_jpeg_encoder(&px, 80).expect("encode"))
    });
    g.bench_function(&libjpeg, |b| {
        b.iter(|| jpeg::encode_rgb_libjpeg(&px, 80).expect("encode"))
    });
    g.finish();
}

fn benches(c: &mut Criterion) {
    bench_jpeg_encode(c, "twowings-2560x1600.jpg");
    bench_jpeg_decode(c, "twowings-2560x1600.jpg");
    bench_jpeg_decode(c, "storm-1920x1280.jpg");
    bench_case(
        c,
        "twowings_2560x1600_jpeg_to_200x150_webp_q90_cover",
        "twowings-2560x1600.jpg",
        "w=200&h=150&fit=cover&f=webp&q=90",
    );
    bench_case(
        c,
        "twowings_2560x1600_jpeg_to_800w_jpeg_q80",
        "twowings-2560x1600.jpg",
        "w=800&f=jpeg&q=80",
    );
    bench_case(
        c,
        "gulp_1920x1200_png_alpha_to_400w_webp_q80",
        "gulp-alpha-1920x1200.png",
        "w=400&f=webp&q=80",
    );
}

criterion_group!(transform, benches);
criterion_main!(transform);
