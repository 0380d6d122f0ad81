//! API keys: `nx_<8 hex prefix>_<secret>`, stored hashed behind the public prefix.

use chrono::{DateTime, Utc};
use uuid::Uuid;

#[derive(Debug, Clone)]
pub struct ApiKeyView {
    pub id: Uuid,
    pub name: String,
    pub prefix: String,
    pub scopes: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// What an exchange checks a presented key against.
#[derive(Debug, Clone)]
pub struct StoredKey {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub created_by: Uuid,
    pub secret_hash: Vec<u8>,
    pub scopes: Vec<String>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
}

/// The prefix of a well-formed key (the prefix finds the row, the whole string is hashed).
pub fn split_secret(secret: &str) -> Option<&str> {
    let rest = secret.strip_prefix("nx_")?;
    let (prefix, body) = rest.split_once('_')?;
    (prefix.len() == 8 && prefix.bytes().all(|b| b.is_ascii_hexdigit()) && body.len() >= 40 && body.len() <= 64)
        .then_some(prefix)
}

#[cfg(test)]
mod tests {
    use super::split_secret;

    #[test]
    fn key_format_is_checked_before_any_lookup() {
        let good = format!("nx_0a1b2c3d_{}", "A".repeat(43));
        assert_eq!(split_secret(&good), Some("0a1b2c3d"));
        assert_eq!(split_secret("nx_0a1b2c3d_short"), None);
        assert_eq!(split_secret(&format!("nx_zzzzzzzz_{}", "A".repeat(43))), None);
        assert_eq!(split_secret(&format!("sk_0a1b2c3d_{}", "A".repeat(43))), None);
    }
}
