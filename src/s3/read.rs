//! Object bytes as the S3 layer reads them (GET, the sources of CopyObject and
//! UploadPartCopy, a transform's original): the store's verified streams (`store::read`)
//! wrapped so a failed check is reported once, with the object's name and the request
//! (`store::bitrot`), and remembered, so a copy can answer `500 InternalError` instead of a
//! body error. For GET, [`response_body`] reads the first chunk before the response headers
//! go out: corruption in the first blocks read (most single-block ranges) is a clean 500 with
//! an S3 error body; found later, the stream fails and hyper aborts the response (the client
//! gets fewer bytes than the Content-Length it was promised, never a complete response).

use std::io;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

use bytes::Bytes;
use futures::{Stream, StreamExt};
use s3s::dto::StreamingBlob;
use s3s::S3Result;

use super::errors::{store_error, stored_data_corrupt};
use super::Strata;
use crate::store::bitrot::{report, ObjectAt};
use crate::store::crypto::Key256;
use crate::store::integrity::{corruption_of, Corruption};
use crate::store::records::{ObjectData, ObjectRecord};
use crate::store::{MetaStore, StoreError};

type Inner = Pin<Box<dyn Stream<Item = io::Result<Bytes>> + Send + Sync>>;

/// Who is reading, for the report.
struct Reader {
    meta: MetaStore,
    at: ObjectAt,
    found_by: &'static str,
    request_id: Option<String>,
}

/// A verified object byte stream that reports corruption (see the module doc).
pub(super) struct ObjectStream {
    inner: Inner,
    reader: Arc<Reader>,
    found: Arc<OnceLock<Corruption>>,
}

impl ObjectStream {
    /// Set once the stream has hit corruption (shared: it stays readable after the stream
    /// was handed to a consumer).
    pub fn corruption(&self) -> Arc<OnceLock<Corruption>> {
        self.found.clone()
    }
}

impl Stream for ObjectStream {
    type Item = io::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let polled = self.inner.as_mut().poll_next(cx);
        if let Poll::Ready(Some(Err(e))) = &polled {
            if let Some(c) = corruption_of(e) {
                if self.found.set(c.clone()).is_ok() {
                    let r = &self.reader;
                    report(&r.meta, &r.at, c, r.found_by, r.request_id.as_deref());
                }
            }
        }
        polled
    }
}

/// What a read is for (the report's `found_by`).
#[derive(Clone, Copy)]
pub(super) enum Purpose {
    Get,
    Copy,
    Transform,
}

impl Purpose {
    fn label(self) -> &'static str {
        match self {
            Purpose::Get => "read",
            Purpose::Copy => "copy",
            Purpose::Transform => "transform",
        }
    }
}

/// The bytes `[start, end)` of version `rec` of bucket/key, verified; `data_key` when it is
/// encrypted (see `encryption.rs`).
#[allow(clippy::too_many_arguments)] // the object, the range and who reads: all distinct
pub(super) fn object_stream(
    s: &Strata,
    bucket: &str,
    key: &str,
    rec: &ObjectRecord,
    data_key: Option<&Key256>,
    start: u64,
    end: u64,
    purpose: Purpose,
    request_id: Option<String>,
) -> ObjectStream {
    let inner: Inner = match (&rec.data, data_key) {
        (ObjectData::Inline(bytes), _) => {
            // Inline bytes live in the metadata record (sled checksums its log).
            let slice = Bytes::copy_from_slice(bytes.get(start as usize..end as usize).unwrap_or_default());
            Box::pin(futures::stream::iter([Ok::<_, io::Error>(slice)]))
        }
        // Only empty blobs of an encrypted object are unsealed, and the reader skips them.
        (ObjectData::Blobs(blobs), Some(k)) => {
            Box::pin(s.store.blobs.read_range_sealed(blobs.clone(), k.clone(), start, end))
        }
        (ObjectData::Blobs(blobs), None) => Box::pin(s.store.blobs.read_range(blobs.clone(), start, end)),
    };
    ObjectStream {
        inner,
        reader: Arc::new(Reader {
            meta: s.store.meta.clone(),
            at: ObjectAt {
                bucket: bucket.to_string(),
                key: key.to_string(),
                version_id: rec.version_id.clone(),
            },
            found_by: purpose.label(),
            request_id,
        }),
        found: Arc::new(OnceLock::new()),
    }
}

/// A GET's body: the first chunk is read (and verified) now, so a failure there is this
/// function's `Err` (a 500 before any byte is sent); the rest streams as the client reads.
pub(super) async fn response_body(mut stream: ObjectStream) -> S3Result<StreamingBlob> {
    match stream.next().await {
        None => Ok(StreamingBlob::wrap(futures::stream::empty::<io::Result<Bytes>>())),
        Some(Ok(first)) => Ok(StreamingBlob::wrap(
            futures::stream::iter([Ok::<_, io::Error>(first)]).chain(stream),
        )),
        Some(Err(e)) if corruption_of(&e).is_some() => Err(stored_data_corrupt()),
        Some(Err(e)) => Err(store_error(StoreError::Io(e))),
    }
}
