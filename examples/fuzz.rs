//! A small, **coverage-less** mutation fuzzer for Strata's parsers, on stable Rust.
//!
//! cargo-fuzz / libFuzzer (and `-Z sanitizer`) need a nightly toolchain, which this project
//! does not use (stable 1.95 only), so this is a plain black-box mutator: it knows nothing
//! about which branches an input reached. To find more than the seeds' neighbourhood it keeps
//! any input whose *outcome fingerprint* (see `fuzz/targets.rs`: which error, which branch) is
//! new, and mutates those too. It finds panics, broken invariants (asserted by the targets)
//! and slow inputs; it is no substitute for a coverage-guided fuzzer.
//!
//! ```text
//! cargo run --release --example fuzz -- <target|all> [--minutes N] [--seed S]
//! cargo run --release --example fuzz -- list
//! cargo run --release --example fuzz -- make-seeds     # regenerate the image seeds
//! ```
//!
//! Per target: seeds come from `fuzz/corpus/<target>/`; each execution takes a pool input,
//! applies 1–8 stacked mutations (bit flip, interesting byte/integer, byte insert/delete, chunk
//! duplication/copy, splice with another input, dictionary token insert/overwrite, truncation;
//! for PNG-looking inputs chunk CRCs are recomputed half of the time so mutated headers get past
//! the CRC check), and runs the target under `catch_unwind`. A panicking input is saved to
//! `fuzz/crashes/<target>/<hash>` with `<hash>.txt` (message, location, backtrace); an
//! execution over 5 s is a hang, saved to `fuzz/hangs/<target>/<hash>` (a watchdog thread
//! saves it even if the execution never returns, and aborts the run after 120 s). Both
//! directories are git-ignored. `all` rotates through every target in 15 s slices until the
//! time is up. At the end it prints `target: execs N, crashes C, hangs H` per target.
//!
//! To keep a crash as a regression test, copy it to `fuzz/regressions/<target>/`:
//! `cargo test --test fuzz_corpus` replays the corpus and the regressions.

#[path = "../fuzz/targets.rs"]
mod targets;

use std::collections::HashSet;
use std::fs;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use targets::{hash_of, Target, TARGETS};

const USAGE: &str = "usage: cargo run --release --example fuzz -- <target|all|list|make-seeds> [--minutes N] [--seed S]
  targets: transform-params image-decode xml-delete xml-complete post-policy headers config-toml keys
  --minutes N   total time (default 1; fractions allowed); with `all`, shared by every target
  --seed S      RNG seed (default: from the clock; printed so a run can be repeated)";

/// One execution slower than this is reported as a hang.
const HANG: Duration = Duration::from_secs(5);
/// One execution slower than this aborts the whole run (after saving the input).
const ABORT_AFTER: Duration = Duration::from_secs(120);
/// Time slice per target when rotating with `all`.
const SLICE: Duration = Duration::from_secs(15);
/// Most inputs kept in a target's pool (seeds plus inputs with new outcomes).
const POOL_MAX: usize = 4096;

fn main() -> ExitCode {
    match real_main() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("fuzz: {e}");
            eprintln!("{USAGE}");
            ExitCode::from(2)
        }
    }
}

struct Opts {
    which: String,
    minutes: f64,
    seed: u64,
}

fn parse_args() -> Result<Opts, String> {
    let mut args = std::env::args().skip(1);
    let mut which = None;
    let mut minutes: f64 = 1.0;
    let mut seed = None;
    while let Some(a) = args.next() {
        match a.as_str() {
            "--minutes" => {
                let v = args.next().ok_or("--minutes needs a value")?;
                minutes = v.parse().map_err(|_| format!("bad --minutes {v:?}"))?;
                if minutes.is_nan() || minutes <= 0.0 {
                    return Err("--minutes must be positive".into());
                }
            }
            "--seed" => {
                let v = args.next().ok_or("--seed needs a value")?;
                seed = Some(v.parse().map_err(|_| format!("bad --seed {v:?}"))?);
            }
            "-h" | "--help" => return Err("help".into()),
            s if s.starts_with('-') => return Err(format!("unknown option {s}")),
            s => {
                if which.replace(s.to_string()).is_some() {
                    return Err("give one target".into());
                }
            }
        }
    }
    let seed = seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1)
    });
    Ok(Opts {
        which: which.ok_or("no target given")?,
        minutes,
        seed,
    })
}

fn fuzz_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

fn real_main() -> Result<ExitCode, String> {
    let opts = parse_args()?;
    match opts.which.as_str() {
        "list" => {
            for t in TARGETS {
                println!("{}", t.name);
            }
            return Ok(ExitCode::SUCCESS);
        }
        "make-seeds" => {
            make_image_seeds().map_err(|e| format!("make-seeds: {e}"))?;
            return Ok(ExitCode::SUCCESS);
        }
        _ => {}
    }
    let chosen: Vec<&'static Target> = if opts.which == "all" {
        TARGETS.iter().collect()
    } else {
        vec![targets::target(&opts.which).ok_or_else(|| format!("unknown target {:?}", opts.which))?]
    };
    install_panic_hook();
    let watchdog = Watchdog::start();
    println!(
        "fuzz: coverage-less mutation fuzzer; {} target(s), {} min, seed {}",
        chosen.len(),
        opts.minutes,
        opts.seed
    );
    let mut rng = StdRng::seed_from_u64(opts.seed);
    let mut states: Vec<State> = chosen.iter().map(|t| State::new(t)).collect();
    for s in &states {
        println!(
            "{}: {} seeds from fuzz/corpus/{}",
            s.target.name,
            s.pool.len(),
            s.target.name
        );
    }
    let total = Duration::from_secs_f64(opts.minutes * 60.0);
    let start = Instant::now();
    let slice = if states.len() == 1 { total } else { SLICE };
    'outer: loop {
        for st in states.iter_mut() {
            let elapsed = start.elapsed();
            if elapsed >= total {
                break 'outer;
            }
            let until = Instant::now() + slice.min(total - elapsed);
            st.fuzz_until(until, &mut rng, &watchdog);
        }
    }
    targets::teardown();
    watchdog.stop();
    println!(
        "\nresults (seed {}, {:.1} s):",
        opts.seed,
        start.elapsed().as_secs_f64()
    );
    let mut bad = false;
    for st in &states {
        let secs = st.busy.as_secs_f64().max(1e-9);
        println!(
            "{}: execs {}, crashes {}, hangs {} ({:.0} execs/s, pool {}, max exec {:.3} s)",
            st.target.name,
            st.execs,
            st.crashes.len(),
            st.hangs,
            st.execs as f64 / secs,
            st.pool.len(),
            st.slowest.as_secs_f64()
        );
        bad |= !st.crashes.is_empty() || st.hangs > 0;
    }
    Ok(if bad { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

// ---------------------------------------------------------------------------- panic capture

/// The last panic seen on any thread (message, location, backtrace).
static LAST_PANIC: Mutex<Option<String>> = Mutex::new(None);

/// Replaces the default hook (which would print every caught panic) with one that records it.
fn install_panic_hook() {
    panic::set_hook(Box::new(|info| {
        let bt = std::backtrace::Backtrace::force_capture();
        let thread = std::thread::current().name().unwrap_or("<unnamed>").to_string();
        let text = format!("thread '{thread}' {info}\n\nbacktrace:\n{bt}");
        *LAST_PANIC.lock().unwrap_or_else(|p| p.into_inner()) = Some(text);
    }));
}

fn take_panic() -> String {
    LAST_PANIC
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .take()
        .unwrap_or_else(|| "panic (no message captured)".into())
}

/// First line of a panic report with the location: used to print each distinct panic once.
fn panic_site(report: &str) -> String {
    report.lines().next().unwrap_or("").chars().take(300).collect()
}

// -------------------------------------------------------------------------------- watchdog

/// Saves the input of an execution that runs past [`HANG`], and aborts past [`ABORT_AFTER`].
struct Watchdog {
    shared: Arc<WatchShared>,
    handle: Option<std::thread::JoinHandle<()>>,
}

struct WatchShared {
    /// Milliseconds since `epoch` when the current execution started; 0 = idle.
    started_ms: AtomicU64,
    /// Execution counter, so one slow execution is saved once.
    exec_id: AtomicU64,
    current: Mutex<(String, Vec<u8>)>,
    stop: AtomicBool,
    epoch: Instant,
}

impl Watchdog {
    fn start() -> Watchdog {
        let shared = Arc::new(WatchShared {
            started_ms: AtomicU64::new(0),
            exec_id: AtomicU64::new(0),
            current: Mutex::new((String::new(), Vec::new())),
            stop: AtomicBool::new(false),
            epoch: Instant::now(),
        });
        let s = shared.clone();
        let handle = std::thread::Builder::new()
            .name("watchdog".into())
            .spawn(move || {
                let mut saved_for = u64::MAX;
                while !s.stop.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(250));
                    let started = s.started_ms.load(Ordering::Acquire);
                    if started == 0 {
                        continue;
                    }
                    let now = s.epoch.elapsed().as_millis() as u64;
                    let running = Duration::from_millis(now.saturating_sub(started));
                    let id = s.exec_id.load(Ordering::Acquire);
                    if running > HANG && saved_for != id {
                        saved_for = id;
                        let cur = s.current.lock().unwrap_or_else(|p| p.into_inner());
                        let path = save_input("hangs", &cur.0, &cur.1, None);
                        eprintln!("{}: execution running for {running:?}: saved {}", cur.0, path.display());
                    }
                    if running > ABORT_AFTER {
                        let cur = s.current.lock().unwrap_or_else(|p| p.into_inner());
                        eprintln!("{}: execution stuck for {running:?}; aborting the run", cur.0);
                        std::process::exit(3);
                    }
                }
            })
            .expect("cannot start the watchdog thread");
        Watchdog {
            shared,
            handle: Some(handle),
        }
    }

    fn begin(&self, target: &str, input: &[u8]) {
        {
            let mut cur = self.shared.current.lock().unwrap_or_else(|p| p.into_inner());
            cur.0.clear();
            cur.0.push_str(target);
            cur.1.clear();
            cur.1.extend_from_slice(input);
        }
        self.shared.exec_id.fetch_add(1, Ordering::AcqRel);
        let now = (self.shared.epoch.elapsed().as_millis() as u64).max(1);
        self.shared.started_ms.store(now, Ordering::Release);
    }

    fn end(&self) {
        self.shared.started_ms.store(0, Ordering::Release);
    }

    fn stop(mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// Writes `input` to `fuzz/<kind>/<target>/<hash>` (and the report next to it).
fn save_input(kind: &str, target: &str, input: &[u8], report: Option<&str>) -> PathBuf {
    let dir = fuzz_dir().join(kind).join(target);
    let name = format!("{:016x}", hash_of(input));
    let path = dir.join(&name);
    if let Err(e) = fs::create_dir_all(&dir).and_then(|()| fs::write(&path, input)) {
        eprintln!("cannot save {}: {e}", path.display());
    }
    if let Some(r) = report {
        let _ = fs::write(dir.join(format!("{name}.txt")), r);
    }
    path
}

// ---------------------------------------------------------------------------- one target

struct State {
    target: &'static Target,
    pool: Vec<Vec<u8>>,
    /// The first `seeds` pool entries are the corpus files, never replaced.
    seeds: usize,
    outcomes: HashSet<u64>,
    seen_sites: HashSet<String>,
    crashes: HashSet<u64>,
    hangs: u64,
    execs: u64,
    busy: Duration,
    slowest: Duration,
}

impl State {
    fn new(target: &'static Target) -> State {
        let mut pool = load_dir(&fuzz_dir().join("corpus").join(target.name));
        pool.extend(load_dir(&fuzz_dir().join("regressions").join(target.name)));
        if pool.is_empty() {
            pool.push(Vec::new());
        }
        State {
            target,
            seeds: pool.len(),
            pool,
            outcomes: HashSet::new(),
            seen_sites: HashSet::new(),
            crashes: HashSet::new(),
            hangs: 0,
            execs: 0,
            busy: Duration::ZERO,
            slowest: Duration::ZERO,
        }
    }

    fn fuzz_until(&mut self, until: Instant, rng: &mut StdRng, wd: &Watchdog) {
        let began = Instant::now();
        // Seeds first (once), so every seed is known to pass before mutating it.
        let mut queue: Vec<Vec<u8>> = if self.execs == 0 { self.pool.clone() } else { Vec::new() };
        let mut last_report = Instant::now();
        while Instant::now() < until {
            let input = match queue.pop() {
                Some(i) => i,
                None => mutate(self.target, &self.pool, rng),
            };
            self.exec(input, wd);
            if last_report.elapsed() > Duration::from_secs(10) {
                last_report = Instant::now();
                println!(
                    "  {}: execs {}, crashes {}, hangs {}, pool {}",
                    self.target.name,
                    self.execs,
                    self.crashes.len(),
                    self.hangs,
                    self.pool.len()
                );
            }
        }
        self.busy += began.elapsed();
    }

    fn exec(&mut self, input: Vec<u8>, wd: &Watchdog) {
        let run = self.target.run;
        wd.begin(self.target.name, &input);
        let t0 = Instant::now();
        let result = panic::catch_unwind(AssertUnwindSafe(|| run(&input)));
        let took = t0.elapsed();
        wd.end();
        self.execs += 1;
        self.slowest = self.slowest.max(took);
        if took > HANG {
            self.hangs += 1;
            let path = save_input("hangs", self.target.name, &input, None);
            eprintln!("{}: HANG {took:?}: {}", self.target.name, path.display());
        }
        match result {
            Ok(outcome) => {
                if self.outcomes.insert(outcome) {
                    if self.pool.len() < POOL_MAX {
                        self.pool.push(input);
                    } else {
                        // Seeds stay; a random later entry makes room.
                        let room = self.pool.len() - self.seeds;
                        let i = self.seeds + (hash_of(&input) as usize) % room.max(1);
                        if i < self.pool.len() {
                            self.pool[i] = input;
                        }
                    }
                }
            }
            Err(_) => {
                let report = take_panic();
                let h = hash_of(&input);
                if self.crashes.insert(h) {
                    let path = save_input("crashes", self.target.name, &input, Some(&report));
                    if self.seen_sites.insert(panic_site(&report)) {
                        eprintln!(
                            "{}: CRASH saved to {}\n{}",
                            self.target.name,
                            path.display(),
                            first_lines(&report, 30)
                        );
                    }
                }
            }
        }
    }
}

fn first_lines(s: &str, n: usize) -> String {
    s.lines().take(n).collect::<Vec<_>>().join("\n")
}

fn load_dir(dir: &Path) -> Vec<Vec<u8>> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file() && p.extension().is_none_or(|e| e != "txt" && e != "md"))
        .collect();
    files.sort();
    files.into_iter().filter_map(|p| fs::read(p).ok()).collect()
}

// ------------------------------------------------------------------------------- mutation

const INTERESTING_8: &[u8] = &[
    0, 1, 0x7f, 0x80, 0xff, b'0', b'9', b'-', b'&', b'=', b'%', b'<', b'>', b'/', b'\n',
];
const INTERESTING_32: &[u32] = &[
    0,
    1,
    2,
    0x7f,
    0xff,
    0x100,
    0x7fff,
    0x8000,
    0xffff,
    0x1_0000,
    2001,
    8192,
    8193,
    65_500,
    0x7fff_ffff,
    0x8000_0000,
    0xffff_ffff,
];

/// A new input from the pool: 1–8 stacked mutations of one pool entry.
fn mutate(target: &Target, pool: &[Vec<u8>], rng: &mut StdRng) -> Vec<u8> {
    let mut data = pool[rng.gen_range(0..pool.len())].clone();
    let rounds = 1 << rng.gen_range(0..4); // 1, 2, 4, 8
    for _ in 0..rounds {
        mutate_once(&mut data, target, pool, rng);
    }
    if data.starts_with(b"\x89PNG\r\n\x1a\n") && rng.gen_bool(0.5) {
        fix_png_crcs(&mut data);
    }
    data.truncate(target.max_len);
    data
}

fn mutate_once(data: &mut Vec<u8>, target: &Target, pool: &[Vec<u8>], rng: &mut StdRng) {
    let len = data.len();
    let pos = |rng: &mut StdRng, n: usize| if n == 0 { 0 } else { rng.gen_range(0..n) };
    match rng.gen_range(0..12) {
        // bit flip
        0 if len > 0 => {
            let i = pos(rng, len);
            data[i] ^= 1 << rng.gen_range(0..8);
        }
        // interesting or random byte
        1 if len > 0 => {
            let i = pos(rng, len);
            data[i] = if rng.gen_bool(0.5) {
                INTERESTING_8[rng.gen_range(0..INTERESTING_8.len())]
            } else {
                rng.gen()
            };
        }
        // interesting 16/32-bit integer, either endianness (image dimensions, lengths)
        2 if len >= 4 => {
            let i = pos(rng, len - 3);
            let v = INTERESTING_32[rng.gen_range(0..INTERESTING_32.len())];
            let bytes = if rng.gen_bool(0.5) {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            };
            if rng.gen_bool(0.5) {
                data[i..i + 4].copy_from_slice(&bytes);
            } else {
                let b2 = if bytes[0] == 0 && bytes[1] == 0 {
                    [bytes[2], bytes[3]]
                } else {
                    [bytes[0], bytes[1]]
                };
                data[i..i + 2].copy_from_slice(&b2);
            }
        }
        // insert random bytes
        3 => {
            let i = pos(rng, len + 1);
            let n = rng.gen_range(1..=8);
            let bytes: Vec<u8> = (0..n).map(|_| rng.gen()).collect();
            data.splice(i..i, bytes);
        }
        // delete a range
        4 if len > 0 => {
            let i = pos(rng, len);
            let n = rng.gen_range(1..=(len - i).min(64));
            data.drain(i..i + n);
        }
        // duplicate a chunk in place
        5 if len > 0 => {
            let i = pos(rng, len);
            let n = rng.gen_range(1..=(len - i).min(256));
            let chunk = data[i..i + n].to_vec();
            let times = rng.gen_range(1..=4);
            for _ in 0..times {
                data.splice(i..i, chunk.iter().copied());
            }
        }
        // copy a chunk elsewhere (overwrite)
        6 if len > 1 => {
            let src = pos(rng, len);
            let n = rng.gen_range(1..=(len - src).min(64));
            let dst = pos(rng, len - n + 1);
            let chunk = data[src..src + n].to_vec();
            data[dst..dst + n].copy_from_slice(&chunk);
        }
        // splice: our head + another input's tail
        7 => {
            let other = &pool[rng.gen_range(0..pool.len())];
            let cut_a = pos(rng, len + 1);
            let cut_b = pos(rng, other.len() + 1);
            data.truncate(cut_a);
            data.extend_from_slice(&other[cut_b..]);
        }
        // dictionary token inserted
        8 | 9 if !target.dict.is_empty() => {
            let tok = target.dict[rng.gen_range(0..target.dict.len())];
            let i = pos(rng, len + 1);
            data.splice(i..i, tok.iter().copied());
        }
        // dictionary token overwriting
        10 if !target.dict.is_empty() && len > 0 => {
            let tok = target.dict[rng.gen_range(0..target.dict.len())];
            let i = pos(rng, len);
            let end = (i + tok.len()).min(len);
            data.splice(i..end, tok.iter().copied());
        }
        // truncate
        11 if len > 1 => {
            let n = rng.gen_range(0..len);
            data.truncate(n);
        }
        _ => {
            let i = pos(rng, len + 1);
            data.insert(i, rng.gen());
        }
    }
}

/// Recomputes the CRC of every complete PNG chunk, so a mutated IHDR still reaches the decoder.
fn fix_png_crcs(data: &mut [u8]) {
    let mut i = 8;
    while i + 12 <= data.len() {
        let n = u32::from_be_bytes([data[i], data[i + 1], data[i + 2], data[i + 3]]) as usize;
        let Some(end) = (i + 8).checked_add(n) else { return };
        if end + 4 > data.len() {
            return;
        }
        let crc = crc32(&data[i + 4..end]);
        data[end..end + 4].copy_from_slice(&crc.to_be_bytes());
        i = end + 4;
    }
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

// ---------------------------------------------------------------------------- image seeds

/// Writes small image seeds to `fuzz/corpus/image-decode/` from the shared test photos
/// (`$STRATA_TESTDATA` or `../shared/testdata/images`): the three small originals as they are,
/// the first 16 KiB of the large ones (headers that claim big dimensions, truncated data),
/// and tiny re-encodings (via Strata's own transform and the `image` / `webp` encoders) in
/// every colour type we read, plus EXIF-orientation variants. Every file stays under 64 KiB.
fn make_image_seeds() -> Result<(), String> {
    use strata::transform;
    let src = std::env::var_os("STRATA_TESTDATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/testdata/images"));
    let out = fuzz_dir().join("corpus").join("image-decode");
    fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    let read = |name: &str| fs::read(src.join(name)).map_err(|e| format!("{}: {e}", src.join(name).display()));
    let write = |name: &str, bytes: &[u8]| -> Result<(), String> {
        if bytes.len() > 64 * 1024 {
            return Err(format!("seed {name} would be {} bytes (> 64 KiB)", bytes.len()));
        }
        fs::write(out.join(name), bytes).map_err(|e| format!("{name}: {e}"))?;
        println!("{name}: {} bytes", bytes.len());
        Ok(())
    };
    for name in ["hopper-exif-orientation6.jpg", "hopper.gif", "flower-480x360.webp"] {
        write(name, &read(name)?)?;
    }
    for (name, keep) in [
        ("twowings-2560x1600.jpg", 16 * 1024),
        ("storm-1920x1280.jpg", 16 * 1024),
        ("gulp-alpha-1920x1200.png", 16 * 1024),
        ("coffee-600x400.png", 8 * 1024),
    ] {
        let bytes = read(name)?;
        write(&format!("head-{name}"), &bytes[..keep.min(bytes.len())])?;
    }
    // Shrunk copies through the transform pipeline.
    let shrink = |name: &str, query: &str| -> Result<Vec<u8>, String> {
        let bytes = read(name)?;
        let raw = transform::parse_query(query)
            .map_err(|e| e.to_string())?
            .ok_or("not a transform query")?;
        let info = transform::probe(&bytes).map_err(|e| e.to_string())?;
        let spec = transform::resolve(raw, None, info.format);
        let out = transform::run(&bytes, &spec, &transform::Limits::default()).map_err(|e| e.to_string())?;
        Ok(out.bytes.to_vec())
    };
    write("small-storm.jpg", &shrink("storm-1920x1280.jpg", "w=64&f=jpeg&q=70")?)?;
    write(
        "small-gulp-alpha.png",
        &shrink("gulp-alpha-1920x1200.png", "w=48&f=png")?,
    )?;
    write("small-coffee.png", &shrink("coffee-600x400.png", "w=60&f=png")?)?;
    write("small-flower.webp", &shrink("flower-480x360.webp", "w=48&f=webp&q=60")?)?;
    write(
        "small-alpha.webp",
        &shrink("gulp-alpha-1920x1200.png", "w=40&f=webp&q=60")?,
    )?;
    write("small-coffee.gif", &shrink("coffee-600x400.png", "w=40&f=gif")?)?;
    // Colour types and bit depths from a 24x16 crop of the coffee photo.
    let base = image::load_from_memory(&read("coffee-600x400.png")?)
        .map_err(|e| e.to_string())?
        .resize_exact(24, 16, image::imageops::FilterType::Triangle);
    let encode = |img: &image::DynamicImage, fmt: image::ImageFormat| -> Result<Vec<u8>, String> {
        let mut buf = std::io::Cursor::new(Vec::new());
        img.write_to(&mut buf, fmt).map_err(|e| e.to_string())?;
        Ok(buf.into_inner())
    };
    use image::ImageFormat::{Jpeg, Png, WebP};
    write(
        "tiny-l8.png",
        &encode(&image::DynamicImage::ImageLuma8(base.to_luma8()), Png)?,
    )?;
    write(
        "tiny-la8.png",
        &encode(&image::DynamicImage::ImageLumaA8(base.to_luma_alpha8()), Png)?,
    )?;
    write(
        "tiny-rgb16.png",
        &encode(&image::DynamicImage::ImageRgb16(base.to_rgb16()), Png)?,
    )?;
    write(
        "tiny-rgba16.png",
        &encode(&image::DynamicImage::ImageRgba16(base.to_rgba16()), Png)?,
    )?;
    write(
        "tiny-gray.jpg",
        &encode(&image::DynamicImage::ImageLuma8(base.to_luma8()), Jpeg)?,
    )?;
    write(
        "tiny-lossless.webp",
        &encode(&image::DynamicImage::ImageRgba8(base.to_rgba8()), WebP)?,
    )?;
    // EXIF orientation 8 in a PNG eXIf chunk and in a JPEG APP1 segment.
    let exif = exif_orientation(8);
    let png = encode(&image::DynamicImage::ImageRgb8(base.to_rgb8()), Png)?;
    write("tiny-exif8.png", &png_with_chunk(&png, b"eXIf", &exif))?;
    let jpg = encode(&image::DynamicImage::ImageRgb8(base.to_rgb8()), Jpeg)?;
    let mut app1 = b"Exif\0\0".to_vec();
    app1.extend_from_slice(&exif);
    let mut with_exif = jpg[..2].to_vec();
    with_exif.extend_from_slice(&[0xff, 0xe1]);
    with_exif.extend_from_slice(&((app1.len() + 2) as u16).to_be_bytes());
    with_exif.extend_from_slice(&app1);
    with_exif.extend_from_slice(&jpg[2..]);
    write("tiny-exif8.jpg", &with_exif)?;
    Ok(())
}

/// A big-endian TIFF header with one IFD entry: Orientation = `o`.
fn exif_orientation(o: u16) -> Vec<u8> {
    let mut t = b"MM\x00\x2a\x00\x00\x00\x08".to_vec();
    t.extend_from_slice(&1u16.to_be_bytes()); // one entry
    t.extend_from_slice(&0x0112u16.to_be_bytes()); // Orientation
    t.extend_from_slice(&3u16.to_be_bytes()); // SHORT
    t.extend_from_slice(&1u32.to_be_bytes()); // count
    t.extend_from_slice(&o.to_be_bytes());
    t.extend_from_slice(&[0, 0]);
    t.extend_from_slice(&0u32.to_be_bytes()); // no next IFD
    t
}

/// Inserts a chunk right after IHDR.
fn png_with_chunk(png: &[u8], kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
    let after_ihdr = 8 + 8 + 13 + 4;
    let mut out = png[..after_ihdr].to_vec();
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    let mut crc_input = kind.to_vec();
    crc_input.extend_from_slice(body);
    out.extend_from_slice(&crc_input);
    out.extend_from_slice(&crc32(&crc_input).to_be_bytes());
    out.extend_from_slice(&png[after_ihdr..]);
    out
}
