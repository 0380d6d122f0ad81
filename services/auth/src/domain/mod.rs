//! Identity with no I/O: the types the use cases work with and the rules they apply (valid
//! emails and passwords, token and code formats, TOTP, signing-key material, mail rendering).

pub mod api_keys;
pub mod mail;
pub mod oauth;
pub mod rules;
pub mod secrets;
pub mod sessions;
pub mod signing;
pub mod workspaces;

use chrono::{DateTime, Utc};
use uuid::Uuid;

pub use api_keys::{ApiKeyView, StoredKey};
pub use oauth::{IdentityView, OAuthState, WaitingState};
pub use rules::{Email, check_avatar_url, check_name, check_password, check_timezone};
pub use secrets::{check_totp, new_totp_secret, qr_svg, random_token, recovery_codes, recovery_hash, token_hash, totp};
pub use sessions::{LiveRow, SessionAuth, SessionView, StoredRefresh, device_name};
pub use workspaces::{InvitationView, MemberView, Membership, PendingInvitation};

/// A person's account.
#[derive(Debug, Clone)]
pub struct User {
    pub id: Uuid,
    pub email: String,
    pub email_verified_at: Option<DateTime<Utc>>,
    pub name: String,
    pub avatar_url: Option<String>,
    pub password_hash: Option<String>,
    pub mfa_secret_sealed: Option<String>,
    pub mfa_pending_sealed: Option<String>,
    pub mfa_enabled_at: Option<DateTime<Utc>>,
    pub mfa_failed: i32,
    pub mfa_locked_until: Option<DateTime<Utc>>,
    pub mfa_last_step: i64,
    pub deletion_requested_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

/// A user's preferences.
#[derive(Debug, Clone)]
pub struct Settings {
    pub locale: String,
    pub timezone: String,
    pub notifications: serde_json::Value,
}

/// Profile changes: absent fields stay as they are.
#[derive(Debug, Clone, Default)]
pub struct ProfileUpdate {
    pub name: Option<String>,
    pub avatar_url: Option<String>,
    pub locale: Option<String>,
    pub timezone: Option<String>,
    pub notifications: Option<serde_json::Value>,
}
