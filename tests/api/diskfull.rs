//! A full volume: on a 64 MiB tmpfs, PUTs eventually fail with a clean S3 error (not a dropped
//! connection or a crash), everything stored before still reads back byte for byte, and once
//! objects are deleted (and their grace period passes) writes succeed again. Needs root to
//! mount the tmpfs; without it the test says why and returns.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::fixtures::*;

/// Unmounts the tmpfs (and removes its mount point) when dropped.
struct Mount {
    dir: PathBuf,
}

impl Mount {
    fn tmpfs(size: &str) -> Result<Mount, String> {
        let dir = std::env::temp_dir().join(format!(
            "strata-diskfull-{}-{:08x}",
            std::process::id(),
            rand::random::<u32>()
        ));
        std::fs::create_dir_all(&dir).map_err(|e| format!("create mount point: {e}"))?;
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&dir)
            .output();
        match out {
            Ok(o) if o.status.success() => Ok(Mount { dir }),
            Ok(o) => {
                let _ = std::fs::remove_dir(&dir);
                Err(format!(
                    "`mount -t tmpfs` failed ({}): {}",
                    o.status,
                    String::from_utf8_lossy(&o.stderr).trim()
                ))
            }
            Err(e) => {
                let _ = std::fs::remove_dir(&dir);
                Err(format!("cannot run mount: {e}"))
            }
        }
    }

    fn path(&self) -> &Path {
        &self.dir
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.dir).status();
        let _ = std::fs::remove_dir(&self.dir);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_volume_fails_cleanly_and_recovers() {
    let mount = match Mount::tmpfs("64m") {
        Ok(m) => m,
        Err(why) => {
            eprintln!("SKIPPED full_volume_fails_cleanly_and_recovers: needs root to mount a tmpfs: {why}");
            return;
        }
    };
    let data = tempfile::Builder::new()
        .prefix("data-")
        .tempdir_in(mount.path())
        .expect("data dir on the tmpfs");
    let (server, client, bucket) = TestServer::start_in(
        data,
        ServerOptions {
            config_toml: Some("[limits]\ndeleted_blob_grace_secs = 1\n".into()),
            ..Default::default()
        },
    )
    .and_bucket("full")
    .await;

    // Fill the volume with 4 MiB objects until a PUT fails.
    let mut stored: Vec<(String, u64)> = Vec::new();
    let mut failure = None;
    for i in 0..40u64 {
        let key = format!("obj-{i:02}");
        let body = random_bytes(4 * MIB, 500 + i);
        match client
            .put_object()
            .bucket(&bucket)
            .key(&key)
            .body(body.into())
            .send()
            .await
        {
            Ok(_) => stored.push((key, 500 + i)),
            Err(e) => {
                failure = Some((key, err_info(&e), describe(&e)));
                break;
            }
        }
    }
    let (failed_key, info, text) = failure.expect("40 × 4 MiB PUTs all succeeded on a 64 MiB volume");
    eprintln!(
        "volume full after {} objects: {failed_key} failed with {text}",
        stored.len()
    );
    assert!(!stored.is_empty(), "not even one 4 MiB object fit on 64 MiB: {text}");
    assert!(
        matches!(
            (info.status, info.code.as_deref()),
            (507, Some("InsufficientStorage")) | (503, Some("SlowDown")) | (500, Some("InternalError"))
        ),
        "a full volume must give a clean S3 error (507 InsufficientStorage, 503 SlowDown or 500 \
         InternalError with an XML body), got {text}"
    );
    assert_eq!(server.health_status().await, 200, "health while the volume is full");

    // The failed PUT left nothing visible.
    expect_status(client.head_object().bucket(&bucket).key(&failed_key).send().await, 404);
    // Everything acknowledged before reads back byte for byte.
    for (key, seed) in &stored {
        let got = get_bytes(&client, &bucket, key).await;
        assert!(
            got == random_bytes(4 * MIB, *seed),
            "{key} differs after the volume filled up"
        );
    }
    let mut listed = list_all_keys(&client, &bucket).await;
    listed.sort();
    let mut want: Vec<String> = stored.iter().map(|(k, _)| k.clone()).collect();
    want.sort();
    assert_eq!(listed, want, "listing on a full volume");

    // Free space: delete half (at least three), wait out the grace period, write again.
    let delete_count = (stored.len() / 2).max(3).min(stored.len());
    for (key, _) in stored.iter().take(delete_count) {
        ok(
            client.delete_object().bucket(&bucket).key(key).send().await,
            &format!("DELETE {key} on a full volume"),
        );
    }
    tokio::time::sleep(Duration::from_secs(4)).await;
    let again = random_bytes(4 * MIB, 999);
    put(&client, &bucket, "after-delete", again.clone()).await;
    assert!(
        get_bytes(&client, &bucket, "after-delete").await == again,
        "PUT after freeing space"
    );
    for (key, seed) in stored.iter().skip(delete_count) {
        let got = get_bytes(&client, &bucket, key).await;
        assert!(got == random_bytes(4 * MIB, *seed), "{key} differs after deletes");
    }
    assert_eq!(server.health_status().await, 200);
    drop(client);
    // The server (and its data dir on the tmpfs) go before the unmount.
    drop(server);
    drop(mount);
}
