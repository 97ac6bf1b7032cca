//! Which per-block checksum and block size for the blob block table (`store/integrity.rs`):
//! CRC32C (crc-fast, hardware CRC instructions / carry-less multiply) against XXH3-64
//! (xxhash-rust), over 64 KiB, 256 KiB and 1 MiB blocks, plus what a 4 KiB range read costs at
//! each block size (one whole block is read and checked). Run pinned to one core:
//! `taskset -c 0 cargo bench --bench blockcheck`.
//!
//! Besides criterion's figures it prints one summary line per case (GiB/s, median of 5
//! timed batches), the figures ARCHITECTURE.md quotes.

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

const SIZES: [usize; 3] = [64 << 10, 256 << 10, 1 << 20];
/// Bytes hashed per summary batch (several blocks, so per-call overhead is included).
const BATCH: usize = 64 << 20;

fn data(len: usize) -> Vec<u8> {
    // Deterministic, incompressible-looking bytes.
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn crc32c(b: &[u8]) -> u64 {
    u64::from(crc_fast::crc32_iscsi(b))
}

fn xxh3(b: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64(b)
}

/// GiB/s hashing `buf` block by block, median of 5 batches.
fn rate(buf: &[u8], block: usize, f: fn(&[u8]) -> u64) -> f64 {
    let mut runs: Vec<f64> = (0..5)
        .map(|_| {
            let t = Instant::now();
            let mut acc = 0u64;
            for b in buf.chunks(block) {
                acc ^= f(std::hint::black_box(b));
            }
            std::hint::black_box(acc);
            buf.len() as f64 / t.elapsed().as_secs_f64() / (1u64 << 30) as f64
        })
        .collect();
    runs.sort_by(f64::total_cmp);
    runs[2]
}

fn bench(c: &mut Criterion) {
    let buf = data(BATCH);
    for (name, f) in [("crc32c", crc32c as fn(&[u8]) -> u64), ("xxh3", xxh3)] {
        for block in SIZES {
            let gibs = rate(&buf, block, f);
            // A 4 KiB range read checks one whole block: its cost in microseconds.
            let us_per_4k_read = block as f64 / (gibs * (1u64 << 30) as f64) * 1e6;
            println!(
                "summary: {name:6} block {:5} KiB: {gibs:6.2} GiB/s, one block (a 4 KiB range read) {us_per_4k_read:7.2} us",
                block >> 10
            );
        }
    }
    let mut g = c.benchmark_group("block_checksum");
    g.measurement_time(Duration::from_secs(3));
    for block in SIZES {
        let one = &buf[..block];
        g.throughput(Throughput::Bytes(block as u64));
        g.bench_with_input(BenchmarkId::new("crc32c", block >> 10), one, |b, one| {
            b.iter(|| crc32c(std::hint::black_box(one)))
        });
        g.bench_with_input(BenchmarkId::new("xxh3", block >> 10), one, |b, one| {
            b.iter(|| xxh3(std::hint::black_box(one)))
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
