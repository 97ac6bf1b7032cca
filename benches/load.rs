//! Load benchmark: Strata against s3s-fs 0.14.1 and a plain loopback HTTP baseline.
//!
//! Run with `cargo bench --bench load` (add `-- --quick` for a short smoke run, `-- --help` for
//! all options). What it does:
//!
//! * **Servers.** Three server processes, each pinned to core 0 with `taskset -c 0` when
//!   `taskset` exists: the release `strata` binary (`strata serve --listen 127.0.0.1:0`, fresh
//!   temp data dir, root keys from `STRATA_ROOT_*`), s3s-fs 0.14.1 (this bench binary re-executed
//!   with `STRATA_BENCH_ROLE=s3s-fs`: `s3s_fs::FileSystem` behind `S3ServiceBuilder` +
//!   `SimpleAuth`, hyper-util's auto server, `TCP_NODELAY` on accepted sockets as Strata does),
//!   and a baseline (`STRATA_BENCH_ROLE=baseline`): a minimal hyper server that discards a POSTed
//!   body or serves a 64 MiB body from memory — "a plain loopback copy of the same bytes".
//! * **Load generator.** This process, pinned to core 1 (`taskset -a -p -c 1` on itself before
//!   any thread exists; `libc` is not a dependency, so no `sched_setaffinity`). A single-threaded
//!   tokio runtime drives `--conc` workers (default 16) through one hyper-util legacy client
//!   (HTTP/1.1 keep-alive, `TCP_NODELAY`). Every request — to every server, the baseline
//!   included — is SigV4-signed with aws-sigv4 (header signature, `UNSIGNED-PAYLOAD`), and the S3
//!   servers verify the signature, as in `/work/shared/bench`.
//! * **Measurements.** Each lasts `--duration` seconds (default 10): workers start requests until
//!   the deadline, in-flight requests complete, and rates are completed work divided by the time
//!   until the last one finished. Phases: PUT 4 KiB to distinct keys; GET 4 KiB of one of 1000
//!   pre-populated objects chosen at random; PUT and GET 64 MiB objects with `--large-conc`
//!   workers (default 4). `--runs` (default 3) runs are interleaved (run 1 of every phase on every
//!   server, then run 2 …, alternating which server goes first) and reported as median
//!   [min–max]. Before each measurement the server's peak-RSS counter is reset
//!   (`/proc/PID/clear_refs` ← 5) and afterwards `VmHWM` is read, so the RSS figure is the peak
//!   of that phase; server CPU, load-generator CPU and the CPU used by everything else on the box
//!   are taken from `/proc` (runs with other CPU above 20 % of a core are flagged `noisy`).
//! * **`--big`** (opt-in, needs ≥ 12 GiB free): one 5 GiB PUT to Strata only, its body
//!   generated on the fly in 1 MiB chunks (never held by the client), while Strata's RSS is
//!   sampled every 100 ms; reports the max sample and `VmHWM` (target < 100 MiB).
//!
//! Strata fsyncs every acknowledged write (group commit); s3s-fs never fsyncs, so write figures
//! compare a durable store with a non-durable one. Results are printed as tables with
//! Strata/s3s-fs and Strata/baseline ratios and written to `target/bench-load.json`.

use std::convert::Infallible;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::{Child, ChildStdin, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::task::{Context as TaskContext, Poll};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{anyhow, bail, Context, Result};
use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    sign, PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SigningSettings,
    UriPathNormalizationMode,
};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rand::rngs::StdRng;
use rand::{Rng, RngCore, SeedableRng};
use serde::Serialize;

const ROLE_ENV: &str = "STRATA_BENCH_ROLE";
const ACCESS_KEY: &str = "BENCHACCESSKEY0001";
const SECRET_KEY: &str = "bench-secret-key-0123456789abcdefghijklmn";
const REGION: &str = "us-east-1";
const BUCKET: &str = "bench";
const SMALL: usize = 4 << 10;
const LARGE: usize = 64 << 20;
const SMALL_POPULATION: usize = 1000;
const BIG: u64 = 5 << 30;
const BIG_MIN_FREE: u64 = 12 << 30;
const MIB: f64 = 1024.0 * 1024.0;
const NOISY_OTHER_CPU_PCT: f64 = 20.0;
const CLIENT_BOUND_CPU_PCT: f64 = 90.0;
const START_TIMEOUT: Duration = Duration::from_secs(60);

fn main() -> ExitCode {
    let result = match std::env::var(ROLE_ENV).as_deref() {
        Ok("s3s-fs") => child_s3s_fs(),
        Ok("baseline") => child_baseline(),
        Ok(other) => Err(anyhow!("unknown {ROLE_ENV}={other:?} (expected s3s-fs or baseline)")),
        Err(_) => parent(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("load bench: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

// ------------------------------------------------------------------------------------ options

const USAGE: &str = "usage: cargo bench --bench load -- [options]
  --duration SECS   length of each measurement (default 10; --quick: 3)
  --runs N          interleaved runs per measurement (default 3; --quick: 1)
  --conc N          concurrency for 4 KiB phases (default 16)
  --large-conc N    concurrency for 64 MiB phases (default 4)
  --only LIST       comma list of put4k,get4k,put64,get64 (default: all)
  --big             also PUT one 5 GiB streamed object to Strata, sampling its RSS
  --quick           short smoke run
  --no-pin          do not pin servers / load generator to cores
  --wait-quiet SECS before each measurement wait up to SECS for the box to go idle (default 0)
  --json PATH       where to write results (default target/bench-load.json)";

#[derive(Debug, Clone, Serialize)]
struct Opts {
    duration_s: f64,
    runs: usize,
    conc: usize,
    large_conc: usize,
    phases: Vec<Phase>,
    big: bool,
    pin: bool,
    wait_quiet_s: f64,
    #[serde(skip)]
    json_path: PathBuf,
}

fn parse_opts() -> Result<Opts> {
    let mut args = std::env::args().skip(1);
    let (mut duration, mut runs, mut quick) = (None, None, false);
    let mut o = Opts {
        duration_s: 10.0,
        runs: 3,
        conc: 16,
        large_conc: 4,
        phases: Phase::ALL.to_vec(),
        big: false,
        pin: true,
        wait_quiet_s: 0.0,
        json_path: default_json_path(),
    };
    fn value<T: std::str::FromStr>(flag: &str, v: Option<String>) -> Result<T> {
        let v = v.ok_or_else(|| anyhow!("{flag} needs a value\n{USAGE}"))?;
        v.parse().map_err(|_| anyhow!("bad value {v:?} for {flag}\n{USAGE}"))
    }
    while let Some(a) = args.next() {
        match a.as_str() {
            "--duration" => duration = Some(value::<f64>(&a, args.next())?),
            "--runs" => runs = Some(value::<usize>(&a, args.next())?),
            "--conc" => o.conc = value(&a, args.next())?,
            "--large-conc" => o.large_conc = value(&a, args.next())?,
            "--only" => {
                let list: String = value(&a, args.next())?;
                o.phases = list
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(Phase::parse)
                    .collect::<Result<_>>()?;
            }
            "--big" => o.big = true,
            "--quick" => quick = true,
            "--no-pin" => o.pin = false,
            "--wait-quiet" => o.wait_quiet_s = value(&a, args.next())?,
            "--json" => o.json_path = PathBuf::from(value::<String>(&a, args.next())?),
            // cargo bench passes --bench to harness = false targets.
            "--bench" => {}
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => bail!("unknown argument {other:?}\n{USAGE}"),
        }
    }
    o.duration_s = duration.unwrap_or(if quick { 3.0 } else { 10.0 });
    o.runs = runs.unwrap_or(if quick { 1 } else { 3 });
    if o.duration_s <= 0.0 || o.runs == 0 || o.conc == 0 || o.large_conc == 0 {
        bail!("--duration, --runs, --conc and --large-conc must be positive");
    }
    Ok(o)
}

/// `target/bench-load.json`, with `target` found from this executable (`target/release/deps/load-…`).
fn default_json_path() -> PathBuf {
    let from_exe = std::env::current_exe()
        .ok()
        .and_then(|p| p.ancestors().nth(3).map(Path::to_path_buf))
        .filter(|t| t.join("CACHEDIR.TAG").exists() || t.ends_with("target"));
    from_exe
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"))
        .join("bench-load.json")
}

// ------------------------------------------------------------------------------- phases, targets

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
enum Phase {
    Put4k,
    Get4k,
    Put64,
    Get64,
}

impl Phase {
    const ALL: [Phase; 4] = [Phase::Put4k, Phase::Get4k, Phase::Put64, Phase::Get64];

    fn parse(s: &str) -> Result<Phase> {
        Ok(match s {
            "put4k" => Phase::Put4k,
            "get4k" => Phase::Get4k,
            "put64" => Phase::Put64,
            "get64" => Phase::Get64,
            _ => bail!("unknown phase {s:?} (put4k,get4k,put64,get64)"),
        })
    }

    fn key(self) -> &'static str {
        match self {
            Phase::Put4k => "put4k",
            Phase::Get4k => "get4k",
            Phase::Put64 => "put64",
            Phase::Get64 => "get64",
        }
    }

    fn large(self) -> bool {
        matches!(self, Phase::Put64 | Phase::Get64)
    }

    fn label(self, o: &Opts) -> String {
        match self {
            Phase::Put4k => format!("PUT 4 KiB, new keys (conc {})", o.conc),
            Phase::Get4k => format!("GET 4 KiB, random of {SMALL_POPULATION} (conc {})", o.conc),
            Phase::Put64 => format!("PUT 64 MiB (conc {})", o.large_conc),
            Phase::Get64 => format!("GET 64 MiB (conc {})", o.large_conc),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
enum Kind {
    #[serde(rename = "strata")]
    Strata,
    #[serde(rename = "s3s-fs")]
    S3sFs,
    #[serde(rename = "baseline")]
    Baseline,
    /// A second Strata server whose bucket encrypts everything (SSE-S3 default encryption):
    /// the 64 MiB phases compare it with plain Strata in the same run.
    #[serde(rename = "strata-sse")]
    StrataSse,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Strata => "strata",
            Kind::S3sFs => "s3s-fs",
            Kind::Baseline => "baseline",
            Kind::StrataSse => "strata-sse",
        }
    }
}

/// Where a server listens, as the load generator needs it.
#[derive(Debug, Clone)]
struct Target {
    kind: Kind,
    host: String,
    pid: u32,
}

// ----------------------------------------------------------------------------- child processes

/// s3s-fs 0.14.1 exactly as its own binary serves it, plus `TCP_NODELAY`.
fn child_s3s_fs() -> Result<()> {
    let dir = std::env::args()
        .nth(1)
        .context("s3s-fs role needs the data dir as its argument")?;
    exit_when_parent_goes();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(async move {
        let fs = s3s_fs::FileSystem::new(&dir).map_err(|e| anyhow!("s3s-fs on {dir}: {e:?}"))?;
        let mut b = s3s::service::S3ServiceBuilder::new(fs);
        b.set_auth(s3s::auth::SimpleAuth::from_single(ACCESS_KEY, SECRET_KEY));
        let service = b.build();
        serve_loop(move |stream| {
            let conn = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service.clone())
                .into_owned();
            tokio::spawn(async move {
                let _ = conn.await;
            });
        })
        .await
    })
}

/// The floor for large transfers: accept a body and drop it, or serve 64 MiB from memory.
fn child_baseline() -> Result<()> {
    exit_when_parent_goes();
    let blob = payload(LARGE, 64);
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(serve_loop(move |stream| {
        let blob = blob.clone();
        let svc = hyper::service::service_fn(move |req: http::Request<Incoming>| {
            let blob = blob.clone();
            async move {
                let resp = if req.method() == http::Method::GET {
                    http::Response::new(Full::new(blob))
                } else {
                    let mut body = req.into_body();
                    let mut status = http::StatusCode::OK;
                    while let Some(frame) = body.frame().await {
                        if frame.is_err() {
                            status = http::StatusCode::BAD_REQUEST;
                            break;
                        }
                    }
                    let mut r = http::Response::new(Full::new(Bytes::new()));
                    *r.status_mut() = status;
                    r
                };
                Ok::<_, Infallible>(resp)
            }
        });
        let conn = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
            .serve_connection(TokioIo::new(stream), svc)
            .into_owned();
        tokio::spawn(async move {
            let _ = conn.await;
        });
    }))
}

/// Bind 127.0.0.1:0, print the line Strata prints, hand every accepted socket to `serve`.
async fn serve_loop(mut serve: impl FnMut(tokio::net::TcpStream)) -> Result<()> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "listening on http://{addr}")?;
        out.flush()?;
    }
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let _ = stream.set_nodelay(true);
                serve(stream);
            }
            Err(e) => {
                eprintln!("accept: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// The parent keeps our stdin open; EOF means it is gone, so do not linger as an orphan.
fn exit_when_parent_goes() {
    std::thread::spawn(|| {
        let mut sink = [0u8; 64];
        let mut stdin = std::io::stdin();
        while matches!(stdin.read(&mut sink), Ok(n) if n > 0) {}
        std::process::exit(0);
    });
}

/// A running server process; killed (by its own pid) when dropped.
struct ServerProc {
    target: Target,
    child: Child,
    _stdin: Option<ChildStdin>,
    log: PathBuf,
}

impl ServerProc {
    fn spawn(kind: Kind, mut cmd: Command, log: PathBuf, keep_stdin: bool) -> Result<ServerProc> {
        let logf = std::fs::File::create(&log).with_context(|| format!("create {}", log.display()))?;
        cmd.stdout(Stdio::piped())
            .stderr(logf)
            .stdin(if keep_stdin { Stdio::piped() } else { Stdio::null() });
        let mut child = cmd
            .spawn()
            .with_context(|| format!("start {} ({cmd:?})", kind.name()))?;
        let stdout = child.stdout.take().context("child stdout")?;
        let stdin = child.stdin.take();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut sent = false;
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if !sent {
                    if let Some(rest) = line.strip_prefix("listening on http://") {
                        let _ = tx.send(rest.trim().to_string());
                        sent = true;
                    }
                }
            }
        });
        let mut proc = ServerProc {
            target: Target {
                kind,
                host: String::new(),
                pid: child.id(),
            },
            child,
            _stdin: stdin,
            log,
        };
        match rx.recv_timeout(START_TIMEOUT) {
            Ok(host) => proc.target.host = host,
            Err(_) => bail!(
                "{} did not print `listening on http://…` within {START_TIMEOUT:?}{}",
                kind.name(),
                proc.log_tail()
            ),
        }
        Ok(proc)
    }

    fn check_alive(&mut self) -> Result<()> {
        if let Ok(Some(status)) = self.child.try_wait() {
            bail!("{} exited ({status}){}", self.target.kind.name(), self.log_tail());
        }
        Ok(())
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(20)..].join("\n");
        format!("\n--- last lines of {} ---\n{tail}", self.log.display())
    }
}

impl Drop for ServerProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn command(program: &Path, pin_core: Option<u32>) -> Command {
    match pin_core {
        Some(core) => {
            let mut c = Command::new("taskset");
            c.arg("-c").arg(core.to_string()).arg(program);
            c
        }
        None => Command::new(program),
    }
}

// ---------------------------------------------------------------------------------- /proc

fn read_proc(path: &str) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

/// A `VmXxx:   123 kB` field of /proc/PID/status, in bytes.
fn proc_status_bytes(pid: u32, field: &str) -> Option<u64> {
    let s = read_proc(&format!("/proc/{pid}/status"))?;
    let line = s
        .lines()
        .find(|l| l.starts_with(field) && l[field.len()..].starts_with(':'))?;
    let kb: u64 = line[field.len() + 1..].split_whitespace().next()?.parse().ok()?;
    Some(kb * 1024)
}

/// Reset the process's peak RSS (`VmHWM`) to its current RSS. False if the kernel refused.
fn reset_peak_rss(pid: u32) -> bool {
    std::fs::write(format!("/proc/{pid}/clear_refs"), b"5").is_ok()
}

/// utime + stime of a process (all threads), in clock ticks; "self" works too.
fn proc_cpu_ticks(pid: &str) -> u64 {
    let Some(s) = read_proc(&format!("/proc/{pid}/stat")) else {
        return 0;
    };
    let Some(close) = s.rfind(')') else { return 0 };
    let f: Vec<&str> = s[close + 2..].split_whitespace().collect();
    let get = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    get(11) + get(12)
}

/// Busy jiffies over all CPUs: user + nice + system + steal. irq/softirq time is left out: the
/// kernel's loopback TCP work lands there without being charged to any process, and would
/// otherwise make every fast transfer look like a noisy run.
fn system_busy_ticks() -> u64 {
    let Some(s) = read_proc("/proc/stat") else { return 0 };
    let v: Vec<u64> = s
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    [0usize, 1, 2, 7].iter().map(|&i| v.get(i).copied().unwrap_or(0)).sum()
}

fn clock_ticks_per_sec() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// Free bytes on the filesystem holding `path` (from `df`, as libc is not a dependency).
fn free_bytes(path: &Path) -> Result<u64> {
    let out = Command::new("df").arg("-Pk").arg(path).output().context("run df")?;
    let text = String::from_utf8_lossy(&out.stdout);
    let avail = text
        .lines()
        .nth(1)
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|v| v.parse::<u64>().ok())
        .ok_or_else(|| anyhow!("cannot parse `df -Pk {}` output: {text:?}", path.display()))?;
    Ok(avail * 1024)
}

/// Pin this process (all its threads) to `core`. Must run before the runtime starts threads.
fn pin_self(core: u32) -> Result<()> {
    let status = Command::new("taskset")
        .args(["-a", "-p", "-c", &core.to_string(), &std::process::id().to_string()])
        .stdout(Stdio::null())
        .status()
        .context("run taskset")?;
    if !status.success() {
        bail!("taskset -a -p -c {core} failed: {status}");
    }
    Ok(())
}

fn have_taskset() -> bool {
    Command::new("taskset")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

// ----------------------------------------------------------------------------------- client

type ReqBody = BoxBody<Bytes, Infallible>;

/// The one client used for every server: hyper-util's pooled HTTP/1.1 client + SigV4 per request.
#[derive(Clone)]
struct Loadgen {
    http: Client<HttpConnector, ReqBody>,
    identity: Arc<Identity>,
}

impl Loadgen {
    fn new(max_conns: usize) -> Loadgen {
        let mut conn = HttpConnector::new();
        conn.set_nodelay(true);
        let http = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(max_conns)
            .pool_idle_timeout(Duration::from_secs(300))
            .build(conn);
        let creds = Credentials::new(ACCESS_KEY, SECRET_KEY, None, None, "strata-load-bench");
        Loadgen {
            http,
            identity: Arc::new(creds.into()),
        }
    }

    /// Sign (SigV4 header, UNSIGNED-PAYLOAD) and send; returns the response head and body.
    async fn send(
        &self,
        method: http::Method,
        t: &Target,
        path: &str,
        body: ReqBody,
        len: Option<u64>,
    ) -> Result<http::Response<Incoming>> {
        let uri = format!("http://{}{path}", t.host);
        let mut req = http::Request::builder()
            .method(method)
            .uri(&uri)
            .header(http::header::HOST, &t.host);
        if let Some(n) = len {
            req = req.header(http::header::CONTENT_LENGTH, n);
        }
        let mut req = req.body(body).context("build request")?;
        self.sign(&mut req)?;
        self.http
            .request(req)
            .await
            .map_err(|e| anyhow!("{} {uri}: {e:?}", t.kind.name()))
    }

    fn sign(&self, req: &mut http::Request<ReqBody>) -> Result<()> {
        let mut settings = SigningSettings::default();
        settings.percent_encoding_mode = PercentEncodingMode::Single;
        settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
        settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
        let params = v4::SigningParams::builder()
            .identity(&self.identity)
            .region(REGION)
            .name("s3")
            .time(SystemTime::now())
            .settings(settings)
            .build()
            .context("SigV4 params")?
            .into();
        let uri = req.uri().to_string();
        let headers: Vec<(&str, &str)> = req
            .headers()
            .iter()
            .map(|(k, v)| Ok((k.as_str(), v.to_str()?)))
            .collect::<Result<_, http::header::ToStrError>>()
            .context("non-ASCII header")?;
        let signable = SignableRequest::new(
            req.method().as_str(),
            uri.as_str(),
            headers.into_iter(),
            SignableBody::UnsignedPayload,
        )
        .context("signable request")?;
        let (instructions, _) = sign(signable, &params).context("SigV4 sign")?.into_parts();
        instructions.apply_to_request_http1x(req);
        Ok(())
    }

    /// One request that must answer 2xx; returns the number of response body bytes.
    async fn call(&self, method: http::Method, t: &Target, path: &str, body: ReqBody, len: Option<u64>) -> Result<u64> {
        let what = format!("{method} {path}");
        let resp = self.send(method, t, path, body, len).await?;
        let status = resp.status();
        if !status.is_success() {
            let body = resp
                .into_body()
                .collect()
                .await
                .map(|c| c.to_bytes())
                .unwrap_or_default();
            let text = String::from_utf8_lossy(&body[..body.len().min(400)]).into_owned();
            bail!("{} {what}: HTTP {status}: {text}", t.kind.name());
        }
        let mut body = resp.into_body();
        let mut n = 0u64;
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| anyhow!("{} {what}: reading body: {e}", t.kind.name()))?;
            if let Some(d) = frame.data_ref() {
                n += d.len() as u64;
            }
        }
        Ok(n)
    }

    async fn put(&self, t: &Target, key: &str, data: &Bytes) -> Result<u64> {
        let path = format!("/{BUCKET}/{key}");
        let len = data.len() as u64;
        self.call(http::Method::PUT, t, &path, Full::new(data.clone()).boxed(), Some(len))
            .await
    }

    async fn get(&self, t: &Target, key: &str) -> Result<u64> {
        self.call(http::Method::GET, t, &format!("/{BUCKET}/{key}"), empty(), None)
            .await
    }

    async fn get_bytes(&self, t: &Target, key: &str) -> Result<Bytes> {
        let resp = self
            .send(http::Method::GET, t, &format!("/{BUCKET}/{key}"), empty(), None)
            .await?;
        let status = resp.status();
        let body = resp.into_body().collect().await.context("read body")?.to_bytes();
        if !status.is_success() {
            bail!(
                "GET {key}: HTTP {status}: {}",
                String::from_utf8_lossy(&body[..body.len().min(400)])
            );
        }
        Ok(body)
    }

    async fn delete(&self, t: &Target, key: &str) -> Result<u64> {
        self.call(http::Method::DELETE, t, &format!("/{BUCKET}/{key}"), empty(), None)
            .await
    }
}

fn empty() -> ReqBody {
    Empty::new().boxed()
}

/// Deterministic pseudo-random bytes (incompressible, no dedup across servers' content).
fn payload(len: usize, seed: u64) -> Bytes {
    let mut v = vec![0u8; len];
    StdRng::seed_from_u64(seed).fill_bytes(&mut v);
    Bytes::from(v)
}

/// A request body of `remaining` bytes generated in 1 MiB chunks, never held whole.
struct GenBody {
    remaining: u64,
    chunk: Bytes,
    counter: u64,
}

impl Body for GenBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(mut self: Pin<&mut Self>, _: &mut TaskContext<'_>) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.remaining == 0 {
            return Poll::Ready(None);
        }
        let n = self.remaining.min(self.chunk.len() as u64) as usize;
        let mut b = BytesMut::from(&self.chunk[..n]);
        let tag = self.counter.to_le_bytes();
        let k = tag.len().min(n);
        b[..k].copy_from_slice(&tag[..k]);
        self.counter += 1;
        self.remaining -= n as u64;
        Poll::Ready(Some(Ok(Frame::data(b.freeze()))))
    }

    fn is_end_stream(&self) -> bool {
        self.remaining == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}

// ------------------------------------------------------------------------------ measurement

/// What one worker request does in a phase.
#[derive(Clone)]
struct Job {
    phase: Phase,
    target: Target,
    run: usize,
    client: Loadgen,
    small: Bytes,
    large: Bytes,
    large_population: usize,
}

impl Job {
    fn put_key(&self, worker: usize, seq: u64) -> String {
        format!("{}/r{}/w{worker:02}/{seq:07}", self.phase.key(), self.run)
    }

    async fn one(&self, worker: usize, seq: u64, rng: &mut StdRng) -> Result<u64> {
        let t = &self.target;
        let c = &self.client;
        match (self.phase, t.kind) {
            (Phase::Put4k, _) => c
                .put(t, &self.put_key(worker, seq), &self.small)
                .await
                .map(|_| SMALL as u64),
            (Phase::Get4k, _) => {
                let n = c.get(t, &small_key(rng.gen_range(0..SMALL_POPULATION))).await?;
                check_len(n, SMALL as u64)
            }
            (Phase::Put64, Kind::Baseline) => {
                let body = Full::new(self.large.clone()).boxed();
                c.call(http::Method::POST, t, "/sink", body, Some(LARGE as u64))
                    .await
                    .map(|_| LARGE as u64)
            }
            (Phase::Put64, _) => c
                .put(t, &self.put_key(worker, seq), &self.large)
                .await
                .map(|_| LARGE as u64),
            (Phase::Get64, Kind::Baseline) => {
                let n = c.call(http::Method::GET, t, "/blob", empty(), None).await?;
                check_len(n, LARGE as u64)
            }
            (Phase::Get64, _) => {
                let n = c.get(t, &large_key(rng.gen_range(0..self.large_population))).await?;
                check_len(n, LARGE as u64)
            }
        }
    }
}

fn check_len(got: u64, want: u64) -> Result<u64> {
    if got == want {
        Ok(got)
    } else {
        bail!("short body: {got} bytes, expected {want}")
    }
}

fn small_key(i: usize) -> String {
    format!("get4k/{i:04}")
}

fn large_key(i: usize) -> String {
    format!("get64/{i:02}")
}

/// Raw result of one worker.
#[derive(Default)]
struct WorkerOut {
    ops: u64,
    bytes: u64,
    errors: u64,
    first_error: Option<String>,
    latencies_us: Vec<u32>,
    per_second: Vec<u64>,
    attempted: u64,
}

/// Run `conc` workers for `duration`; in-flight requests finish, then the clock stops.
async fn drive(job: Job, conc: usize, duration: Duration) -> (Vec<WorkerOut>, Duration) {
    let start = Instant::now();
    let deadline = start + duration;
    let mut set = tokio::task::JoinSet::new();
    for w in 0..conc {
        let job = job.clone();
        set.spawn(async move {
            let mut out = WorkerOut::default();
            let mut rng = StdRng::seed_from_u64(0x5eed ^ ((w as u64) << 16) ^ job.run as u64);
            let mut seq = 0u64;
            while Instant::now() < deadline {
                let t0 = Instant::now();
                let r = job.one(w, seq, &mut rng).await;
                seq += 1;
                let done = Instant::now();
                match r {
                    Ok(b) => {
                        out.ops += 1;
                        out.bytes += b;
                        let us = done.duration_since(t0).as_micros().min(u32::MAX as u128) as u32;
                        out.latencies_us.push(us);
                        let sec = done.duration_since(start).as_secs() as usize;
                        if out.per_second.len() <= sec {
                            out.per_second.resize(sec + 1, 0);
                        }
                        out.per_second[sec] += 1;
                    }
                    Err(e) => {
                        out.errors += 1;
                        if out.first_error.is_none() {
                            out.first_error = Some(format!("{e:#}"));
                        }
                        // Do not spin on a dead server.
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
            }
            out.attempted = seq;
            out
        });
    }
    let mut outs = Vec::with_capacity(conc);
    while let Some(r) = set.join_next().await {
        match r {
            Ok(o) => outs.push(o),
            Err(e) => outs.push(WorkerOut {
                errors: 1,
                first_error: Some(format!("worker task failed: {e}")),
                ..WorkerOut::default()
            }),
        }
    }
    (outs, start.elapsed())
}

/// One measurement of one phase on one server.
#[derive(Debug, Clone, Serialize)]
struct Sample {
    phase: Phase,
    server: Kind,
    run: usize,
    elapsed_s: f64,
    ops: u64,
    errors: u64,
    first_error: Option<String>,
    ops_per_s: f64,
    mib_per_s: f64,
    p50_ms: f64,
    p99_ms: f64,
    p999_ms: f64,
    max_ms: f64,
    /// Fewest completions in any whole second of the measurement (stall detector; 4 KiB phases).
    min_ops_in_1s: Option<u64>,
    server_cpu_pct: f64,
    loadgen_cpu_pct: f64,
    other_cpu_pct: f64,
    /// VmHWM after the phase (reset before it when the kernel allows).
    server_peak_rss_mib: Option<f64>,
    server_rss_end_mib: Option<f64>,
    noisy: bool,
    client_bound: bool,
}

fn percentile_ms(sorted_us: &[u32], p: f64) -> f64 {
    if sorted_us.is_empty() {
        return f64::NAN;
    }
    let idx = ((p / 100.0) * (sorted_us.len() - 1) as f64).round() as usize;
    f64::from(sorted_us[idx.min(sorted_us.len() - 1)]) / 1000.0
}

struct Bench {
    opts: Opts,
    client: Loadgen,
    servers: Vec<ServerProc>,
    small: Bytes,
    large: Bytes,
    clk_tck: f64,
    hwm_reset_works: bool,
    samples: Vec<Sample>,
}

impl Bench {
    fn server(&mut self, kind: Kind) -> Result<&mut ServerProc> {
        self.servers
            .iter_mut()
            .find(|s| s.target.kind == kind)
            .ok_or_else(|| anyhow!("no {} server", kind.name()))
    }

    /// Wait (up to `--wait-quiet` s) until CPU use outside our processes is below 15 % of a core.
    async fn wait_quiet(&self) {
        let give_up = Instant::now() + Duration::from_secs_f64(self.opts.wait_quiet_s);
        loop {
            let t0 = Instant::now();
            let (sys0, ours0) = (system_busy_ticks(), self.all_server_ticks() + proc_cpu_ticks("self"));
            tokio::time::sleep(Duration::from_millis(500)).await;
            let (sys1, ours1) = (system_busy_ticks(), self.all_server_ticks() + proc_cpu_ticks("self"));
            let other = (sys1 - sys0).saturating_sub(ours1 - ours0) as f64 / self.clk_tck;
            let pct = 100.0 * other / t0.elapsed().as_secs_f64();
            if pct < 15.0 {
                return;
            }
            if Instant::now() >= give_up {
                eprintln!("#   box still busy ({pct:.0}% of a core used by others); measuring anyway");
                return;
            }
        }
    }

    fn all_server_ticks(&self) -> u64 {
        self.servers
            .iter()
            .map(|s| proc_cpu_ticks(&s.target.pid.to_string()))
            .sum()
    }

    async fn measure(&mut self, phase: Phase, kind: Kind, run: usize) -> Result<Sample> {
        let conc = if phase.large() {
            self.opts.large_conc
        } else {
            self.opts.conc
        };
        let srv = self.server(kind)?;
        srv.check_alive()?;
        let target = srv.target.clone();
        let pid = target.pid;
        let job = Job {
            phase,
            target: target.clone(),
            run,
            client: self.client.clone(),
            small: self.small.clone(),
            large: self.large.clone(),
            large_population: self.opts.large_conc,
        };
        tokio::time::sleep(Duration::from_secs(1)).await; // settle
        if self.opts.wait_quiet_s > 0.0 {
            self.wait_quiet().await;
        }
        let reset = reset_peak_rss(pid);
        self.hwm_reset_works &= reset;
        let srv0 = proc_cpu_ticks(&pid.to_string());
        let all0 = self.all_server_ticks();
        let me0 = proc_cpu_ticks("self");
        let sys0 = system_busy_ticks();
        let (outs, elapsed) = drive(job, conc, Duration::from_secs_f64(self.opts.duration_s)).await;
        let srv1 = proc_cpu_ticks(&pid.to_string());
        let all1 = self.all_server_ticks();
        let me1 = proc_cpu_ticks("self");
        let sys1 = system_busy_ticks();
        let peak = proc_status_bytes(pid, "VmHWM").map(|b| b as f64 / MIB);
        let rss_end = proc_status_bytes(pid, "VmRSS").map(|b| b as f64 / MIB);
        self.server(kind)?.check_alive()?;

        let secs = elapsed.as_secs_f64();
        let pct = |ticks: u64| 100.0 * ticks as f64 / self.clk_tck / secs;
        let other_ticks = (sys1 - sys0).saturating_sub((all1 - all0) + (me1 - me0));
        let mut lat: Vec<u32> = Vec::new();
        let mut per_second: Vec<u64> = Vec::new();
        let (mut ops, mut bytes, mut errors, mut first_error) = (0u64, 0u64, 0u64, None);
        for o in &outs {
            ops += o.ops;
            bytes += o.bytes;
            errors += o.errors;
            if first_error.is_none() {
                first_error.clone_from(&o.first_error);
            }
            lat.extend_from_slice(&o.latencies_us);
            if per_second.len() < o.per_second.len() {
                per_second.resize(o.per_second.len(), 0);
            }
            for (acc, v) in per_second.iter_mut().zip(&o.per_second) {
                *acc += v;
            }
        }
        lat.sort_unstable();
        // Only whole seconds inside the measurement window count for the stall detector.
        let whole = (self.opts.duration_s.floor() as usize).min(per_second.len());
        let min_ops_in_1s = if phase.large() {
            None
        } else {
            per_second[..whole].iter().copied().min()
        };
        let loadgen_cpu_pct = pct(me1 - me0);
        let other_cpu_pct = pct(other_ticks);
        let s = Sample {
            phase,
            server: kind,
            run,
            elapsed_s: secs,
            ops,
            errors,
            first_error,
            ops_per_s: ops as f64 / secs,
            mib_per_s: bytes as f64 / MIB / secs,
            p50_ms: percentile_ms(&lat, 50.0),
            p99_ms: percentile_ms(&lat, 99.0),
            p999_ms: percentile_ms(&lat, 99.9),
            max_ms: lat.last().map_or(f64::NAN, |&v| f64::from(v) / 1000.0),
            min_ops_in_1s,
            server_cpu_pct: pct(srv1 - srv0),
            loadgen_cpu_pct,
            other_cpu_pct,
            server_peak_rss_mib: peak,
            server_rss_end_mib: rss_end,
            noisy: other_cpu_pct > NOISY_OTHER_CPU_PCT,
            client_bound: loadgen_cpu_pct > CLIENT_BOUND_CPU_PCT,
        };
        eprintln!(
            "# run {}/{} {:<5} {:<8}: {:>9.1} ops/s {:>8.1} MiB/s  p50 {:>7.2} ms  p99 {:>7.2} ms  max {:>8.2} ms  \
             errors {}  srv cpu {:.0}%  loadgen cpu {:.0}%  other cpu {:.0}%  peak rss {}",
            run + 1,
            self.opts.runs,
            phase.key(),
            kind.name(),
            s.ops_per_s,
            s.mib_per_s,
            s.p50_ms,
            s.p99_ms,
            s.max_ms,
            s.errors,
            s.server_cpu_pct,
            s.loadgen_cpu_pct,
            s.other_cpu_pct,
            peak.map_or("-".into(), |m| format!("{m:.1} MiB")),
        );
        if let Some(e) = &s.first_error {
            eprintln!("#   first error: {e}");
        }
        if phase == Phase::Put64 && kind != Kind::Baseline {
            self.cleanup_large_puts(&target, run, &outs).await;
        }
        Ok(s)
    }

    /// Delete the 64 MiB objects a PUT run created, so disk use stays bounded (not timed).
    async fn cleanup_large_puts(&self, t: &Target, run: usize, outs: &[WorkerOut]) {
        let keys: Vec<String> = outs
            .iter()
            .enumerate()
            .flat_map(|(w, o)| (0..o.attempted).map(move |i| format!("put64/r{run}/w{w:02}/{i:07}")))
            .collect();
        let client = &self.client;
        let failed = futures::stream::iter(keys.iter())
            .map(|k| async move { client.delete(t, k).await.is_err() })
            .buffer_unordered(8)
            .filter(|failed| futures::future::ready(*failed))
            .count()
            .await;
        if failed > 0 {
            eprintln!(
                "#   note: {failed} of {} cleanup DELETEs on {} failed",
                keys.len(),
                t.kind.name()
            );
        }
    }

    /// Bucket + the objects the GET phases read, on every S3 server; verifies one of each.
    async fn populate(&mut self) -> Result<()> {
        let want_small = self.opts.phases.contains(&Phase::Get4k);
        let want_large = self.opts.phases.contains(&Phase::Get64);
        let mut kinds = vec![Kind::Strata, Kind::S3sFs];
        if self.servers.iter().any(|s| s.target.kind == Kind::StrataSse) {
            kinds.push(Kind::StrataSse);
        }
        for kind in kinds {
            let t = self.server(kind)?.target.clone();
            let c = self.client.clone();
            c.call(http::Method::PUT, &t, &format!("/{BUCKET}"), empty(), None)
                .await
                .with_context(|| format!("CreateBucket on {}", kind.name()))?;
            if kind == Kind::StrataSse {
                let xml = Bytes::from_static(
                    b"<ServerSideEncryptionConfiguration><Rule><ApplyServerSideEncryptionByDefault>\
                      <SSEAlgorithm>AES256</SSEAlgorithm></ApplyServerSideEncryptionByDefault></Rule>\
                      </ServerSideEncryptionConfiguration>",
                );
                let len = xml.len() as u64;
                c.call(
                    http::Method::PUT,
                    &t,
                    &format!("/{BUCKET}?encryption"),
                    Full::new(xml).boxed(),
                    Some(len),
                )
                .await
                .context("PutBucketEncryption on strata-sse")?;
            }
            let t0 = Instant::now();
            let small_n = if want_small { SMALL_POPULATION } else { 1 };
            let (c2, t2, small) = (c.clone(), t.clone(), self.small.clone());
            let results: Vec<Result<u64>> = futures::stream::iter(0..small_n)
                .map(|i| {
                    let (c, t, small) = (c2.clone(), t2.clone(), small.clone());
                    async move { c.put(&t, &small_key(i), &small).await }
                })
                .buffer_unordered(self.opts.conc)
                .collect()
                .await;
            if let Some(Err(e)) = results.into_iter().find(Result::is_err) {
                return Err(e.context(format!("populating 4 KiB objects on {}", kind.name())));
            }
            if want_large {
                for i in 0..self.opts.large_conc {
                    c.put(&t, &large_key(i), &self.large)
                        .await
                        .with_context(|| format!("populating 64 MiB objects on {}", kind.name()))?;
                }
            }
            // Read back: the servers must return exactly what was written.
            if c.get_bytes(&t, &small_key(0)).await? != self.small {
                bail!(
                    "{}: GET {} returned different bytes than were PUT",
                    kind.name(),
                    small_key(0)
                );
            }
            if want_large && c.get_bytes(&t, &large_key(0)).await? != self.large {
                bail!(
                    "{}: GET {} returned different bytes than were PUT",
                    kind.name(),
                    large_key(0)
                );
            }
            eprintln!(
                "# populated {}: {small_n} x 4 KiB{} in {:.1} s (verified read-back)",
                kind.name(),
                if want_large {
                    format!(" + {} x 64 MiB", self.opts.large_conc)
                } else {
                    String::new()
                },
                t0.elapsed().as_secs_f64()
            );
        }
        Ok(())
    }
}

// ----------------------------------------------------------------------------- 5 GiB phase

#[derive(Debug, Clone, Serialize)]
struct BigResult {
    bytes: u64,
    ok: bool,
    error: Option<String>,
    elapsed_s: f64,
    mib_per_s: f64,
    rss_samples: usize,
    rss_max_sampled_mib: f64,
    rss_peak_vmhwm_mib: Option<f64>,
    rss_before_mib: Option<f64>,
    head_content_length: Option<u64>,
}

async fn big_put(client: &Loadgen, t: &Target) -> BigResult {
    let pid = t.pid;
    let before = proc_status_bytes(pid, "VmRSS").map(|b| b as f64 / MIB);
    reset_peak_rss(pid);
    let stop = Arc::new(AtomicBool::new(false));
    let max_rss = Arc::new(AtomicU64::new(0));
    let samples = Arc::new(AtomicU64::new(0));
    let sampler = {
        let (stop, max_rss, samples) = (stop.clone(), max_rss.clone(), samples.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                if let Some(r) = proc_status_bytes(pid, "VmRSS") {
                    max_rss.fetch_max(r, Ordering::Relaxed);
                    samples.fetch_add(1, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        })
    };
    let body = GenBody {
        remaining: BIG,
        chunk: payload(1 << 20, 5),
        counter: 0,
    };
    let t0 = Instant::now();
    let key = "big/5gib";
    let res = client
        .call(
            http::Method::PUT,
            t,
            &format!("/{BUCKET}/{key}"),
            body.boxed(),
            Some(BIG),
        )
        .await;
    let elapsed = t0.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let _ = sampler.join();
    let peak = proc_status_bytes(pid, "VmHWM").map(|b| b as f64 / MIB);
    let mut head_len = None;
    if res.is_ok() {
        if let Ok(resp) = client
            .send(http::Method::HEAD, t, &format!("/{BUCKET}/{key}"), empty(), None)
            .await
        {
            head_len = resp
                .headers()
                .get(http::header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse().ok());
        }
        if let Err(e) = client.delete(t, key).await {
            eprintln!("# note: deleting the 5 GiB object failed: {e:#}");
        }
    }
    BigResult {
        bytes: BIG,
        ok: res.is_ok(),
        error: res.err().map(|e| format!("{e:#}")),
        elapsed_s: elapsed,
        mib_per_s: BIG as f64 / MIB / elapsed,
        rss_samples: samples.load(Ordering::Relaxed) as usize,
        rss_max_sampled_mib: max_rss.load(Ordering::Relaxed) as f64 / MIB,
        rss_peak_vmhwm_mib: peak,
        rss_before_mib: before,
        head_content_length: head_len,
    }
}

// ------------------------------------------------------------------------------------ report

fn median_min_max(mut v: Vec<f64>) -> Option<(f64, f64, f64)> {
    v.retain(|x| x.is_finite());
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    let med = if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    };
    Some((med, v[0], v[n - 1]))
}

fn fmt_num(v: f64) -> String {
    let a = v.abs();
    if a >= 1000.0 {
        let s = format!("{v:.0}");
        let (sign, digits) = s.strip_prefix('-').map_or(("", s.as_str()), |d| ("-", d));
        let mut out = String::new();
        for (i, ch) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i) % 3 == 0 {
                out.push(',');
            }
            out.push(ch);
        }
        format!("{sign}{out}")
    } else if a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

fn fmt_mmm(m: Option<(f64, f64, f64)>, runs: usize) -> String {
    match m {
        None => "-".into(),
        Some((med, _, _)) if runs <= 1 => fmt_num(med),
        Some((med, lo, hi)) => format!("{} [{}–{}]", fmt_num(med), fmt_num(lo), fmt_num(hi)),
    }
}

fn print_table(headers: &[&str], rows: &[Vec<String>]) {
    let widths: Vec<usize> = (0..headers.len())
        .map(|i| {
            rows.iter()
                .map(|r| r[i].chars().count())
                .chain([headers[i].chars().count()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: Vec<&str>| {
        let parts: Vec<String> = cells.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
        println!("| {} |", parts.join(" | "));
    };
    line(headers.to_vec());
    println!(
        "|{}|",
        widths.iter().map(|w| "-".repeat(w + 2)).collect::<Vec<_>>().join("|")
    );
    for r in rows {
        line(r.iter().map(String::as_str).collect());
    }
}

type Metric = fn(&Sample) -> f64;

struct Summary<'a> {
    samples: &'a [Sample],
    runs: usize,
}

impl Summary<'_> {
    fn stat(&self, phase: Phase, kind: Kind, f: Metric) -> Option<(f64, f64, f64)> {
        median_min_max(
            self.samples
                .iter()
                .filter(|s| s.phase == phase && s.server == kind)
                .map(f)
                .collect(),
        )
    }

    fn flags(&self, phase: Phase, kind: Kind) -> Vec<String> {
        let ss: Vec<&Sample> = self
            .samples
            .iter()
            .filter(|s| s.phase == phase && s.server == kind)
            .collect();
        let mut f = Vec::new();
        let errors: u64 = ss.iter().map(|s| s.errors).sum();
        if errors > 0 {
            f.push(format!("{} errors={errors}", kind.name()));
        }
        if ss.iter().any(|s| s.noisy) {
            f.push(format!("{} noisy", kind.name()));
        }
        if ss.iter().any(|s| s.client_bound) {
            f.push(format!("{} client-bound", kind.name()));
        }
        f
    }
}

fn ratio(a: Option<(f64, f64, f64)>, b: Option<(f64, f64, f64)>) -> Option<f64> {
    match (a, b) {
        (Some((x, _, _)), Some((y, _, _))) if y > 0.0 => Some(x / y),
        _ => None,
    }
}

fn fmt_ratio(r: Option<f64>) -> String {
    r.map_or("-".into(), |r| format!("{r:.2}×"))
}

fn report(opts: &Opts, samples: &[Sample], big: Option<&BigResult>, notes: &[String]) -> serde_json::Value {
    let sum = Summary {
        samples,
        runs: opts.runs,
    };
    let mut rows: Vec<Vec<String>> = Vec::new();
    let mut json_metrics = Vec::new();
    let mut push = |name: String, unit: &str, better: &str, phase: Phase, f: Metric, with_base: bool, flagged: bool| {
        let st = sum.stat(phase, Kind::Strata, f);
        let fs = sum.stat(phase, Kind::S3sFs, f);
        let base = if with_base {
            sum.stat(phase, Kind::Baseline, f)
        } else {
            None
        };
        if st.is_none() && fs.is_none() {
            return;
        }
        let mut flags = Vec::new();
        if flagged {
            flags.extend(sum.flags(phase, Kind::Strata));
            flags.extend(sum.flags(phase, Kind::S3sFs));
            if with_base {
                flags.extend(sum.flags(phase, Kind::Baseline));
            }
        }
        rows.push(vec![
            name.clone(),
            unit.into(),
            fmt_mmm(st, sum.runs),
            fmt_mmm(fs, sum.runs),
            fmt_ratio(ratio(st, fs)),
            if with_base {
                fmt_mmm(base, sum.runs)
            } else {
                String::new()
            },
            if with_base {
                fmt_ratio(ratio(st, base))
            } else {
                String::new()
            },
            better.into(),
            flags.join(", "),
        ]);
        let mmm = |m: Option<(f64, f64, f64)>| m.map(|(a, b, c)| serde_json::json!({"median": a, "min": b, "max": c}));
        json_metrics.push(serde_json::json!({
            "metric": name, "unit": unit, "better": better,
            "strata": mmm(st), "s3s_fs": mmm(fs), "baseline": mmm(base),
            "strata_over_s3s_fs": ratio(st, fs), "strata_over_baseline": ratio(st, base),
        }));
    };
    let has = |p: Phase| opts.phases.contains(&p);
    if has(Phase::Put4k) {
        let l = Phase::Put4k.label(opts);
        push(l.clone(), "ops/s", "higher", Phase::Put4k, |s| s.ops_per_s, false, true);
        push(
            "  └ p50 latency".into(),
            "ms",
            "lower",
            Phase::Put4k,
            |s| s.p50_ms,
            false,
            true,
        );
        push(
            "  └ p99 latency".into(),
            "ms",
            "lower",
            Phase::Put4k,
            |s| s.p99_ms,
            false,
            true,
        );
    }
    if has(Phase::Get4k) {
        let l = Phase::Get4k.label(opts);
        push(l, "ops/s", "higher", Phase::Get4k, |s| s.ops_per_s, false, true);
        push(
            "  └ p50 latency".into(),
            "ms",
            "lower",
            Phase::Get4k,
            |s| s.p50_ms,
            false,
            true,
        );
        push(
            "  └ p99 latency".into(),
            "ms",
            "lower",
            Phase::Get4k,
            |s| s.p99_ms,
            false,
            true,
        );
    }
    if has(Phase::Put64) {
        push(
            Phase::Put64.label(opts),
            "MiB/s",
            "higher",
            Phase::Put64,
            |s| s.mib_per_s,
            true,
            true,
        );
    }
    if has(Phase::Get64) {
        push(
            Phase::Get64.label(opts),
            "MiB/s",
            "higher",
            Phase::Get64,
            |s| s.mib_per_s,
            true,
            true,
        );
    }
    for p in Phase::ALL.into_iter().filter(|p| has(*p)) {
        let name = format!("peak RSS during {}", p.key());
        push(
            name,
            "MiB",
            "lower",
            p,
            |s| s.server_peak_rss_mib.unwrap_or(f64::NAN),
            false,
            false,
        );
    }
    println!();
    println!(
        "Strata load benchmark: {} s per measurement, {} interleaved run(s), median [min–max]; \
         conc {} (64 MiB phases: conc {}).",
        opts.duration_s, opts.runs, opts.conc, opts.large_conc
    );
    for n in notes {
        println!("  - {n}");
    }
    println!();
    print_table(
        &[
            "metric",
            "unit",
            "strata",
            "s3s-fs",
            "strata/s3s-fs",
            "baseline",
            "strata/baseline",
            "better",
            "flags",
        ],
        &rows,
    );

    // Encryption at rest: the same 64 MiB phases against a bucket with SSE-S3 default encryption.
    let sse_rows: Vec<Vec<String>> = [Phase::Put64, Phase::Get64]
        .into_iter()
        .filter(|p| opts.phases.contains(p))
        .map(|p| {
            let plain = sum.stat(p, Kind::Strata, |s| s.mib_per_s);
            let sse = sum.stat(p, Kind::StrataSse, |s| s.mib_per_s);
            vec![
                p.label(opts),
                fmt_mmm(plain, sum.runs),
                fmt_mmm(sse, sum.runs),
                fmt_ratio(ratio(sse, plain)),
                "≥ 0.80×".into(),
            ]
        })
        .collect();
    if !sse_rows.is_empty() {
        println!();
        println!("Encryption at rest (SSE-S3, AES-256-GCM segments), MiB/s:");
        print_table(
            &["metric", "strata plain", "strata SSE-S3", "SSE / plain", "target"],
            &sse_rows,
        );
        for p in [Phase::Put64, Phase::Get64]
            .into_iter()
            .filter(|p| opts.phases.contains(p))
        {
            json_metrics.push(serde_json::json!({
                "metric": format!("{} SSE-S3 / plain", p.label(opts)),
                "ratio": ratio(sum.stat(p, Kind::StrataSse, |s| s.mib_per_s), sum.stat(p, Kind::Strata, |s| s.mib_per_s)),
            }));
        }
    }

    // Per-run detail.
    println!();
    println!("Per run (server CPU / load-generator CPU / other CPU on the box, % of one core):");
    let detail: Vec<Vec<String>> = samples
        .iter()
        .map(|s| {
            vec![
                s.phase.key().into(),
                s.server.name().into(),
                (s.run + 1).to_string(),
                fmt_num(s.ops_per_s),
                fmt_num(s.mib_per_s),
                fmt_num(s.p50_ms),
                fmt_num(s.p99_ms),
                fmt_num(s.p999_ms),
                fmt_num(s.max_ms),
                s.min_ops_in_1s.map_or("-".into(), |v| v.to_string()),
                s.errors.to_string(),
                format!(
                    "{:.0}/{:.0}/{:.0}",
                    s.server_cpu_pct, s.loadgen_cpu_pct, s.other_cpu_pct
                ),
                s.server_peak_rss_mib.map_or("-".into(), fmt_num),
            ]
        })
        .collect();
    print_table(
        &[
            "phase",
            "server",
            "run",
            "ops/s",
            "MiB/s",
            "p50 ms",
            "p99 ms",
            "p99.9 ms",
            "max ms",
            "min ops in 1 s",
            "errors",
            "CPU % srv/gen/other",
            "peak RSS MiB",
        ],
        &detail,
    );

    if let Some(b) = big {
        println!();
        let limit = 100.0;
        let peak = b.rss_peak_vmhwm_mib.unwrap_or(0.0).max(b.rss_max_sampled_mib);
        let growth = b.rss_before_mib.map(|before| peak - before);
        if b.ok {
            println!(
                "5 GiB streamed PUT to Strata: {:.1} s, {:.1} MiB/s; server RSS max {:.1} MiB over {} samples \
                 (100 ms), VmHWM {} MiB (before the PUT: {} MiB, so the PUT itself added {} MiB); \
                 HEAD content-length {}; target < {limit} MiB: {}",
                b.elapsed_s,
                b.mib_per_s,
                b.rss_max_sampled_mib,
                b.rss_samples,
                b.rss_peak_vmhwm_mib.map_or("-".into(), fmt_num),
                b.rss_before_mib.map_or("-".into(), fmt_num),
                growth.map_or("-".into(), fmt_num),
                b.head_content_length.map_or("-".into(), |v| v.to_string()),
                if peak < limit {
                    "met"
                } else if growth.is_some_and(|g| g < limit) {
                    "NOT met by the process (RSS from earlier phases), but the streamed PUT's own growth is within it"
                } else {
                    "NOT met"
                },
            );
        } else {
            println!(
                "5 GiB streamed PUT to Strata FAILED after {:.1} s: {}; server RSS max {:.1} MiB ({} samples)",
                b.elapsed_s,
                b.error.as_deref().unwrap_or("?"),
                b.rss_max_sampled_mib,
                b.rss_samples
            );
        }
    }
    serde_json::json!({ "summary": json_metrics })
}

// ------------------------------------------------------------------------------------ parent

fn parent() -> Result<()> {
    let opts = parse_opts()?;
    let mut notes = vec![
        "Strata fsyncs every acknowledged write (group commit); s3s-fs never fsyncs — write figures compare \
         a durable store with a non-durable one."
            .to_string(),
        "every request is SigV4-signed (header, UNSIGNED-PAYLOAD); Strata and s3s-fs verify it, the baseline \
         ignores it."
            .to_string(),
    ];
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let mut server_core = None;
    if !opts.pin {
        notes.push("no CPU pinning (--no-pin).".into());
    } else if cores < 2 {
        notes.push(format!("not pinned: only {cores} core(s) available."));
    } else if !have_taskset() {
        notes.push("not pinned: `taskset` not found (libc is not a dependency, so no sched_setaffinity).".into());
    } else {
        match pin_self(1) {
            Ok(()) => {
                server_core = Some(0);
                notes.push("servers pinned to core 0 (taskset -c 0), load generator to core 1 (taskset -a -p).".into());
            }
            Err(e) => notes.push(format!("not pinned: {e:#}")),
        }
    }
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(async move {
        tokio::select! {
            r = run_bench(opts, notes, server_core) => r,
            _ = tokio::signal::ctrl_c() => bail!("interrupted"),
        }
    })
}

async fn run_bench(opts: Opts, mut notes: Vec<String>, server_core: Option<u32>) -> Result<()> {
    let tmp = tempfile::Builder::new()
        .prefix("strata-load-")
        .tempdir()
        .context("create temp dir")?;
    let root = tmp.path().to_path_buf();
    eprintln!("# working dir {}", root.display());

    let strata_bin = PathBuf::from(env!("CARGO_BIN_EXE_strata"));
    let me = std::env::current_exe().context("current_exe")?;
    let strata_data = root.join("strata-data");
    let fs_data = root.join("s3s-fs-data");
    std::fs::create_dir_all(&strata_data)?;
    std::fs::create_dir_all(&fs_data)?;

    let mut servers = Vec::new();
    let mut cmd = command(&strata_bin, server_core);
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(&strata_data)
        .env("STRATA_ROOT_ACCESS_KEY", ACCESS_KEY)
        .env("STRATA_ROOT_SECRET_KEY", SECRET_KEY)
        .env_remove(ROLE_ENV);
    servers.push(ServerProc::spawn(Kind::Strata, cmd, root.join("strata.log"), false)?);
    let mut cmd = command(&me, server_core);
    cmd.arg(&fs_data).env(ROLE_ENV, "s3s-fs");
    servers.push(ServerProc::spawn(Kind::S3sFs, cmd, root.join("s3s-fs.log"), true)?);
    let need_baseline = opts.phases.iter().any(|p| p.large());
    if need_baseline {
        let sse_data = root.join("strata-sse-data");
        std::fs::create_dir_all(&sse_data)?;
        let mut cmd = command(&strata_bin, server_core);
        cmd.args(["serve", "--listen", "127.0.0.1:0", "--data"])
            .arg(&sse_data)
            .env("STRATA_ROOT_ACCESS_KEY", ACCESS_KEY)
            .env("STRATA_ROOT_SECRET_KEY", SECRET_KEY)
            .env_remove(ROLE_ENV);
        servers.push(ServerProc::spawn(
            Kind::StrataSse,
            cmd,
            root.join("strata-sse.log"),
            false,
        )?);
        let mut cmd = command(&me, server_core);
        cmd.env(ROLE_ENV, "baseline");
        servers.push(ServerProc::spawn(Kind::Baseline, cmd, root.join("baseline.log"), true)?);
    }
    for s in &servers {
        eprintln!(
            "# {} pid {} at http://{}",
            s.target.kind.name(),
            s.target.pid,
            s.target.host
        );
    }

    let mut bench = Bench {
        client: Loadgen::new(opts.conc.max(opts.large_conc) * 2),
        servers,
        small: payload(SMALL, 4),
        large: payload(LARGE, 64),
        clk_tck: clock_ticks_per_sec(),
        hwm_reset_works: true,
        samples: Vec::new(),
        opts: opts.clone(),
    };
    bench.populate().await?;
    let idle: Vec<String> = bench
        .servers
        .iter()
        .map(|s| {
            let rss = proc_status_bytes(s.target.pid, "VmRSS").map_or("?".into(), |b| fmt_num(b as f64 / MIB));
            format!("{} {rss} MiB", s.target.kind.name())
        })
        .collect();
    notes.push(format!("server RSS when idle after populating: {}.", idle.join(", ")));

    let s3_kinds = [Kind::Strata, Kind::S3sFs];
    for run in 0..opts.runs {
        for &phase in &opts.phases {
            let mut kinds: Vec<Kind> = s3_kinds.to_vec();
            if run % 2 == 1 {
                kinds.reverse();
            }
            if phase.large() {
                kinds.push(Kind::StrataSse);
                kinds.push(Kind::Baseline);
            }
            for kind in kinds {
                let s = bench.measure(phase, kind, run).await?;
                bench.samples.push(s);
            }
        }
    }

    let mut big = None;
    if opts.big {
        let free = free_bytes(&root)?;
        if free < BIG_MIN_FREE {
            let msg = format!(
                "--big skipped: {:.1} GiB free on {}, need {} GiB",
                free as f64 / MIB / 1024.0,
                root.display(),
                BIG_MIN_FREE >> 30
            );
            eprintln!("# {msg}");
            notes.push(msg);
        } else {
            let srv = bench.server(Kind::Strata)?;
            srv.check_alive()?;
            let t = srv.target.clone();
            eprintln!("# 5 GiB streamed PUT to strata (RSS sampled every 100 ms) …");
            let r = big_put(&bench.client, &t).await;
            big = Some(r);
        }
    }

    if !bench.hwm_reset_works {
        notes.push(
            "peak RSS could not be reset between phases (/proc/PID/clear_refs refused): figures are peaks since \
             server start."
                .into(),
        );
    } else {
        notes.push("peak RSS = VmHWM of the server process, reset before each phase.".into());
    }
    let mut summary = report(&opts, &bench.samples, big.as_ref(), &notes);

    let json = serde_json::json!({
        "bench": "strata load",
        "options": opts,
        "load_generator": "hyper-util legacy client, current-thread tokio, SigV4 per request (aws-sigv4)",
        "notes": notes,
        "box": {
            "cores": std::thread::available_parallelism().map(|n| n.get()).ok(),
            "cpu": read_proc("/proc/cpuinfo").and_then(|c| c.lines().find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1)).map(|s| s.trim().to_string())),
        },
        "samples": bench.samples,
        "big_put": big,
    });
    if let (Some(obj), Some(extra)) = (summary.as_object_mut(), json.as_object()) {
        for (k, v) in extra {
            obj.insert(k.clone(), v.clone());
        }
    }
    let path = &opts.json_path;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    }
    let text = serde_json::to_string_pretty(&summary)?;
    std::fs::write(path, text).with_context(|| format!("write {}", path.display()))?;
    println!("\nresults written to {}", path.display());
    drop(bench);
    Ok(())
}
