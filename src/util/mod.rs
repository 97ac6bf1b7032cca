//! Small shared helpers, below everything else: timestamp conversions, the injectable clock
//! ([`clock`]), the one query-string parser ([`query`]) and the one place S3 errors are built
//! ([`errors`]).

pub mod clock;
pub mod errors;
pub mod query;
#[cfg(test)]
pub(crate) mod test_mutation;

use s3s::dto::Timestamp;

pub fn now_ms() -> i64 {
    let now = time::OffsetDateTime::now_utc();
    (now.unix_timestamp_nanos() / 1_000_000) as i64
}

/// Milliseconds since the epoch → s3s timestamp (out-of-range values clamp to the epoch).
pub fn ms_to_timestamp(ms: i64) -> Timestamp {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    Timestamp::from(t)
}

pub fn timestamp_to_ms(ts: &Timestamp) -> i64 {
    let t: time::OffsetDateTime = ts.clone().into();
    (t.unix_timestamp_nanos() / 1_000_000) as i64
}
