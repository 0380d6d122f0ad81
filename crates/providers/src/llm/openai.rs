//! [`OpenAiClient`]: `POST {base_url}/chat/completions`, plain and streamed.
//!
//! - Bearer authentication with [`LlmConfig::api_key`] (never logged).
//! - Streaming sends `stream: true` and `stream_options: {"include_usage": true}`, so the last
//!   chunk before `[DONE]` carries the token usage.
//! - Retries ([`LlmConfig::max_retries`]): 429 rate limits, 408/409, 5xx and connection failures,
//!   for streams only before the body starts. The wait is what the provider asked for —
//!   `retry-after-ms`, `Retry-After`, else the `x-ratelimit-reset-requests`/`-tokens` of the
//!   exhausted limit (durations like `1s`, `6m0s`, `20ms`) — plus up to 10 % jitter, or jittered
//!   exponential backoff when it asked nothing. A wait longer than [`MAX_RETRY_WAIT`] is not
//!   waited out: the caller gets [`LlmError::RateLimited`] with it. A 429 for
//!   `insufficient_quota` is never retried. Timeouts are not retried (the caller's time is
//!   already spent).
//! - Dropping the returned future or stream drops the connection, so the provider stops work.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{ACCEPT, CONTENT_TYPE};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::sse::chat_stream;
use super::{
    ChatChunk, ChatCompletion, ChatMessage, ChatModel, ChatRequest, ChatStream, LlmConfig, LlmError, ResponseFormat,
    Role, ToolCall, Usage,
};
pub use crate::http::parse_reset_duration;
use crate::http::{Failed, RetryPolicy, provider_wait, read_limited, transport_reason, warn_if_cleartext};

pub const DEFAULT_BASE_URL: &str = "https://api.openai.com/v1";
pub const CHAT_COMPLETIONS_PATH: &str = "/chat/completions";
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
pub const DEFAULT_MAX_RETRIES: u32 = 2;
/// The longest provider-requested wait the client sleeps through before a retry.
pub const MAX_RETRY_WAIT: Duration = Duration::from_secs(30);

const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;
const MAX_ERROR_BODY_BYTES: usize = 64 * 1024;
pub(crate) const MAX_MESSAGE_CHARS: usize = 500;

/// Which body field carries [`ChatRequest::max_tokens`]. OpenAI deprecated `max_tokens` (its
/// reasoning models refuse it); some older compatible servers only know `max_tokens`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MaxTokensField {
    #[default]
    MaxCompletionTokens,
    MaxTokens,
}

/// Chat Completions client for OpenAI or any compatible server. Cheap to clone.
#[derive(Clone)]
pub struct OpenAiClient {
    cfg: Arc<LlmConfig>,
    url: Arc<str>,
    http: reqwest::Client,
    max_tokens_field: MaxTokensField,
    max_retry_wait: Duration,
}

impl fmt::Debug for OpenAiClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenAiClient").field("cfg", &self.cfg).field("url", &self.url).finish_non_exhaustive()
    }
}

/// A failed attempt: the error, whether to try again, and how long the provider asked us to wait.
type Failure = Failed<LlmError>;

impl OpenAiClient {
    /// `http` may be shared; the client sets its own per-request timeouts.
    pub fn new(cfg: LlmConfig, http: reqwest::Client) -> Self {
        let base = cfg.base_url.trim_end_matches('/');
        warn_if_cleartext(base, "model provider", "API key");
        let url: Arc<str> = format!("{base}{CHAT_COMPLETIONS_PATH}").into();
        Self {
            cfg: Arc::new(cfg),
            url,
            http,
            max_tokens_field: MaxTokensField::default(),
            max_retry_wait: MAX_RETRY_WAIT,
        }
    }

    pub fn with_max_tokens_field(mut self, field: MaxTokensField) -> Self {
        self.max_tokens_field = field;
        self
    }

    /// Replaces [`MAX_RETRY_WAIT`].
    pub fn with_max_retry_wait(mut self, wait: Duration) -> Self {
        self.max_retry_wait = wait;
        self
    }

    pub fn config(&self) -> &LlmConfig {
        &self.cfg
    }

    /// The JSON body sent for `req`.
    pub fn request_body(&self, req: &ChatRequest, stream: bool) -> Value {
        let mut body = Map::new();
        body.insert("model".into(), json!(req.model.as_deref().unwrap_or(&self.cfg.model)));
        body.insert("messages".into(), Value::Array(req.messages.iter().map(message_json).collect()));
        if let Some(t) = req.temperature {
            // Through its shortest decimal form, so 0.7f32 goes out as 0.7 and not 0.699999988.
            let t: f64 = t.to_string().parse().unwrap_or(f64::from(t));
            body.insert("temperature".into(), json!(t));
        }
        if let Some(max) = req.max_tokens {
            let field = match self.max_tokens_field {
                MaxTokensField::MaxCompletionTokens => "max_completion_tokens",
                MaxTokensField::MaxTokens => "max_tokens",
            };
            body.insert(field.into(), json!(max));
        }
        if let ResponseFormat::JsonSchema { name, schema, strict } = &req.response_format {
            body.insert(
                "response_format".into(),
                json!({"type": "json_schema", "json_schema": {"name": name, "schema": schema, "strict": strict}}),
            );
        }
        if !req.tools.is_empty() {
            let tools: Vec<Value> = req
                .tools
                .iter()
                .map(|t| {
                    json!({"type": "function", "function": {
                        "name": t.name, "description": t.description, "parameters": t.parameters}})
                })
                .collect();
            body.insert("tools".into(), Value::Array(tools));
        }
        if let Some(user) = &req.user {
            body.insert("user".into(), json!(user));
        }
        if stream {
            body.insert("stream".into(), json!(true));
            body.insert("stream_options".into(), json!({"include_usage": true}));
        }
        Value::Object(body)
    }

    /// A 2xx response, after the retries.
    async fn send(&self, body: &Value, stream: bool) -> Result<reqwest::Response, LlmError> {
        let policy = RetryPolicy {
            attempts: self.cfg.max_retries.saturating_add(1),
            max_wait: self.max_retry_wait,
            jitter_requested_wait: true,
        };
        policy
            .run(
                |_| self.attempt(body, stream),
                |failure, d| {
                    let (attempt, error, wait, retry) = (d.attempt, &failure.error, failure.wait, d.retry);
                    tracing::warn!(attempt, stream, %error, ?wait, retry, "model request failed");
                },
            )
            .await
    }

    async fn attempt(&self, body: &Value, stream: bool) -> Result<reqwest::Response, Failure> {
        let mut req = self
            .http
            .post(&*self.url)
            .header(ACCEPT, if stream { "text/event-stream" } else { "application/json" })
            .json(body);
        if !self.cfg.api_key.is_empty() {
            req = req.bearer_auth(&self.cfg.api_key);
        }
        let sent = if stream {
            // Only the wait for the headers is bounded here; the body is bounded by the idle
            // timeout between reads, so long generations are not cut.
            match tokio::time::timeout(self.cfg.timeout, req.send()).await {
                Ok(r) => r,
                Err(_) => return Err(Failure { error: LlmError::Timeout, retryable: false, wait: None }),
            }
        } else {
            req.timeout(self.cfg.timeout).send().await
        };
        let resp = sent.map_err(|e| {
            if e.is_timeout() {
                Failure { error: LlmError::Timeout, retryable: false, wait: None }
            } else {
                let message = format!("could not reach the model provider: {}", transport_reason(&e));
                Failure { error: LlmError::Upstream { status: 0, message }, retryable: true, wait: None }
            }
        })?;
        let status = resp.status().as_u16();
        if (200..300).contains(&status) {
            return Ok(resp);
        }
        let headers = resp.headers().clone();
        let request_id = headers.get("x-request-id").and_then(|v| v.to_str().ok()).map(String::from);
        let body = read_limited(resp, MAX_ERROR_BODY_BYTES).await.unwrap_or_default();
        let error = error_from_body(status, &body);
        let retryable = matches!(error, LlmError::RateLimited { .. })
            || matches!(error, LlmError::Upstream { status, .. } if status == 408 || status == 409 || status >= 500);
        if matches!(error, LlmError::Auth) {
            tracing::error!(status, request_id = request_id.as_deref(), "model provider refused the API key");
        }
        let wait = if status == 429 || status == 503 { provider_wait(&headers) } else { None };
        let error = match error {
            LlmError::RateLimited { .. } => LlmError::RateLimited { retry_after: wait },
            other => other,
        };
        tracing::debug!(status, request_id = request_id.as_deref(), "model provider error answer");
        Err(Failure { error, retryable, wait })
    }
}

#[async_trait::async_trait]
impl ChatModel for OpenAiClient {
    fn name(&self) -> &str {
        &self.cfg.model
    }

    async fn complete(&self, req: &ChatRequest) -> Result<ChatCompletion, LlmError> {
        let body = self.request_body(req, false);
        let resp = self.send(&body, false).await?;
        let bytes = read_limited(resp, MAX_BODY_BYTES).await.map_err(|e| {
            if e.is_timeout() {
                LlmError::Timeout
            } else {
                LlmError::Upstream { status: 0, message: format!("reading the answer: {}", transport_reason(&e)) }
            }
        })?;
        parse_completion(&bytes)
    }

    async fn stream(&self, req: &ChatRequest) -> Result<ChatStream, LlmError> {
        let body = self.request_body(req, true);
        let resp = self.send(&body, true).await?;
        let is_json = resp
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.trim_start().starts_with("application/json"));
        if is_json {
            // A server that ignores `stream` answers one JSON completion: replay it as chunks.
            let bytes = tokio::time::timeout(self.cfg.timeout, read_limited(resp, MAX_BODY_BYTES))
                .await
                .map_err(|_| LlmError::Timeout)?
                .map_err(|e| LlmError::Upstream { status: 0, message: transport_reason(&e).into() })?;
            return Ok(completion_as_stream(parse_completion(&bytes)?));
        }
        Ok(chat_stream(resp, self.cfg.timeout))
    }
}

fn message_json(m: &ChatMessage) -> Value {
    let mut v = Map::new();
    v.insert("role".into(), json!(m.role.as_str()));
    // An assistant turn that only called tools has `content: null`.
    if m.role == Role::Assistant && !m.tool_calls.is_empty() && m.content.is_empty() {
        v.insert("content".into(), Value::Null);
    } else {
        v.insert("content".into(), json!(m.content));
    }
    if let Some(name) = &m.name {
        v.insert("name".into(), json!(name));
    }
    if let Some(id) = &m.tool_call_id {
        v.insert("tool_call_id".into(), json!(id));
    }
    if !m.tool_calls.is_empty() {
        let calls: Vec<Value> = m
            .tool_calls
            .iter()
            .map(|c| json!({"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}))
            .collect();
        v.insert("tool_calls".into(), Value::Array(calls));
    }
    Value::Object(v)
}

fn parse_completion(bytes: &[u8]) -> Result<ChatCompletion, LlmError> {
    #[derive(Deserialize)]
    struct Raw {
        #[serde(default)]
        id: Option<String>,
        #[serde(default)]
        model: Option<String>,
        #[serde(default)]
        choices: Vec<RawChoice>,
        #[serde(default)]
        usage: Option<Usage>,
    }
    #[derive(Deserialize)]
    struct RawChoice {
        #[serde(default)]
        index: u32,
        message: RawMessage,
        #[serde(default)]
        finish_reason: Option<String>,
    }
    #[derive(Deserialize)]
    struct RawMessage {
        #[serde(default)]
        content: Option<String>,
        #[serde(default)]
        refusal: Option<String>,
        #[serde(default)]
        tool_calls: Option<Vec<RawToolCall>>,
    }
    #[derive(Deserialize)]
    struct RawToolCall {
        #[serde(default)]
        id: String,
        function: RawFunction,
    }
    #[derive(Deserialize)]
    struct RawFunction {
        #[serde(default)]
        name: String,
        #[serde(default)]
        arguments: String,
    }
    let raw: Raw =
        serde_json::from_slice(bytes).map_err(|e| LlmError::Decode(format!("not a chat completion: {e}")))?;
    let choice = raw
        .choices
        .into_iter()
        .find(|c| c.index == 0)
        .ok_or_else(|| LlmError::Decode("chat completion without choices".into()))?;
    let content = match (choice.message.content, choice.message.refusal) {
        (Some(c), _) if !c.is_empty() => c,
        (_, Some(r)) => r,
        (c, None) => c.unwrap_or_default(),
    };
    Ok(ChatCompletion {
        id: raw.id.unwrap_or_default(),
        model: raw.model.unwrap_or_default(),
        content,
        tool_calls: choice
            .message
            .tool_calls
            .unwrap_or_default()
            .into_iter()
            .map(|c| ToolCall { id: c.id, name: c.function.name, arguments: c.function.arguments })
            .collect(),
        finish_reason: choice.finish_reason,
        usage: raw.usage,
    })
}

fn completion_as_stream(c: ChatCompletion) -> ChatStream {
    let mut chunks = Vec::new();
    if !c.content.is_empty() {
        chunks.push(Ok(ChatChunk::Content(c.content)));
    }
    for (i, call) in c.tool_calls.into_iter().enumerate() {
        chunks.push(Ok(ChatChunk::ToolCallDelta {
            index: u32::try_from(i).unwrap_or(u32::MAX),
            id: Some(call.id),
            name: Some(call.name),
            arguments: call.arguments,
        }));
    }
    if let Some(reason) = c.finish_reason {
        chunks.push(Ok(ChatChunk::Finish(reason)));
    }
    if let Some(usage) = c.usage {
        chunks.push(Ok(ChatChunk::Usage(usage)));
    }
    Box::pin(futures::stream::iter(chunks))
}

/// Classifies an error answer (`{"error":{"message","type","param","code"}}`, or the looser
/// shapes of compatible servers). `status` 200 means an error object inside a stream.
pub(crate) fn error_from_body(status: u16, body: &[u8]) -> LlmError {
    let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let err = v.get("error");
    let field = |k: &str| err.and_then(|e| e.get(k)).and_then(Value::as_str).unwrap_or_default().to_string();
    let (kind, code) = (field("type"), field("code"));
    let message = err
        .and_then(|e| e.get("message").and_then(Value::as_str).or_else(|| e.as_str()))
        .or_else(|| v.get("message").and_then(Value::as_str))
        .or_else(|| v.get("detail").and_then(Value::as_str))
        .map(clip)
        .unwrap_or_else(|| format!("answered {status} without an error message"));
    let quota = kind == "insufficient_quota" || code == "insufficient_quota";
    match status {
        401 | 403 => LlmError::Auth,
        429 if quota => LlmError::InsufficientQuota { message },
        429 => LlmError::RateLimited { retry_after: None },
        400 | 413 | 422 => LlmError::InvalidRequest { message },
        200 if quota => LlmError::InsufficientQuota { message },
        200 if code == "rate_limit_exceeded" => LlmError::RateLimited { retry_after: None },
        200 if kind == "invalid_request_error" => LlmError::InvalidRequest { message },
        // An error reported inside a 200 stream: the provider failed upstream of us.
        200 => LlmError::Upstream { status: 502, message },
        _ => LlmError::Upstream { status, message },
    }
}

/// At most [`MAX_MESSAGE_CHARS`] characters of a provider's error message.
pub(crate) fn clip(s: &str) -> String {
    if s.chars().count() > MAX_MESSAGE_CHARS {
        s.chars().take(MAX_MESSAGE_CHARS).collect::<String>() + "…"
    } else {
        s.to_string()
    }
}

/// The wait the provider asked for: `retry-after-ms`, else `Retry-After` (seconds), else the
/// reset time of the exhausted limit (`x-ratelimit-remaining-*: 0`), else the later of the two
/// reset times.
#[cfg(test)]
use reqwest::header::HeaderMap;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reset_durations() {
        let ms = |s: &str| parse_reset_duration(s).map(|d| d.as_millis());
        assert_eq!(ms("1s"), Some(1000));
        assert_eq!(ms("6m0s"), Some(360_000));
        assert_eq!(ms("20ms"), Some(20));
        assert_eq!(ms("1.5s"), Some(1500));
        assert_eq!(ms("1h2m3.5s"), Some(3_723_500));
        assert_eq!(ms("250us"), Some(0));
        assert_eq!(ms("2"), Some(2000));
        assert_eq!(ms(" 17ms "), Some(17));
        for bad in ["", "s", "1x", "ms1", "-1s", "1s2", "1..2s", "NaN", "inf"] {
            assert_eq!(parse_reset_duration(bad), None, "{bad}");
        }
    }

    #[test]
    fn wait_prefers_explicit_headers_then_the_exhausted_limit() {
        let h = |pairs: &[(&'static str, &'static str)]| {
            let mut m = HeaderMap::new();
            for (k, v) in pairs {
                m.insert(*k, v.parse().unwrap());
            }
            provider_wait(&m)
        };
        assert_eq!(h(&[]), None);
        assert_eq!(h(&[("retry-after-ms", "150"), ("retry-after", "9")]), Some(Duration::from_millis(150)));
        assert_eq!(h(&[("retry-after", "2"), ("x-ratelimit-reset-requests", "9s")]), Some(Duration::from_secs(2)));
        let both = [("x-ratelimit-reset-requests", "20ms"), ("x-ratelimit-reset-tokens", "6m0s")];
        assert_eq!(h(&both), Some(Duration::from_secs(360)), "unknown which: the later");
        let req_exhausted =
            [both[0], both[1], ("x-ratelimit-remaining-requests", "0"), ("x-ratelimit-remaining-tokens", "9000")];
        assert_eq!(h(&req_exhausted), Some(Duration::from_millis(20)));
        let tok_exhausted =
            [both[0], both[1], ("x-ratelimit-remaining-requests", "5"), ("x-ratelimit-remaining-tokens", "0")];
        assert_eq!(h(&tok_exhausted), Some(Duration::from_secs(360)));
    }

    #[test]
    fn error_classification() {
        let body = |kind: &str, code: &str| {
            format!(r#"{{"error":{{"message":"m","type":"{kind}","param":null,"code":"{code}"}}}}"#).into_bytes()
        };
        assert!(matches!(
            error_from_body(429, &body("insufficient_quota", "insufficient_quota")),
            LlmError::InsufficientQuota { .. }
        ));
        assert!(matches!(error_from_body(429, &body("requests", "rate_limit_exceeded")), LlmError::RateLimited { .. }));
        assert!(matches!(error_from_body(401, &body("invalid_request_error", "invalid_api_key")), LlmError::Auth));
        assert!(matches!(error_from_body(400, &body("invalid_request_error", "")), LlmError::InvalidRequest { .. }));
        assert!(matches!(error_from_body(503, b"<html>"), LlmError::Upstream { status: 503, .. }));
        match error_from_body(404, br#"{"error":"model llama9 not found"}"#) {
            LlmError::Upstream { status: 404, message } => assert_eq!(message, "model llama9 not found"),
            other => panic!("{other:?}"),
        }
        match error_from_body(500, br#"{"detail":"boom"}"#) {
            LlmError::Upstream { message, .. } => assert_eq!(message, "boom"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn completion_parsing_with_tool_calls_and_refusal() {
        let c = parse_completion(
            br#"{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"gpt-x","choices":[{"index":0,
            "message":{"role":"assistant","content":null,"refusal":null,"tool_calls":[{"id":"call_1","type":"function",
            "function":{"name":"f","arguments":"{\"a\":1}"}}]},"logprobs":null,"finish_reason":"tool_calls"}],
            "usage":{"prompt_tokens":10,"completion_tokens":5,"total_tokens":15,"prompt_tokens_details":{"cached_tokens":0}}}"#,
        )
        .unwrap();
        assert_eq!(c.content, "");
        assert_eq!(
            c.tool_calls,
            vec![ToolCall { id: "call_1".into(), name: "f".into(), arguments: "{\"a\":1}".into() }]
        );
        assert_eq!(c.usage, Some(Usage { prompt_tokens: 10, completion_tokens: 5, total_tokens: 15 }));
        let r = parse_completion(
            br#"{"id":"x","model":"m","choices":[{"index":0,"message":{"content":null,"refusal":"I can't help with that."},"finish_reason":"stop"}]}"#,
        )
        .unwrap();
        assert_eq!(r.content, "I can't help with that.");
        assert!(matches!(parse_completion(br#"{"choices":[]}"#), Err(LlmError::Decode(_))));
        assert!(matches!(parse_completion(b"<html>"), Err(LlmError::Decode(_))));
    }

    #[test]
    fn temperature_goes_out_in_its_short_form() {
        nexus_testkit::init_tracing();
        let client = OpenAiClient::new(LlmConfig::new("http://127.0.0.1:1/v1", "k", "m"), reqwest::Client::new());
        let req = ChatRequest { temperature: Some(0.7), ..ChatRequest::default() };
        assert_eq!(client.request_body(&req, false)["temperature"], json!(0.7));
    }
}
