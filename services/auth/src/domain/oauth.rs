//! Sign-in with OpenID Connect providers: linked identities and pending sign-ins.

use chrono::{DateTime, Utc};
use uuid::Uuid;

/// A linked sign-in method, as `GET /v1/me/identities` shows it.
#[derive(Debug, Clone)]
pub struct IdentityView {
    pub id: Uuid,
    pub provider: String,
    pub email: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// A pending sign-in (state hashed, PKCE verifier sealed).
#[derive(Debug, Clone)]
pub struct OAuthState {
    pub provider: String,
    pub nonce: String,
    pub verifier_sealed: String,
    pub redirect_uri: String,
    pub link_user_id: Option<Uuid>,
    pub code_hash: Option<Vec<u8>>,
    pub mfa_user_id: Option<Uuid>,
    pub pending_subject: Option<String>,
    pub pending_email: Option<String>,
}

/// A sign-in the provider has answered, waiting for the user's second factor.
pub struct WaitingState<'a> {
    pub state_hash: &'a [u8],
    pub provider: &'a str,
    pub redirect_uri: &'a str,
    /// Hash of the provider's code: only the same callback may finish it.
    pub code_hash: &'a [u8],
    pub user: Uuid,
    /// The identity to link once the factor passes, if any.
    pub pending_subject: Option<&'a str>,
    pub pending_email: Option<&'a str>,
}

/// Sealing context of a pending sign-in's PKCE verifier.
pub fn verifier_context(state_hash: &[u8]) -> String {
    format!("auth.oauth_states:{}", hex::encode(state_hash))
}

/// `google` -> `Google`, for mail.
pub fn provider_display(provider: &str) -> String {
    let mut chars = provider.chars();
    chars.next().map(|c| c.to_uppercase().chain(chars).collect()).unwrap_or_default()
}
