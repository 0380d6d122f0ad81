//! A fake OpenAI Chat Completions server on port 0 (`reference/providers.md` §1).
//!
//! It behaves like the contract where a client depends on it: bearer key check (401
//! `invalid_api_key`), request validation with OpenAI's error shape (unknown arguments,
//! `stream_options` without `stream`, `max_tokens` together with `max_completion_tokens`,
//! malformed `response_format`/`tools`/messages), plain JSON answers, and SSE streams shaped like
//! the real ones: a role chunk, content fragments, tool calls whose `arguments` arrive in
//! fragments per `index`, a final chunk with `finish_reason`, the usage-only chunk (`choices: []`)
//! when `stream_options.include_usage` was asked, then `data: [DONE]`. Every answer carries
//! `x-request-id`.
//!
//! Test knobs: [`FakeOpenAi::push`] scripts the next answers ([`Reply`]): a [`Script`] (text,
//! tool calls, fragment sizes, comment and `event:` noise, `data:` without a space, delays, a cut
//! that aborts the connection or ends the body without `[DONE]`), rate limits with reset headers,
//! `insufficient_quota`, any error, or a raw body. Every request is recorded
//! ([`FakeOpenAi::requests`]); [`FakeOpenAi::disconnects`] counts answers the client walked away
//! from (stream dropped, request future dropped).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State as AxState;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::Response;
use serde_json::{Value, json};

use crate::FakeServer;
use crate::fake::lock;

/// The key the fake accepts.
pub const TEST_API_KEY: &str = "sk-test-nexus-fake-openai";
/// Model name used when a script does not override the request's.
pub const TEST_MODEL: &str = "gpt-fake-mini";

/// How a scripted stream stops early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CutMode {
    /// The connection is aborted mid-body (the client sees a transport error).
    Abort,
    /// The body ends cleanly, but without `data: [DONE]`.
    Eof,
}

/// One scripted answer to a chat request: JSON when the request did not stream, SSE when it did.
#[derive(Debug, Clone)]
pub struct Script {
    pub content: String,
    /// `(id, name, arguments)`.
    pub tool_calls: Vec<(String, String, String)>,
    /// Default: `tool_calls` when there are tool calls, else `stop`.
    pub finish_reason: Option<String>,
    /// Reported `completion_tokens`; default `ceil(chars / 4)` over content and arguments.
    pub completion_tokens: Option<u32>,
    /// Characters per content fragment (streams).
    pub content_piece: usize,
    /// Characters per `arguments` fragment (streams).
    pub arguments_piece: usize,
    /// Interleave comment, `event:`, `id:` and `retry:` lines between events.
    pub noise: bool,
    /// Write `data:{…}` with no space after the colon.
    pub data_without_space: bool,
    /// Stop after this many `data:` events.
    pub cut: Option<(usize, CutMode)>,
    /// Sleep before answering (headers included).
    pub delay: Duration,
    /// Sleep before each streamed event.
    pub chunk_delay: Duration,
    /// Sleep this long before event number `.0` (0-based) only: a server gone quiet mid-stream.
    pub stall: Option<(usize, Duration)>,
}

impl Script {
    pub fn text(content: impl Into<String>) -> Self {
        Self {
            content: content.into(),
            tool_calls: Vec::new(),
            finish_reason: None,
            completion_tokens: None,
            content_piece: 4,
            arguments_piece: 5,
            noise: false,
            data_without_space: false,
            cut: None,
            delay: Duration::ZERO,
            chunk_delay: Duration::ZERO,
            stall: None,
        }
    }

    pub fn tool_call(mut self, id: &str, name: &str, arguments: &str) -> Self {
        self.tool_calls.push((id.into(), name.into(), arguments.into()));
        self
    }

    pub fn finish_reason(mut self, reason: &str) -> Self {
        self.finish_reason = Some(reason.into());
        self
    }

    pub fn completion_tokens(mut self, n: u32) -> Self {
        self.completion_tokens = Some(n);
        self
    }

    pub fn pieces(mut self, content: usize, arguments: usize) -> Self {
        self.content_piece = content.max(1);
        self.arguments_piece = arguments.max(1);
        self
    }

    pub fn noisy(mut self) -> Self {
        self.noise = true;
        self
    }

    pub fn without_space(mut self) -> Self {
        self.data_without_space = true;
        self
    }

    pub fn cut_after(mut self, events: usize, mode: CutMode) -> Self {
        self.cut = Some((events, mode));
        self
    }

    pub fn delay(mut self, d: Duration) -> Self {
        self.delay = d;
        self
    }

    pub fn chunk_delay(mut self, d: Duration) -> Self {
        self.chunk_delay = d;
        self
    }

    pub fn stall(mut self, before_event: usize, d: Duration) -> Self {
        self.stall = Some((before_event, d));
        self
    }

    fn finish(&self) -> String {
        self.finish_reason
            .clone()
            .unwrap_or_else(|| if self.tool_calls.is_empty() { "stop" } else { "tool_calls" }.into())
    }

    fn completion_tokens_or_estimate(&self) -> u32 {
        self.completion_tokens.unwrap_or_else(|| {
            let chars = self.content.chars().count()
                + self.tool_calls.iter().map(|(_, n, a)| n.chars().count() + a.chars().count()).sum::<usize>();
            u32::try_from(chars.div_ceil(4)).unwrap_or(u32::MAX)
        })
    }
}

/// What the fake answers to the next valid, authorized request.
#[derive(Debug, Clone)]
pub enum Reply {
    Answer(Script),
    /// Any status with an error body and extra headers.
    Error {
        status: u16,
        body: Value,
        headers: Vec<(String, String)>,
    },
    /// A 200 `text/event-stream` body written exactly as given (then the body ends).
    RawSse(String),
    /// A 200 `application/json` body, whatever the request asked (a server that ignores
    /// `stream`).
    RawJson(Value),
}

impl Reply {
    /// OpenAI's error body shape: all four keys present.
    pub fn error_body(message: &str, kind: &str, code: Option<&str>) -> Value {
        json!({"error": {"message": message, "type": kind, "param": null, "code": code}})
    }

    /// 429 `rate_limit_exceeded` on requests per minute: `x-ratelimit-remaining-requests: 0` and
    /// `x-ratelimit-reset-requests: <reset_requests>` (plus token headers showing room left,
    /// with a long `x-ratelimit-reset-tokens` a client must not pick).
    pub fn rate_limited(reset_requests: &str) -> Reply {
        Reply::Error {
            status: 429,
            body: Reply::error_body(
                &format!(
                    "Rate limit reached for {TEST_MODEL} in organization org-fake on requests per min (RPM): Limit 3, Used 3, Requested 1. Please try again in {reset_requests}."
                ),
                "requests",
                Some("rate_limit_exceeded"),
            ),
            headers: vec![
                ("x-ratelimit-limit-requests".into(), "3".into()),
                ("x-ratelimit-remaining-requests".into(), "0".into()),
                ("x-ratelimit-reset-requests".into(), reset_requests.into()),
                ("x-ratelimit-limit-tokens".into(), "200000".into()),
                ("x-ratelimit-remaining-tokens".into(), "199000".into()),
                ("x-ratelimit-reset-tokens".into(), "6m0s".into()),
            ],
        }
    }

    /// 429 `insufficient_quota`.
    pub fn insufficient_quota() -> Reply {
        Reply::Error {
            status: 429,
            body: Reply::error_body(
                "You exceeded your current quota, please check your plan and billing details.",
                "insufficient_quota",
                Some("insufficient_quota"),
            ),
            headers: Vec::new(),
        }
    }

    pub fn server_error(status: u16) -> Reply {
        Reply::Error {
            status,
            body: Reply::error_body("The server had an error while processing your request.", "server_error", None),
            headers: Vec::new(),
        }
    }
}

/// One request as the fake saw it.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    pub method: String,
    pub path: String,
    /// The raw `Authorization` header.
    pub authorization: Option<String>,
    pub accept: Option<String>,
    /// The JSON body (`Null` if it did not parse).
    pub body: Value,
    pub status: u16,
}

impl RecordedRequest {
    pub fn streamed(&self) -> bool {
        self.body["stream"] == json!(true)
    }
}

#[derive(Default)]
struct State {
    replies: VecDeque<Reply>,
    log: Vec<RecordedRequest>,
    seq: u64,
}

/// The fake server. Dropping it stops the server.
pub struct FakeOpenAi {
    /// `http://127.0.0.1:port/v1`, for `LlmConfig::base_url`.
    pub base_url: String,
    state: Arc<Mutex<State>>,
    disconnects: Arc<AtomicUsize>,
    _server: FakeServer,
}

#[derive(Clone)]
struct Shared {
    state: Arc<Mutex<State>>,
    disconnects: Arc<AtomicUsize>,
}

impl FakeOpenAi {
    pub async fn start() -> FakeOpenAi {
        let state = Arc::new(Mutex::new(State::default()));
        let disconnects = Arc::new(AtomicUsize::new(0));
        let shared = Shared { state: state.clone(), disconnects: disconnects.clone() };
        let router = Router::new().fallback(handle).with_state(shared);
        let server = FakeServer::start(router).await;
        FakeOpenAi { base_url: format!("{}/v1", server.base_url), state, disconnects, _server: server }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// Queues the answer to the next valid, authorized request. With nothing queued the fake
    /// answers `Script::text("Hello from the fake model.")`.
    pub fn push(&self, reply: Reply) {
        self.state().replies.push_back(reply);
    }

    pub fn push_n(&self, n: usize, reply: Reply) {
        for _ in 0..n {
            self.push(reply.clone());
        }
    }

    /// Every request so far, oldest first (refused ones included).
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.state().log.clone()
    }

    pub fn request_count(&self) -> usize {
        self.state().log.len()
    }

    /// Answers the client abandoned: a stream whose reader went away, or a delayed answer whose
    /// request was dropped before it was sent.
    pub fn disconnects(&self) -> usize {
        self.disconnects.load(Ordering::SeqCst)
    }
}

fn unix_now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// Counts a disconnect when dropped before `done()`.
struct AbandonGuard {
    counter: Arc<AtomicUsize>,
    done: bool,
}

impl AbandonGuard {
    fn done(mut self) {
        self.done = true;
    }
}

impl Drop for AbandonGuard {
    fn drop(&mut self) {
        if !self.done {
            self.counter.fetch_add(1, Ordering::SeqCst);
        }
    }
}

fn json_response(status: u16, body: &Value, request_id: &str, extra: &[(String, String)]) -> Response {
    let mut b = Response::builder()
        .status(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header(header::CONTENT_TYPE, "application/json")
        .header("x-request-id", request_id)
        .header("openai-processing-ms", "7");
    for (k, v) in extra {
        b = b.header(k.as_str(), v.as_str());
    }
    b.body(Body::from(body.to_string())).expect("valid response")
}

async fn handle(
    AxState(shared): AxState<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let hdr = |name: header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok()).map(String::from);
    let parsed: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let mut rec = RecordedRequest {
        method: method.to_string(),
        path: uri.path().to_string(),
        authorization: hdr(header::AUTHORIZATION),
        accept: hdr(header::ACCEPT),
        body: parsed.clone(),
        status: 200,
    };
    let (request_id, reply) = {
        let mut st = lock(&shared.state);
        st.seq += 1;
        let request_id = format!("req_fake{:012x}", st.seq);
        let refusal = refuse(&rec, &body);
        let reply = match refusal {
            Some((status, body)) => Reply::Error { status, body, headers: Vec::new() },
            None => st.replies.pop_front().unwrap_or_else(|| Reply::Answer(Script::text("Hello from the fake model."))),
        };
        rec.status = match &reply {
            Reply::Error { status, .. } => *status,
            _ => 200,
        };
        st.log.push(rec.clone());
        (request_id, reply)
    };

    match reply {
        Reply::Error { status, body, headers } => json_response(status, &body, &request_id, &headers),
        Reply::RawSse(text) => Response::builder()
            .header(header::CONTENT_TYPE, "text/event-stream")
            .header("x-request-id", &request_id)
            .body(Body::from(text))
            .expect("valid response"),
        Reply::RawJson(body) => json_response(200, &body, &request_id, &[]),
        Reply::Answer(script) => {
            if !script.delay.is_zero() {
                let guard = AbandonGuard { counter: shared.disconnects.clone(), done: false };
                tokio::time::sleep(script.delay).await;
                guard.done();
            }
            let model = parsed["model"].as_str().unwrap_or(TEST_MODEL).to_string();
            let prompt_tokens = prompt_tokens(&parsed["messages"]);
            if rec.streamed() {
                let include_usage = parsed["stream_options"]["include_usage"] == json!(true);
                stream_response(script, model, prompt_tokens, include_usage, request_id, shared.disconnects.clone())
            } else {
                let completion = completion_json(&script, &model, prompt_tokens);
                json_response(200, &completion, &request_id, &[])
            }
        }
    }
}

/// Why the real API would refuse this request, if it would: `(status, body)`.
fn refuse(rec: &RecordedRequest, raw: &[u8]) -> Option<(u16, Value)> {
    let invalid = |m: &str, param: Option<&str>| {
        Some((400, json!({"error": {"message": m, "type": "invalid_request_error", "param": param, "code": null}})))
    };
    if rec.path != "/v1/chat/completions" {
        return Some((
            404,
            json!({"error": {"message": format!("Invalid URL ({} {})", rec.method, rec.path),
                "type": "invalid_request_error", "param": null, "code": null}}),
        ));
    }
    if rec.method != "POST" {
        return Some((405, Reply::error_body("Method not allowed.", "invalid_request_error", None)));
    }
    if rec.authorization.as_deref() != Some(&format!("Bearer {TEST_API_KEY}")) {
        return Some((
            401,
            Reply::error_body(
                "Incorrect API key provided: sk-***. You can find your API key at https://platform.openai.com/account/api-keys.",
                "invalid_request_error",
                Some("invalid_api_key"),
            ),
        ));
    }
    let body = match serde_json::from_slice::<Value>(raw) {
        Ok(Value::Object(m)) => m,
        _ => {
            return invalid(
                "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly.)",
                None,
            );
        }
    };
    const KNOWN: &[&str] = &[
        "model",
        "messages",
        "temperature",
        "top_p",
        "n",
        "stop",
        "max_tokens",
        "max_completion_tokens",
        "presence_penalty",
        "frequency_penalty",
        "logit_bias",
        "logprobs",
        "top_logprobs",
        "user",
        "response_format",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "stream",
        "stream_options",
        "seed",
        "store",
        "metadata",
        "reasoning_effort",
        "service_tier",
        "safety_identifier",
        "prompt_cache_key",
    ];
    if let Some(k) = body.keys().find(|k| !KNOWN.contains(&k.as_str())) {
        return invalid(&format!("Unrecognized request argument supplied: {k}"), None);
    }
    if !body.get("model").is_some_and(Value::is_string) {
        return invalid("you must provide a model parameter", Some("model"));
    }
    let Some(messages) = body.get("messages").and_then(Value::as_array).filter(|m| !m.is_empty()) else {
        return invalid("Missing required parameter: 'messages'.", Some("messages"));
    };
    for (i, m) in messages.iter().enumerate() {
        let role = m["role"].as_str().unwrap_or_default();
        if !["system", "developer", "user", "assistant", "tool"].contains(&role) {
            return invalid(
                &format!(
                    "Invalid value: '{role}'. Supported values are: 'system', 'assistant', 'user', 'tool', 'function', and 'developer'."
                ),
                Some(&format!("messages[{i}].role")),
            );
        }
        let content_ok = m["content"].is_string()
            || m["content"].is_array()
            || (role == "assistant" && m["content"].is_null() && m["tool_calls"].is_array());
        if !content_ok {
            return invalid(
                &format!("Invalid type for 'messages[{i}].content'."),
                Some(&format!("messages[{i}].content")),
            );
        }
        if role == "tool" && !m["tool_call_id"].is_string() {
            return invalid(
                "Missing parameter 'tool_call_id': messages with role 'tool' must have a 'tool_call_id'.",
                Some(&format!("messages[{i}].tool_call_id")),
            );
        }
    }
    if body.contains_key("max_tokens") && body.contains_key("max_completion_tokens") {
        return invalid(
            "max_tokens and max_completion_tokens cannot both be set. Use max_completion_tokens.",
            Some("max_tokens"),
        );
    }
    if body.contains_key("stream_options") && body.get("stream") != Some(&json!(true)) {
        return invalid(
            "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
            Some("stream_options"),
        );
    }
    if let Some(t) = body.get("temperature")
        && !t.as_f64().is_some_and(|t| (0.0..=2.0).contains(&t))
    {
        return invalid("Invalid 'temperature': must be a number between 0 and 2.", Some("temperature"));
    }
    if let Some(rf) = body.get("response_format") {
        match rf["type"].as_str() {
            Some("text" | "json_object") => {}
            Some("json_schema") => {
                let js = &rf["json_schema"];
                let name_ok = js["name"].as_str().is_some_and(|n| {
                    !n.is_empty()
                        && n.len() <= 64
                        && n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
                });
                if !js.is_object() {
                    return invalid(
                        "Missing required parameter: 'response_format.json_schema'.",
                        Some("response_format.json_schema"),
                    );
                }
                if !name_ok {
                    return invalid(
                        "Invalid 'response_format.json_schema.name': string does not match pattern '^[a-zA-Z0-9_-]+$'.",
                        Some("response_format.json_schema.name"),
                    );
                }
                if !js["schema"].is_object() {
                    return invalid(
                        "Invalid type for 'response_format.json_schema.schema': expected an object.",
                        Some("response_format.json_schema.schema"),
                    );
                }
            }
            _ => return invalid("Invalid value for 'response_format.type'.", Some("response_format.type")),
        }
    }
    if let Some(tools) = body.get("tools") {
        let Some(tools) = tools.as_array() else {
            return invalid("Invalid type for 'tools': expected an array.", Some("tools"));
        };
        for (i, t) in tools.iter().enumerate() {
            if t["type"] != "function" || !t["function"]["name"].is_string() {
                return invalid(&format!("Missing required parameter: 'tools[{i}].function.name'."), Some("tools"));
            }
        }
    }
    None
}

fn prompt_tokens(messages: &Value) -> u32 {
    let chars: usize = messages
        .as_array()
        .map(|ms| ms.iter().map(|m| m["content"].as_str().map_or(0, |c| c.chars().count())).sum())
        .unwrap_or(0);
    let count = messages.as_array().map_or(0, Vec::len);
    u32::try_from(chars.div_ceil(4) + 4 * count).unwrap_or(u32::MAX)
}

fn usage_json(prompt: u32, completion: u32) -> Value {
    json!({
        "prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
            "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}
    })
}

fn completion_id() -> String {
    format!("chatcmpl-fake{:016x}", rand::random::<u64>())
}

fn completion_json(script: &Script, model: &str, prompt: u32) -> Value {
    let tool_calls: Vec<Value> = script
        .tool_calls
        .iter()
        .map(|(id, name, args)| json!({"id": id, "type": "function", "function": {"name": name, "arguments": args}}))
        .collect();
    let mut message = json!({"role": "assistant", "content": script.content, "refusal": null, "annotations": []});
    if !tool_calls.is_empty() {
        message["tool_calls"] = Value::Array(tool_calls);
        if script.content.is_empty() {
            message["content"] = Value::Null;
        }
    }
    json!({
        "id": completion_id(), "object": "chat.completion", "created": unix_now(), "model": model,
        "choices": [{"index": 0, "message": message, "logprobs": null, "finish_reason": script.finish()}],
        "usage": usage_json(prompt, script.completion_tokens_or_estimate()),
        "service_tier": "default", "system_fingerprint": "fp_fake"
    })
}

fn pieces(s: &str, n: usize) -> Vec<String> {
    let chars: Vec<char> = s.chars().collect();
    chars.chunks(n.max(1)).map(|c| c.iter().collect()).collect()
}

/// The chunk objects of a streamed answer, in order (without `[DONE]`).
fn stream_chunks(script: &Script, model: &str, prompt: u32, include_usage: bool) -> Vec<Value> {
    let id = completion_id();
    let created = unix_now();
    let chunk = |choices: Value| {
        let mut c = json!({"id": id, "object": "chat.completion.chunk", "created": created, "model": model,
            "service_tier": "default", "system_fingerprint": "fp_fake", "choices": choices, "obfuscation": "x1"});
        if include_usage {
            c["usage"] = Value::Null;
        }
        c
    };
    let choice = |delta: Value, finish: Option<&str>| json!([{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]);
    let mut out = vec![chunk(choice(json!({"role": "assistant", "content": "", "refusal": null}), None))];
    for p in pieces(&script.content, script.content_piece) {
        out.push(chunk(choice(json!({"content": p}), None)));
    }
    for (i, (call_id, name, args)) in script.tool_calls.iter().enumerate() {
        out.push(chunk(choice(
            json!({"tool_calls": [{"index": i, "id": call_id, "type": "function",
                "function": {"name": name, "arguments": ""}}]}),
            None,
        )));
        for p in pieces(args, script.arguments_piece) {
            out.push(chunk(choice(json!({"tool_calls": [{"index": i, "function": {"arguments": p}}]}), None)));
        }
    }
    out.push(chunk(choice(json!({}), Some(&script.finish()))));
    if include_usage {
        let mut last = chunk(json!([]));
        last["usage"] = usage_json(prompt, script.completion_tokens_or_estimate());
        out.push(last);
    }
    out
}

fn stream_response(
    script: Script,
    model: String,
    prompt: u32,
    include_usage: bool,
    request_id: String,
    disconnects: Arc<AtomicUsize>,
) -> Response {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(1);
    let events = stream_chunks(&script, &model, prompt, include_usage);
    tokio::spawn(async move {
        let sep = if script.data_without_space { "data:" } else { "data: " };
        let send = |text: String| {
            let tx = tx.clone();
            async move { tx.send(Ok(Bytes::from(text))).await.is_ok() }
        };
        for (n, event) in events.iter().enumerate() {
            if let Some((after, mode)) = script.cut
                && n >= after
            {
                if mode == CutMode::Abort {
                    let _ = tx.send(Err(std::io::Error::other("connection cut by the fake"))).await;
                }
                return;
            }
            if !script.chunk_delay.is_zero() {
                tokio::time::sleep(script.chunk_delay).await;
            }
            if let Some((at, pause)) = script.stall
                && at == n
            {
                tokio::time::sleep(pause).await;
            }
            let mut text = String::new();
            if script.noise {
                text.push_str(&format!(": keep-alive {n}\n\nevent: completion.chunk\nid: {n}\nretry: 1000\n"));
            }
            text.push_str(&format!("{sep}{event}\n\n"));
            if !send(text).await {
                disconnects.fetch_add(1, Ordering::SeqCst);
                return;
            }
        }
        if let Some((after, mode)) = script.cut
            && after >= events.len()
        {
            if mode == CutMode::Abort {
                let _ = tx.send(Err(std::io::Error::other("connection cut by the fake"))).await;
            }
            return;
        }
        let tail = if script.noise { ": done soon\n\n" } else { "" };
        if !send(format!("{tail}{sep}[DONE]\n\n")).await {
            disconnects.fetch_add(1, Ordering::SeqCst);
        }
    });
    let body =
        Body::from_stream(futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|item| (item, rx)) }));
    Response::builder()
        .header(header::CONTENT_TYPE, "text/event-stream; charset=utf-8")
        .header(header::CACHE_CONTROL, "no-cache")
        .header("x-request-id", request_id)
        .body(body)
        .expect("valid response")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_chunks_have_the_real_shape() {
        let s = Script::text("Hello").tool_call("call_1", "f", "{\"a\":1}").pieces(2, 3);
        let chunks = stream_chunks(&s, "m", 10, true);
        assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
        assert_eq!(chunks[1]["choices"][0]["delta"]["content"], "He");
        assert_eq!(chunks[4]["choices"][0]["delta"]["tool_calls"][0]["function"]["name"], "f");
        assert_eq!(chunks[5]["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"], "{\"a");
        assert!(chunks[5]["choices"][0]["delta"]["tool_calls"][0].get("id").is_none());
        let finish = &chunks[chunks.len() - 2];
        assert_eq!(finish["choices"][0]["finish_reason"], "tool_calls");
        assert_eq!(finish["usage"], Value::Null);
        let last = chunks.last().unwrap();
        assert_eq!(last["choices"], json!([]));
        assert_eq!(last["usage"]["completion_tokens"], 4, "ceil((5 + 1 + 7) / 4)");
        assert!(stream_chunks(&s, "m", 10, false).iter().all(|c| c.get("usage").is_none()));
    }
}
