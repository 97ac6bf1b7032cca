//! Principals: `strata key create|list|delete` (through the admin endpoint and offline on the
//! data directory), per-owner isolation of buckets, root's view of everything, key deletion,
//! and secrets staying out of the server log.

use crate::fixtures::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_key_owns_only_its_buckets() {
    let (server, root, roots_bucket) = TestServer::with_bucket("rootown").await;
    put(&root, &roots_bucket, "root-secret.txt", b"root only".to_vec()).await;

    let key = server.create_key("alice");
    assert_ne!(key.access_key, ROOT_ACCESS_KEY);
    assert!(
        key.secret_key.len() >= 16,
        "secret key suspiciously short: {} chars",
        key.secret_key.len()
    );
    let alice = server.client_with(&key.access_key, &key.secret_key);

    // Alice starts with nothing and can make her own bucket.
    let listed = ok(alice.list_buckets().send().await, "alice ListBuckets");
    assert!(
        listed.buckets().is_empty(),
        "a new key sees buckets: {:?}",
        listed.buckets()
    );
    let hers = new_bucket(&alice, "alice").await;
    put(&alice, &hers, "mine.txt", b"alice's".to_vec()).await;
    assert_eq!(get_bytes(&alice, &hers, "mine.txt").await, b"alice's");
    let listed = ok(alice.list_buckets().send().await, "alice ListBuckets");
    let names: Vec<&str> = listed.buckets().iter().filter_map(|b| b.name()).collect();
    assert_eq!(names, vec![hers.as_str()], "alice must see exactly her own bucket");

    // Root's bucket is off limits, whatever the operation.
    expect_error(
        alice
            .get_object()
            .bucket(&roots_bucket)
            .key("root-secret.txt")
            .send()
            .await,
        403,
        "AccessDenied",
    );
    expect_status(
        alice
            .head_object()
            .bucket(&roots_bucket)
            .key("root-secret.txt")
            .send()
            .await,
        403,
    );
    expect_status(alice.head_bucket().bucket(&roots_bucket).send().await, 403);
    expect_error(
        alice.list_objects_v2().bucket(&roots_bucket).send().await,
        403,
        "AccessDenied",
    );
    expect_error(
        alice.list_objects().bucket(&roots_bucket).send().await,
        403,
        "AccessDenied",
    );
    expect_error(
        alice
            .put_object()
            .bucket(&roots_bucket)
            .key("planted")
            .body(b"x".to_vec().into())
            .send()
            .await,
        403,
        "AccessDenied",
    );
    expect_error(
        alice
            .delete_object()
            .bucket(&roots_bucket)
            .key("root-secret.txt")
            .send()
            .await,
        403,
        "AccessDenied",
    );
    expect_error(
        alice.delete_bucket().bucket(&roots_bucket).send().await,
        403,
        "AccessDenied",
    );
    expect_error(
        alice.get_bucket_location().bucket(&roots_bucket).send().await,
        403,
        "AccessDenied",
    );
    expect_error(
        alice
            .create_multipart_upload()
            .bucket(&roots_bucket)
            .key("mp")
            .send()
            .await,
        403,
        "AccessDenied",
    );
    expect_error(
        alice.list_multipart_uploads().bucket(&roots_bucket).send().await,
        403,
        "AccessDenied",
    );
    // Nor can she copy out of it into her own bucket.
    expect_error(
        alice
            .copy_object()
            .bucket(&hers)
            .key("stolen")
            .copy_source(format!("{roots_bucket}/root-secret.txt"))
            .send()
            .await,
        403,
        "AccessDenied",
    );
    expect_error(
        alice.get_object().bucket(&hers).key("stolen").send().await,
        404,
        "NoSuchKey",
    );
    // Nothing of root's changed.
    assert_eq!(
        list_all_keys(&root, &roots_bucket).await,
        vec!["root-secret.txt".to_string()]
    );
    ok(
        root.head_bucket().bucket(&roots_bucket).send().await,
        "root's bucket still there",
    );

    // Root sees everything, including alice's bucket and its contents.
    let listed = ok(root.list_buckets().send().await, "root ListBuckets");
    let names: Vec<&str> = listed.buckets().iter().filter_map(|b| b.name()).collect();
    assert!(
        names.contains(&hers.as_str()) && names.contains(&roots_bucket.as_str()),
        "root sees {names:?}"
    );
    assert_eq!(get_bytes(&root, &hers, "mine.txt").await, b"alice's");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_keys_are_isolated_from_each_other() {
    let server = TestServer::start();
    let a = server.create_key("tenant-a");
    let b = server.create_key("tenant-b");
    assert_ne!(a.access_key, b.access_key);
    assert_ne!(a.secret_key, b.secret_key);
    let ca = server.client_with(&a.access_key, &a.secret_key);
    let cb = server.client_with(&b.access_key, &b.secret_key);
    let ba = new_bucket(&ca, "tenanta").await;
    let bb = new_bucket(&cb, "tenantb").await;
    put(&ca, &ba, "a.txt", b"a".to_vec()).await;
    put(&cb, &bb, "b.txt", b"b".to_vec()).await;

    expect_error(
        ca.get_object().bucket(&bb).key("b.txt").send().await,
        403,
        "AccessDenied",
    );
    expect_error(
        cb.get_object().bucket(&ba).key("a.txt").send().await,
        403,
        "AccessDenied",
    );
    expect_error(cb.list_objects_v2().bucket(&ba).send().await, 403, "AccessDenied");
    let la = ok(ca.list_buckets().send().await, "a ListBuckets");
    assert_eq!(
        la.buckets().iter().filter_map(|x| x.name()).collect::<Vec<_>>(),
        vec![ba.as_str()]
    );
    let lb = ok(cb.list_buckets().send().await, "b ListBuckets");
    assert_eq!(
        lb.buckets().iter().filter_map(|x| x.name()).collect::<Vec<_>>(),
        vec![bb.as_str()]
    );
    // A key's own secret does not work with another key's id.
    let mixed = server.client_with(&a.access_key, &b.secret_key);
    expect_error(mixed.list_buckets().send().await, 403, "SignatureDoesNotMatch");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleted_key_is_invalid() {
    let server = TestServer::start();
    let key = server.create_key("short-lived");
    let client = server.client_with(&key.access_key, &key.secret_key);
    let bucket = new_bucket(&client, "shortlived").await;

    let endpoint = server.endpoint();
    let listing = run_strata(&["key", "list", "--endpoint", &endpoint]);
    assert!(
        listing.contains(&key.access_key),
        "`strata key list` lacks {}:\n{listing}",
        key.access_key
    );
    assert!(
        !listing.contains(&key.secret_key),
        "`strata key list` prints a secret key:\n{listing}"
    );

    run_strata(&["key", "delete", &key.access_key, "--endpoint", &endpoint]);
    let listing = run_strata(&["key", "list", "--endpoint", &endpoint]);
    assert!(
        !listing.contains(&key.access_key),
        "deleted key still listed:\n{listing}"
    );
    expect_error(client.list_buckets().send().await, 403, "InvalidAccessKeyId");
    expect_error(
        client
            .put_object()
            .bucket(&bucket)
            .key("k")
            .body(b"x".to_vec().into())
            .send()
            .await,
        403,
        "InvalidAccessKeyId",
    );
    // Its bucket is still there for root.
    ok(
        server.client().head_bucket().bucket(&bucket).send().await,
        "root HeadBucket of a deleted key's bucket",
    );

    // Deleting an unknown key fails.
    let out = strata_command()
        .args(["key", "delete", "AKIDONTEXIST00000000", "--endpoint", &endpoint])
        .output()
        .expect("run strata key delete");
    assert!(!out.status.success(), "deleting an unknown key succeeded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_root_cannot_administer_keys() {
    let server = TestServer::start();
    let key = server.create_key("wannabe-admin");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_strata"))
        .args(["key", "create", "escalated", "--endpoint", &server.endpoint()])
        .env("STRATA_ROOT_ACCESS_KEY", &key.access_key)
        .env("STRATA_ROOT_SECRET_KEY", &key.secret_key)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run strata key create");
    assert!(
        !out.status.success(),
        "a non-root key created a key through the admin endpoint:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    // And with no credentials at all the admin endpoint refuses too.
    let r = raw_request(
        "GET",
        &format!("{}/_strata/admin/keys", server.endpoint()),
        &[],
        Vec::new(),
    )
    .await;
    assert!(
        matches!(r.status, 401 | 403 | 404 | 405),
        "anonymous admin request: {} {}",
        r.status,
        r.text()
    );
    assert!(
        !r.text().contains(&key.access_key),
        "anonymous admin request listed keys"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_key_create_on_data_dir() {
    let data = tempfile::Builder::new().prefix("strata-data-").tempdir().unwrap();
    let dir = data.path().to_str().unwrap().to_string();
    let out = run_strata(&["key", "create", "offline", "--data", &dir]);
    let key = KeyPair::parse(&out);
    let listing = run_strata(&["key", "list", "--data", &dir]);
    assert!(
        listing.contains(&key.access_key),
        "offline `key list` lacks the key:\n{listing}"
    );

    let server = TestServer::start_in(data, ServerOptions::default());
    let client = server.client_with(&key.access_key, &key.secret_key);
    let bucket = new_bucket(&client, "offline").await;
    put(&client, &bucket, "k", b"made offline".to_vec()).await;
    assert_eq!(get_bytes(&client, &bucket, "k").await, b"made offline");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_are_not_logged() {
    let mut server = TestServer::start_with(ServerOptions {
        rust_log: "debug".into(),
        capture_stderr: true,
        ..Default::default()
    });
    let key = server.create_key("logged");
    let client = server.client_with(&key.access_key, &key.secret_key);
    let bucket = new_bucket(&client, "logcheck").await;
    put(&client, &bucket, "k", b"v".to_vec()).await;
    // Failures are logged too; they must not carry secrets either.
    let wrong = server.client_with(&key.access_key, "wrong-secret-0000000000000000000000000000");
    let _ = wrong.list_buckets().send().await;
    let _ = server.client().list_buckets().send().await;
    run_strata(&["key", "list", "--endpoint", &server.endpoint()]);
    run_strata(&["key", "delete", &key.access_key, "--endpoint", &server.endpoint()]);
    server.assert_alive();
    // Stop it so everything it buffered reaches the file.
    server.kill();

    let log = server.stderr_log();
    assert!(
        !log.contains(&key.secret_key),
        "the new key's secret appears in the server log"
    );
    assert!(
        !log.contains(ROOT_SECRET_KEY),
        "the root secret appears in the server log"
    );
}
