//! Image transforms on GET/HEAD (`?w=&h=&fit=&f=&q=&dpr=`) through real signed and presigned
//! requests: geometry of every fit mode, formats and `f=auto`, EXIF orientation, the derivative
//! cache (hit on the second request, never stale after overwrite or delete, survives a
//! restart, single flight), conditional requests, and every bad input answering 4xx while
//! the server keeps serving.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use aws_sdk_s3::presigning::PresigningConfig;
use image::{GenericImageView, ImageFormat};

use crate::fixtures::*;

fn image_dir() -> PathBuf {
    std::env::var_os("STRATA_TESTDATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/testdata/images")))
}

fn photo(name: &str) -> Vec<u8> {
    let path = image_dir().join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("read test image {}: {e}", path.display()))
}

async fn bucket_with(server: &TestServer, objects: &[(&str, Vec<u8>)]) -> String {
    let client = server.client();
    let bucket = new_bucket(&client, "img").await;
    for (key, body) in objects {
        put(&client, &bucket, key, body.clone()).await;
    }
    bucket
}

async fn get(server: &TestServer, path_and_query: &str) -> RawResponse {
    SignedRequest::new("GET", path_and_query).send(server).await
}

#[track_caller]
fn decoded(resp: &RawResponse) -> (ImageFormat, u32, u32, image::DynamicImage) {
    assert_eq!(resp.status, 200, "transform failed: {}", resp.text());
    let format = image::guess_format(&resp.body).expect("response is an image");
    let img = image::load_from_memory(&resp.body).expect("decode response image");
    let (w, h) = img.dimensions();
    (format, w, h, img)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resized_webp_then_served_from_cache() {
    let server = TestServer::start();
    let bucket = bucket_with(&server, &[("photo.jpg", photo("twowings-2560x1600.jpg"))]).await;
    let path = format!("/{bucket}/photo.jpg?w=200&h=150&f=webp&q=90");

    let first = get(&server, &path).await;
    let (format, w, h, _) = decoded(&first);
    assert_eq!((format, w, h), (ImageFormat::WebP, 200, 150));
    assert_eq!(first.header("content-type"), Some("image/webp"));
    assert_eq!(first.header("x-strata-cache"), Some("miss"));
    assert_eq!(
        first.header("content-length"),
        Some(first.body.len().to_string().as_str())
    );
    assert!(first.header("last-modified").is_some());
    assert!(first.header("cache-control").is_some());

    let second = get(&server, &path).await;
    assert_eq!(second.status, 200);
    assert_eq!(second.header("x-strata-cache"), Some("hit"));
    assert_eq!(second.body, first.body, "a hit serves the same bytes");
    assert_eq!(second.header("etag"), first.header("etag"));

    // The derivative's ETag is its own: not the original's, and distinct per spec.
    let plain = SignedRequest::new("HEAD", format!("/{bucket}/photo.jpg"))
        .send(&server)
        .await;
    assert_ne!(plain.header("etag"), first.header("etag"));
    let other = get(&server, &format!("/{bucket}/photo.jpg?w=201&h=150&f=webp&q=90")).await;
    assert_eq!(other.status, 200);
    assert_ne!(other.header("etag"), first.header("etag"));

    // Parameter order does not matter: same canonical spec, same cached derivative.
    let reordered = get(&server, &format!("/{bucket}/photo.jpg?q=90&f=webp&h=150&w=200")).await;
    assert_eq!(reordered.header("x-strata-cache"), Some("hit"));
    assert_eq!(reordered.header("etag"), first.header("etag"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_fit_mode_has_its_geometry() {
    let server = TestServer::start();
    let bucket = bucket_with(
        &server,
        &[
            ("wide.jpg", photo("twowings-2560x1600.jpg")),
            ("small.webp", photo("flower-480x360.webp")),
        ],
    )
    .await;
    // 2560×1600 into a 300×300 box.
    let cases: [(&str, (u32, u32)); 5] = [
        ("fit=cover", (300, 300)),
        ("fit=contain", (300, 300)),
        ("fit=fill", (300, 300)),
        ("fit=inside", (300, 188)),
        ("fit=outside", (480, 300)),
    ];
    for (fit, (ew, eh)) in cases {
        let resp = get(&server, &format!("/{bucket}/wide.jpg?w=300&h=300&{fit}&f=png")).await;
        let (format, w, h, _) = decoded(&resp);
        assert_eq!(format, ImageFormat::Png, "{fit}");
        assert_eq!(w, ew, "{fit}: width");
        assert!(h.abs_diff(eh) <= 1, "{fit}: height {h}, expected {eh}");
    }
    // One dimension keeps the aspect ratio; dpr multiplies.
    let (_, w, h, _) = decoded(&get(&server, &format!("/{bucket}/wide.jpg?w=160&f=jpeg")).await);
    assert_eq!((w, h), (160, 100));
    let (_, w, h, _) = decoded(&get(&server, &format!("/{bucket}/wide.jpg?h=50&dpr=2&f=jpeg")).await);
    assert_eq!((w, h), (160, 100));
    // inside never enlarges a smaller source.
    let (_, w, h, _) = decoded(&get(&server, &format!("/{bucket}/small.webp?w=1000&h=1000&fit=inside")).await);
    assert_eq!((w, h), (480, 360));
    // contain letterboxes: the padding of a PNG is transparent by default.
    let (_, _, _, img) = decoded(&get(&server, &format!("/{bucket}/wide.jpg?w=300&h=300&fit=contain&f=png")).await);
    assert_eq!(img.get_pixel(150, 2).0[3], 0, "letterbox band is transparent");
    assert_eq!(img.get_pixel(150, 150).0[3], 255, "picture area is opaque");
}

/// Mean absolute difference of two RGB images of the same size.
fn mean_diff(a: &image::RgbImage, b: &image::RgbImage) -> f64 {
    assert_eq!(a.dimensions(), b.dimensions());
    let total: u64 = a
        .as_raw()
        .iter()
        .zip(b.as_raw())
        .map(|(x, y)| x.abs_diff(*y) as u64)
        .sum();
    total as f64 / a.as_raw().len() as f64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exif_orientation_is_applied_before_resizing() {
    let server = TestServer::start();
    let original = photo("hopper-exif-orientation6.jpg");
    let bucket = bucket_with(&server, &[("hopper.jpg", original.clone())]).await;
    let resp = get(&server, &format!("/{bucket}/hopper.jpg?w=128&h=128&f=png")).await;
    let (_, w, h, img) = decoded(&resp);
    assert_eq!((w, h), (128, 128));
    let out = img.to_rgb8();
    // The stored pixels, as decoded without looking at EXIF, and the same rotated 90° clockwise
    // (what Orientation=6 asks a viewer to do).
    let stored = image::load_from_memory(&original).expect("decode original").to_rgb8();
    let rotated = image::imageops::rotate90(&stored);
    let d_rotated = mean_diff(&out, &rotated);
    let d_stored = mean_diff(&out, &stored);
    assert!(
        d_rotated < 6.0 && d_rotated * 3.0 < d_stored,
        "output should match the rotated original (diff {d_rotated:.1}) far better than the stored one (diff {d_stored:.1})"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alpha_survives_where_the_format_has_it_and_jpeg_flattens() {
    let server = TestServer::start();
    let bucket = bucket_with(&server, &[("gulp.png", photo("gulp-alpha-1920x1200.png"))]).await;
    for f in ["webp", "png"] {
        let (_, _, _, img) = decoded(&get(&server, &format!("/{bucket}/gulp.png?w=192&f={f}")).await);
        let rgba = img.to_rgba8();
        assert!(rgba.pixels().any(|p| p.0[3] < 255), "{f} keeps transparency");
    }
    let resp = get(&server, &format!("/{bucket}/gulp.png?w=192&f=jpeg")).await;
    let (format, w, h, img) = decoded(&resp);
    assert_eq!((format, w, h), (ImageFormat::Jpeg, 192, 120));
    assert!(!img.color().has_alpha());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_format_follows_accept() {
    let server = TestServer::start();
    let bucket = bucket_with(
        &server,
        &[
            ("p.jpg", photo("twowings-2560x1600.jpg")),
            ("g.gif", photo("hopper.gif")),
        ],
    )
    .await;
    let path = format!("/{bucket}/p.jpg?w=100&f=auto");
    let webp = SignedRequest::new("GET", &path)
        .header("accept", "image/avif,image/webp,image/apng,*/*;q=0.8")
        .send(&server)
        .await;
    assert_eq!(decoded(&webp).0, ImageFormat::WebP);
    assert_eq!(webp.header("vary"), Some("Accept"));
    let jpeg = SignedRequest::new("GET", &path)
        .header("accept", "image/jpeg")
        .send(&server)
        .await;
    assert_eq!(decoded(&jpeg).0, ImageFormat::Jpeg);
    assert_eq!(jpeg.header("vary"), Some("Accept"));
    assert_ne!(
        webp.header("etag"),
        jpeg.header("etag"),
        "each negotiated format is its own derivative"
    );
    let refused = SignedRequest::new("GET", &path)
        .header("accept", "image/webp;q=0, image/jpeg")
        .send(&server)
        .await;
    assert_eq!(decoded(&refused).0, ImageFormat::Jpeg, "q=0 means not acceptable");
    // An explicit format has no Vary; a GIF source becomes the requested format.
    let explicit = get(&server, &format!("/{bucket}/g.gif?w=64&f=png")).await;
    assert_eq!(decoded(&explicit).0, ImageFormat::Png);
    assert_eq!(explicit.header("vary"), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conditional_requests_answer_304_and_412() {
    let server = TestServer::start();
    let bucket = bucket_with(&server, &[("p.jpg", photo("storm-1920x1280.jpg"))]).await;
    let path = format!("/{bucket}/p.jpg?w=120&f=webp");
    let first = get(&server, &path).await;
    assert_eq!(first.status, 200);
    let etag = first.header("etag").expect("etag").to_string();
    let again = SignedRequest::new("GET", &path)
        .header("if-none-match", &etag)
        .send(&server)
        .await;
    assert_eq!(again.status, 304);
    assert!(again.body.is_empty());
    let head = SignedRequest::new("HEAD", &path)
        .header("if-none-match", &etag)
        .send(&server)
        .await;
    assert_eq!(head.status, 304);
    let other = SignedRequest::new("GET", &path)
        .header("if-none-match", "\"nope\"")
        .send(&server)
        .await;
    assert_eq!(other.status, 200);
    let failed = SignedRequest::new("GET", &path)
        .header("if-match", "\"nope\"")
        .send(&server)
        .await;
    assert_eq!(failed.status, 412);
    let modified = first.header("last-modified").expect("last-modified").to_string();
    let since = SignedRequest::new("GET", &path)
        .header("if-modified-since", &modified)
        .send(&server)
        .await;
    assert_eq!(since.status, 304);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overwrite_and_delete_never_serve_a_stale_derivative() {
    let (server, client) = TestServer::with_client();
    let bucket = bucket_with(&server, &[("pic", photo("twowings-2560x1600.jpg"))]).await;
    let path = format!("/{bucket}/pic?w=100&f=png");
    let (_, w, h, _) = decoded(&get(&server, &path).await);
    assert_eq!((w, h), (100, 63));
    assert_eq!(get(&server, &path).await.header("x-strata-cache"), Some("hit"));

    put(&client, &bucket, "pic", photo("flower-480x360.webp")).await;
    let after = get(&server, &path).await;
    let (_, w, h, _) = decoded(&after);
    assert_eq!(
        (w, h),
        (100, 75),
        "the new original's derivative, not the cached old one"
    );
    assert_eq!(after.header("x-strata-cache"), Some("miss"));

    ok(client.delete_object().bucket(&bucket).key("pic").send().await, "delete");
    let gone = get(&server, &path).await;
    assert_eq!(gone.status, 404);
    assert_eq!(gone.error_code().as_deref(), Some("NoSuchKey"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn head_returns_the_derivatives_headers() {
    let server = TestServer::start();
    let bucket = bucket_with(&server, &[("p.jpg", photo("storm-1920x1280.jpg"))]).await;
    let path = format!("/{bucket}/p.jpg?w=50&f=png");
    let head = SignedRequest::new("HEAD", &path).send(&server).await;
    assert_eq!(head.status, 200);
    assert_eq!(head.header("content-type"), Some("image/png"));
    let body = get(&server, &path).await;
    assert_eq!(
        head.header("content-length"),
        Some(body.body.len().to_string().as_str())
    );
    assert_eq!(head.header("etag"), body.header("etag"));
    assert_eq!(body.header("x-strata-cache"), Some("hit"), "HEAD made the derivative");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presigned_urls_cover_the_transform_parameters() {
    let (server, client) = TestServer::with_client();
    let bucket = bucket_with(&server, &[("p.jpg", photo("twowings-2560x1600.jpg"))]).await;
    let presigned = client
        .get_object()
        .bucket(&bucket)
        .key("p.jpg")
        .customize()
        .mutate_request(|req| {
            let uri = format!("{}&w=200&h=150&f=webp&q=90", req.uri());
            req.set_uri(uri).expect("valid uri");
        })
        .presigned(PresigningConfig::expires_in(Duration::from_secs(300)).expect("presigning config"))
        .await
        .expect("presign");
    assert!(presigned.uri().contains("w=200"), "{}", presigned.uri());
    let resp = raw_request("GET", presigned.uri(), &[], Vec::new()).await;
    let (format, w, h, _) = decoded(&resp);
    assert_eq!((format, w, h), (ImageFormat::WebP, 200, 150));

    let tampered = presigned.uri().replace("w=200", "w=2000");
    let denied = raw_request("GET", &tampered, &[], Vec::new()).await;
    assert_eq!(
        denied.status, 403,
        "changing a signed transform parameter must be refused"
    );
    // Anonymous transform requests are refused like anonymous GETs.
    let anonymous = raw_request(
        "GET",
        &format!("{}/{bucket}/p.jpg?w=10", server.endpoint()),
        &[],
        Vec::new(),
    )
    .await;
    assert_eq!(anonymous.status, 403);
}

/// A PNG whose header claims `w`×`h` pixels, with a tiny (invalid) data stream.
fn png_claiming(w: u32, h: u32) -> Vec<u8> {
    fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let mut crc_input = kind.to_vec();
        crc_input.extend_from_slice(data);
        out.extend_from_slice(&crc_input);
        out.extend_from_slice(&s3s::crypto::Crc32::checksum_u32(&crc_input).to_be_bytes());
    }
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&w.to_be_bytes());
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 6, 0, 0, 0]);
    chunk(&mut out, b"IHDR", &ihdr);
    chunk(&mut out, b"IDAT", &[0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01]);
    chunk(&mut out, b"IEND", &[]);
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_answers_4xx_and_the_server_keeps_serving() {
    let server = TestServer::start();
    let jpeg = photo("twowings-2560x1600.jpg");
    let bucket = bucket_with(
        &server,
        &[
            ("p.jpg", jpeg.clone()),
            ("notes.txt", b"just some text, not an image".to_vec()),
            ("truncated.jpg", jpeg[..jpeg.len() / 3].to_vec()),
            ("bomb.png", png_claiming(30_000, 30_000)),
            ("garbage.png", b"\x89PNG\r\n\x1a\nthis is not a png at all".to_vec()),
        ],
    )
    .await;
    let invalid = [
        ("p.jpg?w=100&zoom=2", "zoom"),
        ("p.jpg?w=0", "w"),
        ("p.jpg?w=9000", "w"),
        ("p.jpg?w=abc", "w"),
        ("p.jpg?w=100&f=bmp", "f"),
        ("p.jpg?w=100&q=101", "q"),
        ("p.jpg?w=100&fit=squash", "fit"),
        ("p.jpg?w=100&dpr=9", "dpr"),
    ];
    for (query, param) in invalid {
        let resp = get(&server, &format!("/{bucket}/{query}")).await;
        assert_eq!(resp.status, 400, "{query}: {}", resp.text());
        assert_eq!(resp.error_code().as_deref(), Some("InvalidArgument"), "{query}");
        assert!(
            resp.text().contains(param),
            "{query}: message should name `{param}`: {}",
            resp.text()
        );
    }
    let text = get(&server, &format!("/{bucket}/notes.txt?w=100")).await;
    assert_eq!(text.status, 415, "{}", text.text());
    text.assert_xml_client_error();

    let truncated = get(&server, &format!("/{bucket}/truncated.jpg?w=100")).await;
    truncated.assert_xml_client_error();

    let started = Instant::now();
    let bomb = get(&server, &format!("/{bucket}/bomb.png?w=100")).await;
    let code = bomb.assert_xml_client_error();
    assert_eq!(bomb.status, 413, "30000×30000 is over the 50 MP limit: {code}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "rejected from the header, not by decoding"
    );

    let garbage = get(&server, &format!("/{bucket}/garbage.png?w=100")).await;
    garbage.assert_xml_client_error();

    let with_range = SignedRequest::new("GET", format!("/{bucket}/p.jpg?w=100"))
        .header("range", "bytes=0-10")
        .send(&server)
        .await;
    assert_eq!(with_range.status, 400);

    // Still serving, and the original is untouched.
    assert_eq!(server.health_status().await, 200);
    assert_eq!(get_bytes(&server.client(), &bucket, "p.jpg").await, jpeg);
    let (_, w, _, _) = decoded(&get(&server, &format!("/{bucket}/p.jpg?w=64&f=jpeg")).await);
    assert_eq!(w, 64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identical_concurrent_misses_compute_once() {
    let server = TestServer::start();
    let bucket = bucket_with(&server, &[("p.jpg", photo("twowings-2560x1600.jpg"))]).await;
    let path = format!("/{bucket}/p.jpg?w=333&h=222&f=webp");
    let requests = (0..8).map(|_| get(&server, &path));
    let responses = futures::future::join_all(requests).await;
    let misses = responses
        .iter()
        .inspect(|r| assert_eq!(r.status, 200, "{}", r.text()))
        .filter(|r| r.header("x-strata-cache") == Some("miss"))
        .count();
    assert_eq!(misses, 1, "one request computes; the others share its result");
    let etags: std::collections::HashSet<_> = responses.iter().map(|r| r.header("etag")).collect();
    assert_eq!(etags.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_transform_queue_answers_slow_down() {
    let server = TestServer::start_with(ServerOptions {
        config_toml: Some("[transform]\nworkers = 1\nqueue = 0\n".into()),
        ..Default::default()
    });
    let bucket = bucket_with(&server, &[("p.jpg", photo("twowings-2560x1600.jpg"))]).await;
    // Distinct sizes: no single flight, each needs the one worker.
    let requests = (0..6).map(|i| {
        let path = format!("/{bucket}/p.jpg?w={}&f=png", 1000 + i);
        let server = &server;
        async move { get(server, &path).await }
    });
    let responses = futures::future::join_all(requests).await;
    let busy = responses.iter().filter(|r| r.status == 503).count();
    let served = responses.iter().filter(|r| r.status == 200).count();
    assert_eq!(busy + served, responses.len(), "only 200 or 503");
    assert!(
        busy >= 1,
        "with one worker and no queue, concurrent transforms are turned away"
    );
    assert!(served >= 1);
    for r in responses.iter().filter(|r| r.status == 503) {
        assert_eq!(r.error_code().as_deref(), Some("SlowDown"));
    }
    assert_eq!(server.health_status().await, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cache_survives_a_restart() {
    let mut server = TestServer::start();
    let bucket = bucket_with(&server, &[("p.jpg", photo("storm-1920x1280.jpg"))]).await;
    let path = format!("/{bucket}/p.jpg?w=90&f=jpeg");
    let before = get(&server, &path).await;
    assert_eq!(before.header("x-strata-cache"), Some("miss"));
    server.restart();
    let after = get(&server, &path).await;
    assert_eq!(after.header("x-strata-cache"), Some("hit"));
    assert_eq!(after.body, before.body);
}
