//! `strata backup` (online through the admin API, or offline on a stopped data dir) and
//! `strata restore` (into an empty data dir).

use super::*;

pub(super) fn backup(args: BackupArgs) -> anyhow::Result<std::process::ExitCode> {
    let mut bar = progress_bar("backup");
    if let Some(data_dir) = args.data_dir {
        let store = super::offline::open_offline(DataArgs {
            data: Some(data_dir),
            config: args.config,
        })?;
        let summary = crate::backup::Backup::start(&store, &args.to)?.run(&mut bar)?;
        bar(crate::backup::Progress::Done {
            summary: summary.to_string(),
        });
        println!("{summary}");
        return Ok(std::process::ExitCode::SUCCESS);
    }
    let cfg = load_config(args.config.as_deref(), None)?;
    let scheme = if cfg.tls.files().is_some() { "https" } else { "http" };
    let client = crate::cli::client::AdminClient {
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
        match serde_json::from_str::<crate::backup::Progress>(line) {
            Ok(p) => {
                match &p {
                    crate::backup::Progress::Done { summary } => outcome = Some(Ok(summary.clone())),
                    crate::backup::Progress::Error { message } => outcome = Some(Err(message.clone())),
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

pub(super) fn restore(args: RestoreArgs) -> anyhow::Result<std::process::ExitCode> {
    let mut bar = progress_bar("restore");
    let cfg = load_config(args.config.as_deref(), Some(args.data_dir.clone()))?;
    let summary = crate::backup::restore(&args.from, &args.data_dir, &cfg.store_options(), &mut bar)?;
    bar(crate::backup::Progress::Done {
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
