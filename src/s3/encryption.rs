//! Server-side encryption as S3 clients see it: which encryption a write asks for (its
//! `x-amz-server-side-encryption*` headers or the bucket default), the data key of a stored
//! object for a read (checking SSE-C keys), the response headers that report it, and
//! Put/Get/DeleteBucketEncryption. The cryptography is `store::crypto`; the keys that wrap
//! data keys are `store::keyring`.

use base64::Engine;
use md5::{Digest, Md5};
use s3s::dto::*;
use s3s::{S3Request, S3Response, S3Result};
use sha2::Sha256;

use super::errors;
use super::Strata;
use crate::store::crypto::{random_bytes, Key256};
use crate::store::keyring::KeyringError;
use crate::store::records::{BucketRecord, DefaultEncryption, ObjectEncryption, SseKind};

/// The SSE-C headers of a request (as s3s parsed them).
#[derive(Clone, Copy, Default)]
pub struct CustomerKeyHeaders<'a> {
    pub algorithm: Option<&'a str>,
    pub key: Option<&'a str>,
    pub key_md5: Option<&'a str>,
}

/// What a write asked for.
pub struct SseRequest<'a> {
    pub server_side_encryption: Option<&'a ServerSideEncryption>,
    pub kms_key_id: Option<&'a str>,
    pub customer: CustomerKeyHeaders<'a>,
}

/// The SSE fields of a write's input (PutObject, CopyObject and CreateMultipartUpload name
/// them alike) as an [`SseRequest`].
macro_rules! sse_request {
    ($input:expr) => {
        $crate::s3::encryption::SseRequest {
            server_side_encryption: $input.server_side_encryption.as_ref(),
            kms_key_id: $input.ssekms_key_id.as_deref(),
            customer: $crate::s3::encryption::customer_key_headers!($input),
        }
    };
}
pub(crate) use sse_request;

/// The `x-amz-server-side-encryption-customer-*` fields of an input.
macro_rules! customer_key_headers {
    ($input:expr) => {
        $crate::s3::encryption::CustomerKeyHeaders {
            algorithm: $input.sse_customer_algorithm.as_deref(),
            key: $input.sse_customer_key.as_deref(),
            key_md5: $input.sse_customer_key_md5.as_deref(),
        }
    };
}
pub(crate) use customer_key_headers;

/// The `x-amz-copy-source-server-side-encryption-customer-*` fields of a copy's input.
macro_rules! copy_source_key_headers {
    ($input:expr) => {
        $crate::s3::encryption::CustomerKeyHeaders {
            algorithm: $input.copy_source_sse_customer_algorithm.as_deref(),
            key: $input.copy_source_sse_customer_key.as_deref(),
            key_md5: $input.copy_source_sse_customer_key_md5.as_deref(),
        }
    };
}
pub(crate) use copy_source_key_headers;

/// A customer key that passed S3's checks: AES256, 32 bytes, matching MD5.
struct CustomerKey {
    key: Key256,
    md5_b64: String,
}

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

fn keyring_error(e: KeyringError) -> s3s::S3Error {
    match e {
        KeyringError::UnknownKmsKey(name) => errors::kms_not_found(format!("Invalid keyId {name}")),
        other => {
            tracing::error!(error = %other, "keyring failure");
            errors::internal_error()
        }
    }
}

fn parse_customer_key(h: CustomerKeyHeaders<'_>, secure: bool) -> S3Result<Option<CustomerKey>> {
    let (Some(alg), Some(key), Some(md5)) = (h.algorithm, h.key, h.key_md5) else {
        if h.algorithm.is_some() || h.key.is_some() || h.key_md5.is_some() {
            return Err(errors::invalid_argument("Requests specifying Server Side Encryption with Customer provided keys must provide the algorithm, the key and its MD5."));
        }
        return Ok(None);
    };
    if !secure {
        return Err(errors::invalid_request("Requests specifying Server Side Encryption with Customer provided keys must be made over a secure connection."));
    }
    if alg != "AES256" {
        return Err(errors::invalid_encryption_algorithm());
    }
    let raw = b64()
        .decode(key)
        .ok()
        .filter(|k| k.len() == 32)
        .ok_or_else(|| errors::invalid_argument("The secret key was invalid for the specified algorithm."))?;
    let digest = b64().encode(Md5::digest(&raw));
    if digest != md5 {
        return Err(errors::invalid_argument(
            "The calculated MD5 hash of the key did not match the hash that was provided.",
        ));
    }
    let mut k = [0u8; 32];
    k.copy_from_slice(&raw);
    Ok(Some(CustomerKey {
        key: Key256(k),
        md5_b64: digest,
    }))
}

fn key_hash(salt: &[u8], key: &Key256) -> Vec<u8> {
    let mut h = Sha256::new();
    h.update(salt);
    h.update(key.0);
    h.finalize().to_vec()
}

/// SSE-C keys travel in request headers, so S3 accepts them only over TLS. A loopback
/// connection never leaves the machine, so it counts as secure too.
pub fn connection_is_secure(extensions: &http::Extensions) -> bool {
    extensions
        .get::<crate::auth::ClientInfo>()
        .is_some_and(|c| c.secure || c.addr.ip().to_canonical().is_loopback())
}

impl Strata {
    /// The encryption (sealed data key + the key to use now) a new object gets, from the
    /// request's headers or else the bucket's default. `None`: stored in the clear.
    pub(super) fn encryption_for_write(
        &self,
        bucket: &BucketRecord,
        req: &SseRequest<'_>,
        secure: bool,
    ) -> S3Result<Option<(ObjectEncryption, Key256)>> {
        let customer = parse_customer_key(req.customer, secure)?;
        let wanted = req.server_side_encryption.map(|s| s.as_str().to_string());
        if customer.is_some() && wanted.is_some() {
            return Err(errors::invalid_argument("Server Side Encryption with Customer provided key is incompatible with the encryption method specified"));
        }
        let data_key = Key256::random().map_err(|e| super::errors::internal("random", e))?;
        if let Some(c) = customer {
            let salt = random_bytes::<16>().map_err(|e| super::errors::internal("random", e))?;
            let enc = ObjectEncryption {
                kind: SseKind::Customer {
                    key_md5: c.md5_b64.clone(),
                    salt: salt.to_vec(),
                    key_hash: key_hash(&salt, &c.key),
                },
                wrapped_key: c.key.wrap(&data_key).map_err(|e| super::errors::internal("wrap", e))?,
                master_id: None,
            };
            return Ok(Some((enc, data_key)));
        }
        let mode = match wanted.as_deref() {
            Some("AES256") => Some(DefaultEncryption::S3),
            Some("aws:kms") | Some("aws:kms:dsse") => Some(DefaultEncryption::Kms {
                key_id: req.kms_key_id.map(str::to_string),
            }),
            Some(other) => {
                return Err(errors::invalid_argument(format!(
                    "The encryption method specified is not supported: {other}"
                )))
            }
            None => bucket.encryption.clone(),
        };
        let enc = match mode {
            None => return Ok(None),
            Some(DefaultEncryption::S3) => {
                let (master_id, master) = self.keyring.current_master().map_err(keyring_error)?;
                ObjectEncryption {
                    kind: SseKind::S3,
                    wrapped_key: master.wrap(&data_key).map_err(|e| super::errors::internal("wrap", e))?,
                    master_id: Some(master_id),
                }
            }
            Some(DefaultEncryption::Kms { key_id }) => {
                let name = key_id.or_else(|| self.default_kms_key_id.clone()).ok_or_else(|| {
                    errors::invalid_argument(
                        "aws:kms needs x-amz-server-side-encryption-aws-kms-key-id (no default KMS key is configured)",
                    )
                })?;
                let name = kms_key_name(&name).to_string();
                let kek = self.keyring.kms_key(&name).map_err(keyring_error)?;
                ObjectEncryption {
                    kind: SseKind::Kms { key_id: name },
                    wrapped_key: kek.wrap(&data_key).map_err(|e| super::errors::internal("wrap", e))?,
                    master_id: None,
                }
            }
        };
        Ok(Some((enc, data_key)))
    }

    /// The data key of a stored object for a read, checking the request's SSE-C headers the
    /// way S3 does: missing → 400, wrong → 403; SSE-C headers on an object that is not
    /// SSE-C → 400.
    pub(super) fn data_key_for_read(
        &self,
        enc: Option<&ObjectEncryption>,
        customer: CustomerKeyHeaders<'_>,
        secure: bool,
    ) -> S3Result<Option<Key256>> {
        let given = parse_customer_key(customer, secure)?;
        let is_customer_keyed = enc.is_some_and(|e| matches!(e.kind, SseKind::Customer { .. }));
        if given.is_some() && !is_customer_keyed {
            return Err(errors::invalid_request(
                "The encryption parameters are not applicable to this object.",
            ));
        }
        let Some(enc) = enc else {
            return Ok(None);
        };
        let key = match &enc.kind {
            SseKind::S3 => {
                let master = self
                    .keyring
                    .master(enc.master_id.as_deref().unwrap_or_default())
                    .map_err(keyring_error)?;
                master.unwrap_key(&enc.wrapped_key)
            }
            SseKind::Kms { key_id } => {
                let kek = self.keyring.kms_key(key_id).map_err(keyring_error)?;
                kek.unwrap_key(&enc.wrapped_key)
            }
            SseKind::Customer {
                salt, key_hash: stored, ..
            } => {
                let Some(c) = given else {
                    return Err(errors::invalid_request("The object was stored using a form of Server Side Encryption. The correct parameters must be provided to retrieve the object."));
                };
                if key_hash(salt, &c.key) != *stored {
                    return Err(errors::access_denied_because(
                        "The provided customer key does not match the key the object was encrypted with.",
                    ));
                }
                c.key.unwrap_key(&enc.wrapped_key)
            }
        };
        key.map(Some).map_err(|e| super::errors::internal("unwrap data key", e))
    }
}

/// `arn:aws:kms:…:key/NAME` and `alias/NAME` name the keyring key NAME.
pub fn kms_key_name(id: &str) -> &str {
    let id = id.rsplit_once(":key/").map_or(id, |(_, n)| n);
    id.strip_prefix("alias/").unwrap_or(id)
}

/// The response fields S3 uses to report an object's encryption.
#[derive(Default)]
pub struct SseReport {
    pub server_side_encryption: Option<ServerSideEncryption>,
    pub kms_key_id: Option<String>,
    pub customer_algorithm: Option<String>,
    pub customer_key_md5: Option<String>,
}

pub fn report(enc: Option<&ObjectEncryption>) -> SseReport {
    match enc.map(|e| &e.kind) {
        None => SseReport::default(),
        Some(SseKind::S3) => SseReport {
            server_side_encryption: Some(ServerSideEncryption::from_static(ServerSideEncryption::AES256)),
            ..Default::default()
        },
        Some(SseKind::Kms { key_id }) => SseReport {
            server_side_encryption: Some(ServerSideEncryption::from_static(ServerSideEncryption::AWS_KMS)),
            kms_key_id: Some(key_id.clone()),
            ..Default::default()
        },
        Some(SseKind::Customer { key_md5, .. }) => SseReport {
            customer_algorithm: Some("AES256".to_string()),
            customer_key_md5: Some(key_md5.clone()),
            ..Default::default()
        },
    }
}

pub async fn put_bucket(
    s: &Strata,
    req: S3Request<PutBucketEncryptionInput>,
) -> S3Result<S3Response<PutBucketEncryptionOutput>> {
    let input = req.input;
    let rule = input
        .server_side_encryption_configuration
        .rules
        .first()
        .and_then(|r| r.apply_server_side_encryption_by_default.clone())
        .ok_or_else(errors::malformed_xml)?;
    let default = match rule.sse_algorithm.as_str() {
        "AES256" => DefaultEncryption::S3,
        "aws:kms" | "aws:kms:dsse" => {
            let key_id = rule.kms_master_key_id.as_deref().map(|k| kms_key_name(k).to_string());
            if let Some(name) = &key_id {
                s.keyring.kms_key(name).map_err(keyring_error)?;
            }
            DefaultEncryption::Kms { key_id }
        }
        other => {
            return Err(errors::invalid_argument(format!(
                "The encryption method specified is not supported: {other}"
            )))
        }
    };
    s.update_bucket(&input.bucket, |b| {
        b.encryption = Some(default.clone());
        Ok(())
    })
    .await?;
    Ok(S3Response::new(PutBucketEncryptionOutput::default()))
}

pub async fn get_bucket(
    s: &Strata,
    req: S3Request<GetBucketEncryptionInput>,
) -> S3Result<S3Response<GetBucketEncryptionOutput>> {
    let bucket = s.bucket(&req.input.bucket)?;
    let Some(default) = bucket.encryption else {
        return Err(errors::server_side_encryption_configuration_not_found());
    };
    let (alg, key) = match default {
        DefaultEncryption::S3 => (ServerSideEncryption::AES256, None),
        DefaultEncryption::Kms { key_id } => (ServerSideEncryption::AWS_KMS, key_id),
    };
    Ok(S3Response::new(GetBucketEncryptionOutput {
        server_side_encryption_configuration: Some(ServerSideEncryptionConfiguration {
            rules: vec![ServerSideEncryptionRule {
                apply_server_side_encryption_by_default: Some(ServerSideEncryptionByDefault {
                    kms_master_key_id: key,
                    sse_algorithm: ServerSideEncryption::from_static(alg),
                }),
                bucket_key_enabled: None,
            }],
        }),
    }))
}

pub async fn delete_bucket(
    s: &Strata,
    req: S3Request<DeleteBucketEncryptionInput>,
) -> S3Result<S3Response<DeleteBucketEncryptionOutput>> {
    s.update_bucket(&req.input.bucket, |b| {
        b.encryption = None;
        Ok(())
    })
    .await?;
    Ok(S3Response::new(DeleteBucketEncryptionOutput::default()))
}
