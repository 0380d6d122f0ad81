//! A workspace's analytics settings and its write key: what they hold and the rules for them.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Datelike, NaiveDate, Utc};
use nexus_kernel::{Error, ErrorKind, TenantId};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::privacy::Salt;

/// The settings row every workspace gets on first use. The nil tenant holds the salt for facts
/// that belong to no workspace (audit of fleet-wide tables).
pub const SYSTEM_TENANT: TenantId = TenantId::from_uuid(Uuid::nil());

/// Retention a workspace may choose, in days.
pub const MAX_RETENTION_DAYS: u32 = 3650;

/// Retention when the configured default does not fit a column (it always does: config checks it).
pub const FALLBACK_RETENTION_DAYS: i32 = 395;

#[derive(Debug, Clone)]
pub struct WorkspaceSettings {
    pub time_zone: String,
    pub retention_days: u32,
    pub salt: Salt,
}

/// `analytics.invalid_retention` outside 1..=[`MAX_RETENTION_DAYS`].
pub fn check_retention(days: u32) -> Result<(), Error> {
    if !(1..=MAX_RETENTION_DAYS).contains(&days) {
        return Err(Error::new(ErrorKind::Unprocessable, "analytics.invalid_retention")
            .with_param("max", MAX_RETENTION_DAYS.to_string()));
    }
    Ok(())
}

/// `analytics.invalid_time_zone` for a name that cannot be an IANA zone (whether Postgres knows
/// it is asked separately).
pub fn invalid_zone(tz: &str) -> Error {
    Error::new(ErrorKind::Unprocessable, "analytics.invalid_time_zone").with_param("zone", tz)
}

/// Whether `tz` is worth asking Postgres about.
pub fn zone_shaped(tz: &str) -> bool {
    !tz.is_empty() && tz.len() <= 64
}

/// What a verified write key grants: tracking into one workspace, from the allowed origins.
#[derive(Debug, Clone)]
pub struct KeyGrant {
    pub tenant: TenantId,
    pub key_id: Uuid,
    pub allowed_origins: Vec<String>,
}

/// A workspace's write key as its owners see it.
#[derive(Debug, Clone)]
pub struct WriteKey {
    pub key: String,
    pub key_id: Uuid,
    pub allowed_origins: Vec<String>,
    pub created_at: DateTime<Utc>,
}

pub const WRITE_KEY_PREFIX: &str = "wk_";

/// Whether `key` can be a write key at all (checked before any lookup).
pub fn key_shaped(key: &str) -> bool {
    key.starts_with(WRITE_KEY_PREFIX) && key.len() <= 100
}

/// Write keys are looked up by their hash; the key itself is only stored sealed.
pub fn key_hash(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

/// A fresh write key: `wk_` and 32 random bytes, base64url.
pub fn new_write_key() -> String {
    let bytes: [u8; 32] = rand::random();
    format!("{WRITE_KEY_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// The sealing context of a workspace's salt.
pub fn salt_context(tenant: TenantId) -> String {
    format!("analytics.salt:{}", tenant.as_uuid())
}

/// The sealing context of a workspace's write key.
pub fn key_context(tenant: TenantId) -> String {
    format!("analytics.write_key:{}", tenant.as_uuid())
}

/// Origins as browsers send them: `scheme://host[:port]`, at most 20.
pub fn check_origins(origins: &[String]) -> Result<Vec<String>, Error> {
    let bad = |o: &str| Error::new(ErrorKind::Unprocessable, "analytics.invalid_origin").with_param("origin", o);
    if origins.len() > 20 {
        return Err(bad("…"));
    }
    origins
        .iter()
        .map(|o| {
            let u = url::Url::parse(o).map_err(|_| bad(o))?;
            if !matches!(u.scheme(), "http" | "https") || u.host_str().is_none() || u.path() != "/" {
                return Err(bad(o));
            }
            Ok(u.origin().ascii_serialization())
        })
        .collect()
}

/// Whether a request from `origin` may use a key restricted to `allowed` (none = any origin).
pub fn origin_allowed(allowed: &[String], origin: &str) -> bool {
    allowed.is_empty() || allowed.iter().any(|a| a.eq_ignore_ascii_case(origin.trim_end_matches('/')))
}

/// The first day of `t`'s month: the key of its events' partition.
pub fn month_of(t: DateTime<Utc>) -> Option<NaiveDate> {
    NaiveDate::from_ymd_opt(t.year(), t.month(), 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_keys_look_alike_and_differ() {
        let (a, b) = (new_write_key(), new_write_key());
        assert!(a.starts_with("wk_") && a.len() == 46, "{a}");
        assert_ne!(a, b);
        assert_ne!(key_hash(&a), key_hash(&b));
    }

    #[test]
    fn origins_are_normalised_and_checked() {
        let ok = check_origins(&["https://Shop.Example.com".into(), "http://localhost:3000".into()]).unwrap();
        assert_eq!(ok, vec!["https://shop.example.com", "http://localhost:3000"]);
        assert!(check_origins(&["https://x.com/path".into()]).is_err());
        assert!(check_origins(&["javascript:alert(1)".into()]).is_err());
        assert!(origin_allowed(&[], "https://any.example"));
        assert!(origin_allowed(&ok, "https://shop.example.com"));
        assert!(!origin_allowed(&ok, "https://evil.example"));
        assert!(!origin_allowed(&ok, ""));
    }
}
