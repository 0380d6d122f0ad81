//! WhatsApp Business Cloud API (`reference/providers.md` §6): sending messages from a business
//! phone number, and checking Meta's webhook signatures.
//!
//! - `POST {base}/{phone_number_id}/messages` with `Authorization: Bearer <token>`; the answer's
//!   `messages[0].id` (a `wamid`) names the message in later status webhooks. A 200 only means
//!   accepted: delivery failures arrive later as `failed` statuses.
//! - Meta has no idempotency key: a retried POST can send twice. So a send is retried only when
//!   the request never left (a refused connection) — never after a timeout, a cut connection or
//!   any answer. Throttling answers (130429 throughput, 131056 pair rate, 131048 spam rate) are
//!   returned to the caller, whose sender slows down and tries again later itself.
//! - Errors: `{"error":{"message","type","code","error_data":{"details"}}}`; logic goes by
//!   `code` (`error_subcode` is gone since v16).
//! - Webhooks: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256(app secret, raw body)>`.
//! - Inbound media is two calls: `GET {base}/{media_id}` (bearer) answers
//!   `{"url","mime_type","sha256","file_size","id"}`, then `GET <url>` with the same bearer
//!   serves the bytes. The URL expires within minutes and the media id after some days, so the
//!   bytes are copied in at once. Confidence: high for the two calls and the bearer on both
//!   (Meta's Cloud API media reference, echoed by every SDK); `file_size` arrives as a number or
//!   a string depending on the version, so both are read. The URL is Meta's choice, so it is
//!   fetched with the platform's safe outbound client ([`WhatsAppClient::with_media_fetch`]).
//! - A number's standing: `GET {base}/{phone_number_id}?fields=display_phone_number,quality_rating,
//!   messaging_limit_tier`. How sure: the field names and values (GREEN/YELLOW/RED/UNKNOWN,
//!   TIER_250/TIER_1K/…/TIER_UNLIMITED) agree across Meta's phone-number reference as quoted by
//!   several BSP SDKs and docs; not checked against a live account here. Meta is moving the
//!   limit to the business portfolio, so a missing tier is kept as unknown rather than refused.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt as _;
use futures::stream::BoxStream;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE};
use serde::Deserialize;
use serde_json::Value;

use crate::http::{Endpoint, Failed, RetryPolicy, read_limited, retry_after, transport_reason};
use crate::llm::clip;

/// Graph API version pinned (providers.md §6).
pub const DEFAULT_BASE_URL: &str = "https://graph.facebook.com/v25.0";
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);
pub const MAX_ATTEMPTS: u32 = 3;
const MAX_BODY_BYTES: usize = 256 * 1024;

/// Throughput above the number's limit.
pub const CODE_THROUGHPUT: i64 = 130_429;
/// Too many messages to the same user in a short time.
pub const CODE_PAIR_RATE: i64 = 131_056;
/// Spam rate limit.
pub const CODE_SPAM_RATE: i64 = 131_048;
/// More than 24 hours since the user's last message.
pub const CODE_REENGAGEMENT: i64 = 131_047;

#[derive(Clone)]
pub struct WhatsAppConfig {
    pub base_url: String,
}

impl std::fmt::Debug for WhatsAppConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WhatsAppConfig").field("base_url", &self.base_url).finish()
    }
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum WhatsAppError {
    /// An error answer from Meta with its code (130429, 131047, 190, …).
    #[error("whatsapp error {code} ({status}): {message}")]
    Api { status: u16, code: i64, message: String, details: String, retry_after: Option<Duration> },
    #[error("invalid whatsapp request: {0}")]
    InvalidArgument(String),
    /// No answer in time, or the connection broke after the request left: it may have been sent.
    #[error("whatsapp did not answer: {0}")]
    Unknown(String),
    /// The request never left (connection refused): nothing was sent.
    #[error("could not reach whatsapp: {0}")]
    Unreachable(String),
    #[error("unreadable whatsapp answer: {0}")]
    Decode(String),
}

impl WhatsAppError {
    pub fn code(&self) -> Option<i64> {
        match self {
            Self::Api { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// Meta asks us to slow down: the same message may be sent later.
    pub fn is_throttling(&self) -> bool {
        matches!(self.code(), Some(CODE_THROUGHPUT | CODE_PAIR_RATE | CODE_SPAM_RATE | 4 | 80_007))
            || matches!(self, Self::Api { status: 429, .. })
    }

    /// Whether the message certainly did not go out (a retry cannot double-send).
    pub fn not_sent(&self) -> bool {
        !matches!(self, Self::Unknown(_) | Self::Decode(_))
    }

    fn from_response(status: u16, body: &[u8], retry_after: Option<Duration>) -> Self {
        #[derive(Deserialize, Default)]
        struct Envelope {
            #[serde(default)]
            error: Option<Body>,
        }
        #[derive(Deserialize, Default)]
        struct Body {
            #[serde(default)]
            message: Option<String>,
            #[serde(default)]
            code: Option<i64>,
            #[serde(default)]
            error_data: Option<Value>,
        }
        let b = serde_json::from_slice::<Envelope>(body).unwrap_or_default().error.unwrap_or_default();
        let details =
            b.error_data.as_ref().and_then(|d| d.get("details")).and_then(Value::as_str).map(clip).unwrap_or_default();
        Self::Api {
            status,
            code: b.code.unwrap_or(0),
            message: clip(&b.message.unwrap_or_else(|| format!("answered {status} without details"))),
            details,
            retry_after,
        }
    }
}

/// What a number needs to send: Meta's id of the number and its access token.
#[derive(Clone)]
pub struct Sender<'a> {
    pub phone_number_id: &'a str,
    pub token: &'a str,
}

/// Meta's answer to an accepted send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    pub wamid: String,
    pub wa_id: String,
}

/// A template as Meta reports it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct TemplateState {
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub language: String,
    /// APPROVED, PENDING, REJECTED, PAUSED, DISABLED, …
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub rejected_reason: Option<String>,
}

/// A number's standing as Meta reports it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct NumberState {
    #[serde(default)]
    pub display_phone_number: String,
    /// GREEN, YELLOW, RED or UNKNOWN.
    #[serde(default)]
    pub quality_rating: String,
    /// TIER_250, TIER_1K, TIER_10K, TIER_100K, TIER_UNLIMITED (empty when Meta omits it).
    #[serde(default)]
    pub messaging_limit_tier: String,
}

/// Meta's code for an access token it refuses (expired, revoked, wrong app).
pub const CODE_TOKEN: i64 = 190;
/// Meta's code for an invalid parameter, e.g. an object id it does not know (or the token may
/// not see).
pub const CODE_INVALID_PARAMETER: i64 = 100;

/// A business account's templates endpoint: `/{waba_id}/message_templates` with its token.
#[derive(Clone)]
pub struct Account<'a> {
    pub waba_id: &'a str,
    pub token: &'a str,
}

/// What Meta says of a media object (`GET /{media_id}`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct MediaInfo {
    #[serde(default)]
    pub id: String,
    /// Where the bytes are, for a few minutes (same bearer).
    pub url: String,
    #[serde(default)]
    pub mime_type: String,
    /// Lowercase hex SHA-256 of the bytes.
    #[serde(default)]
    pub sha256: String,
    #[serde(default, deserialize_with = "number_or_string")]
    pub file_size: u64,
}

fn number_or_string<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        N(u64),
        S(String),
    }
    match Raw::deserialize(d)? {
        Raw::N(n) => Ok(n),
        Raw::S(s) => s.trim().parse().map_err(serde::de::Error::custom),
    }
}

/// A media file's bytes as they arrive: never whole in memory.
pub struct MediaDownload {
    /// `Content-Length`, when announced.
    pub length: Option<u64>,
    pub body: BoxStream<'static, Result<bytes::Bytes, WhatsAppError>>,
}

impl std::fmt::Debug for MediaDownload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MediaDownload").field("length", &self.length).finish_non_exhaustive()
    }
}

/// Sending through a business number and managing its account's templates: Meta, or the local
/// sandbox.
#[async_trait::async_trait]
pub trait WhatsApp: Send + Sync + 'static {
    fn name(&self) -> &'static str;
    /// `payload` is the Cloud API message body (`messaging_product` is added here).
    async fn send(&self, from: &Sender<'_>, payload: &Value) -> Result<Accepted, WhatsAppError>;
    /// `POST /{waba_id}/message_templates` with `{name, language, category, components}`.
    async fn create_template(&self, account: &Account<'_>, template: &Value) -> Result<TemplateState, WhatsAppError>;
    /// `GET /{waba_id}/message_templates`: the account's templates and their review status.
    async fn templates(&self, account: &Account<'_>) -> Result<Vec<TemplateState>, WhatsAppError>;
    /// `DELETE /{waba_id}/message_templates?name=` (every language of the name).
    async fn delete_template(&self, account: &Account<'_>, name: &str) -> Result<(), WhatsAppError>;
    /// `GET /{media_id}` with the number's token: where an inbound media file is and what it is.
    async fn media_info(&self, token: &str, media_id: &str) -> Result<MediaInfo, WhatsAppError>;
    /// `GET <info.url>` with the same token, streamed; refused at once when the announced length
    /// is above `max_bytes` (the caller counts what actually arrives).
    async fn download_media(
        &self,
        token: &str,
        info: &MediaInfo,
        max_bytes: u64,
    ) -> Result<MediaDownload, WhatsAppError>;
    /// `GET /{phone_number_id}?fields=display_phone_number,quality_rating,messaging_limit_tier`.
    async fn number_state(&self, from: &Sender<'_>) -> Result<NumberState, WhatsAppError>;
}

/// Meta's media ids are digits; the sandbox's are `local.<hex>`.
fn check_media_id(id: &str) -> Result<(), WhatsAppError> {
    let ok =
        !id.is_empty() && id.len() <= 128 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_');
    if ok { Ok(()) } else { Err(WhatsAppError::InvalidArgument("media id".into())) }
}

/// A file above the caller's cap: answered like Meta's own refusal so it is never retried.
pub fn media_too_large(max_bytes: u64) -> WhatsAppError {
    WhatsAppError::InvalidArgument(format!("media larger than {max_bytes} bytes"))
}

/// Checks a URL before it is fetched (the platform's outbound check): `Err` carries the reason.
pub type UrlGuard = Arc<dyn Fn(&str) -> Result<(), String> + Send + Sync>;

/// The Cloud API client. Cheap to clone.
#[derive(Clone)]
pub struct WhatsAppClient {
    inner: Arc<Endpoint<WhatsAppConfig>>,
    /// The safe outbound client and its URL check, for media URLs Meta chooses.
    media: Option<(reqwest::Client, UrlGuard)>,
}

impl std::fmt::Debug for WhatsAppClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WhatsAppClient").field("inner", &self.inner).finish_non_exhaustive()
    }
}

impl WhatsAppClient {
    pub fn new(cfg: WhatsAppConfig, http: reqwest::Client) -> Self {
        let base = cfg.base_url.clone();
        let retry = RetryPolicy::new(MAX_ATTEMPTS, Duration::from_secs(5));
        Self { inner: Arc::new(Endpoint::new(cfg, &base, http, retry, ("whatsapp", "access token"))), media: None }
    }

    /// Media downloads go through `http` (the platform's outbound client, which checks every
    /// address it connects to and every redirect) after `guard` passed the URL itself. Without
    /// it media downloads are refused.
    pub fn with_media_fetch(mut self, http: reqwest::Client, guard: UrlGuard) -> Self {
        self.media = Some((http, guard));
        self
    }

    /// One attempt at a media URL: connection failures and 5xx may be tried again (a GET).
    async fn media_attempt(
        http: &reqwest::Client,
        url: &str,
        token: &str,
        max_bytes: u64,
    ) -> Result<MediaDownload, Failed<WhatsAppError>> {
        let resp = http.get(url).header(AUTHORIZATION, format!("Bearer {token}")).send().await.map_err(|e| {
            Failed::new(WhatsAppError::Unknown(transport_reason(&e).to_owned()), !e.is_redirect(), None)
        })?;
        let status = resp.status().as_u16();
        let wait = retry_after(resp.headers());
        if !(200..300).contains(&status) {
            let bytes = read_limited(resp, MAX_BODY_BYTES).await.unwrap_or_default();
            let retry = status >= 500 || status == 429;
            return Err(Failed::new(WhatsAppError::from_response(status, &bytes, wait), retry, wait));
        }
        let length = resp.content_length();
        if length.is_some_and(|n| n > max_bytes) {
            return Err(Failed::new(media_too_large(max_bytes), false, None));
        }
        let body = resp
            .bytes_stream()
            .map(|chunk| chunk.map_err(|e| WhatsAppError::Unknown(format!("media cut: {}", transport_reason(&e)))))
            .boxed();
        Ok(MediaDownload { length, body })
    }

    async fn attempt(&self, url: &str, token: &str, body: &Value) -> Result<Accepted, Failed<WhatsAppError>> {
        let resp = self
            .inner
            .http
            .post(url)
            .header(AUTHORIZATION, format!("Bearer {token}"))
            .header(CONTENT_TYPE, "application/json")
            .timeout(REQUEST_TIMEOUT)
            .json(body)
            .send()
            .await
            .map_err(|e| {
                let reason = transport_reason(&e).to_owned();
                if e.is_connect() {
                    Failed::new(WhatsAppError::Unreachable(reason), true, None)
                } else {
                    Failed::new(WhatsAppError::Unknown(reason), false, None)
                }
            })?;
        let status = resp.status().as_u16();
        let wait = retry_after(resp.headers());
        let bytes = read_limited(resp, MAX_BODY_BYTES)
            .await
            .map_err(|e| Failed::new(WhatsAppError::Unknown(transport_reason(&e).to_owned()), false, None))?;
        if !(200..300).contains(&status) {
            // An answer means Meta decided: never resend here (the caller's sender paces retries).
            return Err(Failed::new(WhatsAppError::from_response(status, &bytes, wait), false, wait));
        }
        accepted(&bytes).map_err(|e| Failed::new(e, false, None))
    }
}

impl WhatsAppClient {
    /// A template-management call; reads are retried on connection failures and 5xx, writes only
    /// when the request never left.
    async fn manage<T: serde::de::DeserializeOwned>(
        &self,
        method: reqwest::Method,
        url: &str,
        token: &str,
        body: Option<&Value>,
    ) -> Result<T, WhatsAppError> {
        let idempotent = method == reqwest::Method::GET || method == reqwest::Method::DELETE;
        let attempt = |_| async {
            let mut req = self
                .inner
                .http
                .request(method.clone(), url)
                .header(AUTHORIZATION, format!("Bearer {token}"))
                .timeout(REQUEST_TIMEOUT);
            if let Some(b) = body {
                req = req.json(b);
            }
            let resp = req.send().await.map_err(|e| {
                let reason = transport_reason(&e).to_owned();
                let retry = idempotent || e.is_connect();
                Failed::new(WhatsAppError::Unknown(reason), retry, None)
            })?;
            let status = resp.status().as_u16();
            let wait = retry_after(resp.headers());
            let bytes = read_limited(resp, MAX_BODY_BYTES)
                .await
                .map_err(|e| Failed::new(WhatsAppError::Unknown(transport_reason(&e).to_owned()), idempotent, None))?;
            if !(200..300).contains(&status) {
                let retry = idempotent && status >= 500;
                return Err(Failed::new(WhatsAppError::from_response(status, &bytes, wait), retry, wait));
            }
            serde_json::from_slice(&bytes).map_err(|e| Failed::new(WhatsAppError::Decode(e.to_string()), false, None))
        };
        self.inner
            .retry
            .run(attempt, |failed, d| {
                let (attempt, error, retry) = (d.attempt, &failed.error, d.retry);
                tracing::warn!(attempt, %error, retry, "whatsapp template call failed");
            })
            .await
    }
}

fn accepted(bytes: &[u8]) -> Result<Accepted, WhatsAppError> {
    #[derive(Deserialize)]
    struct Answer {
        #[serde(default)]
        contacts: Vec<Contact>,
        #[serde(default)]
        messages: Vec<Msg>,
    }
    #[derive(Deserialize)]
    struct Contact {
        #[serde(default)]
        wa_id: String,
    }
    #[derive(Deserialize)]
    struct Msg {
        id: String,
    }
    let a: Answer = serde_json::from_slice(bytes).map_err(|e| WhatsAppError::Decode(e.to_string()))?;
    let wamid =
        a.messages.into_iter().next().map(|m| m.id).ok_or_else(|| WhatsAppError::Decode("no message id".into()))?;
    Ok(Accepted { wamid, wa_id: a.contacts.into_iter().next().map(|c| c.wa_id).unwrap_or_default() })
}

fn check_id(id: &str) -> Result<(), WhatsAppError> {
    if !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(WhatsAppError::InvalidArgument("phone number id must be digits".into()))
    }
}

fn with_product(payload: &Value) -> Value {
    let mut body = payload.clone();
    if let Some(o) = body.as_object_mut() {
        o.insert("messaging_product".into(), Value::String("whatsapp".into()));
    }
    body
}

#[async_trait::async_trait]
impl WhatsApp for WhatsAppClient {
    fn name(&self) -> &'static str {
        "meta"
    }

    async fn create_template(&self, account: &Account<'_>, template: &Value) -> Result<TemplateState, WhatsAppError> {
        check_id(account.waba_id)?;
        let url = format!("{}/{}/message_templates", self.inner.base, account.waba_id);
        let mut state: TemplateState = self.manage(reqwest::Method::POST, &url, account.token, Some(template)).await?;
        if state.name.is_empty() {
            state.name = template.get("name").and_then(Value::as_str).unwrap_or_default().to_owned();
        }
        Ok(state)
    }

    async fn templates(&self, account: &Account<'_>) -> Result<Vec<TemplateState>, WhatsAppError> {
        #[derive(Deserialize)]
        struct List {
            #[serde(default)]
            data: Vec<TemplateState>,
        }
        check_id(account.waba_id)?;
        let url = format!(
            "{}/{}/message_templates?fields=id,name,language,status,rejected_reason&limit=250",
            self.inner.base, account.waba_id
        );
        let list: List = self.manage(reqwest::Method::GET, &url, account.token, None).await?;
        Ok(list.data)
    }

    async fn delete_template(&self, account: &Account<'_>, name: &str) -> Result<(), WhatsAppError> {
        check_id(account.waba_id)?;
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_') {
            return Err(WhatsAppError::InvalidArgument("template name".into()));
        }
        let url = format!("{}/{}/message_templates?name={name}", self.inner.base, account.waba_id);
        let _: Value = self.manage(reqwest::Method::DELETE, &url, account.token, None).await?;
        Ok(())
    }

    async fn media_info(&self, token: &str, media_id: &str) -> Result<MediaInfo, WhatsAppError> {
        check_media_id(media_id)?;
        let url = format!("{}/{media_id}", self.inner.base);
        let info: MediaInfo = self.manage(reqwest::Method::GET, &url, token, None).await?;
        if info.url.is_empty() {
            return Err(WhatsAppError::Decode("media without a url".into()));
        }
        Ok(info)
    }

    async fn download_media(
        &self,
        token: &str,
        info: &MediaInfo,
        max_bytes: u64,
    ) -> Result<MediaDownload, WhatsAppError> {
        let Some((http, guard)) = &self.media else {
            return Err(WhatsAppError::InvalidArgument("media downloads need the outbound client".into()));
        };
        guard(&info.url).map_err(|why| WhatsAppError::InvalidArgument(format!("media url refused: {why}")))?;
        if info.file_size > max_bytes {
            return Err(media_too_large(max_bytes));
        }
        self.inner
            .retry
            .run(
                |_| Self::media_attempt(http, &info.url, token, max_bytes),
                |failed, d| {
                    let (attempt, error, retry) = (d.attempt, &failed.error, d.retry);
                    tracing::warn!(attempt, %error, retry, "whatsapp media download failed");
                },
            )
            .await
    }

    async fn number_state(&self, from: &Sender<'_>) -> Result<NumberState, WhatsAppError> {
        check_id(from.phone_number_id)?;
        let url = format!(
            "{}/{}?fields=display_phone_number,quality_rating,messaging_limit_tier",
            self.inner.base, from.phone_number_id
        );
        self.manage(reqwest::Method::GET, &url, from.token, None).await
    }

    async fn send(&self, from: &Sender<'_>, payload: &Value) -> Result<Accepted, WhatsAppError> {
        check_id(from.phone_number_id)?;
        let url = format!("{}/{}/messages", self.inner.base, from.phone_number_id);
        let body = with_product(payload);
        self.inner
            .retry
            .run(
                |_| self.attempt(&url, from.token, &body),
                |failed, d| {
                    let (attempt, error, retry) = (d.attempt, &failed.error, d.retry);
                    tracing::warn!(attempt, %error, retry, "whatsapp send failed");
                },
            )
            .await
    }
}

/// The sandbox used without a Meta token (development only, labelled `local`): it accepts every
/// message and keeps the last ones in memory; the service stores them like real ones, so the API
/// shows them with provider `local`.
#[derive(Debug, Default)]
pub struct LocalWhatsApp {
    sent: std::sync::Mutex<Vec<(String, Value)>>,
    templates: std::sync::Mutex<Vec<(String, TemplateState)>>,
    /// Media the simulator attached: id -> (mime type, bytes).
    media: std::sync::Mutex<std::collections::VecDeque<(String, String, bytes::Bytes)>>,
}

/// Media the sandbox keeps for the simulator (each at most a few MiB): the oldest go first.
const LOCAL_MEDIA_KEPT: usize = 64;

impl LocalWhatsApp {
    pub fn new() -> Self {
        Self::default()
    }

    /// Keeps a file as Meta would keep an inbound media (what the simulator attaches): answers
    /// its media id and the SHA-256 Meta would report.
    pub fn attach_media(&self, mime_type: &str, data: bytes::Bytes) -> (String, String) {
        let id = format!("local.{}", uuid::Uuid::new_v4().simple());
        let sha = hex::encode(ring::digest::digest(&ring::digest::SHA256, &data));
        let mut media = self.media.lock().unwrap_or_else(|p| p.into_inner());
        if media.len() >= LOCAL_MEDIA_KEPT {
            media.pop_front();
        }
        media.push_back((id.clone(), mime_type.to_owned(), data));
        (id, sha)
    }

    /// What was sent, oldest first: (phone number id, body).
    pub fn sent(&self) -> Vec<(String, Value)> {
        self.sent.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

#[async_trait::async_trait]
impl WhatsApp for LocalWhatsApp {
    fn name(&self) -> &'static str {
        "local"
    }

    async fn send(&self, from: &Sender<'_>, payload: &Value) -> Result<Accepted, WhatsAppError> {
        let to = payload.get("to").and_then(Value::as_str).unwrap_or_default().to_owned();
        let mut sent = self.sent.lock().unwrap_or_else(|p| p.into_inner());
        // Bounded: the sandbox is for looking at, not an archive.
        if sent.len() >= 1_000 {
            sent.remove(0);
        }
        sent.push((from.phone_number_id.to_owned(), with_product(payload)));
        Ok(Accepted { wamid: format!("wamid.local.{}", uuid::Uuid::new_v4().simple()), wa_id: to })
    }

    /// The sandbox approves every template at once (there is no reviewer).
    async fn create_template(&self, account: &Account<'_>, template: &Value) -> Result<TemplateState, WhatsAppError> {
        let state = TemplateState {
            id: format!("local_{}", uuid::Uuid::new_v4().simple()),
            name: template.get("name").and_then(Value::as_str).unwrap_or_default().to_owned(),
            language: template.get("language").and_then(Value::as_str).unwrap_or_default().to_owned(),
            status: "APPROVED".into(),
            rejected_reason: None,
        };
        let mut all = self.templates.lock().unwrap_or_else(|p| p.into_inner());
        all.push((account.waba_id.to_owned(), state.clone()));
        Ok(state)
    }

    async fn templates(&self, account: &Account<'_>) -> Result<Vec<TemplateState>, WhatsAppError> {
        let all = self.templates.lock().unwrap_or_else(|p| p.into_inner());
        Ok(all.iter().filter(|(w, _)| w == account.waba_id).map(|(_, t)| t.clone()).collect())
    }

    async fn delete_template(&self, account: &Account<'_>, name: &str) -> Result<(), WhatsAppError> {
        let mut all = self.templates.lock().unwrap_or_else(|p| p.into_inner());
        all.retain(|(w, t)| !(w == account.waba_id && t.name == name));
        Ok(())
    }

    async fn media_info(&self, _token: &str, media_id: &str) -> Result<MediaInfo, WhatsAppError> {
        let media = self.media.lock().unwrap_or_else(|p| p.into_inner());
        let Some((id, mime, data)) = media.iter().find(|(id, _, _)| id == media_id) else {
            return Err(WhatsAppError::Api {
                status: 404,
                code: 100,
                message: "Unknown media id (local sandbox)".into(),
                details: String::new(),
                retry_after: None,
            });
        };
        Ok(MediaInfo {
            id: id.clone(),
            url: format!("local://media/{id}"),
            mime_type: mime.clone(),
            sha256: hex::encode(ring::digest::digest(&ring::digest::SHA256, data)),
            file_size: data.len() as u64,
        })
    }

    async fn download_media(
        &self,
        _token: &str,
        info: &MediaInfo,
        max_bytes: u64,
    ) -> Result<MediaDownload, WhatsAppError> {
        let media = self.media.lock().unwrap_or_else(|p| p.into_inner());
        let data = media.iter().find(|(id, _, _)| *id == info.id).map(|(_, _, d)| d.clone());
        let data = data.ok_or_else(|| WhatsAppError::InvalidArgument("unknown local media".into()))?;
        if data.len() as u64 > max_bytes {
            return Err(media_too_large(max_bytes));
        }
        let length = Some(data.len() as u64);
        Ok(MediaDownload { length, body: futures::stream::once(async move { Ok(data) }).boxed() })
    }

    /// The sandbox has no reviewer and no limits: every number is green at the first tier.
    async fn number_state(&self, _from: &Sender<'_>) -> Result<NumberState, WhatsAppError> {
        Ok(NumberState {
            display_phone_number: String::new(),
            quality_rating: LOCAL_QUALITY.into(),
            messaging_limit_tier: LOCAL_TIER.into(),
        })
    }
}

/// What the local sandbox reports for every number.
pub const LOCAL_QUALITY: &str = "GREEN";
pub const LOCAL_TIER: &str = "TIER_1K";

/// `X-Hub-Signature-256` of `body` under `app_secret`: `sha256=<lowercase hex>`.
pub fn signature(app_secret: &str, body: &[u8]) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, app_secret.as_bytes());
    format!("sha256={}", hex::encode(ring::hmac::sign(&key, body).as_ref()))
}

/// Whether `header` is the signature of `body` (constant-time).
pub fn verify_signature(app_secret: &str, body: &[u8], header: &str) -> bool {
    let Some(hex_sig) = header.trim().strip_prefix("sha256=") else { return false };
    let Ok(sig) = hex::decode(hex_sig) else { return false };
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, app_secret.as_bytes());
    ring::hmac::verify(&key, body, &sig).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_verify_only_over_the_same_body_and_secret() {
        let sig = signature("s3cret", b"{\"a\":1}");
        assert!(verify_signature("s3cret", b"{\"a\":1}", &sig));
        assert!(!verify_signature("s3cret", b"{\"a\": 1}", &sig));
        assert!(!verify_signature("other", b"{\"a\":1}", &sig));
        assert!(!verify_signature("s3cret", b"{\"a\":1}", "sha256=zz"));
        assert!(!verify_signature("s3cret", b"{\"a\":1}", sig.trim_start_matches("sha256=")));
    }

    #[test]
    fn error_bodies_keep_the_code_and_throttling_is_recognised() {
        let body = br#"{"error":{"message":"(#130429) Rate limit hit","type":"OAuthException","code":130429,"error_data":{"messaging_product":"whatsapp","details":"slow down"},"fbtrace_id":"x"}}"#;
        let e = WhatsAppError::from_response(400, body, None);
        assert_eq!(e.code(), Some(CODE_THROUGHPUT));
        assert!(e.is_throttling() && e.not_sent());
        let e = WhatsAppError::from_response(400, br#"{"error":{"code":131047,"message":"Re-engagement"}}"#, None);
        assert!(!e.is_throttling());
        assert!(!WhatsAppError::Unknown("timeout".into()).not_sent());
    }
}
