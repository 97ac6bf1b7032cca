//! `strata serve` (config + overrides, the root key announced or read, the server run until a
//! signal) and `strata dev-cert` (a self-signed certificate for local HTTPS).

use super::*;

pub(super) fn serve(args: ServeArgs) -> anyhow::Result<std::process::ExitCode> {
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
        crate::http::tls::load_certified_key(cert, key, &crate::http::tls::provider())?;
    }
    let (root, source) = keys::resolve_root(configured_root(&cfg), &cfg.data_dir)?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        // Sweep blobs left by a crash before any request can create new ones.
        let data_dir = cfg.data_dir.clone();
        let opts = cfg.store_options();
        let (mut store, swept) = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
            let store = crate::store::Store::open(&data_dir, &opts)?;
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
            crate::store::scrub::spawn_background(
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
        crate::http::server::serve(cfg, store, root, shutdown).await
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

pub(super) fn dev_cert(args: DevCertArgs) -> anyhow::Result<std::process::ExitCode> {
    crate::http::tls::write_dev_cert(&args.cert, &args.key, &args.hosts)?;
    println!(
        "Wrote a self-signed certificate for {} to {} (valid {} days) and its key to {}",
        args.hosts.join(", "),
        args.cert.display(),
        crate::http::tls::DEV_CERT_DAYS,
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
