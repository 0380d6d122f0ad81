//! Replicate predictions (`reference/providers.md` §4): create (by version, official model or
//! deployment), get, cancel, poll until done, the account's webhook signing secret, and webhook
//! verification (Standard Webhooks scheme).
//!
//! - Bearer authentication with the API token (never logged).
//! - Every request times out after [`REQUEST_TIMEOUT`] (plus the `Prefer: wait` time when asked).
//! - Retries (at most [`MAX_ATTEMPTS`] attempts): a 429 is retried on every call, honouring a
//!   `Retry-After` of up to [`MAX_RETRY_AFTER`] (a longer one ends the retries); reads and cancels
//!   are also retried on 5xx and transport failures. A create is not retried after a 5xx or a
//!   broken connection once sent: Replicate has no idempotency key, and a second prediction
//!   would be billed twice.
//! - Webhooks are authenticated with [`verify_webhook`]; the `webhook-id` header is stable
//!   across redeliveries and is the deduplication key.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use reqwest::Method;
use reqwest::header::ACCEPT;
use serde::{Deserialize, Deserializer};
use serde_json::{Value, json};

use crate::http::{Endpoint, Failed, RetryPolicy, read_limited, retry_after, transport_reason};
use crate::llm::clip;

pub const DEFAULT_BASE_URL: &str = "https://api.replicate.com/v1";
/// Timeout of every request (a `Prefer: wait` request gets its wait on top).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Attempts per call, the first included.
pub const MAX_ATTEMPTS: u32 = 3;
/// A longer `Retry-After` ends the retries (the caller gets [`ReplicateError::RateLimited`]).
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(20);
/// Webhook timestamps further than this from now are rejected (Replicate names no window; this
/// is the Standard Webhooks convention).
pub const WEBHOOK_TOLERANCE: Duration = Duration::from_secs(300);

const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;

fn default_base_url() -> String {
    DEFAULT_BASE_URL.into()
}

#[derive(Clone, Deserialize)]
pub struct ReplicateConfig {
    /// `r8_…`. Never logged.
    pub api_token: String,
    /// Up to and including `/v1`. Default [`DEFAULT_BASE_URL`].
    #[serde(default = "default_base_url")]
    pub base_url: String,
    /// `whsec_…`, to verify deliveries (see [`ReplicateClient::default_webhook_secret`]).
    #[serde(default)]
    pub webhook_secret: Option<String>,
}

impl ReplicateConfig {
    pub fn new(api_token: impl Into<String>) -> Self {
        Self { api_token: api_token.into(), base_url: default_base_url(), webhook_secret: None }
    }
}

impl fmt::Debug for ReplicateConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReplicateConfig")
            .field("api_token", &"<redacted>")
            .field("base_url", &self.base_url)
            .field("webhook_secret", &self.webhook_secret.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

// ---------------------------------------------------------------------------------------------
// Predictions

/// What to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PredictionTarget {
    /// A model version id: `POST /predictions` with `version`.
    Version(String),
    /// An official model, always its latest version: `POST /models/{owner}/{name}/predictions`.
    Model { owner: String, name: String },
    /// A deployment: `POST /deployments/{owner}/{name}/predictions`.
    Deployment { owner: String, name: String },
}

impl PredictionTarget {
    /// `owner/name` → [`PredictionTarget::Model`]; `owner/name:<version>` or a bare version id →
    /// [`PredictionTarget::Version`].
    pub fn parse(s: &str) -> Result<Self, ReplicateError> {
        let bad = || ReplicateError::InvalidArgument(format!("not a Replicate model or version: {s:?}"));
        if let Some((_, version)) = s.split_once(':') {
            return if is_version_id(version) { Ok(Self::Version(version.into())) } else { Err(bad()) };
        }
        if let Some((owner, name)) = s.split_once('/') {
            return if is_slug(owner) && is_slug(name) {
                Ok(Self::Model { owner: owner.into(), name: name.into() })
            } else {
                Err(bad())
            };
        }
        if is_version_id(s) { Ok(Self::Version(s.into())) } else { Err(bad()) }
    }
}

fn is_slug(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && !s.starts_with('.')
}

fn is_version_id(s: &str) -> bool {
    !s.is_empty() && s.len() <= 128 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// Webhook events to receive (`webhook_events_filter`); none listed means all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WebhookEventType {
    Start,
    Output,
    Logs,
    Completed,
}

impl WebhookEventType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Start => "start",
            Self::Output => "output",
            Self::Logs => "logs",
            Self::Completed => "completed",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct CreatePrediction {
    pub target: PredictionTarget,
    /// The model's inputs (model-specific).
    pub input: Value,
    /// HTTPS URL Replicate POSTs the prediction to.
    pub webhook: Option<String>,
    pub webhook_events_filter: Vec<WebhookEventType>,
    /// `Prefer: wait=N` (1–60 s): hold the request until the prediction finishes or N seconds
    /// pass; the answer may still be unfinished.
    pub wait: Option<u32>,
}

impl CreatePrediction {
    pub fn new(target: PredictionTarget, input: Value) -> Self {
        Self { target, input, webhook: None, webhook_events_filter: Vec::new(), wait: None }
    }

    /// Only the `completed` event is delivered to `url`.
    pub fn with_completion_webhook(mut self, url: impl Into<String>) -> Self {
        self.webhook = Some(url.into());
        self.webhook_events_filter = vec![WebhookEventType::Completed];
        self
    }

    fn body(&self) -> Value {
        let mut body = json!({ "input": self.input });
        if let PredictionTarget::Version(v) = &self.target {
            body["version"] = json!(v);
        }
        if let Some(url) = &self.webhook {
            body["webhook"] = json!(url);
            if !self.webhook_events_filter.is_empty() {
                let events: Vec<&str> = self.webhook_events_filter.iter().map(|e| e.as_str()).collect();
                body["webhook_events_filter"] = json!(events);
            }
        }
        body
    }

    fn path(&self) -> String {
        match &self.target {
            PredictionTarget::Version(_) => "/predictions".into(),
            PredictionTarget::Model { owner, name } => format!("/models/{owner}/{name}/predictions"),
            PredictionTarget::Deployment { owner, name } => format!("/deployments/{owner}/{name}/predictions"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(from = "String")]
pub enum PredictionStatus {
    Starting,
    Processing,
    Succeeded,
    Failed,
    Canceled,
    /// A status this client does not know; treated as still running.
    Other(String),
}

impl From<String> for PredictionStatus {
    fn from(s: String) -> Self {
        match s.as_str() {
            "starting" => Self::Starting,
            "processing" => Self::Processing,
            "succeeded" => Self::Succeeded,
            "failed" => Self::Failed,
            "canceled" => Self::Canceled,
            _ => Self::Other(s),
        }
    }
}

impl PredictionStatus {
    pub fn is_terminal(&self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed | Self::Canceled)
    }

    pub fn as_str(&self) -> &str {
        match self {
            Self::Starting => "starting",
            Self::Processing => "processing",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Canceled => "canceled",
            Self::Other(s) => s,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct PredictionUrls {
    #[serde(default)]
    pub get: Option<String>,
    #[serde(default)]
    pub cancel: Option<String>,
    #[serde(default)]
    pub stream: Option<String>,
    #[serde(default)]
    pub web: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct PredictionMetrics {
    /// Seconds of model time (what Replicate bills for most models).
    #[serde(default)]
    pub predict_time: Option<f64>,
    #[serde(default)]
    pub total_time: Option<f64>,
}

/// A prediction as Replicate returns it (and as webhooks deliver it).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Prediction {
    pub id: String,
    #[serde(default)]
    pub model: String,
    #[serde(default)]
    pub version: Option<String>,
    pub status: PredictionStatus,
    #[serde(default)]
    pub input: Value,
    /// Model-specific; often a URL or a list of URLs. `Null` until there is output.
    #[serde(default)]
    pub output: Value,
    /// The failure reason of a failed prediction.
    #[serde(default, deserialize_with = "error_text")]
    pub error: Option<String>,
    #[serde(default)]
    pub logs: Option<String>,
    #[serde(default)]
    pub created_at: Option<String>,
    #[serde(default)]
    pub started_at: Option<String>,
    #[serde(default)]
    pub completed_at: Option<String>,
    /// Output files are deleted about an hour after an API prediction; copy them before.
    #[serde(default, deserialize_with = "null_false")]
    pub data_removed: bool,
    #[serde(default, deserialize_with = "null_default")]
    pub urls: PredictionUrls,
    #[serde(default, deserialize_with = "null_default")]
    pub metrics: PredictionMetrics,
}

impl Prediction {
    /// Every URL in `output` (a string, or strings nested in arrays/objects), in order.
    pub fn output_urls(&self) -> Vec<String> {
        fn walk(v: &Value, out: &mut Vec<String>) {
            match v {
                Value::String(s) if s.starts_with("https://") || s.starts_with("http://") => out.push(s.clone()),
                Value::Array(a) => a.iter().for_each(|v| walk(v, out)),
                Value::Object(m) => m.values().for_each(|v| walk(v, out)),
                _ => {}
            }
        }
        let mut out = Vec::new();
        walk(&self.output, &mut out);
        out
    }

    /// `Ok` for a succeeded prediction; a failed one is [`ReplicateError::PredictionFailed`], a
    /// canceled one [`ReplicateError::PredictionCanceled`], a running one
    /// [`ReplicateError::NotFinished`].
    pub fn into_result(self) -> Result<Prediction, ReplicateError> {
        match &self.status {
            PredictionStatus::Succeeded => Ok(self),
            PredictionStatus::Failed => Err(ReplicateError::PredictionFailed {
                id: self.id.clone(),
                error: self.error.clone().unwrap_or_else(|| "no reason given".into()),
            }),
            PredictionStatus::Canceled => Err(ReplicateError::PredictionCanceled { id: self.id }),
            _ => Err(ReplicateError::NotFinished { last: Box::new(self) }),
        }
    }
}

/// `error` is a string in practice; anything else is kept as its JSON text.
fn error_text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match Option::<Value>::deserialize(d)? {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s),
        Some(other) => Some(other.to_string()),
    })
}

fn null_false<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    Ok(Option::<bool>::deserialize(d)?.unwrap_or(false))
}

fn null_default<'de, D: Deserializer<'de>, T: Deserialize<'de> + Default>(d: D) -> Result<T, D::Error> {
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// How [`ReplicateClient::wait_for_prediction`] polls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PollOptions {
    /// First pause between two reads; it grows by half each time up to `max_interval`.
    pub initial_interval: Duration,
    pub max_interval: Duration,
    /// Total time allowed, from the first read.
    pub deadline: Duration,
}

impl Default for PollOptions {
    fn default() -> Self {
        Self {
            initial_interval: Duration::from_millis(500),
            max_interval: Duration::from_secs(5),
            deadline: Duration::from_secs(600),
        }
    }
}

/// The account's webhook signing key (`whsec_…`). Not shown by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSecret(String);

impl WebhookSecret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSecret(<redacted>)")
    }
}

// ---------------------------------------------------------------------------------------------
// Errors

/// One field Replicate refused (422 `invalid_fields`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct InvalidField {
    #[serde(default, rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub field: String,
    #[serde(default)]
    pub description: String,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum ReplicateError {
    #[error("replicate rate limit{}", retry_after.map(|d| format!(" (retry after {d:?})")).unwrap_or_default())]
    RateLimited { retry_after: Option<Duration> },
    #[error("replicate refused the API token")]
    Auth,
    /// 402: billing not set up or credit exhausted.
    #[error("replicate needs payment: {detail}")]
    PaymentRequired { detail: String },
    #[error("replicate: not found: {detail}")]
    NotFound { detail: String },
    /// 400/422: the input or model was refused.
    #[error("replicate refused the input: {detail}")]
    InvalidInput { detail: String, fields: Vec<InvalidField> },
    /// Refused before sending (malformed id or model reference).
    #[error("invalid replicate request: {0}")]
    InvalidArgument(String),
    #[error("replicate did not answer in time")]
    Timeout,
    /// [`ReplicateClient::wait_for_prediction`] ran out of time; `last` is the last state read.
    #[error("prediction {} still {} at the deadline", last.id, last.status.as_str())]
    PollDeadline { last: Box<Prediction> },
    /// [`Prediction::into_result`] on an unfinished prediction.
    #[error("prediction {} is still {}", last.id, last.status.as_str())]
    NotFinished { last: Box<Prediction> },
    #[error("prediction {id} failed: {error}")]
    PredictionFailed { id: String, error: String },
    #[error("prediction {id} was canceled")]
    PredictionCanceled { id: String },
    /// Any other answer, or `status` 0 when Replicate could not be reached.
    #[error("replicate error {status}: {detail}")]
    Upstream { status: u16, detail: String },
    #[error("unreadable replicate answer: {0}")]
    Decode(String),
}

impl ReplicateError {
    /// Parses a problem-JSON body (`{"title","detail","status","invalid_fields"}`).
    fn from_response(status: u16, body: &[u8], retry_after: Option<Duration>) -> Self {
        #[derive(Deserialize, Default)]
        struct Problem {
            #[serde(default)]
            title: Option<String>,
            #[serde(default)]
            detail: Option<Value>,
            #[serde(default)]
            invalid_fields: Option<Vec<InvalidField>>,
        }
        let p: Problem = serde_json::from_slice(body).unwrap_or_default();
        let detail = match (p.detail, p.title) {
            (Some(Value::String(d)), _) => d,
            (Some(other), _) if !other.is_null() => other.to_string(),
            (_, Some(t)) => t,
            _ => format!("answered {status} without details"),
        };
        let detail = clip(&detail);
        match status {
            401 | 403 => Self::Auth,
            402 => Self::PaymentRequired { detail },
            404 => Self::NotFound { detail },
            400 | 422 => Self::InvalidInput { detail, fields: p.invalid_fields.unwrap_or_default() },
            429 => Self::RateLimited { retry_after },
            _ => Self::Upstream { status, detail },
        }
    }

    fn retryable(&self, idempotent: bool) -> bool {
        match self {
            Self::RateLimited { .. } => true,
            Self::Upstream { status, .. } => idempotent && (*status == 0 || *status >= 500),
            _ => false,
        }
    }
}

impl From<ReplicateError> for nexus_kernel::Error {
    /// Rate limits, outages, exhausted provider credit and timeouts are transient; refused input
    /// and failed predictions are about the request; a refused token, unknown ids and malformed
    /// references are our bugs (internal, cause kept).
    fn from(e: ReplicateError) -> Self {
        use nexus_kernel::{Error, ErrorKind};
        match &e {
            ReplicateError::RateLimited { retry_after } => crate::llm::rate_limited(*retry_after).with_source(e),
            ReplicateError::PaymentRequired { .. } => {
                Error::new(ErrorKind::Unavailable, "provider.quota_exceeded").with_source(e)
            }
            ReplicateError::InvalidInput { .. } => {
                Error::new(ErrorKind::Unprocessable, "provider.invalid_request").with_source(e)
            }
            ReplicateError::Timeout | ReplicateError::PollDeadline { .. } => {
                Error::new(ErrorKind::DeadlineExceeded, "provider.timeout").with_source(e)
            }
            ReplicateError::PredictionFailed { .. } => {
                Error::new(ErrorKind::Unprocessable, "provider.generation_failed").with_source(e)
            }
            ReplicateError::PredictionCanceled { .. } => {
                Error::new(ErrorKind::Unavailable, "provider.cancelled").with_source(e)
            }
            ReplicateError::Upstream { status, .. } if *status == 0 || *status >= 500 => {
                Error::new(ErrorKind::Unavailable, "provider.unavailable").with_source(e)
            }
            ReplicateError::Decode(_) => Error::new(ErrorKind::Unavailable, "provider.unavailable").with_source(e),
            ReplicateError::Auth
            | ReplicateError::NotFound { .. }
            | ReplicateError::InvalidArgument(_)
            | ReplicateError::NotFinished { .. }
            | ReplicateError::Upstream { .. } => Error::internal(e),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Client

/// Replicate API client. Cheap to clone.
#[derive(Clone, Debug)]
pub struct ReplicateClient {
    inner: Arc<Endpoint<ReplicateConfig>>,
}

impl ReplicateClient {
    pub fn new(cfg: ReplicateConfig, http: reqwest::Client) -> Self {
        Self::with_max_retry_after(cfg, http, MAX_RETRY_AFTER)
    }

    /// Like [`ReplicateClient::new`] with another limit than [`MAX_RETRY_AFTER`].
    pub fn with_max_retry_after(cfg: ReplicateConfig, http: reqwest::Client, max_retry_after: Duration) -> Self {
        let (base, retry) = (cfg.base_url.clone(), RetryPolicy::new(MAX_ATTEMPTS, max_retry_after));
        Self { inner: Arc::new(Endpoint::new(cfg, &base, http, retry, ("replicate", "API token"))) }
    }

    pub fn config(&self) -> &ReplicateConfig {
        &self.inner.cfg
    }

    /// `POST /predictions` (or the model/deployment endpoint). Answers `starting` usually, or
    /// a finished prediction when `wait` was asked and the model was quick.
    pub async fn create_prediction(&self, req: &CreatePrediction) -> Result<Prediction, ReplicateError> {
        match &req.target {
            PredictionTarget::Version(v) if !is_version_id(v) => {
                return Err(ReplicateError::InvalidArgument("malformed version id".into()));
            }
            PredictionTarget::Model { owner, name } | PredictionTarget::Deployment { owner, name }
                if !(is_slug(owner) && is_slug(name)) =>
            {
                return Err(ReplicateError::InvalidArgument("malformed model owner or name".into()));
            }
            _ => {}
        }
        if let Some(w) = req.wait
            && !(1..=60).contains(&w)
        {
            return Err(ReplicateError::InvalidArgument("wait must be 1 to 60 seconds".into()));
        }
        let body = req.body();
        self.call(Method::POST, &req.path(), Some(&body), req.wait, false).await
    }

    /// `GET /predictions/{id}`.
    pub async fn get_prediction(&self, id: &str) -> Result<Prediction, ReplicateError> {
        check_id(id)?;
        self.call(Method::GET, &format!("/predictions/{id}"), None, None, true).await
    }

    /// `POST /predictions/{id}/cancel`; cancelling a finished prediction changes nothing.
    pub async fn cancel_prediction(&self, id: &str) -> Result<Prediction, ReplicateError> {
        check_id(id)?;
        self.call(Method::POST, &format!("/predictions/{id}/cancel"), None, None, true).await
    }

    /// Reads the prediction until it is terminal (succeeded, failed or canceled — check the
    /// status or use [`Prediction::into_result`]) with growing pauses; the polling fallback when
    /// no webhook arrives. Past the deadline: [`ReplicateError::PollDeadline`].
    pub async fn wait_for_prediction(&self, id: &str, opts: &PollOptions) -> Result<Prediction, ReplicateError> {
        let deadline = tokio::time::Instant::now() + opts.deadline;
        let mut interval = opts.initial_interval.max(Duration::from_millis(10));
        loop {
            let p = self.get_prediction(id).await?;
            if p.status.is_terminal() {
                return Ok(p);
            }
            let jittered = interval + interval.mul_f64(rand::random_range(0.0..0.1));
            if tokio::time::Instant::now() + jittered > deadline {
                return Err(ReplicateError::PollDeadline { last: Box::new(p) });
            }
            tokio::time::sleep(jittered).await;
            interval = interval.mul_f64(1.5).min(opts.max_interval.max(opts.initial_interval));
        }
    }

    /// `GET /webhooks/default/secret`: the key that signs this account's webhooks.
    pub async fn default_webhook_secret(&self) -> Result<WebhookSecret, ReplicateError> {
        #[derive(Deserialize)]
        struct Secret {
            key: String,
        }
        let s: Secret = self.call(Method::GET, "/webhooks/default/secret", None, None, true).await?;
        if !s.key.starts_with("whsec_") {
            return Err(ReplicateError::Decode("webhook secret without the whsec_ prefix".into()));
        }
        Ok(WebhookSecret(s.key))
    }

    /// [`verify_webhook`] then [`parse_webhook`], with the configured secret.
    pub fn verify_delivery<H: WebhookHeaders + ?Sized>(
        &self,
        headers: &H,
        body: &[u8],
        now: i64,
    ) -> Result<WebhookDelivery, WebhookError> {
        let secret = self.inner.cfg.webhook_secret.as_deref().unwrap_or_default();
        verify_webhook(secret, headers, body, now, WEBHOOK_TOLERANCE)?;
        parse_webhook(headers, body)
    }

    async fn call<T: serde::de::DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        wait: Option<u32>,
        idempotent: bool,
    ) -> Result<T, ReplicateError> {
        let url = format!("{}{path}", self.inner.base);
        let attempt = |_| async {
            self.attempt(&method, &url, body, wait).await.map_err(|(err, pause)| {
                let retryable = err.retryable(idempotent);
                Failed::new(err, retryable, pause)
            })
        };
        self.inner
            .retry
            .run(attempt, |failed, d| {
                let (attempt, error, retry) = (d.attempt, &failed.error, d.retry);
                tracing::warn!(%method, path, attempt, %error, retry, "replicate request failed");
            })
            .await
    }

    async fn attempt<T: serde::de::DeserializeOwned>(
        &self,
        method: &Method,
        url: &str,
        body: Option<&Value>,
        wait: Option<u32>,
    ) -> Result<T, (ReplicateError, Option<Duration>)> {
        let timeout = REQUEST_TIMEOUT + Duration::from_secs(u64::from(wait.unwrap_or(0)));
        let mut req = self
            .inner
            .http
            .request(method.clone(), url)
            .bearer_auth(&self.inner.cfg.api_token)
            .header(ACCEPT, "application/json")
            .timeout(timeout);
        if let Some(body) = body {
            req = req.json(body);
        }
        if let Some(w) = wait {
            req = req.header("Prefer", format!("wait={w}"));
        }
        let resp = req.send().await.map_err(|e| (transport_error(&e), None))?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let bytes = read_limited(resp, MAX_BODY_BYTES).await.map_err(|e| (transport_error(&e), None))?;
        if (200..300).contains(&status) {
            return serde_json::from_slice(&bytes)
                .map_err(|e| (ReplicateError::Decode(format!("unexpected answer: {e}")), None));
        }
        let wait = retry_after(&headers);
        Err((ReplicateError::from_response(status, &bytes, wait), wait))
    }
}

fn transport_error(e: &reqwest::Error) -> ReplicateError {
    if e.is_timeout() {
        ReplicateError::Timeout
    } else {
        ReplicateError::Upstream { status: 0, detail: format!("could not reach Replicate: {}", transport_reason(e)) }
    }
}

/// Prediction ids go into URL paths: letters and digits only.
fn check_id(id: &str) -> Result<(), ReplicateError> {
    if !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        Ok(())
    } else {
        Err(ReplicateError::InvalidArgument("malformed prediction id".into()))
    }
}

// ---------------------------------------------------------------------------------------------
// Webhooks

pub use crate::standard_webhooks::{WebhookError, WebhookHeaders, verify as verify_webhook};

/// An authenticated delivery.
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookDelivery {
    /// `webhook-id`: the same on every redelivery of this message; deduplicate on it.
    pub id: String,
    /// `webhook-timestamp` (Unix seconds).
    pub timestamp: i64,
    pub prediction: Prediction,
}

/// Reads an already verified delivery: its id, timestamp and the prediction in the body.
pub fn parse_webhook<H: WebhookHeaders + ?Sized>(headers: &H, body: &[u8]) -> Result<WebhookDelivery, WebhookError> {
    let id = headers.header("webhook-id").map(str::trim).ok_or(WebhookError::MissingHeader("webhook-id"))?;
    let timestamp = headers
        .header("webhook-timestamp")
        .and_then(|t| t.trim().parse().ok())
        .ok_or(WebhookError::Malformed("timestamp is not a number"))?;
    let prediction: Prediction =
        serde_json::from_slice(body).map_err(|e| WebhookError::InvalidPayload(e.to_string()))?;
    Ok(WebhookDelivery { id: id.to_string(), timestamp, prediction })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    const SECRET: &str = "whsec_bmV4dXMgZmFrZSByZXBsaWNhdGUgc2lnbmluZyBrZXk=";

    fn headers(id: &str, ts: &str, sig: &str) -> HashMap<String, String> {
        [("webhook-id", id), ("webhook-timestamp", ts), ("webhook-signature", sig)]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn signature_known_answer() {
        // Python: base64(hmac.new(b"nexus fake replicate signing key",
        //   b'msg_1.1700000000.{"id":"p1"}', sha256).digest())
        let secret = crate::standard_webhooks::SigningSecret::parse(SECRET).unwrap();
        assert_eq!(
            secret.sign("msg_1", 1_700_000_000, br#"{"id":"p1"}"#),
            "v1,8o5tBwRC4VwKD+5CmYF1UVG/E2NlZRX5qvR74/db7k4="
        );
        let h = headers("msg_1", "1700000000", "v1,8o5tBwRC4VwKD+5CmYF1UVG/E2NlZRX5qvR74/db7k4=");
        assert_eq!(verify_webhook(SECRET, &h, br#"{"id":"p1"}"#, 1_700_000_000, WEBHOOK_TOLERANCE), Ok(()));
    }

    #[test]
    fn header_edge_cases() {
        let body = br#"{"id":"p1"}"#;
        let good = "v1,8o5tBwRC4VwKD+5CmYF1UVG/E2NlZRX5qvR74/db7k4=";
        let check = |h: &HashMap<String, String>| verify_webhook(SECRET, h, body, 1_700_000_000, WEBHOOK_TOLERANCE);
        assert_eq!(check(&headers("msg_1", "soon", good)), Err(WebhookError::Malformed("timestamp is not a number")));
        assert_eq!(
            check(&headers("msg_1", "1700000000", "v1a,abc v2,xyz")),
            Err(WebhookError::Malformed("no v1 signature"))
        );
        assert_eq!(check(&headers("msg_1", "1700000000", "v1,!!notbase64!!")), Err(WebhookError::NoMatchingSignature));
        assert_eq!(check(&headers("", "1700000000", good)), Err(WebhookError::MissingHeader("webhook-id")));
        // Header names in any case (the gateway lower-cases them; others may not).
        let mut upper = HashMap::new();
        upper.insert("Webhook-Id".to_string(), "msg_1".to_string());
        upper.insert("Webhook-Timestamp".to_string(), "1700000000".to_string());
        upper.insert("Webhook-Signature".to_string(), good.to_string());
        assert_eq!(check(&upper), Ok(()));
        // A secret that is not base64, or empty: our configuration error, never a pass.
        let h = headers("msg_1", "1700000000", good);
        assert_eq!(
            verify_webhook("whsec_***", &h, body, 1_700_000_000, WEBHOOK_TOLERANCE),
            Err(WebhookError::InvalidSecret)
        );
        assert_eq!(
            verify_webhook("whsec_", &h, body, 1_700_000_000, WEBHOOK_TOLERANCE),
            Err(WebhookError::InvalidSecret)
        );
    }

    #[test]
    fn targets_parse_and_requests_shape() {
        assert_eq!(
            PredictionTarget::parse("black-forest-labs/flux-schnell").unwrap(),
            PredictionTarget::Model { owner: "black-forest-labs".into(), name: "flux-schnell".into() }
        );
        assert_eq!(
            PredictionTarget::parse(
                "stability-ai/sdxl:7762fd07cf82c948538e41f63f77d685e02b063e37e496e96eefd46c929f9bdc"
            )
            .unwrap(),
            PredictionTarget::Version("7762fd07cf82c948538e41f63f77d685e02b063e37e496e96eefd46c929f9bdc".into())
        );
        for bad in ["", "a/b/c", "../x", "owner/", "a/b:", "x y"] {
            assert!(PredictionTarget::parse(bad).is_err(), "{bad}");
        }
        let req = CreatePrediction::new(PredictionTarget::Version("abc".into()), json!({"prompt": "p"}))
            .with_completion_webhook("https://hooks.example.com/replicate");
        assert_eq!(req.path(), "/predictions");
        assert_eq!(
            req.body(),
            json!({"version": "abc", "input": {"prompt": "p"}, "webhook": "https://hooks.example.com/replicate",
                "webhook_events_filter": ["completed"]})
        );
        let req = CreatePrediction::new(PredictionTarget::parse("o/n").unwrap(), json!({}));
        assert_eq!((req.path().as_str(), req.body()), ("/models/o/n/predictions", json!({"input": {}})));
        assert!(check_id("ufawqhfynnddngldkgtslldrkq").is_ok());
        assert!(check_id("../secret").is_err());
    }

    #[test]
    fn prediction_parsing_and_kernel_mapping() {
        use nexus_kernel::ErrorKind;
        let p: Prediction = serde_json::from_value(json!({
            "id": "p1", "model": "o/n", "version": "hidden", "status": "failed", "input": {},
            "output": null, "error": {"message": "CUDA out of memory"}, "logs": "", "data_removed": null,
            "urls": null, "metrics": {"predict_time": 1.5}
        }))
        .unwrap();
        assert_eq!(p.error.as_deref(), Some(r#"{"message":"CUDA out of memory"}"#));
        assert_eq!(p.metrics.predict_time, Some(1.5));
        let e: nexus_kernel::Error = p.into_result().unwrap_err().into();
        assert_eq!((e.kind(), e.code()), (ErrorKind::Unprocessable, "provider.generation_failed"));
        let p: Prediction = serde_json::from_value(json!({"id": "p2", "status": "aborted",
            "output": {"images": ["https://x/1.png", "https://x/2.png"], "n": 2}}))
        .unwrap();
        assert_eq!(p.status, PredictionStatus::Other("aborted".into()));
        assert!(!p.status.is_terminal());
        assert_eq!(p.output_urls(), vec!["https://x/1.png", "https://x/2.png"]);

        let k = |e: ReplicateError| -> nexus_kernel::Error { e.into() };
        let rl = k(ReplicateError::from_response(
            429,
            br#"{"detail":"Request was throttled."}"#,
            Some(Duration::from_secs(3)),
        ));
        assert_eq!((rl.code(), rl.param("retry_after")), ("provider.rate_limited", Some("3")));
        let inv = ReplicateError::from_response(
            422,
            br#"{"title":"Input validation failed","detail":"- prompt is required","status":422,
                "invalid_fields":[{"type":"required","field":"prompt","description":"prompt is required"}]}"#,
            None,
        );
        let ReplicateError::InvalidInput { fields, .. } = &inv else { panic!("{inv:?}") };
        assert_eq!(fields[0].field, "prompt");
        assert_eq!(k(inv).code(), "provider.invalid_request");
        assert_eq!(k(ReplicateError::from_response(402, b"{}", None)).code(), "provider.quota_exceeded");
        assert_eq!(k(ReplicateError::from_response(503, b"<html>", None)).code(), "provider.unavailable");
        assert_eq!(k(ReplicateError::from_response(401, b"{}", None)).kind(), ErrorKind::Internal);
        assert_eq!(k(ReplicateError::Timeout).code(), "provider.timeout");
    }

    #[test]
    fn secrets_are_not_shown() {
        let cfg = ReplicateConfig { webhook_secret: Some(SECRET.into()), ..ReplicateConfig::new("r8_supersecret") };
        let shown = format!("{cfg:?} {:?}", WebhookSecret(SECRET.into()));
        assert!(!shown.contains("supersecret") && !shown.contains("bmV4"), "{shown}");
    }
}
