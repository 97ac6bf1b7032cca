//! What verified reads cost: this build's `strata` against a baseline binary (the build before
//! block checksums: `$STRATA_BASELINE_BIN`, default `/work/baseline/target/release/strata`),
//! both running side by side, measured in one run, interleaved, reported as ratios.
//!
//! `cargo bench --bench verified_reads -- [--runs N] [--secs S] [--pin]` (defaults 5 runs, 4 s
//! each; `--pin`: both servers on core 0 via `taskset`, run the bench itself with
//! `taskset -c 1`). Besides rates, the servers' CPU time per MiB moved (from /proc), which
//! other load on the box disturbs far less than wall-clock rates.
//! Phases per run and server (which server goes first alternates every run):
//!   PUT 64 MiB (sequential, MiB/s), GET 1 MiB (4 workers, MiB/s), GET 64 MiB (2 workers,
//!   MiB/s), and a 4 KiB range GET at a random offset inside a 64 MiB object (one worker, p50
//!   latency). Every request is SigV4-signed (header, UNSIGNED-PAYLOAD). Medians over runs,
//!   with the spread [min–max] of each server's runs and the box's load average before and
//!   after, so the noise of a shared machine is visible. Results also go to
//!   `target/bench-verified-reads.json`.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{anyhow, bail, Context, Result};
use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    sign, PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SigningSettings,
    UriPathNormalizationMode,
};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use rand::{Rng, SeedableRng};

const ACCESS_KEY: &str = "BENCHACCESSKEY0002";
const SECRET_KEY: &str = "bench-secret-key-verified-reads-0123456789";
const REGION: &str = "us-east-1";
const MIB: usize = 1 << 20;

struct Server {
    name: &'static str,
    child: Child,
    endpoint: String,
    _data: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(name: &'static str, bin: &str, pin: bool) -> Result<Server> {
    let data = tempfile::Builder::new().prefix("strata-bench-").tempdir()?;
    let toml = data.path().join("strata.toml");
    std::fs::write(&toml, "[limits]\ndeleted_blob_grace_secs = 0\n")?;
    let mut cmd = if pin {
        let mut c = Command::new("taskset");
        c.args(["-c", "0", bin]);
        c
    } else {
        Command::new(bin)
    };
    let mut child = cmd
        .args(["serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(data.path().join("d"))
        .arg("--config")
        .arg(&toml)
        .env("STRATA_ROOT_ACCESS_KEY", ACCESS_KEY)
        .env("STRATA_ROOT_SECRET_KEY", SECRET_KEY)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("start {bin}"))?;
    let stdout = child.stdout.take().ok_or_else(|| anyhow!("no stdout"))?;
    let mut lines = BufReader::new(stdout).lines();
    let deadline = Instant::now() + Duration::from_secs(60);
    let endpoint = loop {
        let line = lines
            .next()
            .ok_or_else(|| anyhow!("{name}: exited before listening"))??;
        if let Some(addr) = line.strip_prefix("listening on ") {
            break addr.trim().to_string();
        }
        if Instant::now() > deadline {
            bail!("{name}: no `listening on` line");
        }
    };
    std::thread::spawn(move || for _ in lines {});
    Ok(Server {
        name,
        child,
        endpoint,
        _data: data,
    })
}

#[derive(Clone)]
struct Http {
    client: Client<HttpConnector, Full<Bytes>>,
    identity: Identity,
}

impl Http {
    fn new() -> Self {
        let mut conn = HttpConnector::new();
        conn.set_nodelay(true);
        Self {
            client: Client::builder(TokioExecutor::new()).build(conn),
            identity: Credentials::new(ACCESS_KEY, SECRET_KEY, None, None, "bench").into(),
        }
    }

    /// One signed request that must answer 2xx; returns the body length.
    async fn call(&self, method: &str, url: &str, headers: &[(&str, String)], body: Bytes) -> Result<usize> {
        let mut b = http::Request::builder().method(method).uri(url);
        for (k, v) in headers {
            b = b.header(*k, v);
        }
        let len = body.len();
        let mut req = b.header("content-length", len.to_string()).body(Full::new(body))?;
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
            .build()?
            .into();
        let hs: Vec<(String, String)> = req
            .headers()
            .iter()
            .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or_default().to_string()))
            .collect();
        let signable = SignableRequest::new(
            method,
            url,
            hs.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            SignableBody::UnsignedPayload,
        )?;
        let (instructions, _) = sign(signable, &params)?.into_parts();
        instructions.apply_to_request_http1x(&mut req);
        let resp = self.client.request(req).await?;
        let status = resp.status();
        let mut body = resp.into_body();
        let mut n = 0;
        while let Some(frame) = body.frame().await {
            if let Ok(d) = frame?.into_data() {
                n += d.len();
            }
        }
        if !status.is_success() {
            bail!("{method} {url}: {status}");
        }
        Ok(n)
    }
}

/// Runs `workers` loops of `op` for `secs`; returns (bytes, elapsed, per-op latencies).
async fn load<F, Fut>(workers: usize, secs: f64, op: F) -> Result<(u64, f64, Vec<f64>)>
where
    F: Fn(u64) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = Result<usize>> + Send,
{
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..workers {
        let op = op.clone();
        tasks.push(tokio::spawn(async move {
            let (mut bytes, mut lat, mut i) = (0u64, Vec::new(), 0u64);
            while Instant::now() < deadline {
                let t = Instant::now();
                bytes += op(w as u64 * 1_000_000 + i).await? as u64;
                lat.push(t.elapsed().as_secs_f64());
                i += 1;
            }
            Ok::<_, anyhow::Error>((bytes, lat))
        }));
    }
    let (mut bytes, mut lat) = (0, Vec::new());
    for t in tasks {
        let (b, l) = t.await??;
        bytes += b;
        lat.extend(l);
    }
    Ok((bytes, started.elapsed().as_secs_f64(), lat))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        return f64::NAN;
    }
    v[v.len() / 2]
}

/// CPU seconds (user + system) used so far by process `pid` (the server; under `taskset` the
/// server is exec'd in place, so the pid is the same).
fn cpu_seconds(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return f64::NAN;
    };
    let rest = stat.rsplit_once(')').map(|r| r.1).unwrap_or_default();
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(f64::NAN);
    (ticks(11) + ticks(12)) / 100.0
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

const PHASES: [&str; 4] = [
    "PUT 64 MiB (MiB/s)",
    "GET 1 MiB (MiB/s)",
    "GET 64 MiB (MiB/s)",
    "4 KiB range GET p50 (ms)",
];

/// One measurement: (the phase's figure, server CPU ms per MiB moved or per request).
async fn run_phase(http: &Http, s: &Server, phase: usize, secs: f64, big: &Bytes) -> Result<(f64, f64)> {
    let cpu0 = cpu_seconds(s.child.id());
    let (figure, work) = run_phase_inner(http, s, phase, secs, big).await?;
    let cpu = cpu_seconds(s.child.id()) - cpu0;
    Ok((figure, cpu * 1000.0 / work))
}

/// (figure, work done: MiB moved, or requests for the latency phase).
async fn run_phase_inner(http: &Http, s: &Server, phase: usize, secs: f64, big: &Bytes) -> Result<(f64, f64)> {
    let base = format!("{}/bench", s.endpoint);
    match phase {
        0 => {
            let (http, base, body) = (http.clone(), base.clone(), big.clone());
            let (bytes, took, _) = load(1, secs, move |i| {
                let (http, base, body) = (http.clone(), base.clone(), body.clone());
                async move {
                    http.call("PUT", &format!("{base}/put-{}", i % 4), &[], body).await?;
                    Ok(LARGE)
                }
            })
            .await?;
            Ok((bytes as f64 / took / MIB as f64, bytes as f64 / MIB as f64))
        }
        1 | 2 => {
            let (key, workers) = if phase == 1 { ("one-mib", 4) } else { ("sixty-four", 2) };
            let (http, url) = (http.clone(), format!("{base}/{key}"));
            let (bytes, took, _) = load(workers, secs, move |_| {
                let (http, url) = (http.clone(), url.clone());
                async move { http.call("GET", &url, &[], Bytes::new()).await }
            })
            .await?;
            Ok((bytes as f64 / took / MIB as f64, bytes as f64 / MIB as f64))
        }
        _ => {
            let (http, url) = (http.clone(), format!("{base}/sixty-four"));
            let (_, _, lat) = load(1, secs, move |i| {
                let (http, url) = (http.clone(), url.clone());
                async move {
                    let mut rng = rand::rngs::StdRng::seed_from_u64(i);
                    let at = rng.gen_range(0..(LARGE - 4096) as u64);
                    let range = format!("bytes={at}-{}", at + 4095);
                    http.call("GET", &url, &[("range", range)], Bytes::new()).await
                }
            })
            .await?;
            let n = lat.len() as f64;
            Ok((median(lat) * 1000.0, n))
        }
    }
}

const LARGE: usize = 64 * MIB;

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let (mut runs, mut secs, mut pin) = (5usize, 4.0f64, false);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--runs" => runs = args.next().and_then(|v| v.parse().ok()).context("--runs N")?,
            "--secs" => secs = args.next().and_then(|v| v.parse().ok()).context("--secs S")?,
            "--pin" => pin = true,
            "--bench" => {}
            other => bail!("unknown option {other}"),
        }
    }
    let baseline_bin =
        std::env::var("STRATA_BASELINE_BIN").unwrap_or_else(|_| "/work/baseline/target/release/strata".to_string());
    let new_bin = env!("CARGO_BIN_EXE_strata");
    let load_before = loadavg();
    let servers = [start("baseline", &baseline_bin, pin)?, start("verified", new_bin, pin)?];
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let http = Http::new();
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let mut big = vec![0u8; LARGE];
    rng.fill(&mut big[..]);
    let big = Bytes::from(big);
    let one = big.slice(..MIB);
    // results[server][phase] = per-run values
    let mut results = vec![vec![Vec::new(); PHASES.len()]; 2];
    let mut cpu = vec![vec![Vec::new(); PHASES.len()]; 2];
    rt.block_on(async {
        for s in &servers {
            http.call("PUT", &format!("{}/bench", s.endpoint), &[], Bytes::new())
                .await?;
            http.call("PUT", &format!("{}/bench/one-mib", s.endpoint), &[], one.clone())
                .await?;
            http.call("PUT", &format!("{}/bench/sixty-four", s.endpoint), &[], big.clone())
                .await?;
        }
        for run in 0..runs {
            for (phase, _) in PHASES.iter().enumerate() {
                let order: [usize; 2] = if (run + phase) % 2 == 0 { [0, 1] } else { [1, 0] };
                for i in order {
                    let (v, c) = run_phase(&http, &servers[i], phase, secs, &big).await?;
                    results[i][phase].push(v);
                    cpu[i][phase].push(c);
                }
            }
            eprintln!("run {}/{runs} done (load {})", run + 1, loadavg());
        }
        Ok::<_, anyhow::Error>(())
    })?;
    let load_after = loadavg();
    println!("verified reads vs baseline: {runs} interleaved runs of {secs} s per phase and server");
    println!("load average before {load_before}, after {load_after}");
    println!(
        "{:<26} {:>24} {:>24} {:>8}",
        "phase", "baseline median [min-max]", "verified median [min-max]", "ratio"
    );
    let mut json = Vec::new();
    for (p, name) in PHASES.iter().enumerate() {
        let fmt = |v: &Vec<f64>| {
            let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            format!("{:.2} [{:.2}-{:.2}]", median(v.clone()), lo, hi)
        };
        let (b, n) = (median(results[0][p].clone()), median(results[1][p].clone()));
        let (cb, cn) = (median(cpu[0][p].clone()), median(cpu[1][p].clone()));
        println!(
            "{:<26} {:>24} {:>24} {:>8.3}   server CPU {:.3} vs {:.3} ms/{} ({:.3})",
            name,
            fmt(&results[0][p]),
            fmt(&results[1][p]),
            n / b,
            cb,
            cn,
            if p == 3 { "request" } else { "MiB" },
            cn / cb
        );
        json.push(serde_json::json!({
            "phase": name, "baseline": results[0][p], "verified": results[1][p], "ratio_of_medians": n / b,
            "cpu_ms_baseline": cpu[0][p], "cpu_ms_verified": cpu[1][p], "cpu_ratio_of_medians": cn / cb,
        }));
    }
    println!(
        "(ratio = verified / baseline: above 1 is faster for MiB/s, slower for latency; CPU ratio above 1 is dearer)"
    );
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-verified-reads.json");
    let _ = std::fs::write(
        &path,
        serde_json::to_vec_pretty(&serde_json::json!({
            "runs": runs, "secs": secs, "load_before": load_before, "load_after": load_after, "phases": json,
            "servers": servers.iter().map(|s| s.name).collect::<Vec<_>>(),
        }))?,
    );
    Ok(())
}
