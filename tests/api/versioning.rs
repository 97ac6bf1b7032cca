//! Bucket versioning: Put/GetBucketVersioning, version ids on PUT / copy / multipart complete,
//! GET/HEAD/DELETE of a specific version, delete markers (404 + `x-amz-delete-marker`, 405 for
//! the marker's own id), restoring an old version by copying it, Suspended buckets and the
//! `null` version, ListObjectVersions order and pagination (key and version-id markers, prefix,
//! delimiter), BucketNotEmpty while noncurrent versions remain, malformed version ids, and the
//! bytes of deleted versions being freed while a restart keeps every remaining version.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use aws_sdk_s3::types::{BucketVersioningStatus, VersioningConfiguration};
use aws_sdk_s3::Client;

use crate::fixtures::*;
use crate::multipart::{completed, create_upload, upload_part};

async fn set_versioning(client: &Client, bucket: &str, status: BucketVersioningStatus) {
    ok(
        client
            .put_bucket_versioning()
            .bucket(bucket)
            .versioning_configuration(VersioningConfiguration::builder().status(status).build())
            .send()
            .await,
        "PutBucketVersioning",
    );
}

/// A fresh bucket with versioning Enabled.
async fn versioned_bucket(client: &Client, tag: &str) -> String {
    let bucket = new_bucket(client, tag).await;
    set_versioning(client, &bucket, BucketVersioningStatus::Enabled).await;
    bucket
}

/// PutObject that must report a version id; returns it.
async fn put_v(client: &Client, bucket: &str, key: &str, body: impl Into<Vec<u8>>) -> String {
    let out = ok(
        client
            .put_object()
            .bucket(bucket)
            .key(key)
            .body(body.into().into())
            .send()
            .await,
        &format!("put {key}"),
    );
    let v = out
        .version_id()
        .unwrap_or_else(|| panic!("PUT {key} in a versioned bucket returned no x-amz-version-id"))
        .to_string();
    assert!(
        !v.is_empty() && v != "null",
        "PUT in an Enabled bucket got version id {v:?}"
    );
    v
}

/// GetObject of one version; returns (reported version id, body).
async fn get_version(client: &Client, bucket: &str, key: &str, version: &str) -> (Option<String>, Vec<u8>) {
    let out = ok(
        client
            .get_object()
            .bucket(bucket)
            .key(key)
            .version_id(version)
            .send()
            .await,
        &format!("GET {key}?versionId={version}"),
    );
    let v = out.version_id().map(str::to_string);
    let body = out.body.collect().await.expect("read body").into_bytes().to_vec();
    (v, body)
}

/// One row of ListObjectVersions.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Row {
    key: String,
    version: String,
    latest: bool,
    marker: bool,
}

/// One unpaginated ListObjectVersions (`prefix` may be empty): versions and delete markers in
/// the order the server listed them (each array in its own order), and common prefixes.
async fn list_versions(client: &Client, bucket: &str, prefix: &str) -> (Vec<Row>, Vec<Row>, Vec<String>) {
    let out = ok(
        client.list_object_versions().bucket(bucket).prefix(prefix).send().await,
        "ListObjectVersions",
    );
    assert_eq!(out.is_truncated(), Some(false), "a short listing is not truncated");
    let versions = out
        .versions()
        .iter()
        .map(|v| Row {
            key: v.key().unwrap_or_default().to_string(),
            version: v.version_id().unwrap_or_default().to_string(),
            latest: v.is_latest().unwrap_or(false),
            marker: false,
        })
        .collect();
    let markers = out
        .delete_markers()
        .iter()
        .map(|m| Row {
            key: m.key().unwrap_or_default().to_string(),
            version: m.version_id().unwrap_or_default().to_string(),
            latest: m.is_latest().unwrap_or(false),
            marker: true,
        })
        .collect();
    let prefixes = out
        .common_prefixes()
        .iter()
        .filter_map(|p| p.prefix().map(str::to_string))
        .collect();
    (versions, markers, prefixes)
}

fn row(key: &str, version: &str, latest: bool, marker: bool) -> Row {
    Row {
        key: key.to_string(),
        version: version.to_string(),
        latest,
        marker,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn versioning_configuration_round_trip() {
    let (_server, client, bucket) = TestServer::with_bucket("vercfg").await;

    let fresh = ok(
        client.get_bucket_versioning().bucket(&bucket).send().await,
        "GetBucketVersioning on a fresh bucket",
    );
    assert_eq!(
        fresh.status(),
        None,
        "a bucket that never had versioning reports no status"
    );

    set_versioning(&client, &bucket, BucketVersioningStatus::Enabled).await;
    let got = ok(client.get_bucket_versioning().bucket(&bucket).send().await, "get");
    assert_eq!(got.status(), Some(&BucketVersioningStatus::Enabled));

    set_versioning(&client, &bucket, BucketVersioningStatus::Suspended).await;
    let got = ok(client.get_bucket_versioning().bucket(&bucket).send().await, "get");
    assert_eq!(got.status(), Some(&BucketVersioningStatus::Suspended));

    set_versioning(&client, &bucket, BucketVersioningStatus::Enabled).await;
    let got = ok(client.get_bucket_versioning().bucket(&bucket).send().await, "get");
    assert_eq!(got.status(), Some(&BucketVersioningStatus::Enabled));

    // Versioning of a bucket that does not exist.
    expect_error(
        client
            .get_bucket_versioning()
            .bucket("no-such-bucket-vercfg")
            .send()
            .await,
        404,
        "NoSuchBucket",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enabled_bucket_keeps_every_version() {
    let (_server, client) = TestServer::with_client();
    let bucket = versioned_bucket(&client, "verkeep").await;

    let bodies: Vec<Vec<u8>> = vec![b"first".to_vec(), random_bytes(40_000, 2), b"third!".to_vec()];
    let mut ids = Vec::new();
    for body in &bodies {
        ids.push(put_v(&client, &bucket, "doc.txt", body.clone()).await);
    }
    let distinct: BTreeSet<&String> = ids.iter().collect();
    assert_eq!(
        distinct.len(),
        3,
        "three PUTs must give three distinct version ids: {ids:?}"
    );

    for (id, body) in ids.iter().zip(&bodies) {
        let (reported, got) = get_version(&client, &bucket, "doc.txt", id).await;
        assert_eq!(
            reported.as_deref(),
            Some(id.as_str()),
            "GET reports the version asked for"
        );
        assert!(got == *body, "version {id} has the wrong bytes");

        let head = ok(
            client
                .head_object()
                .bucket(&bucket)
                .key("doc.txt")
                .version_id(id)
                .send()
                .await,
            "HEAD with versionId",
        );
        assert_eq!(head.version_id(), Some(id.as_str()));
        assert_eq!(head.content_length(), Some(body.len() as i64));
        assert_eq!(head.e_tag(), Some(etag_of(body).as_str()));
    }

    // Without a version id: the latest.
    let latest = ok(
        client.get_object().bucket(&bucket).key("doc.txt").send().await,
        "GET latest",
    );
    assert_eq!(latest.version_id(), Some(ids[2].as_str()));
    let got = latest.body.collect().await.unwrap().into_bytes();
    assert_eq!(got.as_ref(), bodies[2].as_slice());
    let head = ok(
        client.head_object().bucket(&bucket).key("doc.txt").send().await,
        "HEAD latest",
    );
    assert_eq!(head.version_id(), Some(ids[2].as_str()));

    // Listing shows the key once, at its latest size.
    let listed = ok(client.list_objects_v2().bucket(&bucket).send().await, "ListObjectsV2");
    assert_eq!(listed.contents().len(), 1);
    assert_eq!(listed.contents()[0].size(), Some(bodies[2].len() as i64));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_marker_hides_the_object() {
    let (_server, client) = TestServer::with_client();
    let bucket = versioned_bucket(&client, "verdm").await;
    let mut ids = Vec::new();
    for body in ["one", "two", "three"] {
        ids.push(put_v(&client, &bucket, "k", body.as_bytes().to_vec()).await);
    }

    let del = ok(
        client.delete_object().bucket(&bucket).key("k").send().await,
        "DELETE without versionId",
    );
    assert_eq!(
        del.delete_marker(),
        Some(true),
        "DELETE in an Enabled bucket makes a delete marker"
    );
    let marker = del.version_id().expect("the delete marker's version id").to_string();
    assert!(!ids.contains(&marker), "the delete marker got an existing version's id");

    // GET and HEAD: 404, saying that a delete marker is what they found.
    let err = client
        .get_object()
        .bucket(&bucket)
        .key("k")
        .send()
        .await
        .expect_err("GET of a deleted key");
    let raw = err.raw_response().expect("a response");
    let info = err_info(&err);
    assert_eq!(
        (info.status, info.code.as_deref()),
        (404, Some("NoSuchKey")),
        "{info:?}"
    );
    assert_eq!(
        raw.headers().get("x-amz-delete-marker"),
        Some("true"),
        "404 for a delete-marked key must carry x-amz-delete-marker: true"
    );
    let err = client
        .head_object()
        .bucket(&bucket)
        .key("k")
        .send()
        .await
        .expect_err("HEAD of a deleted key");
    assert_eq!(err_info(&err).status, 404);
    assert_eq!(
        err.raw_response().unwrap().headers().get("x-amz-delete-marker"),
        Some("true"),
        "HEAD 404 for a delete-marked key must carry x-amz-delete-marker: true"
    );

    // The marker itself cannot be read.
    let err = client
        .get_object()
        .bucket(&bucket)
        .key("k")
        .version_id(&marker)
        .send()
        .await
        .expect_err("GET of a delete marker by id");
    let info = err_info(&err);
    assert_eq!(
        (info.status, info.code.as_deref()),
        (405, Some("MethodNotAllowed")),
        "GET ?versionId=<delete marker>: {info:?}"
    );
    assert_eq!(
        err.raw_response().unwrap().headers().get("x-amz-delete-marker"),
        Some("true")
    );

    // Old versions are still there by id.
    let (_, body) = get_version(&client, &bucket, "k", &ids[0]).await;
    assert_eq!(body, b"one");

    // ListObjectsV2 no longer shows the key; ListObjectVersions shows everything.
    let listed = ok(client.list_objects_v2().bucket(&bucket).send().await, "ListObjectsV2");
    assert!(
        listed.contents().is_empty(),
        "a delete-marked key is listed: {:?}",
        listed.contents()
    );
    let (versions, markers, _) = list_versions(&client, &bucket, "").await;
    assert_eq!(
        versions,
        vec![
            row("k", &ids[2], false, false),
            row("k", &ids[1], false, false),
            row("k", &ids[0], false, false),
        ],
        "versions newest first, none of them latest"
    );
    assert_eq!(
        markers,
        vec![row("k", &marker, true, true)],
        "the delete marker is the latest"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_an_old_version_by_copying_it() {
    let (_server, client) = TestServer::with_client();
    let bucket = versioned_bucket(&client, "verrestore").await;
    let v1 = put_v(&client, &bucket, "report.csv", b"good data".to_vec()).await;
    let v2 = put_v(&client, &bucket, "report.csv", b"oops, overwritten".to_vec()).await;

    let out = ok(
        client
            .copy_object()
            .bucket(&bucket)
            .key("report.csv")
            .copy_source(format!("{bucket}/report.csv?versionId={v1}"))
            .send()
            .await,
        "CopyObject from an old version",
    );
    assert_eq!(out.copy_source_version_id(), Some(v1.as_str()));
    let v3 = out
        .version_id()
        .expect("copy into a versioned bucket has a version id")
        .to_string();
    assert!(v3 != v1 && v3 != v2, "the restored copy is a new version: {v3}");

    assert_eq!(get_bytes(&client, &bucket, "report.csv").await, b"good data");
    let (_, b2) = get_version(&client, &bucket, "report.csv", &v2).await;
    assert_eq!(b2, b"oops, overwritten", "the overwritten version is kept");
    let (versions, markers, _) = list_versions(&client, &bucket, "").await;
    assert!(markers.is_empty());
    assert_eq!(
        versions,
        vec![
            row("report.csv", &v3, true, false),
            row("report.csv", &v2, false, false),
            row("report.csv", &v1, false, false),
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_specific_versions() {
    let (_server, client) = TestServer::with_client();
    let bucket = versioned_bucket(&client, "verdelv").await;
    let v1 = put_v(&client, &bucket, "k", b"v1".to_vec()).await;
    let v2 = put_v(&client, &bucket, "k", b"v2".to_vec()).await;
    let v3 = put_v(&client, &bucket, "k", b"v3".to_vec()).await;

    // A noncurrent version: gone for good, the latest is untouched.
    let out = ok(
        client
            .delete_object()
            .bucket(&bucket)
            .key("k")
            .version_id(&v2)
            .send()
            .await,
        "DELETE ?versionId=v2",
    );
    assert_eq!(out.version_id(), Some(v2.as_str()));
    assert_ne!(
        out.delete_marker(),
        Some(true),
        "deleting a version is not a delete marker"
    );
    expect_error(
        client
            .get_object()
            .bucket(&bucket)
            .key("k")
            .version_id(&v2)
            .send()
            .await,
        404,
        "NoSuchVersion",
    );
    assert_eq!(get_bytes(&client, &bucket, "k").await, b"v3");

    // The latest version: the previous one is promoted.
    ok(
        client
            .delete_object()
            .bucket(&bucket)
            .key("k")
            .version_id(&v3)
            .send()
            .await,
        "DELETE ?versionId=v3",
    );
    let latest = ok(client.get_object().bucket(&bucket).key("k").send().await, "GET");
    assert_eq!(latest.version_id(), Some(v1.as_str()), "v1 is the latest again");
    assert_eq!(latest.body.collect().await.unwrap().into_bytes().as_ref(), b"v1");
    let listed = ok(client.list_objects_v2().bucket(&bucket).send().await, "list");
    assert_eq!(listed.contents().len(), 1);
    assert_eq!(listed.contents()[0].size(), Some(2));

    // A delete marker, then deleting the marker: the object is back.
    let del = ok(client.delete_object().bucket(&bucket).key("k").send().await, "DELETE");
    let marker = del.version_id().expect("marker id").to_string();
    expect_error(
        client.get_object().bucket(&bucket).key("k").send().await,
        404,
        "NoSuchKey",
    );
    let out = ok(
        client
            .delete_object()
            .bucket(&bucket)
            .key("k")
            .version_id(&marker)
            .send()
            .await,
        "DELETE the delete marker",
    );
    assert_eq!(
        out.delete_marker(),
        Some(true),
        "deleting a marker reports x-amz-delete-marker: true"
    );
    assert_eq!(out.version_id(), Some(marker.as_str()));
    assert_eq!(get_bytes(&client, &bucket, "k").await, b"v1");

    let (versions, markers, _) = list_versions(&client, &bucket, "").await;
    assert_eq!(versions, vec![row("k", &v1, true, false)]);
    assert!(markers.is_empty(), "the deleted marker is still listed: {markers:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suspended_bucket_writes_the_null_version() {
    let (_server, client) = TestServer::with_client();
    let bucket = versioned_bucket(&client, "versusp").await;
    let v1 = put_v(&client, &bucket, "k", b"while enabled".to_vec()).await;

    set_versioning(&client, &bucket, BucketVersioningStatus::Suspended).await;
    let out = ok(
        client
            .put_object()
            .bucket(&bucket)
            .key("k")
            .body(b"null one".to_vec().into())
            .send()
            .await,
        "PUT while suspended",
    );
    if let Some(v) = out.version_id() {
        assert_eq!(v, "null", "a PUT in a Suspended bucket writes the null version");
    }
    let (_, body) = get_version(&client, &bucket, "k", "null").await;
    assert_eq!(body, b"null one");

    // A second PUT replaces the null version instead of adding one.
    put(&client, &bucket, "k", b"null two".to_vec()).await;
    let (_, body) = get_version(&client, &bucket, "k", "null").await;
    assert_eq!(body, b"null two");
    assert_eq!(get_bytes(&client, &bucket, "k").await, b"null two");
    let (versions, markers, _) = list_versions(&client, &bucket, "").await;
    assert!(markers.is_empty());
    assert_eq!(
        versions,
        vec![row("k", "null", true, false), row("k", &v1, false, false)],
        "one null version (latest) and the version written while Enabled"
    );
    let (_, body) = get_version(&client, &bucket, "k", &v1).await;
    assert_eq!(body, b"while enabled", "versions written while Enabled survive");

    // A DELETE while suspended replaces the null version with a null delete marker.
    let del = ok(client.delete_object().bucket(&bucket).key("k").send().await, "DELETE");
    assert_eq!(del.delete_marker(), Some(true));
    assert_eq!(del.version_id(), Some("null"));
    expect_error(
        client.get_object().bucket(&bucket).key("k").send().await,
        404,
        "NoSuchKey",
    );
    let (versions, markers, _) = list_versions(&client, &bucket, "").await;
    assert_eq!(versions, vec![row("k", &v1, false, false)]);
    assert_eq!(markers, vec![row("k", "null", true, true)]);

    // Enabled again: new PUTs get real ids and the older versions stay.
    set_versioning(&client, &bucket, BucketVersioningStatus::Enabled).await;
    let v3 = put_v(&client, &bucket, "k", b"enabled again".to_vec()).await;
    assert_ne!(v3, v1);
    let (versions, markers, _) = list_versions(&client, &bucket, "").await;
    assert_eq!(versions, vec![row("k", &v3, true, false), row("k", &v1, false, false)]);
    assert_eq!(markers, vec![row("k", "null", false, true)]);
}

/// An entry of a listing in S3's total order: a version / delete marker, or a common prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Item {
    V(String, String),
    P(String),
}

/// Walks ListObjectVersions with `max_keys` per page, following the key / version-id markers;
/// returns each page's entries ordered by their position in `expected` (versions and delete
/// markers come back in separate arrays, so the page's own order across them is lost).
async fn walk_versions(
    client: &Client,
    bucket: &str,
    prefix: Option<&str>,
    delimiter: Option<&str>,
    max_keys: i32,
    expected: &[Item],
) -> Vec<Item> {
    let mut out = Vec::new();
    let mut key_marker: Option<String> = None;
    let mut version_marker: Option<String> = None;
    for page_no in 0.. {
        assert!(
            page_no <= expected.len() + 2,
            "pagination does not end (max_keys {max_keys})"
        );
        let page = ok(
            client
                .list_object_versions()
                .bucket(bucket)
                .set_prefix(prefix.map(str::to_string))
                .set_delimiter(delimiter.map(str::to_string))
                .max_keys(max_keys)
                .set_key_marker(key_marker.clone())
                .set_version_id_marker(version_marker.clone())
                .send()
                .await,
            &format!("ListObjectVersions page {page_no} (max_keys {max_keys})"),
        );
        let mut items: Vec<Item> = Vec::new();
        items.extend(page.versions().iter().map(|v| {
            Item::V(
                v.key().unwrap_or_default().to_string(),
                v.version_id().unwrap_or_default().to_string(),
            )
        }));
        items.extend(page.delete_markers().iter().map(|m| {
            Item::V(
                m.key().unwrap_or_default().to_string(),
                m.version_id().unwrap_or_default().to_string(),
            )
        }));
        items.extend(
            page.common_prefixes()
                .iter()
                .map(|p| Item::P(p.prefix().unwrap_or_default().to_string())),
        );
        assert!(
            items.len() <= max_keys as usize,
            "page {page_no} has {} entries, more than max-keys {max_keys}: {items:?}",
            items.len()
        );
        let pos = |i: &Item| {
            expected
                .iter()
                .position(|e| e == i)
                .unwrap_or_else(|| panic!("unexpected entry {i:?} on page {page_no}"))
        };
        items.sort_by_key(pos);
        out.extend(items.iter().cloned());
        if page.is_truncated() != Some(true) {
            break;
        }
        assert!(!items.is_empty(), "a truncated page {page_no} with no entries");
        key_marker = Some(
            page.next_key_marker()
                .expect("a truncated listing has a NextKeyMarker")
                .to_string(),
        );
        version_marker = page.next_version_id_marker().map(str::to_string);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_versions_pagination_walks_every_version_once() {
    let (_server, client) = TestServer::with_client();
    let bucket = versioned_bucket(&client, "verpage").await;

    // a: 3 versions; b: 1 version + a delete marker; dir/x: 2; dir/y: 1; z: 2.
    let a1 = put_v(&client, &bucket, "a", b"a1".to_vec()).await;
    let a2 = put_v(&client, &bucket, "a", b"a2".to_vec()).await;
    let a3 = put_v(&client, &bucket, "a", b"a3".to_vec()).await;
    let b1 = put_v(&client, &bucket, "b", b"b1".to_vec()).await;
    let bm = ok(client.delete_object().bucket(&bucket).key("b").send().await, "DELETE b")
        .version_id()
        .expect("marker id")
        .to_string();
    let x1 = put_v(&client, &bucket, "dir/x", b"x1".to_vec()).await;
    let x2 = put_v(&client, &bucket, "dir/x", b"x2".to_vec()).await;
    let y1 = put_v(&client, &bucket, "dir/y", b"y1".to_vec()).await;
    let z1 = put_v(&client, &bucket, "z", b"z1".to_vec()).await;
    let z2 = put_v(&client, &bucket, "z", b"z2".to_vec()).await;

    let v = |k: &str, id: &String| Item::V(k.to_string(), id.clone());
    // Keys in order; within a key the latest first, then newest to oldest.
    let all = vec![
        v("a", &a3),
        v("a", &a2),
        v("a", &a1),
        v("b", &bm),
        v("b", &b1),
        v("dir/x", &x2),
        v("dir/x", &x1),
        v("dir/y", &y1),
        v("z", &z2),
        v("z", &z1),
    ];

    // The unpaginated listing, with is-latest flags.
    let (versions, markers, prefixes) = list_versions(&client, &bucket, "").await;
    assert!(prefixes.is_empty());
    assert_eq!(markers, vec![row("b", &bm, true, true)]);
    assert_eq!(
        versions,
        vec![
            row("a", &a3, true, false),
            row("a", &a2, false, false),
            row("a", &a1, false, false),
            row("b", &b1, false, false),
            row("dir/x", &x2, true, false),
            row("dir/x", &x1, false, false),
            row("dir/y", &y1, true, false),
            row("z", &z2, true, false),
            row("z", &z1, false, false),
        ]
    );

    for max in [1, 2, 3] {
        let walked = walk_versions(&client, &bucket, None, None, max, &all).await;
        assert_eq!(walked, all, "max-keys {max}: every version exactly once, in order");
    }

    // With a prefix.
    let dir: Vec<Item> = all[5..8].to_vec();
    for max in [1, 2] {
        let walked = walk_versions(&client, &bucket, Some("dir/"), None, max, &dir).await;
        assert_eq!(walked, dir, "prefix dir/, max-keys {max}");
    }

    // With a delimiter: dir/ rolls up into one common prefix, in key order.
    let mut rolled: Vec<Item> = all[..5].to_vec();
    rolled.push(Item::P("dir/".into()));
    rolled.extend(all[8..].iter().cloned());
    for max in [1, 2, 1000] {
        let walked = walk_versions(&client, &bucket, None, Some("/"), max, &rolled).await;
        assert_eq!(walked, rolled, "delimiter /, max-keys {max}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bucket_with_only_noncurrent_versions_is_not_empty() {
    let (_server, client) = TestServer::with_client();
    let bucket = versioned_bucket(&client, "vernotempty").await;
    let v1 = put_v(&client, &bucket, "k", b"data".to_vec()).await;
    let marker = ok(client.delete_object().bucket(&bucket).key("k").send().await, "DELETE")
        .version_id()
        .expect("marker id")
        .to_string();
    let listed = ok(client.list_objects_v2().bucket(&bucket).send().await, "list");
    assert!(listed.contents().is_empty());

    // A noncurrent version and a delete marker.
    expect_error(
        client.delete_bucket().bucket(&bucket).send().await,
        409,
        "BucketNotEmpty",
    );
    // Only a delete marker.
    ok(
        client
            .delete_object()
            .bucket(&bucket)
            .key("k")
            .version_id(&v1)
            .send()
            .await,
        "DELETE v1",
    );
    expect_error(
        client.delete_bucket().bucket(&bucket).send().await,
        409,
        "BucketNotEmpty",
    );
    ok(
        client
            .delete_object()
            .bucket(&bucket)
            .key("k")
            .version_id(&marker)
            .send()
            .await,
        "DELETE the marker",
    );
    ok(
        client.delete_bucket().bucket(&bucket).send().await,
        "DeleteBucket once empty",
    );
    expect_status(client.head_bucket().bucket(&bucket).send().await, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multipart_upload_in_versioned_bucket_gets_a_version() {
    let (_server, client) = TestServer::with_client();
    let bucket = versioned_bucket(&client, "vermpu").await;
    let v1 = put_v(&client, &bucket, "big", b"small old version".to_vec()).await;

    let parts = [random_bytes(5 * MIB, 21), random_bytes(3000, 22)];
    let id = create_upload(&client, &bucket, "big").await;
    let mut done = Vec::new();
    for (i, p) in parts.iter().enumerate() {
        let n = i as i32 + 1;
        done.push((n, upload_part(&client, &bucket, "big", &id, n, p).await));
    }
    let out = ok(
        client
            .complete_multipart_upload()
            .bucket(&bucket)
            .key("big")
            .upload_id(&id)
            .multipart_upload(completed(&done))
            .send()
            .await,
        "CompleteMultipartUpload",
    );
    let v2 = out
        .version_id()
        .expect("CompleteMultipartUpload in a versioned bucket has a version id")
        .to_string();
    assert_ne!(v2, v1);

    let whole = [parts[0].as_slice(), parts[1].as_slice()].concat();
    let got = get_bytes(&client, &bucket, "big").await;
    assert!(got == whole, "latest is the multipart object");
    let (reported, got) = get_version(&client, &bucket, "big", &v2).await;
    assert_eq!(reported.as_deref(), Some(v2.as_str()));
    assert!(got == whole);
    let (_, old) = get_version(&client, &bucket, "big", &v1).await;
    assert_eq!(old, b"small old version", "the overwritten version is still readable");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_and_unknown_version_ids() {
    let (_server, client) = TestServer::with_client();
    let bucket = versioned_bucket(&client, "verbadid").await;
    let va = put_v(&client, &bucket, "a", b"a".to_vec()).await;
    put_v(&client, &bucket, "b", b"b".to_vec()).await;

    expect_error(
        client
            .get_object()
            .bucket(&bucket)
            .key("a")
            .version_id("not-a-version")
            .send()
            .await,
        400,
        "InvalidArgument",
    );
    expect_status(
        client
            .head_object()
            .bucket(&bucket)
            .key("a")
            .version_id("not-a-version")
            .send()
            .await,
        400,
    );
    expect_error(
        client
            .delete_object()
            .bucket(&bucket)
            .key("a")
            .version_id("not-a-version")
            .send()
            .await,
        400,
        "InvalidArgument",
    );
    // A well-formed id of another key's version: that version does not exist for this key.
    expect_error(
        client
            .get_object()
            .bucket(&bucket)
            .key("b")
            .version_id(&va)
            .send()
            .await,
        404,
        "NoSuchVersion",
    );
    // Nothing was deleted by any of this.
    assert_eq!(get_bytes(&client, &bucket, "a").await, b"a");
    assert_eq!(get_bytes(&client, &bucket, "b").await, b"b");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleted_versions_free_their_bytes_and_restart_keeps_the_rest() {
    let (mut server, client) = TestServer::start_with(ServerOptions {
        config_toml: Some("[limits]\ndeleted_blob_grace_secs = 0\n".into()),
        ..Default::default()
    })
    .and_client();
    let bucket = versioned_bucket(&client, "verfree").await;
    let data = server.data_dir().to_path_buf();
    let baseline = blob_files(&data).len();

    let big1 = random_bytes(MIB, 31);
    let big2 = random_bytes(MIB, 32);
    let keep1 = random_bytes(MIB, 33);
    let keep2 = random_bytes(MIB, 34);
    let b1 = put_v(&client, &bucket, "big", big1).await;
    let b2 = put_v(&client, &bucket, "big", big2).await;
    let k1 = put_v(&client, &bucket, "keep", keep1.clone()).await;
    let k2 = put_v(&client, &bucket, "keep", keep2.clone()).await;
    // Both of keep's versions become noncurrent behind a delete marker.
    ok(
        client.delete_object().bucket(&bucket).key("keep").send().await,
        "DELETE keep",
    );
    assert_eq!(
        blob_files(&data).len(),
        baseline + 4,
        "four 1 MiB versions, four blob files"
    );

    for v in [&b1, &b2] {
        ok(
            client
                .delete_object()
                .bucket(&bucket)
                .key("big")
                .version_id(v)
                .send()
                .await,
            "DELETE a version of big",
        );
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let n = blob_files(&data).len();
        if n == baseline + 2 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "after deleting both versions of big, {n} blob files remain (want {})",
            baseline + 2
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    expect_error(
        client.get_object().bucket(&bucket).key("big").send().await,
        404,
        "NoSuchKey",
    );

    // A restart sweeps unreferenced blobs; noncurrent versions are referenced.
    server.restart();
    let client = server.client();
    let (_, got) = get_version(&client, &bucket, "keep", &k1).await;
    assert!(got == keep1, "noncurrent version k1 lost its bytes across a restart");
    let (_, got) = get_version(&client, &bucket, "keep", &k2).await;
    assert!(got == keep2, "noncurrent version k2 lost its bytes across a restart");
    assert_eq!(blob_files(&data).len(), baseline + 2);
    let (versions, markers, _) = list_versions(&client, &bucket, "").await;
    assert_eq!(versions.len(), 2, "keep's two versions: {versions:?}");
    assert_eq!(markers.len(), 1);
}
