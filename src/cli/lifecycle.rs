//! `strata lifecycle run`: one lifecycle run through the admin API.

use super::*;

/// `strata lifecycle run`: one run through the admin API, with a spinner while it works.
pub(super) fn lifecycle(cmd: LifecycleCommand) -> anyhow::Result<std::process::ExitCode> {
    let LifecycleCommand::Run { bucket, now, target } = cmd;
    let cfg = load_config(target.data.config.as_deref(), target.data.data.clone())?;
    let endpoint = target.endpoint.unwrap_or_else(|| {
        let scheme = if cfg.tls.files().is_some() { "https" } else { "http" };
        format!("{scheme}://{}", cfg.listen)
    });
    let client = crate::cli::client::AdminClient {
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
    let report: crate::lifecycle::RunReport = serde_json::from_str(&body)?;
    println!("{}", report.summary());
    Ok(std::process::ExitCode::SUCCESS)
}
