//! Durability across restarts: acknowledged writes (small inline objects, multi-MiB objects,
//! multipart objects, overwrites, deletes, buckets, keys, uploads in progress) survive a
//! kill -9 and a graceful SIGTERM, with the same bytes, ETags and listings.

use std::collections::BTreeMap;

use aws_sdk_s3::Client;

use crate::fixtures::*;

/// What a bucket should contain: key → bytes.
type Expected = BTreeMap<String, Vec<u8>>;

async fn write_fixture(client: &Client, bucket: &str) -> (Expected, BTreeMap<String, String>) {
    let mut want = Expected::new();
    let mut etags = BTreeMap::new();

    // Many small objects (candidates for inline storage).
    for i in 0..50 {
        let key = format!("small/{i:03}");
        let body = format!("small object {i}").into_bytes();
        etags.insert(key.clone(), put(client, bucket, &key, body.clone()).await);
        want.insert(key, body);
    }
    // Tiny edge sizes.
    for (key, body) in [("empty", Vec::new()), ("one-byte", vec![7u8])] {
        etags.insert(key.to_string(), put(client, bucket, key, body.clone()).await);
        want.insert(key.to_string(), body);
    }
    // Multi-MiB single-part objects.
    for (i, size) in [3 * MIB, 4 * MIB + 123].into_iter().enumerate() {
        let key = format!("large/{i}");
        let body = random_bytes(size, 500 + i as u64);
        etags.insert(key.clone(), put(client, bucket, &key, body.clone()).await);
        want.insert(key, body);
    }
    // A multipart object.
    let parts = [random_bytes(5 * MIB, 600), random_bytes(2 * MIB, 601)];
    let id = crate::multipart::create_upload(client, bucket, "multi/part").await;
    let e1 = crate::multipart::upload_part(client, bucket, "multi/part", &id, 1, &parts[0]).await;
    let e2 = crate::multipart::upload_part(client, bucket, "multi/part", &id, 2, &parts[1]).await;
    let done = ok(
        client
            .complete_multipart_upload()
            .bucket(bucket)
            .key("multi/part")
            .upload_id(&id)
            .multipart_upload(crate::multipart::completed(&[(1, e1), (2, e2)]))
            .send()
            .await,
        "complete",
    );
    etags.insert("multi/part".into(), done.e_tag().unwrap().to_string());
    want.insert("multi/part".into(), parts.concat());

    // An overwrite (the second version must win) and a delete (must stay deleted).
    put(client, bucket, "overwritten", b"old".to_vec()).await;
    etags.insert(
        "overwritten".into(),
        put(client, bucket, "overwritten", b"new".to_vec()).await,
    );
    want.insert("overwritten".into(), b"new".to_vec());
    put(client, bucket, "deleted", b"gone".to_vec()).await;
    ok(
        client.delete_object().bucket(bucket).key("deleted").send().await,
        "DeleteObject",
    );
    // With metadata.
    ok(
        client
            .put_object()
            .bucket(bucket)
            .key("with-meta")
            .metadata("survives", "restart")
            .content_type("text/x-durable")
            .body(b"meta".to_vec().into())
            .send()
            .await,
        "PutObject with metadata",
    );
    etags.insert("with-meta".into(), etag_of(b"meta"));
    want.insert("with-meta".into(), b"meta".to_vec());
    (want, etags)
}

async fn verify_fixture(client: &Client, bucket: &str, want: &Expected, etags: &BTreeMap<String, String>) {
    // Listing: same keys, same ETags, same sizes.
    let listed = {
        let mut out = BTreeMap::new();
        let mut pages = client.list_objects_v2().bucket(bucket).into_paginator().send();
        while let Some(page) = pages.next().await {
            for o in ok(page, "list after restart").contents() {
                out.insert(
                    o.key().unwrap().to_string(),
                    (o.e_tag().unwrap_or_default().to_string(), o.size()),
                );
            }
        }
        out
    };
    assert_eq!(
        listed.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>(),
        "listing after restart"
    );
    for (key, body) in want {
        let (etag, size) = &listed[key];
        assert_eq!(etag, &etags[key], "listed ETag of {key} after restart");
        assert_eq!(*size, Some(body.len() as i64), "listed size of {key} after restart");
        let got = ok(
            client.get_object().bucket(bucket).key(key).send().await,
            &format!("GET {key} after restart"),
        );
        assert_eq!(got.e_tag(), Some(etags[key].as_str()), "ETag of {key} after restart");
        let bytes = got.body.collect().await.unwrap().into_bytes();
        assert!(bytes.as_ref() == body.as_slice(), "bytes of {key} differ after restart");
    }
    expect_error(
        client.get_object().bucket(bucket).key("deleted").send().await,
        404,
        "NoSuchKey",
    );
    let head = ok(
        client.head_object().bucket(bucket).key("with-meta").send().await,
        "HEAD with-meta",
    );
    assert_eq!(
        head.metadata().and_then(|m| m.get("survives")).map(String::as_str),
        Some("restart")
    );
    assert_eq!(head.content_type(), Some("text/x-durable"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_kill_9() {
    let mut server = TestServer::start();
    let key = server.create_key("durable-principal");
    let (bucket, empty_bucket, want, etags, pending) = {
        let client = server.client();
        let bucket = new_bucket(&client, "durable").await;
        let empty_bucket = new_bucket(&client, "durableempty").await;
        let (want, etags) = write_fixture(&client, &bucket).await;
        let pending = crate::multipart::create_upload(&client, &bucket, "in-progress").await;
        crate::multipart::upload_part(
            &client,
            &bucket,
            "in-progress",
            &pending,
            1,
            &random_bytes(5 * MIB, 700),
        )
        .await;
        (bucket, empty_bucket, want, etags, pending)
    };

    // Immediately after the last acknowledgement, with no grace period.
    server.restart();

    let client = server.client();
    assert_eq!(server.health_status().await, 200);
    let names: Vec<String> = ok(client.list_buckets().send().await, "ListBuckets after restart")
        .buckets()
        .iter()
        .filter_map(|b| b.name().map(str::to_string))
        .collect();
    assert!(
        names.contains(&bucket) && names.contains(&empty_bucket),
        "buckets after restart: {names:?}"
    );
    verify_fixture(&client, &bucket, &want, &etags).await;

    // The principal and the upload in progress survive too.
    let principal = server.client_with(&key.access_key, &key.secret_key);
    ok(
        principal.list_buckets().send().await,
        "key created before the crash still works",
    );
    let parts = ok(
        client
            .list_parts()
            .bucket(&bucket)
            .key("in-progress")
            .upload_id(&pending)
            .send()
            .await,
        "ListParts of an upload started before the crash",
    );
    assert_eq!(parts.parts().len(), 1);
    assert_eq!(parts.parts()[0].size(), Some(5 * MIB as i64));

    // The store is writable after recovery, and a second crash loses nothing either.
    put(&client, &bucket, "after-restart", b"post".to_vec()).await;
    server.restart();
    let client = server.client();
    assert_eq!(get_bytes(&client, &bucket, "after-restart").await, b"post");
    verify_fixture(
        &client,
        &bucket,
        &{
            let mut w = want.clone();
            w.insert("after-restart".into(), b"post".to_vec());
            w
        },
        &{
            let mut e = etags.clone();
            e.insert("after-restart".into(), etag_of(b"post"));
            e
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_and_restart() {
    let (mut server, client, bucket) = TestServer::with_bucket("graceful").await;
    let (want, etags) = write_fixture(&client, &bucket).await;
    drop(client);

    let status = server.terminate();
    assert!(status.success(), "strata serve exited with {status} on SIGTERM");
    server.start_again();

    let client = server.client();
    verify_fixture(&client, &bucket, &want, &etags).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writes_then_kill_lose_nothing_acknowledged() {
    let (mut server, client, bucket) = TestServer::with_bucket("groupcommit").await;
    // Many small concurrent writes exercise group commit; every acknowledged one must survive.
    let keys: Vec<String> = (0..300).map(|i| format!("gc/{i:04}")).collect();
    put_many(&client, &bucket, &keys).await;
    server.restart();
    let client = server.client();
    assert_eq!(list_all_keys(&client, &bucket).await, keys);
    for key in keys.iter().step_by(37) {
        assert_eq!(get_bytes(&client, &bucket, key).await, key.as_bytes());
    }
}
