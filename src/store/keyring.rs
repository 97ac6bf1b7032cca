//! The keys that wrap objects' data keys: master keys in a key file outside the data dir, and
//! named SSE-KMS keys (sealed by a master key) in the sled tree `kms`.
//!
//! Key file (TOML, mode 0600, created on first use, never logged):
//! ```toml
//! current = "mk-…"          # seals new data keys and KMS keys
//! [keys]
//! "mk-…" = "<64 hex digits>"  # older keys stay until a rotation has re-sealed everything
//! ```
//! Rotation (`strata key rotate-master`) adds a new current key, re-seals every SSE-S3 data
//! key and every KMS key under it (metadata only: object bytes are not rewritten), then drops
//! the old keys. Interrupted, it resumes: a file with more than one key means "not done".

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use serde::{Deserialize, Serialize};

use super::crypto::Key256;
use super::meta::MetaStore;
use super::records::{decode, encode, KmsKeyRecord, ObjectEncryption, ObjectRecord, SseKind, UploadRecord};
use super::StoreError;

#[derive(Serialize, Deserialize, Default)]
struct KeyFile {
    current: String,
    keys: BTreeMap<String, String>,
}

#[derive(Clone, Default)]
struct MasterKeys {
    current: Option<String>,
    keys: BTreeMap<String, Key256>,
}

#[derive(Clone)]
pub struct Keyring {
    path: PathBuf,
    masters: Arc<RwLock<MasterKeys>>,
    /// Serialises creation of the key file.
    create: Arc<Mutex<()>>,
    meta: MetaStore,
}

#[derive(Debug, thiserror::Error)]
pub enum KeyringError {
    #[error("master key file {0}: {1}")]
    File(String, String),
    #[error("no such KMS key: {0}")]
    UnknownKmsKey(String),
    #[error("a KMS key named {0} already exists")]
    KmsKeyExists(String),
    #[error("invalid KMS key name {0:?}: use 1-64 of A-Z a-z 0-9 - _ /")]
    BadKmsName(String),
    #[error("a key does not open: {0}")]
    Crypto(#[from] super::crypto::CryptoError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn parse_hex_key(hex_text: &str) -> Option<Key256> {
    let bytes = hex::decode(hex_text.trim()).ok()?;
    Some(Key256(bytes.try_into().ok()?))
}

impl Keyring {
    /// Loads the key file if it exists (it is created on first use otherwise).
    pub fn open(path: &Path, meta: MetaStore) -> Result<Self, KeyringError> {
        let ring = Keyring {
            path: path.to_path_buf(),
            masters: Arc::default(),
            create: Arc::default(),
            meta,
        };
        if path.exists() {
            let loaded = ring.read_file()?;
            *ring.masters.write().unwrap_or_else(|p| p.into_inner()) = loaded;
        }
        Ok(ring)
    }

    fn file_err(&self, e: impl std::fmt::Display) -> KeyringError {
        KeyringError::File(self.path.display().to_string(), e.to_string())
    }

    fn read_file(&self) -> Result<MasterKeys, KeyringError> {
        let text = std::fs::read_to_string(&self.path).map_err(|e| self.file_err(e))?;
        let file: KeyFile = toml::from_str(&text).map_err(|e| self.file_err(e))?;
        let mut keys = BTreeMap::new();
        for (id, hex_key) in &file.keys {
            let key = parse_hex_key(hex_key).ok_or_else(|| self.file_err(format!("key {id} is not 64 hex digits")))?;
            keys.insert(id.clone(), key);
        }
        if !keys.contains_key(&file.current) {
            return Err(self.file_err(format!("current key {} is not in [keys]", file.current)));
        }
        Ok(MasterKeys {
            current: Some(file.current),
            keys,
        })
    }

    /// Writes the key file atomically (temp file with mode 0600, fsync, rename, dir fsync).
    fn write_file(&self, keys: &MasterKeys) -> Result<(), KeyringError> {
        let file = KeyFile {
            current: keys.current.clone().unwrap_or_default(),
            keys: keys.keys.iter().map(|(id, k)| (id.clone(), hex::encode(k.0))).collect(),
        };
        let text = toml::to_string(&file).map_err(|e| self.file_err(e))?;
        let dir = self
            .path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(|e| self.file_err(e))?;
        let tmp = dir.join(format!(".strata-master-key.{:08x}.tmp", rand::random::<u32>()));
        let written = (|| -> std::io::Result<()> {
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp)?;
            f.write_all(b"# Strata master keys: keep this file secret and backed up; without it\n")?;
            f.write_all(b"# encrypted objects cannot be read.\n")?;
            f.write_all(text.as_bytes())?;
            f.sync_all()?;
            std::fs::rename(&tmp, &self.path)?;
            super::blob::fsync_dir(dir)
        })();
        if written.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        written.map_err(|e| self.file_err(e))
    }

    fn new_master_id() -> String {
        let t = time::OffsetDateTime::now_utc();
        format!("mk-{}-{:08x}", t.unix_timestamp(), rand::random::<u32>())
    }

    /// The current master key, created (with the key file) on first use.
    pub fn current_master(&self) -> Result<(String, Key256), KeyringError> {
        {
            let m = self.masters.read().unwrap_or_else(|p| p.into_inner());
            if let Some(id) = &m.current {
                if let Some(k) = m.keys.get(id) {
                    return Ok((id.clone(), k.clone()));
                }
            }
        }
        let _guard = self.create.lock().unwrap_or_else(|p| p.into_inner());
        if self.path.exists() {
            let loaded = self.read_file()?;
            *self.masters.write().unwrap_or_else(|p| p.into_inner()) = loaded;
        } else {
            // A missing key file with encrypted data already stored means the file was lost
            // or the config points elsewhere: a new key would make those objects unreadable
            // for good and orphan what is written next. Refuse instead.
            if self.anything_sealed_by_a_master()? {
                return Err(self.file_err(
                    "the master key file is missing, but encrypted objects or KMS keys exist: restore the file (or fix encryption.master_key_file)",
                ));
            }
            let id = Self::new_master_id();
            let mut keys = MasterKeys::default();
            keys.keys.insert(id.clone(), Key256::random()?);
            keys.current = Some(id);
            self.write_file(&keys)?;
            tracing::info!(path = %self.path.display(), "created the master key file");
            *self.masters.write().unwrap_or_else(|p| p.into_inner()) = keys;
        }
        let m = self.masters.read().unwrap_or_else(|p| p.into_inner());
        match m
            .current
            .as_ref()
            .and_then(|id| m.keys.get(id).map(|k| (id.clone(), k.clone())))
        {
            Some(found) => Ok(found),
            None => Err(self.file_err("no current key")),
        }
    }

    pub fn master(&self, id: &str) -> Result<Key256, KeyringError> {
        let m = self.masters.read().unwrap_or_else(|p| p.into_inner());
        m.keys
            .get(id)
            .cloned()
            .ok_or_else(|| self.file_err(format!("master key {id} is missing (was the key file replaced?)")))
    }

    // ---- SSE-KMS keys ----

    fn check_kms_name(name: &str) -> Result<(), KeyringError> {
        let ok = !name.is_empty()
            && name.len() <= 64
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_/".contains(&b));
        if ok {
            Ok(())
        } else {
            Err(KeyringError::BadKmsName(name.to_string()))
        }
    }

    pub fn create_kms_key(&self, name: &str) -> Result<(), KeyringError> {
        Self::check_kms_name(name)?;
        let (master_id, master) = self.current_master()?;
        let rec = KmsKeyRecord {
            master_id,
            wrapped: master.wrap(&Key256::random()?)?,
            created_ms: crate::util::now_ms(),
        };
        if !self.meta.insert_kms_key(name, &encode(&rec)?)? {
            return Err(KeyringError::KmsKeyExists(name.to_string()));
        }
        self.meta.flush_blocking()?;
        Ok(())
    }

    pub fn kms_key(&self, name: &str) -> Result<Key256, KeyringError> {
        let Some(raw) = self.meta.kms_key(name)? else {
            return Err(KeyringError::UnknownKmsKey(name.to_string()));
        };
        let rec: KmsKeyRecord = decode(&raw)?;
        Ok(self.master(&rec.master_id)?.unwrap_key(&rec.wrapped)?)
    }

    pub fn kms_key_names(&self) -> Result<Vec<String>, KeyringError> {
        Ok(self.meta.kms_key_names()?)
    }

    // ---- rotation ----

    /// Re-seals every SSE-S3 data key and every KMS key under a new master key. `progress`
    /// gets (done, total) as records are visited. Returns how many keys were re-sealed.
    pub fn rotate_master(&self, mut progress: impl FnMut(u64, u64)) -> Result<u64, KeyringError> {
        self.current_master()?;
        let mut masters = self.read_file()?;
        if masters.keys.len() == 1 {
            // A fresh rotation; with more than one key a previous one is being resumed.
            let id = Self::new_master_id();
            masters.keys.insert(id.clone(), Key256::random()?);
            masters.current = Some(id);
            self.write_file(&masters)?;
        }
        *self.masters.write().unwrap_or_else(|p| p.into_inner()) = masters.clone();
        let (new_id, new_key) = self.current_master()?;
        let reseal = |enc: &mut ObjectEncryption| -> Result<bool, KeyringError> {
            if enc.kind != SseKind::S3 || enc.master_id.as_deref() == Some(new_id.as_str()) {
                return Ok(false);
            }
            let old = self.master(enc.master_id.as_deref().unwrap_or_default())?;
            let dk = old.unwrap_key(&enc.wrapped_key)?;
            enc.wrapped_key = new_key.wrap(&dk)?;
            enc.master_id = Some(new_id.clone());
            Ok(true)
        };
        let total = self.meta.record_count();
        let mut done = 0u64;
        let mut resealed = 0u64;
        for tree in self.meta.encrypted_record_trees() {
            for item in tree.iter() {
                let (k, v) = item.map_err(StoreError::from)?;
                done += 1;
                if done.is_multiple_of(256) {
                    progress(done, total);
                }
                let changed = if tree.name() == b"uploads" {
                    let mut rec: UploadRecord = decode(&v)?;
                    let resealed_here = match rec.encryption.as_mut() {
                        Some(enc) => reseal(enc)?,
                        None => false,
                    };
                    resealed_here.then(|| encode(&rec)).transpose()?
                } else {
                    let mut rec: ObjectRecord = decode(&v)?;
                    let resealed_here = match rec.encryption.as_mut() {
                        Some(enc) => reseal(enc)?,
                        None => false,
                    };
                    resealed_here.then(|| encode(&rec)).transpose()?
                };
                if let Some(new_value) = changed {
                    // A record changed meanwhile (only possible with a server running) is
                    // left for the next run.
                    if self.meta.replace_record(tree, &k, &v, new_value)? {
                        resealed += 1;
                    }
                }
            }
        }
        for (name, raw) in self.meta.kms_keys_raw()? {
            let mut rec: KmsKeyRecord = decode(&raw)?;
            if rec.master_id != new_id {
                let k = self.master(&rec.master_id)?.unwrap_key(&rec.wrapped)?;
                rec.wrapped = new_key.wrap(&k)?;
                rec.master_id = new_id.clone();
                self.meta.put_kms_key(&name, &encode(&rec)?)?;
                resealed += 1;
            }
        }
        self.meta.flush_blocking()?;
        progress(done, total);
        // Everything is sealed by the new key: the old ones can go.
        if self.still_sealed_by_old(&new_id)? {
            return Err(self.file_err("some keys changed during the rotation; run it again"));
        }
        masters.keys.retain(|id, _| *id == new_id);
        self.write_file(&masters)?;
        *self.masters.write().unwrap_or_else(|p| p.into_inner()) = masters;
        Ok(resealed)
    }

    fn anything_sealed_by_a_master(&self) -> Result<bool, KeyringError> {
        Ok(!self.meta.kms_keys_raw()?.is_empty() || self.any_data_key(|e| e.kind == SseKind::S3)?)
    }

    fn still_sealed_by_old(&self, new_id: &str) -> Result<bool, KeyringError> {
        if self.any_data_key(|e| e.kind == SseKind::S3 && e.master_id.as_deref() != Some(new_id))? {
            return Ok(true);
        }
        for (_, raw) in self.meta.kms_keys_raw()? {
            if decode::<KmsKeyRecord>(&raw)?.master_id != new_id {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Does any stored object, version or pending upload have a sealed data key matching `pred`?
    fn any_data_key(&self, pred: impl Fn(&ObjectEncryption) -> bool) -> Result<bool, KeyringError> {
        for tree in self.meta.encrypted_record_trees() {
            for item in tree.iter() {
                let (_, v) = item.map_err(StoreError::from)?;
                let enc = if tree.name() == b"uploads" {
                    decode::<UploadRecord>(&v)?.encryption
                } else {
                    decode::<ObjectRecord>(&v)?.encryption
                };
                if enc.as_ref().is_some_and(&pred) {
                    return Ok(true);
                }
            }
        }
        Ok(false)
    }
}
