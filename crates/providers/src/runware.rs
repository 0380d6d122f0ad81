//! Runware image generation over the REST task API (`reference/providers.md` §5).
//!
//! - `POST {base_url}` with a JSON array of tasks, authenticated with the API key as a bearer
//!   token (never logged); answers carry a `data` array (one element per result, matched to our
//!   task by `taskUUID`, never by position) and/or an `errors` array.
//! - [`RunwareClient::image_inference`] waits for the images (sync delivery);
//!   [`RunwareClient::submit_image_inference`] returns at once and the results arrive at the
//!   task's `webhookURL` (or are read with [`RunwareClient::get_response`]).
//! - Runware does not sign webhooks: the receiver checks a secret token we put in the webhook
//!   URL ([`webhook_url`], [`verify_webhook_token`]) and then matches `taskUUID` to a task it
//!   created.
//! - Retries (at most [`MAX_ATTEMPTS`] attempts): 429 (honouring a `Retry-After` up to
//!   [`MAX_RETRY_AFTER`]), 5xx and connection failures; every attempt carries the same
//!   `taskUUID`. Timeouts are not retried.
//! - Costs are exposed in integer millionths of a US dollar, never as floats.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use reqwest::header::ACCEPT;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Value, json};
use subtle::ConstantTimeEq;
use uuid::Uuid;

use crate::http::{Endpoint, Failed, RetryPolicy, read_limited, retry_after, transport_reason};
use crate::llm::clip;

pub const DEFAULT_BASE_URL: &str = "https://api.runware.ai/v1";
/// Default timeout of a request (a sync generation included).
pub const DEFAULT_TIMEOUT_SECS: u64 = 120;
pub const MAX_ATTEMPTS: u32 = 3;
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(20);
/// Query parameter of the webhook URL that carries our token.
pub const WEBHOOK_TOKEN_PARAM: &str = "token";

const MAX_BODY_BYTES: usize = 64 * 1024 * 1024;

fn default_base_url() -> String {
    DEFAULT_BASE_URL.into()
}

fn default_timeout_secs() -> u64 {
    DEFAULT_TIMEOUT_SECS
}

#[derive(Clone, Deserialize)]
pub struct RunwareConfig {
    /// Never logged.
    pub api_key: String,
    #[serde(default = "default_base_url")]
    pub base_url: String,
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
}

impl RunwareConfig {
    pub fn new(api_key: impl Into<String>) -> Self {
        Self { api_key: api_key.into(), base_url: default_base_url(), timeout_secs: DEFAULT_TIMEOUT_SECS }
    }
}

impl fmt::Debug for RunwareConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RunwareConfig")
            .field("api_key", &"<redacted>")
            .field("base_url", &self.base_url)
            .field("timeout_secs", &self.timeout_secs)
            .finish()
    }
}

// ---------------------------------------------------------------------------------------------
// Tasks

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub enum OutputType {
    #[default]
    #[serde(rename = "URL")]
    Url,
    #[serde(rename = "base64Data")]
    Base64Data,
    #[serde(rename = "dataURI")]
    DataUri,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub enum OutputFormat {
    #[default]
    #[serde(rename = "JPG")]
    Jpg,
    #[serde(rename = "PNG")]
    Png,
    #[serde(rename = "WEBP")]
    Webp,
}

/// An `imageInference` task.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageInference {
    /// Ours; results and errors name it.
    #[serde(rename = "taskUUID")]
    pub task_uuid: Uuid,
    pub positive_prompt: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub negative_prompt: Option<String>,
    /// An AIR id, e.g. `runware:101@1`.
    pub model: String,
    pub width: u32,
    pub height: u32,
    pub number_results: u32,
    pub output_type: OutputType,
    pub output_format: OutputFormat,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub steps: Option<u32>,
    #[serde(rename = "CFGScale", skip_serializing_if = "Option::is_none")]
    pub cfg_scale: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    pub include_cost: bool,
    #[serde(rename = "checkNSFW")]
    pub check_nsfw: bool,
    /// Where Runware POSTs the results (build it with [`webhook_url`]).
    #[serde(rename = "webhookURL", skip_serializing_if = "Option::is_none")]
    pub webhook_url: Option<String>,
}

impl ImageInference {
    /// A fresh `taskUUID`, one result, a URL to a JPG, cost and NSFW check included.
    pub fn new(positive_prompt: impl Into<String>, model: impl Into<String>, width: u32, height: u32) -> Self {
        Self {
            task_uuid: Uuid::new_v4(),
            positive_prompt: positive_prompt.into(),
            negative_prompt: None,
            model: model.into(),
            width,
            height,
            number_results: 1,
            output_type: OutputType::Url,
            output_format: OutputFormat::Jpg,
            steps: None,
            cfg_scale: None,
            seed: None,
            include_cost: true,
            check_nsfw: true,
            webhook_url: None,
        }
    }

    /// The task as sent; `delivery_method` is `sync` or `async`.
    pub fn to_task(&self, delivery_method: Option<&str>) -> Value {
        let mut v = serde_json::to_value(self).unwrap_or_else(|_| json!({}));
        v["taskType"] = json!("imageInference");
        if let Some(m) = delivery_method {
            v["deliveryMethod"] = json!(m);
        }
        v
    }

    /// Checks what Runware would refuse anyway, before paying a round trip.
    fn check(&self) -> Result<(), RunwareError> {
        let bad = |m: &str| Err(RunwareError::InvalidArgument(m.into()));
        let prompt_len = self.positive_prompt.trim().chars().count();
        if !(2..=3000).contains(&prompt_len) {
            return bad("positivePrompt must have 2 to 3000 characters");
        }
        if self.width == 0 || self.height == 0 {
            return bad("width and height must be positive");
        }
        if !(1..=20).contains(&self.number_results) {
            return bad("numberResults must be 1 to 20");
        }
        if self.model.trim().is_empty() {
            return bad("model is required");
        }
        Ok(())
    }
}

/// One generated image.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ImageResult {
    #[serde(rename = "taskUUID")]
    pub task_uuid: String,
    #[serde(rename = "imageUUID", default)]
    pub image_uuid: Option<String>,
    #[serde(rename = "imageURL", default)]
    pub image_url: Option<String>,
    #[serde(rename = "imageBase64Data", default)]
    pub image_base64_data: Option<String>,
    #[serde(rename = "imageDataURI", default)]
    pub image_data_uri: Option<String>,
    #[serde(default)]
    pub seed: Option<u64>,
    #[serde(rename = "NSFWContent", default)]
    pub nsfw_content: Option<bool>,
    /// `cost` (US dollars) in millionths, exact.
    #[serde(rename = "cost", default, deserialize_with = "dollars_to_micros")]
    pub cost_micros: Option<i64>,
    /// `processing`, `success` or `error` when polled; absent in sync answers.
    #[serde(default)]
    pub status: Option<String>,
}

impl ImageResult {
    pub fn is_processing(&self) -> bool {
        self.status.as_deref() == Some("processing")
    }
}

/// A JSON number of dollars → millionths, from its decimal text (no float arithmetic).
fn dollars_to_micros<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    Ok(match Option::<Value>::deserialize(d)? {
        Some(Value::Number(n)) => decimal_to_micros(&n.to_string()),
        Some(Value::String(s)) => decimal_to_micros(&s),
        _ => None,
    })
}

/// `"0.0038"` → 3800, `"1e-5"` → 10, `"2"` → 2_000_000; half-up rounding past six decimals.
fn decimal_to_micros(s: &str) -> Option<i64> {
    let s = s.trim();
    let (mantissa, exp) = match s.find(['e', 'E']) {
        Some(i) => (&s[..i], s[i + 1..].parse::<i32>().ok()?),
        None => (s, 0),
    };
    let (neg, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => (true, m),
        None => (false, mantissa),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if int.is_empty() && frac.is_empty() || !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit()) {
        return None;
    }
    let digits: String = format!("{int}{frac}");
    // value = digits × 10^(exp − len(frac)); we want value × 10^6.
    let shift = exp.checked_add(6)?.checked_sub(i32::try_from(frac.len()).ok()?)?;
    let digits = digits.trim_start_matches('0');
    let digits = if digits.is_empty() { "0" } else { digits };
    let micros: i128 = if shift >= 0 {
        if digits.len() + shift as usize > 30 {
            return None;
        }
        digits.parse::<i128>().ok()? * 10i128.pow(shift as u32)
    } else {
        // Drop `cut` digits, rounding half up on the first one dropped (a zero when the digits
        // are all below it).
        let cut = shift.unsigned_abs() as usize;
        if cut > digits.len() {
            0
        } else {
            let (keep, dropped) = digits.split_at(digits.len() - cut);
            let keep: i128 = if keep.is_empty() { 0 } else { keep.parse().ok()? };
            keep + i128::from(dropped.as_bytes()[0] >= b'5')
        }
    };
    let micros = i64::try_from(micros).ok()?;
    Some(if neg { -micros } else { micros })
}

/// One element of an `errors` array (or the older single-error shape).
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskError {
    #[serde(default)]
    pub code: String,
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub parameter: Option<String>,
    #[serde(default)]
    pub task_type: Option<String>,
    #[serde(rename = "taskUUID", default)]
    pub task_uuid: Option<String>,
    #[serde(default)]
    pub documentation: Option<String>,
}

/// A decoded answer: results and errors, in the order received.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TaskResponse {
    pub data: Vec<Value>,
    pub errors: Vec<TaskError>,
}

impl TaskResponse {
    /// Parses `{"data":[…],"errors":[…]}`, the older `{"error":true,"errorId":…,"errorMessage":…}`,
    /// and, as webhooks may deliver, a bare array of results or a single result object.
    pub fn parse(body: &[u8]) -> Result<TaskResponse, RunwareError> {
        let v: Value =
            serde_json::from_slice(body).map_err(|e| RunwareError::Decode(format!("not a Runware answer: {e}")))?;
        let mut out = TaskResponse::default();
        match v {
            Value::Object(mut m) => {
                let data = m.remove("data");
                let errors = m.remove("errors");
                if data.is_none() && errors.is_none() {
                    if m.get("error").and_then(Value::as_bool) == Some(true) {
                        let code = m.get("errorId").map(|c| format!("errorId {c}")).unwrap_or_default();
                        let message = m.get("errorMessage").and_then(Value::as_str).unwrap_or_default().to_string();
                        out.errors.push(TaskError { code, message, ..TaskError::default() });
                    } else if m.contains_key("taskUUID") {
                        out.data.push(Value::Object(m));
                    } else {
                        return Err(RunwareError::Decode("answer without data or errors".into()));
                    }
                    return Ok(out);
                }
                match data {
                    Some(Value::Array(items)) => out.data = items,
                    Some(Value::Null) | None => {}
                    Some(one @ Value::Object(_)) => out.data.push(one),
                    Some(_) => return Err(RunwareError::Decode("data is not an array".into())),
                }
                match errors {
                    Some(Value::Array(items)) => {
                        for item in items {
                            let mut e: TaskError = serde_json::from_value(item)
                                .map_err(|e| RunwareError::Decode(format!("malformed error: {e}")))?;
                            e.message = clip(&e.message);
                            out.errors.push(e);
                        }
                    }
                    Some(Value::Null) | None => {}
                    Some(_) => return Err(RunwareError::Decode("errors is not an array".into())),
                }
            }
            Value::Array(items) => out.data = items,
            _ => return Err(RunwareError::Decode("answer is not an object".into())),
        }
        Ok(out)
    }

    /// The image results of `task_uuid`.
    pub fn images_for(&self, task_uuid: &Uuid) -> Result<Vec<ImageResult>, RunwareError> {
        let id = task_uuid.to_string();
        self.data
            .iter()
            .filter(|d| d.get("taskUUID").and_then(Value::as_str).is_some_and(|t| t.eq_ignore_ascii_case(&id)))
            .filter(|d| d.get("taskType").and_then(Value::as_str).is_none_or(|t| t == "imageInference"))
            .map(|d| {
                serde_json::from_value(d.clone()).map_err(|e| RunwareError::Decode(format!("malformed image: {e}")))
            })
            .collect()
    }

    /// Errors of `task_uuid`, plus errors naming no task (they concern the whole request).
    pub fn errors_for(&self, task_uuid: &Uuid) -> Vec<TaskError> {
        let id = task_uuid.to_string();
        self.errors
            .iter()
            .filter(|e| e.task_uuid.as_deref().is_none_or(|t| t.eq_ignore_ascii_case(&id)))
            .cloned()
            .collect()
    }
}

// ---------------------------------------------------------------------------------------------
// Errors

#[derive(Debug, Clone, thiserror::Error)]
pub enum RunwareError {
    #[error("runware rate limit{}", retry_after.map(|d| format!(" (retry after {d:?})")).unwrap_or_default())]
    RateLimited { retry_after: Option<Duration> },
    #[error("runware refused the API key: {message}")]
    Auth { message: String },
    /// 402 / `insufficientCredits`: the account balance is used up.
    #[error("runware balance exhausted: {message}")]
    InsufficientCredits { message: String },
    /// Errors Runware reported for our task (bad parameters, moderation, …).
    #[error("runware refused the task ({status}): {}", summary(errors))]
    Task { status: u16, errors: Vec<TaskError> },
    /// The answer had neither results nor errors for our task.
    #[error("runware answered nothing for task {task_uuid}")]
    Missing { task_uuid: String },
    /// Refused before sending.
    #[error("invalid runware request: {0}")]
    InvalidArgument(String),
    #[error("runware did not answer in time")]
    Timeout,
    /// Any other answer, or `status` 0 when Runware could not be reached.
    #[error("runware error {status}: {message}")]
    Upstream { status: u16, message: String },
    #[error("unreadable runware answer: {0}")]
    Decode(String),
}

fn summary(errors: &[TaskError]) -> String {
    errors.iter().map(|e| format!("{}: {}", e.code, e.message)).collect::<Vec<_>>().join("; ")
}

impl RunwareError {
    /// Classifies an answer that carried errors (any status).
    fn from_errors(status: u16, errors: Vec<TaskError>, retry_after: Option<Duration>) -> Self {
        let has = |code: &str| errors.iter().any(|e| e.code.eq_ignore_ascii_case(code));
        let message = summary(&errors);
        if status == 401 || status == 403 || has("invalidApiKey") {
            RunwareError::Auth { message }
        } else if status == 402 || has("insufficientCredits") {
            RunwareError::InsufficientCredits { message }
        } else if status == 429 {
            RunwareError::RateLimited { retry_after }
        } else if status >= 500 {
            RunwareError::Upstream { status, message }
        } else if errors.is_empty() {
            RunwareError::Upstream { status, message: format!("answered {status} without errors") }
        } else {
            RunwareError::Task { status, errors }
        }
    }

    fn retryable(&self) -> bool {
        match self {
            RunwareError::RateLimited { .. } => true,
            RunwareError::Upstream { status, .. } => *status == 0 || *status >= 500,
            _ => false,
        }
    }
}

impl From<RunwareError> for nexus_kernel::Error {
    /// Rate limits, outages, an exhausted balance and timeouts are transient; task errors are
    /// about the request; a refused key and our own malformed requests are internal.
    fn from(e: RunwareError) -> Self {
        use nexus_kernel::{Error, ErrorKind};
        match &e {
            RunwareError::RateLimited { retry_after } => crate::llm::rate_limited(*retry_after).with_source(e),
            RunwareError::InsufficientCredits { .. } => {
                Error::new(ErrorKind::Unavailable, "provider.quota_exceeded").with_source(e)
            }
            RunwareError::Task { .. } => {
                Error::new(ErrorKind::Unprocessable, "provider.invalid_request").with_source(e)
            }
            RunwareError::Timeout => Error::new(ErrorKind::DeadlineExceeded, "provider.timeout").with_source(e),
            RunwareError::Upstream { status, .. } if *status == 0 || *status >= 500 => {
                Error::new(ErrorKind::Unavailable, "provider.unavailable").with_source(e)
            }
            RunwareError::Decode(_) | RunwareError::Missing { .. } => {
                Error::new(ErrorKind::Unavailable, "provider.unavailable").with_source(e)
            }
            RunwareError::Auth { .. } | RunwareError::InvalidArgument(_) | RunwareError::Upstream { .. } => {
                Error::internal(e)
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Client

/// Runware REST client. Cheap to clone.
#[derive(Clone, Debug)]
pub struct RunwareClient {
    inner: Arc<Endpoint<RunwareConfig>>,
}

impl RunwareClient {
    pub fn new(cfg: RunwareConfig, http: reqwest::Client) -> Self {
        Self::with_max_retry_after(cfg, http, MAX_RETRY_AFTER)
    }

    pub fn with_max_retry_after(cfg: RunwareConfig, http: reqwest::Client, max_retry_after: Duration) -> Self {
        let (base, retry) = (cfg.base_url.clone(), RetryPolicy::new(MAX_ATTEMPTS, max_retry_after));
        Self { inner: Arc::new(Endpoint::new(cfg, &base, http, retry, ("runware", "API key"))) }
    }

    pub fn config(&self) -> &RunwareConfig {
        &self.inner.cfg
    }

    /// Generates and waits for the images of one task (sync delivery).
    pub async fn image_inference(&self, task: &ImageInference) -> Result<Vec<ImageResult>, RunwareError> {
        task.check()?;
        if task.webhook_url.is_some() {
            return Err(RunwareError::InvalidArgument(
                "a task with a webhook URL is submitted with submit_image_inference".into(),
            ));
        }
        let resp = self.run_tasks(&[task.to_task(Some("sync"))]).await?;
        let images = task_outcome(&resp, &task.task_uuid)?;
        if images.is_empty() {
            return Err(RunwareError::Missing { task_uuid: task.task_uuid.to_string() });
        }
        Ok(images)
    }

    /// Submits a task without waiting: with a `webhook_url` Runware POSTs the results there;
    /// without one the task runs in `async` delivery and [`RunwareClient::get_response`] reads
    /// it. Errors Runware reports at submission come back here.
    pub async fn submit_image_inference(&self, task: &ImageInference) -> Result<(), RunwareError> {
        task.check()?;
        let delivery = if task.webhook_url.is_some() { None } else { Some("async") };
        let resp = self.run_tasks(&[task.to_task(delivery)]).await?;
        task_outcome(&resp, &task.task_uuid).map(|_| ())
    }

    /// `getResponse`: the results of an async task so far (items may be `processing`).
    pub async fn get_response(&self, task_uuid: &Uuid) -> Result<Vec<ImageResult>, RunwareError> {
        let task = json!({"taskType": "getResponse", "taskUUID": task_uuid.to_string()});
        let resp = self.run_tasks(&[task]).await?;
        task_outcome(&resp, task_uuid)
    }

    /// Sends tasks as they are and returns the decoded answer. An answer carrying only errors
    /// (or a non-2xx status) is an `Err`; a mixed answer is `Ok` with both arrays filled.
    pub async fn run_tasks(&self, tasks: &[Value]) -> Result<TaskResponse, RunwareError> {
        if tasks.is_empty() {
            return Err(RunwareError::InvalidArgument("no tasks".into()));
        }
        let body = Value::Array(tasks.to_vec());
        let attempt = |_| async {
            self.attempt(&body).await.map_err(|(err, pause)| {
                let retryable = err.retryable();
                Failed::new(err, retryable, pause)
            })
        };
        self.inner
            .retry
            .run(attempt, |failed, d| {
                let (attempt, error, retry) = (d.attempt, &failed.error, d.retry);
                tracing::warn!(attempt, %error, retry, "runware request failed");
            })
            .await
    }

    async fn attempt(&self, body: &Value) -> Result<TaskResponse, (RunwareError, Option<Duration>)> {
        let resp = self
            .inner
            .http
            .post(&self.inner.base)
            .bearer_auth(&self.inner.cfg.api_key)
            .header(ACCEPT, "application/json")
            .timeout(Duration::from_secs(self.inner.cfg.timeout_secs.max(1)))
            .json(body)
            .send()
            .await
            .map_err(|e| (transport_error(&e), None))?;
        let status = resp.status().as_u16();
        let wait = retry_after(resp.headers());
        let bytes = read_limited(resp, MAX_BODY_BYTES).await.map_err(|e| (transport_error(&e), None))?;
        let parsed = TaskResponse::parse(&bytes);
        if (200..300).contains(&status) {
            let parsed = parsed.map_err(|e| (e, None))?;
            if parsed.data.is_empty() && !parsed.errors.is_empty() {
                return Err((RunwareError::from_errors(status, parsed.errors, None), None));
            }
            return Ok(parsed);
        }
        let errors = parsed.map(|p| p.errors).unwrap_or_default();
        Err((RunwareError::from_errors(status, errors, wait), wait))
    }
}

/// Our task's results, or its errors as an `Err`.
fn task_outcome(resp: &TaskResponse, task_uuid: &Uuid) -> Result<Vec<ImageResult>, RunwareError> {
    let errors = resp.errors_for(task_uuid);
    if !errors.is_empty() {
        return Err(RunwareError::from_errors(200, errors, None));
    }
    resp.images_for(task_uuid)
}

fn transport_error(e: &reqwest::Error) -> RunwareError {
    if e.is_timeout() {
        RunwareError::Timeout
    } else {
        RunwareError::Upstream { status: 0, message: format!("could not reach Runware: {}", transport_reason(e)) }
    }
}

// ---------------------------------------------------------------------------------------------
// Webhooks

/// A random URL-safe token (256 bits) for [`webhook_url`].
pub fn new_webhook_token() -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>())
}

/// `base` with `token=<token>` set in its query (replacing any `token` already there).
pub fn webhook_url(base: &str, token: &str) -> Result<String, RunwareError> {
    if token.is_empty() {
        return Err(RunwareError::InvalidArgument("empty webhook token".into()));
    }
    let mut url = url::Url::parse(base).map_err(|e| RunwareError::InvalidArgument(format!("webhook URL: {e}")))?;
    if !matches!(url.scheme(), "https" | "http") {
        return Err(RunwareError::InvalidArgument("webhook URL must be http(s)".into()));
    }
    let others: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| k != WEBHOOK_TOKEN_PARAM)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    {
        let mut q = url.query_pairs_mut();
        q.clear();
        for (k, v) in &others {
            q.append_pair(k, v);
        }
        q.append_pair(WEBHOOK_TOKEN_PARAM, token);
    }
    Ok(url.into())
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookTokenError {
    #[error("webhook URL carries no token")]
    Missing,
    #[error("webhook URL carries several tokens")]
    Ambiguous,
    #[error("webhook token does not match")]
    Mismatch,
}

impl From<WebhookTokenError> for nexus_kernel::Error {
    fn from(e: WebhookTokenError) -> Self {
        nexus_kernel::Error::new(nexus_kernel::ErrorKind::Unauthenticated, "auth.unauthenticated").with_source(e)
    }
}

/// Checks the `token` of a webhook request's raw query string (without `?`) against `expected`
/// in constant time. An empty `expected` never matches.
pub fn verify_webhook_token(expected: &str, query: &str) -> Result<(), WebhookTokenError> {
    let tokens: Vec<String> = url::form_urlencoded::parse(query.as_bytes())
        .filter(|(k, _)| k == WEBHOOK_TOKEN_PARAM)
        .map(|(_, v)| v.into_owned())
        .collect();
    let presented = match tokens.as_slice() {
        [] => return Err(WebhookTokenError::Missing),
        [one] => one,
        _ => return Err(WebhookTokenError::Ambiguous),
    };
    if expected.is_empty() || !bool::from(presented.as_bytes().ct_eq(expected.as_bytes())) {
        return Err(WebhookTokenError::Mismatch);
    }
    Ok(())
}

/// The results in a webhook body (after [`verify_webhook_token`]). Runware posts one item per
/// delivery; error items come back as [`RunwareError::Task`].
pub fn parse_webhook(body: &[u8]) -> Result<Vec<ImageResult>, RunwareError> {
    let resp = TaskResponse::parse(body)?;
    if !resp.errors.is_empty() {
        return Err(RunwareError::from_errors(200, resp.errors, None));
    }
    resp.data
        .into_iter()
        .map(|d| serde_json::from_value(d).map_err(|e| RunwareError::Decode(format!("malformed image: {e}"))))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dollars_become_exact_micros() {
        for (s, want) in [
            ("0.0038", Some(3800)),
            ("2", Some(2_000_000)),
            ("1.5", Some(1_500_000)),
            ("1e-5", Some(10)),
            ("3.8e-3", Some(3800)),
            ("0.00000049", Some(0)),
            ("0.0000005", Some(1)),
            ("0.00000051", Some(1)),
            ("0.0000004", Some(0)),
            ("0.1234565", Some(123_457)),
            ("-0.01", Some(-10_000)),
            ("0", Some(0)),
            ("abc", None),
            ("", None),
            ("1e40", None),
        ] {
            assert_eq!(decimal_to_micros(s), want, "{s}");
        }
        let r: ImageResult =
            serde_json::from_value(json!({"taskUUID": "t", "imageURL": "https://x/i.jpg", "cost": 0.0038})).unwrap();
        assert_eq!(r.cost_micros, Some(3800));
    }

    #[test]
    fn task_json_shape() {
        let mut t = ImageInference::new("a red mug", "runware:101@1", 1024, 768);
        t.cfg_scale = Some(7.5);
        t.seed = Some(42);
        let v = t.to_task(Some("sync"));
        assert_eq!(
            v,
            json!({"taskType": "imageInference", "taskUUID": t.task_uuid.to_string(), "positivePrompt": "a red mug",
                "model": "runware:101@1", "width": 1024, "height": 768, "numberResults": 1, "outputType": "URL",
                "outputFormat": "JPG", "CFGScale": 7.5, "seed": 42, "includeCost": true, "checkNSFW": true,
                "deliveryMethod": "sync"})
        );
    }

    #[test]
    fn answers_of_every_shape() {
        let legacy = TaskResponse::parse(br#"{"error":true,"errorId":19,"errorMessage":"Invalid api key"}"#).unwrap();
        assert_eq!(legacy.errors[0].message, "Invalid api key");
        let single = TaskResponse::parse(br#"{"taskType":"imageInference","taskUUID":"t1","imageURL":"u"}"#).unwrap();
        assert_eq!(single.data.len(), 1);
        let bare = TaskResponse::parse(br#"[{"taskUUID":"t1"}]"#).unwrap();
        assert_eq!(bare.data.len(), 1);
        assert!(TaskResponse::parse(br#"{"hello":1}"#).is_err());
        assert!(TaskResponse::parse(b"<html>").is_err());
        assert!(TaskResponse::parse(br#"{"data":5}"#).is_err());
    }

    #[test]
    fn error_classification() {
        let e = |code: &str| TaskError { code: code.into(), message: "m".into(), ..TaskError::default() };
        assert!(matches!(RunwareError::from_errors(400, vec![e("invalidApiKey")], None), RunwareError::Auth { .. }));
        assert!(matches!(RunwareError::from_errors(401, vec![], None), RunwareError::Auth { .. }));
        assert!(matches!(RunwareError::from_errors(402, vec![], None), RunwareError::InsufficientCredits { .. }));
        assert!(matches!(
            RunwareError::from_errors(200, vec![e("insufficientCredits")], None),
            RunwareError::InsufficientCredits { .. }
        ));
        assert!(matches!(RunwareError::from_errors(429, vec![], None), RunwareError::RateLimited { .. }));
        assert!(matches!(RunwareError::from_errors(503, vec![], None), RunwareError::Upstream { status: 503, .. }));
        assert!(matches!(
            RunwareError::from_errors(400, vec![e("invalidWidth")], None),
            RunwareError::Task { status: 400, .. }
        ));
    }

    #[test]
    fn config_redacts_the_key() {
        let shown = format!("{:?}", RunwareConfig::new("rw-supersecret"));
        assert!(!shown.contains("supersecret"), "{shown}");
    }
}
