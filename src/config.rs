//! One `Config` for the server: built-in defaults < TOML file < `STRATA_*` env < flags.
//! Every bound the server enforces is named here with its default.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

pub const DEFAULT_LISTEN: &str = "127.0.0.1:9000";
pub const DEFAULT_DATA_DIR: &str = "./data";
pub const DEFAULT_REGION: &str = "us-east-1";

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub region: String,
    /// Base domain for virtual-hosted-style requests (`bucket.<domain>`); path style always works.
    pub domain: Option<String>,
    /// Accept requests signed with AWS Signature Version 2 in the Authorization header. s3s
    /// checks no clock skew for them, so they are off by default. (SigV2 presigned URLs, which
    /// carry their own expiry, are always accepted: `aws s3 presign` makes them by default.)
    pub allow_sigv2: bool,
    /// Block Public Access for buckets without a setting of their own (S3's default since
    /// 2023): public ACLs and public bucket policies are refused and ignored until a bucket's
    /// owner turns the block off with PutPublicAccessBlock.
    pub block_public_access: bool,
    /// `text` or `json` log lines.
    pub log_format: String,
    pub credentials: RootCredentials,
    pub limits: Limits,
    pub transform: TransformConfig,
    pub encryption: EncryptionConfig,
    pub tls: TlsConfig,
    pub lifecycle: LifecycleSettings,
    pub storage: StorageConfig,
    pub metrics: MetricsConfig,
    pub website: WebsiteEndpointConfig,
    pub scrub: ScrubConfig,
}

/// The background scrub of `serve` (`[scrub]`): every stored byte re-read and checked
/// against its block checksums, rate-limited, so bitrot is found before a client asks.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScrubConfig {
    /// Run it (`strata scrub` offline works either way).
    pub background: bool,
    /// Read rate bound of the background scrub, bytes per second.
    pub bytes_per_sec: u64,
    /// Seconds from the end of one background run to the start of the next.
    pub interval_secs: u64,
    /// Seconds after start-up before the first background run.
    pub startup_delay_secs: u64,
}

impl Default for ScrubConfig {
    fn default() -> Self {
        Self {
            background: false,
            bytes_per_sec: 50 * 1024 * 1024,
            interval_secs: 7 * 24 * 3600,
            startup_delay_secs: 300,
        }
    }
}

/// Who may read `/_strata/metrics`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MetricsAuth {
    /// Peers on 127.0.0.0/8 or ::1 only; others get 403.
    #[default]
    Loopback,
    /// `Authorization: Bearer <metrics.bearer_token>` required, from anywhere.
    Token,
    /// Anyone who can reach the port.
    Public,
}

/// The Prometheus endpoint `/_strata/metrics`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    pub auth: MetricsAuth,
    /// The token for `auth = "token"` (env `STRATA_METRICS_BEARER_TOKEN`).
    pub bearer_token: Option<String>,
    /// Per-bucket usage gauges come from a scan of the metadata; scrapes within this many
    /// seconds of the last scan reuse its results.
    pub usage_refresh_secs: u64,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self {
            auth: MetricsAuth::Loopback,
            bearer_token: None,
            usage_refresh_secs: 60,
        }
    }
}

/// Where the colder storage classes keep their bytes.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StorageConfig {
    /// The cold volume for STANDARD_IA and GLACIER objects: typically a cheaper, larger disk
    /// or an NFS mount. Default `<data_dir>/cold`. (Env: `STRATA_COLD_DIR`.)
    pub cold_dir: Option<PathBuf>,
}

/// Static website hosting (`[website]`): where website requests arrive.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebsiteEndpointConfig {
    /// A request on the main listener whose Host is `<bucket>.<domain>[:port]` is a website
    /// request. Empty: no host-based website requests. (`*.localhost` resolves to loopback in
    /// browsers and curl, so the default works locally without DNS.)
    pub domain: String,
    /// A separate listener where every request is a website request (bucket = the Host's
    /// first label, or what precedes `.<domain>`).
    pub listen: Option<SocketAddr>,
    /// Routing rules a website configuration may have (S3: 50).
    pub max_routing_rules: usize,
}

impl Default for WebsiteEndpointConfig {
    fn default() -> Self {
        Self {
            domain: "s3-website.localhost".to_string(),
            listen: None,
            max_routing_rules: 50,
        }
    }
}

/// The lifecycle worker (bucket lifecycle rules applied in the background).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LifecycleSettings {
    /// Seconds between scheduled runs; 0 turns the schedule off (`strata lifecycle run` still works).
    pub interval_secs: u64,
    /// Seconds after start-up before the first scheduled run.
    pub startup_delay_secs: u64,
    /// Actions (deletions, aborts, transitions) at most per run; the rest waits for the next run.
    pub max_actions_per_run: u64,
    /// Keys read per scan batch (actions are applied between batches; no lock is held across).
    pub batch_keys: usize,
    /// TEST ONLY: lets `strata lifecycle run --now TIME` evaluate rules at a chosen time.
    /// Never enable in production: a future time expires objects early.
    pub allow_clock_override: bool,
}

impl Default for LifecycleSettings {
    fn default() -> Self {
        Self {
            interval_secs: 3600,
            startup_delay_secs: 60,
            max_actions_per_run: 100_000,
            batch_keys: 1000,
            allow_clock_override: false,
        }
    }
}

/// Encryption at rest.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EncryptionConfig {
    /// The master key file (created on first use, mode 0600). Keep it outside the data dir
    /// and back it up: without it encrypted objects cannot be read. Default: beside the data
    /// dir, `<data_dir>.master-key`.
    pub master_key_file: Option<PathBuf>,
    /// SSE-KMS key used when a request asks for `aws:kms` without naming a key.
    pub default_kms_key_id: Option<String>,
}

impl Config {
    /// Where the master key file is (see [`EncryptionConfig::master_key_file`]).
    pub fn master_key_path(&self) -> PathBuf {
        self.encryption.master_key_file.clone().unwrap_or_else(|| {
            let mut name = self
                .data_dir
                .file_name()
                .map(|n| n.to_os_string())
                .unwrap_or_else(|| "data".into());
            name.push(".master-key");
            self.data_dir.with_file_name(name)
        })
    }
}

/// HTTPS. With `cert` and `key`, `listen` serves HTTPS (HTTP/1.1 and HTTP/2 by ALPN); both
/// files are re-read on SIGHUP.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain, leaf first.
    pub cert: Option<PathBuf>,
    /// PEM private key (PKCS#8, PKCS#1 RSA or SEC1 EC) of the leaf certificate.
    pub key: Option<PathBuf>,
    /// A plain-HTTP listener beside the HTTPS one (its requests have
    /// `aws:SecureTransport = false`).
    pub http_listen: Option<SocketAddr>,
    /// The plain listener answers every request with a redirect to the same URL on https
    /// (301 for GET/HEAD, 308 otherwise) instead of serving it.
    pub redirect_http: bool,
}

impl TlsConfig {
    /// The certificate and key files, when HTTPS is on.
    pub fn files(&self) -> Option<(&Path, &Path)> {
        Some((self.cert.as_deref()?, self.key.as_deref()?))
    }
}

/// Image transforms on GET and the derivative cache.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TransformConfig {
    /// Size bound of `<data>/cache` (least recently used derivatives are evicted).
    pub cache_max_bytes: u64,
    /// Memory for recently served small derivatives (each at most 1/16 of this).
    pub memory_cache_bytes: usize,
    /// Transforms running at once; 0 = one per CPU core.
    pub workers: usize,
    /// Transforms waiting for a worker; beyond this, requests get 503 SlowDown.
    pub queue: usize,
    /// Source width × height, read from the header before decoding.
    pub max_source_pixels: u64,
    /// Size of the stored original a transform may read.
    pub max_source_bytes: u64,
    /// Width × height of the output.
    pub max_output_pixels: u64,
    /// Wall-clock budget of one transform (checked between pipeline steps).
    pub deadline_ms: u64,
    /// Cache-Control of derivatives fetched without `versionId`.
    pub cache_control: String,
    /// Cache-Control of derivatives of a specific version (`?versionId=`): they never change.
    pub cache_control_versioned: String,
    /// Per-bucket settings.
    pub buckets: std::collections::BTreeMap<String, BucketTransform>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BucketTransform {
    /// Overrides `transform.cache_control` for this bucket.
    pub cache_control: Option<String>,
    /// When set, anonymous requests may only ask for these canonical specs (e.g.
    /// `"w=200,h=150,fit=cover,f=webp,q=90,dpr=1,bg=…,strip=1"` as `strata` logs them).
    pub anonymous_presets: Option<Vec<String>>,
}

impl Default for TransformConfig {
    fn default() -> Self {
        let l = crate::transform::Limits::default();
        Self {
            cache_max_bytes: 1024 * 1024 * 1024,
            memory_cache_bytes: 64 * 1024 * 1024,
            workers: 0,
            queue: 64,
            max_source_pixels: l.max_source_pixels,
            max_source_bytes: l.max_source_bytes,
            max_output_pixels: l.max_output_pixels,
            deadline_ms: l.deadline.as_millis() as u64,
            cache_control: "public, max-age=86400".to_string(),
            cache_control_versioned: "public, max-age=31536000, immutable".to_string(),
            buckets: Default::default(),
        }
    }
}

impl TransformConfig {
    pub fn limits(&self) -> crate::transform::Limits {
        crate::transform::Limits {
            max_source_pixels: self.max_source_pixels,
            max_source_bytes: self.max_source_bytes,
            max_output_pixels: self.max_output_pixels,
            deadline: std::time::Duration::from_millis(self.deadline_ms),
        }
    }

    pub fn worker_count(&self) -> usize {
        if self.workers > 0 {
            self.workers
        } else {
            std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RootCredentials {
    pub access_key: Option<String>,
    pub secret_key: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Largest single PUT / part / POST upload (S3: 5 GiB).
    pub max_object_size: u64,
    /// Objects up to this size are stored inside their metadata record.
    pub inline_max_bytes: usize,
    /// Largest XML request body (CompleteMultipartUpload with 10,000 parts fits in 2 MiB).
    pub max_xml_body_bytes: usize,
    /// Total size of `x-amz-meta-*` names and values (S3: 2 KiB).
    pub max_user_metadata_bytes: usize,
    /// Time a client has to send complete request headers.
    pub header_read_timeout_secs: u64,
    /// Longest pause between two chunks of a request body before the upload is abandoned.
    pub body_idle_timeout_secs: u64,
    /// Open client connections at most; further ones wait in the kernel's accept queue.
    pub max_connections: usize,
    /// Presigned URL / signed request clock skew allowance.
    pub max_clock_skew_secs: u32,
    /// Largest POST-form upload buffered in memory by s3s.
    pub max_post_object_bytes: u64,
    /// Seconds a replaced or deleted object's bytes stay on disk for readers already under way.
    pub deleted_blob_grace_secs: u64,
    /// Memory for sled's page cache (metadata and inline small objects).
    pub metadata_cache_bytes: u64,
    /// Versions removed per metadata transaction by `strata bucket delete --force`.
    pub bucket_delete_batch: usize,
    /// Blob unlinks queued while a backup runs; past this, freed blobs are left for the next
    /// start-up sweep (or `strata fsck`) instead of queueing more.
    pub backup_max_held_unlinks: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_object_size: 5 * 1024 * 1024 * 1024,
            inline_max_bytes: 16 * 1024,
            max_xml_body_bytes: 4 * 1024 * 1024,
            max_user_metadata_bytes: 2048,
            header_read_timeout_secs: 30,
            body_idle_timeout_secs: 30,
            max_connections: 1024,
            max_clock_skew_secs: 900,
            max_post_object_bytes: 64 * 1024 * 1024,
            deleted_blob_grace_secs: 5,
            metadata_cache_bytes: 64 * 1024 * 1024,
            bucket_delete_batch: 1000,
            backup_max_held_unlinks: 1_000_000,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: DEFAULT_LISTEN
                .parse()
                .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 9000))),
            data_dir: PathBuf::from(DEFAULT_DATA_DIR),
            region: DEFAULT_REGION.to_string(),
            domain: None,
            allow_sigv2: false,
            block_public_access: true,
            log_format: "text".to_string(),
            credentials: RootCredentials::default(),
            limits: Limits::default(),
            transform: TransformConfig::default(),
            encryption: EncryptionConfig::default(),
            tls: TlsConfig::default(),
            lifecycle: LifecycleSettings::default(),
            storage: StorageConfig::default(),
            metrics: MetricsConfig::default(),
            website: WebsiteEndpointConfig::default(),
            scrub: ScrubConfig::default(),
        }
    }
}

/// Values given on the command line or through `STRATA_*` env vars (clap reads both;
/// a flag wins over its env var).
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub listen: Option<SocketAddr>,
    pub data_dir: Option<PathBuf>,
    pub region: Option<String>,
    pub domain: Option<String>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
}

impl Limits {
    pub fn store_options(&self) -> crate::store::StoreOptions {
        crate::store::StoreOptions {
            delete_grace: std::time::Duration::from_secs(self.deleted_blob_grace_secs),
            body_idle_timeout: std::time::Duration::from_secs(self.body_idle_timeout_secs),
            metadata_cache_bytes: self.metadata_cache_bytes,
            cold_dir: None,
            max_held_unlinks: self.backup_max_held_unlinks,
        }
    }
}

impl Config {
    /// The store's tunables: `[limits]` plus the cold volume.
    pub fn store_options(&self) -> crate::store::StoreOptions {
        let mut opts = self.limits.store_options();
        opts.cold_dir = self.storage.cold_dir.clone();
        opts
    }

    /// Loads the TOML file (if any), then applies env/flag overrides and validates.
    pub fn load(file: Option<&Path>, over: Overrides) -> anyhow::Result<Self> {
        let mut cfg = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| anyhow::anyhow!("cannot read config file {}: {e}", path.display()))?;
                toml::from_str::<Config>(&text)
                    .map_err(|e| anyhow::anyhow!("invalid config file {}: {e}", path.display()))?
            }
            None => Config::default(),
        };
        if let Some(v) = over.listen {
            cfg.listen = v;
        }
        if let Some(v) = over.data_dir {
            cfg.data_dir = v;
        }
        if let Some(v) = over.region {
            cfg.region = v;
        }
        if over.domain.is_some() {
            cfg.domain = over.domain;
        }
        if over.tls_cert.is_some() {
            cfg.tls.cert = over.tls_cert;
        }
        if over.tls_key.is_some() {
            cfg.tls.key = over.tls_key;
        }
        if let Ok(v) = std::env::var("STRATA_COLD_DIR") {
            cfg.storage.cold_dir = Some(PathBuf::from(v));
        }
        if let Ok(v) = std::env::var("STRATA_MASTER_KEY_FILE") {
            cfg.encryption.master_key_file = Some(PathBuf::from(v));
        }
        if let Ok(v) = std::env::var("STRATA_METRICS_BEARER_TOKEN") {
            cfg.metrics.bearer_token = Some(v);
        }
        if let Ok(v) = std::env::var("STRATA_ROOT_ACCESS_KEY") {
            cfg.credentials.access_key = Some(v);
        }
        if let Ok(v) = std::env::var("STRATA_ROOT_SECRET_KEY") {
            cfg.credentials.secret_key = Some(v);
        }
        cfg.validate()?;
        Ok(cfg)
    }

    fn validate(&self) -> anyhow::Result<()> {
        if self.region.is_empty() {
            anyhow::bail!("region must not be empty");
        }
        if !matches!(self.log_format.as_str(), "text" | "json") {
            anyhow::bail!("log_format must be \"text\" or \"json\"");
        }
        if self.credentials.access_key.is_some() != self.credentials.secret_key.is_some() {
            anyhow::bail!("root credentials need both an access key and a secret key");
        }
        if self.limits.inline_max_bytes > 1024 * 1024 {
            anyhow::bail!("limits.inline_max_bytes must be at most 1 MiB");
        }
        if self.metrics.auth == MetricsAuth::Token && self.metrics.bearer_token.as_deref().unwrap_or("").is_empty() {
            anyhow::bail!("metrics.auth = \"token\" needs metrics.bearer_token (or STRATA_METRICS_BEARER_TOKEN)");
        }
        let tls = &self.tls;
        if tls.cert.is_some() != tls.key.is_some() {
            anyhow::bail!("TLS needs both a certificate and a key (--tls-cert and --tls-key, or tls.cert and tls.key)");
        }
        if tls.http_listen.is_some() && tls.cert.is_none() {
            anyhow::bail!("tls.http_listen needs TLS on (a certificate and a key); without them use listen");
        }
        if tls.redirect_http && tls.http_listen.is_none() {
            anyhow::bail!("tls.redirect_http needs tls.http_listen (the plain listener that redirects)");
        }
        if tls.http_listen == Some(self.listen) && self.listen.port() != 0 {
            anyhow::bail!("tls.http_listen must differ from listen ({})", self.listen);
        }
        if self.scrub.background && self.scrub.bytes_per_sec == 0 {
            anyhow::bail!("scrub.bytes_per_sec must be positive when scrub.background is on");
        }
        let website = &self.website;
        if website.domain.starts_with('.') || website.domain.contains(['/', ':']) {
            anyhow::bail!("website.domain must be a host name such as s3-website.localhost");
        }
        if !website.domain.is_empty() && self.domain.as_deref() == Some(website.domain.as_str()) {
            anyhow::bail!("website.domain must differ from domain (the S3 API's virtual-host domain)");
        }
        if website.listen.is_some_and(|a| a == self.listen && a.port() != 0) {
            anyhow::bail!("website.listen must differ from listen ({})", self.listen);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_values_are_overridden_by_flags() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("strata.toml");
        std::fs::write(
            &path,
            "listen = \"127.0.0.1:9100\"\nregion = \"eu-west-1\"\n[limits]\ninline_max_bytes = 100\n",
        )
        .expect("write");
        let cfg = Config::load(
            Some(&path),
            Overrides {
                region: Some("us-west-2".into()),
                ..Default::default()
            },
        )
        .expect("load");
        assert_eq!(cfg.listen.port(), 9100);
        assert_eq!(cfg.region, "us-west-2");
        assert_eq!(cfg.limits.inline_max_bytes, 100);
        assert_eq!(cfg.limits.max_object_size, 5 * 1024 * 1024 * 1024);
    }

    #[test]
    fn tls_settings_from_file_and_flags() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("strata.toml");
        std::fs::write(
            &path,
            "[tls]\ncert = \"c.pem\"\nkey = \"k.pem\"\nhttp_listen = \"127.0.0.1:9080\"\nredirect_http = true\n",
        )
        .expect("write");
        let cfg = Config::load(
            Some(&path),
            Overrides {
                tls_cert: Some("flag.pem".into()),
                ..Default::default()
            },
        )
        .expect("load");
        assert_eq!(cfg.tls.files(), Some((Path::new("flag.pem"), Path::new("k.pem"))));
        assert_eq!(cfg.tls.http_listen.map(|a| a.port()), Some(9080));
        assert!(cfg.tls.redirect_http);
        assert!(Config::default().tls.files().is_none());
    }

    #[test]
    fn incomplete_tls_settings_are_rejected() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("strata.toml");
        for toml in [
            "[tls]\ncert = \"c.pem\"\n",
            "[tls]\nkey = \"k.pem\"\n",
            "[tls]\nhttp_listen = \"127.0.0.1:9080\"\n",
            "[tls]\ncert = \"c.pem\"\nkey = \"k.pem\"\nredirect_http = true\n",
        ] {
            std::fs::write(&path, toml).expect("write");
            assert!(Config::load(Some(&path), Overrides::default()).is_err(), "{toml}");
        }
    }

    #[test]
    fn metrics_settings_and_token_requirement() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("strata.toml");
        assert_eq!(Config::default().metrics.auth, MetricsAuth::Loopback);
        assert_eq!(Config::default().metrics.usage_refresh_secs, 60);
        std::fs::write(&path, "[metrics]\nauth = \"token\"\n").expect("write");
        assert!(
            Config::load(Some(&path), Overrides::default()).is_err(),
            "token auth without a token"
        );
        std::fs::write(
            &path,
            "[metrics]\nauth = \"token\"\nbearer_token = \"t\"\nusage_refresh_secs = 5\n",
        )
        .expect("write");
        let cfg = Config::load(Some(&path), Overrides::default()).expect("load");
        assert_eq!(cfg.metrics.auth, MetricsAuth::Token);
        assert_eq!(cfg.metrics.usage_refresh_secs, 5);
        std::fs::write(&path, "[metrics]\nauth = \"open\"\n").expect("write");
        assert!(
            Config::load(Some(&path), Overrides::default()).is_err(),
            "unknown auth mode"
        );
    }

    #[test]
    fn website_settings() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("strata.toml");
        let defaults = Config::default().website;
        assert_eq!(
            (defaults.domain.as_str(), defaults.listen, defaults.max_routing_rules),
            ("s3-website.localhost", None, 50)
        );
        std::fs::write(
            &path,
            "[website]\ndomain = \"sites.example\"\nlisten = \"127.0.0.1:9001\"\nmax_routing_rules = 10\n",
        )
        .expect("write");
        let cfg = Config::load(Some(&path), Overrides::default()).expect("load");
        assert_eq!(cfg.website.domain, "sites.example");
        assert_eq!(cfg.website.listen.map(|a| a.port()), Some(9001));
        assert_eq!(cfg.website.max_routing_rules, 10);
        for bad in [
            "domain = \"s3.example\"\n[website]\ndomain = \"s3.example\"\n",
            "[website]\ndomain = \".example\"\n",
            "listen = \"127.0.0.1:9000\"\n[website]\nlisten = \"127.0.0.1:9000\"\n",
        ] {
            std::fs::write(&path, bad).expect("write");
            assert!(Config::load(Some(&path), Overrides::default()).is_err(), "{bad}");
        }
    }

    #[test]
    fn scrub_settings() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("strata.toml");
        let d = Config::default().scrub;
        assert_eq!(
            (d.background, d.bytes_per_sec, d.interval_secs, d.startup_delay_secs),
            (false, 50 * 1024 * 1024, 7 * 24 * 3600, 300)
        );
        std::fs::write(
            &path,
            "[scrub]\nbackground = true\nbytes_per_sec = 1000\ninterval_secs = 5\nstartup_delay_secs = 0\n",
        )
        .expect("write");
        let cfg = Config::load(Some(&path), Overrides::default()).expect("load");
        assert!(cfg.scrub.background);
        assert_eq!(
            (
                cfg.scrub.bytes_per_sec,
                cfg.scrub.interval_secs,
                cfg.scrub.startup_delay_secs
            ),
            (1000, 5, 0)
        );
        for bad in ["[scrub]\nbackground = true\nbytes_per_sec = 0\n", "[scrub]\nrate = 1\n"] {
            std::fs::write(&path, bad).expect("write");
            assert!(Config::load(Some(&path), Overrides::default()).is_err(), "{bad}");
        }
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("strata.toml");
        std::fs::write(&path, "lisen = \"127.0.0.1:9100\"\n").expect("write");
        assert!(Config::load(Some(&path), Overrides::default()).is_err());
    }
}
