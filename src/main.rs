//! The `strata` command line: parses arguments and calls into the library.

use std::path::{Path, PathBuf};

use clap::{Args, Parser, Subcommand};
use strata::auth::keys::{self, RootSource};
use strata::auth::RootKey;
use strata::config::{Config, Overrides, DEFAULT_DATA_DIR};

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

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve(args),
        Command::Key(cmd) => key(cmd),
        Command::Bucket(cmd) => bucket(cmd),
        Command::Fsck(args) => fsck(args),
        Command::Scrub(args) => scrub(args),
        Command::Kms(cmd) => kms(cmd),
        Command::DevCert(args) => dev_cert(args),
        Command::Backup(args) => backup(args),
        Command::Restore(args) => restore(args),
        Command::Lifecycle(cmd) => lifecycle(cmd),
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

fn serve(args: ServeArgs) -> anyhow::Result<std::process::ExitCode> {
    let cfg = Config::load(
        args.config.as_deref(),
        Overrides {
            listen: args.listen,
            data_dir: args.data,
            region: args.region,
            domain: args.domain,
            tls_cert: args.tls_cert,
            tls_key: args.tls_key,
        },
    )?;
    init_logging(&cfg.log_format);
    // A bad certificate or key fails start-up before the data dir is touched.
    if let Some((cert, key)) = cfg.tls.files() {
        strata::tls::load_certified_key(cert, key, &strata::tls::provider())?;
    }
    let (root, source) = keys::resolve_root(configured_root(&cfg), &cfg.data_dir)?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        // Sweep blobs left by a crash before any request can create new ones.
        let data_dir = cfg.data_dir.clone();
        let opts = cfg.store_options();
        let (mut store, swept) = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
            let store = strata::store::Store::open(&data_dir, &opts)?;
            let report = store.sweep_orphans()?;
            Ok((store, report))
        })
        .await??;
        if swept.orphans_removed > 0 {
            tracing::warn!(
                removed = swept.orphans_removed,
                "removed unreferenced blobs left by an earlier crash"
            );
        }
        store.meta.start_group_commit();
        if cfg.scrub.background {
            strata::store::scrub::spawn_background(
                store.clone(),
                cfg.scrub.bytes_per_sec,
                std::time::Duration::from_secs(cfg.scrub.startup_delay_secs),
                std::time::Duration::from_secs(cfg.scrub.interval_secs),
            );
        }
        announce(&cfg, &root, &source);
        let shutdown = async {
            let ctrl_c = tokio::signal::ctrl_c();
            #[cfg(unix)]
            {
                let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                    Ok(t) => t,
                    Err(_) => {
                        let _ = ctrl_c.await;
                        return;
                    }
                };
                tokio::select! {
                    _ = ctrl_c => {},
                    _ = term.recv() => {},
                }
            }
        };
        strata::server::serve(cfg, store, root, shutdown).await
    })?;
    Ok(std::process::ExitCode::SUCCESS)
}

fn announce(cfg: &Config, root: &RootKey, source: &RootSource) {
    let creds_file = cfg.data_dir.join("root-credentials.toml");
    let scheme = if cfg.tls.files().is_some() { "https" } else { "http" };
    match source {
        RootSource::Generated => {
            println!(
                "Generated root credentials (stored in {}; shown only this once):",
                creds_file.display()
            );
            println!("AccessKeyId: {}", root.access_key);
            println!("SecretAccessKey: {}", root.secret_key);
            println!(
                "Use them with: AWS_ACCESS_KEY_ID={} AWS_SECRET_ACCESS_KEY=<secret> aws --endpoint-url {scheme}://{} s3 ls",
                root.access_key, cfg.listen
            );
        }
        RootSource::Stored => println!(
            "Root access key {} (secret in {})",
            root.access_key,
            creds_file.display()
        ),
        RootSource::Configured => println!("Root access key {} (from config/env)", root.access_key),
    }
}

fn dev_cert(args: DevCertArgs) -> anyhow::Result<std::process::ExitCode> {
    strata::tls::write_dev_cert(&args.cert, &args.key, &args.hosts)?;
    println!(
        "Wrote a self-signed certificate for {} to {} (valid {} days) and its key to {}",
        args.hosts.join(", "),
        args.cert.display(),
        strata::tls::DEV_CERT_DAYS,
        args.key.display()
    );
    println!(
        "Serve with: strata serve --tls-cert {} --tls-key {}",
        args.cert.display(),
        args.key.display()
    );
    println!(
        "Clients trust it with e.g.: aws --ca-bundle {} --endpoint-url https://…",
        args.cert.display()
    );
    Ok(std::process::ExitCode::SUCCESS)
}

fn root_for_client(cfg: &Config) -> anyhow::Result<RootKey> {
    configured_root(cfg)
        .or_else(|| keys::stored_root(&cfg.data_dir))
        .ok_or_else(|| anyhow::anyhow!("no root credentials: set STRATA_ROOT_ACCESS_KEY and STRATA_ROOT_SECRET_KEY"))
}

enum KeyOp {
    Create(String),
    List,
    Delete(String),
}

fn key(cmd: KeyCommand) -> anyhow::Result<std::process::ExitCode> {
    let (op, target) = match cmd {
        KeyCommand::RotateMaster { data } => return rotate_master(data),
        KeyCommand::Create { name, target } => (KeyOp::Create(name), target),
        KeyCommand::List { target } => (KeyOp::List, target),
        KeyCommand::Delete { id, target } => (KeyOp::Delete(id), target),
    };
    let cfg = load_config(target.data.config.as_deref(), target.data.data.clone())?;
    let endpoint = match target.endpoint {
        Some(e) => Some(e),
        None => match strata::store::MetaStore::open(&cfg.data_dir, cfg.limits.metadata_cache_bytes) {
            Ok(meta) => return key_offline(&meta, op),
            // sled holds an exclusive lock: a server owns this data dir, so ask it.
            Err(e) => {
                tracing::debug!(error = %e, "data dir busy; using the admin API");
                let scheme = if cfg.tls.files().is_some() { "https" } else { "http" };
                Some(format!("{scheme}://{}", cfg.listen))
            }
        },
    };
    let client = strata::admin_client::AdminClient {
        endpoint: endpoint.unwrap_or_default(),
        root: root_for_client(&cfg)?,
        region: cfg.region.clone(),
        ca_bundle: target.ca_bundle.or_else(|| cfg.tls.cert.clone()),
    };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(key_online(&client, op))
}

fn bucket(cmd: BucketCommand) -> anyhow::Result<std::process::ExitCode> {
    use strata::cli_bucket::BucketOp;
    let (op, target) = match cmd {
        BucketCommand::List { target } => (BucketOp::List, target),
        BucketCommand::Create { name, owner, target } => (BucketOp::Create { name, owner }, target),
        BucketCommand::Delete { name, force, target } => (BucketOp::Delete { name, force }, target),
        BucketCommand::Usage { name, target } => (BucketOp::Usage { name }, target),
    };
    let cfg = load_config(target.data.config.as_deref(), target.data.data.clone())?;
    let endpoint = target.endpoint.unwrap_or_else(|| {
        let scheme = if cfg.tls.files().is_some() { "https" } else { "http" };
        format!("{scheme}://{}", cfg.listen)
    });
    let client = strata::admin_client::AdminClient {
        endpoint,
        root: root_for_client(&cfg)?,
        region: cfg.region.clone(),
        ca_bundle: target.ca_bundle.or_else(|| cfg.tls.cert.clone()),
    };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(strata::cli_bucket::run(&client, op))
}

fn key_offline(meta: &strata::store::MetaStore, op: KeyOp) -> anyhow::Result<std::process::ExitCode> {
    match op {
        KeyOp::Create(name) => {
            let (ak, sk) = keys::create_key(meta, &name)?;
            meta.flush_blocking()?;
            println!("AccessKeyId: {ak}");
            println!("SecretAccessKey: {sk}");
        }
        KeyOp::List => {
            for (ak, k) in meta.keys()? {
                println!("{ak}\t{}", k.name);
            }
        }
        KeyOp::Delete(id) => {
            if !meta.delete_key(&id)? {
                anyhow::bail!("no such access key: {id}");
            }
            meta.flush_blocking()?;
            println!("Deleted {id}");
        }
    }
    Ok(std::process::ExitCode::SUCCESS)
}

async fn key_online(client: &strata::admin_client::AdminClient, op: KeyOp) -> anyhow::Result<std::process::ExitCode> {
    let (method, path) = match &op {
        KeyOp::Create(name) => (
            "POST",
            format!("/_strata/admin/keys?name={}", urlencoding::encode(name)),
        ),
        KeyOp::List => ("GET", "/_strata/admin/keys".to_string()),
        KeyOp::Delete(id) => ("DELETE", format!("/_strata/admin/keys/{}", urlencoding::encode(id))),
    };
    let (status, body) = client.call(method, &path).await?;
    if !(200..300).contains(&status) {
        anyhow::bail!("server answered {status}: {body}");
    }
    match op {
        KeyOp::Create(_) => {
            let v: serde_json::Value = serde_json::from_str(&body)?;
            println!("AccessKeyId: {}", v["access_key"].as_str().unwrap_or_default());
            println!("SecretAccessKey: {}", v["secret_key"].as_str().unwrap_or_default());
        }
        KeyOp::List => {
            let v: Vec<serde_json::Value> = serde_json::from_str(&body)?;
            for k in v {
                println!(
                    "{}\t{}",
                    k["access_key"].as_str().unwrap_or_default(),
                    k["name"].as_str().unwrap_or_default()
                );
            }
        }
        KeyOp::Delete(id) => println!("Deleted {id}"),
    }
    Ok(std::process::ExitCode::SUCCESS)
}

fn fsck(args: RepairArgs) -> anyhow::Result<std::process::ExitCode> {
    let store = open_offline(args.data)?;
    let spinner = spinner("fsck: {pos} objects and parts checked {spinner}");
    let report = strata::store::fsck::check(&store, |n| spinner.set_position(n))?;
    spinner.finish_and_clear();
    println!(
        "fsck: {} objects, {} parts checked; {} missing or short blobs; {} unreferenced blobs removed",
        report.objects,
        report.parts,
        report.problems.len(),
        report.orphans_removed
    );
    for p in &report.problems {
        println!("problem: {p}");
    }
    let mut failed = !report.problems.is_empty();
    if args.repair {
        failed |= !run_repair(&store, &Default::default())?;
    } else if report.legacy_blobs > 0 {
        println!(
            "fsck: {} blobs have no block checksums (written by an older version; range reads of them read the whole blob): `strata fsck --repair` adds them",
            report.legacy_blobs
        );
    }
    Ok(if !failed {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::FAILURE
    })
}

fn open_offline(args: DataArgs) -> anyhow::Result<strata::store::Store> {
    let cfg = load_config(
        args.config.as_deref(),
        args.data.or_else(|| Some(PathBuf::from(DEFAULT_DATA_DIR))),
    )?;
    strata::store::Store::open(&cfg.data_dir, &cfg.store_options()).map_err(|e| {
        anyhow::anyhow!(
            "cannot open {} (is a server running on it?): {e}",
            cfg.data_dir.display()
        )
    })
}

/// The store and keyring of a data dir, opened offline.
fn open_keyring(args: DataArgs) -> anyhow::Result<(strata::store::Store, strata::store::keyring::Keyring)> {
    let cfg = load_config(
        args.config.as_deref(),
        args.data.clone().or_else(|| Some(PathBuf::from(DEFAULT_DATA_DIR))),
    )?;
    let store = open_offline(args)?;
    let ring = strata::store::keyring::Keyring::open(&cfg.master_key_path(), store.meta.clone())?;
    Ok((store, ring))
}

fn kms(cmd: KmsCommand) -> anyhow::Result<std::process::ExitCode> {
    match cmd {
        KmsCommand::Create { name, data } => {
            let (_store, ring) = open_keyring(data)?;
            ring.create_kms_key(&name)?;
            println!("created KMS key {name}");
        }
        KmsCommand::List { data } => {
            let (_store, ring) = open_keyring(data)?;
            for name in ring.kms_key_names()? {
                println!("{name}");
            }
        }
    }
    Ok(std::process::ExitCode::SUCCESS)
}

fn rotate_master(data: DataArgs) -> anyhow::Result<std::process::ExitCode> {
    let (_store, ring) = open_keyring(data)?;
    let started = std::time::Instant::now();
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template("rotate-master [{bar:40}] {pos}/{len} records ({eta})")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let resealed = ring.rotate_master(|done, total| {
        bar.set_length(total);
        bar.set_position(done);
    })?;
    bar.finish_and_clear();
    println!(
        "rotate-master: {resealed} keys re-sealed under the new master key in {:.1}s; old master keys removed",
        started.elapsed().as_secs_f64()
    );
    Ok(std::process::ExitCode::SUCCESS)
}

/// `--repair`: prints what it did; false when something could not be repaired.
fn run_repair(
    store: &strata::store::Store,
    damaged_tables: &std::collections::HashSet<String>,
) -> anyhow::Result<bool> {
    let spinner = spinner("repair: {pos} blobs rewritten {spinner}");
    let report = strata::store::repair::repair(store, damaged_tables, |n| spinner.set_position(n))?;
    spinner.finish_and_clear();
    for p in &report.problems {
        println!("not repaired: {p}");
    }
    println!(
        "repair: {} blobs given block checksums, {} damaged block tables rewritten; {} not repaired",
        report.upgraded,
        report.tables_rebuilt,
        report.problems.len()
    );
    Ok(report.problems.is_empty())
}

fn scrub(args: RepairArgs) -> anyhow::Result<std::process::ExitCode> {
    let store = open_offline(args.data)?;
    let started = std::time::Instant::now();
    let spinner = spinner("scrub: {pos} objects, {msg} verified ({elapsed}) {spinner}");
    let report = strata::store::scrub::scrub(&store, &Default::default(), |n, bytes| {
        spinner.set_position(n);
        spinner.set_message(indicatif::HumanBytes(bytes).to_string());
    })?;
    spinner.finish_and_clear();
    for line in &report.corrupt {
        println!("corrupt: {line}");
    }
    println!(
        "scrub: {} objects, {} bytes verified in {:.1}s; {} corrupt",
        report.objects,
        report.bytes,
        started.elapsed().as_secs_f64(),
        report.corrupt_objects
    );
    let mut repaired_all = true;
    if args.repair {
        repaired_all = run_repair(&store, &report.damaged_tables)?;
    } else if report.legacy_blobs > 0 {
        println!(
            "scrub: {} blobs have no block checksums (written by an older version): `strata scrub --repair` adds them",
            report.legacy_blobs
        );
    }
    // Non-zero while anything was found corrupt (a rewritten table included: scrub again to
    // see a clean run) or could not be repaired.
    Ok(if report.corrupt_objects == 0 && repaired_all {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::FAILURE
    })
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
fn progress_bar(what: &'static str) -> impl FnMut(strata::backup::Progress) {
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template(&format!(
            "{what} [{{bar:40}}] {{pos}}/{{len}} blobs, {{msg}} ({{eta}})"
        ))
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    move |p| match p {
        strata::backup::Progress::Metadata => bar.set_message("metadata"),
        strata::backup::Progress::Blobs { done, total, bytes } => {
            bar.set_length(total);
            bar.set_position(done);
            bar.set_message(format!("{} MiB", bytes / (1024 * 1024)));
        }
        strata::backup::Progress::Done { .. } | strata::backup::Progress::Error { .. } => bar.finish_and_clear(),
    }
}

fn backup(args: BackupArgs) -> anyhow::Result<std::process::ExitCode> {
    let mut bar = progress_bar("backup");
    if let Some(data_dir) = args.data_dir {
        let store = open_offline(DataArgs {
            data: Some(data_dir),
            config: args.config,
        })?;
        let summary = strata::backup::Backup::start(&store, &args.to)?.run(&mut bar)?;
        bar(strata::backup::Progress::Done {
            summary: summary.to_string(),
        });
        println!("{summary}");
        return Ok(std::process::ExitCode::SUCCESS);
    }
    let cfg = load_config(args.config.as_deref(), None)?;
    let scheme = if cfg.tls.files().is_some() { "https" } else { "http" };
    let client = strata::admin_client::AdminClient {
        endpoint: args.endpoint.unwrap_or_else(|| format!("{scheme}://{}", cfg.listen)),
        root: root_for_client(&cfg)?,
        region: cfg.region.clone(),
        ca_bundle: args.ca_bundle.or_else(|| cfg.tls.cert.clone()),
    };
    let path = format!(
        "/_strata/admin/backup?to={}",
        urlencoding::encode(&args.to.to_string_lossy())
    );
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let mut outcome: Option<Result<String, String>> = None;
    let (status, body) = runtime.block_on(client.call_lines("POST", &path, |line| {
        match serde_json::from_str::<strata::backup::Progress>(line) {
            Ok(p) => {
                match &p {
                    strata::backup::Progress::Done { summary } => outcome = Some(Ok(summary.clone())),
                    strata::backup::Progress::Error { message } => outcome = Some(Err(message.clone())),
                    _ => {}
                }
                bar(p);
            }
            Err(_) => outcome = Some(Err(format!("unexpected line from the server: {line}"))),
        }
    }))?;
    if !(200..300).contains(&status) {
        anyhow::bail!("server answered {status}: {body}");
    }
    match outcome {
        Some(Ok(summary)) => {
            println!("{summary}");
            Ok(std::process::ExitCode::SUCCESS)
        }
        Some(Err(message)) => anyhow::bail!("backup failed: {message}"),
        None => anyhow::bail!("the server ended the backup stream without a result"),
    }
}

fn restore(args: RestoreArgs) -> anyhow::Result<std::process::ExitCode> {
    let mut bar = progress_bar("restore");
    let cfg = load_config(args.config.as_deref(), Some(args.data_dir.clone()))?;
    let summary = strata::backup::restore(&args.from, &args.data_dir, &cfg.store_options(), &mut bar)?;
    bar(strata::backup::Progress::Done {
        summary: summary.to_string(),
    });
    println!("{summary}");
    if summary.encrypted > 0 {
        eprintln!(
            "warning: {} encrypted records: put the master key file (the server's <data_dir>.master-key, \
             or encryption.master_key_file) back beside the restored data dir before serving, or they \
             cannot be read",
            summary.encrypted
        );
    }
    Ok(std::process::ExitCode::SUCCESS)
}

/// `strata lifecycle run`: one run through the admin API, with a spinner while it works.
fn lifecycle(cmd: LifecycleCommand) -> anyhow::Result<std::process::ExitCode> {
    let LifecycleCommand::Run { bucket, now, target } = cmd;
    let cfg = load_config(target.data.config.as_deref(), target.data.data.clone())?;
    let endpoint = target.endpoint.unwrap_or_else(|| {
        let scheme = if cfg.tls.files().is_some() { "https" } else { "http" };
        format!("{scheme}://{}", cfg.listen)
    });
    let client = strata::admin_client::AdminClient {
        endpoint,
        root: root_for_client(&cfg)?,
        region: cfg.region.clone(),
        ca_bundle: target.ca_bundle.or_else(|| cfg.tls.cert.clone()),
    };
    let mut query = Vec::new();
    if let Some(b) = &bucket {
        query.push(format!("bucket={}", urlencoding::encode(b)));
    }
    if let Some(n) = &now {
        query.push(format!("now={}", urlencoding::encode(n)));
    }
    let path = if query.is_empty() {
        "/_strata/admin/lifecycle/run".to_string()
    } else {
        format!("/_strata/admin/lifecycle/run?{}", query.join("&"))
    };
    let spinner = indicatif::ProgressBar::new_spinner();
    spinner.set_message("lifecycle run in progress");
    spinner.enable_steady_tick(std::time::Duration::from_millis(120));
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let result = runtime.block_on(client.call("POST", &path));
    spinner.finish_and_clear();
    let (status, body) = result?;
    if !(200..300).contains(&status) {
        anyhow::bail!("server answered {status}: {body}");
    }
    let report: strata::lifecycle::RunReport = serde_json::from_str(&body)?;
    println!("{}", report.summary());
    Ok(std::process::ExitCode::SUCCESS)
}
