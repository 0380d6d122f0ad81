//! TikTok Login Kit for the web (OAuth v2): a creator's own user token, which the Content Posting
//! API ([`crate::tiktok_posts`]) needs (scopes `video.publish` and `video.upload`). The TikTok API
//! for Business token of an advertiser does not post organically.
//!
//! - The user is sent to `https://www.tiktok.com/v2/auth/authorize/` with `client_key`, the
//!   comma-separated `scope`, `response_type=code`, `redirect_uri` and `state`.
//! - `POST {api}/v2/oauth/token/` (form) exchanges the code, and renews with the refresh token.
//!   Refresh tokens rotate: a renewal answers a new one and the one sent stops working, so a
//!   renewal is sent once and never retried here. Lifetimes come from `expires_in` and
//!   `refresh_expires_in` (TikTok has changed them; never assumed).
//! - `POST {api}/v2/oauth/revoke/` (form) ends the grant; `GET {api}/v2/user/info/` names the user.
//! - The token endpoints answer errors as `{"error": "invalid_grant", "error_description",
//!   "log_id"}`; the APIs as `{"data", "error": {"code", "message", "log_id"}}`.

use std::fmt;
use std::time::Duration;

use serde_json::Value;

use crate::http::RetryPolicy;
use crate::marketing::{PlatformError, call, text};

const PLATFORM: &str = "TikTok";

#[derive(Clone)]
pub struct TikTokLoginConfig {
    /// The Login Kit app's client key (not the Business app id).
    pub client_key: String,
    /// Never logged.
    pub client_secret: String,
    /// `https://www.tiktok.com/v2/auth/authorize/`.
    pub authorize_url: String,
    /// `https://open.tiktokapis.com`.
    pub api_url: String,
    pub timeout: Duration,
    /// Attempts of the reads (user info); token requests are sent once.
    pub attempts: u32,
}

impl fmt::Debug for TikTokLoginConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TikTokLoginConfig")
            .field("client_key", &self.client_key)
            .field("client_secret", &"<redacted>")
            .field("api_url", &self.api_url)
            .finish_non_exhaustive()
    }
}

/// A creator's grant: what the token endpoint answers.
#[derive(Clone)]
pub struct CreatorGrant {
    /// The creator's id for this app.
    pub open_id: String,
    pub scope: Vec<String>,
    pub access_token: String,
    pub expires_in: Option<u64>,
    /// A new one on every renewal (the one sent stops working).
    pub refresh_token: String,
    pub refresh_expires_in: Option<u64>,
}

impl fmt::Debug for CreatorGrant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CreatorGrant")
            .field("open_id", &self.open_id)
            .field("scope", &self.scope)
            .field("expires_in", &self.expires_in)
            .field("refresh_expires_in", &self.refresh_expires_in)
            .finish_non_exhaustive()
    }
}

/// Who the creator is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatorProfile {
    pub open_id: String,
    pub display_name: String,
    /// The @handle (empty without the `user.info.profile` scope).
    pub username: String,
}

pub struct TikTokLoginClient {
    cfg: TikTokLoginConfig,
    http: reqwest::Client,
    retry: RetryPolicy,
}

fn judge(status: u16, v: &Value) -> Option<(i64, String, bool, bool)> {
    match v.get("error")? {
        // The token endpoints.
        Value::String(code) => {
            let auth = matches!(code.as_str(), "invalid_grant" | "invalid_client" | "access_denied" | "invalid_scope");
            Some((i64::from(status), format!("{code}: {}", text(v, "error_description")), auth, false))
        }
        // The APIs: `code` "ok" is success.
        e => {
            let code = e.get("code").and_then(Value::as_str)?;
            if code == "ok" {
                return None;
            }
            let auth = matches!(code, "access_token_invalid" | "scope_not_authorized") || status == 401;
            Some((i64::from(status), format!("{code}: {}", text(e, "message")), auth, code == "rate_limit_exceeded"))
        }
    }
}

fn seconds(v: &Value, key: &str) -> Option<u64> {
    v.get(key).and_then(Value::as_u64)
}

impl TikTokLoginClient {
    pub fn new(cfg: TikTokLoginConfig, http: reqwest::Client) -> Self {
        let retry = RetryPolicy::new(cfg.attempts.max(1), Duration::from_secs(10));
        Self { cfg, http, retry }
    }

    fn api(&self, path: &str) -> String {
        format!("{}/v2/{path}", self.cfg.api_url.trim_end_matches('/'))
    }

    /// Where the creator grants access.
    pub fn authorize_url(&self, redirect_uri: &str, scopes: &[String], state: &str) -> Result<String, url::ParseError> {
        let mut u = url::Url::parse(&self.cfg.authorize_url)?;
        u.query_pairs_mut()
            .append_pair("client_key", &self.cfg.client_key)
            .append_pair("scope", &scopes.join(","))
            .append_pair("response_type", "code")
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("state", state);
        Ok(u.into())
    }

    async fn token(&self, form: &[(&str, &str)], what: &'static str) -> Result<CreatorGrant, PlatformError> {
        let mut form: Vec<(String, String)> = form.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        form.push(("client_key".into(), self.cfg.client_key.clone()));
        form.push(("client_secret".into(), self.cfg.client_secret.clone()));
        let url = self.api("oauth/token/");
        // Once: a code is single-use and a renewal rotates the refresh token.
        let once = RetryPolicy::new(1, Duration::from_secs(1));
        let v = call(PLATFORM, once, self.cfg.timeout, what, judge, || self.http.post(&url).form(&form)).await?.json;
        let access_token = text(&v, "access_token");
        if access_token.is_empty() {
            return Err(PlatformError::Decode { platform: PLATFORM, message: "no access_token".into() });
        }
        Ok(CreatorGrant {
            open_id: text(&v, "open_id"),
            scope: text(&v, "scope").split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect(),
            access_token,
            expires_in: seconds(&v, "expires_in"),
            refresh_token: text(&v, "refresh_token"),
            refresh_expires_in: seconds(&v, "refresh_expires_in"),
        })
    }

    pub async fn exchange_code(&self, code: &str, redirect_uri: &str) -> Result<CreatorGrant, PlatformError> {
        let form = [("grant_type", "authorization_code"), ("code", code), ("redirect_uri", redirect_uri)];
        self.token(&form, "code exchange").await
    }

    /// A new access token and a new refresh token (store both: the one sent no longer works).
    pub async fn refresh(&self, refresh_token: &str) -> Result<CreatorGrant, PlatformError> {
        self.token(&[("grant_type", "refresh_token"), ("refresh_token", refresh_token)], "refresh").await
    }

    pub async fn revoke(&self, access_token: &str) -> Result<(), PlatformError> {
        let url = self.api("oauth/revoke/");
        let form = [
            ("client_key", self.cfg.client_key.as_str()),
            ("client_secret", self.cfg.client_secret.as_str()),
            ("token", access_token),
        ];
        call(PLATFORM, self.retry, self.cfg.timeout, "revoke", judge, || self.http.post(&url).form(&form)).await?;
        Ok(())
    }

    pub async fn profile(&self, access_token: &str) -> Result<CreatorProfile, PlatformError> {
        let url = self.api("user/info/");
        let q = [("fields", "open_id,display_name,username")];
        let v = call(PLATFORM, self.retry, self.cfg.timeout, "user info", judge, || {
            self.http.get(&url).bearer_auth(access_token).query(&q)
        })
        .await?
        .json;
        let user = v.pointer("/data/user").cloned().unwrap_or(Value::Null);
        let open_id = text(&user, "open_id");
        if open_id.is_empty() {
            return Err(PlatformError::Decode { platform: PLATFORM, message: "no open_id".into() });
        }
        Ok(CreatorProfile { open_id, display_name: text(&user, "display_name"), username: text(&user, "username") })
    }
}
