//! A fake Replicate API on port 0 (`reference/providers.md` §4), and [`WebhookSink`], a local
//! receiver that records webhook deliveries (from this fake or any other).
//!
//! The fake behaves like the contract where a client depends on it: bearer `r8_…` token (401
//! otherwise), problem-JSON errors (`{"title","detail","status"}`, 422 with `invalid_fields`
//! when the model's required `prompt` input is missing), `POST /v1/predictions` (by version),
//! `POST /v1/models/{owner}/{name}/predictions` and the deployment equivalent, `GET` and
//! `POST …/cancel` on `/v1/predictions/{id}`, and `GET /v1/webhooks/default/secret`.
//! Predictions move `starting` → `processing` → `succeeded` (or `failed`) as they are read
//! ([`FakeReplicate::set_reads_per_status`]); `Prefer: wait` finishes them at once. When a
//! prediction with a `webhook` starts or finishes, the fake POSTs it there signed the Standard
//! Webhooks way (`webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<base64>` with the key
//! after `whsec_` base64-decoded), respecting `webhook_events_filter` and redelivering (same
//! `webhook-id`) when the receiver does not answer 2xx.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State as AxState;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::Response;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use crate::FakeServer;
use crate::fake::lock;

/// The token the fake accepts.
pub const TEST_API_TOKEN: &str = "r8_test_nexus_fake_token";
/// The account signing secret: `whsec_` + base64 of the 32 bytes `nexus fake replicate signing key`.
pub const TEST_WEBHOOK_SECRET: &str = "whsec_bmV4dXMgZmFrZSByZXBsaWNhdGUgc2lnbmluZyBrZXk=";
/// A model version the fake knows.
pub const TEST_VERSION: &str = "5c7d5dc6dd8bf75c1acaa8565735e7986bc5b66206b55cca93cb72c9bf15ccaa";

/// How predictions end.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// `succeeded` with this output; `None` gives one image URL on the fake.
    Succeed(Option<Value>),
    /// `failed` with this error.
    Fail(String),
}

/// One request as the fake saw it.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    pub method: String,
    pub path: String,
    pub authorization: Option<String>,
    pub prefer: Option<String>,
    pub body: Value,
    pub status: u16,
}

/// One delivery attempt of a webhook.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub url: String,
    pub webhook_id: String,
    /// `start` or `completed`.
    pub event: String,
    pub prediction_id: String,
    /// The receiver's status, `None` if it could not be reached.
    pub status: Option<u16>,
}

struct Failure {
    status: u16,
    body: Value,
    retry_after: Option<u64>,
}

struct PredictionRec {
    obj: Value,
    webhook: Option<String>,
    /// Empty means every event.
    filter: Vec<String>,
    reads: u32,
}

struct State {
    base_url: String,
    predictions: BTreeMap<String, PredictionRec>,
    outcome: Outcome,
    reads_per_status: u32,
    failures: VecDeque<Failure>,
    log: Vec<RecordedRequest>,
    deliveries: Vec<Delivery>,
    http: reqwest::Client,
}

/// The fake Replicate server. Dropping it stops the server.
pub struct FakeReplicate {
    /// `http://127.0.0.1:port/v1`, for `ReplicateConfig::base_url`.
    pub base_url: String,
    state: Arc<Mutex<State>>,
    _server: FakeServer,
}

impl FakeReplicate {
    pub async fn start() -> FakeReplicate {
        // The fake sends webhooks with its own HTTP client, which needs the TLS provider.
        nexus_platform::install_crypto_provider();
        let state = Arc::new(Mutex::new(State {
            base_url: String::new(),
            predictions: BTreeMap::new(),
            outcome: Outcome::Succeed(None),
            reads_per_status: 1,
            failures: VecDeque::new(),
            log: Vec::new(),
            deliveries: Vec::new(),
            http: reqwest::Client::new(),
        }));
        let router = Router::new().fallback(handle).with_state(state.clone());
        let server = FakeServer::start(router).await;
        let base_url = format!("{}/v1", server.base_url);
        lock(&state).base_url = base_url.clone();
        FakeReplicate { base_url, state, _server: server }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// How predictions created from now on end.
    pub fn set_outcome(&self, outcome: Outcome) {
        self.state().outcome = outcome;
    }

    /// Reads (`GET`) per status step: with 1 (the default) the first read shows `processing`
    /// and the second the outcome; with 2 it takes two reads per step.
    pub fn set_reads_per_status(&self, n: u32) {
        self.state().reads_per_status = n.max(1);
    }

    /// The next `n` authorized requests get `status` with `body` (+ `Retry-After` seconds).
    pub fn fail_next(&self, n: usize, status: u16, body: Value, retry_after: Option<u64>) {
        let mut st = self.state();
        for _ in 0..n {
            st.failures.push_back(Failure { status, body: body.clone(), retry_after });
        }
    }

    /// Replicate's throttling answer.
    pub fn throttled_body(resets_in_secs: u64) -> Value {
        json!({"title": "Request was throttled",
            "detail": format!("Request was throttled. Your rate limit resets in ~{resets_in_secs}s."), "status": 429})
    }

    /// Ends a running prediction now with the configured outcome (sending its webhook).
    /// Panics if unknown.
    pub fn finish(&self, id: &str) {
        let mut st = self.state();
        let outcome = st.outcome.clone();
        let base = st.base_url.clone();
        let rec = st.predictions.get_mut(id).unwrap_or_else(|| panic!("no prediction {id}"));
        if is_terminal(&rec.obj) {
            return;
        }
        finish_rec(rec, &outcome, &base);
        let send = webhook_job(rec, "completed");
        drop(st);
        if let Some(job) = send {
            spawn_delivery(self.state.clone(), job);
        }
    }

    pub fn prediction(&self, id: &str) -> Option<Value> {
        self.state().predictions.get(id).map(|r| r.obj.clone())
    }

    pub fn prediction_count(&self) -> usize {
        self.state().predictions.len()
    }

    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.state().log.clone()
    }

    pub fn requests_to(&self, method: &str, path: &str) -> Vec<RecordedRequest> {
        self.state().log.iter().filter(|r| r.method == method && r.path == path).cloned().collect()
    }

    /// Every webhook delivery attempt so far.
    pub fn deliveries(&self) -> Vec<Delivery> {
        self.state().deliveries.clone()
    }
}

fn is_terminal(obj: &Value) -> bool {
    matches!(obj["status"].as_str(), Some("succeeded" | "failed" | "canceled"))
}

fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn finish_rec(rec: &mut PredictionRec, outcome: &Outcome, base: &str) {
    let id = rec.obj["id"].as_str().unwrap_or_default().to_string();
    if rec.obj["started_at"].is_null() {
        rec.obj["started_at"] = json!(now_rfc3339());
    }
    match outcome {
        Outcome::Succeed(output) => {
            rec.obj["status"] = json!("succeeded");
            // Files are named for the format the input asked for (PNG when it names none).
            let ext = rec.obj["input"]["output_format"].as_str().unwrap_or("png").to_owned();
            rec.obj["output"] = output.clone().unwrap_or_else(|| json!([format!("{base}/files/{id}/out-0.{ext}")]));
        }
        Outcome::Fail(error) => {
            rec.obj["status"] = json!("failed");
            rec.obj["error"] = json!(error);
        }
    }
    rec.obj["logs"] = json!("Running prediction...\nDone.");
    rec.obj["completed_at"] = json!(now_rfc3339());
    rec.obj["metrics"] = json!({"predict_time": 1.25, "total_time": 1.5});
}

struct WebhookJob {
    url: String,
    event: String,
    body: Vec<u8>,
    prediction_id: String,
}

fn webhook_job(rec: &PredictionRec, event: &str) -> Option<WebhookJob> {
    let url = rec.webhook.clone()?;
    if !rec.filter.is_empty() && !rec.filter.iter().any(|f| f == event) {
        return None;
    }
    Some(WebhookJob {
        url,
        event: event.into(),
        body: serde_json::to_vec(&rec.obj).unwrap_or_default(),
        prediction_id: rec.obj["id"].as_str().unwrap_or_default().into(),
    })
}

/// `v1,<base64(HMAC-SHA256(base64-decoded key after whsec_, "{id}.{ts}.{body}"))>`.
pub fn sign_webhook(secret: &str, webhook_id: &str, timestamp: i64, body: &[u8]) -> String {
    let key = STANDARD.decode(secret.trim_start_matches("whsec_")).expect("test secret is base64");
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &key);
    let mut signed = format!("{webhook_id}.{timestamp}.").into_bytes();
    signed.extend_from_slice(body);
    format!("v1,{}", STANDARD.encode(ring::hmac::sign(&key, &signed).as_ref()))
}

/// Up to 3 attempts, 100 ms apart, the same `webhook-id` each time, signed anew.
fn spawn_delivery(state: Arc<Mutex<State>>, job: WebhookJob) {
    let http = lock(&state).http.clone();
    tokio::spawn(async move {
        let webhook_id = format!("msg_{}", random_id(27));
        for _ in 0..3 {
            let ts = chrono::Utc::now().timestamp();
            let sig = sign_webhook(TEST_WEBHOOK_SECRET, &webhook_id, ts, &job.body);
            let sent = http
                .post(&job.url)
                .header("content-type", "application/json")
                .header("webhook-id", &webhook_id)
                .header("webhook-timestamp", ts.to_string())
                .header("webhook-signature", sig)
                .header("user-agent", "Replicate-Webhook/fake")
                .body(job.body.clone())
                .timeout(Duration::from_secs(5))
                .send()
                .await;
            let status = sent.ok().map(|r| r.status().as_u16());
            lock(&state).deliveries.push(Delivery {
                url: job.url.clone(),
                webhook_id: webhook_id.clone(),
                event: job.event.clone(),
                prediction_id: job.prediction_id.clone(),
                status,
            });
            if status.is_some_and(|s| (200..300).contains(&s)) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
}

fn random_id(len: usize) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    (0..len).map(|_| ALPHABET[rand::random_range(0..ALPHABET.len())] as char).collect()
}

fn problem(status: u16, title: &str, detail: &str) -> (u16, Value) {
    (status, json!({"title": title, "detail": detail, "status": status}))
}

async fn handle(
    AxState(state): AxState<Arc<Mutex<State>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let hdr = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(String::from);
    let parsed: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let mut rec = RecordedRequest {
        method: method.to_string(),
        path: uri.path().to_string(),
        authorization: hdr("authorization"),
        prefer: hdr("prefer"),
        body: parsed,
        status: 0,
    };
    let mut jobs = Vec::new();
    let (status, answer, retry_after) = {
        let mut st = lock(&state);
        let (status, answer, retry_after) = route(&mut st, &rec, &body, &mut jobs);
        rec.status = status;
        st.log.push(rec);
        (status, answer, retry_after)
    };
    for job in jobs {
        spawn_delivery(state.clone(), job);
    }
    let mut resp = Response::builder()
        .status(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header(header::CONTENT_TYPE, if status < 300 { "application/json" } else { "application/problem+json" });
    if let Some(s) = retry_after {
        resp = resp.header(header::RETRY_AFTER, s.to_string());
    }
    resp.body(Body::from(answer.to_string())).expect("valid response")
}

fn route(st: &mut State, rec: &RecordedRequest, raw: &[u8], jobs: &mut Vec<WebhookJob>) -> (u16, Value, Option<u64>) {
    let plain = |(s, v): (u16, Value)| (s, v, None);
    let authorized =
        rec.authorization.as_deref().and_then(|a| a.strip_prefix("Bearer ")).is_some_and(|t| t == TEST_API_TOKEN);
    if !authorized {
        return plain(problem(401, "Unauthenticated", "You did not pass a valid authentication token"));
    }
    if let Some(f) = st.failures.pop_front() {
        return (f.status, f.body, f.retry_after);
    }
    let segs: Vec<&str> = rec.path.trim_start_matches('/').split('/').collect();
    match (rec.method.as_str(), segs.as_slice()) {
        ("POST", ["v1", "predictions"]) => plain(st.create(rec, raw, None, jobs)),
        ("POST", ["v1", "models" | "deployments", owner, name, "predictions"]) => {
            plain(st.create(rec, raw, Some(format!("{owner}/{name}")), jobs))
        }
        ("GET", ["v1", "predictions", id]) => plain(st.read(id, jobs)),
        ("POST", ["v1", "predictions", id, "cancel"]) => plain(st.cancel(id, jobs)),
        ("GET", ["v1", "webhooks", "default", "secret"]) => (200, json!({"key": TEST_WEBHOOK_SECRET}), None),
        _ => plain(problem(404, "Not found", "Not found.")),
    }
}

impl State {
    fn create(
        &mut self,
        rec: &RecordedRequest,
        raw: &[u8],
        model: Option<String>,
        jobs: &mut Vec<WebhookJob>,
    ) -> (u16, Value) {
        let Ok(Value::Object(body)) = serde_json::from_slice::<Value>(raw) else {
            return problem(400, "Invalid JSON", "The request body is not a JSON object.");
        };
        let version = match &model {
            Some(_) => json!("hidden"),
            None => match body.get("version").and_then(Value::as_str) {
                Some(v) if v == TEST_VERSION || v.ends_with(&format!(":{TEST_VERSION}")) => json!(TEST_VERSION),
                _ => {
                    return problem(
                        422,
                        "Invalid version or not permitted",
                        "The specified version does not exist (or perhaps you don't have permission to use it?)",
                    );
                }
            },
        };
        let Some(input) = body.get("input").filter(|i| i.is_object()) else {
            return (
                422,
                json!({"title": "Input validation failed", "detail": "- input is required", "status": 422,
                    "invalid_fields": [{"type": "required", "field": "input", "description": "input is required"}]}),
            );
        };
        if input["prompt"].as_str().is_none_or(|p| p.trim().is_empty()) {
            return (
                422,
                json!({"title": "Input validation failed", "detail": "- prompt: prompt is required", "status": 422,
                    "invalid_fields": [{"type": "required", "field": "prompt", "description": "prompt is required"}]}),
            );
        }
        let webhook = match body.get("webhook") {
            None | Some(Value::Null) => None,
            Some(Value::String(u)) if u.starts_with("https://") || u.starts_with("http://") => Some(u.clone()),
            Some(_) => return problem(422, "Invalid webhook", "webhook must be a valid URL"),
        };
        let mut filter = Vec::new();
        if let Some(f) = body.get("webhook_events_filter") {
            let ok = f.as_array().is_some_and(|a| {
                a.iter().all(|e| matches!(e.as_str(), Some("start" | "output" | "logs" | "completed")))
            });
            if !ok {
                return problem(
                    422,
                    "Invalid webhook_events_filter",
                    "webhook_events_filter must list start, output, logs or completed",
                );
            }
            filter = f.as_array().into_iter().flatten().filter_map(Value::as_str).map(String::from).collect();
        }
        let id = random_id(26);
        let obj = json!({
            "id": id,
            "model": model.unwrap_or_else(|| "nexus/fake-image-model".into()),
            "version": version,
            "input": input,
            "logs": "",
            "output": null,
            "data_removed": false,
            "error": null,
            "status": "starting",
            "created_at": now_rfc3339(),
            "started_at": null,
            "completed_at": null,
            "urls": {
                "get": format!("{}/predictions/{id}", self.base_url),
                "cancel": format!("{}/predictions/{id}/cancel", self.base_url),
                "stream": null,
                "web": format!("https://replicate.com/p/{id}"),
            },
            "metrics": {},
        });
        let mut p = PredictionRec { obj, webhook, filter, reads: 0 };
        jobs.extend(webhook_job(&p, "start"));
        // `Prefer: wait`: the fake model is instant, so the answer is final.
        if rec.prefer.as_deref().is_some_and(|p| p.trim().starts_with("wait")) {
            finish_rec(&mut p, &self.outcome, &self.base_url);
            jobs.extend(webhook_job(&p, "completed"));
        }
        let answer = p.obj.clone();
        self.predictions.insert(id, p);
        (201, answer)
    }

    fn read(&mut self, id: &str, jobs: &mut Vec<WebhookJob>) -> (u16, Value) {
        let outcome = self.outcome.clone();
        let per = self.reads_per_status;
        let base = self.base_url.clone();
        let Some(p) = self.predictions.get_mut(id) else {
            return problem(404, "Not found", "Not found.");
        };
        if !is_terminal(&p.obj) {
            p.reads += 1;
            if p.reads % per == 0 {
                if p.obj["status"] == "starting" {
                    p.obj["status"] = json!("processing");
                    p.obj["started_at"] = json!(now_rfc3339());
                    p.obj["logs"] = json!("Running prediction...");
                } else {
                    finish_rec(p, &outcome, &base);
                    jobs.extend(webhook_job(p, "completed"));
                }
            }
        }
        (200, p.obj.clone())
    }

    fn cancel(&mut self, id: &str, jobs: &mut Vec<WebhookJob>) -> (u16, Value) {
        let Some(p) = self.predictions.get_mut(id) else {
            return problem(404, "Not found", "Not found.");
        };
        if !is_terminal(&p.obj) {
            p.obj["status"] = json!("canceled");
            p.obj["completed_at"] = json!(now_rfc3339());
            jobs.extend(webhook_job(p, "completed"));
        }
        (200, p.obj.clone())
    }
}

// ---------------------------------------------------------------------------------------------
// A webhook receiver

/// One request the sink received.
#[derive(Debug, Clone)]
pub struct ReceivedWebhook {
    pub method: String,
    pub path: String,
    /// Raw query string (no `?`).
    pub query: String,
    /// Lower-case names; repeated headers joined with ", " (as the gateway forwards them).
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
}

struct SinkState {
    received: Vec<ReceivedWebhook>,
    /// Statuses to answer, in order; then 204.
    answers: VecDeque<u16>,
}

/// An HTTP server on port 0 that records every request and answers 204 (or scripted statuses).
pub struct WebhookSink {
    /// `http://127.0.0.1:port`.
    pub base_url: String,
    state: Arc<Mutex<SinkState>>,
    _server: FakeServer,
}

impl WebhookSink {
    pub async fn start() -> WebhookSink {
        let state = Arc::new(Mutex::new(SinkState { received: Vec::new(), answers: VecDeque::new() }));
        let router = Router::new().fallback(sink_handle).with_state(state.clone());
        let server = FakeServer::start(router).await;
        WebhookSink { base_url: server.base_url.clone(), state, _server: server }
    }

    /// `base_url` + `path_and_query`.
    pub fn url(&self, path_and_query: &str) -> String {
        format!("{}{path_and_query}", self.base_url)
    }

    /// The next requests are answered with these statuses (then 204 again).
    pub fn answer_with(&self, statuses: &[u16]) {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).answers.extend(statuses);
    }

    pub fn received(&self) -> Vec<ReceivedWebhook> {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).received.clone()
    }

    /// Waits until at least `n` requests arrived (or `timeout`), then returns them all.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<ReceivedWebhook> {
        crate::eventually(timeout, || async { self.received().len() >= n }).await;
        self.received()
    }
}

async fn sink_handle(
    AxState(state): AxState<Arc<Mutex<SinkState>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let mut map: HashMap<String, String> = HashMap::new();
    for (k, v) in &headers {
        let v = String::from_utf8_lossy(v.as_bytes()).into_owned();
        map.entry(k.as_str().to_string()).and_modify(|e| *e = format!("{e}, {v}")).or_insert(v);
    }
    let mut st = state.lock().unwrap_or_else(|p| p.into_inner());
    st.received.push(ReceivedWebhook {
        method: method.to_string(),
        path: uri.path().to_string(),
        query: uri.query().unwrap_or_default().to_string(),
        headers: map,
        body: body.to_vec(),
    });
    st.answers.pop_front().and_then(|s| StatusCode::from_u16(s).ok()).unwrap_or(StatusCode::NO_CONTENT)
}
