//! A fake D-ID API on port 0 (`reference/providers.md` §2).
//!
//! Like the contract where a client depends on it: `Authorization: Basic` with the key either
//! base64-encoded or literal (401 `AuthorizationError` otherwise), error bodies
//! `{"kind","description","details"}`, `POST /audios` (multipart `audio`), `POST /talks` (201,
//! `created`), `GET /talks/{id}`, `GET /talks` (newest first, paged by `token`),
//! `DELETE /talks/{id}`, and the finished video at the talk's `result_url` (served by the fake).
//!
//! How talks finish is up to the test: with [`Completion::Polling`] (the default) each read
//! moves a talk one step (`created` → `started` → the outcome) and no webhook is sent; with
//! [`Completion::Webhook`] reads never move it and [`FakeDid::finish`] ends it and POSTs the talk
//! to its `webhook`. The fake counts talks per `user_data` and requests per talk, can refuse
//! or throttle the next requests (429 with `Retry-After`), and can lose the answer of the next
//! create after making the talk (what a cut connection looks like to a client).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State as AxState;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::Response;
use base64::Engine as _;
use futures::StreamExt as _;
use serde_json::{Value, json};

use crate::FakeServer;
use crate::fake::lock;

/// The key the fake accepts (`USERNAME:PASSWORD`).
pub const TEST_API_KEY: &str = "nexus-test@example.com:fake-did-password";

/// How talks end.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Done,
    /// `error` with this description.
    Error(String),
    /// `rejected` (moderation).
    Rejected,
}

/// How talks get there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Completion {
    /// Each read moves the talk one step; no webhook.
    Polling,
    /// Only [`FakeDid::finish`] ends a talk, and it sends the webhook.
    Webhook,
}

#[derive(Debug, Clone)]
pub struct RecordedRequest {
    pub method: String,
    pub path: String,
    /// The talk the request was about (its id in the path), if any.
    pub talk: Option<String>,
    pub status: u16,
}

#[derive(Debug, Clone)]
pub struct Delivery {
    pub url: String,
    pub talk: String,
    pub status: Option<u16>,
}

struct Failure {
    status: u16,
    body: Value,
    retry_after: Option<u64>,
}

struct TalkRec {
    obj: Value,
    webhook: Option<String>,
    /// The created talk's outcome (fixed when it is created).
    outcome: Outcome,
}

struct State {
    base_url: String,
    talks: Vec<TalkRec>,
    audios: usize,
    outcome: Outcome,
    completion: Completion,
    failures: VecDeque<Failure>,
    lose_next_create: bool,
    result_bytes: usize,
    /// A real MP4 (4.2 s, 320×180, H.264 and AAC) the finished files start with.
    sample: Arc<Vec<u8>>,
    /// Serve files that are not videos (what a broken render looks like).
    unplayable: bool,
    log: Vec<RecordedRequest>,
    deliveries: Vec<Delivery>,
    http: reqwest::Client,
}

pub struct FakeDid {
    /// `http://127.0.0.1:port`, for `DidConfig::base_url`.
    pub base_url: String,
    state: Arc<Mutex<State>>,
    _server: FakeServer,
}

impl FakeDid {
    pub async fn start() -> FakeDid {
        nexus_platform::install_crypto_provider();
        let state = Arc::new(Mutex::new(State {
            base_url: String::new(),
            talks: Vec::new(),
            audios: 0,
            outcome: Outcome::Done,
            completion: Completion::Polling,
            failures: VecDeque::new(),
            lose_next_create: false,
            result_bytes: 64 * 1024,
            sample: sample_video().await,
            unplayable: false,
            log: Vec::new(),
            deliveries: Vec::new(),
            http: reqwest::Client::new(),
        }));
        let router = Router::new().fallback(handle).with_state(state.clone());
        let server = FakeServer::start(router).await;
        lock(&state).base_url = server.base_url.clone();
        FakeDid { base_url: server.base_url.clone(), state, _server: server }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// How talks created from now on end.
    pub fn set_outcome(&self, outcome: Outcome) {
        self.state().outcome = outcome;
    }

    pub fn set_completion(&self, completion: Completion) {
        self.state().completion = completion;
    }

    /// Size of the finished video files served at `result_url`.
    pub fn set_result_bytes(&self, n: usize) {
        self.state().result_bytes = n;
    }

    /// Finished files from now on are the right size but not a video ffprobe can read.
    pub fn serve_unplayable_files(&self) {
        self.state().unplayable = true;
    }

    /// The next `n` authorized requests get `status` with `body` (+ `Retry-After` seconds).
    pub fn fail_next(&self, n: usize, status: u16, body: Value, retry_after: Option<u64>) {
        let mut st = self.state();
        for _ in 0..n {
            st.failures.push_back(Failure { status, body: body.clone(), retry_after });
        }
    }

    /// The next `POST /talks` makes its talk but answers 500, as a client whose connection was
    /// cut after sending sees it.
    pub fn lose_next_create_answer(&self) {
        self.state().lose_next_create = true;
    }

    /// Ends a running talk with its outcome and POSTs it to its webhook. Panics if unknown.
    pub async fn finish(&self, id: &str) {
        let job = {
            let mut st = self.state();
            let base = st.base_url.clone();
            let http = st.http.clone();
            let rec = st.talks.iter_mut().find(|t| t.obj["id"] == id).unwrap_or_else(|| panic!("no talk {id}"));
            if !is_terminal(&rec.obj) {
                complete(rec, &base);
            }
            rec.webhook.clone().map(|url| (url, serde_json::to_vec(&rec.obj).unwrap_or_default(), http))
        };
        if let Some((url, body, http)) = job {
            let status = http
                .post(&url)
                .header(header::CONTENT_TYPE, "application/json")
                .body(body)
                .send()
                .await
                .ok()
                .map(|r| r.status().as_u16());
            self.state().deliveries.push(Delivery { url, talk: id.to_owned(), status });
        }
    }

    pub fn talk(&self, id: &str) -> Option<Value> {
        self.state().talks.iter().find(|t| t.obj["id"] == id).map(|t| t.obj.clone())
    }

    /// Every talk made, oldest first.
    pub fn talks(&self) -> Vec<Value> {
        self.state().talks.iter().map(|t| t.obj.clone()).collect()
    }

    /// Talks created with this `user_data`.
    pub fn talks_for(&self, user_data: &str) -> usize {
        self.state().talks.iter().filter(|t| t.obj["user_data"] == user_data).count()
    }

    pub fn audio_uploads(&self) -> usize {
        self.state().audios
    }

    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.state().log.clone()
    }

    /// Requests about one talk (reads, deletes).
    pub fn requests_for_talk(&self, id: &str) -> usize {
        self.state().log.iter().filter(|r| r.talk.as_deref() == Some(id)).count()
    }

    pub fn deliveries(&self) -> Vec<Delivery> {
        self.state().deliveries.clone()
    }
}

fn is_terminal(obj: &Value) -> bool {
    matches!(obj["status"].as_str(), Some("done" | "error" | "rejected"))
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn complete(rec: &mut TalkRec, base: &str) {
    let id = rec.obj["id"].as_str().unwrap_or_default().to_owned();
    rec.obj["modified_at"] = json!(now());
    match &rec.outcome {
        Outcome::Done => {
            rec.obj["status"] = json!("done");
            rec.obj["result_url"] = json!(format!("{base}/files/{id}.mp4"));
            rec.obj["duration"] = json!(4.2);
        }
        Outcome::Error(description) => {
            rec.obj["status"] = json!("error");
            rec.obj["error"] = json!({"kind": "InternalServerError", "description": description});
        }
        Outcome::Rejected => {
            rec.obj["status"] = json!("rejected");
            rec.obj["error"] =
                json!({"kind": "ModerationError", "description": "The image was rejected by moderation"});
        }
    }
}

fn error(status: StatusCode, kind: &str, description: &str) -> Response {
    json_response(status, &json!({"kind": kind, "description": description, "details": {}}))
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .unwrap_or_default()
}

fn authorized(headers: &HeaderMap) -> bool {
    let Some(v) = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) else { return false };
    let Some(cred) = v.strip_prefix("Basic ") else { return false };
    if cred == TEST_API_KEY {
        return true;
    }
    base64::engine::general_purpose::STANDARD.decode(cred).ok().is_some_and(|d| d == TEST_API_KEY.as_bytes())
}

async fn handle(
    AxState(state): AxState<Arc<Mutex<State>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_owned();
    let talk_in_path = path.strip_prefix("/talks/").map(str::to_owned);
    let (status, resp) = route(&state, &method, &uri, &headers, &body);
    lock(&state).log.push(RecordedRequest {
        method: method.to_string(),
        path,
        talk: talk_in_path.map(|t| t.trim_end_matches(".mp4").to_owned()),
        status,
    });
    resp
}

fn route(state: &Arc<Mutex<State>>, method: &Method, uri: &Uri, headers: &HeaderMap, body: &[u8]) -> (u16, Response) {
    let path = uri.path();
    let mut st = lock(state);
    // Finished files are presigned URLs: no key needed.
    if method == Method::GET
        && let Some(file) = path.strip_prefix("/files/")
    {
        let id = file.trim_end_matches(".mp4");
        let known = st.talks.iter().any(|t| t.obj["id"] == id && t.obj["status"] == "done");
        if !known {
            return (404, error(StatusCode::NOT_FOUND, "NotFoundError", "no such file"));
        }
        let (len, body) = if st.unplayable {
            let mut data = b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00isomiso2avc1mp41".to_vec();
            data.resize(st.result_bytes.max(data.len()), 0x2a);
            (data.len(), Body::from(data))
        } else {
            padded(&st.sample, st.result_bytes)
        };
        let resp = Response::builder()
            .status(200)
            .header(header::CONTENT_TYPE, "video/mp4")
            .header(header::CONTENT_LENGTH, len)
            .body(body)
            .unwrap_or_default();
        return (200, resp);
    }
    if !authorized(headers) {
        return (401, error(StatusCode::UNAUTHORIZED, "AuthorizationError", "Unauthorized"));
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
    let base = st.base_url.clone();
    match (method.as_str(), path) {
        ("POST", "/audios") => {
            let ct = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
            let has_part = body.windows(b"name=\"audio\"".len()).any(|w| w == b"name=\"audio\"");
            if !ct.starts_with("multipart/form-data") || !has_part {
                return (400, error(StatusCode::BAD_REQUEST, "ValidationError", "audio file is required"));
            }
            st.audios += 1;
            let url = format!("s3://d-id-audios-fake/{}/audio.mp3", uuid::Uuid::new_v4().simple());
            (201, json_response(StatusCode::CREATED, &json!({"url": url})))
        }
        ("POST", "/talks") => {
            let Ok(req) = serde_json::from_slice::<Value>(body) else {
                return (400, error(StatusCode::BAD_REQUEST, "ValidationError", "invalid JSON"));
            };
            let source_ok = req["source_url"].as_str().is_some_and(|s| !s.is_empty());
            let script = &req["script"];
            let script_ok = match script["type"].as_str() {
                Some("audio") => script["audio_url"].as_str().is_some_and(|s| !s.is_empty()),
                Some("text") => script["input"].as_str().is_some_and(|s| !s.is_empty()),
                _ => false,
            };
            if !source_ok || !script_ok {
                return (400, error(StatusCode::BAD_REQUEST, "ValidationError", "source_url and script are required"));
            }
            if req["user_data"].as_str().is_some_and(|u| u.chars().count() > 1000) {
                return (400, error(StatusCode::BAD_REQUEST, "ValidationError", "user_data is too long"));
            }
            let id = format!("tlk_{}", uuid::Uuid::new_v4().simple());
            let created = now();
            let obj = json!({
                "id": id, "object": "talk", "status": "created", "created_at": created,
                "created_by": "fake-user", "source_url": req["source_url"], "user_data": req["user_data"],
                "audio_url": script["audio_url"], "config": req["config"], "result_url": null,
            });
            let outcome = st.outcome.clone();
            st.talks.push(TalkRec { obj, webhook: req["webhook"].as_str().map(str::to_owned), outcome });
            if std::mem::take(&mut st.lose_next_create) {
                return (500, error(StatusCode::INTERNAL_SERVER_ERROR, "InternalServerError", "connection reset"));
            }
            let answer = json!({"id": id, "object": "talk", "created_at": created, "created_by": "fake-user", "status": "created"});
            (201, json_response(StatusCode::CREATED, &answer))
        }
        ("GET", "/talks") => {
            let q: std::collections::HashMap<String, String> =
                url::form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes()).into_owned().collect();
            let limit = q.get("limit").and_then(|l| l.parse::<usize>().ok()).unwrap_or(100).clamp(1, 100);
            let start = q.get("token").and_then(|t| t.parse::<usize>().ok()).unwrap_or(0);
            let newest: Vec<Value> = st.talks.iter().rev().map(|t| t.obj.clone()).collect();
            let page: Vec<Value> = newest.iter().skip(start).take(limit).cloned().collect();
            let mut answer = json!({"talks": page});
            if start + limit < newest.len() {
                answer["token"] = json!((start + limit).to_string());
            }
            (200, json_response(StatusCode::OK, &answer))
        }
        (m, p) if p.starts_with("/talks/") => {
            let id = &p["/talks/".len()..];
            let completion = st.completion;
            let Some(idx) = st.talks.iter().position(|t| t.obj["id"] == id) else {
                return (404, error(StatusCode::NOT_FOUND, "NotFoundError", "talk not found"));
            };
            match m {
                "GET" => {
                    let rec = &mut st.talks[idx];
                    if completion == Completion::Polling && !is_terminal(&rec.obj) {
                        if rec.obj["status"] == "created" {
                            rec.obj["status"] = json!("started");
                            rec.obj["started_at"] = json!(now());
                        } else {
                            complete(rec, &base);
                        }
                    }
                    (200, json_response(StatusCode::OK, &rec.obj))
                }
                "DELETE" => {
                    st.talks[idx].obj["status"] = json!("deleted");
                    (200, json_response(StatusCode::OK, &json!({"deleted": true})))
                }
                _ => (405, error(StatusCode::METHOD_NOT_ALLOWED, "ValidationError", "method not allowed")),
            }
        }
        _ => (404, error(StatusCode::NOT_FOUND, "NotFoundError", "no such route")),
    }
}

/// The sample video, made once per process with ffmpeg (test sources: colour bars and a tone).
async fn sample_video() -> Arc<Vec<u8>> {
    static SAMPLE: tokio::sync::OnceCell<Arc<Vec<u8>>> = tokio::sync::OnceCell::const_new();
    SAMPLE
        .get_or_init(|| async {
            let dir = tempfile::tempdir().expect("temporary directory");
            let out = dir.path().join("sample.mp4");
            let status = tokio::process::Command::new("ffmpeg")
                .args(["-v", "error", "-y", "-f", "lavfi", "-i", "testsrc=size=320x180:rate=10:duration=4.2"])
                .args(["-f", "lavfi", "-i", "sine=frequency=440:duration=4.2", "-c:v", "libx264", "-preset"])
                .args(["ultrafast", "-crf", "40", "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "16k", "-shortest"])
                .args(["-movflags", "+faststart", "-f", "mp4"])
                .arg(&out)
                .status()
                .await
                .expect("ffmpeg runs (the fake D-ID serves real videos)");
            assert!(status.success(), "ffmpeg made no sample video");
            Arc::new(std::fs::read(&out).expect("sample video"))
        })
        .await
        .clone()
}

/// The sample followed by an MP4 `free` box (players skip it) up to `len` bytes: its length and
/// the body, streamed (a benchmark asks for 100 MB files, fifty at once).
fn padded(sample: &Arc<Vec<u8>>, len: usize) -> (usize, Body) {
    const CHUNK: usize = 64 * 1024;
    let mut head = sample.as_ref().clone();
    let mut pad = 0;
    if len > head.len() {
        pad = (len - head.len()).max(8);
        head.extend_from_slice(&u32::try_from(pad).expect("padding under 4 GiB").to_be_bytes());
        head.extend_from_slice(b"free");
        pad -= 8;
    }
    let total = head.len() + pad;
    let filler = Bytes::from(vec![0x2a; CHUNK]);
    let rest = futures::stream::iter((0..pad.div_ceil(CHUNK)).map(move |i| {
        let n = CHUNK.min(pad - i * CHUNK);
        Ok::<_, std::convert::Infallible>(filler.slice(..n))
    }));
    let body = futures::stream::once(async move { Ok(Bytes::from(head)) }).chain(rest);
    (total, Body::from_stream(body))
}
