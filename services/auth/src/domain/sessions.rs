//! Sessions: a family of refresh-token rows, one per rotation, opened by a sign-in and ended by
//! logout, revocation, reuse of a spent token or its absolute lifetime.

use chrono::{DateTime, Utc};
use uuid::Uuid;

/// How a session family was authenticated: carried from row to row on refresh, and into the
/// family a workspace switch opens.
#[derive(Debug, Clone)]
pub struct SessionAuth {
    pub amr: Vec<String>,
    pub auth_time: DateTime<Utc>,
    pub family_expires_at: DateTime<Utc>,
}

/// A live session family, as the session list shows it.
#[derive(Debug, Clone)]
pub struct SessionView {
    pub id: Uuid,
    pub ip: String,
    pub user_agent: String,
    pub device: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: DateTime<Utc>,
}

/// A refresh-token row, as rotation reads it.
#[derive(Debug, Clone)]
pub struct StoredRefresh {
    pub id: Uuid,
    pub family_id: Uuid,
    pub user_id: Uuid,
    pub workspace_id: Uuid,
    pub amr: Vec<String>,
    pub expires_at: DateTime<Utc>,
    pub replaced_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub auth_time: DateTime<Utc>,
    pub family_expires_at: DateTime<Utc>,
    pub successor_id: Option<Uuid>,
    pub successor_sealed: Option<String>,
}

/// The live, unrotated newest row of a family: what a successor handed out again needs.
#[derive(Debug, Clone)]
pub struct LiveRow {
    pub user_id: Uuid,
    pub workspace_id: Uuid,
    pub amr: Vec<String>,
}

/// Sealing context of a row's successor refresh token.
pub fn successor_context(row: Uuid) -> String {
    format!("auth.sessions.successor:{row}")
}

/// A short device description from a User-Agent, for the session list.
pub fn device_name(user_agent: &str) -> String {
    let ua = user_agent.to_lowercase();
    let browser = if ua.contains("edg/") {
        "Edge"
    } else if ua.contains("chrome/") && !ua.contains("chromium") {
        "Chrome"
    } else if ua.contains("firefox/") {
        "Firefox"
    } else if ua.contains("safari/") {
        "Safari"
    } else if ua.contains("curl/") {
        "curl"
    } else {
        "Unknown browser"
    };
    let os = if ua.contains("iphone") || ua.contains("ipad") {
        "iOS"
    } else if ua.contains("android") {
        "Android"
    } else if ua.contains("windows") {
        "Windows"
    } else if ua.contains("mac os") {
        "macOS"
    } else if ua.contains("linux") {
        "Linux"
    } else {
        "unknown OS"
    };
    format!("{browser} on {os}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_are_named_from_user_agents() {
        assert_eq!(
            device_name(
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36"
            ),
            "Chrome on Windows"
        );
        assert_eq!(device_name("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Safari/604.1"), "Safari on iOS");
        assert_eq!(device_name(""), "Unknown browser on unknown OS");
    }
}
