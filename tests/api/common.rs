//! Shared harness: a `strata` server per test, SDK clients, error/assertion helpers, hashing,
//! and a raw HTTP client (optionally SigV4-signed by hand) for requests the SDK cannot make.

#![allow(dead_code)]

use std::fmt::Debug;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime};

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::Client;
use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use md5::{Digest, Md5};
use rand::{Rng, RngCore, SeedableRng};

/// Root credentials handed to every test server through the environment.
pub const ROOT_ACCESS_KEY: &str = "STRATATESTROOTKEY001";
pub const ROOT_SECRET_KEY: &str = "strata-test-root-secret-0123456789abcdefg";
pub const REGION: &str = "us-east-1";

/// How long a server may take to print its `listening on` line.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a SIGTERM'd server may take to exit before the test gives up on it.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

pub const MIB: usize = 1024 * 1024;

// ---------------------------------------------------------------------------------------------
// The server under test
// ---------------------------------------------------------------------------------------------

/// Options for starting a server; the defaults are what almost every test wants.
#[derive(Clone, Debug)]
pub struct ServerOptions {
    /// `RUST_LOG` for the server process.
    pub rust_log: String,
    /// Send the server's stderr to a file (readable with [`TestServer::stderr_log`]) instead of
    /// inheriting the test's stderr.
    pub capture_stderr: bool,
    /// Contents of a `--config` TOML file for the server, if any.
    pub config_toml: Option<String>,
    /// Extra environment variables for the server process (e.g. `STRATA_CRASH_AT`).
    pub env: Vec<(String, String)>,
    /// Serve HTTPS with a `strata dev-cert` certificate for 127.0.0.1 and localhost, made at
    /// the first start ([`TestServer::tls_cert_path`]); clients trust it.
    pub tls: bool,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            rust_log: "warn".into(),
            capture_stderr: false,
            config_toml: None,
            env: Vec::new(),
            tls: false,
        }
    }
}

/// A `strata serve` child process over its own data directory. Dropping it kills the process
/// and removes the directory.
pub struct TestServer {
    child: Option<Child>,
    port: u16,
    /// `https` when the server announced `listening on https://…`.
    scheme: &'static str,
    /// The port of a plain listener beside HTTPS (`tls.http_listen`), if it announced one.
    plain_port: Option<u16>,
    /// The port of a website-only listener (`website.listen`), if it announced one.
    website_port: Option<u16>,
    opts: ServerOptions,
    stderr_path: Option<PathBuf>,
    // Declared last so the child is killed before the directory is removed.
    log_dir: tempfile::TempDir,
    data: tempfile::TempDir,
}

impl TestServer {
    /// Starts a server on a fresh, empty data directory.
    pub fn start() -> TestServer {
        Self::start_with(ServerOptions::default())
    }

    pub fn start_with(opts: ServerOptions) -> TestServer {
        let data = tempfile::Builder::new()
            .prefix("strata-data-")
            .tempdir()
            .expect("create data tempdir");
        Self::start_in(data, opts)
    }

    /// Starts a server on an existing data directory (e.g. one prepared with `strata key create --data`).
    pub fn start_in(data: tempfile::TempDir, opts: ServerOptions) -> TestServer {
        let log_dir = tempfile::Builder::new()
            .prefix("strata-log-")
            .tempdir()
            .expect("create log tempdir");
        let mut server = TestServer {
            child: None,
            port: 0,
            scheme: "http",
            plain_port: None,
            website_port: None,
            opts,
            stderr_path: None,
            log_dir,
            data,
        };
        server.spawn();
        server
    }

    fn spawn(&mut self) {
        assert!(self.child.is_none(), "spawn with a live child");
        let stderr = if self.opts.capture_stderr {
            // Append so a restart keeps the earlier log.
            let path = self.log_dir.path().join("stderr.log");
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .expect("open stderr log");
            self.stderr_path = Some(path);
            Stdio::from(file)
        } else {
            Stdio::inherit()
        };
        let mut command = self.strata_command();
        command
            .args(["serve", "--listen", "127.0.0.1:0", "--data"])
            .arg(self.data.path());
        if self.opts.tls {
            let (cert, key) = (self.tls_cert_path(), self.tls_key_path());
            if !cert.exists() {
                dev_cert(&cert, &key);
            }
            command.arg("--tls-cert").arg(cert).arg("--tls-key").arg(key);
        }
        if let Some(toml) = &self.opts.config_toml {
            let path = self.log_dir.path().join("strata.toml");
            std::fs::write(&path, toml).expect("write server config");
            command.arg("--config").arg(path);
        }
        for (name, value) in &self.opts.env {
            command.env(name, value);
        }
        let mut child = command
            .env("RUST_LOG", &self.opts.rust_log)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("spawn `strata serve` (is the binary built?)");
        let stdout = child.stdout.take().expect("piped stdout");
        let listening = match wait_for_listening_line(stdout) {
            Ok(l) => l,
            Err(printed) => {
                let _ = child.kill();
                let status = child.wait().ok();
                panic!(
                    "strata serve did not print `listening on http(s)://127.0.0.1:PORT` within {START_TIMEOUT:?} \
                     (exit status: {status:?}); its stdout was:\n{printed}"
                );
            }
        };
        self.child = Some(child);
        self.port = listening.port;
        self.scheme = listening.scheme;
        self.plain_port = listening.plain_port;
        self.website_port = listening.website_port;
    }

    /// `strata` with the root credentials in its environment and no inherited AWS settings.
    pub fn strata_command(&self) -> Command {
        strata_command()
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn endpoint(&self) -> String {
        format!("{}://127.0.0.1:{}", self.scheme, self.port)
    }

    /// `http://127.0.0.1:PORT` of the plain listener beside HTTPS (`tls.http_listen`).
    pub fn plain_endpoint(&self) -> String {
        let port = self
            .plain_port
            .expect("the server announced no plain listener (`also listening on http://…`)");
        format!("http://127.0.0.1:{port}")
    }

    /// `http://127.0.0.1:PORT` of the website-only listener (`website.listen`).
    pub fn website_endpoint(&self) -> String {
        let port = self
            .website_port
            .expect("the server announced no website listener (`website on http://127.0.0.1:…`)");
        format!("http://127.0.0.1:{port}")
    }

    /// The certificate of a server started with `tls` (PEM; also its clients' trust anchor).
    pub fn tls_cert_path(&self) -> PathBuf {
        self.log_dir.path().join("tls-cert.pem")
    }

    /// The private key of [`tls_cert_path`](Self::tls_cert_path).
    pub fn tls_key_path(&self) -> PathBuf {
        self.log_dir.path().join("tls-key.pem")
    }

    pub fn data_dir(&self) -> &Path {
        self.data.path()
    }

    /// An SDK client with the root credentials.
    pub fn client(&self) -> Client {
        self.client_with(ROOT_ACCESS_KEY, ROOT_SECRET_KEY)
    }

    /// An SDK client with the given credentials (path style, us-east-1, no retries).
    pub fn client_with(&self, access_key: &str, secret_key: &str) -> Client {
        if self.opts.tls {
            let ca = std::fs::read(self.tls_cert_path()).expect("read the test certificate");
            sdk_client_trusting(&self.endpoint(), access_key, secret_key, ca)
        } else {
            sdk_client(&self.endpoint(), access_key, secret_key)
        }
    }

    /// Kills the server with SIGKILL (no chance to flush anything) and waits for it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends SIGTERM and waits for the process to exit; panics if it does not within 30 s.
    pub fn terminate(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("server is not running");
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status()
            .expect("run kill -TERM");
        assert!(status.success(), "kill -TERM failed: {status}");
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            if let Some(status) = child.try_wait().expect("try_wait") {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("strata serve did not exit within {STOP_TIMEOUT:?} of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILLs the server and starts it again on the same data directory (new port).
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// Starts the server again after [`kill`](Self::kill) or [`terminate`](Self::terminate).
    pub fn start_again(&mut self) {
        self.spawn();
    }

    /// Panics if the server process has exited.
    pub fn assert_alive(&mut self) {
        let child = self.child.as_mut().expect("server is not running");
        if let Some(status) = child.try_wait().expect("try_wait") {
            panic!("strata serve exited unexpectedly: {status}");
        }
    }

    /// What the server wrote to stderr so far (only with `capture_stderr`).
    pub fn stderr_log(&self) -> String {
        let path = self
            .stderr_path
            .as_ref()
            .expect("server was not started with capture_stderr");
        String::from_utf8_lossy(&std::fs::read(path).expect("read stderr log")).into_owned()
    }

    /// Creates a principal through the admin endpoint of the running server.
    pub fn create_key(&self, name: &str) -> KeyPair {
        let endpoint = self.endpoint();
        let ca = self.tls_cert_path();
        let ca = ca.to_str().expect("UTF-8 temp path");
        let mut args = vec!["key", "create", name, "--endpoint", &endpoint];
        if self.opts.tls {
            args.extend(["--ca-bundle", ca]);
        }
        KeyPair::parse(&run_strata(&args))
    }

    /// GET /_strata/health, unauthenticated.
    pub async fn health_status(&self) -> u16 {
        raw_request("GET", &format!("{}/_strata/health", self.endpoint()), &[], Vec::new())
            .await
            .status
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// What a server announced on stdout.
struct Listening {
    scheme: &'static str,
    port: u16,
    plain_port: Option<u16>,
    website_port: Option<u16>,
}

/// Reads the child's stdout until the `listening on http(s)://` line (noting an earlier
/// `also listening on http://` line), then keeps draining it in a thread. Returns what was
/// announced, or everything printed if the line did not come in time.
fn wait_for_listening_line(stdout: impl Read + Send + 'static) -> Result<Listening, String> {
    enum Event {
        Line(String),
        Eof,
    }
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stdout);
        let mut line = String::new();
        loop {
            line.clear();
            match reader.read_line(&mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    // Once the test stops listening this send fails; keep draining regardless.
                    let _ = tx.send(Event::Line(line.clone()));
                }
            }
        }
        let _ = tx.send(Event::Eof);
    });
    let deadline = Instant::now() + START_TIMEOUT;
    let mut printed = String::new();
    let mut plain_port = None;
    let mut website_port = None;
    let port_after = |line: &str, prefix: &str| {
        let rest = line.trim_end().strip_prefix(prefix)?;
        let digits = rest.split(|c: char| !c.is_ascii_digit()).next()?;
        digits.parse::<u16>().ok()
    };
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(Event::Line(line)) => {
                printed.push_str(&line);
                let line = line.trim_end();
                if let Some(port) = port_after(line, "also listening on http://127.0.0.1:") {
                    plain_port = Some(port);
                }
                if let Some(port) = port_after(line, "website on http://127.0.0.1:") {
                    website_port = Some(port);
                }
                for (scheme, prefix) in [
                    ("http", "listening on http://127.0.0.1:"),
                    ("https", "listening on https://127.0.0.1:"),
                ] {
                    if let Some(port) = line.strip_prefix(prefix).and_then(|p| p.parse::<u16>().ok()) {
                        return Ok(Listening {
                            scheme,
                            port,
                            plain_port,
                            website_port,
                        });
                    }
                }
            }
            Ok(Event::Eof) => return Err(format!("{printed}<EOF: the process closed stdout>")),
            Err(_) => return Err(format!("{printed}<timed out>")),
        }
    }
}

/// `strata` with the test root credentials in its environment.
pub fn strata_command() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_strata"));
    cmd.env("STRATA_ROOT_ACCESS_KEY", ROOT_ACCESS_KEY)
        .env("STRATA_ROOT_SECRET_KEY", ROOT_SECRET_KEY)
        .env("RUST_LOG", "warn")
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env_remove("AWS_PROFILE");
    // Nothing from the caller's environment may redirect the server or the CLI.
    for var in [
        "STRATA_LISTEN",
        "STRATA_DATA_DIR",
        "STRATA_CONFIG",
        "STRATA_ENDPOINT",
        "STRATA_REGION",
        "STRATA_DOMAIN",
        "STRATA_TLS_CERT",
        "STRATA_TLS_KEY",
        "STRATA_CA_BUNDLE",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

/// Runs a `strata` CLI command to completion, panicking with its output unless it succeeds.
/// Returns stdout.
pub fn run_strata(args: &[&str]) -> String {
    let out = strata_command()
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run strata");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "`strata {}` failed with {}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        args.join(" "),
        out.status
    );
    stdout
}

/// `strata dev-cert` for 127.0.0.1 and localhost.
pub fn dev_cert(cert: &Path, key: &Path) {
    run_strata(&[
        "dev-cert",
        "--cert",
        cert.to_str().expect("UTF-8 temp path"),
        "--key",
        key.to_str().expect("UTF-8 temp path"),
        "--host",
        "127.0.0.1",
        "--host",
        "localhost",
    ]);
}

/// An access key pair as printed by `strata key create`.
#[derive(Clone, Debug)]
pub struct KeyPair {
    pub access_key: String,
    pub secret_key: String,
}

impl KeyPair {
    /// Parses the `AccessKeyId: …` / `SecretAccessKey: …` lines.
    pub fn parse(output: &str) -> KeyPair {
        let field = |name: &str| {
            output
                .lines()
                .find_map(|l| l.trim().strip_prefix(name).map(|v| v.trim().to_string()))
                .filter(|v| !v.is_empty())
                .unwrap_or_else(|| panic!("no `{name}` line in `strata key create` output:\n{output}"))
        };
        KeyPair {
            access_key: field("AccessKeyId:"),
            secret_key: field("SecretAccessKey:"),
        }
    }
}

/// An SDK client for `endpoint`: static credentials, us-east-1, path style, no retries (so an
/// error the server returns is the error the test sees), and generous timeouts so a hung
/// server fails the test instead of hanging it.
pub fn sdk_client(endpoint: &str, access_key: &str, secret_key: &str) -> Client {
    let creds = Credentials::new(access_key, secret_key, None, None, "strata-tests");
    let conf = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .endpoint_url(endpoint)
        .credentials_provider(creds)
        .force_path_style(true)
        .retry_config(RetryConfig::disabled())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(10))
                .operation_attempt_timeout(Duration::from_secs(120))
                .build(),
        )
        .build();
    Client::from_conf(conf)
}

/// [`sdk_client`] for an https endpoint whose certificate (or CA) is `ca_pem`: the SDK's
/// rustls client with `ca_pem` as its only trust anchor (verification stays on).
pub fn sdk_client_trusting(endpoint: &str, access_key: &str, secret_key: &str, ca_pem: Vec<u8>) -> Client {
    use aws_smithy_http_client::tls;
    let context = tls::TlsContext::builder()
        .with_trust_store(tls::TrustStore::empty().with_pem_certificate(ca_pem))
        .build()
        .expect("TLS context");
    let http_client = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(tls::rustls_provider::CryptoMode::AwsLc))
        .tls_context(context)
        .build_https();
    let conf = sdk_client(endpoint, access_key, secret_key)
        .config()
        .to_builder()
        .http_client(http_client)
        .build();
    Client::from_conf(conf)
}

// ---------------------------------------------------------------------------------------------
// Names, bodies, hashes
// ---------------------------------------------------------------------------------------------

static BUCKET_COUNTER: AtomicU32 = AtomicU32::new(0);

/// A valid bucket name unique within this test run: `<tag>-<pid>-<n>-<random>`.
pub fn unique_bucket(tag: &str) -> String {
    let n = BUCKET_COUNTER.fetch_add(1, Ordering::Relaxed);
    let r: u32 = rand::thread_rng().gen();
    let name = format!("{tag}-{}-{n}-{r:08x}", std::process::id());
    assert!(name.len() <= 63, "bucket tag too long: {tag}");
    name
}

/// Deterministic pseudo-random bytes.
pub fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut buf = vec![0u8; len];
    rng.fill_bytes(&mut buf);
    buf
}

pub fn md5_bytes(data: &[u8]) -> [u8; 16] {
    let mut out = [0u8; 16];
    out.copy_from_slice(&Md5::digest(data));
    out
}

pub fn md5_hex(data: &[u8]) -> String {
    hex::encode(md5_bytes(data))
}

/// The ETag S3 gives a single-part object: the hex MD5 in double quotes.
pub fn etag_of(data: &[u8]) -> String {
    format!("\"{}\"", md5_hex(data))
}

/// The ETag S3 gives a multipart object: MD5 of the concatenated binary part MD5s, `-N`.
pub fn multipart_etag(parts: &[&[u8]]) -> String {
    let mut cat = Vec::with_capacity(16 * parts.len());
    for p in parts {
        cat.extend_from_slice(&md5_bytes(p));
    }
    format!("\"{}-{}\"", md5_hex(&cat), parts.len())
}

pub fn b64(data: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(data)
}

pub fn content_md5(data: &[u8]) -> String {
    b64(&md5_bytes(data))
}

// ---------------------------------------------------------------------------------------------
// SDK conveniences
// ---------------------------------------------------------------------------------------------

/// Creates a fresh uniquely named bucket and returns its name.
pub async fn new_bucket(client: &Client, tag: &str) -> String {
    let bucket = unique_bucket(tag);
    client
        .create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .unwrap_or_else(|e| panic!("create bucket {bucket}: {}", describe(&e)));
    bucket
}

/// PutObject with an in-memory body; returns the ETag.
pub async fn put(client: &Client, bucket: &str, key: &str, body: impl Into<Vec<u8>>) -> String {
    let out = client
        .put_object()
        .bucket(bucket)
        .key(key)
        .body(ByteStream::from(body.into()))
        .send()
        .await
        .unwrap_or_else(|e| panic!("put {bucket}/{key:?}: {}", describe(&e)));
    out.e_tag().expect("PutObject returned no ETag").to_string()
}

/// GetObject and collect the body.
pub async fn get_bytes(client: &Client, bucket: &str, key: &str) -> Vec<u8> {
    let out = client
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .unwrap_or_else(|e| panic!("get {bucket}/{key:?}: {}", describe(&e)));
    out.body
        .collect()
        .await
        .expect("read GetObject body")
        .into_bytes()
        .to_vec()
}

/// Puts one small object per key (its body is the key itself), 16 at a time.
pub async fn put_many(client: &Client, bucket: &str, keys: &[String]) {
    use futures::StreamExt;
    futures::stream::iter(keys.iter())
        .map(|key| {
            let client = client.clone();
            let bucket = bucket.to_string();
            let key = key.clone();
            async move {
                let body = key.clone().into_bytes();
                put(&client, &bucket, &key, body).await;
            }
        })
        .buffer_unordered(16)
        .collect::<Vec<()>>()
        .await;
}

/// All keys in a bucket (ListObjectsV2, following continuation tokens).
pub async fn list_all_keys(client: &Client, bucket: &str) -> Vec<String> {
    let mut keys = Vec::new();
    let mut pages = client.list_objects_v2().bucket(bucket).into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.unwrap_or_else(|e| panic!("list {bucket}: {}", describe(&e)));
        keys.extend(page.contents().iter().map(|o| o.key().unwrap_or_default().to_string()));
    }
    keys
}

// ---------------------------------------------------------------------------------------------
// Error assertions
// ---------------------------------------------------------------------------------------------

/// HTTP status (0 when no response came back) and S3 error code of a failed SDK call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrInfo {
    pub status: u16,
    pub code: Option<String>,
    pub message: Option<String>,
}

pub fn err_info<E: ProvideErrorMetadata>(err: &SdkError<E, HttpResponse>) -> ErrInfo {
    ErrInfo {
        status: err.raw_response().map(|r| r.status().as_u16()).unwrap_or(0),
        code: err.code().map(str::to_string),
        message: err.message().map(str::to_string),
    }
}

/// A readable one-line description of an SDK error, with status and code when there are any.
pub fn describe<E: ProvideErrorMetadata + std::error::Error + 'static>(err: &SdkError<E, HttpResponse>) -> String {
    let info = err_info(err);
    format!(
        "status {} code {:?} message {:?} ({})",
        info.status,
        info.code,
        info.message,
        aws_sdk_s3::error::DisplayErrorContext(err)
    )
}

/// Asserts that an SDK call failed with `status` and S3 error code `code`.
#[track_caller]
pub fn expect_error<T: Debug, E>(result: Result<T, SdkError<E, HttpResponse>>, status: u16, code: &str) -> ErrInfo
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    expect_error_in(result, status, &[code])
}

/// Like [`expect_error`], accepting any of `codes`.
#[track_caller]
pub fn expect_error_in<T: Debug, E>(
    result: Result<T, SdkError<E, HttpResponse>>,
    status: u16,
    codes: &[&str],
) -> ErrInfo
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match result {
        Ok(v) => panic!("expected {status} {codes:?}, but the call succeeded: {v:?}"),
        Err(e) => {
            let info = err_info(&e);
            assert!(
                info.status == status && info.code.as_deref().is_some_and(|c| codes.contains(&c)),
                "expected {status} {codes:?}, got {}",
                describe(&e)
            );
            info
        }
    }
}

/// Asserts that an SDK call failed with HTTP `status` (for HEAD and 304, which carry no code).
#[track_caller]
pub fn expect_status<T: Debug, E>(result: Result<T, SdkError<E, HttpResponse>>, status: u16) -> ErrInfo
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match result {
        Ok(v) => panic!("expected HTTP {status}, but the call succeeded: {v:?}"),
        Err(e) => {
            let info = err_info(&e);
            assert_eq!(info.status, status, "expected HTTP {status}, got {}", describe(&e));
            info
        }
    }
}

/// Unwraps an SDK result, panicking with status, code and message on error.
#[track_caller]
pub fn ok<T, E>(result: Result<T, SdkError<E, HttpResponse>>, what: &str) -> T
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match result {
        Ok(v) => v,
        Err(e) => panic!("{what} failed: {}", describe(&e)),
    }
}

// ---------------------------------------------------------------------------------------------
// Raw HTTP
// ---------------------------------------------------------------------------------------------

/// A fully read HTTP response.
#[derive(Debug)]
pub struct RawResponse {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Bytes,
}

impl RawResponse {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The `<Code>` of an S3 XML error body.
    pub fn error_code(&self) -> Option<String> {
        xml_element(&self.text(), "Code")
    }

    /// Asserts a 4xx response with a well-formed S3 XML error body.
    #[track_caller]
    pub fn assert_xml_client_error(&self) -> String {
        assert!(
            (400..500).contains(&self.status),
            "expected a 4xx XML error, got {}: {}",
            self.status,
            self.text()
        );
        let code = self.error_code();
        assert!(
            self.text().contains("<Error>") && code.is_some(),
            "expected an S3 <Error> XML body with a <Code>, got {}: {}",
            self.status,
            self.text()
        );
        code.unwrap()
    }
}

/// The text of the first `<name>` element in `xml`, if any.
pub fn xml_element(xml: &str, name: &str) -> Option<String> {
    let open = format!("<{name}>");
    let close = format!("</{name}>");
    let start = xml.find(&open)? + open.len();
    let end = xml[start..].find(&close)? + start;
    Some(xml[start..end].to_string())
}

/// Sends one HTTP/1.1 request with exactly the given headers (hyper adds Host and
/// Content-Length) and reads the whole response.
pub async fn raw_request(method: &str, url: &str, headers: &[(&str, &str)], body: impl Into<Bytes>) -> RawResponse {
    let mut builder = http::Request::builder().method(method).uri(url);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let request = builder.body(Full::new(body.into())).expect("build raw request");
    send_raw(request).await
}

async fn send_raw(request: http::Request<Full<Bytes>>) -> RawResponse {
    let client =
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).build_http::<Full<Bytes>>();
    let what = format!("{} {}", request.method(), request.uri());
    let response = tokio::time::timeout(Duration::from_secs(120), client.request(request))
        .await
        .unwrap_or_else(|_| panic!("{what}: timed out"))
        .unwrap_or_else(|e| panic!("{what}: {e:?}"));
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response
        .into_body()
        .collect()
        .await
        .unwrap_or_else(|e| panic!("{what}: body: {e:?}"))
        .to_bytes();
    RawResponse { status, headers, body }
}

/// A request signed by hand with SigV4 (header auth), so tests can control the clock, the
/// body, and tamper with the result.
pub struct SignedRequest<'a> {
    pub method: &'a str,
    /// Endpoint-relative, already percent-encoded path and query, e.g. `/bucket?delete`.
    pub path_and_query: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub access_key: &'a str,
    pub secret_key: &'a str,
    pub time: SystemTime,
    /// The region of the credential scope (default [`REGION`]).
    pub region: &'a str,
}

impl<'a> SignedRequest<'a> {
    /// A root-signed request at the current time.
    pub fn new(method: &'a str, path_and_query: impl Into<String>) -> Self {
        SignedRequest {
            method,
            path_and_query: path_and_query.into(),
            headers: Vec::new(),
            body: Vec::new(),
            access_key: ROOT_ACCESS_KEY,
            secret_key: ROOT_SECRET_KEY,
            time: SystemTime::now(),
            region: REGION,
        }
    }

    pub fn region(mut self, region: &'a str) -> Self {
        self.region = region;
        self
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_ascii_lowercase(), value.to_string()));
        self
    }

    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    pub fn time(mut self, time: SystemTime) -> Self {
        self.time = time;
        self
    }

    /// Builds the signed `http::Request` for `server`.
    pub fn build(&self, server: &TestServer) -> http::Request<Full<Bytes>> {
        use aws_sigv4::http_request::{
            sign, PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SigningSettings,
            UriPathNormalizationMode,
        };
        let url = format!("{}{}", server.endpoint(), self.path_and_query);
        let host = format!("127.0.0.1:{}", server.port());
        let mut headers = self.headers.clone();
        headers.push(("host".into(), host));

        let identity = Credentials::new(self.access_key, self.secret_key, None, None, "strata-tests").into();
        let mut settings = SigningSettings::default();
        settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
        settings.percent_encoding_mode = PercentEncodingMode::Single;
        settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
        let params = aws_sigv4::sign::v4::SigningParams::builder()
            .identity(&identity)
            .region(self.region)
            .name("s3")
            .time(self.time)
            .settings(settings)
            .build()
            .expect("signing params")
            .into();
        let signable = SignableRequest::new(
            self.method,
            url.as_str(),
            headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            SignableBody::Bytes(&self.body),
        )
        .expect("signable request");
        let (instructions, _signature) = sign(signable, &params).expect("sign request").into_parts();

        let mut builder = http::Request::builder().method(self.method).uri(&url);
        for (name, value) in &headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        let mut request = builder
            .body(Full::new(Bytes::from(self.body.clone())))
            .expect("build request");
        instructions.apply_to_request_http1x(&mut request);
        request
    }

    pub async fn send(&self, server: &TestServer) -> RawResponse {
        send_raw(self.build(server)).await
    }

    /// Signs, then lets the caller tamper with the request before it is sent.
    pub async fn send_tampered(
        &self,
        server: &TestServer,
        tamper: impl FnOnce(&mut http::Request<Full<Bytes>>),
    ) -> RawResponse {
        let mut request = self.build(server);
        tamper(&mut request);
        send_raw(request).await
    }
}

/// Sends a raw request over a plain TCP socket and returns whatever came back before the
/// server closed the connection or `wait` elapsed (for malformed HTTP the client libraries
/// refuse to produce).
pub async fn raw_tcp(server: &TestServer, bytes: &[u8], half_close: bool, wait: Duration) -> Vec<u8> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", server.port()))
        .await
        .expect("connect");
    stream.write_all(bytes).await.expect("write");
    if half_close {
        let _ = stream.shutdown().await;
    }
    let mut out = Vec::new();
    let _ = tokio::time::timeout(wait, stream.read_to_end(&mut out)).await;
    out
}

// ---------------------------------------------------------------------------------------------
// Crashes, offline tools and the data directory (crash_points, kill_cycles, bitrot, diskfull,
// security)
// ---------------------------------------------------------------------------------------------

impl TestServer {
    /// Replaces the extra environment the next [`start_again`](Self::start_again) /
    /// [`restart`](Self::restart) gives the server (e.g. set or clear `STRATA_CRASH_AT`).
    pub fn set_env(&mut self, env: Vec<(String, String)>) {
        self.opts.env = env;
    }

    /// The server's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Waits for the server to exit on its own (e.g. at a crash point) and returns its exit
    /// status; kills it and panics if it is still running after `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let mut child = self.child.take().expect("server is not running");
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = child.try_wait().expect("try_wait") {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("strata serve was expected to exit by itself but still ran after {timeout:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Exit status and output of a `strata` CLI run that may fail.
#[derive(Debug)]
pub struct ToolOutput {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl ToolOutput {
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }
}

/// Runs a `strata` CLI command to completion without judging its exit status.
pub fn run_strata_tool(args: &[&std::ffi::OsStr]) -> ToolOutput {
    let out = strata_command()
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run strata");
    ToolOutput {
        status: out.status,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// The numbers of `strata fsck`'s summary line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FsckSummary {
    pub objects: u64,
    pub parts: u64,
    pub problems: u64,
    pub orphans_removed: u64,
}

/// `strata fsck --data DIR` (the server must be stopped); returns the output and its parsed
/// summary line (panicking if there is none).
pub fn fsck(data: &Path) -> (ToolOutput, FsckSummary) {
    let out = run_strata_tool(&["fsck".as_ref(), "--data".as_ref(), data.as_os_str()]);
    let summary = parse_fsck_summary(&out.stdout).unwrap_or_else(|| {
        panic!(
            "no `fsck: N objects, M parts checked; P missing or short blobs; Q unreferenced blobs removed` \
             line (exit {:?})\nstdout:\n{}\nstderr:\n{}",
            out.status, out.stdout, out.stderr
        )
    });
    (out, summary)
}

/// Runs fsck and asserts a clean result: exit 0, no missing/short blobs. Returns the summary.
#[track_caller]
pub fn assert_fsck_clean(data: &Path) -> FsckSummary {
    let (out, summary) = fsck(data);
    assert!(
        out.status.success() && summary.problems == 0,
        "strata fsck found problems (exit {:?}): {summary:?}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        out.stdout,
        out.stderr
    );
    summary
}

fn parse_fsck_summary(stdout: &str) -> Option<FsckSummary> {
    let line = stdout.lines().find(|l| l.starts_with("fsck: "))?;
    let nums: Vec<u64> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().ok())
        .collect::<Option<Vec<u64>>>()?;
    match nums[..] {
        [objects, parts, problems, orphans_removed] => Some(FsckSummary {
            objects,
            parts,
            problems,
            orphans_removed,
        }),
        _ => None,
    }
}

/// `strata scrub --data DIR` (the server must be stopped).
pub fn scrub(data: &Path) -> ToolOutput {
    run_strata_tool(&["scrub".as_ref(), "--data".as_ref(), data.as_os_str()])
}

/// Every regular file below `dir`, recursively (empty when `dir` does not exist).
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for entry in entries.flatten() {
            let path = entry.path();
            match entry.file_type() {
                Ok(t) if t.is_dir() => stack.push(path),
                Ok(_) => out.push(path),
                Err(_) => {}
            }
        }
    }
    out.sort();
    out
}

/// The blob files of a data directory: `DATA/blobs/*/*`.
pub fn blob_files(data: &Path) -> Vec<PathBuf> {
    files_under(&data.join("blobs"))
}

/// A response read as far as it got: the status and headers if they arrived, the body bytes
/// that arrived, and the error that cut it short, if any.
#[derive(Debug)]
pub struct PartialResponse {
    pub status: Option<u16>,
    pub headers: Option<http::HeaderMap>,
    pub body: Vec<u8>,
    pub error: Option<String>,
}

/// Like [`send_raw`], but a failed connection or an aborted body is a result, not a panic
/// (for responses the server is expected to cut off).
pub async fn send_raw_partial(request: http::Request<Full<Bytes>>) -> PartialResponse {
    let client =
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).build_http::<Full<Bytes>>();
    let what = format!("{} {}", request.method(), request.uri());
    let response = match tokio::time::timeout(Duration::from_secs(120), client.request(request)).await {
        Err(_) => panic!("{what}: no response within 120 s"),
        Ok(Err(e)) => {
            return PartialResponse {
                status: None,
                headers: None,
                body: Vec::new(),
                error: Some(format!("{e:?}")),
            }
        }
        Ok(Ok(r)) => r,
    };
    let status = Some(response.status().as_u16());
    let headers = Some(response.headers().clone());
    let mut body = response.into_body();
    let mut got = Vec::new();
    let error = loop {
        match tokio::time::timeout(Duration::from_secs(120), body.frame()).await {
            Err(_) => panic!("{what}: body stalled for 120 s"),
            Ok(None) => break None,
            Ok(Some(Err(e))) => break Some(format!("{e:?}")),
            Ok(Some(Ok(frame))) => {
                if let Ok(data) = frame.into_data() {
                    got.extend_from_slice(&data);
                }
            }
        }
    };
    PartialResponse {
        status,
        headers,
        body: got,
        error,
    }
}

impl SignedRequest<'_> {
    /// Sends the request, tolerating a dropped connection or an aborted body.
    pub async fn send_partial(&self, server: &TestServer) -> PartialResponse {
        send_raw_partial(self.build(server)).await
    }

    /// The request as HTTP/1.1 bytes: request line and headers (with the given
    /// `content-length`, which need not match the body), then `body_prefix`.
    pub fn to_http1_bytes(&self, server: &TestServer, content_length: usize, body_prefix: &[u8]) -> Vec<u8> {
        let request = self.build(server);
        let mut out = format!("{} {} HTTP/1.1\r\n", self.method, self.path_and_query).into_bytes();
        for (name, value) in request.headers() {
            out.extend_from_slice(name.as_str().as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(value.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(format!("content-length: {content_length}\r\n\r\n").as_bytes());
        out.extend_from_slice(body_prefix);
        out
    }
}
