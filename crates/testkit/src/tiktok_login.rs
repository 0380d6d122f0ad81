//! The TikTok Login Kit routes of [`FakeTikTok`](crate::tiktok::FakeTikTok) (OAuth v2 for the
//! web), served under `/v2/` beside the Content Posting routes:
//!
//! - `oauth/token/` (form): [`TEST_CREATOR_CODE`] with [`TEST_CLIENT_KEY`], [`TEST_CLIENT_SECRET`]
//!   and a `redirect_uri` for a creator token; `grant_type=refresh_token` with the latest refresh
//!   token for a new pair (refresh tokens rotate: an older one is `invalid_grant`). Access tokens
//!   last [`ACCESS_SECS`]; errors are `{"error", "error_description", "log_id"}` with HTTP 400.
//! - `oauth/revoke/` (form): the grant ends; its tokens are refused from then on.
//! - `user/info/` (GET, bearer): the creator, [`TEST_OPEN_ID`].
//!
//! The creator tokens it issues are what the posting routes accept.

use std::collections::HashMap;

use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

pub const TEST_CLIENT_KEY: &str = "awfakeclientkey";
pub const TEST_CLIENT_SECRET: &str = "fake-login-kit-secret";
pub const TEST_CREATOR_CODE: &str = "creator-code-ok";
pub const TEST_OPEN_ID: &str = "_000fakeOpenId";
pub const TEST_SCOPES: &str = "user.info.basic,video.publish,video.upload";
/// How long an access token lasts (TikTok: 2 hours at the time of writing).
pub const ACCESS_SECS: u64 = 7_200;
const REFRESH_SECS: u64 = 15_552_000;

#[derive(Default)]
pub(crate) struct Login {
    /// Access tokens issued and still valid.
    access: Vec<String>,
    /// The refresh token that works (rotated on every renewal).
    refresh: Option<String>,
    revoked: bool,
    seq: u64,
    /// Renewals answered.
    pub(crate) refreshes: u32,
}

impl Login {
    /// Whether `token` is a creator token this fake issued and has not revoked.
    pub(crate) fn accepts(&self, token: &str) -> bool {
        !self.revoked && self.access.iter().any(|t| t == token)
    }

    /// The latest access token (tests use it to act as the creator).
    pub(crate) fn latest(&self) -> Option<String> {
        self.access.last().cloned()
    }

    fn issue(&mut self) -> Response {
        self.seq += 1;
        let access = format!("act.creator-{}", self.seq);
        let refresh = format!("rft.creator-{}", self.seq);
        self.access.push(access.clone());
        self.refresh = Some(refresh.clone());
        axum::Json(json!({"access_token": access, "expires_in": ACCESS_SECS, "open_id": TEST_OPEN_ID,
            "refresh_expires_in": REFRESH_SECS, "refresh_token": refresh, "scope": TEST_SCOPES, "token_type": "Bearer"}))
        .into_response()
    }
}

fn oauth_error(code: &str, description: &str) -> Response {
    let body = json!({"error": code, "error_description": description, "log_id": "fake-log"});
    (StatusCode::BAD_REQUEST, axum::Json(body)).into_response()
}

/// Answers `path` (after `/v2/`) when it is a Login Kit route.
pub(crate) fn route(l: &mut Login, path: &str, headers: &HeaderMap, body: &[u8]) -> Option<Response> {
    let form: HashMap<String, String> = url::form_urlencoded::parse(body).into_owned().collect();
    let get = |k: &str| form.get(k).map(String::as_str).unwrap_or("");
    let client_ok = get("client_key") == TEST_CLIENT_KEY && get("client_secret") == TEST_CLIENT_SECRET;
    Some(match path.trim_end_matches('/') {
        "oauth/token" => {
            if !client_ok {
                return Some(oauth_error("invalid_client", "Client key or secret is incorrect."));
            }
            match get("grant_type") {
                "authorization_code" if get("code") == TEST_CREATOR_CODE && !get("redirect_uri").is_empty() => {
                    l.revoked = false;
                    l.issue()
                }
                "refresh_token" if !l.revoked && l.refresh.as_deref() == Some(get("refresh_token")) => {
                    l.refreshes += 1;
                    l.issue()
                }
                "authorization_code" | "refresh_token" => {
                    oauth_error("invalid_grant", "Authorization code or refresh token is expired or invalid.")
                }
                _ => oauth_error("invalid_request", "grant_type is missing or unsupported."),
            }
        }
        "oauth/revoke" => {
            if !client_ok {
                return Some(oauth_error("invalid_client", "Client key or secret is incorrect."));
            }
            l.revoked = true;
            l.access.clear();
            l.refresh = None;
            axum::Json(json!({})).into_response()
        }
        "user/info" => {
            let bearer =
                headers.get("authorization").and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
            if !bearer.is_some_and(|t| l.accepts(t)) {
                let body = json!({"data": {}, "error": {"code": "access_token_invalid",
                    "message": "The access token is invalid or not found in the request.", "log_id": "fake-log"}});
                return Some((StatusCode::UNAUTHORIZED, axum::Json(body)).into_response());
            }
            axum::Json(json!({"data": {"user": {"open_id": TEST_OPEN_ID, "display_name": "Fake Creator",
                "username": "fake_creator"}}, "error": {"code": "ok", "message": "", "log_id": "fake-log"}}))
            .into_response()
        }
        _ => return None,
    })
}
