//! Principals: the root key (config/env, or generated into the data dir at first start) and
//! the keys made with `strata key create`, stored in sled. Implements s3s's `S3Auth` lookup.
//! Secrets are never logged.

use std::path::Path;

use rand::distributions::{Alphanumeric, DistString};
use rand::Rng;
use s3s::auth::{S3Auth, SecretKey};
use s3s::S3Result;
use serde::{Deserialize, Serialize};

use crate::store::records::KeyRecord;
use crate::store::MetaStore;
use crate::util::errors;

const ROOT_CREDENTIALS_FILE: &str = "root-credentials.toml";

#[derive(Clone, Serialize, Deserialize)]
pub struct RootKey {
    pub access_key: String,
    pub secret_key: String,
}

impl std::fmt::Debug for RootKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RootKey")
            .field("access_key", &self.access_key)
            .finish_non_exhaustive()
    }
}

/// How the root key was obtained, so `serve` can tell the user once.
pub enum RootSource {
    Configured,
    Stored,
    Generated,
}

pub fn new_access_key() -> String {
    let mut rng = rand::thread_rng();
    let tail: String = (0..16)
        .map(|_| {
            let c = rng.gen_range(0..36u8);
            (if c < 10 { b'0' + c } else { b'A' + c - 10 }) as char
        })
        .collect();
    format!("SK{tail}")
}

pub fn new_secret_key() -> String {
    Alphanumeric.sample_string(&mut rand::thread_rng(), 40)
}

/// Root key from config/env; else the one stored in the data dir; else a new one, stored 0600.
pub fn resolve_root(configured: Option<RootKey>, data_dir: &Path) -> anyhow::Result<(RootKey, RootSource)> {
    if let Some(k) = configured {
        return Ok((k, RootSource::Configured));
    }
    let path = data_dir.join(ROOT_CREDENTIALS_FILE);
    if path.exists() {
        let text = std::fs::read_to_string(&path)?;
        let key: RootKey = toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        return Ok((key, RootSource::Stored));
    }
    let key = RootKey {
        access_key: new_access_key(),
        secret_key: new_secret_key(),
    };
    std::fs::create_dir_all(data_dir)?;
    let text = toml::to_string(&key)?;
    write_private(&path, text.as_bytes())?;
    Ok((key, RootSource::Generated))
}

/// Reads the stored root key of a data dir, if one was generated there.
pub fn stored_root(data_dir: &Path) -> Option<RootKey> {
    let text = std::fs::read_to_string(data_dir.join(ROOT_CREDENTIALS_FILE)).ok()?;
    toml::from_str(&text).ok()
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

/// Creates a key record; returns (access key, secret).
pub fn create_key(meta: &MetaStore, name: &str) -> anyhow::Result<(String, String)> {
    let access_key = new_access_key();
    let secret_key = new_secret_key();
    meta.put_key(
        &access_key,
        &KeyRecord {
            name: name.to_string(),
            secret_key: secret_key.clone(),
            created_ms: crate::util::now_ms(),
        },
    )?;
    Ok((access_key, secret_key))
}

/// The `S3Auth` of the server: root key first, then sled.
pub struct KeyAuth {
    pub root: RootKey,
    pub meta: MetaStore,
}

#[async_trait::async_trait]
impl S3Auth for KeyAuth {
    async fn get_secret_key(&self, access_key: &str) -> S3Result<SecretKey> {
        if access_key == self.root.access_key {
            return Ok(SecretKey::from(self.root.secret_key.as_str()));
        }
        match self.meta.key(access_key) {
            Ok(Some(rec)) => Ok(SecretKey::from(rec.secret_key.as_str())),
            Ok(None) => Err(errors::invalid_access_key_id()),
            Err(e) => {
                tracing::error!(error = %e, "key lookup failed");
                Err(errors::internal_error())
            }
        }
    }
}
