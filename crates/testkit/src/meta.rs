//! A fake Meta Graph API on port 0 (`reference/providers.md` §7), for platform connections:
//! `GET /{version}/oauth/access_token` (an authorization code and its PKCE verifier for a
//! short-lived token; `grant_type=fb_exchange_token` for a long-lived one with `expires_in`),
//! `GET /me`, `/me/adaccounts`, `/me/accounts` (pages with their Instagram business accounts)
//! and `DELETE /me/permissions`. User calls need the long-lived token and its
//! `appsecret_proof`; anything else is answered with Meta's error envelope (code 190 for a
//! refused token, 100 for a bad parameter).
//!
//! The campaign builder's objects: `POST /{act}/{campaigns|adsets|adcreatives|ads}` (form
//! fields; answers `{"id"}`), `GET /{act}/{edge}?filtering=[{"field":"name","operator":"EQUAL",…}]`
//! and `DELETE /{id}`. Creative media: `POST /{act}/adimages` (`bytes`, base64; answers
//! `{"images":{name:{hash,url}}}`, the hash the picture's MD5), `GET /{act}/adimages?hashes=`,
//! `POST /{act}/advideos` (multipart `source`, named; listed by name like the objects); a
//! creative's `image_hash` / `video_data.video_id` must name an upload of its account. Knobs: a step made to fail ([`FakeMeta::fail_create`]), to create and
//! lose its answer (HTTP 500, [`FakeMeta::lose_answer`]) or to create and answer late
//! ([`FakeMeta::delay_answer`]); counts of objects created and still there per edge.
//!
//! Custom audiences: `POST /{act}/customaudiences` (`subtype=CUSTOM`, or `LOOKALIKE` with an
//! `origin_audience_id` of the account and a `lookalike_spec`), `POST /{id}/users` (hashes
//! added, one `session` per upload) and `POST /{id}/usersreplace` (the members swapped for the
//! session's batches when its `last_batch_flag` batch arrives); every call and each audience's
//! members are kept for tests.
//!
//! Instagram content publishing and Facebook Page posts (§8, §9c) are served by the same server,
//! for the page and Instagram account `/me/accounts` lists; their routes, knobs and accessors
//! are in [`crate::meta_publish`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State as AxState;
use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::FakeServer;
use crate::fake::lock;
use crate::meta_publish::{Caller, Publishing};
pub use crate::meta_publish::{FakeEngagement, LoseMode, TEST_IG_USER_ID, TEST_PAGE_ID};

pub const TEST_APP_ID: &str = "4242";
pub const TEST_APP_SECRET: &str = "fake-meta-app-secret";
/// The only code the fake accepts.
pub const TEST_CODE: &str = "meta-code-ok";
pub const TEST_USER_ID: &str = "10001";
const SHORT_TOKEN: &str = "EAAfake-short";
const LONG_TOKEN: &str = "EAAfake-long-lived";
/// The most rows Meta answers in one insights page.
const MAX_INSIGHTS_PAGE: usize = 500;

/// A picture or video uploaded to an ad account.
#[derive(Debug, Clone)]
pub struct FakeMetaFile {
    pub account: String,
    /// The picture's hash, or the video's id.
    pub id: String,
    pub name: String,
    pub data: Vec<u8>,
}

/// An object the builder created.
#[derive(Debug, Clone)]
pub struct FakeMetaObject {
    pub id: String,
    pub edge: String,
    pub account: String,
    pub fields: HashMap<String, String>,
}

pub(crate) struct State {
    objects: Vec<FakeMetaObject>,
    /// Creates per edge, deleted ones included.
    created: HashMap<String, u32>,
    fail: Option<String>,
    lose: Option<String>,
    delay: Option<(String, std::time::Duration)>,
    seq: u64,
    /// (object id, fields set) of every update.
    updates: Vec<(String, Vec<String>)>,
    /// (audience id, schema, rows) of every audience upload call.
    audience_rows: Vec<(String, String, Vec<String>)>,
    /// (audience id, the call's `session` object) of every audience upload call.
    audience_sessions: Vec<(String, serde_json::Value)>,
    /// (audience id, `session`) of every `usersreplace` call.
    replace_sessions: Vec<(String, serde_json::Value)>,
    /// Replacements under way: (audience, session) -> the members sent so far.
    replacing: HashMap<(String, u64), std::collections::BTreeSet<(String, String)>>,
    /// Each audience's members now: (schema, hash).
    audience_members: HashMap<String, std::collections::BTreeSet<(String, String)>>,
    /// Usage percentage reported in the rate-limit headers of insights answers.
    usage_percent: u32,
    /// Rows per insights page (at most the `limit` asked for).
    insights_page: usize,
    /// When set, an ad account's insights are this many generated rows, not its built ads'.
    insights_generated: Option<usize>,
    /// When each insights request arrived.
    insights_calls: Vec<std::time::Instant>,
    /// Every insights row served (ad id, day, row); generated rows are only counted.
    insights_served: Vec<serde_json::Value>,
    /// How many insights rows were served, generated ones included.
    insights_served_count: usize,
    /// Async report runs: (id, ad account, since, until, polls so far).
    jobs: Vec<(String, String, String, String, u32)>,
    /// Seconds a long-lived token lasts.
    long_lived_secs: u64,
    /// The PKCE verifiers codes were exchanged with.
    verifiers: Vec<String>,
    revoked: Vec<String>,
    /// (method, path, status) of every request.
    log: Vec<(String, String, u16)>,
    /// Pictures and videos uploaded (one entry per upload call).
    images: Vec<FakeMetaFile>,
    videos: Vec<FakeMetaFile>,
    /// The file part of the multipart request being answered.
    upload: Option<Vec<u8>>,
    /// Instagram containers and media, page posts, and their knobs.
    pub(crate) publishing: Publishing,
}

pub struct FakeMeta {
    /// The Graph root, for `meta.graph_url`.
    pub base_url: String,
    state: Arc<Mutex<State>>,
    _server: FakeServer,
}

impl FakeMeta {
    pub async fn start() -> FakeMeta {
        let state = Arc::new(Mutex::new(State {
            objects: Vec::new(),
            created: HashMap::new(),
            fail: None,
            lose: None,
            delay: None,
            seq: 0,
            updates: Vec::new(),
            audience_rows: Vec::new(),
            audience_sessions: Vec::new(),
            replace_sessions: Vec::new(),
            replacing: HashMap::new(),
            audience_members: HashMap::new(),
            usage_percent: 10,
            insights_page: 10,
            insights_generated: None,
            insights_calls: Vec::new(),
            insights_served: Vec::new(),
            insights_served_count: 0,
            jobs: Vec::new(),
            long_lived_secs: 60 * 86_400,
            verifiers: Vec::new(),
            revoked: Vec::new(),
            log: Vec::new(),
            images: Vec::new(),
            videos: Vec::new(),
            upload: None,
            publishing: Publishing::default(),
        }));
        let router = Router::new().fallback(handle).with_state(state.clone());
        let server = FakeServer::start(router).await;
        FakeMeta { base_url: server.base_url.clone(), state, _server: server }
    }

    pub(crate) fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// Every picture upload call received, in order.
    pub fn images(&self) -> Vec<FakeMetaFile> {
        self.state().images.clone()
    }

    /// Every video upload call received, in order.
    pub fn videos(&self) -> Vec<FakeMetaFile> {
        self.state().videos.clone()
    }

    /// How long the next long-lived tokens last.
    pub fn set_long_lived_secs(&self, secs: u64) {
        self.state().long_lived_secs = secs;
    }

    /// The PKCE verifiers sent with codes.
    pub fn verifiers(&self) -> Vec<String> {
        self.state().verifiers.clone()
    }

    /// Tokens whose permissions were revoked.
    pub fn revoked(&self) -> Vec<String> {
        self.state().revoked.clone()
    }

    /// Creates on `edge` (`campaigns`, `adsets`, `adcreatives`, `ads`) fail with code 100.
    pub fn fail_create(&self, edge: &str) {
        self.state().fail = Some(edge.to_owned());
    }

    /// The next create on `edge` happens but its answer is an HTTP 500.
    pub fn lose_answer(&self, edge: &str) {
        self.state().lose = Some(edge.to_owned());
    }

    /// Creates on `edge` happen at once and are answered after `wait`.
    pub fn delay_answer(&self, edge: &str, wait: std::time::Duration) {
        self.state().delay = Some((edge.to_owned(), wait));
    }

    /// Objects created on `edge`, deleted ones included.
    pub fn created(&self, edge: &str) -> u32 {
        self.state().created.get(edge).copied().unwrap_or(0)
    }

    /// Objects on `edge` that still exist.
    pub fn live(&self, edge: &str) -> Vec<FakeMetaObject> {
        self.state().objects.iter().filter(|o| o.edge == edge).cloned().collect()
    }

    /// (audience id, schema, rows) of every audience upload call, as received.
    pub fn audience_rows(&self) -> Vec<(String, String, Vec<String>)> {
        self.state().audience_rows.clone()
    }

    /// (audience id, `session` object) of every `usersreplace` call, as received.
    pub fn replace_sessions(&self) -> Vec<(String, serde_json::Value)> {
        self.state().replace_sessions.clone()
    }

    /// An audience's members now, (schema, hash): what was added, or what the last completed
    /// replacement sent.
    pub fn audience_members(&self, audience: &str) -> std::collections::BTreeSet<(String, String)> {
        self.state().audience_members.get(audience).cloned().unwrap_or_default()
    }

    /// (audience id, `session` object: session_id, batch_seq, last_batch_flag,
    /// estimated_num_total) of every audience upload call, as received.
    pub fn audience_sessions(&self) -> Vec<(String, serde_json::Value)> {
        self.state().audience_sessions.clone()
    }

    /// The usage insights answers report in `X-Business-Use-Case-Usage` and `X-Ad-Account-Usage`.
    pub fn set_usage_percent(&self, percent: u32) {
        self.state().usage_percent = percent;
    }

    /// When each insights request arrived (the spacing shows whether the client slowed down).
    pub fn insights_calls(&self) -> Vec<std::time::Instant> {
        self.state().insights_calls.clone()
    }

    /// Every insights row served (generated rows are only counted: [`FakeMeta::insights_served_count`]).
    pub fn insights_served(&self) -> Vec<serde_json::Value> {
        self.state().insights_served.clone()
    }

    /// How many insights rows were served, generated ones included.
    pub fn insights_served_count(&self) -> usize {
        self.state().insights_served_count
    }

    /// Rows per insights page (10 unless set), never more than the `limit` asked for nor
    /// Meta's 500.
    pub fn set_insights_page(&self, rows: usize) {
        self.state().insights_page = rows.clamp(1, MAX_INSIGHTS_PAGE);
    }

    /// Makes every ad account's insights (and its report runs') `rows` generated daily rows
    /// instead of its built ads': as many ads (ids from `9000000000`) as spread `rows` over the
    /// days asked, one campaign and ad set, figures deterministic per (ad, day) as for built
    /// ads. Each page is generated when asked for, and its rows counted, not kept.
    pub fn generate_insights(&self, rows: usize) {
        self.state().insights_generated = Some(rows);
    }

    /// What Meta's review decided of every object on `edge`: its `effective_status` and the
    /// `ad_review_feedback` reasons (`{"global": {policy: text}}`).
    pub fn set_review(&self, edge: &str, effective_status: &str, feedback: &[(&str, &str)]) {
        let reasons: serde_json::Map<String, serde_json::Value> =
            feedback.iter().map(|(k, v)| ((*k).to_owned(), json!(v))).collect();
        for o in self.state().objects.iter_mut().filter(|o| o.edge == edge) {
            o.fields.insert("effective_status".into(), effective_status.to_owned());
            o.fields.insert("ad_review_feedback".into(), json!({"global": reasons}).to_string());
        }
    }

    /// Async report runs started: (ad account, since, until, status polls).
    pub fn report_jobs(&self) -> Vec<(String, String, String, u32)> {
        self.state().jobs.iter().map(|j| (j.1.clone(), j.2.clone(), j.3.clone(), j.4)).collect()
    }

    /// (object id, fields set) of every update.
    pub fn updates(&self) -> Vec<(String, Vec<String>)> {
        self.state().updates.clone()
    }

    /// (method, path, status) of every request.
    pub fn log(&self) -> Vec<(String, String, u16)> {
        self.state().log.clone()
    }
}

pub(crate) fn error(status: StatusCode, code: i64, message: &str) -> Response {
    error_sub(status, code, None, message)
}

/// Meta's error envelope, with an `error_subcode` where Meta sends one.
pub(crate) fn error_sub(status: StatusCode, code: i64, subcode: Option<i64>, message: &str) -> Response {
    let mut e = json!({"message": message, "type": "OAuthException", "code": code, "fbtrace_id": "fake"});
    if let Some(s) = subcode {
        e["error_subcode"] = json!(s);
    }
    (status, axum::Json(json!({ "error": e }))).into_response()
}

fn proof(token: &str) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, TEST_APP_SECRET.as_bytes());
    hex::encode(ring::hmac::sign(&key, token.as_bytes()).as_ref())
}

async fn handle(
    AxState(state): AxState<Arc<Mutex<State>>>,
    method: Method,
    uri: Uri,
    headers: axum::http::HeaderMap,
    body: Bytes,
) -> Response {
    let mut q: HashMap<String, String> =
        url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes()).into_owned().collect();
    let content_type = headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("");
    let mut upload = None;
    match crate::fake::multipart(content_type, &body) {
        Some(parts) => {
            for p in parts {
                if p.filename.is_some() {
                    upload = Some(p.data);
                } else {
                    q.insert(p.name.clone(), p.text());
                }
            }
        }
        None => q.extend(url::form_urlencoded::parse(&body).into_owned()),
    }
    lock(&state).upload = upload;
    // "/v25.0/me/adaccounts" -> "/me/adaccounts"
    let path = uri.path().splitn(3, '/').nth(2).map(|p| format!("/{p}")).unwrap_or_default();
    let slow = lock(&state).publishing.slow_for(&method, &path);
    if let Some(w) = slow {
        tokio::time::sleep(w).await;
    }
    let (resp, wait) = {
        let mut st = lock(&state);
        let out = route(&mut st, &method, &path, &q);
        st.log.push((method.to_string(), path, out.0.status().as_u16()));
        out
    };
    if let Some(w) = wait {
        tokio::time::sleep(w).await;
    }
    resp
}

/// The answer, and how long to hold it (a successful create on the delayed edge is answered
/// late).
fn route(
    st: &mut State,
    method: &Method,
    path: &str,
    q: &HashMap<String, String>,
) -> (Response, Option<std::time::Duration>) {
    let resp = route_inner(st, method, path, q);
    // A publish whose answer is to be lost by timing out.
    if let Some(wait) = st.publishing.hold.take() {
        return (resp, Some(wait));
    }
    let edge = path.rsplit('/').next().unwrap_or("");
    match &st.delay {
        Some((e, wait)) if method == Method::POST && e == edge && resp.status().is_success() => (resp, Some(*wait)),
        _ => (resp, None),
    }
}

const EDGES: &[&str] = &["campaigns", "adsets", "adcreatives", "ads", "customaudiences"];

fn route_inner(st: &mut State, method: &Method, path: &str, q: &HashMap<String, String>) -> Response {
    let get = |k: &str| q.get(k).map(String::as_str).unwrap_or("");
    if path == "/oauth/access_token" && method == Method::GET {
        if get("client_id") != TEST_APP_ID || get("client_secret") != TEST_APP_SECRET {
            return error(StatusCode::BAD_REQUEST, 101, "Error validating application");
        }
        if get("grant_type") == "fb_exchange_token" {
            if get("fb_exchange_token") != SHORT_TOKEN {
                return error(StatusCode::BAD_REQUEST, 190, "Invalid OAuth access token");
            }
            return axum::Json(
                json!({"access_token": LONG_TOKEN, "token_type": "bearer", "expires_in": st.long_lived_secs}),
            )
            .into_response();
        }
        if get("code") != TEST_CODE || get("code_verifier").is_empty() || get("redirect_uri").is_empty() {
            return error(StatusCode::BAD_REQUEST, 100, "Invalid verification code format.");
        }
        st.verifiers.push(get("code_verifier").to_owned());
        return axum::Json(json!({"access_token": SHORT_TOKEN, "token_type": "bearer", "expires_in": 3600}))
            .into_response();
    }
    let token = get("access_token");
    // A page token dies with the user's grant.
    let caller = match st.publishing.page_of(token) {
        Some(page) if st.revoked.is_empty() => Caller::Page(page),
        _ if token == LONG_TOKEN && !st.revoked.iter().any(|t| t == token) => Caller::User,
        _ => return error(StatusCode::BAD_REQUEST, 190, "Error validating access token"),
    };
    if st.publishing.token_revoked {
        return error(StatusCode::BAD_REQUEST, 190, "Error validating access token: The session has been invalidated");
    }
    if get("appsecret_proof") != proof(token) {
        return error(StatusCode::BAD_REQUEST, 100, "Invalid appsecret_proof provided in the API argument");
    }
    if let Some(resp) = crate::meta_publish::route(&mut st.publishing, method, path, q, &caller) {
        return resp;
    }
    // The ad and account routes below are the user's.
    if let Caller::Page(_) = caller {
        return crate::meta_publish::needs_user_token();
    }
    match (method.as_str(), path) {
        ("GET", "/me") => axum::Json(json!({"id": TEST_USER_ID, "name": "Ana Meta"})).into_response(),
        ("GET", "/me/adaccounts") => axum::Json(json!({"data": [
            {"id": "act_111", "name": "Ana US", "currency": "USD", "timezone_name": "America/Los_Angeles"},
            {"id": "act_222", "name": "Ana ES", "currency": "EUR", "timezone_name": "Europe/Madrid"}
        ], "paging": {"cursors": {"before": "a", "after": "b"}}}))
        .into_response(),
        ("GET", "/me/accounts") => axum::Json(json!({"data": [
            {"id": "555", "name": "Ana's Bakery", "instagram_business_account": {"id": "1784", "username": "anasbakery"}}
        ]}))
        .into_response(),
        ("DELETE", "/me/permissions") => {
            st.revoked.push(token.to_owned());
            axum::Json(json!({"success": true})).into_response()
        }
        ("GET", "/search") => interests(q),
        _ => objects(st, method, path, q),
    }
}

/// The interests the fake's targeting search knows: (id, name, path, audience lower bound).
pub const INTERESTS: &[(&str, &str, &[&str], i64)] = &[
    ("6003107902433", "Golf", &["Interests", "Sports and outdoors", "Sports"], 120_000_000),
    ("6003384248805", "Baking", &["Interests", "Food and drink", "Cooking"], 95_000_000),
    ("6003020834693", "Bakeries", &["Interests", "Food and drink", "Restaurants"], 40_000_000),
    ("6003139266461", "Coffee", &["Interests", "Food and drink", "Beverages"], 300_000_000),
];

/// `GET /search?type=adinterest&q=`: the known interests whose name contains `q` (any case),
/// at most `limit`; another type or no `q` is code 100, as Meta answers.
fn interests(q: &HashMap<String, String>) -> Response {
    if q.get("type").map(String::as_str) != Some("adinterest") {
        return error(StatusCode::BAD_REQUEST, 100, "(#100) Param type must be one of {adinterest, ...}");
    }
    let Some(text) = q.get("q").filter(|t| !t.trim().is_empty()) else {
        return error(StatusCode::BAD_REQUEST, 100, "(#100) The parameter q is required");
    };
    let limit = q.get("limit").and_then(|l| l.parse::<usize>().ok()).unwrap_or(25);
    let text = text.to_lowercase();
    let data: Vec<serde_json::Value> = INTERESTS
        .iter()
        .filter(|(_, name, _, _)| name.to_lowercase().contains(&text))
        .take(limit)
        .map(|(id, name, path, low)| {
            json!({"id": id, "name": name, "path": path, "audience_size_lower_bound": low,
                "audience_size_upper_bound": low + low / 5, "topic": path.get(1)})
        })
        .collect();
    axum::Json(json!({"data": data})).into_response()
}

/// A lookalike's origin is a custom audience of the same ad account, and its spec a ratio of
/// 0.01 to 0.20 with a country or a list of countries.
fn lookalike_ok(st: &State, account: &str, q: &HashMap<String, String>) -> bool {
    let origin = q.get("origin_audience_id").map(String::as_str).unwrap_or("");
    let origin_ok = st.objects.iter().any(|o| o.id == origin && o.edge == "customaudiences" && o.account == account);
    let spec: serde_json::Value =
        q.get("lookalike_spec").and_then(|s| serde_json::from_str(s).ok()).unwrap_or_default();
    let ratio_ok = spec["ratio"].as_f64().is_some_and(|r| (0.01..=0.20).contains(&r));
    let country_ok = spec["country"].as_str().is_some_and(|c| c.len() == 2)
        || spec["location_spec"]["geo_locations"]["countries"].as_array().is_some_and(|a| !a.is_empty());
    origin_ok && ratio_ok && country_ok
}

/// `/{act}/{edge}` (create, list by name) and `/{id}` (delete).
fn objects(st: &mut State, method: &Method, path: &str, q: &HashMap<String, String>) -> Response {
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match (method.as_str(), parts.as_slice()) {
        ("POST", [account, edge @ ("adimages" | "advideos")]) if account.starts_with("act_") => {
            upload(st, account, edge, q)
        }
        ("GET", [account, "adimages"]) => {
            let hashes: Vec<String> = q.get("hashes").and_then(|h| serde_json::from_str(h).ok()).unwrap_or_default();
            let mut data: Vec<serde_json::Value> = Vec::new();
            for i in st.images.iter().filter(|i| i.account == *account && hashes.contains(&i.id)) {
                if !data.iter().any(|d| d["hash"] == i.id.as_str()) {
                    data.push(json!({"hash": i.id, "name": i.name}));
                }
            }
            axum::Json(json!({"data": data})).into_response()
        }
        ("POST", [account, edge]) if account.starts_with("act_") && EDGES.contains(edge) => {
            if st.fail.as_deref() == Some(*edge) {
                return error(StatusCode::BAD_REQUEST, 100, "Invalid parameter");
            }
            if *edge == "adcreatives" && !creative_media_ok(st, account, q) {
                return error(
                    StatusCode::BAD_REQUEST,
                    100,
                    "Invalid parameter: image_hash or video_id not in the ad account",
                );
            }
            let needs_status = !matches!(*edge, "adcreatives" | "customaudiences");
            if q.get("name").is_none_or(String::is_empty)
                || (needs_status && q.get("status").is_none_or(|s| s != "PAUSED" && s != "ACTIVE"))
            {
                return error(StatusCode::BAD_REQUEST, 100, "Invalid parameter: name and status are required");
            }
            if *edge == "customaudiences"
                && q.get("subtype").is_some_and(|s| s == "LOOKALIKE")
                && !lookalike_ok(st, account, q)
            {
                return error(StatusCode::BAD_REQUEST, 100, "Invalid parameter: origin_audience_id or lookalike_spec");
            }
            st.seq += 1;
            let id = format!("{}{:06}", 2300 + EDGES.iter().position(|e| e == edge).unwrap_or(0), st.seq);
            let fields: HashMap<String, String> = q
                .iter()
                .filter(|(k, _)| !matches!(k.as_str(), "access_token" | "appsecret_proof"))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            st.objects.push(FakeMetaObject {
                id: id.clone(),
                edge: (*edge).to_owned(),
                account: (*account).to_owned(),
                fields,
            });
            *st.created.entry((*edge).to_owned()).or_default() += 1;
            if st.lose.as_deref() == Some(*edge) {
                st.lose = None;
                return (StatusCode::INTERNAL_SERVER_ERROR, "upstream connect error").into_response();
            }
            axum::Json(json!({"id": id})).into_response()
        }
        ("GET", [account, edge]) if EDGES.contains(edge) || *edge == "advideos" => {
            let wanted: Option<String> = q
                .get("filtering")
                .and_then(|f| serde_json::from_str::<serde_json::Value>(f).ok())
                .and_then(|f| f[0]["value"].as_str().map(str::to_owned));
            let data: Vec<serde_json::Value> = st
                .objects
                .iter()
                .filter(|o| o.edge == *edge && o.account == *account)
                .filter(|o| wanted.as_ref().is_none_or(|w| o.fields.get("name") == Some(w)))
                .map(|o| json!({"id": o.id, "name": o.fields.get("name")}))
                .collect();
            axum::Json(json!({"data": data})).into_response()
        }
        ("POST", [account, "insights"]) if account.starts_with("act_") => {
            let range: serde_json::Value =
                q.get("time_range").and_then(|r| serde_json::from_str(r).ok()).unwrap_or_default();
            let (Some(since), Some(until)) = (range["since"].as_str(), range["until"].as_str()) else {
                return error(StatusCode::BAD_REQUEST, 100, "time_range is required");
            };
            st.seq += 1;
            let run = format!("6120{:08}", st.seq);
            st.jobs.push((run.clone(), (*account).to_owned(), since.to_owned(), until.to_owned(), 0));
            axum::Json(json!({"report_run_id": run})).into_response()
        }
        ("GET", [object, "insights"]) => insights(st, object, q),
        ("GET", [id]) if st.objects.iter().any(|o| o.id == *id) => {
            let Some(o) = st.objects.iter().find(|o| o.id == *id) else {
                return error(StatusCode::BAD_REQUEST, 100, "Object with ID does not exist");
            };
            let status =
                o.fields.get("effective_status").or_else(|| o.fields.get("status")).cloned().unwrap_or_default();
            let mut v = json!({"id": id, "effective_status": status});
            if let Some(f) =
                o.fields.get("ad_review_feedback").and_then(|f| serde_json::from_str::<serde_json::Value>(f).ok())
            {
                v["ad_review_feedback"] = f;
            }
            axum::Json(v).into_response()
        }
        ("GET", [run]) if st.jobs.iter().any(|j| j.0 == *run) => {
            let Some(job) = st.jobs.iter_mut().find(|j| j.0 == *run) else {
                return error(StatusCode::BAD_REQUEST, 100, "Object with ID does not exist");
            };
            // Running on the first poll, complete after.
            job.4 += 1;
            let (status, pct) = if job.4 < 2 { ("Job Running", 50) } else { ("Job Completed", 100) };
            axum::Json(json!({"id": run, "async_status": status, "async_percent_completion": pct})).into_response()
        }
        ("POST", [id, edge @ ("users" | "usersreplace")]) => {
            if !st.objects.iter().any(|o| o.id == *id && o.edge == "customaudiences") {
                return error(StatusCode::BAD_REQUEST, 100, "Object with ID does not exist");
            }
            let payload: serde_json::Value =
                q.get("payload").and_then(|p| serde_json::from_str(p).ok()).unwrap_or_default();
            let schema = payload["schema"].as_str().unwrap_or("").to_owned();
            let rows: Vec<String> = payload["data"]
                .as_array()
                .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
                .unwrap_or_default();
            if !matches!(schema.as_str(), "EMAIL" | "PHONE") || rows.is_empty() || rows.len() > 10_000 {
                return error(StatusCode::BAD_REQUEST, 100, "Invalid payload");
            }
            let session: serde_json::Value =
                q.get("session").and_then(|p| serde_json::from_str(p).ok()).unwrap_or_default();
            let (Some(session_id), Some(seq)) = (session["session_id"].as_u64(), session["batch_seq"].as_u64()) else {
                return error(StatusCode::BAD_REQUEST, 100, "Invalid session");
            };
            if seq == 0 {
                return error(StatusCode::BAD_REQUEST, 100, "Invalid session");
            }
            let received = rows.len();
            let last = session["last_batch_flag"].as_bool().unwrap_or(false);
            let members: Vec<(String, String)> = rows.iter().map(|r| (schema.clone(), r.clone())).collect();
            if *edge == "users" {
                st.audience_members.entry((*id).to_owned()).or_default().extend(members);
                st.audience_sessions.push(((*id).to_owned(), session));
                st.audience_rows.push(((*id).to_owned(), schema, rows));
            } else {
                // The members are swapped when the session's last batch arrives.
                let pending = st.replacing.entry(((*id).to_owned(), session_id)).or_default();
                pending.extend(members);
                st.replace_sessions.push(((*id).to_owned(), session));
                if last {
                    let new = st.replacing.remove(&((*id).to_owned(), session_id)).unwrap_or_default();
                    st.audience_members.insert((*id).to_owned(), new);
                }
            }
            axum::Json(json!({"audience_id": id, "session_id": session_id, "num_received": received, "num_invalid_entries": 0}))
                .into_response()
        }
        ("POST", [id]) => {
            let Some(o) = st.objects.iter_mut().find(|o| o.id == *id) else {
                return error(StatusCode::BAD_REQUEST, 100, "Object with ID does not exist");
            };
            for (k, v) in q.iter().filter(|(k, _)| !matches!(k.as_str(), "access_token" | "appsecret_proof")) {
                o.fields.insert(k.clone(), v.clone());
            }
            st.updates.push((
                (*id).to_owned(),
                q.keys().filter(|k| !matches!(k.as_str(), "access_token" | "appsecret_proof")).cloned().collect(),
            ));
            axum::Json(json!({"success": true})).into_response()
        }
        ("DELETE", [id]) => {
            let before = st.objects.len();
            st.objects.retain(|o| o.id != *id);
            if st.objects.len() == before {
                return error(StatusCode::BAD_REQUEST, 100, "Object with ID does not exist");
            }
            axum::Json(json!({"success": true})).into_response()
        }
        _ => error(StatusCode::BAD_REQUEST, 100, "Unsupported request"),
    }
}

/// A creative's picture hash and video (if any) are uploads of its ad account.
fn creative_media_ok(st: &State, account: &str, q: &HashMap<String, String>) -> bool {
    let spec: serde_json::Value =
        q.get("object_story_spec").and_then(|s| serde_json::from_str(s).ok()).unwrap_or_default();
    let image_ok = |h: &serde_json::Value| match h.as_str() {
        None => true,
        Some(h) => st.images.iter().any(|i| i.account == account && i.id == h),
    };
    let video_ok = match spec["video_data"]["video_id"].as_str() {
        None => spec["video_data"].is_null(),
        Some(v) => st.videos.iter().any(|f| f.account == account && f.id == v),
    };
    image_ok(&spec["link_data"]["image_hash"]) && image_ok(&spec["video_data"]["image_hash"]) && video_ok
}

/// `POST /{act}/adimages` (`bytes`, base64) and `/{act}/advideos` (multipart `source`).
fn upload(st: &mut State, account: &str, edge: &str, q: &HashMap<String, String>) -> Response {
    use base64::Engine as _;
    let name = q.get("name").cloned().unwrap_or_default();
    let data = if edge == "adimages" {
        q.get("bytes").and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
    } else {
        st.upload.take()
    };
    let Some(data) = data.filter(|d| !d.is_empty()) else {
        return error(StatusCode::BAD_REQUEST, 100, "Invalid parameter: the file is required");
    };
    if name.is_empty() {
        return error(StatusCode::BAD_REQUEST, 100, "Invalid parameter: name is required");
    }
    if st.fail.as_deref() == Some(edge) {
        return error(StatusCode::BAD_REQUEST, 100, "Invalid parameter");
    }
    *st.created.entry(edge.to_owned()).or_default() += 1;
    let answer = if edge == "adimages" {
        let hash = crate::fake::md5_hex(&data);
        st.images.push(FakeMetaFile { account: account.to_owned(), id: hash.clone(), name: name.clone(), data });
        json!({"images": {name.clone(): {"hash": hash, "url": format!("https://scontent.example/{hash}.jpg")}}})
    } else {
        st.seq += 1;
        let id = format!("2390{:06}", st.seq);
        st.videos.push(FakeMetaFile { account: account.to_owned(), id: id.clone(), name: name.clone(), data });
        let fields = HashMap::from([("name".to_owned(), name)]);
        st.objects.push(FakeMetaObject { id: id.clone(), edge: edge.to_owned(), account: account.to_owned(), fields });
        json!({"id": id})
    };
    if st.lose.as_deref() == Some(edge) {
        st.lose = None;
        return (StatusCode::INTERNAL_SERVER_ERROR, "upstream connect error").into_response();
    }
    axum::Json(answer).into_response()
}

/// Daily ad-level rows over `time_range` of a campaign's ads, an ad account's (`act_…`), or a
/// report run's (its account and range), paged by an offset cursor, with rate-limit headers at
/// the configured usage. Figures are deterministic per (ad, day).
fn insights(st: &mut State, object: &str, q: &HashMap<String, String>) -> Response {
    st.insights_calls.push(std::time::Instant::now());
    let job = st.jobs.iter().find(|j| j.0 == object).cloned();
    if job.as_ref().is_some_and(|j| j.4 < 2) {
        return error(StatusCode::BAD_REQUEST, 100, "The report is not ready");
    }
    let range: serde_json::Value = match &job {
        Some(j) => json!({"since": j.2, "until": j.3}),
        None => q.get("time_range").and_then(|r| serde_json::from_str(r).ok()).unwrap_or_default(),
    };
    let day = |k: &str| range[k].as_str().and_then(|d| chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").ok());
    let (Some(since), Some(until)) = (day("since"), day("until")) else {
        return error(StatusCode::BAD_REQUEST, 100, "time_range is required");
    };
    let account = job.map(|j| j.1).or_else(|| object.starts_with("act_").then(|| object.to_owned()));
    let days = usize::try_from((until - since).num_days() + 1).unwrap_or(0);
    let offset: usize = q.get("after").and_then(|a| a.parse().ok()).unwrap_or(0);
    let limit = q.get("limit").and_then(|l| l.parse().ok()).unwrap_or(25).min(MAX_INSIGHTS_PAGE);
    let take = st.insights_page.min(limit).max(1);
    let (page, total) = match (st.insights_generated, &account) {
        (Some(total), Some(_)) => {
            let ads = total.div_ceil(days.max(1)).max(1);
            let end = (offset + take).min(total);
            let page: Vec<serde_json::Value> = (offset.min(end)..end)
                .map(|k| {
                    let i = k % ads;
                    let ad = format!("{}", 9_000_000_000u64 + i as u64);
                    insight_row("7000000001", "8000000001", &ad, since, k / ads, i)
                })
                .collect();
            (page, total)
        }
        _ => {
            let ads = built_ads(st, object, account.as_deref());
            let rows: Vec<serde_json::Value> = (0..days)
                .flat_map(|n| {
                    ads.iter()
                        .enumerate()
                        .map(move |(i, (ad, adset, campaign))| insight_row(campaign, adset, ad, since, n, i))
                })
                .collect();
            let page: Vec<serde_json::Value> = rows.iter().skip(offset).take(take).cloned().collect();
            st.insights_served.extend(page.iter().cloned());
            (page, rows.len())
        }
    };
    st.insights_served_count += page.len();
    let end = offset + page.len();
    let mut body =
        json!({"data": page, "paging": {"cursors": {"before": offset.to_string(), "after": end.to_string()}}});
    if end < total {
        body["paging"]["next"] = json!(format!("https://graph.facebook.com/{object}/insights?after={end}"));
    }
    let pct = st.usage_percent;
    let buc = json!({"1234567890": [{"type": "ads_insights", "call_count": pct, "total_cputime": pct / 2, "total_time": pct / 2, "estimated_time_to_regain_access": 0}]});
    let acc = json!({"acc_id_util_pct": pct, "reset_time_duration": 0, "ads_api_access_tier": "standard_access"});
    let mut resp = axum::Json(body).into_response();
    let h = resp.headers_mut();
    h.insert("x-business-use-case-usage", buc.to_string().parse().expect("header"));
    h.insert("x-ad-account-usage", acc.to_string().parse().expect("header"));
    resp
}

/// (ad, ad set, campaign) of the ads built under a campaign, or under every campaign of an
/// ad account.
fn built_ads(st: &State, object: &str, account: Option<&str>) -> Vec<(String, String, String)> {
    let campaigns: Vec<String> = match account {
        Some(a) => {
            st.objects.iter().filter(|o| o.edge == "campaigns" && o.account == a).map(|o| o.id.clone()).collect()
        }
        None => vec![object.to_owned()],
    };
    let adsets: Vec<(String, String)> = st
        .objects
        .iter()
        .filter(|o| o.edge == "adsets")
        .filter_map(|o| {
            let c = o.fields.get("campaign_id").filter(|c| campaigns.contains(c))?;
            Some((o.id.clone(), c.clone()))
        })
        .collect();
    st.objects
        .iter()
        .filter(|o| o.edge == "ads")
        .filter_map(|o| {
            let a = o.fields.get("adset_id")?;
            adsets.iter().find(|(id, _)| id == a).map(|(id, c)| (o.id.clone(), id.clone(), c.clone()))
        })
        .collect()
}

/// The daily row of the `i`-th ad on the `n`-th day after `since`.
fn insight_row(
    campaign: &str,
    adset: &str,
    ad: &str,
    since: chrono::NaiveDate,
    n: usize,
    i: usize,
) -> serde_json::Value {
    let d = (since + chrono::Duration::days(n as i64)).to_string();
    let n = n as i64;
    let cents = 1234 + n * 37 + i as i64 * 5;
    let revenue = cents * 3;
    json!({
        "campaign_id": campaign, "adset_id": adset, "ad_id": ad,
        "date_start": d, "date_stop": d,
        "spend": format!("{}.{:02}", cents / 100, cents % 100),
        "impressions": (1000 + n * 11).to_string(), "reach": (800 + n * 7).to_string(), "clicks": (40 + n).to_string(),
        "actions": [{"action_type": "purchase", "value": (n % 3).to_string()}, {"action_type": "link_click", "value": "9"}],
        "action_values": [{"action_type": "purchase", "value": format!("{}.{:02}", revenue / 100, revenue % 100)}],
    })
}
