//! OpenAI-compatible chat client against the fake OpenAI server (real HTTP on 127.0.0.1, port 0):
//! request shapes, streaming reassembly, cut streams, retries and rate-limit headers, timeouts
//! and cancellation.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use nexus_kernel::ErrorKind;
use nexus_providers::llm::{
    ChatChunk, ChatMessage, ChatModel, ChatRequest, ChatStream, LlmConfig, LlmError, MaxTokensField, OpenAiClient,
    ResponseFormat, StreamAccumulator, ToolCall, ToolDef, Usage, with_cancellation,
};
use nexus_testkit::openai::{CutMode, FakeOpenAi, Reply, Script, TEST_API_KEY, TEST_MODEL};
use serde_json::json;

fn config(fake: &FakeOpenAi) -> LlmConfig {
    LlmConfig {
        base_url: fake.base_url.clone(),
        api_key: TEST_API_KEY.into(),
        model: TEST_MODEL.into(),
        timeout: Duration::from_secs(5),
        max_retries: 2,
    }
}

async fn setup() -> (FakeOpenAi, OpenAiClient) {
    nexus_testkit::init_tracing();
    let fake = FakeOpenAi::start().await;
    let client = OpenAiClient::new(config(&fake), reqwest::Client::new());
    (fake, client)
}

fn hello() -> ChatRequest {
    ChatRequest::new(vec![ChatMessage::system("You write product copy."), ChatMessage::user("Describe a red mug.")])
}

/// Every item of the stream, the error (if any) last.
async fn drain(mut s: ChatStream) -> (Vec<ChatChunk>, Option<LlmError>) {
    let mut chunks = Vec::new();
    while let Some(item) = s.next().await {
        match item {
            Ok(c) => chunks.push(c),
            Err(e) => {
                assert!(s.next().await.is_none(), "nothing after an error");
                return (chunks, Some(e));
            }
        }
    }
    (chunks, None)
}

fn accumulate(chunks: &[ChatChunk]) -> StreamAccumulator {
    let mut acc = StreamAccumulator::new();
    for c in chunks {
        acc.push(c);
    }
    acc
}

#[tokio::test]
async fn completion_round_trip_and_request_shape() {
    let (fake, client) = setup().await;
    fake.push(Reply::Answer(Script::text("A bright red mug.").completion_tokens(5)));
    let req = ChatRequest { temperature: Some(0.2), max_tokens: Some(300), user: Some("usr_1".into()), ..hello() };
    let out = client.complete(&req).await.unwrap();
    assert_eq!(out.content, "A bright red mug.");
    assert!(out.id.starts_with("chatcmpl-"), "{}", out.id);
    assert_eq!(out.model, TEST_MODEL);
    assert_eq!(out.finish_reason.as_deref(), Some("stop"));
    assert!(out.tool_calls.is_empty());
    let usage = out.usage.unwrap();
    assert_eq!(usage.completion_tokens, 5);
    assert_eq!(usage.total_tokens, usage.prompt_tokens + 5);

    let reqs = fake.requests();
    assert_eq!(reqs.len(), 1);
    let r = &reqs[0];
    assert_eq!((r.method.as_str(), r.path.as_str(), r.status), ("POST", "/v1/chat/completions", 200));
    assert_eq!(r.authorization.as_deref(), Some(format!("Bearer {TEST_API_KEY}").as_str()));
    assert_eq!(
        r.body,
        json!({
            "model": TEST_MODEL,
            "messages": [
                {"role": "system", "content": "You write product copy."},
                {"role": "user", "content": "Describe a red mug."}
            ],
            "temperature": 0.2,
            "max_completion_tokens": 300,
            "user": "usr_1"
        })
    );

    // The older field name when configured, and a per-request model.
    let legacy = client.clone().with_max_tokens_field(MaxTokensField::MaxTokens);
    let req = ChatRequest { model: Some("gpt-other".into()), max_tokens: Some(10), ..hello() };
    assert_eq!(legacy.complete(&req).await.unwrap().model, "gpt-other");
    let body = &fake.requests()[1].body;
    assert_eq!((body["max_tokens"].clone(), body.get("max_completion_tokens")), (json!(10), None));
}

#[tokio::test]
async fn json_schema_and_tools_request_body() {
    let (fake, client) = setup().await;
    let schema = json!({
        "type": "object",
        "properties": {"title": {"type": "string"}, "bullets": {"type": "array", "items": {"type": "string"}}},
        "required": ["title", "bullets"],
        "additionalProperties": false
    });
    fake.push(Reply::Answer(Script::text(r#"{"title":"Mug","bullets":["red"]}"#)));
    let req = ChatRequest {
        response_format: ResponseFormat::JsonSchema {
            name: "product_copy".into(),
            schema: schema.clone(),
            strict: true,
        },
        tools: vec![ToolDef {
            name: "lookup_price".into(),
            description: "Price of a product by SKU".into(),
            parameters: json!({"type": "object", "properties": {"sku": {"type": "string"}}, "required": ["sku"]}),
        }],
        ..hello()
    };
    let out = client.complete(&req).await.unwrap();
    let parsed: serde_json::Value = serde_json::from_str(&out.content).unwrap();
    assert_eq!(parsed["title"], "Mug");

    let body = &fake.requests()[0].body;
    assert_eq!(
        body["response_format"],
        json!({"type": "json_schema", "json_schema": {"name": "product_copy", "schema": schema, "strict": true}})
    );
    assert_eq!(
        body["tools"],
        json!([{"type": "function", "function": {
            "name": "lookup_price", "description": "Price of a product by SKU",
            "parameters": {"type": "object", "properties": {"sku": {"type": "string"}}, "required": ["sku"]}}}])
    );
    // Plain text sends no response_format at all.
    client.complete(&hello()).await.unwrap();
    assert!(fake.requests()[1].body.get("response_format").is_none());
}

#[tokio::test]
async fn tool_calls_and_a_tool_conversation() {
    let (fake, client) = setup().await;
    fake.push(Reply::Answer(Script::text("").tool_call("call_1", "lookup_price", r#"{"sku":"MUG-RED"}"#)));
    let first = client.complete(&hello()).await.unwrap();
    assert_eq!(first.finish_reason.as_deref(), Some("tool_calls"));
    assert_eq!(
        first.tool_calls,
        vec![ToolCall { id: "call_1".into(), name: "lookup_price".into(), arguments: r#"{"sku":"MUG-RED"}"#.into() }]
    );

    // Continue with the call and its result: the fake refuses tool replies without an id,
    // just as the real API does.
    let mut messages = hello().messages;
    messages.push(ChatMessage::assistant_tool_calls("", first.tool_calls.clone()));
    messages.push(ChatMessage::tool("call_1", r#"{"price":"12.00"}"#));
    let second = client.complete(&ChatRequest::new(messages)).await.unwrap();
    assert!(!second.content.is_empty());
    let sent = &fake.requests()[1].body["messages"];
    assert_eq!(
        sent[2],
        json!({"role": "assistant", "content": null, "tool_calls": [{"id": "call_1", "type": "function",
            "function": {"name": "lookup_price", "arguments": "{\"sku\":\"MUG-RED\"}"}}]})
    );
    assert_eq!(sent[3], json!({"role": "tool", "content": "{\"price\":\"12.00\"}", "tool_call_id": "call_1"}));
}

#[tokio::test]
async fn stream_reassembles_content_tool_call_fragments_and_usage() {
    let (fake, client) = setup().await;
    let args_a = r#"{"sku":"MUG-RED","currency":"EUR"}"#;
    let args_b = r#"{"query":"mugs"}"#;
    fake.push(Reply::Answer(
        Script::text("Here is a bright red mug for your morning coffee.")
            .tool_call("call_a", "lookup_price", args_a)
            .tool_call("call_b", "search", args_b)
            .pieces(3, 4)
            .completion_tokens(42),
    ));
    let stream = client.stream(&hello()).await.unwrap();
    let (chunks, err) = drain(stream).await;
    assert!(err.is_none(), "{err:?}");

    // Several fragments per tool call, and the usage-only chunk came last.
    let fragments_a = chunks.iter().filter(|c| matches!(c, ChatChunk::ToolCallDelta { index: 0, .. })).count();
    assert!(fragments_a >= 5, "{fragments_a}");
    assert_eq!(
        chunks.last(),
        Some(&ChatChunk::Usage(Usage {
            prompt_tokens: fake_prompt_tokens(&hello()),
            completion_tokens: 42,
            total_tokens: fake_prompt_tokens(&hello()) + 42
        }))
    );
    assert!(chunks.contains(&ChatChunk::Finish("tool_calls".into())));

    let acc = accumulate(&chunks);
    assert_eq!(acc.content(), "Here is a bright red mug for your morning coffee.");
    assert_eq!(
        acc.tool_calls(),
        vec![
            ToolCall { id: "call_a".into(), name: "lookup_price".into(), arguments: args_a.into() },
            ToolCall { id: "call_b".into(), name: "search".into(), arguments: args_b.into() },
        ]
    );
    assert_eq!(acc.estimated_completion_tokens(), 42, "the reported usage wins");
    let done = acc.into_completion();
    assert_eq!(done.finish_reason.as_deref(), Some("tool_calls"));
    assert_eq!(done.usage.unwrap().completion_tokens, 42);

    let r = &fake.requests()[0];
    assert_eq!(r.body["stream"], json!(true));
    assert_eq!(r.body["stream_options"], json!({"include_usage": true}));
    assert_eq!(r.accept.as_deref(), Some("text/event-stream"));
}

/// The fake's count: ceil(chars / 4) + 4 per message.
fn fake_prompt_tokens(req: &ChatRequest) -> u32 {
    req.messages.iter().map(|m| (m.content.chars().count() as u32).div_ceil(4) + 4).sum()
}

#[tokio::test]
async fn comments_event_lines_and_data_without_space_are_handled() {
    let (fake, client) = setup().await;
    let text = "Noise around every event must not leak into the text.";
    fake.push(Reply::Answer(Script::text(text).tool_call("call_1", "f", r#"{"a":[1,2,3]}"#).noisy().without_space()));
    let (chunks, err) = drain(client.stream(&hello()).await.unwrap()).await;
    assert!(err.is_none(), "{err:?}");
    let acc = accumulate(&chunks);
    assert_eq!(acc.content(), text);
    assert_eq!(acc.tool_calls()[0].arguments, r#"{"a":[1,2,3]}"#);
    assert!(acc.usage().is_some());

    // A hand-written body: CRLF line ends, an unknown field, a comment between the data line
    // and its blank line, a multi-line event and a final [DONE] without its blank line.
    let raw = concat!(
        ": hello\r\n\r\n",
        "event: delta\r\nfoo: bar\r\n",
        "data: {\"id\":\"c1\",\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hel\"}}]}\r\n",
        ": between\r\n\r\n",
        "data: {\"choices\":[{\"index\":0,\r\ndata: \"delta\":{\"content\":\"lo\"}}]}\r\n\r\n",
        "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\r\n\r\n",
        "data: [DONE]"
    );
    fake.push(Reply::RawSse(raw.into()));
    let (chunks, err) = drain(client.stream(&hello()).await.unwrap()).await;
    assert!(err.is_none(), "{err:?}");
    assert_eq!(
        chunks,
        vec![ChatChunk::Content("Hel".into()), ChatChunk::Content("lo".into()), ChatChunk::Finish("stop".into())]
    );
}

#[tokio::test]
async fn a_cut_stream_yields_stream_cut_with_the_partial_output() {
    let (fake, client) = setup().await;
    for mode in [CutMode::Abort, CutMode::Eof] {
        // Event 0 is the role chunk; 1..=4 carry "The ", "quic", "k br", "own ".
        fake.push(Reply::Answer(Script::text("The quick brown fox jumps over the lazy dog.").cut_after(5, mode)));
        let (chunks, err) = drain(client.stream(&hello()).await.unwrap()).await;
        assert_eq!(chunks.len(), 4, "{mode:?}: {chunks:?}");
        let Some(LlmError::StreamCut { partial }) = err else { panic!("{mode:?}: {err:?}") };
        assert_eq!(partial.content(), "The quick brown ", "{mode:?}");
        assert_eq!(partial.usage(), None);
        assert_eq!(partial.finish_reason(), None);
        // 16 characters → 4 by characters; 4 deltas → 4.
        assert_eq!(partial.estimated_completion_tokens(), 4);
        assert!(partial.id().starts_with("chatcmpl-"));
        let kernel: nexus_kernel::Error = LlmError::StreamCut { partial }.into();
        assert_eq!((kernel.kind(), kernel.code()), (ErrorKind::Unavailable, "provider.stream_interrupted"));
    }
    assert_eq!(fake.request_count(), 2, "a cut stream is not retried");

    // Cut in the middle of the tool-call fragments: what arrived is kept, the estimate counts
    // the fragments.
    fake.push(Reply::Answer(
        Script::text("")
            .tool_call("call_1", "f", r#"{"long":"arguments here"}"#)
            .pieces(4, 2)
            .cut_after(6, CutMode::Abort),
    ));
    let (_, err) = drain(client.stream(&hello()).await.unwrap()).await;
    let Some(LlmError::StreamCut { partial }) = err else { panic!("{err:?}") };
    let calls = partial.tool_calls();
    assert_eq!((calls[0].id.as_str(), calls[0].name.as_str()), ("call_1", "f"));
    assert_eq!(calls[0].arguments, r#"{"long":"#);
    assert_eq!(partial.estimated_completion_tokens(), 5, "5 deltas > ceil(8 chars / 4)");
}

#[tokio::test]
async fn rate_limits_are_retried_honouring_the_reset_header() {
    let (fake, client) = setup().await;
    // A small reset: waited (not the ≥ 200 ms + 400 ms exponential backoff).
    fake.push_n(2, Reply::rate_limited("20ms"));
    let started = Instant::now();
    let out = client.complete(&hello()).await.unwrap();
    let elapsed = started.elapsed();
    assert_eq!(out.content, "Hello from the fake model.");
    assert_eq!(fake.requests().iter().map(|r| r.status).collect::<Vec<_>>(), vec![429, 429, 200]);
    assert!(elapsed >= Duration::from_millis(40), "{elapsed:?}");
    assert!(elapsed < Duration::from_millis(550), "reset header honoured, not the backoff: {elapsed:?}");

    // A reset longer than the backoff is waited out in full.
    fake.push(Reply::rate_limited("1s"));
    let started = Instant::now();
    client.complete(&hello()).await.unwrap();
    assert!(started.elapsed() >= Duration::from_secs(1), "{:?}", started.elapsed());
    assert_eq!(fake.request_count(), 5);

    // Streams are retried too (before any byte).
    fake.push(Reply::rate_limited("10ms"));
    let (chunks, err) = drain(client.stream(&hello()).await.unwrap()).await;
    assert!(err.is_none());
    assert_eq!(accumulate(&chunks).content(), "Hello from the fake model.");
    assert_eq!(fake.request_count(), 7);
}

#[tokio::test]
async fn rate_limits_past_the_retries_or_too_long_give_up() {
    let (fake, client) = setup().await;
    fake.push_n(3, Reply::rate_limited("10ms"));
    let err = client.complete(&hello()).await.unwrap_err();
    assert!(matches!(err, LlmError::RateLimited { retry_after: Some(d) } if d == Duration::from_millis(10)), "{err:?}");
    assert_eq!(fake.request_count(), 3, "first attempt + max_retries");

    // Six minutes is not slept through: one request, the wait handed to the caller.
    fake.push(Reply::rate_limited("6m0s"));
    let started = Instant::now();
    let err = client.complete(&hello()).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(1));
    assert!(matches!(err, LlmError::RateLimited { retry_after: Some(d) } if d == Duration::from_secs(360)), "{err:?}");
    assert_eq!(fake.request_count(), 4);
    let kernel: nexus_kernel::Error = err.into();
    assert_eq!((kernel.kind(), kernel.code()), (ErrorKind::RateLimited, "provider.rate_limited"));
    assert_eq!(kernel.param("retry_after"), Some("360"));
}

#[tokio::test]
async fn insufficient_quota_is_not_retried() {
    let (fake, client) = setup().await;
    fake.push(Reply::insufficient_quota());
    let err = client.complete(&hello()).await.unwrap_err();
    let LlmError::InsufficientQuota { message } = &err else { panic!("{err:?}") };
    assert!(message.contains("exceeded your current quota"), "{message}");
    assert_eq!(fake.request_count(), 1);
    assert!(!err.is_retryable());
    let kernel: nexus_kernel::Error = err.into();
    assert_eq!((kernel.kind(), kernel.code()), (ErrorKind::Unavailable, "provider.quota_exceeded"));

    // Same for a stream.
    fake.push(Reply::insufficient_quota());
    let err = client.stream(&hello()).await.err().unwrap();
    assert!(matches!(err, LlmError::InsufficientQuota { .. }), "{err:?}");
    assert_eq!(fake.request_count(), 2);
}

#[tokio::test]
async fn wrong_key_is_auth_and_never_shown() {
    let (fake, _) = setup().await;
    let cfg = LlmConfig { api_key: "sk-live-not-this-one".into(), ..config(&fake) };
    let client = OpenAiClient::new(cfg, reqwest::Client::new());
    let err = client.complete(&hello()).await.unwrap_err();
    assert!(matches!(err, LlmError::Auth), "{err:?}");
    assert_eq!(fake.request_count(), 1);
    assert!(!format!("{err} {err:?} {client:?}").contains("not-this-one"));
    let kernel: nexus_kernel::Error = err.into();
    assert_eq!(kernel.kind(), ErrorKind::Internal);
}

#[tokio::test]
async fn refused_requests_are_invalid_request_and_not_retried() {
    let (fake, client) = setup().await;
    let err = client.complete(&ChatRequest { temperature: Some(5.0), ..hello() }).await.unwrap_err();
    let LlmError::InvalidRequest { message } = &err else { panic!("{err:?}") };
    assert!(message.contains("temperature"), "{message}");
    assert_eq!(fake.request_count(), 1);
    let kernel: nexus_kernel::Error = err.into();
    assert_eq!((kernel.kind(), kernel.code()), (ErrorKind::Unprocessable, "provider.invalid_request"));

    // A strict schema name the API refuses.
    let req = ChatRequest {
        response_format: ResponseFormat::JsonSchema { name: "bad name!".into(), schema: json!({}), strict: true },
        ..hello()
    };
    assert!(matches!(client.complete(&req).await, Err(LlmError::InvalidRequest { .. })));
}

#[tokio::test]
async fn server_errors_are_retried_before_the_stream_starts() {
    let (fake, client) = setup().await;
    fake.push(Reply::server_error(503));
    fake.push(Reply::server_error(500));
    assert_eq!(client.complete(&hello()).await.unwrap().content, "Hello from the fake model.");
    assert_eq!(fake.requests().iter().map(|r| r.status).collect::<Vec<_>>(), vec![503, 500, 200]);

    fake.push(Reply::server_error(502));
    let (chunks, err) = drain(client.stream(&hello()).await.unwrap()).await;
    assert!(err.is_none());
    assert!(!chunks.is_empty());
    assert_eq!(fake.request_count(), 5);

    fake.push_n(3, Reply::server_error(500));
    let err = client.complete(&hello()).await.unwrap_err();
    assert!(matches!(err, LlmError::Upstream { status: 500, .. }), "{err:?}");
    let kernel: nexus_kernel::Error = err.into();
    assert_eq!(kernel.code(), "provider.unavailable");
}

#[tokio::test]
async fn unreachable_server_is_unavailable() {
    nexus_testkit::init_tracing();
    let addr = nexus_testkit::unreachable_addr();
    let cfg = LlmConfig { max_retries: 1, ..LlmConfig::new(format!("http://{addr}/v1"), TEST_API_KEY, TEST_MODEL) };
    let client = OpenAiClient::new(cfg, reqwest::Client::new());
    let err = client.complete(&hello()).await.unwrap_err();
    assert!(matches!(err, LlmError::Upstream { status: 0, .. }), "{err:?}");
    assert!(err.is_retryable());
}

#[tokio::test]
async fn timeouts() {
    let (fake, _) = setup().await;
    let cfg = LlmConfig { timeout: Duration::from_millis(300), ..config(&fake) };
    let client = OpenAiClient::new(cfg, reqwest::Client::new());

    // No answer at all: the overall timeout, not retried.
    fake.push(Reply::Answer(Script::text("late").delay(Duration::from_secs(3))));
    let started = Instant::now();
    let err = client.complete(&hello()).await.unwrap_err();
    assert!(matches!(err, LlmError::Timeout), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
    assert_eq!(fake.request_count(), 1);
    let kernel: nexus_kernel::Error = err.into();
    assert_eq!((kernel.kind(), kernel.code()), (ErrorKind::DeadlineExceeded, "provider.timeout"));

    // Streams: no headers in time.
    fake.push(Reply::Answer(Script::text("late").delay(Duration::from_secs(3))));
    assert!(matches!(client.stream(&hello()).await.err(), Some(LlmError::Timeout)));

    // Headers, then silence before the first event: a timeout.
    fake.push(Reply::Answer(Script::text("late").stall(0, Duration::from_secs(3))));
    let (chunks, err) = drain(client.stream(&hello()).await.unwrap()).await;
    assert!(chunks.is_empty());
    assert!(matches!(err, Some(LlmError::Timeout)), "{err:?}");

    // Silence after some output: a cut carrying it. A slow but steady stream is fine, even if
    // it lasts far longer than the timeout in total.
    fake.push(Reply::Answer(Script::text("abcdefgh").pieces(2, 2).stall(3, Duration::from_secs(3))));
    let (_, err) = drain(client.stream(&hello()).await.unwrap()).await;
    let Some(LlmError::StreamCut { partial }) = err else { panic!("{err:?}") };
    assert_eq!(partial.content(), "abcd");

    fake.push(Reply::Answer(Script::text("0123456789").pieces(1, 1).chunk_delay(Duration::from_millis(100))));
    let started = Instant::now();
    let (chunks, err) = drain(client.stream(&hello()).await.unwrap()).await;
    assert!(err.is_none(), "{err:?}");
    assert!(started.elapsed() > Duration::from_millis(900));
    assert_eq!(accumulate(&chunks).content(), "0123456789");
}

#[tokio::test]
async fn dropping_the_stream_or_the_future_closes_the_connection() {
    let (fake, client) = setup().await;
    fake.push(Reply::Answer(Script::text("word ".repeat(200)).pieces(5, 5).chunk_delay(Duration::from_millis(20))));
    let mut stream = client.stream(&hello()).await.unwrap();
    stream.next().await.unwrap().unwrap();
    stream.next().await.unwrap().unwrap();
    drop(stream);
    assert!(
        nexus_testkit::eventually(Duration::from_secs(3), || async { fake.disconnects() == 1 }).await,
        "the fake saw the reader go away"
    );

    fake.push(Reply::Answer(Script::text("late").delay(Duration::from_secs(2))));
    let req = hello();
    let call = client.complete(&req);
    assert!(tokio::time::timeout(Duration::from_millis(200), call).await.is_err());
    assert!(
        nexus_testkit::eventually(Duration::from_secs(3), || async { fake.disconnects() == 2 }).await,
        "the dropped request was abandoned at the fake"
    );

    // with_cancellation: the caller's signal ends the stream with Cancelled.
    fake.push(Reply::Answer(Script::text("word ".repeat(200)).pieces(5, 5).chunk_delay(Duration::from_millis(20))));
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let mut stream = with_cancellation(client.stream(&hello()).await.unwrap(), async move {
        let _ = rx.await;
    });
    assert!(matches!(stream.next().await, Some(Ok(ChatChunk::Content(_)))));
    tx.send(()).unwrap();
    assert!(matches!(stream.next().await, Some(Err(LlmError::Cancelled))));
    assert!(stream.next().await.is_none());
    assert!(nexus_testkit::eventually(Duration::from_secs(3), || async { fake.disconnects() == 3 }).await);
}

#[tokio::test]
async fn errors_inside_a_stream() {
    let (fake, client) = setup().await;
    // Before any output: the error itself (here a rate limit the caller may retry).
    fake.push(Reply::RawSse(
        "data: {\"error\":{\"message\":\"Rate limit reached\",\"type\":\"requests\",\"param\":null,\"code\":\"rate_limit_exceeded\"}}\n\n".into(),
    ));
    let (chunks, err) = drain(client.stream(&hello()).await.unwrap()).await;
    assert!(chunks.is_empty());
    assert!(matches!(err, Some(LlmError::RateLimited { .. })), "{err:?}");

    // After output: a cut, so what was produced is not lost.
    fake.push(Reply::RawSse(concat!(
        "data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Partial\"}}]}\n\n",
        "data: {\"error\":{\"message\":\"The server had an error\",\"type\":\"server_error\",\"param\":null,\"code\":null}}\n\n",
    ).into()));
    let (_, err) = drain(client.stream(&hello()).await.unwrap()).await;
    let Some(LlmError::StreamCut { partial }) = err else { panic!("{err:?}") };
    assert_eq!(partial.content(), "Partial");

    // Garbage data before any output: a decode error.
    fake.push(Reply::RawSse("data: this is not json\n\n".into()));
    let (_, err) = drain(client.stream(&hello()).await.unwrap()).await;
    assert!(matches!(err, Some(LlmError::Decode(_))), "{err:?}");
}

#[tokio::test]
async fn a_server_that_ignores_stream_is_replayed_as_chunks() {
    let (fake, client) = setup().await;
    fake.push(Reply::RawJson(json!({
        "id": "chatcmpl-json", "object": "chat.completion", "created": 1, "model": "local-llm",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Whole answer at once"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}
    })));
    let (chunks, err) = drain(client.stream(&hello()).await.unwrap()).await;
    assert!(err.is_none());
    let done = accumulate(&chunks).into_completion();
    assert_eq!(done.content, "Whole answer at once");
    assert_eq!(done.usage.map(|u| u.total_tokens), Some(7));
}

#[tokio::test]
async fn usable_as_a_shared_trait_object() {
    let (fake, client) = setup().await;
    let model: Arc<dyn ChatModel> = Arc::new(client);
    assert_eq!(model.name(), TEST_MODEL);
    let tasks: Vec<_> = (0..4)
        .map(|i| {
            let model = model.clone();
            tokio::spawn(async move {
                let req = ChatRequest::new(vec![ChatMessage::user(format!("question {i}"))]);
                model.complete(&req).await.map(|c| c.content)
            })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap(), "Hello from the fake model.");
    }
    assert_eq!(fake.request_count(), 4);
}
