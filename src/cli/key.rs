//! `strata key create|list|delete`: through the admin API of a running server, or straight on
//! the metadata when the server is stopped (`--offline`).

use super::*;

enum KeyOp {
    Create(String),
    List,
    Delete(String),
}

pub(super) fn command(cmd: KeyCommand) -> anyhow::Result<std::process::ExitCode> {
    let (op, target) = match cmd {
        KeyCommand::RotateMaster { data } => return super::offline::rotate_master(data),
        KeyCommand::Create { name, target } => (KeyOp::Create(name), target),
        KeyCommand::List { target } => (KeyOp::List, target),
        KeyCommand::Delete { id, target } => (KeyOp::Delete(id), target),
    };
    let cfg = load_config(target.data.config.as_deref(), target.data.data.clone())?;
    let endpoint = match target.endpoint {
        Some(e) => Some(e),
        None => match crate::store::MetaStore::open(&cfg.data_dir, cfg.limits.metadata_cache_bytes) {
            Ok(meta) => return key_offline(&meta, op),
            // sled holds an exclusive lock: a server owns this data dir, so ask it.
            Err(e) => {
                tracing::debug!(error = %e, "data dir busy; using the admin API");
                let scheme = if cfg.tls.files().is_some() { "https" } else { "http" };
                Some(format!("{scheme}://{}", cfg.listen))
            }
        },
    };
    let client = crate::cli::client::AdminClient {
        endpoint: endpoint.unwrap_or_default(),
        root: root_for_client(&cfg)?,
        region: cfg.region.clone(),
        ca_bundle: target.ca_bundle.or_else(|| cfg.tls.cert.clone()),
    };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(key_online(&client, op))
}

fn key_offline(meta: &crate::store::MetaStore, op: KeyOp) -> anyhow::Result<std::process::ExitCode> {
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

async fn key_online(client: &crate::cli::client::AdminClient, op: KeyOp) -> anyhow::Result<std::process::ExitCode> {
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
