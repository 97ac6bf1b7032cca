//! Hostile input at the edges: path-traversal and malformed keys (nothing escapes the data
//! directory, no file is named after a key), oversized header blocks, XML bodies over the
//! limit, slowloris headers, stalled bodies and the connection limit. (Cross-key access is in
//! principals.rs, presigned-URL tampering in auth.rs, the metadata limit in objects.rs.)

use std::path::Path;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::fixtures::*;

/// A generous "did not hang" bound for things configured to happen within ~2 s.
const HANG: Duration = Duration::from_secs(15);

/// Writes `bytes` (ignoring a write error: the server may close early), then reads until the
/// server closes the connection or `wait` passes. Returns what came back and whether the
/// connection was closed by the server.
async fn exchange(server: &TestServer, bytes: &[u8], wait: Duration) -> (Vec<u8>, bool) {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", server.port()))
        .await
        .expect("connect");
    let _ = stream.write_all(bytes).await;
    let mut out = Vec::new();
    let deadline = Instant::now() + wait;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return (out, false);
        }
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Err(_) => return (out, false),
            Ok(Ok(0)) | Ok(Err(_)) => return (out, true),
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
        }
    }
}

fn head_of(reply: &[u8]) -> String {
    let text = String::from_utf8_lossy(reply);
    text.chars().take(400).collect()
}

fn status_of(reply: &[u8]) -> Option<u16> {
    let text = String::from_utf8_lossy(reply);
    text.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()
}

/// GET /_strata/health without panicking on a dropped connection: the status, if any.
async fn health_partial(url: &str) -> Option<u16> {
    let request = http::Request::get(url)
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .expect("request");
    send_raw_partial(request).await.status
}

async fn still_serves(server: &mut TestServer) {
    server.assert_alive();
    assert_eq!(server.health_status().await, 200, "health check");
    ok(server.client().list_buckets().send().await, "ListBuckets");
}

/// Names of every file and directory below `dir`.
fn names_under(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for entry in entries.flatten() {
            out.push(entry.file_name().to_string_lossy().into_owned());
            if entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                stack.push(entry.path());
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_keys_stay_inside_the_store() {
    // parent/{data-*, sentinel}: a key that escaped `data` would land in or next to `sentinel`.
    let parent = tempfile::Builder::new()
        .prefix("strata-sec-")
        .tempdir()
        .expect("parent dir");
    let sentinel = parent.path().join("sentinel");
    std::fs::create_dir(&sentinel).expect("sentinel dir");
    let data = tempfile::Builder::new()
        .prefix("data-")
        .tempdir_in(parent.path())
        .expect("data dir");
    let data_name = data.path().file_name().unwrap().to_string_lossy().into_owned();
    let (mut server, client, bucket) = TestServer::start_in(data, ServerOptions::default())
        .and_bucket("hostile")
        .await;

    // (URL path after the bucket, the key it decodes to). Stored literally or refused with a
    // 4xx XML error; never a 5xx, never a file outside the store.
    let traversal: [(&str, &str); 9] = [
        ("../x-pwned", "../x-pwned"),
        ("../../etc/passwd", "../../etc/passwd"),
        ("../sentinel/pwned", "../sentinel/pwned"),
        ("../../sentinel/pwned", "../../sentinel/pwned"),
        ("../../../sentinel/pwned", "../../../sentinel/pwned"),
        ("..%2fy-pwned", "../y-pwned"),
        ("..%2F..%2Fsentinel%2Fpwned2", "../../sentinel/pwned2"),
        ("/abs/path-pwned", "/abs/path-pwned"),
        ("a/../../b-pwned", "a/../../b-pwned"),
    ];
    let mut stored = Vec::new();
    for (i, (path, key)) in traversal.iter().enumerate() {
        let body = format!("hostile body {i}").into_bytes();
        let url = format!("/{bucket}/{path}");
        let r = SignedRequest::new("PUT", &url).body(body.clone()).send(&server).await;
        eprintln!("PUT {url} → {} {}", r.status, r.error_code().unwrap_or_default());
        if r.status == 200 {
            let got = SignedRequest::new("GET", &url).send(&server).await;
            assert_eq!(got.status, 200, "GET {url} after a 200 PUT: {}", got.text());
            assert_eq!(got.body.as_ref(), body.as_slice(), "GET {url} bytes");
            stored.push(key.to_string());
        } else {
            r.assert_xml_client_error();
        }
        server.assert_alive();
    }
    eprintln!(
        "traversal keys stored literally: {} of {}",
        stored.len(),
        traversal.len()
    );

    // A traversal GET for something that was never stored is a NoSuchKey, not a file. (A
    // "%2F"-encoded slash is canonicalised differently by s3s and aws-sigv4, so that one may
    // also be refused as SignatureDoesNotMatch; either way nothing is served.)
    for path in ["../../../../../../etc/passwd", "..%2f..%2f..%2f..%2f..%2fetc%2fpasswd"] {
        let r = SignedRequest::new("GET", format!("/{bucket}/{path}"))
            .send(&server)
            .await;
        assert!(!r.text().contains("root:"), "GET {path} served /etc/passwd");
        let code = r.assert_xml_client_error();
        assert!(
            r.status == 404 && code == "NoSuchKey" || path.contains("%2f") && code == "SignatureDoesNotMatch",
            "GET {path}: {} {}",
            r.status,
            r.text()
        );
    }

    // NUL and overlong / invalid UTF-8 ("%C0%AF" is an overlong "/") are not keys: 400 with an
    // XML error, on PUT and GET alike, and nothing is stored.
    let mut problems = Vec::new();
    for path in [
        "nul%00key",
        "%00",
        "over%C0%AFlong",
        "..%C0%AF..%C0%AFetc%C0%AFpasswd",
        "bad%FFutf8",
    ] {
        let url = format!("/{bucket}/{path}");
        let put = SignedRequest::new("PUT", &url).body(b"x".to_vec()).send(&server).await;
        eprintln!("PUT {url} → {} {}", put.status, put.error_code().unwrap_or_default());
        if put.status != 400 || put.error_code().is_none() {
            problems.push(format!(
                "PUT {url}: expected 400 with an XML error, got {} {}",
                put.status,
                put.text()
            ));
        }
        let get = SignedRequest::new("GET", &url).send(&server).await;
        if !(400..500).contains(&get.status) || get.error_code().is_none() {
            problems.push(format!(
                "GET {url}: expected a 4xx XML error, got {} {}",
                get.status,
                get.text()
            ));
        }
        server.assert_alive();
    }
    // The listing is still valid XML the SDK can parse and holds only the stored keys.
    // (A stored NUL would also break the listing: XML 1.0 cannot carry U+0000.)
    let mut want = stored.clone();
    want.sort();
    match client.list_objects_v2().bucket(&bucket).send().await {
        Ok(out) => {
            let listed: Vec<String> = out
                .contents()
                .iter()
                .filter_map(|o| o.key().map(str::to_string))
                .collect();
            if listed != want {
                problems.push(format!(
                    "listing {listed:?} is not exactly the literally stored keys {want:?}"
                ));
            }
        }
        Err(e) => problems.push(format!("ListObjectsV2 of the bucket fails: {}", describe(&e))),
    }
    still_serves(&mut server).await;
    drop(client);
    let status = server.terminate();
    assert!(status.success(), "SIGTERM: {status}");

    // Nothing escaped: the sentinel is empty and parent holds only the data dir and it.
    let escaped = names_under(&sentinel);
    assert!(escaped.is_empty(), "files appeared next to the data dir: {escaped:?}");
    let mut top: Vec<String> = std::fs::read_dir(parent.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    top.sort();
    let mut want = vec![data_name, "sentinel".to_string()];
    want.sort();
    assert_eq!(top, want, "something was created next to the data dir");
    // No file or directory inside the store is named after a key.
    let inside = names_under(server.data_dir());
    let derived: Vec<&String> = inside
        .iter()
        .filter(|n| n.contains("pwned") || n.contains("passwd") || n.contains("sentinel") || n.contains(".."))
        .collect();
    assert!(
        derived.is_empty(),
        "files named after keys inside the store: {derived:?}"
    );
    assert!(
        !Path::new("/etc/passwd-pwned").exists() && !Path::new("/x-pwned").exists(),
        "a key escaped to the root filesystem"
    );
    assert!(problems.is_empty(), "malformed keys:\n{}", problems.join("\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_header_block_is_refused_without_hanging() {
    let (mut server, _client, bucket) = TestServer::with_bucket("bighead").await;
    // 100 headers of 1 KiB each: more than the 64 KiB head limit, each header well-formed.
    let mut req = format!("GET /{bucket}/k HTTP/1.1\r\nHost: 127.0.0.1:{}\r\n", server.port());
    for i in 0..100 {
        req.push_str(&format!("x-filler-{i:03}: {}\r\n", "h".repeat(1024)));
    }
    req.push_str("\r\n");
    let started = Instant::now();
    let (reply, closed) = exchange(&server, req.as_bytes(), HANG).await;
    let status = status_of(&reply);
    assert!(
        status == Some(431) || (reply.is_empty() && closed),
        "a {} KiB header block: expected 431 or a closed connection, got {:?} (closed: {closed}) {}",
        req.len() / 1024,
        status,
        head_of(&reply)
    );
    assert!(
        closed || status == Some(431),
        "server kept the connection open after an oversized head"
    );
    eprintln!(
        "oversized head: status {status:?}, closed {closed}, after {:?}",
        started.elapsed()
    );
    still_serves(&mut server).await;
}

/// DeleteObjects XML over `max_xml_body_bytes`: refused with a 4xx, and refused before the
/// whole body has been sent (the server must not wait for / buffer all of it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xml_body_over_the_limit_is_refused_early() {
    let (mut server, client, bucket) = TestServer::start_with(ServerOptions {
        config_toml: Some("[limits]\nmax_xml_body_bytes = 65536\n".into()),
        ..Default::default()
    })
    .and_bucket("bigxml")
    .await;
    put(&client, &bucket, "key-000001", b"keep me".to_vec()).await;

    let xml = |count: usize| {
        let mut s = String::from("<Delete>");
        for i in 1..=count {
            s.push_str(&format!("<Object><Key>key-{i:06}</Key></Object>"));
        }
        s.push_str("</Delete>");
        s.into_bytes()
    };
    // Within the limit, the same request works (so the refusals below are about size).
    let small = xml(10);
    assert!(small.len() < 65536);
    let r = SignedRequest::new("POST", format!("/{bucket}?delete"))
        .header("content-md5", &content_md5(&small))
        .body(small.clone())
        .send(&server)
        .await;
    assert_eq!(r.status, 200, "DeleteObjects within the limit: {}", r.text());
    put(&client, &bucket, "key-000001", b"keep me".to_vec()).await;

    // 200 KiB sent in full: a 4xx XML error.
    let big = xml(5000);
    assert!(big.len() > 150 * 1024);
    let r = SignedRequest::new("POST", format!("/{bucket}?delete"))
        .header("content-md5", &content_md5(&big))
        .body(big)
        .send_partial(&server)
        .await;
    let mut problems = Vec::new();
    let status = r.status.unwrap_or(0);
    let text = String::from_utf8_lossy(&r.body);
    if !(400..500).contains(&status) || !text.contains("<Error>") {
        problems.push(format!(
            "DeleteObjects with a 200 KiB body and a 64 KiB limit: expected a 4xx XML error \
             (MaxMessageLengthExceeded), got {:?} {text} (error {:?})",
            r.status, r.error
        ));
    }

    // 8 MiB declared, 256 KiB sent, then the client waits: the answer must come anyway.
    let huge = xml(250_000);
    assert!(huge.len() > 8 * MIB);
    let signed = SignedRequest::new("POST", format!("/{bucket}?delete"))
        .header("content-md5", &content_md5(&huge))
        .body(huge.clone());
    let bytes = signed.to_http1_bytes(&server, huge.len(), &huge[..256 * 1024]);
    let (reply, _closed) = exchange(&server, &bytes, HANG).await;
    let status = status_of(&reply);
    if !status.is_some_and(|s| (400..500).contains(&s) && s != 408) {
        problems.push(format!(
            "a DeleteObjects declaring {} bytes (limit 64 KiB), with 256 KiB sent: expected a 4xx \
             before the rest of the body, got {status:?}: {}",
            huge.len(),
            head_of(&reply)
        ));
    }

    assert_eq!(
        list_all_keys(&client, &bucket).await,
        vec!["key-000001".to_string()],
        "an over-limit DeleteObjects deleted something"
    );
    still_serves(&mut server).await;
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Slowloris: half a header line, then silence. With `header_read_timeout_secs = 2` the
/// server hangs up well within the bound.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris_headers_are_cut_off() {
    let mut server = TestServer::start_with(ServerOptions {
        config_toml: Some("[limits]\nheader_read_timeout_secs = 2\n".into()),
        ..Default::default()
    });
    let partial = format!(
        "GET /bucket/key HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nX-Slow: abc",
        server.port()
    );
    let started = Instant::now();
    let (reply, closed) = exchange(&server, partial.as_bytes(), HANG).await;
    assert!(
        closed,
        "a connection stuck in its header block was still open after {HANG:?} (header_read_timeout_secs = 2); \
         got {}",
        head_of(&reply)
    );
    if let Some(s) = status_of(&reply) {
        assert!((400..500).contains(&s), "slowloris answer: {}", head_of(&reply));
    }
    eprintln!("slowloris connection closed after {:?}", started.elapsed());

    // A connection that sends nothing at all is closed too.
    let (_, closed) = exchange(&server, b"", HANG).await;
    assert!(
        closed,
        "an idle connection that never sent a byte was still open after {HANG:?}"
    );
    still_serves(&mut server).await;
}

/// A signed PUT declares 100000 bytes and sends 10: with `body_idle_timeout_secs = 2` the
/// server gives up (RequestTimeout or a closed connection) and stores nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_body_times_out_and_stores_nothing() {
    let (mut server, client, bucket) = TestServer::start_with(ServerOptions {
        config_toml: Some("[limits]\nbody_idle_timeout_secs = 2\n".into()),
        ..Default::default()
    })
    .and_bucket("stall")
    .await;
    for (key, size) in [("stalled-big", 100_000usize), ("stalled-small", 1000)] {
        let body = random_bytes(size, 77);
        let signed = SignedRequest::new("PUT", format!("/{bucket}/{key}")).body(body.clone());
        let bytes = signed.to_http1_bytes(&server, body.len(), &body[..10]);
        let started = Instant::now();
        let (reply, closed) = exchange(&server, &bytes, HANG).await;
        let status = status_of(&reply);
        let text = String::from_utf8_lossy(&reply);
        assert!(
            closed || status.is_some(),
            "{key}: a stalled body got neither an answer nor a closed connection within {HANG:?}"
        );
        if let Some(s) = status {
            assert!(
                s == 400 && text.contains("RequestTimeout") || (400..500).contains(&s) && s != 404,
                "{key}: stalled body answered {}",
                head_of(&reply)
            );
            assert_ne!(s / 100, 2, "{key}: a stalled upload was acknowledged");
        }
        eprintln!(
            "{key}: stalled body → status {status:?}, closed {closed}, after {:?}",
            started.elapsed()
        );
        expect_status(client.head_object().bucket(&bucket).key(key).send().await, 404);
    }
    assert!(
        list_all_keys(&client, &bucket).await.is_empty(),
        "a stalled upload became visible"
    );
    let tmp = files_under(&server.data_dir().join("tmp"));
    assert!(tmp.is_empty(), "a stalled upload left files in tmp/: {tmp:?}");
    still_serves(&mut server).await;
}

/// `max_connections = 4`: four idle connections hold every slot; a fifth request still
/// completes once one of them is closed, and the server survives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_limit_queues_instead_of_failing() {
    let mut server = TestServer::start_with(ServerOptions {
        config_toml: Some("[limits]\nmax_connections = 4\n".into()),
        ..Default::default()
    });
    let mut idle = Vec::new();
    for _ in 0..4 {
        idle.push(
            tokio::net::TcpStream::connect(("127.0.0.1", server.port()))
                .await
                .expect("connect"),
        );
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let url = format!("{}/_strata/health", server.endpoint());
    let fifth = tokio::spawn(async move { raw_request("GET", &url, &[], Vec::new()).await.status });
    tokio::time::sleep(Duration::from_secs(1)).await;
    eprintln!(
        "fifth request done while four connections were idle: {}",
        fifth.is_finished()
    );
    drop(idle.pop());
    let status = tokio::time::timeout(HANG, fifth)
        .await
        .expect("fifth request still waiting after a slot was freed")
        .expect("fifth request task");
    assert_eq!(status, 200);
    server.assert_alive();
    drop(idle);
    still_serves(&mut server).await;
}

/// The same with the slots held until the header timeout closes them: nothing is freed by the
/// client, yet a waiting request completes and the server survives a burst beyond the limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_limit_with_idle_timeouts() {
    let mut server = TestServer::start_with(ServerOptions {
        config_toml: Some("[limits]\nmax_connections = 4\nheader_read_timeout_secs = 2\n".into()),
        ..Default::default()
    });
    let mut idle = Vec::new();
    for _ in 0..4 {
        idle.push(
            tokio::net::TcpStream::connect(("127.0.0.1", server.port()))
                .await
                .expect("connect"),
        );
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    // A burst of 12 requests on top of the 4 held connections.
    let mut waiting = Vec::new();
    for _ in 0..12 {
        let url = format!("{}/_strata/health", server.endpoint());
        waiting.push(tokio::spawn(async move { health_partial(&url).await }));
    }
    for w in waiting {
        let status = tokio::time::timeout(Duration::from_secs(60), w)
            .await
            .expect("a request queued behind idle connections never completed")
            .expect("request task");
        assert_eq!(status, Some(200));
    }
    server.assert_alive();
    drop(idle);
    still_serves(&mut server).await;
}
