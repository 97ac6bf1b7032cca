//! The process-wide metrics registry (prometheus-client) and the instruments the rest of the
//! server records into: requests, bytes on the wire, transforms, the derivative cache, blob
//! garbage collection, per-bucket usage, bitrot found and scrub progress. `http/metrics.rs` serves it as `/_strata/metrics`;
//! [`body`] counts streamed bodies; [`OpSlot`] carries a request's S3 operation name from the
//! access check (where s3s names it) back out to the server's request wrapper.
//!
//! One global instance ([`global`]): the instruments sit in code that has no handle to the
//! server (the blob store's deferred unlink, the cache's eviction), and a process serves one
//! data dir.

pub mod body;

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

use crate::model::usage::Usage;

/// Request latency buckets (seconds): sub-millisecond hits up to slow large transfers.
const REQUEST_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// Transform run-time buckets (seconds): small thumbnails to the deadline.
const TRANSFORM_BUCKETS: [f64; 12] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub op: &'static str,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OpLabel {
    pub op: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BucketLabel {
    pub bucket: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabel {
    pub result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct VersionLabel {
    pub version: &'static str,
}

fn request_histogram() -> Histogram {
    Histogram::new(REQUEST_BUCKETS)
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

/// How a transform ended, for `strata_transform_total{result}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransformResult {
    Ok,
    Error,
    /// The pool's queue was full (503 SlowDown).
    RejectedBusy,
}

impl TransformResult {
    fn label(self) -> &'static str {
        match self {
            TransformResult::Ok => "ok",
            TransformResult::Error => "error",
            TransformResult::RejectedBusy => "rejected-busy",
        }
    }
}

/// Per-bucket usage gauges, replaced as a whole after each usage scan.
struct UsageGauges {
    objects: Family<BucketLabel, Gauge>,
    bytes: Family<BucketLabel, Gauge>,
    noncurrent_objects: Family<BucketLabel, Gauge>,
    noncurrent_bytes: Family<BucketLabel, Gauge>,
    delete_markers: Family<BucketLabel, Gauge>,
    uploads: Family<BucketLabel, Gauge>,
    upload_bytes: Family<BucketLabel, Gauge>,
}

/// What the metrics need of the derivative cache: its size, read at each scrape. A trait so
/// that `metrics` sits below the `derivative` module that records into it.
pub trait CacheSize: Send + Sync {
    fn total_bytes(&self) -> u64;
    fn entries(&self) -> usize;
}

pub struct Metrics {
    registry: Registry,
    started: Instant,
    requests: Family<RequestLabels, Counter>,
    request_duration: HistogramFamily<OpLabel>,
    received_bytes: Counter,
    sent_bytes: Counter,
    usage: UsageGauges,
    transform_duration: Histogram,
    transforms: Family<ResultLabel, Counter>,
    cache_hits: Counter,
    cache_misses: Counter,
    cache_evictions: Counter,
    cache_bytes: Gauge,
    cache_entries: Gauge,
    gc_pending: Gauge,
    gc_unlinked: Counter,
    bitrot: Counter,
    cache_corrupt: Counter,
    scrub_bytes: Counter,
    scrub_objects: Counter,
    scrub_failures: Counter,
    scrub_last_completed: Gauge<f64, AtomicU64>,
    uptime: Gauge<f64, AtomicU64>,
    /// The disk cache whose size and entry count are read at scrape time.
    cache: Mutex<Option<Arc<dyn CacheSize>>>,
}

/// The process-wide instance.
pub fn global() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(Metrics::new)
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut r = Registry::with_prefix("strata");
        let requests = Family::<RequestLabels, Counter>::default();
        r.register(
            "requests",
            "HTTP requests by S3 operation (or health, ready, metrics, admin, preflight, unknown) and status code",
            requests.clone(),
        );
        let request_duration: HistogramFamily<OpLabel> = Family::new_with_constructor(request_histogram);
        r.register_with_unit(
            "request_duration",
            "Time from receiving a request to sending its response headers, by operation",
            Unit::Seconds,
            request_duration.clone(),
        );
        let received_bytes = Counter::default();
        r.register_with_unit(
            "received",
            "Request body bytes received",
            Unit::Bytes,
            received_bytes.clone(),
        );
        let sent_bytes = Counter::default();
        r.register_with_unit("sent", "Response body bytes sent", Unit::Bytes, sent_bytes.clone());

        let usage = UsageGauges {
            objects: Family::default(),
            bytes: Family::default(),
            noncurrent_objects: Family::default(),
            noncurrent_bytes: Family::default(),
            delete_markers: Family::default(),
            uploads: Family::default(),
            upload_bytes: Family::default(),
        };
        r.register(
            "bucket_objects",
            "Current object versions per bucket (delete markers excluded), as of the last usage scan",
            usage.objects.clone(),
        );
        r.register_with_unit(
            "bucket",
            "Bytes of current object versions per bucket, as of the last usage scan",
            Unit::Bytes,
            usage.bytes.clone(),
        );
        r.register(
            "bucket_noncurrent_objects",
            "Noncurrent object versions per bucket (delete markers excluded), as of the last usage scan",
            usage.noncurrent_objects.clone(),
        );
        r.register_with_unit(
            "bucket_noncurrent",
            "Bytes of noncurrent object versions per bucket, as of the last usage scan",
            Unit::Bytes,
            usage.noncurrent_bytes.clone(),
        );
        r.register(
            "bucket_delete_markers",
            "Delete markers per bucket (current and noncurrent), as of the last usage scan",
            usage.delete_markers.clone(),
        );
        r.register(
            "bucket_multipart_uploads",
            "Incomplete multipart uploads per bucket, as of the last usage scan",
            usage.uploads.clone(),
        );
        r.register_with_unit(
            "bucket_multipart_uploaded",
            "Bytes of parts of incomplete multipart uploads per bucket, as of the last usage scan",
            Unit::Bytes,
            usage.upload_bytes.clone(),
        );

        let transform_duration = Histogram::new(TRANSFORM_BUCKETS);
        r.register_with_unit(
            "transform_duration",
            "Run time of the image pipeline on a worker (queue wait excluded)",
            Unit::Seconds,
            transform_duration.clone(),
        );
        let transforms = Family::<ResultLabel, Counter>::default();
        r.register(
            "transform",
            "Transforms attempted, by result: ok, error, rejected-busy (queue full)",
            transforms.clone(),
        );
        let cache_hits = Counter::default();
        r.register(
            "derivative_cache_hits",
            "Transformed GET/HEAD served from the derivative cache (memory or disk)",
            cache_hits.clone(),
        );
        let cache_misses = Counter::default();
        r.register(
            "derivative_cache_misses",
            "Transformed GET/HEAD that had to run the pipeline",
            cache_misses.clone(),
        );
        let cache_evictions = Counter::default();
        r.register(
            "derivative_cache_evictions",
            "Derivatives evicted from the disk cache to stay within transform.cache_max_bytes",
            cache_evictions.clone(),
        );
        let cache_bytes = Gauge::default();
        r.register_with_unit(
            "derivative_cache",
            "Size of the derivative disk cache",
            Unit::Bytes,
            cache_bytes.clone(),
        );
        let cache_entries = Gauge::default();
        r.register(
            "derivative_cache_entries",
            "Derivatives in the disk cache",
            cache_entries.clone(),
        );
        let gc_pending = Gauge::default();
        r.register(
            "gc_pending_blobs",
            "Blob files of replaced or deleted versions waiting for their deferred unlink",
            gc_pending.clone(),
        );
        let gc_unlinked = Counter::default();
        r.register(
            "gc_unlinked_blobs",
            "Blob files removed by the deferred unlink",
            gc_unlinked.clone(),
        );
        let bitrot = Counter::default();
        r.register(
            "bitrot_detected",
            "Reads, copies, transitions, backups and scrubs that found stored bytes failing their checksum (each refused to use them)",
            bitrot.clone(),
        );
        let cache_corrupt = Counter::default();
        r.register(
            "derivative_cache_corrupt",
            "Derivative cache files that failed their checksum on a disk hit (dropped and made again)",
            cache_corrupt.clone(),
        );
        let scrub_bytes = Counter::default();
        r.register_with_unit(
            "scrub_scanned",
            "Stored bytes read and verified by the background scrub",
            Unit::Bytes,
            scrub_bytes.clone(),
        );
        let scrub_objects = Counter::default();
        r.register(
            "scrub_objects",
            "Object versions verified by the background scrub",
            scrub_objects.clone(),
        );
        let scrub_failures = Counter::default();
        r.register(
            "scrub_failures",
            "Object versions the background scrub found corrupt or unreadable",
            scrub_failures.clone(),
        );
        let scrub_last_completed = Gauge::<f64, AtomicU64>::default();
        r.register_with_unit(
            "scrub_last_completed_timestamp",
            "When the last complete background scrub run ended (Unix time; 0: none yet)",
            Unit::Seconds,
            scrub_last_completed.clone(),
        );
        let build_info = Family::<VersionLabel, Gauge>::default();
        r.register(
            "build_info",
            "Always 1; the version label is the server's",
            build_info.clone(),
        );
        build_info
            .get_or_create(&VersionLabel {
                version: env!("CARGO_PKG_VERSION"),
            })
            .set(1);
        let uptime = Gauge::<f64, AtomicU64>::default();
        r.register_with_unit(
            "uptime",
            "Time since the process started serving",
            Unit::Seconds,
            uptime.clone(),
        );
        Self {
            registry: r,
            started: Instant::now(),
            requests,
            request_duration,
            received_bytes,
            sent_bytes,
            usage,
            transform_duration,
            transforms,
            cache_hits,
            cache_misses,
            cache_evictions,
            cache_bytes,
            cache_entries,
            gc_pending,
            gc_unlinked,
            bitrot,
            cache_corrupt,
            scrub_bytes,
            scrub_objects,
            scrub_failures,
            scrub_last_completed,
            uptime,
            cache: Mutex::new(None),
        }
    }

    /// One finished request (its response headers are ready).
    pub fn request(&self, op: &'static str, status: u16, elapsed: std::time::Duration) {
        self.requests.get_or_create(&RequestLabels { op, status }).inc();
        self.request_duration
            .get_or_create(&OpLabel { op })
            .observe(elapsed.as_secs_f64());
    }

    pub fn received(&self, bytes: u64) {
        self.received_bytes.inc_by(bytes);
    }

    pub fn sent(&self, bytes: u64) {
        self.sent_bytes.inc_by(bytes);
    }

    /// A transform that reached the pool (`elapsed`: its run time, when it ran).
    pub fn transform(&self, result: TransformResult, elapsed: Option<std::time::Duration>) {
        self.transforms
            .get_or_create(&ResultLabel { result: result.label() })
            .inc();
        if let Some(e) = elapsed {
            self.transform_duration.observe(e.as_secs_f64());
        }
    }

    pub fn cache_lookup(&self, hit: bool) {
        if hit {
            self.cache_hits.inc();
        } else {
            self.cache_misses.inc();
        }
    }

    pub fn cache_evicted(&self, n: u64) {
        self.cache_evictions.inc_by(n);
    }

    /// The disk cache to report the size of.
    pub fn watch_cache(&self, cache: Arc<dyn CacheSize>) {
        *self.cache.lock().unwrap_or_else(|p| p.into_inner()) = Some(cache);
    }

    /// Blobs queued for the deferred unlink.
    pub fn gc_queued(&self, n: u64) {
        self.gc_pending.inc_by(n as i64);
    }

    /// One queued blob handled (`unlinked`: its file was removed by us).
    pub fn gc_done(&self, unlinked: bool) {
        self.gc_pending.dec();
        if unlinked {
            self.gc_unlinked.inc();
        }
    }

    /// Stored bytes that failed their check were found (and not used).
    pub fn bitrot_detected(&self) {
        self.bitrot.inc();
    }

    pub fn bitrot_count(&self) -> u64 {
        self.bitrot.get()
    }

    /// A derivative cache file failed its checksum.
    pub fn cache_corrupt(&self) {
        self.cache_corrupt.inc();
    }

    /// One object version verified by the background scrub (`bytes` read; `ok`: intact).
    pub fn scrubbed(&self, bytes: u64, ok: bool) {
        self.scrub_bytes.inc_by(bytes);
        self.scrub_objects.inc();
        if !ok {
            self.scrub_failures.inc();
        }
    }

    /// A background scrub run completed at `unix_secs`.
    pub fn scrub_completed(&self, unix_secs: f64) {
        self.scrub_last_completed.set(unix_secs);
    }

    /// Replaces the per-bucket usage gauges with a fresh scan's results (buckets that are
    /// gone disappear).
    pub fn set_usage<'a>(&self, all: impl IntoIterator<Item = (&'a String, &'a Usage)>) {
        let g = &self.usage;
        for f in [
            &g.objects,
            &g.bytes,
            &g.noncurrent_objects,
            &g.noncurrent_bytes,
            &g.delete_markers,
            &g.uploads,
            &g.upload_bytes,
        ] {
            f.clear();
        }
        let as_i64 = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        for (bucket, u) in all {
            let l = BucketLabel { bucket: bucket.clone() };
            g.objects.get_or_create(&l).set(as_i64(u.objects));
            g.bytes.get_or_create(&l).set(as_i64(u.bytes));
            g.noncurrent_objects.get_or_create(&l).set(as_i64(u.noncurrent_objects));
            g.noncurrent_bytes.get_or_create(&l).set(as_i64(u.noncurrent_bytes));
            g.delete_markers.get_or_create(&l).set(as_i64(u.delete_markers));
            g.uploads.get_or_create(&l).set(as_i64(u.uploads));
            g.upload_bytes.get_or_create(&l).set(as_i64(u.upload_bytes));
        }
    }

    /// The Prometheus text exposition (format 0.0.4).
    pub fn render(&self) -> String {
        self.uptime.set(self.started.elapsed().as_secs_f64());
        let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner()).clone();
        if let Some(c) = cache {
            self.cache_bytes.set(i64::try_from(c.total_bytes()).unwrap_or(i64::MAX));
            self.cache_entries.set(c.entries() as i64);
        }
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry) {
            // Only a formatter error can get here; a partial page would mislead.
            tracing::error!(error = %e, "could not encode metrics");
            out.clear();
        }
        out
    }
}

/// The S3 operation of a request, filled in by the access check (s3s names the operation
/// there) and read by the server's request wrapper once the response is ready. Shared
/// through the request extensions, which s3s hands to the access check.
#[derive(Clone, Default)]
pub struct OpSlot(Arc<OnceLock<&'static str>>);

impl OpSlot {
    pub fn set(&self, op: &'static str) {
        let _ = self.0.set(op);
    }

    pub fn get(&self) -> Option<&'static str> {
        self.0.get().copied()
    }
}

/// A `&'static` copy of an S3 operation name (s3s lends them only for the access check).
/// The set is bounded by the operations s3s knows, so each name is leaked at most once.
pub fn intern_op(name: &str) -> &'static str {
    static NAMES: OnceLock<Mutex<std::collections::HashSet<&'static str>>> = OnceLock::new();
    let mut names = NAMES
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    if let Some(n) = names.get(name) {
        return n;
    }
    let leaked: &'static str = Box::leak(name.to_string().into_boxed_str());
    names.insert(leaked);
    leaked
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(text: &str, line_start: &str) -> Option<f64> {
        text.lines()
            .find(|l| l.starts_with(line_start))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
    }

    #[test]
    fn renders_declared_families_with_units_in_names() {
        let m = Metrics::new();
        m.request("GetObject", 200, std::time::Duration::from_millis(3));
        m.request("GetObject", 200, std::time::Duration::from_millis(3));
        m.received(10);
        m.sent(7);
        m.transform(TransformResult::Ok, Some(std::time::Duration::from_millis(2)));
        m.gc_queued(3);
        m.gc_done(true);
        let mut usage = std::collections::BTreeMap::new();
        usage.insert(
            "b1".to_string(),
            Usage {
                objects: 2,
                bytes: 30,
                ..Default::default()
            },
        );
        m.set_usage(&usage);
        let text = m.render();
        assert_eq!(
            sample(&text, "strata_requests_total{op=\"GetObject\",status=\"200\"}"),
            Some(2.0),
            "{text}"
        );
        assert_eq!(
            sample(&text, "strata_request_duration_seconds_count{op=\"GetObject\"}"),
            Some(2.0)
        );
        assert_eq!(sample(&text, "strata_received_bytes_total"), Some(10.0));
        assert_eq!(sample(&text, "strata_sent_bytes_total"), Some(7.0));
        assert_eq!(sample(&text, "strata_transform_total{result=\"ok\"}"), Some(1.0));
        assert_eq!(sample(&text, "strata_gc_pending_blobs"), Some(2.0));
        assert_eq!(sample(&text, "strata_gc_unlinked_blobs_total"), Some(1.0));
        assert_eq!(sample(&text, "strata_bucket_bytes{bucket=\"b1\"}"), Some(30.0));
        assert!(
            text.contains("# TYPE strata_request_duration_seconds histogram"),
            "{text}"
        );
        assert!(text.contains("strata_build_info{version=\""), "{text}");
        // A bucket missing from the next scan disappears.
        m.set_usage(&std::collections::BTreeMap::new());
        assert!(!m.render().contains("bucket=\"b1\""));
    }

    #[test]
    fn interned_names_are_shared() {
        let a = intern_op(&String::from("ListBuckets"));
        let b = intern_op("ListBuckets");
        assert_eq!(a, "ListBuckets");
        assert!(std::ptr::eq(a, b));
    }

    #[test]
    fn op_slot_keeps_the_first_name() {
        let s = OpSlot::default();
        assert_eq!(s.get(), None);
        s.clone().set("PutObject");
        s.set("GetObject");
        assert_eq!(s.get(), Some("PutObject"));
    }
}
