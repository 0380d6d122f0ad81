//! Chat completions against any OpenAI-compatible server (`reference/providers.md` §1).
//!
//! The content service talks to [`ChatModel`] (object-safe: `Arc<dyn ChatModel>`);
//! [`OpenAiClient`] is the HTTP implementation. Streams yield [`ChatChunk`]s; a
//! [`StreamAccumulator`] folds them back into a [`ChatCompletion`] and estimates what was produced
//! when a stream is cut before the provider reported usage, so partial work can still be charged.
//!
//! Errors are [`LlmError`]; `From<LlmError> for nexus_kernel::Error` gives the platform codes
//! (`provider.rate_limited`, `provider.quota_exceeded`, …).

mod openai;
mod sse;

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use futures::{Stream, StreamExt};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Shared with the other AI provider clients (Replicate, Runware).
pub(crate) use openai::clip;
pub use openai::{
    CHAT_COMPLETIONS_PATH, DEFAULT_BASE_URL, DEFAULT_MAX_RETRIES, DEFAULT_TIMEOUT, MAX_RETRY_WAIT, MaxTokensField,
    OpenAiClient, parse_reset_duration,
};

/// A stream of chunks. Dropping it closes the HTTP connection (the provider stops generating).
pub type ChatStream = Pin<Box<dyn Stream<Item = Result<ChatChunk, LlmError>> + Send>>;

/// Where and how to reach an OpenAI-compatible server.
#[derive(Clone)]
pub struct LlmConfig {
    /// Up to and including the version segment, e.g. `https://api.openai.com/v1`;
    /// `/chat/completions` is appended.
    pub base_url: String,
    /// Sent as a bearer token; never logged (redacted in `Debug`). Empty sends no
    /// `Authorization` header (local servers that need none).
    pub api_key: String,
    /// Used when a request names no model.
    pub model: String,
    /// Non-streaming: the whole exchange of one attempt. Streaming: until the response headers,
    /// then the longest silence between two pieces of the body.
    pub timeout: Duration,
    /// Retries after the first attempt (rate limits, 5xx, connection failures).
    pub max_retries: u32,
}

impl LlmConfig {
    /// [`DEFAULT_TIMEOUT`] and [`DEFAULT_MAX_RETRIES`].
    pub fn new(base_url: impl Into<String>, api_key: impl Into<String>, model: impl Into<String>) -> Self {
        Self {
            base_url: base_url.into(),
            api_key: api_key.into(),
            model: model.into(),
            timeout: DEFAULT_TIMEOUT,
            max_retries: DEFAULT_MAX_RETRIES,
        }
    }
}

impl fmt::Debug for LlmConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LlmConfig")
            .field("base_url", &self.base_url)
            .field("api_key", &if self.api_key.is_empty() { "<none>" } else { "<redacted>" })
            .field("model", &self.model)
            .field("timeout", &self.timeout)
            .field("max_retries", &self.max_retries)
            .finish()
    }
}

// ---------------------------------------------------------------------------------------------
// Requests

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    System,
    #[default]
    User,
    Assistant,
    Tool,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
            Role::Tool => "tool",
        }
    }
}

/// One message of the conversation.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ChatMessage {
    pub role: Role,
    pub content: String,
    /// Tool replies: the id of the call answered.
    pub tool_call_id: Option<String>,
    /// Optional participant name.
    pub name: Option<String>,
    /// Assistant turns that called tools (sent back when continuing a tool conversation; the
    /// provider refuses a tool reply whose call it cannot find in the history).
    pub tool_calls: Vec<ToolCall>,
}

impl ChatMessage {
    pub fn new(role: Role, content: impl Into<String>) -> Self {
        Self { role, content: content.into(), ..Self::default() }
    }

    pub fn system(content: impl Into<String>) -> Self {
        Self::new(Role::System, content)
    }

    pub fn user(content: impl Into<String>) -> Self {
        Self::new(Role::User, content)
    }

    pub fn assistant(content: impl Into<String>) -> Self {
        Self::new(Role::Assistant, content)
    }

    /// An assistant turn that called tools (content usually empty).
    pub fn assistant_tool_calls(content: impl Into<String>, tool_calls: Vec<ToolCall>) -> Self {
        Self { tool_calls, ..Self::new(Role::Assistant, content) }
    }

    /// The result of tool call `tool_call_id`.
    pub fn tool(tool_call_id: impl Into<String>, content: impl Into<String>) -> Self {
        Self { tool_call_id: Some(tool_call_id.into()), ..Self::new(Role::Tool, content) }
    }
}

/// Plain text, or JSON constrained by a schema (structured outputs).
#[derive(Debug, Clone, PartialEq, Default)]
pub enum ResponseFormat {
    #[default]
    Text,
    /// Sent as `{"type":"json_schema","json_schema":{name, schema, strict}}`. With `strict`, the
    /// schema must list every property in `required` and set `additionalProperties: false`.
    JsonSchema { name: String, schema: Value, strict: bool },
}

/// A function the model may call; `parameters` is a JSON Schema object.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolDef {
    pub name: String,
    pub description: String,
    pub parameters: Value,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct ChatRequest {
    /// Overrides [`LlmConfig::model`].
    pub model: Option<String>,
    pub messages: Vec<ChatMessage>,
    pub temperature: Option<f32>,
    /// Upper bound of generated tokens (wire field chosen by [`MaxTokensField`]).
    pub max_tokens: Option<u32>,
    pub response_format: ResponseFormat,
    pub tools: Vec<ToolDef>,
    /// An opaque end-user id for the provider's abuse monitoring (never an email).
    pub user: Option<String>,
}

impl ChatRequest {
    pub fn new(messages: Vec<ChatMessage>) -> Self {
        Self { messages, ..Self::default() }
    }

    /// A rough count of the prompt's tokens (see [`estimate_tokens`]) plus 4 per message for the
    /// chat framing — for budgeting before a call, not for billing a completed one.
    pub fn estimated_prompt_tokens(&self) -> u32 {
        self.messages.iter().fold(0u32, |acc, m| {
            let calls: u32 =
                m.tool_calls.iter().map(|c| estimate_tokens(&c.name) + estimate_tokens(&c.arguments)).sum();
            acc.saturating_add(estimate_tokens(&m.content)).saturating_add(calls).saturating_add(4)
        })
    }
}

/// `ceil(chars / 4)`: the usual rule of thumb for English text with OpenAI tokenizers.
pub fn estimate_tokens(text: &str) -> u32 {
    let chars = u32::try_from(text.chars().count()).unwrap_or(u32::MAX);
    chars.div_ceil(4)
}

// ---------------------------------------------------------------------------------------------
// Responses

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Usage {
    #[serde(default)]
    pub prompt_tokens: u32,
    #[serde(default)]
    pub completion_tokens: u32,
    #[serde(default)]
    pub total_tokens: u32,
}

/// A function call requested by the model. `arguments` is the model's JSON text, unvalidated.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    pub arguments: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ChatCompletion {
    pub id: String,
    pub model: String,
    /// The text (empty when the model only called tools). A refusal's text is delivered here too.
    pub content: String,
    pub tool_calls: Vec<ToolCall>,
    /// `stop`, `length`, `tool_calls`, `content_filter`, …
    pub finish_reason: Option<String>,
    pub usage: Option<Usage>,
}

/// One piece of a streamed completion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChatChunk {
    /// A fragment of the text.
    Content(String),
    /// A fragment of tool call `index`: the first one carries `id` and `name`, later ones only
    /// more `arguments` text.
    ToolCallDelta { index: u32, id: Option<String>, name: Option<String>, arguments: String },
    /// Why generation stopped.
    Finish(String),
    /// Token usage, sent once at the end (we always ask for it).
    Usage(Usage),
}

/// Folds [`ChatChunk`]s into a completion.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamAccumulator {
    id: String,
    model: String,
    content: String,
    tool_calls: BTreeMap<u32, ToolCall>,
    finish_reason: Option<String>,
    usage: Option<Usage>,
    deltas: u32,
}

impl StreamAccumulator {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn push(&mut self, chunk: &ChatChunk) {
        match chunk {
            ChatChunk::Content(text) => {
                self.content.push_str(text);
                self.deltas = self.deltas.saturating_add(1);
            }
            ChatChunk::ToolCallDelta { index, id, name, arguments } => {
                let call = self.tool_calls.entry(*index).or_default();
                // The provider sends id and name once, in the call's first fragment; a later
                // non-empty one replaces rather than appends, so a server that repeats them
                // does not garble the name.
                if let Some(id) = id.as_deref().filter(|s| !s.is_empty()) {
                    call.id = id.to_string();
                }
                if let Some(name) = name.as_deref().filter(|s| !s.is_empty()) {
                    call.name = name.to_string();
                }
                call.arguments.push_str(arguments);
                self.deltas = self.deltas.saturating_add(1);
            }
            ChatChunk::Finish(reason) => self.finish_reason = Some(reason.clone()),
            ChatChunk::Usage(usage) => self.usage = Some(*usage),
        }
    }

    pub fn content(&self) -> &str {
        &self.content
    }

    /// Tool calls reassembled, in index order.
    pub fn tool_calls(&self) -> Vec<ToolCall> {
        self.tool_calls.values().cloned().collect()
    }

    pub fn usage(&self) -> Option<Usage> {
        self.usage
    }

    pub fn finish_reason(&self) -> Option<&str> {
        self.finish_reason.as_deref()
    }

    /// The completion id, when the stream came from [`OpenAiClient`] (empty otherwise).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The model that answered, when the stream came from [`OpenAiClient`] (empty otherwise).
    pub fn model(&self) -> &str {
        &self.model
    }

    /// Whether anything was produced: text, tool call fragments or usage.
    pub fn is_empty(&self) -> bool {
        self.deltas == 0 && self.usage.is_none()
    }

    /// `usage.completion_tokens` when the provider reported usage; otherwise an estimate of what
    /// was generated: the larger of `ceil(chars / 4)` over the text and tool call names and
    /// arguments, and the number of content and tool-call deltas received (providers send about
    /// one token per delta, so the count is a floor for short or non-Latin text).
    pub fn estimated_completion_tokens(&self) -> u32 {
        if let Some(u) = self.usage {
            return u.completion_tokens;
        }
        let chars = self.content.chars().count()
            + self.tool_calls.values().map(|c| c.name.chars().count() + c.arguments.chars().count()).sum::<usize>();
        let by_chars = u32::try_from(chars).unwrap_or(u32::MAX).div_ceil(4);
        by_chars.max(self.deltas)
    }

    pub fn into_completion(self) -> ChatCompletion {
        ChatCompletion {
            id: self.id,
            model: self.model,
            content: self.content,
            tool_calls: self.tool_calls.into_values().collect(),
            finish_reason: self.finish_reason,
            usage: self.usage,
        }
    }

    pub(crate) fn set_meta(&mut self, id: Option<&str>, model: Option<&str>) {
        if self.id.is_empty()
            && let Some(id) = id
        {
            self.id = id.to_string();
        }
        if self.model.is_empty()
            && let Some(model) = model
        {
            self.model = model.to_string();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Errors

#[derive(Debug, Clone, thiserror::Error)]
pub enum LlmError {
    /// 429 rate limit (after the retries, or with a wait longer than [`MAX_RETRY_WAIT`]).
    #[error("model provider rate limit{}", retry_after.map(|d| format!(" (retry after {d:?})")).unwrap_or_default())]
    RateLimited { retry_after: Option<Duration> },
    /// The provider account's quota or credit is used up (429 `insufficient_quota`); retrying
    /// does not help.
    #[error("model provider quota exhausted: {message}")]
    InsufficientQuota { message: String },
    /// 400/422: the provider refused the request (bad parameters, context too long, …).
    #[error("model provider refused the request: {message}")]
    InvalidRequest { message: String },
    /// 401/403: the API key was refused.
    #[error("model provider refused the API key")]
    Auth,
    /// No answer in time (see [`LlmConfig::timeout`]).
    #[error("model provider did not answer in time")]
    Timeout,
    /// Stopped by the caller (see [`with_cancellation`]).
    #[error("generation cancelled")]
    Cancelled,
    /// The stream ended (connection closed or failed, server silent, garbled data) before
    /// `[DONE]`; `partial` holds everything yielded so far, so it can be charged.
    #[error("model stream ended early after {} characters", partial.content().chars().count())]
    StreamCut { partial: StreamAccumulator },
    /// Any other failure answered by the provider, or `status` 0 when it could not be reached.
    #[error("model provider error {status}: {message}")]
    Upstream { status: u16, message: String },
    /// A 2xx answer we could not read.
    #[error("unreadable model provider answer: {0}")]
    Decode(String),
}

impl LlmError {
    /// Whether the same request may succeed later.
    pub fn is_retryable(&self) -> bool {
        match self {
            LlmError::RateLimited { .. } | LlmError::Timeout | LlmError::StreamCut { .. } => true,
            LlmError::Upstream { status, .. } => *status == 0 || *status == 408 || *status == 409 || *status >= 500,
            _ => false,
        }
    }
}

impl From<LlmError> for nexus_kernel::Error {
    /// Provider trouble is never the caller's fault, except a request the provider refused
    /// (422). Rate limits carry `retry_after` (whole seconds) for the gateway's `Retry-After`.
    /// A refused key or an unexpected 4xx is our misconfiguration: internal, cause kept.
    fn from(e: LlmError) -> Self {
        use nexus_kernel::{Error, ErrorKind};
        match &e {
            LlmError::RateLimited { retry_after } => rate_limited(*retry_after).with_source(e),
            LlmError::InsufficientQuota { .. } => {
                Error::new(ErrorKind::Unavailable, "provider.quota_exceeded").with_source(e)
            }
            LlmError::InvalidRequest { .. } => {
                Error::new(ErrorKind::Unprocessable, "provider.invalid_request").with_source(e)
            }
            LlmError::Timeout => Error::new(ErrorKind::DeadlineExceeded, "provider.timeout").with_source(e),
            LlmError::Cancelled => Error::new(ErrorKind::Unavailable, "provider.cancelled").with_source(e),
            LlmError::StreamCut { .. } => {
                Error::new(ErrorKind::Unavailable, "provider.stream_interrupted").with_source(e)
            }
            LlmError::Upstream { status, .. } if *status == 0 || *status == 408 || *status == 409 || *status >= 500 => {
                Error::new(ErrorKind::Unavailable, "provider.unavailable").with_source(e)
            }
            LlmError::Decode(_) => Error::new(ErrorKind::Unavailable, "provider.unavailable").with_source(e),
            LlmError::Auth | LlmError::Upstream { .. } => Error::internal(e),
        }
    }
}

/// `provider.rate_limited`, with `retry_after` in whole seconds (at least 1) when known, which
/// the gateway turns into `Retry-After`. Shared by the AI provider clients.
pub(crate) fn rate_limited(retry_after: Option<Duration>) -> nexus_kernel::Error {
    let err = nexus_kernel::Error::new(nexus_kernel::ErrorKind::RateLimited, "provider.rate_limited");
    match retry_after {
        Some(d) => err.with_param("retry_after", d.as_secs_f64().ceil().max(1.0).to_string()),
        None => err,
    }
}

// ---------------------------------------------------------------------------------------------
// The capability

/// A chat model. Object-safe, so services hold an `Arc<dyn ChatModel>` and tests or local
/// set-ups can plug in another implementation.
#[async_trait::async_trait]
pub trait ChatModel: Send + Sync {
    /// The default model name (recorded with generations).
    fn name(&self) -> &str;

    async fn complete(&self, req: &ChatRequest) -> Result<ChatCompletion, LlmError>;

    /// Errors before the first chunk (refused key, quota, …) come back here; errors after it
    /// come as the stream's last item.
    async fn stream(&self, req: &ChatRequest) -> Result<ChatStream, LlmError>;
}

/// Ends `stream` when `cancelled` completes: the inner stream is dropped at once (which closes
/// the HTTP connection) and a last `Err(LlmError::Cancelled)` is yielded. Typical use:
/// `with_cancellation(stream, token.cancelled_owned())`.
pub fn with_cancellation<F>(stream: ChatStream, cancelled: F) -> ChatStream
where
    F: Future<Output = ()> + Send + 'static,
{
    let state: Option<(ChatStream, Pin<Box<F>>)> = Some((stream, Box::pin(cancelled)));
    Box::pin(futures::stream::unfold(state, |state| async move {
        let (mut inner, mut cancelled) = state?;
        tokio::select! {
            biased;
            () = cancelled.as_mut() => Some((Err(LlmError::Cancelled), None)),
            item = inner.next() => item.map(|item| (item, Some((inner, cancelled)))),
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accumulator_reassembles_tool_calls_by_index() {
        let mut acc = StreamAccumulator::new();
        let chunks = [
            ChatChunk::Content("Hel".into()),
            ChatChunk::ToolCallDelta {
                index: 1,
                id: Some("call_b".into()),
                name: Some("g".into()),
                arguments: "".into(),
            },
            ChatChunk::ToolCallDelta {
                index: 0,
                id: Some("call_a".into()),
                name: Some("f".into()),
                arguments: "{\"a".into(),
            },
            ChatChunk::ToolCallDelta { index: 1, id: None, name: None, arguments: "{}".into() },
            ChatChunk::ToolCallDelta { index: 0, id: None, name: None, arguments: "\":1}".into() },
            ChatChunk::Content("lo".into()),
            ChatChunk::Finish("tool_calls".into()),
        ];
        for c in &chunks {
            acc.push(c);
        }
        assert_eq!(acc.content(), "Hello");
        let calls = acc.tool_calls();
        assert_eq!(calls[0], ToolCall { id: "call_a".into(), name: "f".into(), arguments: "{\"a\":1}".into() });
        assert_eq!(calls[1], ToolCall { id: "call_b".into(), name: "g".into(), arguments: "{}".into() });
        assert_eq!(acc.finish_reason(), Some("tool_calls"));
        // No usage: the larger of ceil(chars/4) (5 + 8 + 3 = 16 chars → 4) and 6 deltas.
        assert_eq!(acc.estimated_completion_tokens(), 6);
        acc.push(&ChatChunk::Usage(Usage { prompt_tokens: 3, completion_tokens: 11, total_tokens: 14 }));
        assert_eq!(acc.estimated_completion_tokens(), 11);
        let done = acc.into_completion();
        assert_eq!(done.content, "Hello");
        assert_eq!(done.usage.unwrap().total_tokens, 14);
    }

    #[test]
    fn estimates_by_characters_for_long_deltas() {
        let mut acc = StreamAccumulator::new();
        acc.push(&ChatChunk::Content("x".repeat(41)));
        assert_eq!(acc.estimated_completion_tokens(), 11);
        assert_eq!(estimate_tokens(""), 0);
        assert_eq!(estimate_tokens("abcd"), 1);
        assert_eq!(estimate_tokens("שלום עולם"), 3, "characters, not bytes");
        let req = ChatRequest::new(vec![ChatMessage::system("abcd"), ChatMessage::user("abcdefgh")]);
        assert_eq!(req.estimated_prompt_tokens(), 1 + 2 + 8);
    }

    #[test]
    fn kernel_mapping() {
        use nexus_kernel::{Error, ErrorKind};
        let k = |e: LlmError| -> Error { e.into() };
        let e = k(LlmError::RateLimited { retry_after: Some(Duration::from_millis(1500)) });
        assert_eq!(
            (e.kind(), e.code(), e.param("retry_after")),
            (ErrorKind::RateLimited, "provider.rate_limited", Some("2"))
        );
        assert_eq!(k(LlmError::RateLimited { retry_after: None }).param("retry_after"), None);
        let e = k(LlmError::InsufficientQuota { message: "You exceeded your current quota".into() });
        assert_eq!((e.kind(), e.code()), (ErrorKind::Unavailable, "provider.quota_exceeded"));
        assert!(std::error::Error::source(&e).unwrap().to_string().contains("current quota"));
        assert_eq!(k(LlmError::InvalidRequest { message: "x".into() }).code(), "provider.invalid_request");
        assert_eq!(k(LlmError::Timeout).kind(), ErrorKind::DeadlineExceeded);
        assert_eq!(k(LlmError::Cancelled).code(), "provider.cancelled");
        assert_eq!(k(LlmError::StreamCut { partial: StreamAccumulator::new() }).code(), "provider.stream_interrupted");
        assert_eq!(k(LlmError::Upstream { status: 503, message: "x".into() }).code(), "provider.unavailable");
        assert_eq!(k(LlmError::Upstream { status: 0, message: "x".into() }).code(), "provider.unavailable");
        assert_eq!(k(LlmError::Decode("x".into())).code(), "provider.unavailable");
        assert_eq!(k(LlmError::Auth).kind(), ErrorKind::Internal);
        assert_eq!(
            k(LlmError::Upstream { status: 404, message: "model_not_found".into() }).kind(),
            ErrorKind::Internal
        );
    }

    #[test]
    fn config_debug_redacts_the_key() {
        let cfg = LlmConfig::new("https://api.openai.com/v1", "sk-live-supersecret", "gpt-4o-mini");
        let shown = format!("{cfg:?}");
        assert!(!shown.contains("supersecret") && shown.contains("<redacted>"), "{shown}");
    }

    #[tokio::test]
    async fn cancellation_ends_the_stream_and_drops_the_inner_one() {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicBool, Ordering};
        struct Guard(Arc<AtomicBool>);
        impl Drop for Guard {
            fn drop(&mut self) {
                self.0.store(true, Ordering::SeqCst);
            }
        }
        let dropped = Arc::new(AtomicBool::new(false));
        let guard = Guard(dropped.clone());
        let inner: ChatStream = Box::pin(
            futures::stream::iter([Ok(ChatChunk::Content("a".into()))]).chain(futures::stream::pending()).map(
                move |c| {
                    let _keep = &guard;
                    c
                },
            ),
        );
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let mut s = with_cancellation(inner, async move {
            let _ = rx.await;
        });
        assert_eq!(s.next().await.unwrap().unwrap(), ChatChunk::Content("a".into()));
        tx.send(()).unwrap();
        assert!(matches!(s.next().await, Some(Err(LlmError::Cancelled))));
        assert!(dropped.load(Ordering::SeqCst), "inner stream dropped on cancel");
        assert!(s.next().await.is_none());
    }
}
