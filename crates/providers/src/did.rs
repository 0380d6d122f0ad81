//! D-ID talks (`reference/providers.md` §2): a photo plus a script (text, or audio we made)
//! becomes a talking-head video, rendered asynchronously.
//!
//! - `Authorization: Basic base64(USERNAME:PASSWORD)` with the Studio key (never logged).
//! - `POST /audios` uploads our speech (multipart `audio`) and answers the URL a talk can use;
//!   `POST /talks` creates a talk (201, `status: created`); `GET /talks/{id}` reads it through
//!   `created` → `started` → `done` | `error` | `rejected` (moderation); `GET /talks` lists the
//!   account's talks newest first (paged by `token`); `DELETE /talks/{id}` removes one.
//! - D-ID documents no idempotency key: a create whose answer was lost may still have made a
//!   talk (billed). So creates and uploads are retried only on 429 (refused before any work) and
//!   on connection failures before the request was sent; never after a 5xx or a cut connection.
//!   Callers that must not make a second talk tag each with a unique `user_data` and, when they
//!   do not know whether a create went through, look it up with [`DidClient::find_talk`].
//! - Reads and deletes are retried on 429 (honouring `Retry-After` up to [`MAX_RETRY_AFTER`]),
//!   5xx and transport failures.
//! - Errors are `{"kind","description","details"}` with 400/401/402/404; 429 for throttling.
//! - D-ID does not sign webhooks: the receiver puts an unguessable token in the URL and fetches
//!   the talk again before believing the body.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use reqwest::Method;
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::http::{Endpoint, Failed, RetryPolicy, read_limited, retry_after, transport_reason};
use crate::llm::clip;

pub const DEFAULT_BASE_URL: &str = "https://api.d-id.com";
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
pub const MAX_ATTEMPTS: u32 = 3;
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(20);
/// `user_data` is echoed back on the talk; D-ID caps it at 1000 characters.
pub const MAX_USER_DATA: usize = 1000;
/// Talks read per page when looking one up by its `user_data`.
const LIST_PAGE: u32 = 100;
/// Pages read at most when looking a talk up (the one we look for is among the newest).
const LIST_PAGES: u32 = 5;
const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

#[derive(Clone, Deserialize)]
pub struct DidConfig {
    /// `USERNAME:PASSWORD` as the D-ID Studio shows it. Never logged.
    pub api_key: String,
    pub base_url: String,
}

impl DidConfig {
    pub fn new(api_key: impl Into<String>) -> Self {
        Self { api_key: api_key.into(), base_url: DEFAULT_BASE_URL.into() }
    }
}

impl fmt::Debug for DidConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DidConfig").field("api_key", &"<redacted>").field("base_url", &self.base_url).finish()
    }
}

// ---------------------------------------------------------------------------------------------
// Talks

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(from = "String", into = "String")]
pub enum TalkStatus {
    Created,
    Started,
    Done,
    Error,
    Rejected,
    /// A status this client does not know; treated as still running.
    Other(String),
}

impl From<String> for TalkStatus {
    fn from(s: String) -> Self {
        match s.as_str() {
            "created" => Self::Created,
            "started" => Self::Started,
            "done" => Self::Done,
            "error" => Self::Error,
            "rejected" => Self::Rejected,
            _ => Self::Other(s),
        }
    }
}

impl From<TalkStatus> for String {
    fn from(s: TalkStatus) -> Self {
        s.as_str().to_owned()
    }
}

impl TalkStatus {
    pub fn as_str(&self) -> &str {
        match self {
            Self::Created => "created",
            Self::Started => "started",
            Self::Done => "done",
            Self::Error => "error",
            Self::Rejected => "rejected",
            Self::Other(s) => s,
        }
    }

    pub fn is_terminal(&self) -> bool {
        matches!(self, Self::Done | Self::Error | Self::Rejected)
    }
}

/// A talk as `GET /talks/{id}` (and the webhook) shows it.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct Talk {
    pub id: String,
    pub status: TalkStatus,
    /// The finished video (a presigned URL that expires: copy it promptly).
    #[serde(default)]
    pub result_url: Option<String>,
    /// Seconds of video.
    #[serde(default)]
    pub duration: Option<f64>,
    #[serde(default)]
    pub user_data: Option<String>,
    /// Why a talk failed (an object in practice; kept as given).
    #[serde(default)]
    pub error: Option<Value>,
    #[serde(default)]
    pub created_at: Option<String>,
}

impl Talk {
    /// A short reason for a failed talk, for logs and the job's record.
    pub fn failure(&self) -> String {
        let detail = match &self.error {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Object(m)) => m
                .get("description")
                .or_else(|| m.get("message"))
                .and_then(Value::as_str)
                .map(str::to_owned)
                .unwrap_or_else(|| Value::Object(m.clone()).to_string()),
            Some(other) => other.to_string(),
            None => String::new(),
        };
        let status = self.status.as_str();
        clip(&if detail.is_empty() { status.to_owned() } else { format!("{status}: {detail}") })
    }
}

/// What to say: our own audio (the usual case here) or text D-ID speaks itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Script {
    Audio { audio_url: String },
    Text { input: String, provider: String, voice_id: String },
}

/// `POST /talks`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateTalk {
    /// The face: a public image URL (or one D-ID gave for an upload).
    pub source_url: String,
    pub script: Script,
    /// Where D-ID posts the finished talk.
    pub webhook: Option<String>,
    /// Echoed on the talk: our marker to find it again (at most [`MAX_USER_DATA`] characters).
    pub user_data: Option<String>,
    pub name: Option<String>,
}

impl CreateTalk {
    fn body(&self) -> Value {
        let script = match &self.script {
            Script::Audio { audio_url } => serde_json::json!({"type": "audio", "audio_url": audio_url}),
            Script::Text { input, provider, voice_id } => serde_json::json!({
                "type": "text", "input": input, "ssml": false,
                "provider": {"type": provider, "voice_id": voice_id}}),
        };
        let mut body = serde_json::json!({
            "source_url": self.source_url,
            "script": script,
            "config": {"result_format": "mp4", "fluent": true, "pad_audio": 0.0, "stitch": true},
        });
        if let Some(w) = &self.webhook {
            body["webhook"] = Value::from(w.clone());
        }
        if let Some(u) = &self.user_data {
            body["user_data"] = Value::from(u.clone());
        }
        if let Some(n) = &self.name {
            body["name"] = Value::from(n.clone());
        }
        body
    }
}

/// One page of `GET /talks`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct TalkPage {
    #[serde(default)]
    pub talks: Vec<Talk>,
    /// Cursor of the next page, absent on the last.
    #[serde(default)]
    pub token: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// Errors

#[derive(Debug, Clone, thiserror::Error)]
pub enum DidError {
    #[error("d-id rate limit{}", retry_after.map(|d| format!(" (retry after {d:?})")).unwrap_or_default())]
    RateLimited { retry_after: Option<Duration> },
    #[error("d-id refused the API key")]
    Auth,
    /// 402 `InsufficientCreditsError`: the account's credit is used up.
    #[error("d-id needs credits: {description}")]
    InsufficientCredits { description: String },
    /// 400 `ValidationError` (a bad image, audio or script).
    #[error("d-id refused the request ({kind}): {description}")]
    Validation { kind: String, description: String },
    #[error("d-id: not found: {description}")]
    NotFound { description: String },
    #[error("invalid d-id request: {0}")]
    InvalidArgument(String),
    #[error("d-id did not answer in time")]
    Timeout,
    /// Any other answer; `status` 0 when D-ID could not be reached.
    #[error("d-id error {status}: {detail}")]
    Upstream { status: u16, detail: String },
    #[error("unreadable d-id answer: {0}")]
    Decode(String),
}

impl DidError {
    fn from_response(status: u16, body: &[u8], retry_after: Option<Duration>) -> Self {
        #[derive(Deserialize, Default)]
        struct Body {
            #[serde(default)]
            kind: Option<String>,
            #[serde(default)]
            description: Option<String>,
        }
        let b: Body = serde_json::from_slice(body).unwrap_or_default();
        let kind = b.kind.unwrap_or_default();
        let description = clip(&b.description.unwrap_or_else(|| format!("answered {status} without details")));
        match status {
            401 | 403 => Self::Auth,
            402 => Self::InsufficientCredits { description },
            404 => Self::NotFound { description },
            400 | 409 | 413 | 422 => Self::Validation { kind, description },
            429 => Self::RateLimited { retry_after },
            _ => Self::Upstream { status, detail: description },
        }
    }

    /// Whether the same call may succeed later (rate limits, outages, timeouts); everything else
    /// is about the request or our account and ends the job.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::RateLimited { .. } | Self::Timeout | Self::Decode(_) => true,
            Self::Upstream { status, .. } => *status == 0 || *status >= 500,
            _ => false,
        }
    }

    fn retryable(&self, idempotent: bool, sent: bool) -> bool {
        match self {
            Self::RateLimited { .. } => true,
            Self::Upstream { status: 0, .. } => idempotent || !sent,
            Self::Upstream { status, .. } => idempotent && *status >= 500,
            _ => false,
        }
    }
}

impl From<DidError> for nexus_kernel::Error {
    fn from(e: DidError) -> Self {
        use nexus_kernel::{Error, ErrorKind};
        match &e {
            DidError::RateLimited { retry_after } => crate::llm::rate_limited(*retry_after).with_source(e),
            DidError::InsufficientCredits { .. } => {
                Error::new(ErrorKind::Unavailable, "provider.quota_exceeded").with_source(e)
            }
            DidError::Validation { .. } => {
                Error::new(ErrorKind::Unprocessable, "provider.invalid_request").with_source(e)
            }
            DidError::Timeout => Error::new(ErrorKind::DeadlineExceeded, "provider.timeout").with_source(e),
            DidError::Upstream { status, .. } if *status == 0 || *status >= 500 => {
                Error::new(ErrorKind::Unavailable, "provider.unavailable").with_source(e)
            }
            DidError::Decode(_) => Error::new(ErrorKind::Unavailable, "provider.unavailable").with_source(e),
            DidError::Auth | DidError::NotFound { .. } | DidError::InvalidArgument(_) | DidError::Upstream { .. } => {
                Error::internal(e)
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The capability

/// What the video pipeline needs from a talking-head renderer: D-ID, or a local stand-in.
#[async_trait::async_trait]
pub trait Talks: Send + Sync + 'static {
    fn name(&self) -> &'static str;
    /// Uploads speech; answers the URL to give [`Script::Audio`].
    async fn upload_audio(&self, audio: Vec<u8>, content_type: &str, filename: &str) -> Result<String, DidError>;
    async fn create_talk(&self, req: &CreateTalk) -> Result<Talk, DidError>;
    async fn get_talk(&self, id: &str) -> Result<Talk, DidError>;
    /// The talk created with this `user_data`, if any (see [`DidClient::find_talk`]).
    async fn find_talk(&self, user_data: &str) -> Result<Option<Talk>, DidError>;
    async fn delete_talk(&self, id: &str) -> Result<(), DidError>;
}

// ---------------------------------------------------------------------------------------------
// Client

/// D-ID API client. Cheap to clone.
#[derive(Clone, Debug)]
pub struct DidClient {
    inner: Arc<Endpoint<DidConfig>>,
}

enum Payload<'a> {
    None,
    Json(&'a Value),
    Multipart { boundary: String, body: Vec<u8> },
}

impl DidClient {
    pub fn new(cfg: DidConfig, http: reqwest::Client) -> Self {
        Self::with_max_retry_after(cfg, http, MAX_RETRY_AFTER)
    }

    pub fn with_max_retry_after(cfg: DidConfig, http: reqwest::Client, max_retry_after: Duration) -> Self {
        let (base, retry) = (cfg.base_url.clone(), RetryPolicy::new(MAX_ATTEMPTS, max_retry_after));
        Self { inner: Arc::new(Endpoint::new(cfg, &base, http, retry, ("d-id", "API key"))) }
    }

    fn authorization(&self) -> String {
        format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(self.inner.cfg.api_key.as_bytes()))
    }

    /// `POST /audios` (multipart `audio`) → the URL D-ID keeps the file at.
    pub async fn upload_audio(&self, audio: Vec<u8>, content_type: &str, filename: &str) -> Result<String, DidError> {
        #[derive(Deserialize)]
        struct Uploaded {
            url: String,
        }
        if audio.is_empty() {
            return Err(DidError::InvalidArgument("empty audio".into()));
        }
        let boundary = format!("nexus-{}", uuid::Uuid::new_v4().simple());
        let safe_name: String =
            filename.chars().filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_')).take(100).collect();
        let mut body = format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"audio\"; filename=\"{safe_name}\"\r\nContent-Type: {content_type}\r\n\r\n"
        )
        .into_bytes();
        body.extend_from_slice(&audio);
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        let u: Uploaded = self.call(Method::POST, "/audios", Payload::Multipart { boundary, body }, false).await?;
        Ok(u.url)
    }

    /// `POST /talks`. Not retried once sent (see the module notes).
    pub async fn create_talk(&self, req: &CreateTalk) -> Result<Talk, DidError> {
        if req.user_data.as_ref().is_some_and(|u| u.chars().count() > MAX_USER_DATA) {
            return Err(DidError::InvalidArgument("user_data longer than 1000 characters".into()));
        }
        let body = req.body();
        self.call(Method::POST, "/talks", Payload::Json(&body), false).await
    }

    /// `GET /talks/{id}`.
    pub async fn get_talk(&self, id: &str) -> Result<Talk, DidError> {
        check_id(id)?;
        self.call(Method::GET, &format!("/talks/{id}"), Payload::None, true).await
    }

    /// `GET /talks?limit=&token=`: one page of the account's talks, newest first.
    pub async fn list_talks(&self, limit: u32, token: Option<&str>) -> Result<TalkPage, DidError> {
        let mut path = format!("/talks?limit={}", limit.clamp(1, 100));
        if let Some(t) = token {
            let t: String = url::form_urlencoded::byte_serialize(t.as_bytes()).collect();
            path.push_str(&format!("&token={t}"));
        }
        self.call(Method::GET, &path, Payload::None, true).await
    }

    /// The newest talk whose `user_data` is `marker`, among the account's latest
    /// `LIST_PAGES × LIST_PAGE` talks: how a caller learns whether a create whose answer it
    /// never got made a talk.
    pub async fn find_talk(&self, marker: &str) -> Result<Option<Talk>, DidError> {
        let mut token: Option<String> = None;
        for _ in 0..LIST_PAGES {
            let page = self.list_talks(LIST_PAGE, token.as_deref()).await?;
            if let Some(t) = page.talks.into_iter().find(|t| t.user_data.as_deref() == Some(marker)) {
                return Ok(Some(t));
            }
            match page.token {
                Some(next) if !next.is_empty() => token = Some(next),
                _ => return Ok(None),
            }
        }
        Ok(None)
    }

    /// `DELETE /talks/{id}`; an unknown talk is not an error.
    pub async fn delete_talk(&self, id: &str) -> Result<(), DidError> {
        check_id(id)?;
        match self.call::<Value>(Method::DELETE, &format!("/talks/{id}"), Payload::None, true).await {
            Ok(_) | Err(DidError::NotFound { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn call<T: serde::de::DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        payload: Payload<'_>,
        idempotent: bool,
    ) -> Result<T, DidError> {
        let url = format!("{}{path}", self.inner.base);
        let attempt = |_| async {
            self.attempt(&method, &url, &payload).await.map_err(|(err, pause, sent)| {
                let retryable = err.retryable(idempotent, sent);
                Failed::new(err, retryable, pause)
            })
        };
        self.inner
            .retry
            .run(attempt, |failed, d| {
                let (attempt, error, retry) = (d.attempt, &failed.error, d.retry);
                tracing::warn!(%method, path, attempt, %error, retry, "d-id request failed");
            })
            .await
    }

    /// One request; on failure the error, the wait asked for, and whether the request may have
    /// reached D-ID.
    async fn attempt<T: serde::de::DeserializeOwned>(
        &self,
        method: &Method,
        url: &str,
        payload: &Payload<'_>,
    ) -> Result<T, (DidError, Option<Duration>, bool)> {
        let mut req = self
            .inner
            .http
            .request(method.clone(), url)
            .header(AUTHORIZATION, self.authorization())
            .header(ACCEPT, "application/json")
            .timeout(REQUEST_TIMEOUT);
        req = match payload {
            Payload::None => req,
            Payload::Json(v) => req.json(v),
            Payload::Multipart { boundary, body } => {
                req.header(CONTENT_TYPE, format!("multipart/form-data; boundary={boundary}")).body(body.clone())
            }
        };
        let resp = req.send().await.map_err(|e| (transport_error(&e), None, !e.is_connect()))?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let bytes = read_limited(resp, MAX_BODY_BYTES).await.map_err(|e| (transport_error(&e), None, true))?;
        if (200..300).contains(&status) {
            let bytes = if bytes.is_empty() { b"null".to_vec() } else { bytes };
            return serde_json::from_slice(&bytes)
                .map_err(|e| (DidError::Decode(format!("unexpected answer: {e}")), None, true));
        }
        let wait = retry_after(&headers);
        Err((DidError::from_response(status, &bytes, wait), wait, true))
    }
}

#[async_trait::async_trait]
impl Talks for DidClient {
    fn name(&self) -> &'static str {
        "d-id"
    }
    async fn upload_audio(&self, audio: Vec<u8>, content_type: &str, filename: &str) -> Result<String, DidError> {
        DidClient::upload_audio(self, audio, content_type, filename).await
    }
    async fn create_talk(&self, req: &CreateTalk) -> Result<Talk, DidError> {
        DidClient::create_talk(self, req).await
    }
    async fn get_talk(&self, id: &str) -> Result<Talk, DidError> {
        DidClient::get_talk(self, id).await
    }
    async fn find_talk(&self, user_data: &str) -> Result<Option<Talk>, DidError> {
        DidClient::find_talk(self, user_data).await
    }
    async fn delete_talk(&self, id: &str) -> Result<(), DidError> {
        DidClient::delete_talk(self, id).await
    }
}

fn transport_error(e: &reqwest::Error) -> DidError {
    if e.is_timeout() {
        DidError::Timeout
    } else {
        DidError::Upstream { status: 0, detail: format!("could not reach D-ID: {}", transport_reason(e)) }
    }
}

/// Talk ids go into URL paths: letters, digits, `_` and `-` only.
fn check_id(id: &str) -> Result<(), DidError> {
    if !id.is_empty() && id.len() <= 128 && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-')) {
        Ok(())
    } else {
        Err(DidError::InvalidArgument("malformed talk id".into()))
    }
}

// ---------------------------------------------------------------------------------------------
// Local stand-in

/// A talking-head renderer for development without a D-ID key: talks finish on their second
/// read, their result is `local:<id>` (the caller renders the file itself), and every call is
/// kept in memory. Labelled `local` wherever it shows.
#[derive(Debug, Default)]
pub struct LocalTalks {
    talks: std::sync::Mutex<Vec<(Talk, u32)>>,
}

/// The `result_url` prefix of a local talk.
pub const LOCAL_RESULT_PREFIX: &str = "local:";

impl LocalTalks {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(Talk, u32)>> {
        self.talks.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait::async_trait]
impl Talks for LocalTalks {
    fn name(&self) -> &'static str {
        "local"
    }
    async fn upload_audio(&self, audio: Vec<u8>, _content_type: &str, _filename: &str) -> Result<String, DidError> {
        if audio.is_empty() {
            return Err(DidError::InvalidArgument("empty audio".into()));
        }
        Ok(format!("{LOCAL_RESULT_PREFIX}audio/{}", uuid::Uuid::new_v4().simple()))
    }
    async fn create_talk(&self, req: &CreateTalk) -> Result<Talk, DidError> {
        let talk = Talk {
            id: format!("tlk_local_{}", uuid::Uuid::new_v4().simple()),
            status: TalkStatus::Created,
            result_url: None,
            duration: None,
            user_data: req.user_data.clone(),
            error: None,
            created_at: None,
        };
        self.lock().push((talk.clone(), 0));
        Ok(talk)
    }
    async fn get_talk(&self, id: &str) -> Result<Talk, DidError> {
        let mut talks = self.lock();
        let (talk, reads) = talks
            .iter_mut()
            .find(|(t, _)| t.id == id)
            .ok_or_else(|| DidError::NotFound { description: "no such talk".into() })?;
        *reads += 1;
        if *reads >= 2 && !talk.status.is_terminal() {
            talk.status = TalkStatus::Done;
            talk.result_url = Some(format!("{LOCAL_RESULT_PREFIX}{}", talk.id));
        }
        Ok(talk.clone())
    }
    async fn find_talk(&self, user_data: &str) -> Result<Option<Talk>, DidError> {
        Ok(self.lock().iter().rev().find(|(t, _)| t.user_data.as_deref() == Some(user_data)).map(|(t, _)| t.clone()))
    }
    async fn delete_talk(&self, id: &str) -> Result<(), DidError> {
        self.lock().retain(|(t, _)| t.id != id);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies_map_to_kinds() {
        let e =
            DidError::from_response(402, br#"{"kind":"InsufficientCreditsError","description":"no credits"}"#, None);
        assert!(matches!(e, DidError::InsufficientCredits { ref description } if description == "no credits"));
        assert!(!e.is_transient());
        let e = DidError::from_response(400, br#"{"kind":"ValidationError","description":"bad image"}"#, None);
        assert!(matches!(e, DidError::Validation { ref kind, .. } if kind == "ValidationError"));
        let e = DidError::from_response(429, b"", Some(Duration::from_secs(3)));
        assert!(e.is_transient());
        assert!(DidError::from_response(503, b"oops", None).is_transient());
        assert!(matches!(DidError::from_response(401, b"{}", None), DidError::Auth));
    }

    #[test]
    fn creates_are_not_resent_once_they_may_have_arrived() {
        let lost = DidError::Upstream { status: 0, detail: "cut".into() };
        assert!(!lost.retryable(false, true), "a create cut after sending may have made a talk");
        assert!(lost.retryable(false, false), "never sent: safe to send");
        assert!(!DidError::Upstream { status: 500, detail: String::new() }.retryable(false, true));
        assert!(DidError::Upstream { status: 500, detail: String::new() }.retryable(true, true));
        assert!(DidError::RateLimited { retry_after: None }.retryable(false, true));
    }

    #[test]
    fn talk_bodies_carry_the_audio_and_marker() {
        let req = CreateTalk {
            source_url: "https://x/face.jpg".into(),
            script: Script::Audio { audio_url: "s3://a/b.mp3".into() },
            webhook: Some("https://h/webhooks/d-id?token=t".into()),
            user_data: Some("vid_1".into()),
            name: None,
        };
        let b = req.body();
        assert_eq!(b["script"]["type"], "audio");
        assert_eq!(b["script"]["audio_url"], "s3://a/b.mp3");
        assert_eq!(b["user_data"], "vid_1");
        assert_eq!(b["config"]["result_format"], "mp4");
    }

    #[test]
    fn failures_read_the_error_description() {
        let t: Talk = serde_json::from_value(serde_json::json!({
            "id": "tlk_1", "status": "rejected", "error": {"kind": "ModerationError", "description": "face not allowed"}
        }))
        .unwrap();
        assert_eq!(t.failure(), "rejected: face not allowed");
        assert!(t.status.is_terminal());
        assert!(check_id("tlk_abc-1").is_ok() && check_id("../x").is_err());
    }
}
