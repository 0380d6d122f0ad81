//! Server-sent events for streamed chat completions: a line decoder that keeps only `data:`
//! fields, the chunk decoder, and the stream that ties them to an HTTP body.
//!
//! Event framing follows the SSE rules (lines end with `\n` or `\r\n`; `data:` lines accumulate
//! until a blank line dispatches the event; a leading space after the colon is dropped; lines
//! starting with `:` are comments; `event:`, `id:`, `retry:` and unknown fields are ignored).
//! At end of body a pending event is dispatched too, so a final `data: [DONE]` without its blank
//! line still ends the stream cleanly.

use std::collections::VecDeque;
use std::time::Duration;

use futures::StreamExt as _;
use serde::Deserialize;

use super::openai::error_from_body;
use super::{ChatChunk, ChatStream, LlmError, StreamAccumulator, Usage};

/// A line longer than this without a newline is not an SSE stream we can follow.
const MAX_LINE_BYTES: usize = 4 * 1024 * 1024;

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum SseEvent {
    Data(String),
    Done,
}

#[derive(Debug, Default)]
pub(crate) struct SseDecoder {
    buf: Vec<u8>,
    data: Option<String>,
}

impl SseDecoder {
    /// Feeds body bytes; complete events are appended to `out`.
    pub(crate) fn feed(&mut self, bytes: &[u8], out: &mut Vec<SseEvent>) -> Result<(), LlmError> {
        self.buf.extend_from_slice(bytes);
        let mut start = 0;
        while let Some(pos) = self.buf[start..].iter().position(|b| *b == b'\n') {
            let end = start + pos;
            let line = self.buf[start..end].strip_suffix(b"\r").unwrap_or(&self.buf[start..end]).to_vec();
            start = end + 1;
            self.line(&line, out)?;
        }
        self.buf.drain(..start);
        if self.buf.len() > MAX_LINE_BYTES {
            return Err(LlmError::Decode("event stream line too long".into()));
        }
        Ok(())
    }

    /// End of body: the last line (if unterminated) and a pending event.
    pub(crate) fn finish(&mut self, out: &mut Vec<SseEvent>) -> Result<(), LlmError> {
        if !self.buf.is_empty() {
            let line = std::mem::take(&mut self.buf);
            let line = line.strip_suffix(b"\r").unwrap_or(&line).to_vec();
            self.line(&line, out)?;
        }
        self.dispatch(out);
        Ok(())
    }

    fn line(&mut self, line: &[u8], out: &mut Vec<SseEvent>) -> Result<(), LlmError> {
        if line.is_empty() {
            self.dispatch(out);
            return Ok(());
        }
        let Some(value) = line.strip_prefix(b"data:") else {
            // Comments (`: keep-alive`), `event:`, `id:`, `retry:` and anything else.
            return Ok(());
        };
        let value = value.strip_prefix(b" ").unwrap_or(value);
        let value = std::str::from_utf8(value).map_err(|_| LlmError::Decode("event data is not UTF-8".into()))?;
        match &mut self.data {
            Some(data) => {
                data.push('\n');
                data.push_str(value);
            }
            None => self.data = Some(value.to_string()),
        }
        Ok(())
    }

    fn dispatch(&mut self, out: &mut Vec<SseEvent>) {
        if let Some(data) = self.data.take() {
            if data.trim() == "[DONE]" {
                out.push(SseEvent::Done);
            } else if !data.trim().is_empty() {
                out.push(SseEvent::Data(data));
            }
        }
    }
}

#[derive(Deserialize)]
struct RawChunk {
    id: Option<String>,
    model: Option<String>,
    #[serde(default)]
    choices: Option<Vec<RawChoice>>,
    #[serde(default)]
    usage: Option<Usage>,
    #[serde(default)]
    error: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct RawChoice {
    #[serde(default)]
    index: u32,
    #[serde(default)]
    delta: Option<RawDelta>,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct RawDelta {
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    refusal: Option<String>,
    #[serde(default)]
    tool_calls: Option<Vec<RawToolCallDelta>>,
}

#[derive(Deserialize)]
struct RawToolCallDelta {
    #[serde(default)]
    index: u32,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    function: Option<RawFunctionDelta>,
}

#[derive(Deserialize)]
struct RawFunctionDelta {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    arguments: Option<String>,
}

/// Decodes one event's data into chunks (choice 0 only: we never ask for `n` > 1). An in-band
/// `{"error":{…}}` object becomes the matching error.
pub(crate) fn decode_chunk(data: &str, acc: &mut StreamAccumulator, out: &mut VecDeque<Item>) -> Result<(), LlmError> {
    let raw: RawChunk =
        serde_json::from_str(data).map_err(|e| LlmError::Decode(format!("stream chunk is not a chat chunk: {e}")))?;
    if let Some(err) = raw.error.filter(|e| !e.is_null()) {
        let body = serde_json::json!({ "error": err });
        return Err(error_from_body(200, &serde_json::to_vec(&body).unwrap_or_default()));
    }
    acc.set_meta(raw.id.as_deref(), raw.model.as_deref());
    for choice in raw.choices.unwrap_or_default().into_iter().filter(|c| c.index == 0) {
        if let Some(delta) = choice.delta {
            for text in [delta.content, delta.refusal].into_iter().flatten() {
                if !text.is_empty() {
                    out.push_back(Item::Chunk(ChatChunk::Content(text)));
                }
            }
            for call in delta.tool_calls.unwrap_or_default() {
                let (name, arguments) = match call.function {
                    Some(f) => (f.name, f.arguments.unwrap_or_default()),
                    None => (None, String::new()),
                };
                out.push_back(Item::Chunk(ChatChunk::ToolCallDelta {
                    index: call.index,
                    id: call.id,
                    name,
                    arguments,
                }));
            }
        }
        if let Some(reason) = choice.finish_reason.filter(|r| !r.is_empty()) {
            out.push_back(Item::Chunk(ChatChunk::Finish(reason)));
        }
    }
    if let Some(usage) = raw.usage {
        out.push_back(Item::Chunk(ChatChunk::Usage(usage)));
    }
    Ok(())
}

/// What the stream yields next. Errors are resolved when they are yielded, so a cut carries
/// every chunk yielded before it.
pub(crate) enum Item {
    Chunk(ChatChunk),
    /// The body ended or failed without `[DONE]`.
    Cut(&'static str),
    /// A decoding or in-band error: a cut if anything was produced, else the error itself.
    Fail(LlmError),
}

struct State {
    resp: reqwest::Response,
    decoder: SseDecoder,
    acc: StreamAccumulator,
    queue: VecDeque<Item>,
    idle: Duration,
    /// No more body reads: `[DONE]` seen, or the end/failure is queued.
    finished: bool,
}

impl State {
    fn absorb(&mut self, events: Vec<SseEvent>) {
        for event in events {
            match event {
                SseEvent::Done => {
                    self.finished = true;
                    return;
                }
                SseEvent::Data(data) => {
                    if let Err(e) = decode_chunk(&data, &mut self.acc, &mut self.queue) {
                        self.queue.push_back(Item::Fail(e));
                        self.finished = true;
                        return;
                    }
                }
            }
        }
    }

    fn cut(&self, reason: &str) -> LlmError {
        tracing::warn!(reason, chars = self.acc.content().chars().count(), "model stream ended before [DONE]");
        LlmError::StreamCut { partial: self.acc.clone() }
    }
}

/// The chunk stream over an SSE response body. `idle` bounds the silence between two reads of
/// the body: exceeded before anything was produced it is a [`LlmError::Timeout`], after that a
/// [`LlmError::StreamCut`].
pub(crate) fn chat_stream(resp: reqwest::Response, idle: Duration) -> ChatStream {
    let state = State {
        resp,
        decoder: SseDecoder::default(),
        acc: StreamAccumulator::new(),
        queue: VecDeque::new(),
        idle,
        finished: false,
    };
    futures::stream::unfold(Some(state), |state| async move {
        let mut st = state?;
        loop {
            match st.queue.pop_front() {
                Some(Item::Chunk(chunk)) => {
                    st.acc.push(&chunk);
                    return Some((Ok(chunk), Some(st)));
                }
                Some(Item::Cut(reason)) => return Some((Err(st.cut(reason)), None)),
                Some(Item::Fail(e)) => {
                    let err = if st.acc.is_empty() {
                        e
                    } else {
                        tracing::warn!(error = %e, "model stream failed after producing output");
                        st.cut("error in stream")
                    };
                    return Some((Err(err), None));
                }
                None if st.finished => return None,
                None => {}
            }
            let mut events = Vec::new();
            match tokio::time::timeout(st.idle, st.resp.chunk()).await {
                Err(_) => {
                    st.finished = true;
                    if st.acc.is_empty() {
                        return Some((Err(LlmError::Timeout), None));
                    }
                    st.queue.push_back(Item::Cut("idle timeout"));
                }
                Ok(Err(e)) => {
                    tracing::debug!(error = %crate::http::transport_reason(&e), "model stream read failed");
                    st.finished = true;
                    st.queue.push_back(Item::Cut("connection failed"));
                }
                Ok(Ok(Some(bytes))) => match st.decoder.feed(&bytes, &mut events) {
                    Ok(()) => st.absorb(events),
                    Err(e) => {
                        st.absorb(events);
                        st.finished = true;
                        st.queue.push_back(Item::Fail(e));
                    }
                },
                Ok(Ok(None)) => {
                    let finished = st.decoder.finish(&mut events);
                    st.absorb(events);
                    if !st.finished {
                        st.finished = true;
                        match finished {
                            Ok(()) => st.queue.push_back(Item::Cut("connection closed")),
                            Err(e) => st.queue.push_back(Item::Fail(e)),
                        }
                    }
                }
            }
        }
    })
    .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed_all(parts: &[&str]) -> Vec<SseEvent> {
        let mut d = SseDecoder::default();
        let mut out = Vec::new();
        for p in parts {
            d.feed(p.as_bytes(), &mut out).unwrap();
        }
        d.finish(&mut out).unwrap();
        out
    }

    #[test]
    fn only_data_fields_make_events() {
        let out = feed_all(&[
            ": keep-alive\n\n",
            "event: message\nid: 7\nretry: 100\ndata: {\"a\":1}\n\n",
            "data:{\"b\":2}\r\n\r\n",
            "junk line\n\n",
            "data: [DONE]\n\n",
        ]);
        assert_eq!(out, vec![SseEvent::Data("{\"a\":1}".into()), SseEvent::Data("{\"b\":2}".into()), SseEvent::Done]);
    }

    #[test]
    fn lines_split_across_reads_and_multi_line_data() {
        let out = feed_all(&["da", "ta: {\"a\"", ":1}\n", "\ndata: x\ndata: y\n\nda", "ta: [DONE]"]);
        assert_eq!(out, vec![SseEvent::Data("{\"a\":1}".into()), SseEvent::Data("x\ny".into()), SseEvent::Done]);
    }

    #[test]
    fn unbounded_line_is_refused() {
        let mut d = SseDecoder::default();
        let mut out = Vec::new();
        let big = vec![b'a'; MAX_LINE_BYTES + 1];
        assert!(matches!(d.feed(&big, &mut out), Err(LlmError::Decode(_))));
    }

    #[test]
    fn chunk_decoding() {
        let mut acc = StreamAccumulator::new();
        let mut q = VecDeque::new();
        decode_chunk(
            r#"{"id":"chatcmpl-1","model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}],"usage":null}"#,
            &mut acc,
            &mut q,
        )
        .unwrap();
        assert!(q.is_empty(), "empty role chunk yields nothing");
        assert_eq!((acc.id(), acc.model()), ("chatcmpl-1", "m"));
        decode_chunk(
            r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"f","arguments":""}}]}}]}"#,
            &mut acc,
            &mut q,
        )
        .unwrap();
        decode_chunk(
            r#"{"choices":[],"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}}"#,
            &mut acc,
            &mut q,
        )
        .unwrap();
        let chunks: Vec<ChatChunk> = q
            .into_iter()
            .map(|i| match i {
                Item::Chunk(c) => c,
                _ => panic!("only chunks"),
            })
            .collect();
        assert_eq!(
            chunks,
            vec![
                ChatChunk::ToolCallDelta {
                    index: 0,
                    id: Some("call_1".into()),
                    name: Some("f".into()),
                    arguments: "".into()
                },
                ChatChunk::Usage(Usage { prompt_tokens: 1, completion_tokens: 2, total_tokens: 3 }),
            ]
        );
        let mut q = VecDeque::new();
        let err =
            decode_chunk(r#"{"error":{"message":"overloaded","type":"server_error","code":null}}"#, &mut acc, &mut q);
        assert!(matches!(err, Err(LlmError::Upstream { .. })), "{err:?}");
        assert!(matches!(decode_chunk("not json", &mut acc, &mut q), Err(LlmError::Decode(_))));
    }
}
