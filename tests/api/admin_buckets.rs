//! `strata bucket list|create|delete|usage` driven as a CLI against a running server, with
//! the results checked through aws-sdk-s3: ownership, refusals (taken name, invalid name,
//! unknown owner, non-empty bucket), usage figures equal to what the SDK stored, and a
//! forced delete of a versioned bucket with an incomplete upload that frees every blob.

use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::fixtures::*;

/// Runs `strata ARGS --endpoint E` expecting failure; returns stderr.
fn strata_fails(args: &[&str]) -> String {
    let out = strata_command()
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run strata");
    assert!(
        !out.status.success(),
        "`strata {}` succeeded:\n{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn unique_name(tag: &str) -> String {
    unique_bucket(tag)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_list_usage_and_refusals() {
    let server = TestServer::start();
    let endpoint = server.endpoint();
    let alice = server.create_key("alice");
    let name = unique_name("cli");
    let out = run_strata(&[
        "bucket",
        "create",
        &name,
        "--owner",
        &alice.access_key,
        "--endpoint",
        &endpoint,
    ]);
    assert!(out.contains(&format!("created bucket {name}")), "{out}");

    // Alice owns it: it is in her ListBuckets and she can write to it.
    let ac = server.client_with(&alice.access_key, &alice.secret_key);
    let listed = ok(ac.list_buckets().send().await, "alice ListBuckets");
    assert_eq!(
        listed.buckets().iter().filter_map(|b| b.name()).collect::<Vec<_>>(),
        vec![name.as_str()]
    );
    let a = random_bytes(40_000, 1);
    let b = random_bytes(1_234, 2);
    put(&ac, &name, "a", a.clone()).await;
    put(&ac, &name, "dir/b", b.clone()).await;

    // A root-owned bucket by default.
    let root_owned = unique_name("cliroot");
    run_strata(&["bucket", "create", &root_owned, "--endpoint", &endpoint]);
    ok(
        server.client().head_bucket().bucket(&root_owned).send().await,
        "HeadBucket",
    );
    expect_status(ac.head_bucket().bucket(&root_owned).send().await, 403);

    // Refusals.
    let err = strata_fails(&["bucket", "create", &name, "--endpoint", &endpoint]);
    assert!(err.contains("409 BucketAlreadyExists"), "{err}");
    let err = strata_fails(&["bucket", "create", "Bad_Name", "--endpoint", &endpoint]);
    assert!(err.contains("400 InvalidBucketName"), "{err}");
    let err = strata_fails(&[
        "bucket",
        "create",
        &unique_name("noowner"),
        "--owner",
        "AKIDOESNOTEXIST00000",
        "--endpoint",
        &endpoint,
    ]);
    assert!(err.contains("InvalidArgument"), "{err}");
    let err = strata_fails(&["bucket", "delete", &name, "--endpoint", &endpoint]);
    assert!(err.contains("409 BucketNotEmpty"), "{err}");
    ok(ac.head_bucket().bucket(&name).send().await, "still there");
    let err = strata_fails(&["bucket", "usage", "no-such-bucket-xyz", "--endpoint", &endpoint]);
    assert!(err.contains("404 NoSuchBucket"), "{err}");

    // Usage equals what the SDK stored.
    let usage = run_strata(&["bucket", "usage", &name, "--endpoint", &endpoint]);
    let total = a.len() + b.len();
    assert!(usage.contains("  objects: 2\n"), "{usage}");
    assert!(usage.contains(&format!("({total} bytes)")), "{usage}");
    assert!(usage.contains("  incomplete uploads: 0\n"), "{usage}");

    // The list shows both buckets, owners and sizes.
    let list = run_strata(&["bucket", "list", "--endpoint", &endpoint]);
    let row = list
        .lines()
        .find(|l| l.starts_with(&format!("{name} ")))
        .unwrap_or_else(|| panic!("{name} not listed:\n{list}"));
    let cols: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(cols[1], alice.access_key, "{row}");
    assert_eq!(cols[3], "Unversioned", "{row}");
    assert_eq!(cols[4], "2", "{row}");
    assert_eq!(cols.last().copied(), Some(total.to_string().as_str()), "{row}");
    assert!(
        list.lines().any(|l| {
            let c: Vec<&str> = l.split_whitespace().collect();
            c.first() == Some(&root_owned.as_str()) && c.get(1) == Some(&ROOT_ACCESS_KEY)
        }),
        "{root_owned} owned by root not listed:\n{list}"
    );

    // An empty bucket is deleted without --force.
    let out = run_strata(&["bucket", "delete", &root_owned, "--endpoint", &endpoint]);
    assert!(
        out.contains(&format!("deleted bucket {root_owned}: 0 versions, 0 uploads, 0 bytes")),
        "{out}"
    );
    expect_status(server.client().head_bucket().bucket(&root_owned).send().await, 404);

    // Only the root key may use it.
    let out = strata_command()
        .args(["bucket", "list", "--endpoint", &endpoint])
        .env("STRATA_ROOT_ACCESS_KEY", &alice.access_key)
        .env("STRATA_ROOT_SECRET_KEY", &alice.secret_key)
        .output()
        .expect("run strata");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("AccessDenied"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn force_delete_empties_a_versioned_bucket_and_frees_its_blobs() {
    let server = TestServer::start_with(ServerOptions {
        config_toml: Some("[limits]\ndeleted_blob_grace_secs = 1\nbucket_delete_batch = 3\n".into()),
        ..Default::default()
    });
    let endpoint = server.endpoint();
    let client = server.client();
    // A bucket that must survive, with one blob of its own.
    let keep = new_bucket(&client, "keep").await;
    put(&client, &keep, "k", random_bytes(30_000, 9)).await;
    let blobs_kept = blob_files(server.data_dir()).len();
    assert_eq!(blobs_kept, 1);

    let doomed = new_bucket(&client, "doomed").await;
    enable_versioning(&client, &doomed).await;
    let mut bytes = 0u64;
    let mut versions = 0u64;
    for (i, key) in ["x", "x", "x", "y", "z"].iter().enumerate() {
        let body = random_bytes(20_000 + i * 1000, i as u64);
        bytes += body.len() as u64;
        versions += 1;
        put(&client, &doomed, key, body).await;
    }
    put(&client, &doomed, "small", b"tiny".to_vec()).await; // inline, no blob
    bytes += 4;
    versions += 1;
    ok(
        client.delete_object().bucket(&doomed).key("y").send().await,
        "delete marker",
    );
    versions += 1;
    let upload = ok(
        client.create_multipart_upload().bucket(&doomed).key("mp").send().await,
        "CreateMultipartUpload",
    );
    let part = random_bytes(5 * MIB, 7);
    ok(
        client
            .upload_part()
            .bucket(&doomed)
            .key("mp")
            .upload_id(upload.upload_id().unwrap_or_default())
            .part_number(1)
            .body(part.clone().into())
            .send()
            .await,
        "UploadPart",
    );
    bytes += part.len() as u64;
    assert_eq!(
        blob_files(server.data_dir()).len(),
        blobs_kept + 6,
        "5 versions + 1 part"
    );

    let usage = run_strata(&["bucket", "usage", &doomed, "--endpoint", &endpoint]);
    assert!(usage.contains("  noncurrent versions: 3\n"), "{usage}");
    assert!(usage.contains("  delete markers: 1\n"), "{usage}");
    assert!(usage.contains("  incomplete uploads: 1\n"), "{usage}");
    assert!(
        usage.contains(&format!("  incomplete upload bytes: 5.0 MiB ({} bytes)", part.len())),
        "{usage}"
    );

    let err = strata_fails(&["bucket", "delete", &doomed, "--endpoint", &endpoint]);
    assert!(err.contains("BucketNotEmpty"), "{err}");
    let out = run_strata(&["bucket", "delete", &doomed, "--force", "--endpoint", &endpoint]);
    assert!(
        out.contains(&format!(
            "deleted bucket {doomed}: {versions} versions, 1 uploads, {bytes} bytes"
        )),
        "{out}"
    );
    expect_status(client.head_bucket().bucket(&doomed).send().await, 404);
    let listed = ok(client.list_buckets().send().await, "ListBuckets");
    assert_eq!(
        listed.buckets().iter().filter_map(|b| b.name()).collect::<Vec<_>>(),
        vec![keep.as_str()]
    );
    // The name is free again, and a new bucket under it is empty.
    ok(client.create_bucket().bucket(&doomed).send().await, "re-create");
    let versions_after = ok(
        client.list_object_versions().bucket(&doomed).send().await,
        "ListObjectVersions",
    );
    assert!(versions_after.versions().is_empty() && versions_after.delete_markers().is_empty());
    let uploads_after = ok(
        client.list_multipart_uploads().bucket(&doomed).send().await,
        "ListMultipartUploads",
    );
    assert!(uploads_after.uploads().is_empty());

    // The blobs go after the grace period; the other bucket's stays.
    let deadline = Instant::now() + Duration::from_secs(30);
    while blob_files(server.data_dir()).len() > blobs_kept && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(blob_files(server.data_dir()).len(), blobs_kept);
    assert_eq!(
        get_bytes(&client, &keep, "k").await,
        random_bytes(30_000, 9),
        "the other bucket is intact"
    );
}
