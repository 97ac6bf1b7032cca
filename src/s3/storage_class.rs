//! Storage classes at the S3 surface: `x-amz-storage-class` on writes, the class reported by
//! reads and listings, the GLACIER read gate (403 InvalidObjectState until restored) and
//! RestoreObject. Where the bytes live is the store's business (`store::tiering`).

use s3s::dto::{self, RestoreObjectInput, RestoreObjectOutput};
use s3s::{S3Request, S3Response, S3Result};

use super::errors;
use super::errors::store_error;
use super::Strata;
use crate::store::records::{ObjectRecord, StorageClass};
use crate::util::clock::{ceil_to_midnight, DAY_MS};
use crate::util::now_ms;

/// The longest restore S3 accepts (`Days`), which also keeps the expiry arithmetic in range.
const MAX_RESTORE_DAYS: i32 = 30_000;

/// The class a write asked for (`None`: STANDARD). Classes Strata does not keep are refused
/// rather than silently stored as something else.
pub fn requested(class: Option<&dto::StorageClass>) -> S3Result<StorageClass> {
    match class {
        None => Ok(StorageClass::Standard),
        Some(c) => StorageClass::parse(c.as_str()).ok_or_else(|| {
            errors::invalid_storage_class(
                "The storage class you specified is not valid: Strata keeps STANDARD, STANDARD_IA and GLACIER",
            )
        }),
    }
}

/// The class as GET/HEAD report it: S3 omits the header for STANDARD.
pub fn reported(rec: &ObjectRecord) -> Option<dto::StorageClass> {
    (rec.storage_class != StorageClass::Standard)
        .then(|| dto::StorageClass::from(rec.storage_class.as_str().to_string()))
}

/// Whether the bytes of `rec` may be read at `now`: GLACIER objects only while restored.
pub fn readable_at(rec: &ObjectRecord, now: i64) -> bool {
    rec.storage_class != StorageClass::Glacier || rec.restored_until_ms.is_some_and(|until| until > now)
}

/// Refuses reads (GET, transforms, copy sources) of a GLACIER object that is not restored.
pub fn check_readable(rec: &ObjectRecord) -> S3Result<()> {
    if readable_at(rec, now_ms()) {
        Ok(())
    } else {
        Err(errors::invalid_object_state(
            "The operation is not valid for the object's storage class",
        ))
    }
}

/// The `x-amz-restore` value of a restored GLACIER object (`None` when never restored or
/// when the restored copy has expired, as S3 stops reporting it then).
pub fn restore_header(rec: &ObjectRecord) -> Option<String> {
    let until = rec.restored_until_ms.filter(|u| *u > now_ms())?;
    let date = httpdate::fmt_http_date(std::time::UNIX_EPOCH + std::time::Duration::from_millis(until.max(0) as u64));
    Some(format!("ongoing-request=\"false\", expiry-date=\"{date}\""))
}

/// When a restore of `days` made at `now` expires: S3 adds the days and rounds up to the
/// next midnight UTC.
pub fn restore_expiry(now: i64, days: i32) -> i64 {
    // Strictly after: a restore ending exactly at midnight still runs to the next one.
    ceil_to_midnight(now + i64::from(days) * DAY_MS + 1)
}

/// RestoreObject: makes a GLACIER object readable for `Days`. The bytes are already on a
/// local volume, so the restore completes at once: 202 for a new restore, 200 when an
/// unexpired restore is extended.
pub async fn restore_object(
    s: &Strata,
    req: S3Request<RestoreObjectInput>,
) -> S3Result<S3Response<RestoreObjectOutput>> {
    let input = req.input;
    let rec = s.object_at(&input.bucket, &input.key, input.version_id.as_deref())?;
    if rec.storage_class != StorageClass::Glacier {
        return Err(errors::invalid_object_state(
            "Restore is not allowed for the object's current storage class",
        ));
    }
    let request = input.restore_request.unwrap_or_default();
    if request.type_.is_some() || request.select_parameters.is_some() || request.output_location.is_some() {
        return Err(errors::not_implemented("Only plain restores (Days) are supported"));
    }
    let days = match request.days {
        Some(d) if (1..=MAX_RESTORE_DAYS).contains(&d) => d,
        Some(_) => {
            return Err(errors::invalid_argument(format!(
                "Days must be between 1 and {MAX_RESTORE_DAYS}"
            )))
        }
        None => return Err(errors::malformed_xml_because("The restore request needs Days")),
    };
    let now = now_ms();
    let already = readable_at(&rec, now);
    let until = restore_expiry(now, days);
    let version = rec.client_version_id().to_string();
    let target = rec.version_id.clone();
    let updated = s
        .store
        .meta
        .update_version(&input.bucket, &input.key, Some(&version), |r| {
            if r.version_id == target {
                r.restored_until_ms = Some(until);
            }
        })
        .map_err(store_error)?;
    let Some(updated) = updated else {
        return Err(errors::no_such_key());
    };
    if updated.durable().await.map_err(store_error)?.version_id != target {
        return Err(errors::no_such_key());
    }
    let mut resp = S3Response::new(RestoreObjectOutput::default());
    if !already {
        resp.extensions
            .insert(super::StatusOverride(http::StatusCode::ACCEPTED));
    }
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restore_expiry_rounds_up_to_midnight_utc() {
        // 2026-11-25 17:00 UTC + 1 day → 2026-11-27 00:00 UTC
        let now = 1_795_626_000_000; // 2026-11-25T17:00:00Z
        let until = restore_expiry(now, 1);
        assert_eq!(until % DAY_MS, 0);
        assert!(until > now + DAY_MS && until <= now + 2 * DAY_MS);
        // exactly midnight still moves to the next midnight
        let midnight = (now / DAY_MS) * DAY_MS;
        assert_eq!(restore_expiry(midnight, 1), midnight + 2 * DAY_MS);
    }

    #[test]
    fn glacier_is_readable_only_while_restored() {
        let mut rec = sample();
        assert!(readable_at(&rec, 10));
        rec.storage_class = StorageClass::StandardIa;
        assert!(readable_at(&rec, 10));
        rec.storage_class = StorageClass::Glacier;
        assert!(!readable_at(&rec, 10));
        rec.restored_until_ms = Some(20);
        assert!(readable_at(&rec, 10));
        assert!(!readable_at(&rec, 20));
    }

    fn sample() -> ObjectRecord {
        ObjectRecord {
            version_id: "v".into(),
            seq: 1,
            versioned: false,
            delete_marker: false,
            acl: None,
            tags: Vec::new(),
            encryption: None,
            size: 0,
            etag: String::new(),
            last_modified_ms: 0,
            owner: "o".into(),
            headers: Default::default(),
            user_metadata: Default::default(),
            checksums: Default::default(),
            parts_count: None,
            data: crate::store::records::ObjectData::Inline(Vec::new()),
            storage_class: StorageClass::Standard,
            restored_until_ms: None,
        }
    }
}
