//! Encryption at rest with ring's AES-256-GCM: data keys, key wrapping, and the segment format
//! of encrypted blobs.
//!
//! Every encrypted object has its own random 256-bit data key, stored only wrapped (sealed)
//! by another key: the master key (SSE-S3), a named keyring key (SSE-KMS) or the customer's
//! key (SSE-C). Each blob of the object is encrypted under its own key, HMAC-SHA256(data key,
//! blob id), so nonces never repeat across blobs (parts can be re-uploaded) and the nonce can
//! simply be the segment number.
//!
//! Blob format: the plaintext is cut into [`SEGMENT`]-byte segments (the last may be shorter;
//! an empty blob is one empty segment); each is stored as ciphertext followed by a 16-byte tag.
//! Segment `i` uses nonce `0u32 ‖ i` and additional data `[final]`, so reordering, truncation
//! or extension of segments fails authentication, like any flipped byte. A range read decrypts
//! only the segments it overlaps.

use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};

/// Plaintext bytes per segment.
pub const SEGMENT: usize = 64 * 1024;
/// Authentication tag per segment.
pub const TAG: usize = 16;

#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    #[error("stored data failed authentication (tampered or corrupt)")]
    Tampered,
    #[error("the system random number generator failed")]
    Random,
    #[error("wrapped key has the wrong length")]
    BadWrappedKey,
}

/// A 256-bit AES key. Never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Key256(pub [u8; 32]);

impl std::fmt::Debug for Key256 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Key256(..)")
    }
}

impl Key256 {
    pub fn random() -> Result<Self, CryptoError> {
        let mut k = [0u8; 32];
        SystemRandom::new().fill(&mut k).map_err(|_| CryptoError::Random)?;
        Ok(Key256(k))
    }

    fn aead(&self) -> LessSafeKey {
        // A 32-byte key is always valid for AES-256-GCM.
        LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &self.0).unwrap_or_else(|_| unreachable!()))
    }

    /// A key for one purpose (`label`), derived with HMAC-SHA256 so that keys never repeat
    /// across blobs or derivatives.
    pub fn derive(&self, label: &[u8]) -> Key256 {
        let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, &self.0), label);
        let mut k = [0u8; 32];
        k.copy_from_slice(tag.as_ref());
        Key256(k)
    }

    /// Seals `key` under `self` (random nonce ‖ ciphertext ‖ tag).
    pub fn wrap(&self, key: &Key256) -> Result<Vec<u8>, CryptoError> {
        self.seal_with_random_nonce(&key.0, b"strata-wrapped-key")
    }

    pub fn unwrap_key(&self, wrapped: &[u8]) -> Result<Key256, CryptoError> {
        let plain = self.open_with_random_nonce(wrapped, b"strata-wrapped-key")?;
        let bytes: [u8; 32] = plain.as_slice().try_into().map_err(|_| CryptoError::BadWrappedKey)?;
        Ok(Key256(bytes))
    }

    /// Seals a small message (a derivative, a wrapped key) with a random nonce.
    pub fn seal_with_random_nonce(&self, plain: &[u8], aad: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new().fill(&mut nonce).map_err(|_| CryptoError::Random)?;
        let mut out = Vec::with_capacity(NONCE_LEN + plain.len() + TAG);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(plain);
        let tag = self
            .aead()
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad),
                &mut out[NONCE_LEN..],
            )
            .map_err(|_| CryptoError::Tampered)?;
        out.extend_from_slice(tag.as_ref());
        Ok(out)
    }

    pub fn open_with_random_nonce(&self, sealed: &[u8], aad: &[u8]) -> Result<Vec<u8>, CryptoError> {
        if sealed.len() < NONCE_LEN + TAG {
            return Err(CryptoError::Tampered);
        }
        let (nonce, rest) = sealed.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| CryptoError::Tampered)?;
        let mut buf = rest.to_vec();
        let plain = self
            .aead()
            .open_in_place(Nonce::assume_unique_for_key(nonce), Aad::from(aad), &mut buf)
            .map_err(|_| CryptoError::Tampered)?;
        let n = plain.len();
        buf.truncate(n);
        Ok(buf)
    }
}

fn segment_nonce(index: u64) -> Nonce {
    let mut n = [0u8; NONCE_LEN];
    n[4..].copy_from_slice(&index.to_be_bytes());
    Nonce::assume_unique_for_key(n)
}

/// Encrypts and decrypts the segments of one blob.
pub struct BlobCipher {
    key: LessSafeKey,
}

impl BlobCipher {
    /// The cipher of blob `blob_id` of an object with data key `data_key`.
    pub fn new(data_key: &Key256, blob_id: &str) -> Self {
        let mut label = b"strata-blob:".to_vec();
        label.extend_from_slice(blob_id.as_bytes());
        BlobCipher {
            key: data_key.derive(&label).aead(),
        }
    }

    /// Encrypts segment `index` in place and appends its tag.
    pub fn seal_segment(&self, index: u64, is_final: bool, buf: &mut Vec<u8>) -> Result<(), CryptoError> {
        let tag = self
            .key
            .seal_in_place_separate_tag(segment_nonce(index), Aad::from([u8::from(is_final)]), buf)
            .map_err(|_| CryptoError::Tampered)?;
        buf.extend_from_slice(tag.as_ref());
        Ok(())
    }

    /// Decrypts segment `index` (ciphertext ‖ tag) in place; returns the plaintext length.
    pub fn open_segment(&self, index: u64, is_final: bool, buf: &mut [u8]) -> Result<usize, CryptoError> {
        let plain = self
            .key
            .open_in_place(segment_nonce(index), Aad::from([u8::from(is_final)]), buf)
            .map_err(|_| CryptoError::Tampered)?;
        Ok(plain.len())
    }
}

/// Number of segments of a blob with `plain_len` plaintext bytes.
pub fn segments(plain_len: u64) -> u64 {
    plain_len.div_ceil(SEGMENT as u64).max(1)
}

/// Bytes on disk of an encrypted blob with `plain_len` plaintext bytes.
pub fn sealed_len(plain_len: u64) -> u64 {
    plain_len + segments(plain_len) * TAG as u64
}

/// Incremental encryption of a stream into segments: feed plaintext, take ciphertext.
pub struct SegmentSealer {
    cipher: BlobCipher,
    pending: Vec<u8>,
    index: u64,
}

impl SegmentSealer {
    pub fn new(cipher: BlobCipher) -> Self {
        SegmentSealer {
            cipher,
            pending: Vec::with_capacity(SEGMENT + TAG),
            index: 0,
        }
    }

    /// Adds plaintext; appends every segment known not to be the last to `out`. A full
    /// segment is held back until more data arrives, since only then is it known not final.
    pub fn update(&mut self, mut data: &[u8], out: &mut Vec<u8>) -> Result<(), CryptoError> {
        while !data.is_empty() {
            if self.pending.len() == SEGMENT {
                self.flush_segment(false, out)?;
            }
            let take = (SEGMENT - self.pending.len()).min(data.len());
            self.pending.extend_from_slice(&data[..take]);
            data = &data[take..];
        }
        Ok(())
    }

    /// Seals the last segment.
    pub fn finish(mut self, out: &mut Vec<u8>) -> Result<(), CryptoError> {
        self.flush_segment(true, out)
    }

    fn flush_segment(&mut self, is_final: bool, out: &mut Vec<u8>) -> Result<(), CryptoError> {
        let mut seg = std::mem::replace(&mut self.pending, Vec::with_capacity(SEGMENT + TAG));
        self.cipher.seal_segment(self.index, is_final, &mut seg)?;
        out.extend_from_slice(&seg);
        self.index += 1;
        Ok(())
    }
}

/// A fresh random salt (for SSE-C key hashes).
pub fn random_bytes<const N: usize>() -> Result<[u8; N], CryptoError> {
    let mut b = [0u8; N];
    SystemRandom::new().fill(&mut b).map_err(|_| CryptoError::Random)?;
    Ok(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seal_all(cipher: BlobCipher, plain: &[u8], chunk: usize) -> Vec<u8> {
        let mut sealer = SegmentSealer::new(cipher);
        let mut out = Vec::new();
        for c in plain.chunks(chunk.max(1)) {
            sealer.update(c, &mut out).expect("seal");
        }
        sealer.finish(&mut out).expect("finish");
        out
    }

    fn open_all(cipher: &BlobCipher, sealed: &[u8], plain_len: u64) -> Result<Vec<u8>, CryptoError> {
        let n = segments(plain_len);
        let mut out = Vec::new();
        let mut pos = 0usize;
        for i in 0..n {
            let len = if i + 1 == n { sealed.len() - pos } else { SEGMENT + TAG };
            let mut seg = sealed.get(pos..pos + len).ok_or(CryptoError::Tampered)?.to_vec();
            let p = cipher.open_segment(i, i + 1 == n, &mut seg)?;
            out.extend_from_slice(&seg[..p]);
            pos += len;
        }
        Ok(out)
    }

    #[test]
    fn segments_round_trip_at_every_boundary() {
        let key = Key256::random().expect("key");
        for len in [0, 1, SEGMENT - 1, SEGMENT, SEGMENT + 1, 3 * SEGMENT, 3 * SEGMENT + 17] {
            let plain: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();
            for chunk in [1000, SEGMENT, 7 * SEGMENT] {
                let sealed = seal_all(BlobCipher::new(&key, "b1"), &plain, chunk);
                assert_eq!(sealed.len() as u64, sealed_len(len as u64), "len {len}");
                let back = open_all(&BlobCipher::new(&key, "b1"), &sealed, len as u64).expect("open");
                assert_eq!(back, plain, "len {len} chunk {chunk}");
            }
        }
    }

    #[test]
    fn tampering_truncation_and_wrong_keys_are_detected() {
        let key = Key256::random().expect("key");
        let plain = vec![7u8; 2 * SEGMENT + 5];
        let sealed = seal_all(BlobCipher::new(&key, "b1"), &plain, SEGMENT);
        let mut flipped = sealed.clone();
        flipped[SEGMENT + 3] ^= 1;
        assert!(open_all(&BlobCipher::new(&key, "b1"), &flipped, plain.len() as u64).is_err());
        // Dropping the last segment leaves a non-final segment last.
        let truncated = &sealed[..2 * (SEGMENT + TAG)];
        assert!(open_all(&BlobCipher::new(&key, "b1"), truncated, 2 * SEGMENT as u64).is_err());
        // Another blob's key (same data key, different id) does not open it.
        assert!(open_all(&BlobCipher::new(&key, "b2"), &sealed, plain.len() as u64).is_err());
    }

    #[test]
    fn wrapped_keys_open_only_with_their_wrapping_key() {
        let master = Key256::random().expect("key");
        let other = Key256::random().expect("key");
        let dk = Key256::random().expect("key");
        let wrapped = master.wrap(&dk).expect("wrap");
        assert_eq!(master.unwrap_key(&wrapped).expect("unwrap"), dk);
        assert!(other.unwrap_key(&wrapped).is_err());
        let mut bad = wrapped.clone();
        bad[20] ^= 0x80;
        assert!(master.unwrap_key(&bad).is_err());
        assert!(master.unwrap_key(&wrapped[..10]).is_err());
    }
}
