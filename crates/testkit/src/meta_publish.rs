//! Instagram content publishing and Facebook Page posts on [`FakeMeta`]
//! (`reference/providers.md` §8, §9c), for a scheduler that must publish each post exactly once.
//! The account is the one `/me/accounts` lists: page [`TEST_PAGE_ID`] with Instagram business
//! account [`TEST_IG_USER_ID`]; other ids answer code 100.
//!
//! Instagram (the user token):
//! - `POST /{ig_user}/media`: a container (`image_url`; `media_type=REELS|STORIES` with
//!   `video_url`/`image_url`; carousel items with `is_carousel_item=true`, videos as
//!   `media_type=VIDEO`; `media_type=CAROUSEL` with `children` = 2–10 item ids). A caption over
//!   2,200 characters, a missing URL or a bad child is code 100.
//! - `GET /{container}?fields=status_code,status`: `IN_PROGRESS` for the first
//!   [`FakeMeta::processing_polls`] reads, then `FINISHED` (`ERROR` when a `video_url` contains
//!   "bad"), `PUBLISHED` once published, `EXPIRED` after [`FakeMeta::expire_containers`].
//! - `POST /{ig_user}/media_publish?creation_id=`: publishes a finished container once; again is
//!   code 100 "Media already published", not finished is 9007 / 2207027, past the quota is
//!   9 / 2207042.
//! - `GET /{ig_user}/media` (newest first, `limit`), `GET /{media}` (`id`, `caption`,
//!   `permalink` = `https://instagram.local/p/<id>`, `like_count`, `comments_count`, `views`
//!   when set), `GET /{ig_user}/content_publishing_limit` (`quota_usage` = Instagram
//!   publishes here and [`FakeMeta::publish_elsewhere`], `config.quota_total` 100), `POST /{media}/comments`.
//!
//! Pages: `GET /{page}?fields=access_token` (user token) answers the page token, which the rest
//! need (a user token there is code 200): `POST /{page}/feed` (`message`, `link`),
//! `POST /{page}/photos` (`url`, `caption`; answers `id` and `post_id`), `GET /{page}/posts`
//! (newest first, `permalink_url`), `GET /{post}` (`reactions` and `comments` summaries,
//! `shares`), `POST /{post}/comments`.
//!
//! Knobs: [`FakeMeta::lose_publish`] (the next publishes, Instagram or page, happen but their
//! answer is lost: held past the client's timeout or answered 500),
//! [`FakeMeta::publish_rate_limited`] (code 4), [`FakeMeta::set_quota_total`] (refusals counted:
//! [`FakeMeta::quota_refusals`]), [`FakeMeta::slow_publishes`] (a publish waits before it
//! happens), [`FakeMeta::post_on_page`] (a post made outside the API), [`FakeMeta::age_posts`]
//! (listings give `timestamp` / `created_time`),
//! [`FakeMeta::revoke_token`] / [`FakeMeta::restore_token`] (every user and page call is code
//! 190), [`FakeMeta::set_engagement`]. Accessors: [`FakeMeta::published`],
//! [`FakeMeta::publish_count`], [`FakeMeta::comments`], [`FakeMeta::engagement`].
//!
//! State is behind the server's one lock and each request is judged whole under it, so
//! concurrent publishes of one container publish it once.

use std::collections::HashMap;
use std::time::Duration;

use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::meta::{FakeMeta, error, error_sub};

pub const TEST_PAGE_ID: &str = "555";
pub const TEST_IG_USER_ID: &str = "1784";
const MAX_CAPTION: usize = 2_200;

/// How a lost publish answer is lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoseMode {
    /// The success answer is held this long (longer than the client waits).
    Timeout(Duration),
    /// HTTP 500 with a plain-text body.
    Error500,
}

/// Engagement figures the fake answers for a media or post.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FakeEngagement {
    pub likes: i64,
    pub comments: i64,
    pub shares: i64,
    pub views: i64,
}

/// Who is calling: the user (long-lived user token) or a page (its page token).
pub(crate) enum Caller {
    User,
    Page(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Open,
    Published,
    Expired,
}

struct Container {
    ig_user: String,
    fields: HashMap<String, String>,
    /// Status reads still answered `IN_PROGRESS`.
    processing: u32,
    stage: Stage,
}

impl Container {
    fn is_item(&self) -> bool {
        self.fields.get("is_carousel_item").is_some_and(|v| v == "true")
    }

    fn failed(&self) -> bool {
        self.fields.get("video_url").is_some_and(|u| u.contains("bad"))
    }
}

/// A published Instagram media or page post.
struct Post {
    platform: &'static str,
    account: String,
    id: String,
    text: String,
    permalink: String,
    /// Listed as `timestamp` (Instagram) or `created_time` (pages).
    created: chrono::DateTime<chrono::Utc>,
}

pub(crate) struct Publishing {
    containers: HashMap<String, Container>,
    /// In publishing order.
    posts: Vec<Post>,
    seq: u64,
    processing_polls: u32,
    lose: u32,
    lose_mode: LoseMode,
    rate_limited: u32,
    quota_total: u32,
    /// Instagram posts other tools published through the API (they count against the quota).
    published_elsewhere: u32,
    /// Instagram publishes refused for the quota.
    quota_refusals: u32,
    pub(crate) token_revoked: bool,
    engagement: HashMap<String, FakeEngagement>,
    /// (media or post id, message).
    comments: Vec<(String, String)>,
    /// How long to hold the answer being made (a publish whose answer is lost by timing out).
    pub(crate) hold: Option<Duration>,
    /// How long a publish waits before it happens (a slow platform).
    pub(crate) slow: Option<Duration>,
}

impl Default for Publishing {
    fn default() -> Self {
        Publishing {
            containers: HashMap::new(),
            posts: Vec::new(),
            seq: 0,
            processing_polls: 0,
            lose: 0,
            lose_mode: LoseMode::Error500,
            rate_limited: 0,
            quota_total: 100,
            published_elsewhere: 0,
            quota_refusals: 0,
            token_revoked: false,
            engagement: HashMap::new(),
            comments: Vec::new(),
            hold: None,
            slow: None,
        }
    }
}

fn page_token(page: &str) -> String {
    format!("EAAfake-page-{page}")
}

impl Publishing {
    /// How long a request waits before it is judged: a publish (Instagram or page) while
    /// [`FakeMeta::slow_publishes`] holds them.
    pub(crate) fn slow_for(&self, method: &Method, path: &str) -> Option<Duration> {
        let publish = method == Method::POST
            && (path.ends_with("/media_publish") || path.ends_with("/feed") || path.ends_with("/photos"));
        if publish { self.slow } else { None }
    }

    /// The page whose token this is.
    pub(crate) fn page_of(&self, token: &str) -> Option<String> {
        (token == page_token(TEST_PAGE_ID)).then(|| TEST_PAGE_ID.to_owned())
    }

    fn next_id(&mut self, prefix: &str) -> String {
        self.seq += 1;
        format!("{prefix}{:08}", self.seq)
    }

    /// Instagram publishes so far (the publishing limit's usage).
    fn instagram_published(&self) -> usize {
        self.posts.iter().filter(|m| m.platform == "instagram").count()
    }

    /// The account's quota used: its API publishes here and those other tools made.
    fn quota_used(&self) -> usize {
        self.instagram_published() + self.published_elsewhere as usize
    }

    fn post(&self, id: &str) -> Option<&Post> {
        self.posts.iter().find(|p| p.id == id)
    }

    /// Set figures, else figures that follow from the id (comments made here added).
    fn engagement_of(&self, id: &str) -> FakeEngagement {
        let made = self.comments.iter().filter(|(on, _)| on == id).count() as i64;
        if let Some(e) = self.engagement.get(id) {
            return FakeEngagement { comments: e.comments + made, ..*e };
        }
        let digits: i64 = id.chars().filter_map(|c| c.to_digit(10)).map(i64::from).sum();
        FakeEngagement { likes: digits * 3, comments: digits % 7 + made, shares: digits % 5, views: 0 }
    }
}

fn ok(v: Value) -> Response {
    axum::Json(v).into_response()
}

fn bad(message: &str) -> Response {
    error(StatusCode::BAD_REQUEST, 100, message)
}

fn missing(id: &str) -> Response {
    bad(&format!("Object with ID '{id}' does not exist, cannot be loaded due to missing permissions"))
}

fn needs_page_token() -> Response {
    error(StatusCode::FORBIDDEN, 200, "(#200) This call needs the page's access token")
}

pub(crate) fn needs_user_token() -> Response {
    error(StatusCode::FORBIDDEN, 200, "(#200) This call needs a user access token")
}

/// The answer to a publishing request, or `None` when the path is not one (the ad routes
/// follow).
pub(crate) fn route(
    p: &mut Publishing,
    method: &Method,
    path: &str,
    q: &HashMap<String, String>,
    caller: &Caller,
) -> Option<Response> {
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let get = |k: &str| q.get(k).map(String::as_str).unwrap_or("");
    let user = matches!(caller, Caller::User);
    let page_ok = |page: &str| matches!(caller, Caller::Page(p) if p == page);
    let resp = match (method.as_str(), parts.as_slice()) {
        (_, [_, "media" | "media_publish" | "content_publishing_limit"]) if !user => needs_user_token(),
        (_, [ig, "media" | "media_publish" | "content_publishing_limit"]) if *ig != TEST_IG_USER_ID => missing(ig),
        ("POST", [ig, "media"]) => create_container(p, ig, q),
        ("GET", [ig, "media"]) => {
            listing(p, ("instagram", ig), get("limit"), get("after"), ("caption", "permalink", "timestamp"))
        }
        ("POST", [ig, "media_publish"]) => publish_container(p, ig, get("creation_id")),
        ("GET", [_, "content_publishing_limit"]) => {
            let config = json!({"quota_total": p.quota_total, "quota_duration": 86400});
            ok(json!({"data": [{"quota_usage": p.quota_used(), "config": config}]}))
        }
        (_, [page, "feed" | "photos" | "posts"]) if *page != TEST_PAGE_ID => missing(page),
        (_, [page, "feed" | "photos" | "posts"]) if !page_ok(page) => needs_page_token(),
        ("POST", [page, edge @ ("feed" | "photos")]) => publish_page(p, page, edge, q),
        ("GET", [page, "posts"]) => {
            listing(p, ("facebook", page), get("limit"), get("after"), ("message", "permalink_url", "created_time"))
        }
        ("POST", [on, "comments"]) => comment(p, on, get("message"), caller),
        ("GET", [id]) => read(p, id, caller)?,
        _ => return None,
    };
    Some(resp)
}

fn create_container(p: &mut Publishing, ig: &str, q: &HashMap<String, String>) -> Response {
    let get = |k: &str| q.get(k).map(String::as_str).unwrap_or("");
    if get("caption").chars().count() > MAX_CAPTION {
        return bad("The caption is too long (at most 2,200 characters)");
    }
    let item = get("is_carousel_item") == "true";
    let url_ok = match get("media_type") {
        "" => !get("image_url").is_empty(),
        "REELS" => !get("video_url").is_empty(),
        "STORIES" => !get("image_url").is_empty() || !get("video_url").is_empty(),
        "VIDEO" => item && !get("video_url").is_empty(),
        "CAROUSEL" => {
            let children: Vec<&str> = get("children").split(',').filter(|c| !c.is_empty()).collect();
            let valid = children.iter().all(|c| p.containers.get(*c).is_some_and(|k| k.is_item() && k.ig_user == ig));
            if !(2..=10).contains(&children.len()) || !valid {
                return bad("Invalid parameter: children must be 2 to 10 carousel item containers");
            }
            true
        }
        other => return bad(&format!("Invalid parameter: media_type {other}")),
    };
    if !url_ok {
        return bad("Invalid parameter: the media URL is missing");
    }
    let fields: HashMap<String, String> = q
        .iter()
        .filter(|(k, _)| !matches!(k.as_str(), "access_token" | "appsecret_proof"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let id = p.next_id("1780");
    let processing = p.processing_polls;
    p.containers.insert(id.clone(), Container { ig_user: ig.to_owned(), fields, processing, stage: Stage::Open });
    ok(json!({ "id": id }))
}

/// Whether processing the container, or one of its carousel items, fails.
fn failed(p: &Publishing, id: &str) -> bool {
    p.containers.get(id).is_some_and(|c| {
        c.failed()
            || c.fields
                .get("children")
                .is_some_and(|ch| ch.split(',').any(|k| p.containers.get(k).is_some_and(Container::failed)))
    })
}

/// `status_code` and `status` of a container (one status read counted).
fn status_of(p: &mut Publishing, id: &str) -> (&'static str, String) {
    let failed = failed(p, id);
    let Some(c) = p.containers.get_mut(id) else { return ("", String::new()) };
    let code = match c.stage {
        Stage::Published => "PUBLISHED",
        Stage::Expired => "EXPIRED",
        Stage::Open if c.processing > 0 => {
            c.processing -= 1;
            "IN_PROGRESS"
        }
        Stage::Open if failed => "ERROR",
        Stage::Open => "FINISHED",
    };
    let status = match code {
        "ERROR" => "ERROR: Media upload has failed with error code 2207026".to_owned(),
        other => format!("{other}: fake"),
    };
    (code, status)
}

/// A refusal the publish knobs ask for, counted down.
fn refused_by_knob(p: &mut Publishing) -> Option<Response> {
    if p.rate_limited > 0 {
        p.rate_limited -= 1;
        return Some(error(StatusCode::BAD_REQUEST, 4, "(#4) Application request limit reached"));
    }
    None
}

/// The answer to a publish that happened: as is, or lost as the knob says.
fn answer_published(p: &mut Publishing, v: Value) -> Response {
    if p.lose == 0 {
        return ok(v);
    }
    p.lose -= 1;
    match p.lose_mode {
        LoseMode::Timeout(wait) => {
            p.hold = Some(wait);
            ok(v)
        }
        LoseMode::Error500 => (StatusCode::INTERNAL_SERVER_ERROR, "upstream connect error").into_response(),
    }
}

fn publish_container(p: &mut Publishing, ig: &str, creation_id: &str) -> Response {
    if let Some(refused) = refused_by_knob(p) {
        return refused;
    }
    let Some(c) = p.containers.get(creation_id).filter(|c| c.ig_user == ig) else {
        return missing(creation_id);
    };
    if c.is_item() {
        return bad("Invalid parameter: a carousel item is published through its carousel");
    }
    match c.stage {
        Stage::Published => return bad("Media already published"),
        Stage::Expired => return bad("The media container has expired"),
        Stage::Open => {}
    }
    if c.processing > 0 || failed(p, creation_id) {
        return error_sub(StatusCode::BAD_REQUEST, 9007, Some(2_207_027), "The media is not ready for publishing");
    }
    let caption = c.fields.get("caption").cloned().unwrap_or_default();
    if p.quota_used() >= p.quota_total as usize {
        p.quota_refusals += 1;
        let message = "The account has reached its limit of posts published through the API in 24 hours";
        return error_sub(StatusCode::BAD_REQUEST, 9, Some(2_207_042), message);
    }
    let id = p.next_id("1790");
    if let Some(c) = p.containers.get_mut(creation_id) {
        c.stage = Stage::Published;
    }
    let permalink = format!("https://instagram.local/p/{id}");
    let created = chrono::Utc::now();
    p.posts.push(Post {
        platform: "instagram",
        account: ig.to_owned(),
        id: id.clone(),
        text: caption,
        permalink,
        created,
    });
    answer_published(p, json!({ "id": id }))
}

fn publish_page(p: &mut Publishing, page: &str, edge: &str, q: &HashMap<String, String>) -> Response {
    let get = |k: &str| q.get(k).map(String::as_str).unwrap_or("").to_owned();
    if let Some(refused) = refused_by_knob(p) {
        return refused;
    }
    let (text, photo) = if edge == "photos" {
        if get("url").is_empty() {
            return bad("Invalid parameter: url is required");
        }
        (get("caption"), Some(p.next_id("1770")))
    } else {
        if get("message").is_empty() && get("link").is_empty() {
            return bad("Invalid parameter: message or link is required");
        }
        (get("message"), None)
    };
    let post = format!("{page}_{}", p.next_id("1"));
    let permalink = format!("https://facebook.local/{page}/posts/{post}");
    let created = chrono::Utc::now();
    p.posts.push(Post { platform: "facebook", account: page.to_owned(), id: post.clone(), text, permalink, created });
    let v = match photo {
        Some(photo) => json!({"id": photo, "post_id": post}),
        None => json!({ "id": post }),
    };
    answer_published(p, v)
}

/// An account's posts, newest first, at most 100 a page, with Graph's `after` cursor (here the
/// offset) and a `next` link while more remain; `(text, link, time)` name the fields.
fn listing(
    p: &Publishing,
    (platform, account): (&str, &str),
    limit: &str,
    after: &str,
    (text, link, time): (&str, &str, &str),
) -> Response {
    let limit: usize = limit.parse::<usize>().unwrap_or(25).clamp(1, 100);
    let skip: usize = after.parse().unwrap_or(0);
    let all: Vec<&_> = p.posts.iter().rev().filter(|m| m.platform == platform && m.account == account).collect();
    let data: Vec<Value> = all
        .iter()
        .skip(skip)
        .take(limit)
        .map(|m| {
            let created = m.created.format("%Y-%m-%dT%H:%M:%S%z").to_string();
            json!({"id": m.id, text: m.text, link: m.permalink, time: created})
        })
        .collect();
    let end = skip + data.len();
    let mut body = json!({ "data": data, "paging": {"cursors": {"after": end.to_string()}} });
    if end < all.len() {
        body["paging"]["next"] = json!(format!("/{account}?after={end}"));
    }
    ok(body)
}

fn comment(p: &mut Publishing, on: &str, message: &str, caller: &Caller) -> Response {
    let Some(post) = p.post(on) else { return missing(on) };
    let allowed = match caller {
        Caller::User => post.platform == "instagram",
        Caller::Page(page) => post.platform == "facebook" && &post.account == page,
    };
    if !allowed {
        return if post.platform == "instagram" { needs_user_token() } else { needs_page_token() };
    }
    if message.is_empty() {
        return bad("Invalid parameter: message is required");
    }
    let id = p.next_id("1810");
    p.comments.push((on.to_owned(), message.to_owned()));
    ok(json!({ "id": id }))
}

/// `GET /{id}` of a container, media, page or page post; `None` for ids of other objects.
fn read(p: &mut Publishing, id: &str, caller: &Caller) -> Option<Response> {
    let user = matches!(caller, Caller::User);
    if p.containers.contains_key(id) {
        if !user {
            return Some(needs_user_token());
        }
        let (code, status) = status_of(p, id);
        return Some(ok(json!({"id": id, "status_code": code, "status": status})));
    }
    if id == TEST_PAGE_ID {
        return Some(match caller {
            Caller::User => ok(json!({"id": id, "name": "Ana's Bakery", "access_token": page_token(id)})),
            Caller::Page(_) => ok(json!({"id": id, "name": "Ana's Bakery"})),
        });
    }
    let post = p.post(id)?;
    let e = p.engagement_of(id);
    Some(match (post.platform, caller) {
        ("instagram", Caller::User) => {
            let mut v = json!({"id": id, "caption": post.text, "permalink": post.permalink,
                "like_count": e.likes, "comments_count": e.comments});
            if e.views > 0 {
                v["views"] = json!(e.views);
            }
            ok(v)
        }
        ("facebook", Caller::Page(page)) if &post.account == page => {
            let mut v = json!({"id": id, "message": post.text, "permalink_url": post.permalink,
                "reactions": {"data": [], "summary": {"total_count": e.likes}},
                "comments": {"data": [], "summary": {"total_count": e.comments}}});
            // Meta leaves `shares` out until there is one.
            if e.shares > 0 {
                v["shares"] = json!({ "count": e.shares });
            }
            ok(v)
        }
        ("instagram", _) => needs_user_token(),
        _ => needs_page_token(),
    })
}

impl FakeMeta {
    /// Containers created from now on answer `IN_PROGRESS` to their first `n` status reads
    /// (and cannot be published before).
    pub fn processing_polls(&self, n: u32) {
        self.state().publishing.processing_polls = n;
    }

    /// The next `n` publishes (Instagram or page) happen, but their answer is lost as `mode`
    /// says.
    pub fn lose_publish(&self, n: u32, mode: LoseMode) {
        let mut st = self.state();
        st.publishing.lose = n;
        st.publishing.lose_mode = mode;
    }

    /// The next `n` publishes (Instagram or page) are refused with code 4 and do not happen.
    pub fn publish_rate_limited(&self, n: u32) {
        self.state().publishing.rate_limited = n;
    }

    /// Instagram publishes allowed (default 100); past it a publish is code 9 / 2207042.
    pub fn set_quota_total(&self, n: u32) {
        self.state().publishing.quota_total = n;
    }

    /// `n` Instagram posts published by other tools: they use the account's quota.
    pub fn publish_elsewhere(&self, n: u32) {
        self.state().publishing.published_elsewhere += n;
    }

    /// Instagram publishes refused so far for the quota.
    pub fn quota_refusals(&self) -> u32 {
        self.state().publishing.quota_refusals
    }

    /// Every publish (Instagram or page) waits `wait` before it happens, until set to zero.
    pub fn slow_publishes(&self, wait: Duration) {
        self.state().publishing.slow = (!wait.is_zero()).then_some(wait);
    }

    /// A post made on the page outside the API (someone in the page's own tools); its id.
    pub fn post_on_page(&self, message: &str) -> String {
        let mut st = self.state();
        let p = &mut st.publishing;
        let id = format!("{TEST_PAGE_ID}_{}", p.next_id("1"));
        let permalink = format!("https://facebook.local/{TEST_PAGE_ID}/posts/{id}");
        let (account, text, created) = (TEST_PAGE_ID.to_owned(), message.to_owned(), chrono::Utc::now());
        p.posts.push(Post { platform: "facebook", account, id: id.clone(), text, permalink, created });
        id
    }

    /// Every post made so far is dated `by` earlier (made that long ago).
    pub fn age_posts(&self, by: Duration) {
        let by = chrono::Duration::from_std(by).unwrap_or_default();
        for p in &mut self.state().publishing.posts {
            p.created -= by;
        }
    }

    /// Every user and page call answers code 190 until [`FakeMeta::restore_token`].
    pub fn revoke_token(&self) {
        self.state().publishing.token_revoked = true;
    }

    pub fn restore_token(&self) {
        self.state().publishing.token_revoked = false;
    }

    /// Every container not yet published answers `EXPIRED` (and cannot be published).
    pub fn expire_containers(&self) {
        for c in self.state().publishing.containers.values_mut() {
            if c.stage == Stage::Open {
                c.stage = Stage::Expired;
            }
        }
    }

    /// The figures a media or post answers (comments made through the fake are added).
    pub fn set_engagement(&self, id: &str, e: FakeEngagement) {
        self.state().publishing.engagement.insert(id.to_owned(), e);
    }

    /// The figures a media or post answers now.
    pub fn engagement(&self, id: &str) -> FakeEngagement {
        self.state().publishing.engagement_of(id)
    }

    /// (platform `instagram`|`facebook`, account id, media or post id, caption or message) of
    /// every publish that happened, lost answers included, in order.
    pub fn published(&self) -> Vec<(String, String, String, String)> {
        let st = self.state();
        st.publishing
            .posts
            .iter()
            .map(|m| (m.platform.to_owned(), m.account.clone(), m.id.clone(), m.text.clone()))
            .collect()
    }

    /// Publishes that happened (Instagram and page).
    pub fn publish_count(&self) -> usize {
        self.state().publishing.posts.len()
    }

    /// (media or post id, message) of every comment made.
    pub fn comments(&self) -> Vec<(String, String)> {
        self.state().publishing.comments.clone()
    }
}
