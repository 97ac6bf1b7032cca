//! The `strata` command line: the clap definitions of every command, logging set-up, and
//! dispatch to one file per command family ([`serve`], [`key`], [`bucket`], [`offline`],
//! [`backup`], [`lifecycle`]); [`client`] is the admin API client the online commands share.
//! `main.rs` only calls [`run`].

pub mod bucket;
pub mod client;

mod backup;
mod key;
mod lifecycle;
mod offline;
mod serve;

use std::path::{Path, PathBuf};

use crate::auth::keys::{self, RootSource};
use crate::auth::RootKey;
use crate::config::{Config, Overrides, DEFAULT_DATA_DIR};
use clap::{Args, Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "strata",
    version,
    about = "Self-hosted S3-compatible object store with built-in image transforms"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the S3 server (defaults: 127.0.0.1:9000, data in ./data).
    Serve(ServeArgs),
    /// Manage access keys (principals).
    #[command(subcommand)]
    Key(KeyCommand),
    /// Manage buckets through a running server's admin API.
    #[command(subcommand)]
    Bucket(BucketCommand),
    /// Check the data dir offline: every object's blobs exist with the recorded size; remove
    /// unreferenced blobs. Exits non-zero when problems are found.
    Fsck(RepairArgs),
    /// Read every stored byte offline and verify it against its recorded checksums; lists
    /// each bad block by bucket/key/version, blob, block and offset, and exits non-zero if
    /// there are any.
    Scrub(RepairArgs),
    /// Write a self-signed certificate and key for local HTTPS (`serve --tls-cert CERT
    /// --tls-key KEY`); clients trust it with e.g. `aws --ca-bundle CERT`.
    DevCert(DevCertArgs),
    /// Manage the local keyring of SSE-KMS keys (offline: the server must be stopped).
    #[command(subcommand)]
    Kms(KmsCommand),
    /// Back up metadata and object bytes at one point in time into DIR (on the server's
    /// machine), through the running server; with --data-dir, directly (server stopped).
    /// DIR may hold a previous backup: only new blobs are copied. The SSE master key file is
    /// NOT included: back it up separately.
    Backup(BackupArgs),
    /// Restore a backup into an empty or new data dir (offline), verifying every byte.
    Restore(RestoreArgs),
    /// Bucket lifecycle rules (through a running server's admin API).
    #[command(subcommand)]
    Lifecycle(LifecycleCommand),
}

#[derive(Args)]
struct BackupArgs {
    /// Absolute backup directory: empty, new, or a previous Strata backup.
    #[arg(long, value_name = "DIR")]
    to: PathBuf,
    /// Back up this data dir directly instead of through a running server (which must be
    /// stopped).
    #[arg(long = "data-dir", visible_alias = "data", value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// TOML config file (for listen, TLS and credentials).
    #[arg(long, env = "STRATA_CONFIG")]
    config: Option<PathBuf>,
    /// The running server (default: http(s)://LISTEN of the config).
    #[arg(long, env = "STRATA_ENDPOINT")]
    endpoint: Option<String>,
    /// PEM certificate(s) to trust for an https endpoint.
    #[arg(long, env = "STRATA_CA_BUNDLE", value_name = "FILE")]
    ca_bundle: Option<PathBuf>,
}

#[derive(Args)]
struct RestoreArgs {
    /// The backup directory.
    #[arg(long, value_name = "DIR")]
    from: PathBuf,
    /// The data dir to create (must be empty or absent).
    #[arg(long = "data-dir", visible_alias = "data", value_name = "DIR")]
    data_dir: PathBuf,
    /// TOML config file: where the restored STANDARD_IA/GLACIER bytes go (`storage.cold_dir`).
    #[arg(long, env = "STRATA_CONFIG")]
    config: Option<PathBuf>,
}

#[derive(Subcommand)]
enum LifecycleCommand {
    /// Apply the lifecycle rules now (the server also runs them every lifecycle.interval_secs);
    /// prints a summary line.
    Run {
        /// Only this bucket.
        #[arg(long)]
        bucket: Option<String>,
        /// TEST ONLY: evaluate the rules at this RFC 3339 time instead of the server's clock.
        /// The server refuses it unless its config sets lifecycle.allow_clock_override.
        #[arg(long, value_name = "RFC3339")]
        now: Option<String>,
        #[command(flatten)]
        target: KeyTarget,
    },
}

#[derive(Subcommand)]
enum KmsCommand {
    /// Create a named key for `x-amz-server-side-encryption: aws:kms` with
    /// `x-amz-server-side-encryption-aws-kms-key-id: NAME`.
    Create {
        name: String,
        #[command(flatten)]
        data: DataArgs,
    },
    /// List the keyring's key names.
    List {
        #[command(flatten)]
        data: DataArgs,
    },
}

#[derive(Args)]
struct DevCertArgs {
    /// Where to write the certificate (PEM).
    #[arg(long, value_name = "FILE")]
    cert: PathBuf,
    /// Where to write the private key (PEM, mode 0600).
    #[arg(long, value_name = "FILE")]
    key: PathBuf,
    /// A name the certificate is valid for: an IP address (IP SAN) or a DNS name. Repeat for
    /// more.
    #[arg(long = "host", value_name = "NAME", default_values = ["127.0.0.1", "localhost"])]
    hosts: Vec<String>,
}

#[derive(Args)]
struct ServeArgs {
    /// Address to listen on (port 0 picks a free port; the chosen address is printed).
    #[arg(long, env = "STRATA_LISTEN")]
    listen: Option<std::net::SocketAddr>,
    /// Data directory (metadata, blobs, cache).
    #[arg(long = "data", env = "STRATA_DATA_DIR")]
    data: Option<PathBuf>,
    /// TOML config file; flags and STRATA_* env vars override its values.
    #[arg(long, env = "STRATA_CONFIG")]
    config: Option<PathBuf>,
    /// Region reported to clients and used for signature scope.
    #[arg(long, env = "STRATA_REGION")]
    region: Option<String>,
    /// Base domain for virtual-hosted-style requests (bucket.DOMAIN). Path style always works.
    #[arg(long, env = "STRATA_DOMAIN")]
    domain: Option<String>,
    /// Serve HTTPS with this PEM certificate chain (leaf first); needs --tls-key. Both files
    /// are re-read on SIGHUP.
    #[arg(long, env = "STRATA_TLS_CERT", value_name = "FILE")]
    tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, env = "STRATA_TLS_KEY", value_name = "FILE")]
    tls_key: Option<PathBuf>,
}

#[derive(Args, Clone)]
struct DataArgs {
    /// Data directory to open directly (only while no server is using it).
    #[arg(long = "data", env = "STRATA_DATA_DIR")]
    data: Option<PathBuf>,
    /// TOML config file (for data_dir, listen and credentials).
    #[arg(long, env = "STRATA_CONFIG")]
    config: Option<PathBuf>,
}

#[derive(Args, Clone)]
struct RepairArgs {
    #[command(flatten)]
    data: DataArgs,
    /// Also give blobs written before block checksums their block table (after verifying
    /// their whole-blob checksum), and rewrite damaged tables of blobs whose data is intact.
    #[arg(long)]
    repair: bool,
}

#[derive(Args, Clone)]
struct KeyTarget {
    #[command(flatten)]
    data: DataArgs,
    /// Talk to a running server's admin API instead of opening the data dir
    /// (root credentials from STRATA_ROOT_ACCESS_KEY/STRATA_ROOT_SECRET_KEY, the config
    /// file, or the data dir). Used automatically when the data dir is locked by a server.
    #[arg(long, env = "STRATA_ENDPOINT")]
    endpoint: Option<String>,
    /// PEM certificate(s) to trust for an https endpoint (default, when the config sets a TLS
    /// certificate: that certificate).
    #[arg(long, env = "STRATA_CA_BUNDLE", value_name = "FILE")]
    ca_bundle: Option<PathBuf>,
}

#[derive(Subcommand)]
enum BucketCommand {
    /// List every bucket with its owner, creation time, versioning, objects and size.
    List {
        #[command(flatten)]
        target: KeyTarget,
    },
    /// Create a bucket, owned by the root key or by --owner.
    Create {
        name: String,
        /// The access key id that owns the bucket (default: the root key).
        #[arg(long, value_name = "ACCESS_KEY_ID")]
        owner: Option<String>,
        #[command(flatten)]
        target: KeyTarget,
    },
    /// Delete an empty bucket; with --force, first delete every object version, delete
    /// marker and incomplete multipart upload in it.
    Delete {
        name: String,
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        target: KeyTarget,
    },
    /// Objects, bytes, noncurrent versions and incomplete uploads of one bucket, or of all.
    Usage {
        name: Option<String>,
        #[command(flatten)]
        target: KeyTarget,
    },
}

#[derive(Subcommand)]
enum KeyCommand {
    /// Create an access key; prints AccessKeyId and SecretAccessKey.
    Create {
        /// A name for the key's owner.
        name: String,
        #[command(flatten)]
        target: KeyTarget,
    },
    /// List access keys (secrets are not shown).
    List {
        #[command(flatten)]
        target: KeyTarget,
    },
    /// Delete an access key.
    Delete {
        /// The AccessKeyId to delete.
        id: String,
        #[command(flatten)]
        target: KeyTarget,
    },
    /// Replace the master key: re-seal every SSE-S3 data key and SSE-KMS key under a new one
    /// (object bytes are not rewritten). Offline; resumes if interrupted; the old key stays in
    /// the key file until everything is re-sealed.
    RotateMaster {
        #[command(flatten)]
        data: DataArgs,
    },
}

fn init_logging(format: &str) {
    let mut filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sled=warn"));
    // s3s logs whole responses at debug (admin responses carry new secrets) and every client
    // error at error level; our own logs cover both. STRATA_LOG_S3S=1 lets it through.
    if std::env::var_os("STRATA_LOG_S3S").is_none() {
        if let Ok(d) = "s3s=off".parse() {
            filter = filter.add_directive(d);
        }
    }
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// Parses the command line and runs the command; what `main` does.
pub fn run() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve::serve(args),
        Command::Key(cmd) => key::command(cmd),
        Command::Bucket(cmd) => bucket::command(cmd),
        Command::Fsck(args) => offline::fsck(args),
        Command::Scrub(args) => offline::scrub(args),
        Command::Kms(cmd) => offline::kms(cmd),
        Command::DevCert(args) => serve::dev_cert(args),
        Command::Backup(args) => backup::backup(args),
        Command::Restore(args) => backup::restore(args),
        Command::Lifecycle(cmd) => lifecycle::lifecycle(cmd),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn load_config(file: Option<&Path>, data: Option<PathBuf>) -> anyhow::Result<Config> {
    Config::load(
        file,
        Overrides {
            data_dir: data,
            ..Default::default()
        },
    )
}

fn configured_root(cfg: &Config) -> Option<RootKey> {
    match (&cfg.credentials.access_key, &cfg.credentials.secret_key) {
        (Some(a), Some(s)) => Some(RootKey {
            access_key: a.clone(),
            secret_key: s.clone(),
        }),
        _ => None,
    }
}

fn root_for_client(cfg: &Config) -> anyhow::Result<RootKey> {
    configured_root(cfg)
        .or_else(|| keys::stored_root(&cfg.data_dir))
        .ok_or_else(|| anyhow::anyhow!("no root credentials: set STRATA_ROOT_ACCESS_KEY and STRATA_ROOT_SECRET_KEY"))
}

/// A counting spinner on stderr for offline walks whose total is not known up front
/// (indicatif draws nothing when stderr is not a terminal).
fn spinner(template: &str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new_spinner();
    bar.set_style(
        indicatif::ProgressStyle::with_template(template)
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
    );
    bar.enable_steady_tick(std::time::Duration::from_millis(200));
    bar
}

/// The progress bar of `strata backup` / `strata restore`, fed with [`Progress`] reports.
fn progress_bar(what: &'static str) -> impl FnMut(crate::backup::Progress) {
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template(&format!(
            "{what} [{{bar:40}}] {{pos}}/{{len}} blobs, {{msg}} ({{eta}})"
        ))
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    move |p| match p {
        crate::backup::Progress::Metadata => bar.set_message("metadata"),
        crate::backup::Progress::Blobs { done, total, bytes } => {
            bar.set_length(total);
            bar.set_position(done);
            bar.set_message(format!("{} MiB", bytes / (1024 * 1024)));
        }
        crate::backup::Progress::Done { .. } | crate::backup::Progress::Error { .. } => bar.finish_and_clear(),
    }
}
