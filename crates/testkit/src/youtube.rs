//! A fake YouTube Data API v3 on port 0 (`reference/providers.md` §10): resumable uploads under
//! `/upload/youtube/v3` and the data routes under `/youtube/v3`, on one base URL, accepting one
//! Bearer token.
//!
//! - `POST /upload/youtube/v3/videos?uploadType=resumable&part=snippet,status` with
//!   `X-Upload-Content-Length` and the metadata answers 200 and a session URL in `Location`
//!   (`publishAt` needs privacy `private` and a future time, a title is required: else 400
//!   `invalidMetadata`).
//! - `PUT <session>` with `Content-Range: bytes a-b/total` stores a chunk that starts where the
//!   session's bytes end (another start is answered 308 with what is held, storing nothing;
//!   chunks other than the last are multiples of 256 KiB) and answers 308 with
//!   `Range: bytes=0-<last>`, the last chunk 201 with the video; `bytes */total` answers the
//!   same without storing. An unknown or expired session is 404.
//! - `GET /youtube/v3/videos?part=status,processingDetails|statistics&id=…`: `uploadStatus`
//!   `uploaded`, then `processed` after [`FakeYouTube::processing_reads`] reads.
//!
//! Google's OAuth for a YouTube connection, on the same base URL: `POST /token` (the code
//! [`TEST_CODE`] or a refresh token for the fake's token), `POST /revoke`, and
//! `GET /youtube/v3/channels?mine=true` (channel [`TEST_CHANNEL_ID`]).
//!
//! Knobs: a chunk failed part-way ([`FakeYouTube::interrupt_at`], [`FakeYouTube::drop_at`]),
//! sessions expired, the token revoked, the daily quota spent.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State as AxState;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::FakeServer;
use crate::fake::lock;

const CHUNK_UNIT: usize = 256 * 1024;

/// The only authorization code the fake's token endpoint exchanges.
pub const TEST_CODE: &str = "google-code-ok";
pub const TEST_CLIENT_ID: &str = "fake-google-client";
pub const TEST_CLIENT_SECRET: &str = "fake-google-secret";
pub const TEST_CHANNEL_ID: &str = "UCfakechannel0001";
const REFRESH_TOKEN: &str = "1//fake-google-refresh";

/// How an interrupted chunk fails once its bytes up to the offset are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cut {
    Error500,
    /// The connection closes before the answer's body.
    Drop,
}

struct Session {
    total: u64,
    meta: Value,
    bytes: Vec<u8>,
    /// The video made when the last byte arrived.
    video: Option<String>,
}

struct Video {
    id: String,
    meta: Value,
    bytes: Vec<u8>,
    reads: u32,
}

#[derive(Default)]
struct State {
    token: String,
    base: String,
    revoked: bool,
    /// The `code_verifier` of every code exchanged, and every token revoked at `/revoke`.
    verifiers: Vec<String>,
    revocations: Vec<String>,
    quota_exceeded: bool,
    seq: u64,
    sessions: HashMap<String, Session>,
    videos: Vec<Video>,
    interrupt: Option<(u64, Cut)>,
    received_from: Vec<u64>,
    processing_reads: u32,
    statistics: HashMap<String, (i64, i64, i64)>,
}

pub struct FakeYouTube {
    /// The root of both APIs: `{base_url}/upload/youtube/v3` and `{base_url}/youtube/v3`.
    pub base_url: String,
    state: Arc<Mutex<State>>,
    _server: FakeServer,
}

impl FakeYouTube {
    /// Accepts only `Bearer {token}`.
    pub async fn start(token: &str) -> FakeYouTube {
        let state = Arc::new(Mutex::new(State { token: token.to_owned(), ..State::default() }));
        let router = Router::new().fallback(handle).with_state(state.clone());
        let server = FakeServer::start(router).await;
        lock(&state).base = server.base_url.clone();
        FakeYouTube { base_url: server.base_url.clone(), state, _server: server }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// Every request is refused 401 until [`FakeYouTube::restore`].
    pub fn revoke(&self) {
        self.state().revoked = true;
    }

    pub fn restore(&self) {
        self.state().revoked = false;
    }

    /// The PKCE `code_verifier` of every authorization code exchanged, in order.
    pub fn verifiers(&self) -> Vec<String> {
        self.state().verifiers.clone()
    }

    /// Every token sent to `/revoke`, in order.
    pub fn revocations(&self) -> Vec<String> {
        self.state().revocations.clone()
    }

    /// The access token expires: from now on only `token` is accepted, and the token endpoint
    /// hands it out for the refresh token (as Google issues a new access token every hour).
    pub fn rotate_token(&self, token: &str) {
        token.clone_into(&mut self.state().token);
    }

    /// Session starts and data reads are refused 403 `quotaExceeded` while `on`.
    pub fn quota_exceeded(&self, on: bool) {
        self.state().quota_exceeded = on;
    }

    /// The first chunk holding byte `offset` stores the bytes before it, then is answered 500.
    pub fn interrupt_at(&self, offset: u64) {
        self.state().interrupt = Some((offset, Cut::Error500));
    }

    /// As [`FakeYouTube::interrupt_at`], but the connection drops instead of an answer.
    pub fn drop_at(&self, offset: u64) {
        self.state().interrupt = Some((offset, Cut::Drop));
    }

    /// Every open session is forgotten (404 from now on).
    pub fn expire_sessions(&self) {
        self.state().sessions.clear();
    }

    /// Status reads of a video answered `uploaded` before `processed` (0 by default).
    pub fn processing_reads(&self, n: u32) {
        self.state().processing_reads = n;
    }

    /// Sets a video's (likes, comments, views).
    pub fn set_statistics(&self, video_id: &str, counts: (i64, i64, i64)) {
        self.state().statistics.insert(video_id.to_owned(), counts);
    }

    /// The start offset of every chunk PUT (status queries aside), in order.
    pub fn received_from(&self) -> Vec<u64> {
        self.state().received_from.clone()
    }

    /// (id, title, bytes received, privacy, publishAt as sent) of every video made.
    pub fn videos(&self) -> Vec<(String, String, usize, String, Option<String>)> {
        self.state()
            .videos
            .iter()
            .map(|v| {
                let s = |p: &str| v.meta.pointer(p).and_then(Value::as_str).map(str::to_owned);
                let (title, privacy) = (s("/snippet/title").unwrap_or_default(), s("/status/privacyStatus"));
                (v.id.clone(), title, v.bytes.len(), privacy.unwrap_or_default(), s("/status/publishAt"))
            })
            .collect()
    }

    /// The bytes of video `id` as they arrived.
    pub fn video_bytes(&self, id: &str) -> Option<Vec<u8>> {
        self.state().videos.iter().find(|v| v.id == id).map(|v| v.bytes.clone())
    }

    pub fn video_count(&self) -> usize {
        self.state().videos.len()
    }
}

fn google_error(status: StatusCode, reason: &str, message: &str) -> Response {
    let body = json!({"error": {"code": status.as_u16(), "message": message,
        "errors": [{"domain": "youtube", "reason": reason, "message": message}]}});
    (status, axum::Json(body)).into_response()
}

async fn handle(
    AxState(state): AxState<Arc<Mutex<State>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let q: HashMap<String, String> =
        url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes()).into_owned().collect();
    let mut st = lock(&state);
    if method == Method::POST && uri.path() == "/token" {
        return token(&mut st, &body);
    }
    if method == Method::POST && uri.path() == "/revoke" {
        // Revoking either token ends the whole grant, as at Google.
        let form: HashMap<String, String> = url::form_urlencoded::parse(&body).into_owned().collect();
        let Some(token) = form.get("token").filter(|t| **t == st.token || *t == REFRESH_TOKEN).cloned() else {
            let body = json!({"error": "invalid_token", "error_description": "Token expired or revoked"});
            return (StatusCode::BAD_REQUEST, axum::Json(body)).into_response();
        };
        st.revocations.push(token);
        st.revoked = true;
        return StatusCode::OK.into_response();
    }
    let bearer =
        headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
    if st.revoked || bearer != Some(st.token.as_str()) {
        return google_error(StatusCode::UNAUTHORIZED, "authError", "Invalid Credentials");
    }
    match (method, uri.path()) {
        (Method::POST, "/upload/youtube/v3/videos") => start(&mut st, &q, &headers, &body),
        (Method::PUT, "/upload/youtube/v3/videos") => put(&mut st, &q, &headers, &body),
        (Method::GET, "/youtube/v3/videos") => read(&mut st, &q),
        (Method::GET, "/youtube/v3/channels") => {
            axum::Json(json!({"items": [{"id": TEST_CHANNEL_ID, "snippet": {"title": "Fake channel"}}]}))
                .into_response()
        }
        _ => google_error(StatusCode::NOT_FOUND, "notFound", "Not Found"),
    }
}

/// Google's token endpoint: the test code or the refresh token for the fake's access token
/// (a refresh is refused while revoked, as Google refuses a revoked grant; a code is a new
/// consent, so a new grant).
fn token(st: &mut State, body: &[u8]) -> Response {
    let form: HashMap<String, String> = url::form_urlencoded::parse(body).into_owned().collect();
    let get = |k: &str| form.get(k).map(String::as_str).unwrap_or("");
    let ok = match get("grant_type") {
        "authorization_code" if get("code") == TEST_CODE && !get("code_verifier").is_empty() => {
            st.verifiers.push(get("code_verifier").to_owned());
            st.revoked = false;
            true
        }
        "refresh_token" => get("refresh_token") == REFRESH_TOKEN,
        _ => false,
    };
    if st.revoked || !ok {
        let body = json!({"error": "invalid_grant", "error_description": "Bad Request"});
        return (StatusCode::BAD_REQUEST, axum::Json(body)).into_response();
    }
    axum::Json(json!({"access_token": st.token, "refresh_token": REFRESH_TOKEN, "expires_in": 3599,
        "token_type": "Bearer", "scope": "https://www.googleapis.com/auth/youtube.upload"}))
    .into_response()
}

fn start(st: &mut State, q: &HashMap<String, String>, headers: &HeaderMap, body: &[u8]) -> Response {
    if st.quota_exceeded {
        return google_error(
            StatusCode::FORBIDDEN,
            "quotaExceeded",
            "The request cannot be completed because you have exceeded your quota.",
        );
    }
    let header = |k: &str| headers.get(k).and_then(|v| v.to_str().ok());
    let total = header("x-upload-content-length").and_then(|v| v.parse::<u64>().ok());
    let kind = header("x-upload-content-type").unwrap_or("");
    let (Some(total), true) = (total, q.get("uploadType").map(String::as_str) == Some("resumable")) else {
        return google_error(
            StatusCode::BAD_REQUEST,
            "badRequest",
            "uploadType=resumable and X-Upload-Content-Length are required",
        );
    };
    if !(kind.starts_with("video/") || kind == "application/octet-stream") {
        return google_error(StatusCode::BAD_REQUEST, "badContent", "Media type is not supported");
    }
    let meta: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    if let Some(m) = invalid_metadata(&meta) {
        return google_error(StatusCode::BAD_REQUEST, "invalidMetadata", m);
    }
    st.seq += 1;
    let id = format!("upload-{:06}", st.seq);
    st.sessions.insert(id.clone(), Session { total, meta, bytes: Vec::new(), video: None });
    let location = format!("{}/upload/youtube/v3/videos?uploadType=resumable&upload_id={id}", st.base);
    (StatusCode::OK, [(header::LOCATION, location)]).into_response()
}

fn invalid_metadata(meta: &Value) -> Option<&'static str> {
    if meta.pointer("/snippet/title").and_then(Value::as_str).is_none_or(str::is_empty) {
        return Some("The video's title is required");
    }
    let publish_at = meta.pointer("/status/publishAt").and_then(Value::as_str)?;
    if meta.pointer("/status/privacyStatus").and_then(Value::as_str) != Some("private") {
        return Some("publishAt can only be set on a private video");
    }
    match chrono::DateTime::parse_from_rfc3339(publish_at) {
        Ok(at) if at > chrono::Utc::now() => None,
        Ok(_) => Some("publishAt must be in the future"),
        Err(_) => Some("publishAt is not a date-time"),
    }
}

/// `bytes a-b/total` as (Some((a, b)), total), `bytes */total` as (None, total).
fn content_range(headers: &HeaderMap) -> Option<(Option<(u64, u64)>, u64)> {
    let v = headers.get(header::CONTENT_RANGE)?.to_str().ok()?.strip_prefix("bytes ")?;
    let (range, total) = v.split_once('/')?;
    let total = total.parse().ok()?;
    if range == "*" {
        return Some((None, total));
    }
    let (a, b) = range.split_once('-')?;
    let (a, b): (u64, u64) = (a.parse().ok()?, b.parse().ok()?);
    (a <= b && b < total).then_some((Some((a, b)), total))
}

/// 308 with what the session holds.
fn incomplete(held: usize) -> Response {
    let mut r = StatusCode::PERMANENT_REDIRECT.into_response();
    if held > 0
        && let Ok(v) = format!("bytes=0-{}", held - 1).parse()
    {
        r.headers_mut().insert(header::RANGE, v);
    }
    r
}

fn put(st: &mut State, q: &HashMap<String, String>, headers: &HeaderMap, body: &[u8]) -> Response {
    let id = q.get("upload_id").cloned().unwrap_or_default();
    let Some((range, total)) = content_range(headers) else {
        return google_error(StatusCode::BAD_REQUEST, "badRequest", "Content-Range is missing or invalid");
    };
    let Some(session) = st.sessions.get(&id) else {
        return google_error(StatusCode::NOT_FOUND, "notFound", "The upload session does not exist");
    };
    if total != session.total {
        return google_error(StatusCode::BAD_REQUEST, "badRequest", "The total size differs from the session's");
    }
    if let Some(video) = &session.video {
        return video_resource(st, video);
    }
    let held = session.bytes.len();
    let Some((a, b)) = range else {
        return incomplete(held);
    };
    st.received_from.push(a);
    if a != held as u64 {
        return incomplete(held);
    }
    let len = body.len();
    if len as u64 != b - a + 1 || (b + 1 < total && !len.is_multiple_of(CHUNK_UNIT)) {
        return google_error(
            StatusCode::BAD_REQUEST,
            "badRequest",
            "The chunk does not match Content-Range or 256 KiB",
        );
    }
    let cut = st.interrupt.filter(|(off, _)| a <= *off && *off <= b);
    let (keep, cut) = match cut {
        Some((off, how)) => (usize::try_from(off - a).unwrap_or(len), Some(how)),
        None => (len, None),
    };
    let Some(session) = st.sessions.get_mut(&id) else {
        return google_error(StatusCode::NOT_FOUND, "notFound", "The upload session does not exist");
    };
    session.bytes.extend_from_slice(&body[..keep]);
    if let Some(how) = cut {
        st.interrupt = None;
        return match how {
            Cut::Error500 => google_error(StatusCode::INTERNAL_SERVER_ERROR, "backendError", "Backend Error"),
            Cut::Drop => {
                let broken =
                    futures::stream::once(async { Err::<Bytes, _>(std::io::Error::other("connection dropped")) });
                (StatusCode::OK, Body::from_stream(broken)).into_response()
            }
        };
    }
    if (session.bytes.len() as u64) < total {
        return incomplete(session.bytes.len());
    }
    st.seq += 1;
    let video = format!("fakeVid{:04}", st.seq);
    let (meta, bytes) = (session.meta.clone(), session.bytes.clone());
    session.video = Some(video.clone());
    st.videos.push(Video { id: video.clone(), meta, bytes, reads: 0 });
    video_resource(st, &video)
}

/// 201 with the video (a finished session answers it again to every PUT).
fn video_resource(st: &State, id: &str) -> Response {
    let meta = st.videos.iter().find(|v| v.id == id).map(|v| v.meta.clone()).unwrap_or(Value::Null);
    let mut s = meta.get("status").cloned().unwrap_or_else(|| json!({}));
    s["uploadStatus"] = json!("uploaded");
    let body = json!({"kind": "youtube#video", "id": id, "snippet": meta.get("snippet"), "status": s});
    (StatusCode::CREATED, axum::Json(body)).into_response()
}

fn read(st: &mut State, q: &HashMap<String, String>) -> Response {
    if st.quota_exceeded {
        return google_error(
            StatusCode::FORBIDDEN,
            "quotaExceeded",
            "The request cannot be completed because you have exceeded your quota.",
        );
    }
    let parts: Vec<&str> = q.get("part").map(|p| p.split(',').collect()).unwrap_or_default();
    let ids: Vec<&str> = q.get("id").map(|p| p.split(',').collect()).unwrap_or_default();
    if parts.is_empty() {
        return google_error(StatusCode::BAD_REQUEST, "required", "part is required");
    }
    let processing = st.processing_reads;
    let mut items = Vec::new();
    for v in st.videos.iter_mut().filter(|v| ids.contains(&v.id.as_str())) {
        let mut item = json!({"kind": "youtube#video", "id": v.id});
        if parts.contains(&"status") {
            v.reads += 1;
            let done = v.reads > processing;
            let mut s = v.meta.get("status").cloned().unwrap_or_else(|| json!({}));
            s["uploadStatus"] = json!(if done { "processed" } else { "uploaded" });
            item["status"] = s;
            item["processingDetails"] = json!({"processingStatus": if done { "succeeded" } else { "processing" }});
        }
        if parts.contains(&"statistics") {
            let h = v.id.bytes().fold(11i64, |h, b| (h * 37 + i64::from(b)) % 1_000_003);
            let (likes, comments, views) =
                st.statistics.get(&v.id).copied().unwrap_or((h % 500, h % 60, 1_000 + h % 9_000));
            item["statistics"] = json!({"viewCount": views.to_string(), "likeCount": likes.to_string(),
                "favoriteCount": "0", "commentCount": comments.to_string()});
        }
        items.push(item);
    }
    axum::Json(json!({"kind": "youtube#videoListResponse", "items": items})).into_response()
}
