//! A fake TikTok API for Business on port 0 (`reference/providers.md` §9). Every answer is
//! `{"code","message","request_id","data"}` with HTTP 200; a non-zero `code` is the error, as
//! TikTok answers (40001 bad app, 40002 bad parameter, 40007 not found, 40050 duplicated
//! `request_id`, 40100 too frequent, 40105 bad token).
//!
//! - Connections: `POST /oauth2/access_token/` (`{app_id, secret, auth_code}` for a long-lived
//!   token and its advertiser ids) and `GET /advertiser/info/`.
//! - The builder's objects: `POST /{campaign|adgroup|ad}/create/` (a `request_id` seen before is
//!   refused with 40050), `GET /{kind}/get/?filtering={"<kind>_name": …}` (loose match, as
//!   TikTok's), `POST /{kind}/status/update/` (`ENABLE`, `DISABLE`, `DELETE`),
//!   `POST /adgroup/budget/update/`, `POST /file/image/ad/upload/` (by URL).
//! - Creative media by file: `POST /file/{image|video}/ad/upload/` (multipart, `upload_type`
//!   UPLOAD_BY_FILE, `image_file`/`video_file` and its MD5 as `image_signature` /
//!   `video_signature`: a signature that does not match the bytes is 40002) and
//!   `GET /file/{image|video}/ad/search/` (the advertiser's files with their signatures). An ad
//!   names an uploaded image (SINGLE_IMAGE) or an uploaded video and cover (SINGLE_VIDEO).
//! - `GET /report/integrated/get/`: daily ad-level rows of a campaign, paged, deterministic per
//!   (ad, day).
//! - Custom audiences: `POST /segment/audience/` (create), `POST /segment/mapping/` (hashes),
//!   `POST /dmp/custom_audience/lookalike/create/` and `POST /dmp/custom_audience/delete/`.
//!
//! The Content Posting API (organic posts, `/v2/…`, the same token as a Bearer) is served here
//! too, from [`crate::tiktok_posts`].
//!
//! Knobs: a kind made to fail ([`FakeTikTok::fail_create`]), to create and lose its answer
//! ([`FakeTikTok::lose_answer`]) or answer late ([`FakeTikTok::delay_answer`]); the next
//! requests throttled ([`FakeTikTok::throttle_next`]); counts of objects created and live.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State as AxState;
use axum::http::{HeaderMap, Method, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::FakeServer;
use crate::fake::lock;

pub const TEST_APP_ID: &str = "7000";
pub const TEST_SECRET: &str = "fake-tiktok-secret";
pub const TEST_AUTH_CODE: &str = "tiktok-code-ok";
const TOKEN: &str = "act.fake-tiktok-token";
const KINDS: &[&str] = &["campaign", "adgroup", "ad"];
/// The interest categories `/tool/interest_category/` lists: (id, name).
pub const INTEREST_CATEGORIES: &[(&str, &str)] =
    &[("10000", "Games"), ("11000", "Food & Beverage"), ("12000", "Baking & Desserts"), ("13000", "Sports")];

/// A picture or video uploaded by file.
#[derive(Debug, Clone)]
pub struct FakeTikTokFile {
    /// `image` or `video`.
    pub kind: String,
    pub id: String,
    pub advertiser: String,
    pub file_name: String,
    pub signature: String,
    pub data: Vec<u8>,
}

/// An object the builder created: its kind, id, advertiser and the body it was created with
/// (updates applied).
#[derive(Debug, Clone)]
pub struct FakeTikTokObject {
    pub kind: String,
    pub id: String,
    pub advertiser: String,
    pub name: String,
    pub fields: Value,
}

#[derive(Default)]
pub(crate) struct State {
    /// The content posting routes' state.
    pub(crate) posts: crate::tiktok_posts::Posts,
    /// Login Kit grants of creators.
    pub(crate) login: crate::tiktok_login::Login,
    log: Vec<(String, i64)>,
    objects: Vec<FakeTikTokObject>,
    created: HashMap<String, u32>,
    request_ids: HashSet<String>,
    fail: Option<String>,
    lose: Option<String>,
    delay: Option<(String, Duration)>,
    throttle: u32,
    seq: u64,
    images: Vec<String>,
    /// Pictures and videos uploaded by file.
    files: Vec<FakeTikTokFile>,
    /// (audience id, schema, hashes) of every mapping call that added.
    audience_rows: Vec<(String, String, Vec<String>)>,
    /// (audience id, schema, hashes) of every mapping call that removed.
    audience_removals: Vec<(String, String, Vec<String>)>,
    /// What each audience holds now: (schema, hash).
    audience_members: HashMap<String, BTreeSet<(String, String)>>,
    /// Mapping calls of this action (`add`, `delete`) fail with 50000, after `.1` more succeed.
    fail_mapping: Option<(String, u32)>,
    audiences: Vec<String>,
    /// Bodies of the lookalikes created.
    lookalikes: Vec<Value>,
    report_page_size: usize,
    report_served: Vec<Value>,
    /// (kind, ids, status) of every status update.
    status_updates: Vec<(String, Vec<String>, String)>,
}

pub struct FakeTikTok {
    /// The API root, for `tiktok.base_url`.
    pub base_url: String,
    state: Arc<Mutex<State>>,
    _server: FakeServer,
}

impl FakeTikTok {
    pub async fn start() -> FakeTikTok {
        let state = Arc::new(Mutex::new(State { report_page_size: 10, ..State::default() }));
        let router = Router::new().fallback(handle).with_state(state.clone());
        let server = FakeServer::start(router).await;
        FakeTikTok { base_url: server.base_url.clone(), state, _server: server }
    }

    pub(crate) fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// The latest creator token its Login Kit issued.
    pub fn creator_token(&self) -> Option<String> {
        self.state().login.latest()
    }

    /// Creator token renewals answered.
    pub fn creator_refreshes(&self) -> u32 {
        self.state().login.refreshes
    }

    /// (path, code answered) of every request.
    pub fn log(&self) -> Vec<(String, i64)> {
        self.state().log.clone()
    }

    /// Pictures or videos (`kind` `image`, `video`) uploaded by file, in order.
    pub fn files(&self, kind: &str) -> Vec<FakeTikTokFile> {
        self.state().files.iter().filter(|f| f.kind == kind).cloned().collect()
    }

    /// Creates of `kind` (`campaign`, `adgroup`, `ad`; `image`, `video`: uploads by file)
    /// fail with 40002.
    pub fn fail_create(&self, kind: &str) {
        self.state().fail = Some(kind.to_owned());
    }

    /// The next create (or upload by file) of `kind` happens but its answer is an HTTP 502.
    pub fn lose_answer(&self, kind: &str) {
        self.state().lose = Some(kind.to_owned());
    }

    /// Creates of `kind` happen at once and are answered after `wait`.
    pub fn delay_answer(&self, kind: &str, wait: Duration) {
        self.state().delay = Some((kind.to_owned(), wait));
    }

    /// The next `n` API requests are answered 40100 (too frequent).
    pub fn throttle_next(&self, n: u32) {
        self.state().throttle = n;
    }

    /// Objects of `kind` created, deleted ones included.
    pub fn created(&self, kind: &str) -> u32 {
        self.state().created.get(kind).copied().unwrap_or(0)
    }

    /// Objects of `kind` not deleted.
    pub fn live(&self, kind: &str) -> Vec<FakeTikTokObject> {
        self.state()
            .objects
            .iter()
            .filter(|o| o.kind == kind && o.fields["operation_status"] != "DELETE")
            .cloned()
            .collect()
    }

    /// (audience id, schema, hashes) of every audience mapping call that added.
    pub fn audience_rows(&self) -> Vec<(String, String, Vec<String>)> {
        self.state().audience_rows.clone()
    }

    /// (audience id, schema, hashes) of every audience mapping call that removed.
    pub fn audience_removals(&self) -> Vec<(String, String, Vec<String>)> {
        self.state().audience_removals.clone()
    }

    /// What an audience holds now: (schema, hash) of each member.
    pub fn audience_members(&self, audience: &str) -> BTreeSet<(String, String)> {
        self.state().audience_members.get(audience).cloned().unwrap_or_default()
    }

    /// Mapping calls of `action` (`add`, `delete`) fail with 50000 once `after` more have
    /// succeeded; `None` ends it.
    pub fn fail_mapping(&self, action: Option<(&str, u32)>) {
        self.state().fail_mapping = action.map(|(a, n)| (a.to_owned(), n));
    }

    /// The body of every lookalike created, as received.
    pub fn lookalikes(&self) -> Vec<Value> {
        self.state().lookalikes.clone()
    }

    /// The custom audiences that exist (created and not deleted).
    pub fn audiences(&self) -> Vec<String> {
        self.state().audiences.clone()
    }

    /// Every report row served.
    pub fn report_served(&self) -> Vec<Value> {
        self.state().report_served.clone()
    }

    /// (kind, ids, status) of every status update.
    pub fn status_updates(&self) -> Vec<(String, Vec<String>, String)> {
        self.state().status_updates.clone()
    }

    /// Sets a field of every object of `kind` (a review or delivery the platform decided),
    /// e.g. an ad's `secondary_status` and `reject_info`.
    pub fn set_field(&self, kind: &str, field: &str, value: Value) {
        for o in self.state().objects.iter_mut().filter(|o| o.kind == kind) {
            o.fields[field] = value.clone();
        }
    }
}

fn answer(code: i64, message: &str, data: Value) -> Response {
    axum::Json(json!({"code": code, "message": message, "request_id": "fake-req", "data": data})).into_response()
}

async fn handle(
    AxState(state): AxState<Arc<Mutex<State>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().trim_start_matches("/open_api/v1.3").to_owned();
    let q: HashMap<String, String> =
        url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes()).into_owned().collect();
    let (resp, wait) = {
        let mut st = lock(&state);
        if let Some(rest) = path.strip_prefix("/v2/") {
            if let Some(resp) = crate::tiktok_login::route(&mut st.login, rest, &headers, &body) {
                return resp;
            }
            // Only a creator's Login Kit token posts; the Business token (an advertiser's) is
            // refused as TikTok refuses it.
            let bearer =
                headers.get("authorization").and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
            let token = match bearer {
                Some(t) if st.login.accepts(t) => t.to_owned(),
                _ => String::new(),
            };
            crate::tiktok_posts::route(&mut st.posts, &token, rest, &headers, &body)
        } else {
            let (code, resp, wait) = route(&mut st, &method, &path, &q, &headers, &body);
            st.log.push((path, code));
            (resp, wait)
        }
    };
    if let Some(w) = wait {
        tokio::time::sleep(w).await;
    }
    resp
}

type Out = (i64, Response, Option<Duration>);

fn fail(code: i64, m: &str) -> Out {
    (code, answer(code, m, json!({})), None)
}

fn ok(data: Value) -> Out {
    (0, answer(0, "OK", data), None)
}

fn route(
    st: &mut State,
    method: &Method,
    path: &str,
    q: &HashMap<String, String>,
    headers: &HeaderMap,
    body: &[u8],
) -> Out {
    let b: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    if path == "/oauth2/access_token/" {
        if b["app_id"] != TEST_APP_ID || b["secret"] != TEST_SECRET {
            return fail(40001, "app_id or secret is invalid");
        }
        if b["auth_code"] != TEST_AUTH_CODE {
            return fail(40002, "auth_code is invalid");
        }
        return ok(json!({"access_token": TOKEN, "scope": [4, 5], "advertiser_ids": ["7001", "7002"]}));
    }
    if headers.get("Access-Token").and_then(|v| v.to_str().ok()) != Some(TOKEN) {
        return fail(40105, "The access token is invalid");
    }
    if st.throttle > 0 {
        st.throttle -= 1;
        return fail(40100, "Too many requests. Please retry in some time.");
    }
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let content_type = headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("");
    if let (true, ["file", kind @ ("image" | "video"), "ad", "upload"]) = (method == Method::POST, parts.as_slice())
        && let Some(form) = crate::fake::multipart(content_type, body)
    {
        return upload_file(st, kind, &form);
    }
    if method == Method::POST && b.is_null() {
        return fail(40002, "The request body is not valid JSON");
    }
    match (method.as_str(), parts.as_slice()) {
        ("GET", ["tool", "interest_category"]) => {
            let list: Vec<Value> = INTEREST_CATEGORIES
                .iter()
                .map(|(id, name)| {
                    json!({"interest_category_id": id, "interest_category_name": name, "level": 1,
                    "sub_category_ids": []})
                })
                .collect();
            ok(json!({"interest_categories": list}))
        }
        ("GET", ["advertiser", "info"]) => {
            let ids: Vec<String> =
                q.get("advertiser_ids").and_then(|s| serde_json::from_str(s).ok()).unwrap_or_default();
            let list: Vec<Value> = ids
                .iter()
                .map(|id| match id.as_str() {
                    "7001" => json!({"advertiser_id": "7001", "name": "Ana MX", "currency": "MXN", "timezone": "America/Mexico_City"}),
                    other => json!({"advertiser_id": other, "name": format!("Advertiser {other}"), "currency": "USD", "timezone": "UTC"}),
                })
                .collect();
            ok(json!({"list": list}))
        }
        ("POST", [kind, "create"]) if KINDS.contains(kind) => create(st, kind, &b),
        ("GET", [kind, "get"]) if KINDS.contains(kind) => {
            let filtering: Value = q.get("filtering").and_then(|f| serde_json::from_str(f).ok()).unwrap_or_default();
            let wanted = filtering[format!("{kind}_name")].as_str().map(str::to_owned);
            let ids: Option<Vec<String>> = filtering[format!("{kind}_ids")]
                .as_array()
                .map(|a| a.iter().filter_map(|x| x.as_str().map(str::to_owned)).collect());
            let adv = q.get("advertiser_id").cloned().unwrap_or_default();
            let list: Vec<Value> = st
                .objects
                .iter()
                .filter(|o| o.kind == *kind && o.advertiser == adv && o.fields["operation_status"] != "DELETE")
                .filter(|o| wanted.as_ref().is_none_or(|w| o.name.contains(w.as_str())))
                .filter(|o| ids.as_ref().is_none_or(|ids| ids.contains(&o.id)))
                .map(|o| {
                    let mut v = o.fields.clone();
                    v[format!("{kind}_id")] = json!(o.id);
                    v[format!("{kind}_name")] = json!(o.name);
                    v
                })
                .collect();
            ok(
                json!({"list": list, "page_info": {"page": 1, "page_size": 100, "total_number": list.len(), "total_page": 1}}),
            )
        }
        ("POST", [kind, "status", "update"]) if KINDS.contains(kind) => {
            let ids: Vec<String> = b[format!("{kind}_ids")]
                .as_array()
                .map(|a| a.iter().filter_map(|x| x.as_str().map(str::to_owned)).collect())
                .unwrap_or_default();
            let status = b["operation_status"].as_str().unwrap_or("").to_owned();
            if ids.is_empty() || !matches!(status.as_str(), "ENABLE" | "DISABLE" | "DELETE") {
                return fail(40002, "operation_status and ids are required");
            }
            for id in &ids {
                let Some(o) = st.objects.iter_mut().find(|o| o.kind == *kind && &o.id == id) else {
                    return fail(40007, "The object does not exist");
                };
                if o.fields["operation_status"] == "DELETE" {
                    return fail(40007, "The object does not exist");
                }
                o.fields["operation_status"] = json!(status);
            }
            st.status_updates.push(((*kind).to_owned(), ids, status));
            ok(json!({}))
        }
        ("POST", ["adgroup", "budget", "update"]) => {
            let Some(items) = b["budget"].as_array().cloned() else {
                return fail(40002, "budget is required");
            };
            for item in items {
                let id = item["adgroup_id"].as_str().unwrap_or("");
                let Some(amount) = item["budget"].as_f64() else {
                    return fail(40002, "budget must be a number");
                };
                let Some(o) = st.objects.iter_mut().find(|o| o.kind == "adgroup" && o.id == id) else {
                    return fail(40007, "The ad group does not exist");
                };
                o.fields["budget"] = json!(amount);
            }
            ok(json!({}))
        }
        ("POST", ["file", "image", "ad", "upload"]) => {
            let url = b["image_url"].as_str().unwrap_or("");
            if b["upload_type"] != "UPLOAD_BY_URL" || !url.starts_with("https://") {
                return fail(40002, "image_url is invalid");
            }
            st.seq += 1;
            let id = format!("ad-image-{}", st.seq);
            st.images.push(id.clone());
            ok(json!({"image_id": id, "image_url": url, "width": 1200, "height": 628}))
        }
        ("GET", ["file", kind @ ("image" | "video"), "ad", "search"]) => {
            let adv = q.get("advertiser_id").cloned().unwrap_or_default();
            let list: Vec<Value> = st
                .files
                .iter()
                .rev()
                .filter(|f| f.kind == *kind && f.advertiser == adv)
                .map(|f| json!({ format!("{kind}_id"): f.id, "file_name": f.file_name, "signature": f.signature, "size": f.data.len() }))
                .collect();
            ok(
                json!({"list": list, "page_info": {"page": 1, "page_size": 100, "total_number": list.len(), "total_page": 1}}),
            )
        }
        ("GET", ["report", "integrated", "get"]) => report(st, q),
        ("POST", ["segment", "audience"]) => {
            if b["action"] != "create" || b["custom_audience_name"].as_str().is_none_or(str::is_empty) {
                return fail(40002, "custom_audience_name is required");
            }
            st.seq += 1;
            let id = format!("{}", 9_100_000 + st.seq);
            st.audiences.push(id.clone());
            ok(json!({"audience_id": id}))
        }
        ("POST", ["segment", "mapping"]) => mapping(st, &b),
        ("POST", ["dmp", "custom_audience", "lookalike", "create"]) => {
            let spec = &b["lookalike_spec"];
            let source = spec["source_audience_id"].as_str().unwrap_or("");
            if b["custom_audience_name"].as_str().is_none_or(str::is_empty)
                || !matches!(spec["audience_size"].as_str(), Some("NARROW" | "BALANCED" | "BROAD"))
                || spec["location_ids"].as_array().is_none_or(Vec::is_empty)
            {
                return fail(40002, "custom_audience_name, audience_size and location_ids are required");
            }
            if !st.audiences.iter().any(|a| a == source) {
                return fail(40007, "The source audience does not exist");
            }
            st.seq += 1;
            let id = format!("{}", 9_200_000 + st.seq);
            st.audiences.push(id.clone());
            st.lookalikes.push(b.clone());
            ok(json!({"custom_audience_id": id}))
        }
        ("POST", ["dmp", "custom_audience", "delete"]) => {
            let ids: Vec<String> = b["custom_audience_ids"]
                .as_array()
                .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
                .unwrap_or_default();
            if b["advertiser_id"].as_str().is_none_or(str::is_empty) || ids.is_empty() {
                return fail(40002, "advertiser_id and custom_audience_ids are required");
            }
            if !ids.iter().all(|id| st.audiences.contains(id)) {
                return fail(40007, "The audience does not exist");
            }
            st.audiences.retain(|a| !ids.contains(a));
            ok(json!({}))
        }
        _ => fail(40002, "unknown endpoint"),
    }
}

fn create(st: &mut State, kind: &str, b: &Value) -> Out {
    let rid = b["request_id"].as_str().unwrap_or("");
    if rid.is_empty() || !rid.bytes().all(|c| c.is_ascii_digit()) {
        return fail(40002, "request_id must be a numeric string");
    }
    if st.request_ids.contains(rid) {
        return fail(40050, "Duplicated request, please try again later");
    }
    if st.fail.as_deref() == Some(kind) {
        return fail(40002, "Invalid parameter");
    }
    let adv = b["advertiser_id"].as_str().unwrap_or("").to_owned();
    let exists = |k: &str, id: &Value| st.objects.iter().any(|o| o.kind == k && Some(o.id.as_str()) == id.as_str());
    let name = match kind {
        "campaign" => {
            if b["objective_type"].as_str().is_none() || b["budget_mode"].as_str().is_none() {
                return fail(40002, "objective_type and budget_mode are required");
            }
            b["campaign_name"].as_str()
        }
        "adgroup" => {
            if !exists("campaign", &b["campaign_id"]) {
                return fail(40007, "The campaign does not exist");
            }
            if b["budget"].as_f64().is_none() || b["optimization_goal"].as_str().is_none() {
                return fail(40002, "budget and optimization_goal are required");
            }
            b["adgroup_name"].as_str()
        }
        _ => {
            if !exists("adgroup", &b["adgroup_id"]) {
                return fail(40007, "The ad group does not exist");
            }
            let c = &b["creatives"][0];
            let image = c["image_ids"][0].as_str().unwrap_or("");
            if c["identity_id"].as_str().is_none()
                || c["ad_text"].as_str().is_none()
                || !st.images.iter().any(|i| i == image)
            {
                return fail(40002, "creatives need identity_id, ad_text and an uploaded image");
            }
            let video = c["video_id"].as_str();
            let video_known = |v: &str| st.files.iter().any(|f| f.kind == "video" && f.id == v);
            match (c["ad_format"].as_str(), video) {
                (Some("SINGLE_IMAGE"), None) => {}
                (Some("SINGLE_VIDEO"), Some(v)) if video_known(v) => {}
                _ => {
                    return fail(
                        40002,
                        "ad_format must match the creative: SINGLE_IMAGE, or SINGLE_VIDEO with an uploaded video_id",
                    );
                }
            }
            c["ad_name"].as_str()
        }
    };
    let Some(name) = name.filter(|n| !n.is_empty()).map(str::to_owned) else {
        return fail(40002, "name is required");
    };
    let status = b["operation_status"].as_str().unwrap_or("ENABLE");
    if !matches!(status, "ENABLE" | "DISABLE") {
        return fail(40002, "operation_status must be ENABLE or DISABLE");
    }
    st.request_ids.insert(rid.to_owned());
    st.seq += 1;
    let id = format!("{}{:06}", 1_700 + KINDS.iter().position(|k| *k == kind).unwrap_or(0), st.seq);
    let mut fields = b.clone();
    fields["operation_status"] = json!(status);
    fields["secondary_status"] = json!(format!("{}_STATUS_DISABLE", kind.to_uppercase()));
    st.objects.push(FakeTikTokObject { kind: kind.to_owned(), id: id.clone(), advertiser: adv, name, fields });
    *st.created.entry(kind.to_owned()).or_default() += 1;
    if st.lose.as_deref() == Some(kind) {
        st.lose = None;
        return (0, (axum::http::StatusCode::BAD_GATEWAY, "upstream error").into_response(), None);
    }
    let data = if kind == "ad" { json!({"ad_ids": [id]}) } else { json!({ format!("{kind}_id"): id }) };
    let wait = st.delay.as_ref().filter(|(k, _)| k == kind).map(|(_, w)| *w);
    (0, answer(0, "OK", data), wait)
}

/// `POST /file/{image|video}/ad/upload/` by file: the signature must be the file's MD5.
fn upload_file(st: &mut State, kind: &str, form: &[crate::fake::FormPart]) -> Out {
    let field = |n: &str| form.iter().find(|p| p.name == n);
    let text = |n: &str| field(n).map(|p| p.text()).unwrap_or_default();
    let Some(file) = field(&format!("{kind}_file")).filter(|f| f.filename.is_some() && !f.data.is_empty()) else {
        return fail(40002, "the file is required");
    };
    if text("upload_type") != "UPLOAD_BY_FILE" || text("advertiser_id").is_empty() {
        return fail(40002, "upload_type UPLOAD_BY_FILE and advertiser_id are required");
    }
    let signature = text(&format!("{kind}_signature"));
    if signature != crate::fake::md5_hex(&file.data) {
        return fail(40002, "The file signature does not match the file");
    }
    if st.fail.as_deref() == Some(kind) {
        return fail(40002, "Invalid parameter");
    }
    st.seq += 1;
    let id = format!("ad-{kind}-{}", st.seq);
    let file_name = text("file_name");
    st.files.push(FakeTikTokFile {
        kind: kind.to_owned(),
        id: id.clone(),
        advertiser: text("advertiser_id"),
        file_name: file_name.clone(),
        signature: signature.clone(),
        data: file.data.clone(),
    });
    if kind == "image" {
        st.images.push(id.clone());
    }
    *st.created.entry(format!("{kind}_file")).or_default() += 1;
    if st.lose.as_deref() == Some(kind) {
        st.lose = None;
        return (0, (axum::http::StatusCode::BAD_GATEWAY, "upstream error").into_response(), None);
    }
    let data = if kind == "video" {
        json!([{"video_id": id, "file_name": file_name, "signature": signature, "size": file.data.len(),
            "video_cover_url": format!("https://p16-sign.tiktokcdn.example/cover-{id}.jpg")}])
    } else {
        json!({"image_id": id, "file_name": file_name, "signature": signature, "size": file.data.len()})
    };
    let wait = st.delay.as_ref().filter(|(k, _)| k == kind).map(|(_, w)| *w);
    (0, answer(0, "OK", data), wait)
}

/// Daily ad-level rows of the filtered campaign's ads, `page_size` capped at the fake's page.
fn report(st: &mut State, q: &HashMap<String, String>) -> Out {
    let day = |k: &str| q.get(k).and_then(|d| chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").ok());
    let (Some(since), Some(until)) = (day("start_date"), day("end_date")) else {
        return fail(40002, "start_date and end_date are required");
    };
    if q.get("data_level").map(String::as_str) != Some("AUCTION_AD") || q.get("report_type").is_none() {
        return fail(40002, "report_type and data_level are required");
    }
    if (until - since).num_days() > 365 {
        return fail(40002, "The time span cannot exceed 365 days");
    }
    let filtering: Value = q.get("filtering").and_then(|f| serde_json::from_str(f).ok()).unwrap_or_default();
    let campaigns: Vec<String> =
        filtering[0]["filter_value"].as_str().and_then(|v| serde_json::from_str(v).ok()).unwrap_or_default();
    let adgroups: Vec<(String, String)> = st
        .objects
        .iter()
        .filter(|o| {
            o.kind == "adgroup" && o.fields["campaign_id"].as_str().is_some_and(|c| campaigns.iter().any(|x| x == c))
        })
        .map(|o| (o.id.clone(), o.fields["campaign_id"].as_str().unwrap_or("").to_owned()))
        .collect();
    let ads: Vec<(String, String, String)> = st
        .objects
        .iter()
        .filter(|o| o.kind == "ad")
        .filter_map(|o| {
            let g = o.fields["adgroup_id"].as_str()?;
            adgroups.iter().find(|(id, _)| id == g).map(|(id, c)| (o.id.clone(), id.clone(), c.clone()))
        })
        .collect();
    let mut rows = Vec::new();
    let mut d = since;
    while d <= until {
        let n = (d - since).num_days();
        for (i, (ad, adgroup, campaign)) in ads.iter().enumerate() {
            let cents = 2_345 + n * 41 + i as i64 * 7;
            let value = cents * 2 + 1;
            rows.push(json!({
                "dimensions": {"ad_id": ad, "stat_time_day": format!("{d} 00:00:00")},
                "metrics": {
                    "campaign_id": campaign, "adgroup_id": adgroup,
                    "spend": format!("{}.{:02}", cents / 100, cents % 100),
                    "impressions": (2_000 + n * 13).to_string(), "reach": (1_500 + n * 9).to_string(),
                    "clicks": (60 + n).to_string(), "conversion": (n % 4).to_string(),
                    "total_purchase_value": format!("{}.{:02}", value / 100, value % 100),
                },
            }));
        }
        let Some(next) = d.succ_opt() else { break };
        d = next;
    }
    let size: usize =
        q.get("page_size").and_then(|p| p.parse().ok()).unwrap_or(10).clamp(1, 1000).min(st.report_page_size);
    let page: usize = q.get("page").and_then(|p| p.parse().ok()).unwrap_or(1).max(1);
    let list: Vec<Value> = rows.iter().skip((page - 1) * size).take(size).cloned().collect();
    st.report_served.extend(list.iter().cloned());
    let total_page = rows.len().div_ceil(size).max(1);
    ok(
        json!({"list": list, "page_info": {"page": page, "page_size": size, "total_number": rows.len(), "total_page": total_page}}),
    )
}

fn mapping(st: &mut State, b: &Value) -> Out {
    let schema = b["id_schema"][0].as_str().unwrap_or("").to_owned();
    let action = b["action"].as_str().unwrap_or("").to_owned();
    if !matches!(action.as_str(), "add" | "delete") || !matches!(schema.as_str(), "EMAIL_SHA256" | "PHONE_SHA256") {
        return fail(40002, "action and id_schema are invalid");
    }
    let Some(batch) = b["batch_data"].as_array() else {
        return fail(40002, "batch_data is required");
    };
    if batch.is_empty() || batch.len() > 10_000 {
        return fail(40002, "batch_data must hold 1 to 10000 records");
    }
    let mut by_audience: HashMap<String, Vec<String>> = HashMap::new();
    for record in batch {
        let r = &record[0];
        let (Some(id), Some(aud)) = (r["id"].as_str(), r["audience_ids"][0].as_str()) else {
            return fail(40002, "each record needs id and audience_ids");
        };
        if !st.audiences.iter().any(|a| a == aud) {
            return fail(40007, "The audience does not exist");
        }
        by_audience.entry(aud.to_owned()).or_default().push(id.to_owned());
    }
    if let Some((failing, after)) = &mut st.fail_mapping
        && *failing == action
    {
        if *after == 0 {
            return fail(50000, "System error, please retry later");
        }
        *after -= 1;
    }
    for (aud, ids) in by_audience {
        let held = st.audience_members.entry(aud.clone()).or_default();
        for id in &ids {
            if action == "add" {
                held.insert((schema.clone(), id.clone()));
            } else {
                held.remove(&(schema.clone(), id.clone()));
            }
        }
        let log = if action == "add" { &mut st.audience_rows } else { &mut st.audience_removals };
        log.push((aud, schema.clone(), ids));
    }
    ok(json!({}))
}
