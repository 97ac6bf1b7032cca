//! Built-in TLS: the SDK over https with a `strata dev-cert` certificate as its only trust
//! anchor, HTTP/2 by ALPN, certificate reload on SIGHUP (open connections keep working; a
//! bad reload keeps the old certificate), start-up errors that name the file,
//! `aws:SecureTransport` on the https and the plain listener, redirects to https, and the
//! first-bytes bound for TLS connections; SIGHUP without TLS does not stop the server.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::json;

use crate::fixtures::*;

fn tls_options() -> ServerOptions {
    ServerOptions {
        tls: true,
        ..ServerOptions::default()
    }
}

fn cert_der(path: &Path) -> CertificateDer<'static> {
    CertificateDer::from_pem_file(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// A TLS client (ring, HTTP/1.1 by ALPN, no session resumption) that trusts exactly `anchors`.
fn tls_connector(anchors: &[CertificateDer<'static>]) -> tokio_rustls::TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    for a in anchors {
        roots.add(a.clone()).expect("trust anchor");
    }
    let mut config = rustls::ClientConfig::builder_with_provider(strata::http::tls::provider())
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    // A resumed session presents no certificate (the client reports the first session's).
    config.resumption = rustls::client::Resumption::disabled();
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

/// An open HTTP/1.1-over-TLS connection and the certificate the server presented on it.
struct Conn {
    sender: hyper::client::conn::http1::SendRequest<Empty<Bytes>>,
    presented: CertificateDer<'static>,
}

async fn connect(port: u16, connector: &tokio_rustls::TlsConnector) -> Conn {
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    let name = ServerName::try_from("127.0.0.1").expect("server name");
    let tls = connector.connect(name, tcp).await.expect("TLS handshake");
    let presented = tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
        .expect("a presented certificate")
        .clone()
        .into_owned();
    let (sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls))
        .await
        .expect("HTTP/1.1 handshake");
    tokio::spawn(conn);
    Conn { sender, presented }
}

async fn health_on(conn: &mut Conn) -> u16 {
    let req = http::Request::builder()
        .uri("/_strata/health")
        .header("host", "127.0.0.1")
        .body(Empty::<Bytes>::new())
        .expect("request");
    let resp = tokio::time::timeout(Duration::from_secs(30), conn.sender.send_request(req))
        .await
        .expect("health request timed out")
        .expect("health request on the connection");
    let status = resp.status().as_u16();
    let _ = resp.into_body().collect().await;
    status
}

fn sighup(server: &TestServer) {
    let pid = server.pid().expect("server running");
    let status = Command::new("kill")
        .args(["-HUP", &pid.to_string()])
        .status()
        .expect("run kill -HUP");
    assert!(status.success(), "kill -HUP failed: {status}");
}

/// `curl --cacert CERT` for `url`: returns (exit code, stdout, stderr).
fn curl(args: &[&str]) -> (i32, String, String) {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "30"])
        .args(args)
        .output()
        .expect("run curl (is it installed?)");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_round_trip_over_https() {
    let server = TestServer::start_with(tls_options());
    assert!(server.endpoint().starts_with("https://"), "{}", server.endpoint());
    let client = server.client();
    let bucket = new_bucket(&client, "tls").await;
    let body = random_bytes(300 * 1024, 7);
    let etag = put(&client, &bucket, "dir/big.bin", body.clone()).await;
    assert_eq!(etag, etag_of(&body));
    put(&client, &bucket, "small.txt", b"hello over TLS".to_vec()).await;
    assert_eq!(get_bytes(&client, &bucket, "dir/big.bin").await, body);
    assert_eq!(get_bytes(&client, &bucket, "small.txt").await, b"hello over TLS");
    assert_eq!(
        list_all_keys(&client, &bucket).await,
        vec!["dir/big.bin".to_string(), "small.txt".to_string()]
    );

    // Verification is on: a client that trusts another certificate is refused.
    let dir = tempfile::tempdir().expect("tempdir");
    let (other_cert, other_key) = (dir.path().join("other.pem"), dir.path().join("other.key"));
    dev_cert(&other_cert, &other_key);
    let stranger = sdk_client_trusting(
        &server.endpoint(),
        ROOT_ACCESS_KEY,
        ROOT_SECRET_KEY,
        std::fs::read(&other_cert).expect("read"),
    );
    let refused = stranger.list_buckets().send().await;
    assert!(refused.is_err(), "a client trusting another certificate connected");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_is_negotiated_by_alpn() {
    let server = TestServer::start_with(tls_options());
    let url = format!("{}/_strata/health", server.endpoint());
    let ca = server.tls_cert_path();
    let ca = ca.to_str().expect("UTF-8 path");
    let (code, version, err) = curl(&[
        "--http2",
        "--cacert",
        ca,
        "-o",
        "/dev/null",
        "-w",
        "%{http_version}",
        &url,
    ]);
    assert_eq!((code, version.as_str()), (0, "2"), "curl --http2: {err}");
    let (code, version, err) = curl(&[
        "--http1.1",
        "--cacert",
        ca,
        "-o",
        "/dev/null",
        "-w",
        "%{http_version}",
        &url,
    ]);
    assert_eq!((code, version.as_str()), (0, "1.1"), "curl --http1.1: {err}");
    // Without the certificate, curl does not trust the server.
    let (code, _, err) = curl(&["-o", "/dev/null", &url]);
    assert_eq!(code, 60, "curl without --cacert should fail verification (60): {err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_the_certificate_and_keeps_open_connections() {
    let server = TestServer::start_with(ServerOptions {
        tls: true,
        capture_stderr: true,
        ..ServerOptions::default()
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let (b_cert, b_key) = (dir.path().join("b.pem"), dir.path().join("b.key"));
    dev_cert(&b_cert, &b_key);
    let a = cert_der(&server.tls_cert_path());
    let b = cert_der(&b_cert);
    assert_ne!(a, b);
    let connector = tls_connector(&[a.clone(), b.clone()]);

    let mut kept = connect(server.port(), &connector).await;
    assert_eq!(kept.presented, a, "the server starts with certificate A");
    assert_eq!(health_on(&mut kept).await, 200);

    std::fs::copy(&b_key, server.tls_key_path()).expect("install key B");
    std::fs::copy(&b_cert, server.tls_cert_path()).expect("install cert B");
    sighup(&server);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let mut fresh = connect(server.port(), &connector).await;
        if fresh.presented == b {
            assert_eq!(health_on(&mut fresh).await, 200);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no new connection saw certificate B after SIGHUP"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The connection opened before the reload still works.
    assert_eq!(health_on(&mut kept).await, 200);

    // A reload from a broken file logs an error and keeps certificate B.
    std::fs::write(server.tls_cert_path(), "-----BEGIN CERTIFICATE-----\nnot base64!\n").expect("break cert");
    sighup(&server);
    let deadline = Instant::now() + Duration::from_secs(20);
    while !server.stderr_log().contains("TLS reload failed") {
        assert!(
            Instant::now() < deadline,
            "no reload error logged; stderr:\n{}",
            server.stderr_log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        server.stderr_log().contains("tls-cert.pem"),
        "the reload error names the file:\n{}",
        server.stderr_log()
    );
    let mut after = connect(server.port(), &connector).await;
    assert_eq!(after.presented, b, "a failed reload keeps the previous certificate");
    assert_eq!(health_on(&mut after).await, 200);
    assert_eq!(health_on(&mut kept).await, 200);
}

#[test]
fn bad_certificate_files_fail_start_up_naming_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = |name: &str| dir.path().join(name);
    dev_cert(&p("good.pem"), &p("good.key"));
    dev_cert(&p("other.pem"), &p("other.key"));
    std::fs::write(
        p("bad.pem"),
        "-----BEGIN CERTIFICATE-----\nthis is not base64 @@@\n-----END CERTIFICATE-----\n",
    )
    .expect("write bad.pem");
    std::fs::write(p("empty.key"), "no pem sections here\n").expect("write empty.key");

    let cases = [
        ("bad.pem", "good.key", "bad.pem"),
        ("missing.pem", "good.key", "missing.pem"),
        ("good.pem", "empty.key", "empty.key"),
        ("good.pem", "other.key", "other.key"),
    ];
    for (cert, key, named) in cases {
        let data = p("data");
        let out = run_strata_tool(&[
            "serve".as_ref(),
            "--listen".as_ref(),
            "127.0.0.1:0".as_ref(),
            "--data".as_ref(),
            data.as_os_str(),
            "--tls-cert".as_ref(),
            p(cert).as_os_str(),
            "--tls-key".as_ref(),
            p(key).as_os_str(),
        ]);
        assert!(
            !out.status.success(),
            "serve with cert {cert} and key {key} started (it must not); stdout:\n{}",
            out.stdout
        );
        assert!(
            out.stderr.contains(named),
            "the error for cert {cert} / key {key} does not name {named}:\n{}",
            out.stderr
        );
        assert!(!out.stdout.contains("listening on"), "{}", out.stdout);
    }
    // Sanity: the good pair starts (proved by the other tests); a key that does not match
    // says so.
    let out = run_strata_tool(&[
        "serve".as_ref(),
        "--listen".as_ref(),
        "127.0.0.1:0".as_ref(),
        "--data".as_ref(),
        p("data").as_os_str(),
        "--tls-cert".as_ref(),
        p("good.pem").as_os_str(),
        "--tls-key".as_ref(),
        p("other.key").as_os_str(),
    ]);
    assert!(out.stderr.contains("does not match"), "{}", out.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secure_transport_is_true_over_https_only() {
    let server = TestServer::start_with(ServerOptions {
        tls: true,
        config_toml: Some("[tls]\nhttp_listen = \"127.0.0.1:0\"\n".into()),
        ..ServerOptions::default()
    });
    // A non-root owner (the root key is never denied by a bucket policy).
    let bob = server.create_key("bob");
    let https = server.client_with(&bob.access_key, &bob.secret_key);
    let plain = sdk_client(&server.plain_endpoint(), &bob.access_key, &bob.secret_key);
    let bucket = new_bucket(&https, "securetransport").await;
    put(&https, &bucket, "k", b"secret".to_vec()).await;
    // Before the policy the plain listener serves the owner.
    assert_eq!(get_bytes(&plain, &bucket, "k").await, b"secret");

    let policy = json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "TlsOnly",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:*",
            "Resource": [format!("arn:aws:s3:::{bucket}"), format!("arn:aws:s3:::{bucket}/*")],
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        }],
    })
    .to_string();
    ok(
        https.put_bucket_policy().bucket(&bucket).policy(policy).send().await,
        "PutBucketPolicy over https",
    );

    assert_eq!(get_bytes(&https, &bucket, "k").await, b"secret");
    put(&https, &bucket, "k2", b"also over TLS".to_vec()).await;
    expect_error(
        plain.get_object().bucket(&bucket).key("k").send().await,
        403,
        "AccessDenied",
    );
    expect_error(
        plain
            .put_object()
            .bucket(&bucket)
            .key("k3")
            .body(b"x".to_vec().into())
            .send()
            .await,
        403,
        "AccessDenied",
    );
    expect_error(
        plain.list_objects_v2().bucket(&bucket).send().await,
        403,
        "AccessDenied",
    );
    assert_eq!(
        list_all_keys(&https, &bucket).await,
        vec!["k".to_string(), "k2".to_string()]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_listener_redirects_to_https() {
    let server = TestServer::start_with(ServerOptions {
        tls: true,
        config_toml: Some("[tls]\nhttp_listen = \"127.0.0.1:0\"\nredirect_http = true\n".into()),
        ..ServerOptions::default()
    });
    let plain = server.plain_endpoint();
    let resp = raw_request("GET", &format!("{plain}/photos/cat.jpg?w=200&h=100"), &[], Vec::new()).await;
    assert_eq!(resp.status, 301, "{}", resp.text());
    assert_eq!(
        resp.headers.get("location").and_then(|v| v.to_str().ok()),
        Some(format!("{}/photos/cat.jpg?w=200&h=100", server.endpoint()).as_str())
    );
    let resp = raw_request("PUT", &format!("{plain}/photos/new.jpg"), &[], b"body".to_vec()).await;
    assert_eq!(resp.status, 308);
    assert_eq!(
        resp.headers.get("location").and_then(|v| v.to_str().ok()),
        Some(format!("{}/photos/new.jpg", server.endpoint()).as_str())
    );
    // The redirect target serves.
    let ca = server.tls_cert_path();
    let (code, status, err) = curl(&[
        "-L",
        "--cacert",
        ca.to_str().expect("UTF-8 path"),
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        &format!("{plain}/_strata/health"),
    ]);
    assert_eq!((code, status.as_str()), (0, "200"), "curl -L: {err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_tls_clients_are_disconnected() {
    let server = TestServer::start_with(ServerOptions {
        tls: true,
        config_toml: Some("[limits]\nheader_read_timeout_secs = 1\n".into()),
        ..ServerOptions::default()
    });
    use tokio::io::AsyncReadExt;
    // Connects and never starts a handshake.
    let started = Instant::now();
    let mut tcp = tokio::net::TcpStream::connect(("127.0.0.1", server.port()))
        .await
        .expect("connect");
    let mut buf = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(10), tcp.read_to_end(&mut buf)).await;
    assert!(closed.is_ok(), "a client that sent nothing was not disconnected");
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "{:?}",
        started.elapsed()
    );

    // Completes the handshake, then sends no request.
    let connector = tls_connector(&[cert_der(&server.tls_cert_path())]);
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", server.port()))
        .await
        .expect("connect");
    let name = ServerName::try_from("127.0.0.1").expect("server name");
    let mut tls = connector.connect(name, tcp).await.expect("handshake");
    let mut buf = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(10), tls.read_to_end(&mut buf)).await;
    assert!(
        closed.is_ok(),
        "a client that completed a handshake and sent nothing was not disconnected"
    );

    // The server still serves.
    let mut conn = connect(server.port(), &connector).await;
    assert_eq!(health_on(&mut conn).await, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_without_tls_is_ignored() {
    let mut server = TestServer::start();
    sighup(&server);
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.assert_alive();
    assert_eq!(server.health_status().await, 200);
}
