//! Bucket lifecycle: CreateBucket, HeadBucket, ListBuckets, GetBucketLocation, DeleteBucket and
//! their errors (already owned / exists, not empty, no such bucket, invalid names).

use crate::fixtures::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bucket_lifecycle() {
    let (_server, client) = TestServer::with_client();
    let bucket = unique_bucket("life");

    let created = ok(client.create_bucket().bucket(&bucket).send().await, "CreateBucket");
    if let Some(location) = created.location() {
        assert!(
            location.contains(&bucket),
            "CreateBucket Location {location:?} does not name the bucket"
        );
    }
    ok(client.head_bucket().bucket(&bucket).send().await, "HeadBucket");

    let listed = ok(client.list_buckets().send().await, "ListBuckets");
    let names: Vec<&str> = listed.buckets().iter().filter_map(|b| b.name()).collect();
    assert!(names.contains(&bucket.as_str()), "ListBuckets {names:?} lacks {bucket}");
    let entry = listed
        .buckets()
        .iter()
        .find(|b| b.name() == Some(bucket.as_str()))
        .unwrap();
    assert!(entry.creation_date().is_some(), "ListBuckets entry has no CreationDate");
    assert!(
        listed.owner().and_then(|o| o.id()).is_some(),
        "ListBuckets has no Owner/ID"
    );

    let location = ok(
        client.get_bucket_location().bucket(&bucket).send().await,
        "GetBucketLocation",
    );
    // S3 reports us-east-1 as an empty LocationConstraint; accept that or the explicit name.
    match location.location_constraint() {
        None => {}
        Some(c) if c.as_str().is_empty() || c.as_str() == "us-east-1" => {}
        Some(other) => panic!("GetBucketLocation returned {other:?}, expected us-east-1 (or empty)"),
    }

    ok(client.delete_bucket().bucket(&bucket).send().await, "DeleteBucket");
    expect_status(client.head_bucket().bucket(&bucket).send().await, 404);
    let listed = ok(client.list_buckets().send().await, "ListBuckets after delete");
    assert!(
        listed.buckets().iter().all(|b| b.name() != Some(bucket.as_str())),
        "deleted bucket still listed"
    );
    // The name is free again.
    ok(
        client.create_bucket().bucket(&bucket).send().await,
        "re-CreateBucket after delete",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_buckets_is_sorted_and_complete() {
    let (_server, client) = TestServer::with_client();
    let mut made = Vec::new();
    for tag in ["zeta", "alpha", "mid"] {
        made.push(new_bucket(&client, tag).await);
    }
    let listed = ok(client.list_buckets().send().await, "ListBuckets");
    let names: Vec<String> = listed
        .buckets()
        .iter()
        .filter_map(|b| b.name())
        .map(str::to_string)
        .collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted, "ListBuckets is not sorted by name");
    for b in &made {
        assert!(names.contains(b), "ListBuckets {names:?} lacks {b}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recreate_by_same_owner_is_already_owned_by_you() {
    let (_server, client, bucket) = TestServer::with_bucket("owned").await;
    expect_error(
        client.create_bucket().bucket(&bucket).send().await,
        409,
        "BucketAlreadyOwnedByYou",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_of_other_owners_bucket_is_already_exists() {
    let (server, root, bucket) = TestServer::with_bucket("taken").await;
    let key = server.create_key("bucket-squatter");
    let other = server.client_with(&key.access_key, &key.secret_key);
    expect_error(
        other.create_bucket().bucket(&bucket).send().await,
        409,
        "BucketAlreadyExists",
    );
    // And the other way round: root cannot take the other principal's bucket name either
    // (root sees everything, but the bucket is still owned by someone else).
    let theirs = new_bucket(&other, "theirs").await;
    expect_error_in(
        root.create_bucket().bucket(&theirs).send().await,
        409,
        &["BucketAlreadyExists", "BucketAlreadyOwnedByYou"],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_non_empty_bucket_fails() {
    let (_server, client, bucket) = TestServer::with_bucket("full").await;
    put(&client, &bucket, "some/object", b"x".to_vec()).await;
    expect_error(
        client.delete_bucket().bucket(&bucket).send().await,
        409,
        "BucketNotEmpty",
    );
    // Still there, object intact.
    ok(
        client.head_bucket().bucket(&bucket).send().await,
        "HeadBucket after failed delete",
    );
    assert_eq!(get_bytes(&client, &bucket, "some/object").await, b"x");
    // Emptied, it can go.
    ok(
        client.delete_object().bucket(&bucket).key("some/object").send().await,
        "DeleteObject",
    );
    ok(
        client.delete_bucket().bucket(&bucket).send().await,
        "DeleteBucket when empty",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_bucket_is_no_such_bucket() {
    let (_server, client) = TestServer::with_client();
    let bucket = unique_bucket("nobody");
    expect_status(client.head_bucket().bucket(&bucket).send().await, 404);
    expect_error(client.delete_bucket().bucket(&bucket).send().await, 404, "NoSuchBucket");
    expect_error(
        client.list_objects_v2().bucket(&bucket).send().await,
        404,
        "NoSuchBucket",
    );
    expect_error(
        client.get_object().bucket(&bucket).key("k").send().await,
        404,
        "NoSuchBucket",
    );
    expect_error(
        client
            .put_object()
            .bucket(&bucket)
            .key("k")
            .body(b"x".to_vec().into())
            .send()
            .await,
        404,
        "NoSuchBucket",
    );
    expect_error(
        client.get_bucket_location().bucket(&bucket).send().await,
        404,
        "NoSuchBucket",
    );
    expect_error(
        client.create_multipart_upload().bucket(&bucket).key("k").send().await,
        404,
        "NoSuchBucket",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_bucket_names_are_rejected() {
    let (_server, client) = TestServer::with_client();
    let too_long = "a".repeat(64);
    let invalid = [
        "UPPER",
        "ab",
        "_strata",
        "a..b",
        "-leading-dash",
        "trailing-dash-",
        "192.168.5.4",
        "has_underscore",
        too_long.as_str(),
    ];
    for name in invalid {
        let result = client.create_bucket().bucket(name).send().await;
        let info = match result {
            Ok(_) => panic!("CreateBucket {name:?} succeeded; expected 400 InvalidBucketName"),
            Err(e) => err_info(&e),
        };
        assert_eq!(
            (info.status, info.code.as_deref()),
            (400, Some("InvalidBucketName")),
            "CreateBucket {name:?}: expected 400 InvalidBucketName, got {info:?}"
        );
    }
    // Nothing invalid was created.
    let listed = ok(client.list_buckets().send().await, "ListBuckets");
    assert!(
        listed.buckets().is_empty(),
        "invalid buckets were created: {:?}",
        listed.buckets()
    );

    // The boundaries themselves are fine.
    let longest = "b".repeat(63);
    for name in ["abc", longest.as_str(), "with.dots-and-1"] {
        ok(
            client.create_bucket().bucket(name).send().await,
            &format!("CreateBucket {name:?}"),
        );
        ok(
            client.head_bucket().bucket(name).send().await,
            &format!("HeadBucket {name:?}"),
        );
    }
}
