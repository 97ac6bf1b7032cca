//! Soak benchmark: a long mixed workload against the release `strata` binary, watching for
//! memory growth, descriptor leaks and errors.
//!
//! ```text
//! cargo bench --bench soak -- [--minutes 10] [--conc 64] [--seed S] [--json PATH]
//! ```
//!
//! * **Server.** `strata serve --listen 127.0.0.1:0` (the binary cargo built for this bench,
//!   `CARGO_BIN_EXE_strata`) on a fresh temp data dir, root keys from `STRATA_ROOT_ACCESS_KEY` /
//!   `STRATA_ROOT_SECRET_KEY`, `RUST_LOG=warn` with stderr captured to a file (its tail is printed
//!   when something went wrong). Loopback only.
//! * **Load.** `--conc` workers on one aws-sdk-s3 client (path style, us-east-1, static
//!   credentials, retries off so every server error is seen). Each worker owns the keys under
//!   `w<N>/` and keeps the expected content of each (bodies are generated from seeds), so every
//!   answer is checked exactly: GET bodies (full and ranged) byte for byte, HEAD sizes, LIST
//!   results (a directory without delimiter: the exact key set and sizes; the worker prefix with
//!   `/`: the exact common prefixes), DeleteObjects results. Mix per 1000 operations: PUT small
//!   (1–16 KiB) 293, PUT medium (64 KiB–2 MiB) 40, GET 200, ranged GET 110, HEAD 110, LIST 80,
//!   DELETE 70, DeleteObjects 25, CopyObject 40, multipart (5 MiB + 1–64 KiB parts) 2, and GET of a
//!   missing key 30 (its `NoSuchKey` is counted as an expected error). A worker holds at most 40
//!   objects, so the data on disk stays bounded. Workers stop starting operations when the time
//!   is up; operations in flight finish (each is bounded by a 120 s SDK timeout).
//! * **Watching.** Every 5 s the server's `VmRSS` / `VmHWM` and open descriptors
//!   (`/proc/PID/fd`) are sampled and printed. Warm-up ends after 60 s (half the run if shorter).
//!   At the end the client is dropped (closing its keep-alive connections) and descriptors are
//!   counted again once they settle (up to 10 s).
//! * **Verdict.** PASS when there was no unexpected error, RSS at the end is at most 64 MiB above
//!   RSS after warm-up, and descriptors at the end are at most 16 above the count before the load.
//!   Exit status 1 on FAIL. Everything is also written to `target/bench-soak.json`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_s3::error::DisplayErrorContext;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart, Delete, ObjectIdentifier};
use aws_sdk_s3::Client;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;

const ACCESS_KEY: &str = "SOAKACCESSKEY0000001";
const SECRET_KEY: &str = "soak-secret-key-0123456789abcdefghijklmn";
const REGION: &str = "us-east-1";
const BUCKET: &str = "soak";
const MIB: f64 = 1024.0 * 1024.0;
const KIB: usize = 1024;
const SAMPLE_EVERY: Duration = Duration::from_secs(5);
const START_TIMEOUT: Duration = Duration::from_secs(60);
const OP_TIMEOUT: Duration = Duration::from_secs(120);
const MAX_OBJECTS_PER_WORKER: usize = 40;
const DIRS_PER_WORKER: usize = 4;
const MAX_RSS_GROWTH_MIB: f64 = 64.0;
const MAX_FD_GROWTH: i64 = 16;
const PART_SIZE: usize = 5 * 1024 * 1024;

const USAGE: &str = "usage: cargo bench --bench soak -- [--minutes N] [--conc N] [--seed S] [--json PATH]
  --minutes N   length of the load (default 10; fractions allowed)
  --conc N      concurrent workers (default 64)
  --seed S      RNG seed (default: from the clock)
  --json PATH   results file (default target/bench-soak.json)";

fn main() -> ExitCode {
    let opts = match parse_args() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("soak: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("soak: cannot build the tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(opts)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("soak: error: {e}");
            ExitCode::FAILURE
        }
    }
}

#[derive(Debug, Clone, Serialize)]
struct Opts {
    minutes: f64,
    conc: usize,
    seed: u64,
    json: PathBuf,
}

fn parse_args() -> Result<Opts, String> {
    let mut opts = Opts {
        minutes: 10.0,
        conc: 64,
        seed: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1),
        json: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/bench-soak.json"),
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
        match a.as_str() {
            "--minutes" => {
                let v = value("--minutes")?;
                opts.minutes = v.parse().map_err(|_| format!("bad --minutes {v:?}"))?;
                if opts.minutes.is_nan() || opts.minutes <= 0.0 {
                    return Err("--minutes must be positive".into());
                }
            }
            "--conc" => {
                let v = value("--conc")?;
                opts.conc = v.parse().map_err(|_| format!("bad --conc {v:?}"))?;
                if opts.conc == 0 {
                    return Err("--conc must be at least 1".into());
                }
            }
            "--seed" => {
                let v = value("--seed")?;
                opts.seed = v.parse().map_err(|_| format!("bad --seed {v:?}"))?;
            }
            "--json" => opts.json = PathBuf::from(value("--json")?),
            // cargo bench passes `--bench` to harness = false benches.
            "--bench" => {}
            "-h" | "--help" => return Err("help".into()),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(opts)
}

// ---------------------------------------------------------------------------------- server

/// The `strata` child process; killed (SIGTERM, then SIGKILL) when dropped.
struct Server {
    child: Child,
    pid: u32,
    endpoint: String,
    stderr_log: PathBuf,
}

impl Server {
    fn start(data: &Path, stderr_log: &Path) -> Result<Server, String> {
        let bin = env!("CARGO_BIN_EXE_strata");
        let log = std::fs::File::create(stderr_log).map_err(|e| format!("create {}: {e}", stderr_log.display()))?;
        let mut child = Command::new(bin)
            .args(["serve", "--listen", "127.0.0.1:0", "--data"])
            .arg(data)
            .env("STRATA_ROOT_ACCESS_KEY", ACCESS_KEY)
            .env("STRATA_ROOT_SECRET_KEY", SECRET_KEY)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .spawn()
            .map_err(|e| format!("cannot start {bin}: {e}"))?;
        let pid = child.id();
        let stdout = child.stdout.take().ok_or("no stdout pipe")?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut sent = false;
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if !sent {
                    if let Some(addr) = line.strip_prefix("listening on http://") {
                        let _ = tx.send(addr.trim().to_string());
                        sent = true;
                    }
                }
            }
        });
        let mut server = Server {
            child,
            pid,
            endpoint: String::new(),
            stderr_log: stderr_log.to_path_buf(),
        };
        match rx.recv_timeout(START_TIMEOUT) {
            Ok(addr) => server.endpoint = format!("http://{addr}"),
            Err(_) => {
                return Err(format!(
                    "strata did not print `listening on http://…` within {START_TIMEOUT:?}\n{}",
                    server.stderr_tail(20)
                ))
            }
        }
        Ok(server)
    }

    fn stderr_tail(&self, n: usize) -> String {
        let text = std::fs::read_to_string(&self.stderr_log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = Command::new("kill").arg("-TERM").arg(self.pid.to_string()).status();
        let until = Instant::now() + Duration::from_secs(10);
        while Instant::now() < until {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// --------------------------------------------------------------------------------- sampling

#[derive(Debug, Clone, Copy, Serialize)]
struct Sample {
    t_s: f64,
    rss_kib: u64,
    hwm_kib: u64,
    fds: i64,
    ops: u64,
}

fn proc_status(pid: u32) -> (u64, u64) {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn fd_count(pid: u32) -> i64 {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(-1, |d| d.count() as i64)
}

fn sample(pid: u32, t0: Instant, ops: u64) -> Sample {
    let (rss_kib, hwm_kib) = proc_status(pid);
    Sample {
        t_s: t0.elapsed().as_secs_f64(),
        rss_kib,
        hwm_kib,
        fds: fd_count(pid),
        ops,
    }
}

fn print_sample(s: &Sample, prev: Option<&Sample>, errors: u64) {
    let rate = prev.map_or(0.0, |p| (s.ops - p.ops) as f64 / (s.t_s - p.t_s).max(1e-9));
    println!(
        "[{:6.1} s] ops {:8} ({:6.0}/s)  rss {:7.1} MiB  hwm {:7.1} MiB  fds {:4}  unexpected errors {}",
        s.t_s,
        s.ops,
        rate,
        s.rss_kib as f64 / 1024.0,
        s.hwm_kib as f64 / 1024.0,
        s.fds,
        errors
    );
}

// --------------------------------------------------------------------------------- workload

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
enum Op {
    PutSmall,
    PutMedium,
    Get,
    GetRange,
    Head,
    List,
    Delete,
    DeleteObjects,
    Copy,
    Multipart,
    GetMissing,
}

/// Cumulative weights out of 1000 (see the module docs).
const MIX: &[(Op, u32)] = &[
    (Op::PutSmall, 293),
    (Op::PutMedium, 40),
    (Op::Get, 200),
    (Op::GetRange, 110),
    (Op::Head, 110),
    (Op::List, 80),
    (Op::Delete, 70),
    (Op::DeleteObjects, 25),
    (Op::Copy, 40),
    (Op::Multipart, 2),
    (Op::GetMissing, 30),
];

/// An object's expected bytes: concatenated generated segments `(seed, length)`.
#[derive(Clone, Debug)]
struct Content {
    segments: Vec<(u64, usize)>,
}

impl Content {
    fn len(&self) -> usize {
        self.segments.iter().map(|s| s.1).sum()
    }
    fn bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.len());
        for &(seed, len) in &self.segments {
            out.extend_from_slice(&generate(seed, len));
        }
        out
    }
}

/// Deterministic bytes from a seed (xorshift64*).
fn generate(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        out.extend_from_slice(&x.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
    }
    out.truncate(len);
    out
}

#[derive(Default)]
struct WorkerResult {
    latencies: HashMap<Op, Vec<u32>>,
    expected_errors: u64,
}

struct Shared {
    client: Client,
    deadline: Instant,
    ops: AtomicU64,
    unexpected: AtomicU64,
    errors: Mutex<Vec<String>>,
    stop: AtomicBool,
}

struct Worker {
    id: usize,
    rng: StdRng,
    objects: BTreeMap<String, Content>,
    next_key: u64,
}

impl Worker {
    fn prefix(&self) -> String {
        format!("w{:03}/", self.id)
    }

    fn new_key(&mut self) -> String {
        self.next_key += 1;
        let dir = self.rng.gen_range(0..DIRS_PER_WORKER);
        format!("{}d{dir}/k{:06}", self.prefix(), self.next_key)
    }

    fn pick(&mut self) -> Option<String> {
        if self.objects.is_empty() {
            return None;
        }
        let i = self.rng.gen_range(0..self.objects.len());
        self.objects.keys().nth(i).cloned()
    }

    fn choose_op(&mut self) -> Op {
        let r = self.rng.gen_range(0..1000u32);
        let mut acc = 0;
        let mut op = Op::PutSmall;
        for &(o, w) in MIX {
            acc += w;
            if r < acc {
                op = o;
                break;
            }
        }
        let full = self.objects.len() >= MAX_OBJECTS_PER_WORKER;
        match op {
            Op::PutSmall | Op::PutMedium | Op::Copy | Op::Multipart if full => Op::Delete,
            Op::Get | Op::GetRange | Op::Head | Op::Delete | Op::DeleteObjects | Op::Copy
                if self.objects.is_empty() =>
            {
                Op::PutSmall
            }
            other => other,
        }
    }
}

type OpResult = Result<(), String>;

fn sdk_err<E: std::error::Error>(what: &str, e: E) -> String {
    format!("{what}: {}", DisplayErrorContext(&e))
}

async fn put(s: &Shared, w: &mut Worker, min: usize, max: usize) -> OpResult {
    let key = w.new_key();
    let content = Content {
        segments: vec![(w.rng.gen(), w.rng.gen_range(min..=max))],
    };
    s.client
        .put_object()
        .bucket(BUCKET)
        .key(&key)
        .body(ByteStream::from(content.bytes()))
        .send()
        .await
        .map_err(|e| sdk_err(&format!("PUT {key}"), e))?;
    w.objects.insert(key, content);
    Ok(())
}

async fn get(s: &Shared, w: &mut Worker, ranged: bool) -> OpResult {
    let key = w.pick().ok_or("no object")?;
    let content = w.objects[&key].clone();
    let expected = content.bytes();
    let mut req = s.client.get_object().bucket(BUCKET).key(&key);
    let mut want: &[u8] = &expected;
    if ranged && !expected.is_empty() {
        let a = w.rng.gen_range(0..expected.len());
        let b = w.rng.gen_range(a..=(expected.len() - 1).min(a + 256 * KIB));
        req = req.range(format!("bytes={a}-{b}"));
        want = &expected[a..=b];
    }
    let resp = req.send().await.map_err(|e| sdk_err(&format!("GET {key}"), e))?;
    let body = resp
        .body
        .collect()
        .await
        .map_err(|e| sdk_err(&format!("GET {key} body"), e))?
        .into_bytes();
    if body.as_ref() != want {
        return Err(format!(
            "GET {key}{}: got {} bytes, expected {} (content differs)",
            if ranged { " (ranged)" } else { "" },
            body.len(),
            want.len()
        ));
    }
    Ok(())
}

async fn head(s: &Shared, w: &mut Worker) -> OpResult {
    let key = w.pick().ok_or("no object")?;
    let len = w.objects[&key].len();
    let resp = s
        .client
        .head_object()
        .bucket(BUCKET)
        .key(&key)
        .send()
        .await
        .map_err(|e| sdk_err(&format!("HEAD {key}"), e))?;
    if resp.content_length() != Some(len as i64) || resp.e_tag().is_none() {
        return Err(format!(
            "HEAD {key}: content-length {:?} (expected {len}), etag {:?}",
            resp.content_length(),
            resp.e_tag()
        ));
    }
    Ok(())
}

async fn list(s: &Shared, w: &mut Worker) -> OpResult {
    let prefix = w.prefix();
    if w.rng.gen_bool(0.5) {
        // One directory, no delimiter: exactly our keys with their sizes.
        let dir = format!("{prefix}d{}/", w.rng.gen_range(0..DIRS_PER_WORKER));
        let resp = s
            .client
            .list_objects_v2()
            .bucket(BUCKET)
            .prefix(&dir)
            .send()
            .await
            .map_err(|e| sdk_err(&format!("LIST {dir}"), e))?;
        let got: BTreeMap<String, i64> = resp
            .contents()
            .iter()
            .map(|o| (o.key().unwrap_or_default().to_string(), o.size().unwrap_or(-1)))
            .collect();
        let want: BTreeMap<String, i64> = w
            .objects
            .range(dir.clone()..)
            .take_while(|(k, _)| k.starts_with(&dir))
            .map(|(k, c)| (k.clone(), c.len() as i64))
            .collect();
        if got != want || resp.is_truncated() == Some(true) {
            return Err(format!("LIST {dir}: got {got:?}, expected {want:?}"));
        }
    } else {
        // Our prefix with `/`: exactly the non-empty directories as common prefixes.
        let resp = s
            .client
            .list_objects_v2()
            .bucket(BUCKET)
            .prefix(&prefix)
            .delimiter("/")
            .send()
            .await
            .map_err(|e| sdk_err(&format!("LIST {prefix} /"), e))?;
        let got: BTreeSet<String> = resp
            .common_prefixes()
            .iter()
            .filter_map(|p| p.prefix().map(str::to_string))
            .collect();
        let want: BTreeSet<String> = w
            .objects
            .keys()
            .filter_map(|k| k.rfind('/').map(|i| k[..=i].to_string()))
            .collect();
        if got != want || !resp.contents().is_empty() {
            return Err(format!(
                "LIST {prefix} delimiter /: prefixes {got:?}, expected {want:?}, {} objects",
                resp.contents().len()
            ));
        }
    }
    Ok(())
}

async fn delete(s: &Shared, w: &mut Worker) -> OpResult {
    let key = w.pick().ok_or("no object")?;
    s.client
        .delete_object()
        .bucket(BUCKET)
        .key(&key)
        .send()
        .await
        .map_err(|e| sdk_err(&format!("DELETE {key}"), e))?;
    w.objects.remove(&key);
    Ok(())
}

async fn delete_objects(s: &Shared, w: &mut Worker) -> OpResult {
    let mut keys = BTreeSet::new();
    for _ in 0..w.rng.gen_range(1..=4) {
        if let Some(k) = w.pick() {
            keys.insert(k);
        }
    }
    let missing = format!("{}missing/{}", w.prefix(), w.rng.gen::<u32>());
    let mut ids = Vec::new();
    for k in keys.iter().chain(std::iter::once(&missing)) {
        ids.push(
            ObjectIdentifier::builder()
                .key(k)
                .build()
                .map_err(|e| format!("build ObjectIdentifier: {e}"))?,
        );
    }
    let delete = Delete::builder()
        .set_objects(Some(ids))
        .build()
        .map_err(|e| format!("build Delete: {e}"))?;
    let resp = s
        .client
        .delete_objects()
        .bucket(BUCKET)
        .delete(delete)
        .send()
        .await
        .map_err(|e| sdk_err("DeleteObjects", e))?;
    if !resp.errors().is_empty() {
        return Err(format!("DeleteObjects: errors {:?}", resp.errors()));
    }
    let deleted: BTreeSet<&str> = resp.deleted().iter().filter_map(|d| d.key()).collect();
    for k in &keys {
        if !deleted.contains(k.as_str()) {
            return Err(format!("DeleteObjects: {k} not reported deleted ({deleted:?})"));
        }
        w.objects.remove(k);
    }
    Ok(())
}

async fn copy(s: &Shared, w: &mut Worker) -> OpResult {
    let src = w.pick().ok_or("no object")?;
    let content = w.objects[&src].clone();
    let dst = w.new_key();
    s.client
        .copy_object()
        .bucket(BUCKET)
        .key(&dst)
        .copy_source(format!("{BUCKET}/{src}"))
        .send()
        .await
        .map_err(|e| sdk_err(&format!("COPY {src} -> {dst}"), e))?;
    w.objects.insert(dst, content);
    Ok(())
}

async fn multipart(s: &Shared, w: &mut Worker) -> OpResult {
    let key = w.new_key();
    let segments = vec![(w.rng.gen(), PART_SIZE), (w.rng.gen(), w.rng.gen_range(KIB..=64 * KIB))];
    let up = s
        .client
        .create_multipart_upload()
        .bucket(BUCKET)
        .key(&key)
        .send()
        .await
        .map_err(|e| sdk_err(&format!("CreateMultipartUpload {key}"), e))?;
    let upload_id = up.upload_id().ok_or("CreateMultipartUpload: no upload id")?.to_string();
    let mut parts = Vec::new();
    for (i, &(seed, len)) in segments.iter().enumerate() {
        let n = i as i32 + 1;
        let resp = s
            .client
            .upload_part()
            .bucket(BUCKET)
            .key(&key)
            .upload_id(&upload_id)
            .part_number(n)
            .body(ByteStream::from(generate(seed, len)))
            .send()
            .await
            .map_err(|e| sdk_err(&format!("UploadPart {key} #{n}"), e))?;
        parts.push(
            CompletedPart::builder()
                .part_number(n)
                .set_e_tag(resp.e_tag().map(str::to_string))
                .build(),
        );
    }
    s.client
        .complete_multipart_upload()
        .bucket(BUCKET)
        .key(&key)
        .upload_id(&upload_id)
        .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(parts)).build())
        .send()
        .await
        .map_err(|e| sdk_err(&format!("CompleteMultipartUpload {key}"), e))?;
    w.objects.insert(key, Content { segments });
    Ok(())
}

/// GET of a key that was never written: `NoSuchKey` is the expected answer.
async fn get_missing(s: &Shared, w: &mut Worker) -> Result<bool, String> {
    let key = format!("{}missing/{}", w.prefix(), w.rng.gen::<u64>());
    match s.client.get_object().bucket(BUCKET).key(&key).send().await {
        Ok(_) => Err(format!("GET {key}: a missing key was found")),
        Err(e) if e.as_service_error().is_some_and(|se| se.is_no_such_key()) => Ok(true),
        Err(e) => Err(sdk_err(&format!("GET missing {key} (expected NoSuchKey)"), e)),
    }
}

async fn worker(shared: Arc<Shared>, id: usize, seed: u64) -> WorkerResult {
    let mut w = Worker {
        id,
        rng: StdRng::seed_from_u64(seed ^ (id as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)),
        objects: BTreeMap::new(),
        next_key: 0,
    };
    let mut res = WorkerResult::default();
    while Instant::now() < shared.deadline && !shared.stop.load(Ordering::Relaxed) {
        let op = w.choose_op();
        let t0 = Instant::now();
        let s = &*shared;
        let outcome = match op {
            Op::PutSmall => put(s, &mut w, KIB, 16 * KIB).await,
            Op::PutMedium => put(s, &mut w, 64 * KIB, 2 * 1024 * KIB).await,
            Op::Get => get(s, &mut w, false).await,
            Op::GetRange => get(s, &mut w, true).await,
            Op::Head => head(s, &mut w).await,
            Op::List => list(s, &mut w).await,
            Op::Delete => delete(s, &mut w).await,
            Op::DeleteObjects => delete_objects(s, &mut w).await,
            Op::Copy => copy(s, &mut w).await,
            Op::Multipart => multipart(s, &mut w).await,
            Op::GetMissing => get_missing(s, &mut w).await.map(|expected| {
                if expected {
                    res.expected_errors += 1;
                }
            }),
        };
        let micros = t0.elapsed().as_micros().min(u128::from(u32::MAX)) as u32;
        res.latencies.entry(op).or_default().push(micros);
        shared.ops.fetch_add(1, Ordering::Relaxed);
        if let Err(e) = outcome {
            shared.unexpected.fetch_add(1, Ordering::Relaxed);
            let mut errs = shared.errors.lock().unwrap_or_else(|p| p.into_inner());
            if errs.len() < 200 {
                eprintln!("unexpected error ({op:?}): {e}");
                errs.push(format!("{op:?}: {e}"));
            }
        }
    }
    res
}

// ---------------------------------------------------------------------------------- report

#[derive(Debug, Serialize)]
struct OpStats {
    count: usize,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
}

#[derive(Debug, Serialize)]
struct Report {
    opts: Opts,
    duration_s: f64,
    warmup_s: f64,
    total_ops: u64,
    ops_per_s: f64,
    ops: BTreeMap<Op, OpStats>,
    expected_errors: u64,
    unexpected_errors: u64,
    unexpected_error_list: Vec<String>,
    rss_start_mib: f64,
    rss_after_warmup_mib: f64,
    rss_end_mib: f64,
    rss_max_mib: f64,
    hwm_end_mib: f64,
    rss_growth_after_warmup_mib: f64,
    fds_start: i64,
    fds_end_with_client: i64,
    fds_end: i64,
    pass: bool,
    verdict: Vec<String>,
    samples: Vec<Sample>,
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    f64::from(sorted[i]) / 1000.0
}

fn mib(kib: u64) -> f64 {
    kib as f64 * 1024.0 / MIB
}

async fn run(opts: Opts) -> Result<bool, String> {
    let dir = tempfile::Builder::new()
        .prefix("strata-soak-")
        .tempdir()
        .map_err(|e| format!("cannot create a temp dir: {e}"))?;
    let server = Server::start(&dir.path().join("data"), &dir.path().join("strata.stderr"))?;
    println!(
        "soak: strata pid {} at {}, {} workers, {} min, seed {}",
        server.pid, server.endpoint, opts.conc, opts.minutes, opts.seed
    );
    let client = {
        let creds = Credentials::new(ACCESS_KEY, SECRET_KEY, None, None, "soak");
        let conf = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(REGION))
            .endpoint_url(&server.endpoint)
            .credentials_provider(creds)
            .force_path_style(true)
            .retry_config(RetryConfig::disabled())
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(10))
                    .operation_timeout(OP_TIMEOUT)
                    .build(),
            )
            .build();
        Client::from_conf(conf)
    };
    client
        .create_bucket()
        .bucket(BUCKET)
        .send()
        .await
        .map_err(|e| sdk_err("CreateBucket", e))?;

    let t0 = Instant::now();
    let duration = Duration::from_secs_f64(opts.minutes * 60.0);
    let warmup = Duration::from_secs(60).min(duration / 2);
    // Descriptors and memory before any load (the CreateBucket connection is idle in the pool).
    let start = sample(server.pid, t0, 0);
    let fds_start = start.fds;
    let shared = Arc::new(Shared {
        client: client.clone(),
        deadline: t0 + duration,
        ops: AtomicU64::new(0),
        unexpected: AtomicU64::new(0),
        errors: Mutex::new(Vec::new()),
        stop: AtomicBool::new(false),
    });
    let samples = Arc::new(Mutex::new(vec![start]));
    print_sample(&start, None, 0);
    let sampler = {
        let shared = shared.clone();
        let samples = samples.clone();
        let pid = server.pid;
        tokio::spawn(async move {
            let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + SAMPLE_EVERY, SAMPLE_EVERY);
            loop {
                tick.tick().await;
                let s = sample(pid, t0, shared.ops.load(Ordering::Relaxed));
                let mut all = samples.lock().unwrap_or_else(|p| p.into_inner());
                print_sample(&s, all.last(), shared.unexpected.load(Ordering::Relaxed));
                all.push(s);
                if shared.stop.load(Ordering::Relaxed) {
                    break;
                }
            }
        })
    };
    let handles: Vec<_> = (0..opts.conc)
        .map(|id| tokio::spawn(worker(shared.clone(), id, opts.seed)))
        .collect();
    let mut results = Vec::new();
    for h in handles {
        results.push(h.await.map_err(|e| format!("worker task failed: {e}"))?);
    }
    let load_secs = t0.elapsed().as_secs_f64();
    shared.stop.store(true, Ordering::Relaxed);
    sampler.abort();

    let end = sample(server.pid, t0, shared.ops.load(Ordering::Relaxed));
    let fds_end_with_client = end.fds;
    // Close the client's keep-alive connections, then let the server notice.
    drop(client);
    let errors = shared.errors.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let total_ops = shared.ops.load(Ordering::Relaxed);
    let unexpected = shared.unexpected.load(Ordering::Relaxed);
    drop(shared);
    let settle_until = Instant::now() + Duration::from_secs(10);
    let mut fds_end = fd_count(server.pid);
    while fds_end > fds_start + MAX_FD_GROWTH && Instant::now() < settle_until {
        tokio::time::sleep(Duration::from_millis(200)).await;
        fds_end = fd_count(server.pid);
    }
    let mut samples = samples.lock().unwrap_or_else(|p| p.into_inner()).clone();
    samples.push(end);
    print_sample(&end, samples.iter().rev().nth(1), unexpected);

    // Aggregate.
    let mut lat: BTreeMap<Op, Vec<u32>> = BTreeMap::new();
    let mut expected_errors = 0;
    for r in results {
        expected_errors += r.expected_errors;
        for (op, v) in r.latencies {
            lat.entry(op).or_default().extend(v);
        }
    }
    let ops: BTreeMap<Op, OpStats> = lat
        .into_iter()
        .map(|(op, mut v)| {
            v.sort_unstable();
            let stats = OpStats {
                count: v.len(),
                p50_ms: percentile(&v, 0.50),
                p99_ms: percentile(&v, 0.99),
                max_ms: percentile(&v, 1.0),
            };
            (op, stats)
        })
        .collect();
    let warm = samples
        .iter()
        .find(|s| s.t_s >= warmup.as_secs_f64())
        .copied()
        .unwrap_or(end);
    let rss_max = samples.iter().map(|s| s.rss_kib).max().unwrap_or(0);
    let growth = mib(end.rss_kib) - mib(warm.rss_kib);
    let mut verdict = Vec::new();
    let rss_ok = growth <= MAX_RSS_GROWTH_MIB;
    verdict.push(format!(
        "RSS growth after warm-up {growth:.1} MiB (limit {MAX_RSS_GROWTH_MIB} MiB): {}",
        if rss_ok { "ok" } else { "FAIL" }
    ));
    let fd_ok = fds_end >= 0 && fds_end <= fds_start + MAX_FD_GROWTH;
    verdict.push(format!(
        "fds {fds_start} at start, {fds_end} at end (limit start + {MAX_FD_GROWTH}): {}",
        if fd_ok { "ok" } else { "FAIL" }
    ));
    let err_ok = unexpected == 0;
    verdict.push(format!(
        "unexpected errors {unexpected}: {}",
        if err_ok { "ok" } else { "FAIL" }
    ));
    let pass = rss_ok && fd_ok && err_ok;

    println!("\n== soak results ({load_secs:.0} s, {} workers) ==", opts.conc);
    println!(
        "{:<15} {:>9} {:>10} {:>10} {:>10}",
        "op", "count", "p50 ms", "p99 ms", "max ms"
    );
    for (op, s) in &ops {
        println!(
            "{:<15} {:>9} {:>10.2} {:>10.2} {:>10.1}",
            format!("{op:?}"),
            s.count,
            s.p50_ms,
            s.p99_ms,
            s.max_ms
        );
    }
    println!(
        "total {total_ops} ops ({:.0}/s); expected errors (NoSuchKey on missing keys) {expected_errors}; unexpected errors {unexpected}",
        total_ops as f64 / load_secs
    );
    for e in errors.iter().take(20) {
        println!("  unexpected: {e}");
    }
    println!(
        "RSS: start {:.1} MiB, after warm-up ({:.0} s) {:.1} MiB, end {:.1} MiB, max {:.1} MiB (VmHWM {:.1} MiB)",
        mib(start.rss_kib),
        warm.t_s,
        mib(warm.rss_kib),
        mib(end.rss_kib),
        mib(rss_max),
        mib(end.hwm_kib)
    );
    println!("fds: start {fds_start}, end {fds_end_with_client} with the client connected, {fds_end} after it closed");
    for v in &verdict {
        println!("  {v}");
    }
    println!("verdict: {}", if pass { "PASS" } else { "FAIL" });
    if !err_ok {
        println!("server stderr (tail):\n{}", server.stderr_tail(30));
    }

    let report = Report {
        opts: opts.clone(),
        duration_s: load_secs,
        warmup_s: warmup.as_secs_f64(),
        total_ops,
        ops_per_s: total_ops as f64 / load_secs,
        ops,
        expected_errors,
        unexpected_errors: unexpected,
        unexpected_error_list: errors,
        rss_start_mib: mib(start.rss_kib),
        rss_after_warmup_mib: mib(warm.rss_kib),
        rss_end_mib: mib(end.rss_kib),
        rss_max_mib: mib(rss_max),
        hwm_end_mib: mib(end.hwm_kib),
        rss_growth_after_warmup_mib: growth,
        fds_start,
        fds_end_with_client,
        fds_end,
        pass,
        verdict,
        samples,
    };
    if let Some(parent) = opts.json.parent() {
        let _ = std::fs::create_dir_all(parent);
    }
    let json = serde_json::to_string_pretty(&report).map_err(|e| format!("serialize report: {e}"))?;
    std::fs::write(&opts.json, json).map_err(|e| format!("write {}: {e}", opts.json.display()))?;
    println!("wrote {}", opts.json.display());
    drop(server);
    Ok(pass)
}
