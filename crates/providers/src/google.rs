//! Google OAuth 2.0 for YouTube: the authorization code (with its PKCE verifier) for an access
//! token and, with offline access, a refresh token; refresh; revocation; the user's channels.
//! Errors are `{"error": "invalid_grant", "error_description"}` from the token endpoint and
//! `{"error": {"code", "message", "errors": [{"reason"}]}}` from the APIs.

use std::fmt;
use std::time::Duration;

use serde_json::Value;

use crate::http::RetryPolicy;
use crate::marketing::{PlatformError, call, text};

const PLATFORM: &str = "Google";

#[derive(Clone)]
pub struct GoogleConfig {
    pub client_id: String,
    /// Never logged.
    pub client_secret: String,
    pub token_url: String,
    pub revoke_url: String,
    /// `https://www.googleapis.com`.
    pub api_url: String,
    pub timeout: Duration,
    pub attempts: u32,
}

impl fmt::Debug for GoogleConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GoogleConfig")
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .field("token_url", &self.token_url)
            .finish_non_exhaustive()
    }
}

#[derive(Clone)]
pub struct GoogleTokens {
    pub access_token: String,
    /// Empty on a refresh (the old one stays valid).
    pub refresh_token: String,
    pub expires_in: Option<u64>,
    pub scope: Vec<String>,
}

impl fmt::Debug for GoogleTokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GoogleTokens")
            .field("expires_in", &self.expires_in)
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

pub struct GoogleClient {
    cfg: GoogleConfig,
    http: reqwest::Client,
    retry: RetryPolicy,
}

fn judge(status: u16, v: &Value) -> Option<(i64, String, bool, bool)> {
    match v.get("error")? {
        Value::String(code) => {
            let auth = matches!(code.as_str(), "invalid_grant" | "invalid_client" | "unauthorized_client");
            Some((i64::from(status), format!("{code}: {}", text(v, "error_description")), auth, false))
        }
        e => {
            let reason = e.pointer("/errors/0/reason").and_then(Value::as_str).unwrap_or("");
            let throttle = matches!(reason, "rateLimitExceeded" | "userRateLimitExceeded");
            Some((i64::from(status), text(e, "message"), status == 401, throttle))
        }
    }
}

impl GoogleClient {
    pub fn new(cfg: GoogleConfig, http: reqwest::Client) -> Self {
        let retry = RetryPolicy::new(cfg.attempts.max(1), Duration::from_secs(10));
        Self { cfg, http, retry }
    }

    async fn token(&self, form: &[(&str, &str)], what: &'static str) -> Result<GoogleTokens, PlatformError> {
        let mut form: Vec<(String, String)> = form.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        form.push(("client_id".into(), self.cfg.client_id.clone()));
        form.push(("client_secret".into(), self.cfg.client_secret.clone()));
        let url = &self.cfg.token_url;
        let v =
            call(PLATFORM, self.retry, self.cfg.timeout, what, judge, || self.http.post(url).form(&form)).await?.json;
        let access_token = text(&v, "access_token");
        if access_token.is_empty() {
            return Err(PlatformError::Decode { platform: PLATFORM, message: "no access_token".into() });
        }
        Ok(GoogleTokens {
            access_token,
            refresh_token: text(&v, "refresh_token"),
            expires_in: v.get("expires_in").and_then(Value::as_u64),
            scope: text(&v, "scope").split_whitespace().map(str::to_owned).collect(),
        })
    }

    pub async fn exchange_code(
        &self,
        code: &str,
        redirect_uri: &str,
        verifier: &str,
    ) -> Result<GoogleTokens, PlatformError> {
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect_uri),
            ("code_verifier", verifier),
        ];
        self.token(&form, "code exchange").await
    }

    pub async fn refresh(&self, refresh_token: &str) -> Result<GoogleTokens, PlatformError> {
        self.token(&[("grant_type", "refresh_token"), ("refresh_token", refresh_token)], "refresh").await
    }

    pub async fn revoke(&self, token: &str) -> Result<(), PlatformError> {
        let url = &self.cfg.revoke_url;
        let form = [("token", token.to_owned())];
        call(PLATFORM, self.retry, self.cfg.timeout, "revoke", judge, || self.http.post(url).form(&form)).await?;
        Ok(())
    }

    /// (id, title) of the user's YouTube channels.
    pub async fn channels(&self, token: &str) -> Result<Vec<(String, String)>, PlatformError> {
        let url = format!("{}/youtube/v3/channels", self.cfg.api_url.trim_end_matches('/'));
        let q = [("part", "snippet"), ("mine", "true")];
        let v = call(PLATFORM, self.retry, self.cfg.timeout, "channels", judge, || {
            self.http.get(&url).bearer_auth(token).query(&q)
        })
        .await?
        .json;
        let items = v.get("items").and_then(Value::as_array).cloned().unwrap_or_default();
        Ok(items
            .iter()
            .map(|c| (text(c, "id"), c.pointer("/snippet/title").and_then(Value::as_str).unwrap_or("").to_owned()))
            .filter(|(id, _)| !id.is_empty())
            .collect())
    }
}
