//! A fake ElevenLabs API on port 0 (`reference/providers.md` §3).
//!
//! `xi-api-key` (401 `invalid_api_key` otherwise), `GET /v1/voices`, and
//! `POST /v1/text-to-speech/{voice_id}` answering audio bytes with `character-cost` (the text's
//! characters) and `request-id`; 422 with a field list when `text` is missing, 404
//! `voice_not_found` for an unknown voice. The account has a character quota: past it the
//! answer is 401 `quota_exceeded` with ElevenLabs' message. The next requests can be made to
//! fail (429 `too_many_concurrent_requests` with `Retry-After`, 5xx …). Requests are counted.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State as AxState;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::Response;
use serde_json::{Value, json};

use crate::FakeServer;
use crate::fake::lock;

pub const TEST_API_KEY: &str = "sk_fake_elevenlabs_nexus_test_key";
/// Voices the fake knows.
pub const TEST_VOICES: &[(&str, &str)] = &[("21m00Tcm4TlvDq8ikWAM", "Rachel"), ("AZnzlk1XvdvUeBnXmlld", "Domi")];

#[derive(Debug, Clone)]
pub struct RecordedRequest {
    pub method: String,
    pub path: String,
    pub body: Value,
    pub status: u16,
}

struct Failure {
    status: u16,
    body: Value,
    retry_after: Option<u64>,
}

struct State {
    quota: i64,
    used: i64,
    failures: VecDeque<Failure>,
    log: Vec<RecordedRequest>,
}

pub struct FakeElevenLabs {
    pub base_url: String,
    state: Arc<Mutex<State>>,
    _server: FakeServer,
}

impl FakeElevenLabs {
    pub async fn start() -> FakeElevenLabs {
        let state = Arc::new(Mutex::new(State { quota: 10_000, used: 0, failures: VecDeque::new(), log: Vec::new() }));
        let router = Router::new().fallback(handle).with_state(state.clone());
        let server = FakeServer::start(router).await;
        FakeElevenLabs { base_url: server.base_url.clone(), state, _server: server }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// Characters left this period.
    pub fn set_remaining(&self, chars: i64) {
        let mut st = self.state();
        st.quota = st.used + chars;
    }

    pub fn characters_used(&self) -> i64 {
        self.state().used
    }

    pub fn fail_next(&self, n: usize, status: u16, body: Value, retry_after: Option<u64>) {
        let mut st = self.state();
        for _ in 0..n {
            st.failures.push_back(Failure { status, body: body.clone(), retry_after });
        }
    }

    /// ElevenLabs' concurrency answer.
    pub fn busy_body() -> Value {
        json!({"detail": {"status": "too_many_concurrent_requests", "message": "Too many concurrent requests."}})
    }

    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.state().log.clone()
    }

    /// Text-to-speech requests (answered or not).
    pub fn speech_requests(&self) -> usize {
        self.state().log.iter().filter(|r| r.path.starts_with("/v1/text-to-speech/")).count()
    }
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .unwrap_or_default()
}

fn detail(status: StatusCode, code: &str, message: &str) -> Response {
    json_response(status, &json!({"detail": {"status": code, "message": message}}))
}

async fn handle(
    AxState(state): AxState<Arc<Mutex<State>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let parsed: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let (status, resp) = route(&state, &method, uri.path(), &headers, &parsed, &body);
    lock(&state).log.push(RecordedRequest {
        method: method.to_string(),
        path: uri.path().into(),
        body: parsed,
        status,
    });
    resp
}

fn route(
    state: &Arc<Mutex<State>>,
    method: &Method,
    path: &str,
    headers: &HeaderMap,
    json: &Value,
    raw: &[u8],
) -> (u16, Response) {
    let mut st = lock(state);
    if headers.get("xi-api-key").and_then(|v| v.to_str().ok()) != Some(TEST_API_KEY) {
        return (401, detail(StatusCode::UNAUTHORIZED, "invalid_api_key", "Invalid API key"));
    }
    if let Some(f) = st.failures.pop_front() {
        let mut resp =
            json_response(StatusCode::from_u16(f.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR), &f.body);
        if let Some(secs) = f.retry_after
            && let Ok(v) = header::HeaderValue::from_str(&secs.to_string())
        {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        }
        return (f.status, resp);
    }
    match (method.as_str(), path) {
        ("GET", "/v1/voices") => {
            let voices: Vec<Value> = TEST_VOICES
                .iter()
                .map(|(id, name)| {
                    json!({"voice_id": id, "name": name, "category": "premade",
                    "labels": {"accent": "american"}, "preview_url": null})
                })
                .collect();
            (200, json_response(StatusCode::OK, &json!({"voices": voices})))
        }
        ("POST", p) if p.starts_with("/v1/text-to-speech/") => {
            let voice = &p["/v1/text-to-speech/".len()..];
            if !TEST_VOICES.iter().any(|(id, _)| *id == voice) {
                return (404, detail(StatusCode::NOT_FOUND, "voice_not_found", "A voice with that id was not found."));
            }
            let Some(text) = json["text"].as_str().filter(|t| !t.is_empty()) else {
                let body = json!({"detail": [{"loc": ["body", "text"], "msg": "field required", "type": "value_error.missing"}]});
                return (422, json_response(StatusCode::UNPROCESSABLE_ENTITY, &body));
            };
            let cost = i64::try_from(text.chars().count()).unwrap_or(i64::MAX);
            if st.used + cost > st.quota {
                let remaining = (st.quota - st.used).max(0);
                let message = format!(
                    "This request exceeds your quota of {}. You have {remaining} credits remaining, while {cost} credits are required for this request.",
                    st.quota
                );
                return (401, detail(StatusCode::UNAUTHORIZED, "quota_exceeded", &message));
            }
            st.used += cost;
            // An MP3-looking body whose length follows the text (about 1 KB a character).
            let mut audio = b"ID3\x04\x00\x00\x00\x00\x00\x00".to_vec();
            audio.extend(raw.iter().cycle().take(text.len() * 1024));
            let resp = Response::builder()
                .status(200)
                .header(header::CONTENT_TYPE, "audio/mpeg")
                .header("character-cost", cost.to_string())
                .header("request-id", uuid::Uuid::new_v4().simple().to_string())
                .body(Body::from(audio))
                .unwrap_or_default();
            (200, resp)
        }
        _ => (404, detail(StatusCode::NOT_FOUND, "not_found", "Not found")),
    }
}
