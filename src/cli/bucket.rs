//! `strata bucket list|create|delete|usage`: the CLI side of the bucket admin API
//! (`admin/buckets.rs`), always online through a running server. Formats tables and
//! human-readable sizes; a forced delete shows a spinner until the server reports.

use std::process::ExitCode;
use std::time::Duration;

use serde::Deserialize;

use super::client::AdminClient;
use super::{load_config, root_for_client, BucketCommand};

pub enum BucketOp {
    List,
    Create { name: String, owner: Option<String> },
    Delete { name: String, force: bool },
    Usage { name: Option<String> },
}

#[derive(Deserialize, Default)]
struct Usage {
    objects: u64,
    bytes: u64,
    noncurrent_objects: u64,
    noncurrent_bytes: u64,
    delete_markers: u64,
    uploads: u64,
    upload_bytes: u64,
}

#[derive(Deserialize)]
struct BucketInfo {
    name: String,
    owner: String,
    created: String,
    versioning: String,
    objects: u64,
    bytes: u64,
    #[serde(default)]
    usage: Usage,
}

#[derive(Deserialize)]
struct Deleted {
    bucket: String,
    versions: u64,
    uploads: u64,
    bytes: u64,
}

/// `1536` → `1.5 KiB`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

/// An S3-style XML error body as `Code: Message`, or the body as it is.
fn error_text(status: u16, body: &str) -> String {
    let element = |name: &str| {
        let open = format!("<{name}>");
        let start = body.find(&open)? + open.len();
        let end = body[start..].find(&format!("</{name}>"))? + start;
        Some(body[start..end].to_string())
    };
    match (element("Code"), element("Message")) {
        (Some(code), Some(msg)) => format!("server answered {status} {code}: {msg}"),
        _ => format!("server answered {status}: {}", body.trim()),
    }
}

async fn call(client: &AdminClient, method: &str, path: &str) -> anyhow::Result<String> {
    let (status, body) = client.call(method, path).await?;
    if !(200..300).contains(&status) {
        anyhow::bail!("{}", error_text(status, &body));
    }
    Ok(body)
}

/// Left-aligned columns, two spaces apart.
fn table(rows: &[Vec<String>]) -> String {
    let cols = rows.first().map_or(0, Vec::len);
    let widths: Vec<usize> = (0..cols)
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for r in rows {
        let line: Vec<String> = r.iter().zip(&widths).map(|(v, w)| format!("{v:<w$}")).collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}

fn print_usage(name: &str, u: &Usage) {
    println!("bucket: {name}");
    println!("  objects: {}", u.objects);
    println!("  bytes: {} ({} bytes)", human_bytes(u.bytes), u.bytes);
    println!("  noncurrent versions: {}", u.noncurrent_objects);
    println!(
        "  noncurrent bytes: {} ({} bytes)",
        human_bytes(u.noncurrent_bytes),
        u.noncurrent_bytes
    );
    println!("  delete markers: {}", u.delete_markers);
    println!("  incomplete uploads: {}", u.uploads);
    println!(
        "  incomplete upload bytes: {} ({} bytes)",
        human_bytes(u.upload_bytes),
        u.upload_bytes
    );
}

pub async fn run(client: &AdminClient, op: BucketOp) -> anyhow::Result<ExitCode> {
    match op {
        BucketOp::List => {
            let buckets: Vec<BucketInfo> = serde_json::from_str(&call(client, "GET", "/_strata/admin/buckets").await?)?;
            let mut rows = vec![["NAME", "OWNER", "CREATED", "VERSIONING", "OBJECTS", "SIZE", "BYTES"]
                .map(String::from)
                .to_vec()];
            for b in &buckets {
                rows.push(vec![
                    b.name.clone(),
                    b.owner.clone(),
                    b.created.clone(),
                    b.versioning.clone(),
                    b.objects.to_string(),
                    human_bytes(b.bytes),
                    b.bytes.to_string(),
                ]);
            }
            print!("{}", table(&rows));
        }
        BucketOp::Create { name, owner } => {
            let mut path = format!("/_strata/admin/buckets?name={}", urlencoding::encode(&name));
            if let Some(o) = &owner {
                path.push_str(&format!("&owner={}", urlencoding::encode(o)));
            }
            let b: BucketInfo = serde_json::from_str(&call(client, "POST", &path).await?)?;
            println!("created bucket {} (owner {})", b.name, b.owner);
        }
        BucketOp::Delete { name, force } => {
            let path = format!(
                "/_strata/admin/buckets/{}{}",
                urlencoding::encode(&name),
                if force { "?force=true" } else { "" }
            );
            // The server empties the bucket in one request; show that we are waiting.
            let spinner = indicatif::ProgressBar::new_spinner();
            spinner.set_message(format!("deleting bucket {name}…"));
            spinner.enable_steady_tick(Duration::from_millis(120));
            let result = call(client, "DELETE", &path).await;
            spinner.finish_and_clear();
            let d: Deleted = serde_json::from_str(&result?)?;
            println!(
                "deleted bucket {}: {} versions, {} uploads, {} bytes",
                d.bucket, d.versions, d.uploads, d.bytes
            );
        }
        BucketOp::Usage { name: Some(name) } => {
            let body = call(
                client,
                "GET",
                &format!("/_strata/admin/buckets/{}/usage", urlencoding::encode(&name)),
            )
            .await?;
            print_usage(&name, &serde_json::from_str(&body)?);
        }
        BucketOp::Usage { name: None } => {
            let buckets: Vec<BucketInfo> = serde_json::from_str(&call(client, "GET", "/_strata/admin/buckets").await?)?;
            for b in &buckets {
                print_usage(&b.name, &b.usage);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `strata bucket …`: resolves the server and the root key from the config, then runs the
/// operation through the admin API.
pub(super) fn command(cmd: BucketCommand) -> anyhow::Result<ExitCode> {
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
    let client = AdminClient {
        endpoint,
        root: root_for_client(&cfg)?,
        region: cfg.region.clone(),
        ca_bundle: target.ca_bundle.or_else(|| cfg.tls.cert.clone()),
    };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(run(&client, op))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_errors() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1023), "1023 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(5 * 1024 * 1024), "5.0 MiB");
        assert_eq!(
            error_text(
                409,
                "<Error><Code>BucketNotEmpty</Code><Message>not empty</Message></Error>"
            ),
            "server answered 409 BucketNotEmpty: not empty"
        );
        assert_eq!(error_text(500, "oops\n"), "server answered 500: oops");
        assert_eq!(
            table(&[vec!["A".into(), "BB".into()], vec!["ccc".into(), "d".into()]]),
            "A    BB\nccc  d\n"
        );
    }
}
