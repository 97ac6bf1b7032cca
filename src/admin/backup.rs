//! The admin API's `POST /_strata/admin/backup?to=DIR`: starts a backup on a blocking thread
//! and streams its [`Progress`] as NDJSON lines (one JSON object per line) in the response
//! body, ending with a `done` or an `error` line. Checks that fail before anything is written
//! are ordinary errors instead (409 while another backup runs, 400 for a bad target).

use std::path::Path;

use bytes::Bytes;
use http::StatusCode;
use http_body_util::StreamBody;
use hyper::body::Frame;
use s3s::{Body, S3Response, S3Result};

use crate::backup::{Backup, BackupError, Progress};
use crate::store::Store;
use crate::util::errors;

/// Progress lines buffered between the backup thread and a slow client; when full, the
/// backup thread waits (it reports only every 200 ms, so this is never the bottleneck).
const LINES_BUFFERED: usize = 64;

fn line(p: &Progress) -> Bytes {
    let mut v = serde_json::to_vec(p).unwrap_or_else(|_| b"{\"phase\":\"error\"}".to_vec());
    v.push(b'\n');
    Bytes::from(v)
}

pub fn start(store: &Store, to: &str) -> S3Result<S3Response<Body>> {
    let backup = match Backup::start(store, Path::new(to)) {
        Ok(b) => b,
        Err(BackupError::Busy) => return Err(errors::operation_aborted("A backup is already running")),
        Err(BackupError::Target(m)) => return Err(errors::invalid_argument(m)),
        Err(e) => return Err(crate::s3::errors::internal("backup", e)),
    };
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(LINES_BUFFERED);
    tokio::task::spawn_blocking(move || {
        let mut report = |p: Progress| {
            let _ = tx.blocking_send(line(&p));
        };
        let last = match backup.run(&mut report) {
            Ok(summary) => {
                tracing::info!(%summary, "backup finished");
                Progress::Done {
                    summary: summary.to_string(),
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "backup failed");
                Progress::Error { message: e.to_string() }
            }
        };
        report(last);
    });
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|b| (Ok::<_, std::convert::Infallible>(Frame::data(b)), rx))
    });
    let mut resp = S3Response::with_status(Body::http_body_unsync(StreamBody::new(stream)), StatusCode::OK);
    resp.headers.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/x-ndjson"),
    );
    Ok(resp)
}
