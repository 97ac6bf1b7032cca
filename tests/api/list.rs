//! Listing: ListObjectsV2 and ListObjects (v1) with prefix, delimiter, max-keys, start-after,
//! continuation tokens, markers, encoding-type=url, fetch-owner and KeyCount; paginating 2500
//! keys; and a property test against an in-memory model of S3 listing.

use std::collections::BTreeSet;

use aws_sdk_s3::types::EncodingType;
use aws_sdk_s3::Client;
use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, TestCaseError, TestRunner};

use crate::fixtures::*;

const TREE: [&str; 8] = ["a/1", "a/2", "a/b/3", "a/b/4", "b/1", "c", "d/e/f", "e"];

async fn tree_bucket(client: &Client, tag: &str) -> String {
    let bucket = new_bucket(client, tag).await;
    let keys: Vec<String> = TREE.iter().map(|k| k.to_string()).collect();
    put_many(client, &bucket, &keys).await;
    bucket
}

fn strings<'a>(it: impl Iterator<Item = Option<&'a str>>) -> Vec<String> {
    it.map(|s| s.unwrap_or_default().to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v2_prefix_and_delimiter() {
    let (_server, client) = TestServer::with_client();
    let bucket = tree_bucket(&client, "v2tree").await;

    let top = ok(
        client.list_objects_v2().bucket(&bucket).delimiter("/").send().await,
        "list /",
    );
    assert_eq!(strings(top.contents().iter().map(|o| o.key())), ["c", "e"]);
    assert_eq!(
        strings(top.common_prefixes().iter().map(|p| p.prefix())),
        ["a/", "b/", "d/"]
    );
    assert_eq!(top.key_count(), Some(5));
    assert_eq!(top.is_truncated(), Some(false));
    assert_eq!(top.delimiter(), Some("/"));
    assert_eq!(top.name(), Some(bucket.as_str()));

    let a = ok(
        client
            .list_objects_v2()
            .bucket(&bucket)
            .prefix("a/")
            .delimiter("/")
            .send()
            .await,
        "list a/",
    );
    assert_eq!(strings(a.contents().iter().map(|o| o.key())), ["a/1", "a/2"]);
    assert_eq!(strings(a.common_prefixes().iter().map(|p| p.prefix())), ["a/b/"]);
    assert_eq!(a.key_count(), Some(3));
    assert_eq!(a.prefix(), Some("a/"));

    // Objects carry size, ETag, Last-Modified and storage class.
    let obj = &a.contents()[0];
    assert_eq!(obj.size(), Some(3));
    assert_eq!(obj.e_tag(), Some(etag_of(b"a/1").as_str()));
    assert!(obj.last_modified().is_some());
    assert!(obj.storage_class().is_some(), "no StorageClass");
    // v2 omits the owner unless asked.
    assert!(obj.owner().is_none(), "Owner without fetch-owner");

    let flat = ok(
        client.list_objects_v2().bucket(&bucket).prefix("a/").send().await,
        "list a/ flat",
    );
    assert_eq!(
        strings(flat.contents().iter().map(|o| o.key())),
        ["a/1", "a/2", "a/b/3", "a/b/4"]
    );
    assert!(flat.common_prefixes().is_empty());

    // A prefix that is not on a "directory" boundary; and one that matches nothing.
    let partial = ok(
        client
            .list_objects_v2()
            .bucket(&bucket)
            .prefix("a/b")
            .delimiter("/")
            .send()
            .await,
        "list a/b",
    );
    assert!(partial.contents().is_empty());
    assert_eq!(strings(partial.common_prefixes().iter().map(|p| p.prefix())), ["a/b/"]);
    let none = ok(
        client.list_objects_v2().bucket(&bucket).prefix("zzz").send().await,
        "list zzz",
    );
    assert!(none.contents().is_empty() && none.common_prefixes().is_empty());
    assert_eq!(none.key_count(), Some(0));

    // A multi-character delimiter.
    let multi = ok(
        client.list_objects_v2().bucket(&bucket).delimiter("/b/").send().await,
        "delimiter /b/",
    );
    assert_eq!(strings(multi.common_prefixes().iter().map(|p| p.prefix())), ["a/b/"]);
    assert_eq!(
        strings(multi.contents().iter().map(|o| o.key())),
        ["a/1", "a/2", "b/1", "c", "d/e/f", "e"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v2_max_keys_start_after_and_continuation() {
    let (_server, client) = TestServer::with_client();
    let bucket = tree_bucket(&client, "v2page").await;

    let first = ok(
        client.list_objects_v2().bucket(&bucket).max_keys(3).send().await,
        "page 1",
    );
    assert_eq!(
        strings(first.contents().iter().map(|o| o.key())),
        ["a/1", "a/2", "a/b/3"]
    );
    assert_eq!(first.is_truncated(), Some(true));
    assert_eq!(first.key_count(), Some(3));
    assert_eq!(first.max_keys(), Some(3));
    let token = first
        .next_continuation_token()
        .expect("truncated page without NextContinuationToken");

    let second = ok(
        client
            .list_objects_v2()
            .bucket(&bucket)
            .max_keys(3)
            .continuation_token(token)
            .send()
            .await,
        "page 2",
    );
    assert_eq!(second.continuation_token(), Some(token), "ContinuationToken not echoed");
    assert_eq!(
        strings(second.contents().iter().map(|o| o.key())),
        ["a/b/4", "b/1", "c"]
    );
    let third = ok(
        client
            .list_objects_v2()
            .bucket(&bucket)
            .max_keys(3)
            .continuation_token(second.next_continuation_token().expect("token 2"))
            .send()
            .await,
        "page 3",
    );
    assert_eq!(strings(third.contents().iter().map(|o| o.key())), ["d/e/f", "e"]);
    assert_eq!(third.is_truncated(), Some(false));
    assert!(third.next_continuation_token().is_none());

    // start-after is exclusive and need not be an existing key.
    let after = ok(
        client
            .list_objects_v2()
            .bucket(&bucket)
            .start_after("a/b/3")
            .send()
            .await,
        "start-after key",
    );
    assert_eq!(
        strings(after.contents().iter().map(|o| o.key())),
        ["a/b/4", "b/1", "c", "d/e/f", "e"]
    );
    assert_eq!(after.start_after(), Some("a/b/3"));
    let after = ok(
        client.list_objects_v2().bucket(&bucket).start_after("b").send().await,
        "start-after gap",
    );
    assert_eq!(
        strings(after.contents().iter().map(|o| o.key())),
        ["b/1", "c", "d/e/f", "e"]
    );

    // Pages with a delimiter count common prefixes against max-keys.
    let page = ok(
        client
            .list_objects_v2()
            .bucket(&bucket)
            .delimiter("/")
            .max_keys(2)
            .send()
            .await,
        "delim page 1",
    );
    assert_eq!(strings(page.common_prefixes().iter().map(|p| p.prefix())), ["a/", "b/"]);
    assert!(page.contents().is_empty());
    assert_eq!(page.key_count(), Some(2));
    assert_eq!(page.is_truncated(), Some(true));
    let page = ok(
        client
            .list_objects_v2()
            .bucket(&bucket)
            .delimiter("/")
            .max_keys(2)
            .continuation_token(page.next_continuation_token().unwrap())
            .send()
            .await,
        "delim page 2",
    );
    assert_eq!(strings(page.contents().iter().map(|o| o.key())), ["c"]);
    assert_eq!(strings(page.common_prefixes().iter().map(|p| p.prefix())), ["d/"]);

    // A garbage continuation token is a client error, not a 500.
    expect_error(
        client
            .list_objects_v2()
            .bucket(&bucket)
            .continuation_token("not-a-token!!")
            .send()
            .await,
        400,
        "InvalidArgument",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v1_marker_and_next_marker() {
    let (_server, client) = TestServer::with_client();
    let bucket = tree_bucket(&client, "v1").await;

    let all = ok(client.list_objects().bucket(&bucket).send().await, "v1 list");
    assert_eq!(strings(all.contents().iter().map(|o| o.key())), TREE);
    assert_eq!(all.is_truncated(), Some(false));
    // v1 includes the owner.
    assert!(all.contents()[0].owner().is_some(), "v1 Contents without Owner");

    let page = ok(
        client.list_objects().bucket(&bucket).max_keys(2).send().await,
        "v1 page",
    );
    assert_eq!(strings(page.contents().iter().map(|o| o.key())), ["a/1", "a/2"]);
    assert_eq!(page.is_truncated(), Some(true));
    let next = ok(
        client
            .list_objects()
            .bucket(&bucket)
            .max_keys(2)
            .marker("a/2")
            .send()
            .await,
        "v1 marker",
    );
    assert_eq!(strings(next.contents().iter().map(|o| o.key())), ["a/b/3", "a/b/4"]);
    assert_eq!(next.marker(), Some("a/2"));

    // With a delimiter, NextMarker is given and continues past the common prefix.
    let page = ok(
        client
            .list_objects()
            .bucket(&bucket)
            .delimiter("/")
            .max_keys(2)
            .send()
            .await,
        "v1 delim page",
    );
    assert_eq!(strings(page.common_prefixes().iter().map(|p| p.prefix())), ["a/", "b/"]);
    assert_eq!(page.is_truncated(), Some(true));
    let marker = page
        .next_marker()
        .expect("v1 truncated delimiter page without NextMarker");
    assert_eq!(marker, "b/");
    let rest = ok(
        client
            .list_objects()
            .bucket(&bucket)
            .delimiter("/")
            .marker(marker)
            .send()
            .await,
        "v1 delim rest",
    );
    assert_eq!(strings(rest.contents().iter().map(|o| o.key())), ["c", "e"]);
    assert_eq!(strings(rest.common_prefixes().iter().map(|p| p.prefix())), ["d/"]);
    assert_eq!(rest.is_truncated(), Some(false));

    let pre = ok(
        client.list_objects().bucket(&bucket).prefix("a/b/").send().await,
        "v1 prefix",
    );
    assert_eq!(strings(pre.contents().iter().map(|o| o.key())), ["a/b/3", "a/b/4"]);
}

/// Decodes an `encoding-type=url` value (`+` may stand for a space).
fn url_decode(s: &str) -> String {
    urlencoding::decode(&s.replace('+', " "))
        .unwrap_or_else(|e| panic!("bad url-encoding {s:?}: {e}"))
        .into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encoding_type_url() {
    let (_server, client, bucket) = TestServer::with_bucket("urlenc").await;
    let keys = ["dir one/file two.txt", "dir one/sub dir/x", "ünï/😀 smile", "plain"];
    put_many(&client, &bucket, &keys.map(String::from)).await;

    let out = ok(
        client
            .list_objects_v2()
            .bucket(&bucket)
            .encoding_type(EncodingType::Url)
            .send()
            .await,
        "v2 encoding-type=url",
    );
    assert_eq!(out.encoding_type(), Some(&EncodingType::Url), "EncodingType not echoed");
    let raw: Vec<&str> = out.contents().iter().filter_map(|o| o.key()).collect();
    for k in &raw {
        assert!(
            k.is_ascii() && !k.contains(' '),
            "key {k:?} came back without url-encoding"
        );
    }
    let mut want: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
    want.sort();
    assert_eq!(raw.iter().map(|k| url_decode(k)).collect::<Vec<_>>(), want);

    let out = ok(
        client
            .list_objects_v2()
            .bucket(&bucket)
            .delimiter("/")
            .prefix("dir one/")
            .encoding_type(EncodingType::Url)
            .send()
            .await,
        "v2 encoding-type=url with delimiter",
    );
    let prefixes: Vec<&str> = out.common_prefixes().iter().filter_map(|p| p.prefix()).collect();
    assert_eq!(prefixes.len(), 1);
    assert!(
        !prefixes[0].contains(' '),
        "CommonPrefix {:?} not url-encoded",
        prefixes[0]
    );
    assert_eq!(url_decode(prefixes[0]), "dir one/sub dir/");
    assert_eq!(out.prefix().map(url_decode).as_deref(), Some("dir one/"));

    let v1 = ok(
        client
            .list_objects()
            .bucket(&bucket)
            .encoding_type(EncodingType::Url)
            .send()
            .await,
        "v1 url",
    );
    let raw: Vec<&str> = v1.contents().iter().filter_map(|o| o.key()).collect();
    assert!(
        raw.iter().all(|k| k.is_ascii() && !k.contains(' ')),
        "v1 keys not url-encoded: {raw:?}"
    );
    assert_eq!(raw.iter().map(|k| url_decode(k)).collect::<Vec<_>>(), want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_owner() {
    let (_server, client) = TestServer::with_client();
    let bucket = tree_bucket(&client, "owner").await;
    let out = ok(
        client.list_objects_v2().bucket(&bucket).fetch_owner(true).send().await,
        "fetch-owner",
    );
    assert_eq!(out.contents().len(), TREE.len());
    for o in out.contents() {
        let owner = o
            .owner()
            .unwrap_or_else(|| panic!("{:?} without Owner under fetch-owner", o.key()));
        assert!(
            owner.id().is_some_and(|id| !id.is_empty()),
            "Owner without ID: {owner:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paginator_visits_2500_keys_once_in_order() {
    let (_server, client, bucket) = TestServer::with_bucket("many").await;
    // Interleave two "directories" so the order is not the insertion order.
    let mut keys: Vec<String> = (0..2500)
        .map(|i| format!("{}/{:05}", if i % 2 == 0 { "even" } else { "odd" }, i))
        .collect();
    keys.reverse();
    put_many(&client, &bucket, &keys).await;
    keys.sort();

    for page_size in [1000, 333] {
        let mut seen = Vec::new();
        let mut pages = 0;
        let mut stream = client
            .list_objects_v2()
            .bucket(&bucket)
            .max_keys(page_size)
            .into_paginator()
            .send();
        while let Some(page) = stream.next().await {
            let page = ok(page, "ListObjectsV2 page");
            pages += 1;
            assert!(page.contents().len() <= page_size as usize, "page larger than max-keys");
            assert_eq!(page.key_count(), Some(page.contents().len() as i32), "KeyCount");
            seen.extend(page.contents().iter().map(|o| o.key().unwrap().to_string()));
        }
        assert_eq!(seen.len(), 2500, "max-keys {page_size}: saw {} keys", seen.len());
        assert!(seen == keys, "max-keys {page_size}: keys out of order or duplicated");
        assert_eq!(
            pages,
            2500usize.div_ceil(page_size as usize),
            "page count for max-keys {page_size}"
        );
    }

    // Without max-keys, the default page is 1000.
    let first = ok(client.list_objects_v2().bucket(&bucket).send().await, "default page");
    assert_eq!(first.contents().len(), 1000);
    assert_eq!(first.is_truncated(), Some(true));
    // max-keys above 1000 is capped at 1000.
    let capped = ok(
        client.list_objects_v2().bucket(&bucket).max_keys(5000).send().await,
        "capped page",
    );
    assert_eq!(capped.contents().len(), 1000);
}

// ---------------------------------------------------------------------------------------------
// Property test against a model
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Debug)]
struct Query {
    prefix: String,
    delimiter: Option<String>,
    max_keys: usize,
    start_after: Option<String>,
}

/// One listing entry: a key, or a common prefix.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Entry {
    Key(String),
    Prefix(String),
}

impl Entry {
    fn name(&self) -> &str {
        match self {
            Entry::Key(s) | Entry::Prefix(s) => s,
        }
    }
}

/// The model: every key starting with `prefix`; with a delimiter, a key whose remainder after
/// the prefix contains it collapses into `prefix + remainder[..=first delimiter]`; sorted
/// bytewise, deduplicated, only entries after `start_after`; pages of `max_keys` entries.
fn model_pages(keys: &BTreeSet<String>, q: &Query) -> Vec<Vec<Entry>> {
    let mut entries: BTreeSet<(String, Entry)> = BTreeSet::new();
    for key in keys.iter().filter(|k| k.starts_with(&q.prefix)) {
        let rest = &key[q.prefix.len()..];
        let entry = match q.delimiter.as_deref().and_then(|d| rest.find(d).map(|i| (i, d))) {
            Some((i, d)) => Entry::Prefix(format!("{}{}", q.prefix, &rest[..i + d.len()])),
            None => Entry::Key(key.clone()),
        };
        entries.insert((entry.name().to_string(), entry));
    }
    let after: Vec<Entry> = entries
        .into_iter()
        .filter(|(name, _)| q.start_after.as_deref().is_none_or(|s| name.as_str() > s))
        .map(|(_, e)| e)
        .collect();
    if after.is_empty() {
        return vec![Vec::new()];
    }
    after.chunks(q.max_keys).map(|c| c.to_vec()).collect()
}

fn entries_of(keys: &[String], prefixes: &[String]) -> Vec<Entry> {
    let mut out: Vec<Entry> = keys
        .iter()
        .cloned()
        .map(Entry::Key)
        .chain(prefixes.iter().cloned().map(Entry::Prefix))
        .collect();
    out.sort_by(|a, b| a.name().cmp(b.name()));
    out
}

/// Follows ListObjectsV2 continuation tokens to the end; returns the pages.
async fn server_pages_v2(client: &Client, bucket: &str, q: &Query) -> Result<Vec<Vec<Entry>>, TestCaseError> {
    let mut pages = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut req = client
            .list_objects_v2()
            .bucket(bucket)
            .prefix(&q.prefix)
            .max_keys(q.max_keys as i32);
        if let Some(d) = &q.delimiter {
            req = req.delimiter(d);
        }
        match &token {
            Some(t) => req = req.continuation_token(t),
            None => {
                if let Some(s) = &q.start_after {
                    req = req.start_after(s);
                }
            }
        }
        let out = req
            .send()
            .await
            .map_err(|e| TestCaseError::fail(format!("ListObjectsV2: {}", describe(&e))))?;
        let keys: Vec<String> = out
            .contents()
            .iter()
            .map(|o| o.key().unwrap_or_default().to_string())
            .collect();
        let prefixes: Vec<String> = out
            .common_prefixes()
            .iter()
            .map(|p| p.prefix().unwrap_or_default().to_string())
            .collect();
        let page = entries_of(&keys, &prefixes);
        prop_assert_eq!(
            out.key_count(),
            Some(page.len() as i32),
            "KeyCount on page {}",
            pages.len() + 1
        );
        pages.push(page);
        prop_assert!(
            pages.len() <= 200,
            "more than 200 pages: the listing does not terminate"
        );
        if out.is_truncated() == Some(true) {
            let next = out.next_continuation_token().map(str::to_string);
            prop_assert!(next.is_some(), "truncated page without NextContinuationToken");
            token = next;
        } else {
            return Ok(pages);
        }
    }
}

/// Follows ListObjects (v1) markers to the end: NextMarker when given, else the last key.
async fn server_pages_v1(client: &Client, bucket: &str, q: &Query) -> Result<Vec<Vec<Entry>>, TestCaseError> {
    let mut pages = Vec::new();
    let mut marker = q.start_after.clone();
    loop {
        let mut req = client
            .list_objects()
            .bucket(bucket)
            .prefix(&q.prefix)
            .max_keys(q.max_keys as i32);
        if let Some(d) = &q.delimiter {
            req = req.delimiter(d);
        }
        if let Some(m) = &marker {
            req = req.marker(m);
        }
        let out = req
            .send()
            .await
            .map_err(|e| TestCaseError::fail(format!("ListObjects: {}", describe(&e))))?;
        let keys: Vec<String> = out
            .contents()
            .iter()
            .map(|o| o.key().unwrap_or_default().to_string())
            .collect();
        let prefixes: Vec<String> = out
            .common_prefixes()
            .iter()
            .map(|p| p.prefix().unwrap_or_default().to_string())
            .collect();
        let page = entries_of(&keys, &prefixes);
        let last = page.last().map(|e| e.name().to_string());
        pages.push(page);
        prop_assert!(
            pages.len() <= 200,
            "more than 200 pages: the listing does not terminate"
        );
        if out.is_truncated() == Some(true) {
            if q.delimiter.is_some() {
                prop_assert!(
                    out.next_marker().is_some(),
                    "truncated v1 page with a delimiter but no NextMarker"
                );
            }
            let next = out.next_marker().map(str::to_string).or(last);
            prop_assert!(next.is_some(), "truncated empty v1 page");
            marker = next;
        } else {
            return Ok(pages);
        }
    }
}

fn query_strategy() -> impl Strategy<Value = Query> {
    (
        "[ab/]{0,2}",
        prop_oneof![
            Just(None),
            Just(Some("/".to_string())),
            Just(Some("b".to_string())),
            Just(Some("a/".to_string()))
        ],
        1usize..=6,
        proptest::option::of("[abc/]{0,4}"),
    )
        .prop_map(|(prefix, delimiter, max_keys, start_after)| Query {
            prefix,
            delimiter,
            max_keys,
            start_after,
        })
}

fn case_strategy() -> impl Strategy<Value = (BTreeSet<String>, Vec<Query>)> {
    (
        proptest::collection::btree_set("[abc][ab/c]{0,5}", 1..=40),
        proptest::collection::vec(query_strategy(), 1..=4),
    )
}

#[test]
fn listing_matches_model() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let server = TestServer::start();
    let client = rt.block_on(async { server.client() });
    let mut runner = TestRunner::new(ProptestConfig {
        cases: 24,
        max_shrink_iters: 64,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    let result = runner.run(&case_strategy(), |(keys, queries)| {
        rt.block_on(async {
            let bucket = new_bucket(&client, "prop").await;
            let keys_vec: Vec<String> = keys.iter().cloned().collect();
            put_many(&client, &bucket, &keys_vec).await;
            for q in &queries {
                let want = model_pages(&keys, q);
                let got = server_pages_v2(&client, &bucket, q).await?;
                prop_assert_eq!(&got, &want, "ListObjectsV2 {:?}", q);
                let got = server_pages_v1(&client, &bucket, q).await?;
                prop_assert_eq!(&got, &want, "ListObjects (v1) {:?}", q);
            }
            Ok::<(), TestCaseError>(())
        })
    });
    if let Err(e) = result {
        panic!("listing differs from the model: {e}");
    }
}

#[test]
fn model_sanity() {
    // The model itself, on the worked example from the S3 documentation's shape.
    let keys: BTreeSet<String> = TREE.iter().map(|k| k.to_string()).collect();
    let q = Query {
        prefix: String::new(),
        delimiter: Some("/".into()),
        max_keys: 2,
        start_after: None,
    };
    let pages = model_pages(&keys, &q);
    assert_eq!(
        pages,
        vec![
            vec![Entry::Prefix("a/".into()), Entry::Prefix("b/".into())],
            vec![Entry::Key("c".into()), Entry::Prefix("d/".into())],
            vec![Entry::Key("e".into())],
        ]
    );
    let q = Query {
        prefix: "a/".into(),
        delimiter: None,
        max_keys: 10,
        start_after: Some("a/2".into()),
    };
    assert_eq!(
        model_pages(&keys, &q),
        vec![vec![Entry::Key("a/b/3".into()), Entry::Key("a/b/4".into())]]
    );
    let q = Query {
        prefix: "zz".into(),
        delimiter: None,
        max_keys: 10,
        start_after: None,
    };
    assert_eq!(model_pages(&keys, &q), vec![Vec::<Entry>::new()]);
}
