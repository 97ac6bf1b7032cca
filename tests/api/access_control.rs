//! Access control beyond "each key owns its buckets": canonical ids, denials of anonymous and
//! foreign callers, Block Public Access (on by default; public ACLs and public policies refused,
//! `IgnorePublicAcls`), object and bucket ACLs (canned, grant headers, XML body, email grantees),
//! bucket policies (round trip, validation, principals, prefixes, Deny over Allow, Deny for a
//! non-root owner, policy status), policy conditions (`aws:SourceIp`, `aws:Referer`,
//! `aws:SecureTransport`), and presigned URLs (expired, foreign key, valid).

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use aws_sdk_s3::presigning::{PresignedRequest, PresigningConfig};
use aws_sdk_s3::types::{
    AccessControlPolicy, BucketCannedAcl, Grant, Grantee, ObjectCannedAcl, Owner, Permission,
    PublicAccessBlockConfiguration, Type,
};
use aws_sdk_s3::Client;
use serde_json::{json, Value};

use crate::fixtures::*;

const ALL_USERS: &str = "http://acs.amazonaws.com/groups/global/AllUsers";

fn image_dir() -> PathBuf {
    std::env::var_os("STRATA_TESTDATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/testdata/images")))
}

fn photo(name: &str) -> Vec<u8> {
    let path = image_dir().join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("read test image {}: {e}", path.display()))
}

/// Sets the bucket's Block Public Access flags.
async fn set_pab(client: &Client, bucket: &str, acls: bool, ignore_acls: bool, policy: bool, restrict: bool) {
    ok(
        client
            .put_public_access_block()
            .bucket(bucket)
            .public_access_block_configuration(
                PublicAccessBlockConfiguration::builder()
                    .block_public_acls(acls)
                    .ignore_public_acls(ignore_acls)
                    .block_public_policy(policy)
                    .restrict_public_buckets(restrict)
                    .build(),
            )
            .send()
            .await,
        "PutPublicAccessBlock",
    );
}

/// Turns every Block Public Access flag off for the bucket.
async fn pab_off(client: &Client, bucket: &str) {
    set_pab(client, bucket, false, false, false, false).await;
}

/// An unsigned GET of bucket/key (`key` may carry a query).
async fn anon_get(server: &TestServer, bucket: &str, key: &str, headers: &[(&str, &str)]) -> RawResponse {
    raw_request(
        "GET",
        &format!("{}/{bucket}/{key}", server.endpoint()),
        headers,
        Vec::new(),
    )
    .await
}

#[track_caller]
fn assert_denied(r: &RawResponse, what: &str) {
    assert_eq!(r.status, 403, "{what}: expected 403, got {}: {}", r.status, r.text());
    assert_eq!(r.error_code().as_deref(), Some("AccessDenied"), "{what}: {}", r.text());
}

#[track_caller]
fn assert_served(r: &RawResponse, body: &[u8], what: &str) {
    assert_eq!(r.status, 200, "{what}: expected 200, got {}: {}", r.status, r.text());
    assert!(r.body.as_ref() == body, "{what}: wrong body");
}

fn policy_doc(statements: Vec<Value>) -> String {
    json!({"Version": "2012-10-17", "Statement": statements}).to_string()
}

async fn put_policy(client: &Client, bucket: &str, policy: &str) {
    ok(
        client.put_bucket_policy().bucket(bucket).policy(policy).send().await,
        &format!("PutBucketPolicy {policy}"),
    );
}

fn canonical(id: &str) -> Grantee {
    Grantee::builder()
        .r#type(Type::CanonicalUser)
        .id(id)
        .build()
        .expect("grantee")
}

/// An AccessControlPolicy owned by `owner` with `grants` (canonical user id, permission).
fn acp(owner: &str, grants: &[(&str, Permission)]) -> AccessControlPolicy {
    let mut b = AccessControlPolicy::builder().owner(Owner::builder().id(owner).build());
    for (id, perm) in grants {
        b = b.grants(Grant::builder().grantee(canonical(id)).permission(perm.clone()).build());
    }
    b.build()
}

/// (grantee type, id or URI, permission) of each grant.
fn grants_of(grants: &[Grant]) -> Vec<(String, String, String)> {
    grants
        .iter()
        .map(|g| {
            let grantee = g.grantee().expect("grant without grantee");
            let who = grantee
                .id()
                .or(grantee.uri())
                .or(grantee.email_address())
                .unwrap_or_default()
                .to_string();
            (
                grantee.r#type().as_str().to_string(),
                who,
                g.permission().map(|p| p.as_str().to_string()).unwrap_or_default(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn canonical_user_id_is_the_access_key() {
    let (server, root, bucket) = TestServer::with_bucket("canon").await;
    put(&root, &bucket, "k", b"x".to_vec()).await;

    let acl = ok(
        root.get_object_acl().bucket(&bucket).key("k").send().await,
        "GetObjectAcl",
    );
    assert_eq!(acl.owner().and_then(|o| o.id()), Some(ROOT_ACCESS_KEY));
    let grants = grants_of(acl.grants());
    assert_eq!(
        grants,
        vec![(
            "CanonicalUser".to_string(),
            ROOT_ACCESS_KEY.to_string(),
            "FULL_CONTROL".to_string()
        )],
        "a private object: its owner has FULL_CONTROL and nobody else anything"
    );

    let bob = server.create_key("bob");
    let bc = server.client_with(&bob.access_key, &bob.secret_key);
    let bobs = new_bucket(&bc, "canonbob").await;
    put(&bc, &bobs, "b", b"y".to_vec()).await;
    let acl = ok(bc.get_bucket_acl().bucket(&bobs).send().await, "GetBucketAcl");
    assert_eq!(acl.owner().and_then(|o| o.id()), Some(bob.access_key.as_str()));
    let acl = ok(bc.get_object_acl().bucket(&bobs).key("b").send().await, "GetObjectAcl");
    assert_eq!(acl.owner().and_then(|o| o.id()), Some(bob.access_key.as_str()));
    let listed = ok(
        bc.list_objects_v2().bucket(&bobs).fetch_owner(true).send().await,
        "ListObjectsV2 fetch-owner",
    );
    assert_eq!(
        listed.contents()[0].owner().and_then(|o| o.id()),
        Some(bob.access_key.as_str())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_and_foreign_callers_are_denied() {
    let (server, root, bucket) = TestServer::with_bucket("deny").await;
    put(&root, &bucket, "private.txt", b"secret".to_vec()).await;

    let r = anon_get(&server, &bucket, "private.txt", &[]).await;
    assert_denied(&r, "anonymous GET of a private object");
    assert!(!r.text().contains("secret"));
    let r = raw_request("GET", &format!("{}/{bucket}", server.endpoint()), &[], Vec::new()).await;
    assert_denied(&r, "anonymous ListObjects");

    let bob = server.create_key("bob");
    let bc = server.client_with(&bob.access_key, &bob.secret_key);
    expect_error(
        bc.get_object().bucket(&bucket).key("private.txt").send().await,
        403,
        "AccessDenied",
    );
    expect_error(
        bc.get_object_acl().bucket(&bucket).key("private.txt").send().await,
        403,
        "AccessDenied",
    );
    expect_error(bc.get_bucket_acl().bucket(&bucket).send().await, 403, "AccessDenied");
    expect_error(bc.get_bucket_policy().bucket(&bucket).send().await, 403, "AccessDenied");
    expect_error(
        bc.put_bucket_policy()
            .bucket(&bucket)
            .policy(policy_doc(vec![json!({
                "Effect": "Allow",
                "Principal": {"AWS": [bob.access_key.clone()]},
                "Action": "s3:GetObject",
                "Resource": format!("arn:aws:s3:::{bucket}/*"),
            })]))
            .send()
            .await,
        403,
        "AccessDenied",
    );
    expect_error(
        bc.put_object_acl()
            .bucket(&bucket)
            .key("private.txt")
            .grant_read(format!("id=\"{}\"", bob.access_key))
            .send()
            .await,
        403,
        "AccessDenied",
    );
    // Still private.
    expect_error(
        bc.get_object().bucket(&bucket).key("private.txt").send().await,
        403,
        "AccessDenied",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn block_public_access_is_on_by_default() {
    let (server, root, bucket) = TestServer::with_bucket("pab").await;

    expect_error(
        root.get_public_access_block().bucket(&bucket).send().await,
        404,
        "NoSuchPublicAccessBlockConfiguration",
    );
    expect_error(
        root.put_object()
            .bucket(&bucket)
            .key("pub.txt")
            .acl(ObjectCannedAcl::PublicRead)
            .body(b"public?".to_vec().into())
            .send()
            .await,
        403,
        "AccessDenied",
    );
    expect_error(
        root.get_object().bucket(&bucket).key("pub.txt").send().await,
        404,
        "NoSuchKey",
    );
    expect_error(
        root.put_bucket_acl()
            .bucket(&bucket)
            .acl(BucketCannedAcl::PublicRead)
            .send()
            .await,
        403,
        "AccessDenied",
    );
    let public_policy = policy_doc(vec![json!({
        "Effect": "Allow",
        "Principal": "*",
        "Action": "s3:GetObject",
        "Resource": format!("arn:aws:s3:::{bucket}/*"),
    })]);
    expect_error(
        root.put_bucket_policy()
            .bucket(&bucket)
            .policy(&public_policy)
            .send()
            .await,
        403,
        "AccessDenied",
    );
    expect_error(
        root.get_bucket_policy().bucket(&bucket).send().await,
        404,
        "NoSuchBucketPolicy",
    );

    // The owner turns the block off.
    pab_off(&root, &bucket).await;
    let got = ok(
        root.get_public_access_block().bucket(&bucket).send().await,
        "GetPublicAccessBlock",
    );
    let c = got.public_access_block_configuration().expect("configuration");
    assert_eq!(
        (
            c.block_public_acls(),
            c.ignore_public_acls(),
            c.block_public_policy(),
            c.restrict_public_buckets()
        ),
        (Some(false), Some(false), Some(false), Some(false))
    );

    ok(
        root.put_object()
            .bucket(&bucket)
            .key("pub.txt")
            .acl(ObjectCannedAcl::PublicRead)
            .body(b"public now".to_vec().into())
            .send()
            .await,
        "public-read PUT with the block off",
    );
    let r = anon_get(&server, &bucket, "pub.txt", &[]).await;
    assert_served(&r, b"public now", "anonymous GET of a public-read object");

    // Its ACL says so.
    let acl = ok(
        root.get_object_acl().bucket(&bucket).key("pub.txt").send().await,
        "GetObjectAcl",
    );
    assert_eq!(acl.owner().and_then(|o| o.id()), Some(ROOT_ACCESS_KEY));
    let grants = grants_of(acl.grants());
    assert!(
        grants.contains(&("Group".into(), ALL_USERS.into(), "READ".into())),
        "public-read grants AllUsers READ: {grants:?}"
    );
    assert!(
        grants.contains(&("CanonicalUser".into(), ROOT_ACCESS_KEY.into(), "FULL_CONTROL".into())),
        "the owner keeps FULL_CONTROL: {grants:?}"
    );

    // A transform of a public-read image is public too.
    ok(
        root.put_object()
            .bucket(&bucket)
            .key("photo.jpg")
            .acl(ObjectCannedAcl::PublicRead)
            .content_type("image/jpeg")
            .body(photo("storm-1920x1280.jpg").into())
            .send()
            .await,
        "public-read JPEG",
    );
    let r = anon_get(&server, &bucket, "photo.jpg?w=50&f=png", &[]).await;
    assert_eq!(r.status, 200, "anonymous transform of a public image: {}", r.text());
    assert_eq!(r.header("content-type"), Some("image/png"));
    let img = image::load_from_memory(&r.body).expect("decode the PNG");
    assert_eq!(image::guess_format(&r.body).ok(), Some(image::ImageFormat::Png));
    assert_eq!(img.width(), 50);

    // IgnorePublicAcls: the ACL is still public, but no longer honoured.
    set_pab(&root, &bucket, false, true, false, false).await;
    assert_denied(
        &anon_get(&server, &bucket, "pub.txt", &[]).await,
        "anonymous GET with IgnorePublicAcls",
    );
    assert_denied(
        &anon_get(&server, &bucket, "photo.jpg?w=50&f=png", &[]).await,
        "anonymous transform with IgnorePublicAcls",
    );
    let acl = ok(
        root.get_object_acl().bucket(&bucket).key("pub.txt").send().await,
        "GetObjectAcl",
    );
    assert!(
        grants_of(acl.grants()).contains(&("Group".into(), ALL_USERS.into(), "READ".into())),
        "IgnorePublicAcls does not change the stored ACL"
    );
    // BlockPublicAcls alone blocks new public ACLs again.
    set_pab(&root, &bucket, true, false, false, false).await;
    expect_error(
        root.put_object_acl()
            .bucket(&bucket)
            .key("photo.jpg")
            .acl(ObjectCannedAcl::PublicReadWrite)
            .send()
            .await,
        403,
        "AccessDenied",
    );
    // Turning it all off once more serves the object anonymously again.
    pab_off(&root, &bucket).await;
    assert_served(
        &anon_get(&server, &bucket, "pub.txt", &[]).await,
        b"public now",
        "anonymous GET with the block off again",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn object_and_bucket_acl_grants() {
    let (server, root, bucket) = TestServer::with_bucket("aclgrant").await;
    put(&root, &bucket, "granted.txt", b"for bob".to_vec()).await;
    put(&root, &bucket, "private.txt", b"not for bob".to_vec()).await;
    let bob = server.create_key("bob");
    let bc = server.client_with(&bob.access_key, &bob.secret_key);

    // An object grant to bob's canonical id.
    ok(
        root.put_object_acl()
            .bucket(&bucket)
            .key("granted.txt")
            .grant_read(format!("id=\"{}\"", bob.access_key))
            .send()
            .await,
        "PutObjectAcl grant-read",
    );
    let acl = ok(
        root.get_object_acl().bucket(&bucket).key("granted.txt").send().await,
        "GetObjectAcl",
    );
    let grants = grants_of(acl.grants());
    assert!(
        grants.contains(&("CanonicalUser".into(), bob.access_key.clone(), "READ".into())),
        "bob's READ grant is listed: {grants:?}"
    );
    assert_eq!(get_bytes(&bc, &bucket, "granted.txt").await, b"for bob");
    expect_error(
        bc.get_object().bucket(&bucket).key("private.txt").send().await,
        403,
        "AccessDenied",
    );
    expect_error(bc.list_objects_v2().bucket(&bucket).send().await, 403, "AccessDenied");
    // READ on the object is not WRITE on the bucket.
    expect_error(
        bc.put_object()
            .bucket(&bucket)
            .key("granted.txt")
            .body(b"overwritten".to_vec().into())
            .send()
            .await,
        403,
        "AccessDenied",
    );

    // A bucket ACL (XML body) granting bob READ: he can list.
    ok(
        root.put_bucket_acl()
            .bucket(&bucket)
            .access_control_policy(acp(
                ROOT_ACCESS_KEY,
                &[
                    (ROOT_ACCESS_KEY, Permission::FullControl),
                    (bob.access_key.as_str(), Permission::Read),
                ],
            ))
            .send()
            .await,
        "PutBucketAcl body",
    );
    let acl = ok(root.get_bucket_acl().bucket(&bucket).send().await, "GetBucketAcl");
    assert_eq!(acl.owner().and_then(|o| o.id()), Some(ROOT_ACCESS_KEY));
    let grants = grants_of(acl.grants());
    assert!(
        grants.contains(&("CanonicalUser".into(), bob.access_key.clone(), "READ".into())),
        "{grants:?}"
    );
    assert!(
        grants.contains(&("CanonicalUser".into(), ROOT_ACCESS_KEY.into(), "FULL_CONTROL".into())),
        "{grants:?}"
    );
    let listed = ok(bc.list_objects_v2().bucket(&bucket).send().await, "bob lists");
    let keys: Vec<&str> = listed.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(keys, vec!["granted.txt", "private.txt"]);
    // Listing is not reading: the private object stays private.
    expect_error(
        bc.get_object().bucket(&bucket).key("private.txt").send().await,
        403,
        "AccessDenied",
    );
    expect_error(
        bc.put_object()
            .bucket(&bucket)
            .key("from-bob.txt")
            .body(b"hi".to_vec().into())
            .send()
            .await,
        403,
        "AccessDenied",
    );

    // WRITE on the bucket lets bob add objects.
    ok(
        root.put_bucket_acl()
            .bucket(&bucket)
            .access_control_policy(acp(
                ROOT_ACCESS_KEY,
                &[
                    (ROOT_ACCESS_KEY, Permission::FullControl),
                    (bob.access_key.as_str(), Permission::Read),
                    (bob.access_key.as_str(), Permission::Write),
                ],
            ))
            .send()
            .await,
        "PutBucketAcl with WRITE",
    );
    put(&bc, &bucket, "from-bob.txt", b"hi from bob".to_vec()).await;
    assert_eq!(get_bytes(&root, &bucket, "from-bob.txt").await, b"hi from bob");

    // Grant errors.
    expect_error(
        root.put_object_acl()
            .bucket(&bucket)
            .key("private.txt")
            .grant_read("emailAddress=\"bob@example.com\"")
            .send()
            .await,
        400,
        "UnresolvableGrantByEmailAddress",
    );
    expect_error(
        root.put_object()
            .bucket(&bucket)
            .key("both.txt")
            .acl(ObjectCannedAcl::Private)
            .grant_read(format!("id=\"{}\"", bob.access_key))
            .body(b"x".to_vec().into())
            .send()
            .await,
        400,
        "InvalidRequest",
    );
    expect_error(
        root.get_object().bucket(&bucket).key("both.txt").send().await,
        404,
        "NoSuchKey",
    );
    expect_error(
        root.put_object_acl()
            .bucket(&bucket)
            .key("private.txt")
            .acl(ObjectCannedAcl::Private)
            .grant_read(format!("id=\"{}\"", bob.access_key))
            .send()
            .await,
        400,
        "InvalidRequest",
    );
    // None of the failed calls granted bob anything.
    expect_error(
        bc.get_object().bucket(&bucket).key("private.txt").send().await,
        403,
        "AccessDenied",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bucket_policy_round_trip_and_validation() {
    let (server, root, bucket) = TestServer::with_bucket("polrt").await;
    put(&root, &bucket, "shared/x", b"shared".to_vec()).await;
    let bob = server.create_key("bob");
    let bc = server.client_with(&bob.access_key, &bob.secret_key);

    expect_error(
        root.get_bucket_policy().bucket(&bucket).send().await,
        404,
        "NoSuchBucketPolicy",
    );
    expect_error(
        root.get_bucket_policy_status().bucket(&bucket).send().await,
        404,
        "NoSuchBucketPolicy",
    );

    let policy = policy_doc(vec![json!({
        "Sid": "BobReadsShared",
        "Effect": "Allow",
        "Principal": {"AWS": [bob.access_key.clone()]},
        "Action": "s3:GetObject",
        "Resource": format!("arn:aws:s3:::{bucket}/shared/*"),
    })]);
    put_policy(&root, &bucket, &policy).await;
    let got = ok(root.get_bucket_policy().bucket(&bucket).send().await, "GetBucketPolicy");
    let text = got.policy().expect("policy text");
    assert_eq!(
        serde_json::from_str::<Value>(text).expect("GetBucketPolicy returns JSON"),
        serde_json::from_str::<Value>(&policy).unwrap(),
        "GetBucketPolicy returns the policy that was put"
    );
    assert_eq!(get_bytes(&bc, &bucket, "shared/x").await, b"shared");

    // Malformed JSON: refused, the previous policy stays in force.
    expect_error(
        root.put_bucket_policy()
            .bucket(&bucket)
            .policy("{\"Version\": \"2012-10-17\", \"Statement\": [")
            .send()
            .await,
        400,
        "MalformedPolicy",
    );
    // A Resource outside the bucket.
    expect_error(
        root.put_bucket_policy()
            .bucket(&bucket)
            .policy(policy_doc(vec![json!({
                "Effect": "Allow",
                "Principal": {"AWS": [bob.access_key.clone()]},
                "Action": "s3:GetObject",
                "Resource": "arn:aws:s3:::some-other-bucket/*",
            })]))
            .send()
            .await,
        400,
        "MalformedPolicy",
    );
    // An unknown Effect and a missing Statement.
    expect_error(
        root.put_bucket_policy()
            .bucket(&bucket)
            .policy(policy_doc(vec![json!({
                "Effect": "Perhaps",
                "Principal": {"AWS": [bob.access_key.clone()]},
                "Action": "s3:GetObject",
                "Resource": format!("arn:aws:s3:::{bucket}/*"),
            })]))
            .send()
            .await,
        400,
        "MalformedPolicy",
    );
    expect_error(
        root.put_bucket_policy()
            .bucket(&bucket)
            .policy("{\"Version\": \"2012-10-17\"}")
            .send()
            .await,
        400,
        "MalformedPolicy",
    );
    let got = ok(root.get_bucket_policy().bucket(&bucket).send().await, "GetBucketPolicy");
    assert_eq!(
        serde_json::from_str::<Value>(got.policy().unwrap()).unwrap(),
        serde_json::from_str::<Value>(&policy).unwrap(),
        "a refused policy leaves the previous one in place"
    );
    assert_eq!(get_bytes(&bc, &bucket, "shared/x").await, b"shared");

    ok(
        root.delete_bucket_policy().bucket(&bucket).send().await,
        "DeleteBucketPolicy",
    );
    expect_error(
        root.get_bucket_policy().bucket(&bucket).send().await,
        404,
        "NoSuchBucketPolicy",
    );
    expect_error(
        bc.get_object().bucket(&bucket).key("shared/x").send().await,
        403,
        "AccessDenied",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_grants_a_principal_a_prefix() {
    let (server, root, bucket) = TestServer::with_bucket("polprefix").await;
    put(&root, &bucket, "shared/x", b"shared".to_vec()).await;
    put(&root, &bucket, "private/x", b"private".to_vec()).await;
    let bob = server.create_key("bob");
    let carol = server.create_key("carol");
    let bc = server.client_with(&bob.access_key, &bob.secret_key);
    let cc = server.client_with(&carol.access_key, &carol.secret_key);

    put_policy(
        &root,
        &bucket,
        &policy_doc(vec![json!({
            "Effect": "Allow",
            "Principal": {"AWS": [bob.access_key.clone()]},
            "Action": "s3:GetObject",
            "Resource": format!("arn:aws:s3:::{bucket}/shared/*"),
        })]),
    )
    .await;

    assert_eq!(get_bytes(&bc, &bucket, "shared/x").await, b"shared");
    expect_error(
        bc.get_object().bucket(&bucket).key("private/x").send().await,
        403,
        "AccessDenied",
    );
    // Only the action named.
    expect_error(
        bc.put_object()
            .bucket(&bucket)
            .key("shared/y")
            .body(b"y".to_vec().into())
            .send()
            .await,
        403,
        "AccessDenied",
    );
    expect_error(
        bc.delete_object().bucket(&bucket).key("shared/x").send().await,
        403,
        "AccessDenied",
    );
    expect_error(bc.list_objects_v2().bucket(&bucket).send().await, 403, "AccessDenied");
    // Only the principal named.
    expect_error(
        cc.get_object().bucket(&bucket).key("shared/x").send().await,
        403,
        "AccessDenied",
    );
    assert_denied(
        &anon_get(&server, &bucket, "shared/x", &[]).await,
        "anonymous GET under a policy naming bob",
    );
    assert_eq!(get_bytes(&root, &bucket, "shared/x").await, b"shared");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deny_beats_allow_and_acl_grants() {
    let (server, root, bucket) = TestServer::with_bucket("poldeny").await;
    put(&root, &bucket, "shared/x", b"shared".to_vec()).await;
    put(&root, &bucket, "shared/secret.txt", b"secret".to_vec()).await;
    let bob = server.create_key("bob");
    let bc = server.client_with(&bob.access_key, &bob.secret_key);

    ok(
        root.put_object_acl()
            .bucket(&bucket)
            .key("shared/secret.txt")
            .grant_read(format!("id=\"{}\"", bob.access_key))
            .send()
            .await,
        "grant bob READ on the secret",
    );
    put_policy(
        &root,
        &bucket,
        &policy_doc(vec![
            json!({
                "Sid": "AllowShared",
                "Effect": "Allow",
                "Principal": {"AWS": [bob.access_key.clone()]},
                "Action": ["s3:GetObject"],
                "Resource": [format!("arn:aws:s3:::{bucket}/shared/*")],
            }),
            json!({
                "Sid": "DenySecrets",
                "Effect": "Deny",
                "Principal": {"AWS": [bob.access_key.clone()]},
                "Action": "s3:GetObject",
                "Resource": format!("arn:aws:s3:::{bucket}/shared/secret*"),
            }),
        ]),
    )
    .await;

    assert_eq!(get_bytes(&bc, &bucket, "shared/x").await, b"shared");
    expect_error(
        bc.get_object().bucket(&bucket).key("shared/secret.txt").send().await,
        403,
        "AccessDenied",
    );
    // The root key is not subject to bucket policies.
    assert_eq!(get_bytes(&root, &bucket, "shared/secret.txt").await, b"secret");

    // Without the Deny, the ACL grant alone lets bob read it.
    put_policy(
        &root,
        &bucket,
        &policy_doc(vec![json!({
            "Effect": "Allow",
            "Principal": {"AWS": [bob.access_key.clone()]},
            "Action": "s3:GetObject",
            "Resource": format!("arn:aws:s3:::{bucket}/shared/*"),
        })]),
    )
    .await;
    assert_eq!(get_bytes(&bc, &bucket, "shared/secret.txt").await, b"secret");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deny_applies_to_a_non_root_bucket_owner() {
    let (server, root) = TestServer::with_client();
    let bob = server.create_key("bob");
    let bc = server.client_with(&bob.access_key, &bob.secret_key);
    let bucket = new_bucket(&bc, "polowner").await;
    put(&bc, &bucket, "keep.txt", b"keep me".to_vec()).await;

    put_policy(
        &bc,
        &bucket,
        &policy_doc(vec![json!({
            "Sid": "NoDeletes",
            "Effect": "Deny",
            "Principal": {"AWS": [bob.access_key.clone()]},
            "Action": "s3:DeleteObject",
            "Resource": format!("arn:aws:s3:::{bucket}/*"),
        })]),
    )
    .await;
    expect_error(
        bc.delete_object().bucket(&bucket).key("keep.txt").send().await,
        403,
        "AccessDenied",
    );
    assert_eq!(get_bytes(&bc, &bucket, "keep.txt").await, b"keep me");
    // What is not denied still works for the owner.
    put(&bc, &bucket, "other.txt", b"other".to_vec()).await;
    assert_eq!(get_bytes(&bc, &bucket, "other.txt").await, b"other");
    // Root is never denied by a bucket policy.
    ok(
        root.delete_object().bucket(&bucket).key("keep.txt").send().await,
        "root DeleteObject",
    );
    expect_error(
        bc.get_object().bucket(&bucket).key("keep.txt").send().await,
        404,
        "NoSuchKey",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_status_reports_public_policies() {
    let (server, root) = TestServer::with_client();
    let bob = server.create_key("bob");
    let bucket = new_bucket(&root, "polstatus").await;
    pab_off(&root, &bucket).await;

    put_policy(
        &root,
        &bucket,
        &policy_doc(vec![json!({
            "Effect": "Allow",
            "Principal": "*",
            "Action": "s3:GetObject",
            "Resource": format!("arn:aws:s3:::{bucket}/*"),
        })]),
    )
    .await;
    let st = ok(
        root.get_bucket_policy_status().bucket(&bucket).send().await,
        "GetBucketPolicyStatus",
    );
    assert_eq!(st.policy_status().and_then(|p| p.is_public()), Some(true));

    put_policy(
        &root,
        &bucket,
        &policy_doc(vec![json!({
            "Effect": "Allow",
            "Principal": {"AWS": [bob.access_key.clone()]},
            "Action": "s3:GetObject",
            "Resource": format!("arn:aws:s3:::{bucket}/*"),
        })]),
    )
    .await;
    let st = ok(
        root.get_bucket_policy_status().bucket(&bucket).send().await,
        "GetBucketPolicyStatus",
    );
    assert_eq!(st.policy_status().and_then(|p| p.is_public()), Some(false));

    // A non-public policy is accepted with Block Public Access on (the default).
    let blocked = new_bucket(&root, "polstatus2").await;
    put_policy(
        &root,
        &blocked,
        &policy_doc(vec![json!({
            "Effect": "Allow",
            "Principal": {"AWS": [bob.access_key.clone()]},
            "Action": "s3:GetObject",
            "Resource": format!("arn:aws:s3:::{blocked}/*"),
        })]),
    )
    .await;
    let st = ok(
        root.get_bucket_policy_status().bucket(&blocked).send().await,
        "GetBucketPolicyStatus",
    );
    assert_eq!(st.policy_status().and_then(|p| p.is_public()), Some(false));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn source_ip_conditions() {
    let (server, root, bucket) = TestServer::with_bucket("polip").await;
    pab_off(&root, &bucket).await;
    put(&root, &bucket, "k", b"by address".to_vec()).await;
    let bob = server.create_key("bob");
    let bc = server.client_with(&bob.access_key, &bob.secret_key);
    ok(
        root.put_object_acl()
            .bucket(&bucket)
            .key("k")
            .grant_read(format!("id=\"{}\"", bob.access_key))
            .send()
            .await,
        "grant bob READ",
    );
    let allow_from = |cidr: &str| {
        json!({
            "Sid": "AllowFrom",
            "Effect": "Allow",
            "Principal": "*",
            "Action": "s3:GetObject",
            "Resource": format!("arn:aws:s3:::{bucket}/*"),
            "Condition": {"IpAddress": {"aws:SourceIp": cidr}},
        })
    };

    // Requests come from 127.0.0.1.
    put_policy(&root, &bucket, &policy_doc(vec![allow_from("10.0.0.0/8")])).await;
    assert_denied(
        &anon_get(&server, &bucket, "k", &[]).await,
        "anonymous GET, allowed only from 10.0.0.0/8",
    );
    put_policy(&root, &bucket, &policy_doc(vec![allow_from("127.0.0.0/8")])).await;
    assert_served(
        &anon_get(&server, &bucket, "k", &[]).await,
        b"by address",
        "anonymous GET, allowed from 127.0.0.0/8",
    );
    assert_eq!(get_bytes(&bc, &bucket, "k").await, b"by address");

    // A Deny for everyone outside 10.0.0.0/8 beats the Allow and bob's ACL grant.
    put_policy(
        &root,
        &bucket,
        &policy_doc(vec![
            allow_from("127.0.0.0/8"),
            json!({
                "Sid": "OnlyFromTen",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:*",
                "Resource": [format!("arn:aws:s3:::{bucket}"), format!("arn:aws:s3:::{bucket}/*")],
                "Condition": {"NotIpAddress": {"aws:SourceIp": "10.0.0.0/8"}},
            }),
        ]),
    )
    .await;
    assert_denied(
        &anon_get(&server, &bucket, "k", &[]).await,
        "anonymous GET under a NotIpAddress Deny",
    );
    expect_error(
        bc.get_object().bucket(&bucket).key("k").send().await,
        403,
        "AccessDenied",
    );
    // The root key is never denied by bucket policies.
    assert_eq!(get_bytes(&root, &bucket, "k").await, b"by address");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn referer_condition() {
    let (server, root, bucket) = TestServer::with_bucket("polref").await;
    pab_off(&root, &bucket).await;
    put(&root, &bucket, "img.png", b"hotlink me".to_vec()).await;
    put_policy(
        &root,
        &bucket,
        &policy_doc(vec![json!({
            "Effect": "Allow",
            "Principal": "*",
            "Action": "s3:GetObject",
            "Resource": format!("arn:aws:s3:::{bucket}/*"),
            "Condition": {"StringLike": {"aws:Referer": "http://good.example/*"}},
        })]),
    )
    .await;

    assert_served(
        &anon_get(&server, &bucket, "img.png", &[("Referer", "http://good.example/page")]).await,
        b"hotlink me",
        "anonymous GET with a matching Referer",
    );
    assert_denied(
        &anon_get(&server, &bucket, "img.png", &[("Referer", "http://evil.example/page")]).await,
        "anonymous GET with another Referer",
    );
    assert_denied(
        &anon_get(
            &server,
            &bucket,
            "img.png",
            &[("Referer", "http://good.example.evil.org/page")],
        )
        .await,
        "anonymous GET with a look-alike Referer",
    );
    assert_denied(
        &anon_get(&server, &bucket, "img.png", &[]).await,
        "anonymous GET without a Referer",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secure_transport_deny_over_plain_http() {
    let (server, root) = TestServer::with_client();
    let bob = server.create_key("bob");
    let bc = server.client_with(&bob.access_key, &bob.secret_key);
    let bucket = new_bucket(&bc, "polssl").await;
    put(&bc, &bucket, "k", b"tls only".to_vec()).await;

    // A Deny statement is not a public policy, so Block Public Access (on) lets it in.
    put_policy(
        &bc,
        &bucket,
        &policy_doc(vec![json!({
            "Sid": "TlsOnly",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:*",
            "Resource": [format!("arn:aws:s3:::{bucket}"), format!("arn:aws:s3:::{bucket}/*")],
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        })]),
    )
    .await;

    // The test server speaks plain HTTP: even the (non-root) bucket owner is denied.
    expect_error(
        bc.get_object().bucket(&bucket).key("k").send().await,
        403,
        "AccessDenied",
    );
    expect_error(bc.list_objects_v2().bucket(&bucket).send().await, 403, "AccessDenied");
    expect_error(
        bc.put_object()
            .bucket(&bucket)
            .key("k2")
            .body(b"x".to_vec().into())
            .send()
            .await,
        403,
        "AccessDenied",
    );
    // The root key is never denied by a bucket policy (S3's account root can always manage a
    // bucket that locked itself out): it can read and remove the policy.
    assert_eq!(get_bytes(&root, &bucket, "k").await, b"tls only");
    ok(
        root.delete_bucket_policy().bucket(&bucket).send().await,
        "root DeleteBucketPolicy",
    );
    assert_eq!(get_bytes(&bc, &bucket, "k").await, b"tls only");
}

async fn fetch(presigned: &PresignedRequest) -> RawResponse {
    let headers: Vec<(&str, &str)> = presigned.headers().collect();
    raw_request(presigned.method(), presigned.uri(), &headers, Vec::new()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presigned_urls_carry_their_signers_rights() {
    let (server, root, bucket) = TestServer::with_bucket("presign").await;
    put(&root, &bucket, "private.txt", b"presigned body".to_vec()).await;
    let bob = server.create_key("bob");
    let bc = server.client_with(&bob.access_key, &bob.secret_key);

    let valid = root
        .get_object()
        .bucket(&bucket)
        .key("private.txt")
        .presigned(PresigningConfig::expires_in(Duration::from_secs(300)).unwrap())
        .await
        .expect("presign");
    assert_served(&fetch(&valid).await, b"presigned body", "owner's presigned GET");

    let expired = root
        .get_object()
        .bucket(&bucket)
        .key("private.txt")
        .presigned(
            PresigningConfig::builder()
                .start_time(SystemTime::now() - Duration::from_secs(3600))
                .expires_in(Duration::from_secs(60))
                .build()
                .unwrap(),
        )
        .await
        .expect("presign");
    let r = fetch(&expired).await;
    assert_denied(&r, "expired presigned GET");
    assert!(!r.text().contains("presigned body"));

    let bobs = bc
        .get_object()
        .bucket(&bucket)
        .key("private.txt")
        .presigned(PresigningConfig::expires_in(Duration::from_secs(300)).unwrap())
        .await
        .expect("presign");
    let r = fetch(&bobs).await;
    assert_denied(&r, "bob's presigned GET of root's private object");
    assert!(!r.text().contains("presigned body"));
}

/// `transform.buckets.<b>.anonymous_presets`: anonymous callers may fetch only the listed
/// transforms of a public image; a signed owner may fetch any.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_transforms_are_limited_to_the_bucket_presets() {
    let bucket = unique_bucket("presets");
    let allowed = {
        let raw = strata::transform::parse_query("w=40&f=png")
            .expect("parse")
            .expect("a transform query");
        strata::transform::resolve(raw, None, strata::transform::SourceFormat::Jpeg).canonical()
    };
    let (server, root) = TestServer::start_with(ServerOptions {
        config_toml: Some(format!(
            "[transform.buckets.{bucket}]\nanonymous_presets = [{}]\n",
            toml_string(&allowed)
        )),
        ..Default::default()
    })
    .and_client();
    ok(root.create_bucket().bucket(&bucket).send().await, "CreateBucket");
    pab_off(&root, &bucket).await;
    ok(
        root.put_object()
            .bucket(&bucket)
            .key("photo.jpg")
            .acl(ObjectCannedAcl::PublicRead)
            .body(photo("storm-1920x1280.jpg").into())
            .send()
            .await,
        "public-read JPEG",
    );
    let r = anon_get(&server, &bucket, "photo.jpg?w=40&f=png", &[]).await;
    assert_eq!(r.status, 200, "the preset {allowed:?}: {}", r.text());
    assert_eq!(image::load_from_memory(&r.body).expect("decode").width(), 40);
    assert_denied(
        &anon_get(&server, &bucket, "photo.jpg?w=41&f=png", &[]).await,
        "anonymous transform that is not a preset",
    );
    // The original stays readable anonymously (presets restrict transforms only), and the
    // owner's signed requests are not limited to the presets.
    assert_eq!(anon_get(&server, &bucket, "photo.jpg", &[]).await.status, 200);
    let signed = SignedRequest::new("GET", format!("/{bucket}/photo.jpg?w=41&f=png"))
        .send(&server)
        .await;
    assert_eq!(
        signed.status,
        200,
        "owner's transform outside the presets: {}",
        signed.text()
    );
    assert_eq!(signed.header("content-type"), Some("image/png"));
}

/// A TOML basic string.
fn toml_string(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}
