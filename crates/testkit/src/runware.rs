//! A fake Runware REST task API on port 0 (`reference/providers.md` §5).
//!
//! It behaves like the contract where a client depends on it: `POST /v1` with a JSON array of
//! tasks, authenticated by `Authorization: Bearer <key>` or a leading
//! `{"taskType":"authentication","apiKey":…}` task (401 `invalidApiKey` otherwise); each task
//! answered on its own — results in `data` (one element per image, with our `taskUUID`), refusals
//! in `errors` (`code`, `message`, `parameter`, `taskType`, `taskUUID`), 400 when every task
//! failed, 200 with both arrays when only some did. `imageInference` is validated (UUID, prompt
//! length, AIR model id, sizes in multiples of 64, result count, output type/format, unknown
//! parameters); `includeCost` adds a `cost`; `outputType` picks URL, base64 or data URI.
//! With `webhookURL` the answer is an immediate acknowledgement and each image is POSTed to
//! that URL as `{"data":[…]}` (redelivered on non-2xx); with `deliveryMethod: "async"` the
//! results are read with `getResponse` (first `processing`, then `success`).
//!
//! Test knobs: [`FakeRunware::fail_next`] (status, body, `Retry-After`),
//! [`FakeRunware::refuse_prompts_containing`] (a task-level error), request log and webhook
//! delivery log.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State as AxState;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value, json};

use crate::FakeServer;
use crate::fake::lock;

/// The key the fake accepts.
pub const TEST_API_KEY: &str = "rw_test_nexus_fake_key";
/// Cost per image in dollars, as the fake reports it.
pub const COST_PER_IMAGE: &str = "0.0038";

/// One request as the fake saw it.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    pub path: String,
    pub authorization: Option<String>,
    pub body: Value,
    pub status: u16,
}

/// One webhook delivery attempt.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub url: String,
    pub task_uuid: String,
    pub status: Option<u16>,
}

struct Failure {
    status: u16,
    body: Value,
    retry_after: Option<u64>,
}

struct State {
    base_url: String,
    failures: VecDeque<Failure>,
    refused_words: Vec<(String, String, String)>,
    /// Async results by task: the items and how many times they were read.
    pending: HashMap<String, (Vec<Value>, u32)>,
    log: Vec<RecordedRequest>,
    deliveries: Vec<Delivery>,
    http: reqwest::Client,
}

/// The fake server. Dropping it stops the server.
pub struct FakeRunware {
    /// `http://127.0.0.1:port/v1`, for `RunwareConfig::base_url`.
    pub base_url: String,
    state: Arc<Mutex<State>>,
    _server: FakeServer,
}

impl FakeRunware {
    pub async fn start() -> FakeRunware {
        // The fake sends webhooks with its own HTTP client, which needs the TLS provider.
        nexus_platform::install_crypto_provider();
        let state = Arc::new(Mutex::new(State {
            base_url: String::new(),
            failures: VecDeque::new(),
            refused_words: Vec::new(),
            pending: HashMap::new(),
            log: Vec::new(),
            deliveries: Vec::new(),
            http: reqwest::Client::new(),
        }));
        let router = Router::new().fallback(handle).with_state(state.clone());
        let server = FakeServer::start(router).await;
        let base_url = format!("{}/v1", server.base_url);
        lock(&state).base_url = base_url.clone();
        FakeRunware { base_url, state, _server: server }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// The next `n` authenticated requests get `status` with `body` (+ `Retry-After` seconds).
    pub fn fail_next(&self, n: usize, status: u16, body: Value, retry_after: Option<u64>) {
        let mut st = self.state();
        for _ in 0..n {
            st.failures.push_back(Failure { status, body: body.clone(), retry_after });
        }
    }

    /// `{"errors":[{code, message}]}`.
    pub fn errors_body(code: &str, message: &str) -> Value {
        json!({"errors": [{"code": code, "message": message}]})
    }

    /// Tasks whose prompt contains `word` fail with `code`/`message` (parameter `positivePrompt`).
    pub fn refuse_prompts_containing(&self, word: &str, code: &str, message: &str) {
        self.state().refused_words.push((word.to_lowercase(), code.into(), message.into()));
    }

    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.state().log.clone()
    }

    pub fn deliveries(&self) -> Vec<Delivery> {
        self.state().deliveries.clone()
    }
}

async fn handle(
    AxState(state): AxState<Arc<Mutex<State>>>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let parsed: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let mut rec = RecordedRequest {
        path: uri.path().to_string(),
        authorization: headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).map(String::from),
        body: parsed.clone(),
        status: 0,
    };
    let mut webhooks = Vec::new();
    let (status, answer, retry_after) = {
        let mut st = lock(&state);
        let out = st.answer(&rec, &parsed, &mut webhooks);
        rec.status = out.0;
        st.log.push(rec);
        out
    };
    for (url, task_uuid, item) in webhooks {
        spawn_delivery(state.clone(), url, task_uuid, item);
    }
    let mut resp = Response::builder()
        .status(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header(header::CONTENT_TYPE, "application/json");
    if let Some(s) = retry_after {
        resp = resp.header(header::RETRY_AFTER, s.to_string());
    }
    resp.body(Body::from(answer.to_string())).expect("valid response")
}

/// POSTs `{"data":[item]}`; up to 3 attempts 100 ms apart.
fn spawn_delivery(state: Arc<Mutex<State>>, url: String, task_uuid: String, item: Value) {
    let http = lock(&state).http.clone();
    tokio::spawn(async move {
        let body = json!({ "data": [item] }).to_string();
        for _ in 0..3 {
            let sent = http
                .post(&url)
                .header("content-type", "application/json")
                .body(body.clone())
                .timeout(Duration::from_secs(5))
                .send()
                .await;
            let status = sent.ok().map(|r| r.status().as_u16());
            lock(&state).deliveries.push(Delivery { url: url.clone(), task_uuid: task_uuid.clone(), status });
            if status.is_some_and(|s| (200..300).contains(&s)) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
}

type Webhooks = Vec<(String, String, Value)>;

fn task_error(code: &str, message: &str, parameter: Option<&str>, task: &Value) -> Value {
    let mut e = json!({"code": code, "message": message,
        "documentation": "https://runware.ai/docs/en/image-inference/api-reference"});
    if let Some(p) = parameter {
        e["parameter"] = json!(p);
    }
    if let Some(t) = task.get("taskType") {
        e["taskType"] = t.clone();
    }
    if let Some(u) = task.get("taskUUID") {
        e["taskUUID"] = u.clone();
    }
    e
}

impl State {
    fn answer(&mut self, rec: &RecordedRequest, body: &Value, webhooks: &mut Webhooks) -> (u16, Value, Option<u64>) {
        if rec.path.trim_end_matches('/') != "/v1" {
            return (404, FakeRunware::errors_body("notFound", "Not found."), None);
        }
        let Some(tasks) = body.as_array() else {
            return (
                400,
                FakeRunware::errors_body("invalidRequestBody", "The request body must be a JSON array of tasks."),
                None,
            );
        };
        let mut tasks: Vec<&Value> = tasks.iter().collect();
        let bearer = rec.authorization.as_deref().and_then(|a| a.strip_prefix("Bearer "));
        let mut key_ok = bearer == Some(TEST_API_KEY);
        if tasks.first().is_some_and(|t| t["taskType"] == "authentication") {
            key_ok = tasks[0]["apiKey"] == TEST_API_KEY;
            tasks.remove(0);
        }
        if !key_ok {
            let e = json!({"errors": [{"code": "invalidApiKey",
                "message": "Invalid API key. Get one at https://my.runware.ai/signup",
                "parameter": "apiKey", "taskType": "authentication"}]});
            return (401, e, None);
        }
        if let Some(f) = self.failures.pop_front() {
            return (f.status, f.body, f.retry_after);
        }
        let mut data = Vec::new();
        let mut errors = Vec::new();
        for task in tasks {
            match task["taskType"].as_str() {
                Some("imageInference") => match self.image_inference(task, webhooks) {
                    Ok(items) => data.extend(items),
                    Err(e) => errors.push(e),
                },
                Some("getResponse") => match self.get_response(task) {
                    Ok(items) => data.extend(items),
                    Err(e) => errors.push(e),
                },
                Some("ping") => data.push(json!({"taskType": "ping", "pong": true})),
                _ => errors.push(task_error("unsupportedTaskType", "Unsupported task type.", Some("taskType"), task)),
            }
        }
        let mut out = Map::new();
        let status = if data.is_empty() && !errors.is_empty() { 400 } else { 200 };
        if !data.is_empty() || errors.is_empty() {
            out.insert("data".into(), Value::Array(data));
        }
        if !errors.is_empty() {
            out.insert("errors".into(), Value::Array(errors));
        }
        (status, Value::Object(out), None)
    }

    fn image_inference(&mut self, t: &Value, webhooks: &mut Webhooks) -> Result<Vec<Value>, Value> {
        const KNOWN: &[&str] = &[
            "taskType",
            "taskUUID",
            "positivePrompt",
            "negativePrompt",
            "model",
            "width",
            "height",
            "numberResults",
            "steps",
            "CFGScale",
            "seed",
            "outputType",
            "outputFormat",
            "outputQuality",
            "includeCost",
            "checkNSFW",
            "deliveryMethod",
            "webhookURL",
            "ttl",
            "scheduler",
        ];
        let err = |code: &str, msg: &str, param: &str| task_error(code, msg, Some(param), t);
        if let Some(k) = t.as_object().and_then(|m| m.keys().find(|k| !KNOWN.contains(&k.as_str()))) {
            return Err(err("unsupportedParameter", &format!("Unsupported parameter: {k}."), k));
        }
        let uuid_ok = t["taskUUID"].as_str().and_then(|u| uuid::Uuid::parse_str(u).ok()).is_some();
        if !uuid_ok {
            return Err(err("invalidTaskUUID", "Invalid value for taskUUID. It must be a valid UUID v4.", "taskUUID"));
        }
        let task_uuid = t["taskUUID"].as_str().unwrap_or_default().to_string();
        let prompt = t["positivePrompt"].as_str().unwrap_or_default();
        if !(2..=3000).contains(&prompt.trim().chars().count()) {
            return Err(err(
                "invalidPositivePrompt",
                "Invalid value for positivePrompt. It must be a string between 2 and 3000 characters.",
                "positivePrompt",
            ));
        }
        let lower = prompt.to_lowercase();
        if let Some((_, code, message)) = self.refused_words.iter().find(|(w, _, _)| lower.contains(w.as_str())) {
            return Err(err(code, message, "positivePrompt"));
        }
        let model_ok = t["model"].as_str().is_some_and(|m| {
            let Some((source, rest)) = m.split_once(':') else { return false };
            let Some((id, version)) = rest.split_once('@') else { return false };
            let part =
                |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
            part(source) && part(id) && part(version)
        });
        if !model_ok {
            return Err(err("invalidModel", "Invalid value for model. It must be a valid AIR identifier.", "model"));
        }
        for dim in ["width", "height"] {
            let ok = t[dim].as_u64().is_some_and(|v| (128..=2048).contains(&v) && v % 64 == 0);
            if !ok {
                let code = if dim == "width" { "invalidWidth" } else { "invalidHeight" };
                return Err(err(
                    code,
                    &format!("Invalid value for {dim}. It must be a multiple of 64 between 128 and 2048."),
                    dim,
                ));
            }
        }
        let n = match t.get("numberResults") {
            None => 1,
            Some(v) => match v.as_u64().filter(|n| (1..=20).contains(n)) {
                Some(n) => n,
                None => {
                    return Err(err(
                        "invalidNumberResults",
                        "Invalid value for numberResults. It must be between 1 and 20.",
                        "numberResults",
                    ));
                }
            },
        };
        let output_type = t["outputType"].as_str().unwrap_or("URL");
        if !["URL", "base64Data", "dataURI"].contains(&output_type) {
            return Err(err("invalidOutputType", "Invalid value for outputType.", "outputType"));
        }
        let format = t["outputFormat"].as_str().unwrap_or("JPG");
        let (ext, mime) = match format {
            "JPG" => ("jpg", "image/jpeg"),
            "PNG" => ("png", "image/png"),
            "WEBP" => ("webp", "image/webp"),
            _ => return Err(err("invalidOutputFormat", "Invalid value for outputFormat.", "outputFormat")),
        };
        let delivery = t["deliveryMethod"].as_str().unwrap_or("sync");
        if !["sync", "async"].contains(&delivery) {
            return Err(err("invalidDeliveryMethod", "Invalid value for deliveryMethod.", "deliveryMethod"));
        }
        let webhook = match t.get("webhookURL") {
            None | Some(Value::Null) => None,
            Some(Value::String(u)) if url::Url::parse(u).is_ok() => Some(u.clone()),
            Some(_) => return Err(err("invalidWebhookURL", "Invalid value for webhookURL.", "webhookURL")),
        };

        let items: Vec<Value> = (0..n)
            .map(|i| {
                let image_uuid = uuid::Uuid::new_v4().to_string();
                let seed = t["seed"].as_u64().map(|s| s + i).unwrap_or_else(|| rand::random_range(1..1_000_000_000));
                let mut item = json!({"taskType": "imageInference", "taskUUID": task_uuid, "imageUUID": image_uuid,
                    "seed": seed, "NSFWContent": false});
                // Not a picture, but it starts as one of its format does (readers sniff it).
                let magic: &[u8] = match format {
                    "JPG" => b"\xFF\xD8\xFF\xE0",
                    "PNG" => b"\x89PNG\r\n\x1a\n",
                    _ => b"RIFF\0\0\0\0WEBP",
                };
                let bytes = [magic, format!("fake {format} image {image_uuid}").as_bytes()].concat();
                match output_type {
                    "base64Data" => item["imageBase64Data"] = json!(STANDARD.encode(&bytes)),
                    "dataURI" => {
                        item["imageDataURI"] = json!(format!("data:{mime};base64,{}", STANDARD.encode(&bytes)))
                    }
                    _ => item["imageURL"] = json!(format!("{}/images/{image_uuid}.{ext}", self.base_url)),
                }
                if t["includeCost"] == json!(true) {
                    item["cost"] = serde_json::from_str(COST_PER_IMAGE).expect("a JSON number");
                }
                item
            })
            .collect();

        let ack = json!({"taskType": "imageInference", "taskUUID": task_uuid});
        if let Some(url) = webhook {
            for item in items {
                webhooks.push((url.clone(), task_uuid.clone(), item));
            }
            return Ok(vec![ack]);
        }
        if delivery == "async" {
            self.pending.insert(task_uuid, (items, 0));
            return Ok(vec![ack]);
        }
        Ok(items)
    }

    fn get_response(&mut self, t: &Value) -> Result<Vec<Value>, Value> {
        let id = t["taskUUID"].as_str().unwrap_or_default();
        let Some((items, reads)) = self.pending.get_mut(id) else {
            return Err(task_error("taskNotFound", "No task found with this taskUUID.", Some("taskUUID"), t));
        };
        *reads += 1;
        if *reads == 1 {
            return Ok(vec![json!({"taskType": "imageInference", "taskUUID": id, "status": "processing"})]);
        }
        Ok(items
            .iter()
            .map(|i| {
                let mut i = i.clone();
                i["status"] = json!("success");
                i
            })
            .collect())
    }
}
