//! A fake WhatsApp Cloud API on port 0 (`reference/providers.md` §6).
//!
//! Like the contract where a client depends on it: `POST /{phone_number_id}/messages` with
//! `Authorization: Bearer <token>` (190 `OAuthException` for another token), the body checked
//! for `messaging_product: whatsapp`, `to` and a known `type` (100 otherwise), the accepted
//! answer `{"messaging_product","contacts":[{"input","wa_id"}],"messages":[{"id":"wamid…"}]}`,
//! and error bodies `{"error":{"message","type","code","error_data":{"details"},"fbtrace_id"}}`.
//!
//! Media: `GET /{media_id}` answers `{"url","mime_type","sha256","file_size","id"}` and
//! `GET /media-download/{media_id}` the bytes, both only with the bearer; a test adds files (or
//! a lying checksum), scripts failures of the next downloads and counts them.
//! A number's standing, `GET /{phone_number_id}?fields=…`: every digits id is a known number
//! (GREEN, TIER_1K) unless the test changed it or made Meta forget it (100 then); 190 for
//! another token.
//!
//! Throttling: a per-number throughput limit (130429 above it, off unless set), and a share of
//! calls answered 130429 at random (`throttle_share`), plus scripted failures for the next calls.
//! Throttled and refused calls deliver nothing. Accepted messages are counted per recipient so a
//! test can assert that every recipient got exactly one.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State as AxState;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::Response;
use serde_json::{Value, json};

use crate::FakeServer;
use crate::fake::lock;

/// The access token the fake accepts.
pub const TEST_TOKEN: &str = "EAAG-fake-whatsapp-token";
/// The phone number id tests connect.
pub const TEST_PHONE_NUMBER_ID: &str = "106540352242922";

/// A message the fake accepted.
#[derive(Debug, Clone)]
pub struct Accepted {
    pub wamid: String,
    pub phone_number_id: String,
    pub to: String,
    pub body: Value,
}

struct State {
    accepted: Vec<Accepted>,
    per_recipient: HashMap<String, usize>,
    scripted: VecDeque<(u16, i64)>,
    throttle_share: f64,
    limit_per_second: Option<u32>,
    window: (Instant, u32),
    requests: usize,
    throttled: usize,
    delay: Duration,
    /// (waba id, template object as GET lists it)
    templates: Vec<(String, Value)>,
    media: HashMap<String, Media>,
    /// HTTP statuses answered by the next media calls (metadata or bytes).
    media_failures: VecDeque<u16>,
    media_downloads: usize,
    /// Where media URLs point.
    base_url: String,
    /// Keep each accepted message (off: only counted, for runs of 100,000 sends).
    keep_accepted: bool,
    accepted_count: usize,
    /// phone number id -> (quality rating, messaging tier), where a test set them.
    numbers: HashMap<String, (String, String)>,
    /// Ids Meta answers 100 for.
    unknown: std::collections::HashSet<String>,
    /// Standing reads seen.
    reads: usize,
}

/// A file the fake serves as inbound media.
#[derive(Debug, Clone)]
struct Media {
    mime_type: String,
    /// What the metadata reports (a test may make it lie).
    sha256: String,
    data: Bytes,
}

pub struct FakeWhatsApp {
    /// `http://127.0.0.1:port`, for the client's base URL.
    pub base_url: String,
    state: Arc<Mutex<State>>,
    _server: FakeServer,
}

impl FakeWhatsApp {
    pub async fn start() -> FakeWhatsApp {
        let state = Arc::new(Mutex::new(State {
            accepted: Vec::new(),
            per_recipient: HashMap::new(),
            scripted: VecDeque::new(),
            throttle_share: 0.0,
            limit_per_second: None,
            window: (Instant::now(), 0),
            requests: 0,
            throttled: 0,
            delay: Duration::ZERO,
            templates: Vec::new(),
            media: HashMap::new(),
            media_failures: VecDeque::new(),
            media_downloads: 0,
            base_url: String::new(),
            keep_accepted: true,
            accepted_count: 0,
            numbers: HashMap::new(),
            unknown: Default::default(),
            reads: 0,
        }));
        let router = Router::new().fallback(handle).with_state(state.clone());
        let server = FakeServer::start(router).await;
        lock(&state).base_url = server.base_url.clone();
        FakeWhatsApp { base_url: server.base_url.clone(), state, _server: server }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// Answers this share (0..1) of send calls with 130429, at random.
    pub fn throttle_share(&self, share: f64) {
        self.state().throttle_share = share.clamp(0.0, 1.0);
    }

    /// Refuses sends above `n` per second per fake (130429), as Meta does per number.
    pub fn limit_per_second(&self, n: Option<u32>) {
        self.state().limit_per_second = n;
    }

    /// Waits this long before answering each send (after deciding it).
    pub fn set_delay(&self, d: Duration) {
        self.state().delay = d;
    }

    /// The next `n` sends are answered with HTTP `status` and Meta error `code`.
    pub fn fail_next(&self, n: usize, status: u16, code: i64) {
        let mut st = self.state();
        for _ in 0..n {
            st.scripted.push_back((status, code));
        }
    }

    /// Whether accepted messages are kept for [`FakeWhatsApp::accepted`] (they are by default);
    /// off, they are only counted, so a benchmark's memory is the sender's and not the fake's.
    pub fn keep_accepted(&self, keep: bool) {
        self.state().keep_accepted = keep;
    }

    /// Messages accepted so far, kept or not.
    pub fn accepted_count(&self) -> usize {
        self.state().accepted_count
    }

    /// Every accepted message, oldest first.
    pub fn accepted(&self) -> Vec<Accepted> {
        self.state().accepted.clone()
    }

    /// Messages accepted for `to` (digits, as sent).
    pub fn count_to(&self, to: &str) -> usize {
        self.state().per_recipient.get(to).copied().unwrap_or(0)
    }

    /// Accepted messages per recipient.
    pub fn per_recipient(&self) -> HashMap<String, usize> {
        self.state().per_recipient.clone()
    }

    /// Send calls seen (accepted or not).
    pub fn requests(&self) -> usize {
        self.state().requests
    }

    /// Plays Meta's review: the template `name` gets `status` (APPROVED, REJECTED, PAUSED, …).
    pub fn set_template_status(&self, name: &str, status: &str, reason: Option<&str>) {
        for (_, t) in self.state().templates.iter_mut().filter(|(_, t)| t["name"] == name) {
            t["status"] = json!(status);
            t["rejected_reason"] = reason.map_or(Value::Null, |r| json!(r));
        }
    }

    /// Templates submitted and not deleted: (waba id, object).
    pub fn templates(&self) -> Vec<(String, Value)> {
        self.state().templates.clone()
    }

    /// Serves `data` as an inbound media file; answers its media id (digits, like Meta's).
    pub fn add_media(&self, mime_type: &str, data: &[u8]) -> String {
        let sha = hex::encode(ring::digest::digest(&ring::digest::SHA256, data));
        self.add_media_claiming(mime_type, data, &sha)
    }

    /// Serves `data` while the metadata reports `sha256` (a mismatch when it is not the bytes').
    pub fn add_media_claiming(&self, mime_type: &str, data: &[u8], sha256: &str) -> String {
        let mut st = self.state();
        let id = format!("{}", 7_000_000_000_u64 + st.media.len() as u64);
        let media =
            Media { mime_type: mime_type.to_owned(), sha256: sha256.to_owned(), data: Bytes::copy_from_slice(data) };
        st.media.insert(id.clone(), media);
        id
    }

    /// The next `n` media calls (metadata or bytes) are answered with HTTP `status`.
    pub fn fail_next_media(&self, n: usize, status: u16) {
        let mut st = self.state();
        for _ in 0..n {
            st.media_failures.push_back(status);
        }
    }

    /// Media bytes served (whole files).
    pub fn media_downloads(&self) -> usize {
        self.state().media_downloads
    }

    /// Meta now reports this rating and tier for the number.
    pub fn set_number_state(&self, phone_number_id: &str, quality: &str, tier: &str) {
        self.state().numbers.insert(phone_number_id.to_owned(), (quality.to_owned(), tier.to_owned()));
    }

    /// Meta answers 100 (unknown object) for the number from now on.
    pub fn forget_number(&self, phone_number_id: &str) {
        self.state().unknown.insert(phone_number_id.to_owned());
    }

    /// Standing reads (`GET /{phone_number_id}`) seen, answered or refused.
    pub fn number_reads(&self) -> usize {
        self.state().reads
    }

    /// Send calls answered 130429.
    pub fn throttled(&self) -> usize {
        self.state().throttled
    }
}

fn error(status: u16, code: i64, message: &str) -> Response {
    let body = json!({"error": {
        "message": format!("(#{code}) {message}"),
        "type": "OAuthException",
        "code": code,
        "error_data": {"messaging_product": "whatsapp", "details": message},
        "fbtrace_id": "AFakeTrace"
    }});
    Response::builder()
        .status(StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .unwrap_or_default()
}

const TYPES: &[&str] = &[
    "text",
    "template",
    "image",
    "video",
    "audio",
    "document",
    "sticker",
    "interactive",
    "location",
    "contacts",
    "reaction",
];

async fn handle(
    AxState(state): AxState<Arc<Mutex<State>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let parts: Vec<&str> = uri.path().trim_matches('/').split('/').collect();
    if method == Method::GET
        && let Some(answer) = media(&state, &parts, &headers)
    {
        return answer;
    }
    if let [.., waba, "message_templates"] = parts.as_slice() {
        return templates(&state, &method, waba, uri.query().unwrap_or_default(), &headers, &body);
    }
    // A number's standing is read with `fields`; a bare object id is a media id (unknown: 100).
    if method == Method::GET
        && uri.query().is_some_and(|q| q.contains("fields="))
        && let [.., phone] = parts.as_slice()
        && !phone.is_empty()
        && phone.bytes().all(|b| b.is_ascii_digit())
    {
        return number_state(&state, phone, &headers);
    }
    // The client's base URL may carry the version (`/v25.0`); the last two parts decide.
    let [.., phone, "messages"] = parts.as_slice() else { return error(404, 100, "Unknown path") };
    if method != Method::POST {
        return error(405, 100, "Unsupported method");
    }
    let phone = (*phone).to_owned();
    let auth = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).unwrap_or_default();
    if auth != format!("Bearer {TEST_TOKEN}") {
        return error(401, 190, "Error validating access token");
    }
    let Ok(msg) = serde_json::from_slice::<Value>(&body) else { return error(400, 100, "Invalid JSON") };
    let to = msg.get("to").and_then(Value::as_str).unwrap_or_default().to_owned();
    let kind = msg.get("type").and_then(Value::as_str).unwrap_or("text");
    if msg.get("messaging_product").and_then(Value::as_str) != Some("whatsapp")
        || to.is_empty()
        || !TYPES.contains(&kind)
        || msg.get(kind).is_none()
    {
        return error(400, 100, "Invalid parameter");
    }
    let (decision, delay) = {
        let mut st = lock(&state);
        st.requests += 1;
        let now = Instant::now();
        if now.duration_since(st.window.0) >= Duration::from_secs(1) {
            st.window = (now, 0);
        }
        st.window.1 += 1;
        let over = st.limit_per_second.is_some_and(|n| st.window.1 > n);
        let share = st.throttle_share;
        let decision = if let Some((status, code)) = st.scripted.pop_front() {
            Err((status, code))
        } else if over || (share > 0.0 && rand::random::<f64>() < share) {
            Err((400, 130_429))
        } else {
            let wamid = format!("wamid.{}", uuid::Uuid::new_v4().simple());
            st.accepted_count += 1;
            if st.keep_accepted {
                st.accepted.push(Accepted {
                    wamid: wamid.clone(),
                    phone_number_id: phone,
                    to: to.clone(),
                    body: msg.clone(),
                });
            }
            *st.per_recipient.entry(to.clone()).or_default() += 1;
            Ok(wamid)
        };
        if matches!(decision, Err((_, 130_429))) {
            st.throttled += 1;
        }
        (decision, st.delay)
    };
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    match decision {
        Ok(wamid) => {
            let body = json!({
                "messaging_product": "whatsapp",
                "contacts": [{"input": to, "wa_id": to}],
                "messages": [{"id": wamid, "message_status": "accepted"}]
            });
            Response::builder()
                .status(StatusCode::OK)
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(body.to_string()))
                .unwrap_or_default()
        }
        Err((status, code)) => {
            let message = match code {
                130_429 => "Rate limit hit",
                131_056 => "(Business Account, Consumer Account) pair rate limit hit",
                131_048 => "Spam rate limit hit",
                131_047 => "Re-engagement message",
                _ => "Request failed",
            };
            error(status, code, message)
        }
    }
}

/// `GET /{media_id}` (metadata) and `GET /media-download/{media_id}` (bytes); `None` when the
/// path names no known media.
fn media(state: &Mutex<State>, parts: &[&str], headers: &HeaderMap) -> Option<Response> {
    let (id, bytes) = match parts {
        [.., "media-download", id] => (*id, true),
        [.., id] => (*id, false),
        [] => return None,
    };
    let mut st = lock(state);
    let m = st.media.get(id).cloned()?;
    let auth = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).unwrap_or_default();
    if auth != format!("Bearer {TEST_TOKEN}") {
        return Some(error(401, 190, "Error validating access token"));
    }
    if let Some(status) = st.media_failures.pop_front() {
        return Some(error(status, 2, "Service temporarily unavailable"));
    }
    if bytes {
        st.media_downloads += 1;
        let resp = Response::builder()
            .status(StatusCode::OK)
            .header(header::CONTENT_TYPE, m.mime_type)
            .header(header::CONTENT_LENGTH, m.data.len())
            .body(Body::from(m.data))
            .unwrap_or_default();
        return Some(resp);
    }
    let base = st.base_url.clone();
    Some(ok(json!({
        "messaging_product": "whatsapp",
        "url": format!("{base}/media-download/{id}"),
        "mime_type": m.mime_type,
        "sha256": m.sha256,
        "file_size": m.data.len(),
        "id": id,
    })))
}

fn ok(body: Value) -> Response {
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .unwrap_or_default()
}

/// `GET /{phone_number_id}?fields=…`: the number's standing.
fn number_state(state: &Mutex<State>, phone: &str, headers: &HeaderMap) -> Response {
    let mut st = lock(state);
    st.reads += 1;
    let auth = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).unwrap_or_default();
    if auth != format!("Bearer {TEST_TOKEN}") {
        return error(401, 190, "Error validating access token: Session has expired");
    }
    if st.unknown.contains(phone) {
        return error(
            400,
            100,
            &format!(
                "Unsupported get request. Object with ID '{phone}' does not exist, cannot be loaded due to missing permissions, or does not support this operation"
            ),
        );
    }
    let (quality, tier) = st.numbers.get(phone).cloned().unwrap_or_else(|| ("GREEN".into(), "TIER_1K".into()));
    ok(json!({"display_phone_number": "+1 555-078-3881", "quality_rating": quality, "messaging_limit_tier": tier,
              "id": phone}))
}

/// `/{waba_id}/message_templates`: create (PENDING until the test plays the review), list, delete
/// by name.
fn templates(
    state: &Mutex<State>,
    method: &Method,
    waba: &str,
    query: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Response {
    let auth = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).unwrap_or_default();
    if auth != format!("Bearer {TEST_TOKEN}") {
        return error(401, 190, "Error validating access token");
    }
    let mut st = lock(state);
    match *method {
        Method::POST => {
            let Ok(t) = serde_json::from_slice::<Value>(body) else { return error(400, 100, "Invalid JSON") };
            let name = t.get("name").and_then(Value::as_str).unwrap_or_default().to_owned();
            let language = t.get("language").and_then(Value::as_str).unwrap_or_default().to_owned();
            let category = t.get("category").and_then(Value::as_str).unwrap_or_default().to_owned();
            if name.is_empty() || language.is_empty() || !t.get("components").is_some_and(Value::is_array) {
                return error(400, 100, "Invalid parameter");
            }
            if st.templates.iter().any(|(w, x)| w == waba && x["name"] == name && x["language"] == language) {
                return error(400, 2_388_024, "Content in this language already exists");
            }
            let id = format!("{}", 1_000_000 + st.templates.len());
            let obj = json!({"id": id, "name": name, "language": language, "status": "PENDING", "category": category,
                             "components": t["components"]});
            st.templates.push((waba.to_owned(), obj));
            ok(json!({"id": id, "status": "PENDING", "category": category}))
        }
        Method::GET => {
            let data: Vec<Value> = st.templates.iter().filter(|(w, _)| w == waba).map(|(_, t)| t.clone()).collect();
            ok(json!({"data": data, "paging": {}}))
        }
        Method::DELETE => {
            let name = url::form_urlencoded::parse(query.as_bytes())
                .find(|(k, _)| k == "name")
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default();
            let before = st.templates.len();
            st.templates.retain(|(w, t)| !(w == waba && t["name"] == name.as_str()));
            if st.templates.len() == before {
                return error(400, 100, "Template not found");
            }
            ok(json!({"success": true}))
        }
        _ => error(405, 100, "Unsupported method"),
    }
}
