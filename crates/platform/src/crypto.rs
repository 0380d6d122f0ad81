//! Secrets at rest: AES-256-GCM under versioned keys.
//!
//! A sealed value reads `v<version>.<nonce>.<ciphertext>` (base64url), so any key that ever
//! sealed something can still open it, new values always use the current key, and rotation is:
//! add a key, make it current, re-seal old rows (`needs_reseal`). A database dump shows no
//! plaintext. Keys come from config (`*_FILE` in production), never from the database.

use std::collections::BTreeMap;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SealError {
    #[error("sealing key {0}: must be 32 bytes, base64-encoded")]
    BadKey(u32),
    #[error("no sealing key configured")]
    NoKeys,
    #[error("sealed value is malformed")]
    Malformed,
    #[error("sealed with unknown key version {0}")]
    UnknownVersion(u32),
    #[error("sealed value failed authentication")]
    Tampered,
}

#[derive(Clone)]
pub struct Sealer {
    keys: BTreeMap<u32, Aes256Gcm>,
    current: u32,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sealer")
            .field("versions", &self.keys.keys().collect::<Vec<_>>())
            .field("current", &self.current)
            .finish()
    }
}

impl Sealer {
    /// `keys`: (version, base64 of 32 random bytes). The highest version seals.
    pub fn new(keys: &[(u32, &str)]) -> Result<Self, SealError> {
        let mut map = BTreeMap::new();
        for (version, b64) in keys {
            let raw = STANDARD.decode(b64.trim()).map_err(|_| SealError::BadKey(*version))?;
            if raw.len() != 32 {
                return Err(SealError::BadKey(*version));
            }
            map.insert(
                *version,
                Aes256Gcm::new(&Key::<Aes256Gcm>::try_from(raw.as_slice()).map_err(|_| SealError::BadKey(*version))?),
            );
        }
        let current = *map.keys().next_back().ok_or(SealError::NoKeys)?;
        Ok(Self { keys: map, current })
    }

    /// Parses `"1:<base64>,2:<base64>"` as found in config.
    pub fn from_config(spec: &str) -> Result<Self, SealError> {
        Self::from_source(&ConfigKeys(spec))
    }

    /// The master keys `source` provides.
    pub fn from_source(source: &dyn MasterKeySource) -> Result<Self, SealError> {
        let keys = source.master_keys()?;
        let borrowed: Vec<(u32, &str)> = keys.iter().map(|(v, k)| (*v, k.expose())).collect();
        Self::new(&borrowed)
    }

    /// The version new values are sealed under (the highest configured).
    pub fn current_version(&self) -> u32 {
        self.current
    }

    /// A fresh random key, base64 (for `make run` and tests).
    pub fn generate_key() -> String {
        let mut raw = [0u8; 32];
        rand::fill(&mut raw);
        STANDARD.encode(raw)
    }

    /// Encrypts `plaintext`, binding it to `context` (e.g. "whatsapp_accounts.token:<row id>") so a
    /// ciphertext copied to another row or column does not open.
    pub fn seal(&self, plaintext: &[u8], context: &str) -> String {
        let mut nonce = [0u8; 12];
        rand::fill(&mut nonce);
        let cipher = &self.keys[&self.current];
        let ct = cipher
            .encrypt(&Nonce::from(nonce), Payload { msg: plaintext, aad: context.as_bytes() })
            .expect("AES-GCM encryption of an in-memory buffer cannot fail");
        format!("v{}.{}.{}", self.current, URL_SAFE_NO_PAD.encode(nonce), URL_SAFE_NO_PAD.encode(ct))
    }

    pub fn open(&self, sealed: &str, context: &str) -> Result<Vec<u8>, SealError> {
        let mut parts = sealed.splitn(3, '.');
        let (Some(v), Some(n), Some(c)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(SealError::Malformed);
        };
        let version: u32 = v.strip_prefix('v').and_then(|v| v.parse().ok()).ok_or(SealError::Malformed)?;
        let cipher = self.keys.get(&version).ok_or(SealError::UnknownVersion(version))?;
        let nonce = URL_SAFE_NO_PAD.decode(n).map_err(|_| SealError::Malformed)?;
        if nonce.len() != 12 {
            return Err(SealError::Malformed);
        }
        let ct = URL_SAFE_NO_PAD.decode(c).map_err(|_| SealError::Malformed)?;
        let nonce = Nonce::try_from(nonce.as_slice()).map_err(|_| SealError::Malformed)?;
        cipher.decrypt(&nonce, Payload { msg: &ct, aad: context.as_bytes() }).map_err(|_| SealError::Tampered)
    }

    /// Whether a stored value should be re-sealed under the current key.
    pub fn needs_reseal(&self, sealed: &str) -> bool {
        !sealed.starts_with(&format!("v{}.", self.current))
    }

    /// Opens with any known key and seals again with the current one.
    pub fn reseal(&self, sealed: &str, context: &str) -> Result<String, SealError> {
        Ok(self.seal(&self.open(sealed, context)?, context))
    }
}

/// Where master keys come from. The configuration (a `*_sealing_keys` value, from a `*_FILE` in
/// production) is the one implementation; a KMS would be another, handing over the same
/// versioned keys (or unwrapping them) without the service learning where they are kept.
pub trait MasterKeySource {
    /// Every key that may open a stored value, by version; the highest seals.
    fn master_keys(&self) -> Result<Vec<(u32, crate::Secret)>, SealError>;
}

/// Master keys written in config as `"1:<base64>,2:<base64>"` (local and production alike).
#[derive(Debug, Clone, Copy)]
pub struct ConfigKeys<'a>(pub &'a str);

impl MasterKeySource for ConfigKeys<'_> {
    fn master_keys(&self) -> Result<Vec<(u32, crate::Secret)>, SealError> {
        let mut keys = Vec::new();
        for part in self.0.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (v, k) = part.split_once(':').ok_or(SealError::Malformed)?;
            let v: u32 = v.trim().parse().map_err(|_| SealError::Malformed)?;
            keys.push((v, crate::Secret::new(k.to_owned())));
        }
        Ok(keys)
    }
}

/// What `reseal` needs of a binary's configuration: its sealing keys, if it has any.
pub trait SealingConfig {
    /// The `*_sealing_keys` value (`None`: the service seals nothing).
    fn sealing_keys(&self) -> Option<&crate::Secret> {
        None
    }
}

/// Whether the key material of `entry` (`"1:<base64>"`) is among the keys of `spec`, under any
/// version: a public development key must not be usable for opening either.
pub fn uses_key(spec: &str, entry: &str) -> bool {
    let material = |p: &str| p.split_once(':').map(|(_, k)| k.trim().to_owned());
    let Some(wanted) = material(entry) else { return false };
    spec.split(',').map(str::trim).filter_map(material).any(|k| k == wanted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seals_and_opens_and_detects_tampering() {
        let k = Sealer::generate_key();
        let s = Sealer::new(&[(1, &k)]).unwrap();
        let sealed = s.seal(b"EAAG-token", "ctx:1");
        assert!(!sealed.contains("EAAG"));
        assert_eq!(s.open(&sealed, "ctx:1").unwrap(), b"EAAG-token");
        assert_eq!(s.open(&sealed, "ctx:2").unwrap_err(), SealError::Tampered, "bound to its context");
        let mut flipped = sealed.clone().into_bytes();
        let last = flipped.len() - 2;
        flipped[last] = if flipped[last] == b'A' { b'B' } else { b'A' };
        assert!(s.open(std::str::from_utf8(&flipped).unwrap(), "ctx:1").is_err());
        assert_ne!(s.seal(b"x", "c"), s.seal(b"x", "c"), "fresh nonce every time");
    }

    #[test]
    fn rotation_keeps_old_values_readable_and_reseals_under_the_new_key() {
        let (k1, k2) = (Sealer::generate_key(), Sealer::generate_key());
        let old = Sealer::new(&[(1, &k1)]).unwrap();
        let sealed = old.seal(b"secret", "c");
        let rotated = Sealer::from_config(&format!("1:{k1}, 2:{k2}")).unwrap();
        assert!(rotated.needs_reseal(&sealed));
        let resealed = rotated.reseal(&sealed, "c").unwrap();
        assert!(resealed.starts_with("v2."));
        assert!(!rotated.needs_reseal(&resealed));
        assert_eq!(rotated.open(&resealed, "c").unwrap(), b"secret");
        assert_eq!(old.open(&resealed, "c").unwrap_err(), SealError::UnknownVersion(2));
    }

    #[test]
    fn a_key_is_found_under_any_version() {
        let dev = "1:bmV4dXMtbG9jYWwtZGV2ZWxvcG1lbnQta2V5LTMyYis=";
        let other = Sealer::generate_key();
        assert!(uses_key(dev, dev));
        assert!(uses_key(&format!("1:{other}, 7:bmV4dXMtbG9jYWwtZGV2ZWxvcG1lbnQta2V5LTMyYis="), dev));
        assert!(!uses_key(&format!("1:{other}"), dev));
        assert!(!uses_key("", dev));
    }

    #[test]
    fn config_is_a_master_key_source() {
        let (k1, k2) = (Sealer::generate_key(), Sealer::generate_key());
        let spec = format!("2:{k2}, 1:{k1}");
        let keys = ConfigKeys(&spec).master_keys().unwrap();
        assert_eq!(keys.iter().map(|(v, k)| (*v, k.expose().to_owned())).collect::<Vec<_>>(), [(2, k2), (1, k1)]);
        assert_eq!(Sealer::from_source(&ConfigKeys(&spec)).unwrap().current_version(), 2, "the highest seals");
        assert_eq!(ConfigKeys("x").master_keys().unwrap_err(), SealError::Malformed);
        assert_eq!(ConfigKeys("one:abc").master_keys().unwrap_err(), SealError::Malformed);
    }

    #[test]
    fn bad_keys_and_values_are_errors() {
        assert_eq!(Sealer::new(&[(1, "c2hvcnQ=")]).unwrap_err(), SealError::BadKey(1));
        assert_eq!(Sealer::new(&[]).unwrap_err(), SealError::NoKeys);
        let s = Sealer::new(&[(1, &Sealer::generate_key())]).unwrap();
        for junk in ["", "v1", "v1.abc", "x1.a.b", "v9.AAAAAAAAAAAAAAAA.AAAA"] {
            assert!(s.open(junk, "c").is_err(), "{junk}");
        }
    }
}
