//! The TikTok Content Posting routes of [`FakeTikTok`] (`reference/providers.md` §9b), served
//! under `/v2/` on the same server, with the same access token as its OAuth flow
//! (`Authorization: Bearer`). Every answer is `{"data", "error": {"code", "message", "log_id"}}`,
//! `code` `"ok"` on success.
//!
//! - `post/publish/creator_info/query/`: privacy options `PUBLIC_TO_EVERYONE`,
//!   `MUTUAL_FOLLOW_FRIENDS`, `SELF_ONLY`, longest video 600 s ([`FakeTikTok::set_max_duration`]).
//! - `post/publish/video/init/` and `post/publish/inbox/video/init/`: `PULL_FROM_URL` only; a
//!   direct post's privacy must be one of the options (an inbox draft's is chosen in the app) and
//!   a title at most 2,200 characters, else `invalid_params`. 6 inits a minute per token, then
//!   `rate_limit_exceeded` (429, counted: [`FakeTikTok::rate_limited_inits`]) unless
//!   [`FakeTikTok::unlimited_posts`]; the minute can be shortened ([`FakeTikTok::set_init_window`]).
//! - `post/publish/status/fetch/`: `PROCESSING_DOWNLOAD` for the first
//!   [`FakeTikTok::processing_reads`] reads, then `PUBLISH_COMPLETE` with the post id (or
//!   `SEND_TO_USER_INBOX` for a draft, `FAILED` when the video URL contains "bad").
//! - `video/list/`: the direct posts (failed ones aside), newest first, from the moment of the
//!   init, with `create_time` (Unix seconds; [`FakeTikTok::age_videos`] dates them earlier); `video/query/`: their counts, derived from the id unless set.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::tiktok::FakeTikTok;

const PRIVACY_OPTIONS: &[&str] = &["PUBLIC_TO_EVERYONE", "MUTUAL_FOLLOW_FRIENDS", "SELF_ONLY"];
const MAX_TITLE_CHARS: usize = 2_200;
const INITS_PER_MINUTE: usize = 6;
const LIST_PAGE: u64 = 20;

/// How an init whose post was made loses its answer (as at the fake Meta).
pub use crate::meta_publish::LoseMode;

struct Post {
    publish_id: String,
    /// Empty for an inbox draft (no public post yet).
    post_id: String,
    title: String,
    to_inbox: bool,
    failed: bool,
    reads: u32,
    created: chrono::DateTime<chrono::Utc>,
}

pub(crate) struct Posts {
    items: Vec<Post>,
    max_duration: u32,
    processing_reads: u32,
    unlimited: bool,
    /// Init times per token, for the per-minute limit.
    inits: HashMap<String, Vec<Instant>>,
    /// The limit's "minute".
    init_window: Duration,
    rate_limited: u32,
    lose: Option<(u32, LoseMode)>,
    revoked: bool,
    next_error: Option<(String, u16)>,
    engagement: HashMap<String, (i64, i64, i64, i64)>,
    seq: u64,
}

impl Default for Posts {
    fn default() -> Self {
        Posts {
            items: Vec::new(),
            max_duration: 600,
            processing_reads: 0,
            unlimited: false,
            inits: HashMap::new(),
            init_window: Duration::from_secs(60),
            rate_limited: 0,
            lose: None,
            revoked: false,
            next_error: None,
            engagement: HashMap::new(),
            seq: 0,
        }
    }
}

impl FakeTikTok {
    /// The longest video the creator may post, in seconds (600 by default).
    pub fn set_max_duration(&self, secs: u32) {
        self.state().posts.max_duration = secs;
    }

    /// Status reads answered `PROCESSING_DOWNLOAD` before a publish settles (0 by default).
    pub fn processing_reads(&self, n: u32) {
        self.state().posts.processing_reads = n;
    }

    /// Lifts the 6 inits a minute per token (load tests).
    pub fn unlimited_posts(&self) {
        self.state().posts.unlimited = true;
    }

    /// The 6 inits are allowed per `window` instead of per minute (fast tests of the limit).
    pub fn set_init_window(&self, window: Duration) {
        self.state().posts.init_window = window;
    }

    /// Inits refused so far for the rate limit.
    pub fn rate_limited_inits(&self) -> u32 {
        self.state().posts.rate_limited
    }

    /// Every video made so far is dated `by` earlier (made that long ago).
    pub fn age_videos(&self, by: Duration) {
        let by = chrono::Duration::from_std(by).unwrap_or_default();
        for p in &mut self.state().posts.items {
            p.created -= by;
        }
    }

    /// The next `n` inits make their post but lose the answer as `mode` says.
    pub fn lose_init(&self, n: u32, mode: LoseMode) {
        self.state().posts.lose = (n > 0).then_some((n, mode));
    }

    /// The content routes refuse the token (`access_token_invalid`) until restored.
    pub fn revoke_post_token(&self) {
        self.state().posts.revoked = true;
    }

    pub fn restore_post_token(&self) {
        self.state().posts.revoked = false;
    }

    /// The next content request is refused with TikTok's error `code` and HTTP `status`
    /// (e.g. `spam_risk_too_many_posts`, 403).
    pub fn fail_next_post(&self, code: &str, status: u16) {
        self.state().posts.next_error = Some((code.to_owned(), status));
    }

    /// Sets a video's (likes, comments, shares, views).
    pub fn set_engagement(&self, video_id: &str, counts: (i64, i64, i64, i64)) {
        self.state().posts.engagement.insert(video_id.to_owned(), counts);
    }

    /// (publish id, post id, title, to inbox) of every init that made a publish, in order; the
    /// post id is empty for inbox drafts.
    pub fn posts(&self) -> Vec<(String, String, String, bool)> {
        let st = self.state();
        st.posts.items.iter().map(|p| (p.publish_id.clone(), p.post_id.clone(), p.title.clone(), p.to_inbox)).collect()
    }

    pub fn post_count(&self) -> usize {
        self.state().posts.items.len()
    }
}

fn ok(data: Value) -> Response {
    axum::Json(json!({"data": data, "error": {"code": "ok", "message": "", "log_id": "fake-log"}})).into_response()
}

fn refuse(status: u16, code: &str, message: &str) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
    let body = json!({"error": {"code": code, "message": message, "log_id": "fake-log"}});
    (status, axum::Json(body)).into_response()
}

/// The counts of a video: set ones, else derived from its id.
fn counts(p: &Posts, id: &str) -> (i64, i64, i64, i64) {
    if let Some(c) = p.engagement.get(id) {
        return *c;
    }
    let h = id.bytes().fold(7i64, |h, b| (h * 31 + i64::from(b)) % 1_000_003);
    (h % 1_000, h % 97, h % 41, 10_000 + h % 5_000)
}

/// Answers a request to `/v2/{path}`, and how long to hold the answer.
pub(crate) fn route(
    p: &mut Posts,
    token: &str,
    path: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> (Response, Option<Duration>) {
    let bearer = headers.get("authorization").and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
    if bearer != Some(token) || p.revoked {
        return (refuse(401, "access_token_invalid", "The access token is invalid or not found in the request."), None);
    }
    if let Some((code, status)) = p.next_error.take() {
        return (refuse(status, &code, "refused by the test"), None);
    }
    let Ok(b) = serde_json::from_slice::<Value>(if body.is_empty() { b"{}" } else { body }) else {
        return (refuse(400, "invalid_params", "The request body is not valid JSON"), None);
    };
    match path.trim_end_matches('/') {
        "post/publish/creator_info/query" => (
            ok(json!({
                "creator_avatar_url": "https://p16.tiktokcdn.example/avatar.jpeg",
                "creator_username": "fake_creator",
                "creator_nickname": "Fake Creator",
                "privacy_level_options": PRIVACY_OPTIONS,
                "comment_disabled": false,
                "duet_disabled": false,
                "stitch_disabled": false,
                "max_video_post_duration_sec": p.max_duration,
            })),
            None,
        ),
        "post/publish/video/init" => init(p, token, &b, false),
        "post/publish/inbox/video/init" => init(p, token, &b, true),
        "post/publish/status/fetch" => (status(p, &b), None),
        "video/list" => (list(p, &b), None),
        "video/query" => {
            let ids: Vec<&str> = b
                .pointer("/filters/video_ids")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let videos: Vec<Value> = ids
                .iter()
                .filter(|id| p.items.iter().any(|x| !x.to_inbox && !x.failed && x.post_id == **id))
                .map(|id| {
                    let (likes, comments, shares, views) = counts(p, id);
                    json!({"id": id, "like_count": likes, "comment_count": comments, "share_count": shares, "view_count": views})
                })
                .collect();
            (ok(json!({"videos": videos})), None)
        }
        _ => (refuse(404, "invalid_params", "unknown endpoint"), None),
    }
}

fn init(p: &mut Posts, token: &str, b: &Value, to_inbox: bool) -> (Response, Option<Duration>) {
    let now = Instant::now();
    let recent = p.inits.entry(token.to_owned()).or_default();
    let window = p.init_window;
    recent.retain(|t| now.duration_since(*t) < window);
    if !p.unlimited && recent.len() >= INITS_PER_MINUTE {
        p.rate_limited += 1;
        return (refuse(429, "rate_limit_exceeded", "API rate limit exceeded, please retry later."), None);
    }
    recent.push(now);
    let info = &b["post_info"];
    let title = info["title"].as_str().unwrap_or("");
    let url = b.pointer("/source_info/video_url").and_then(Value::as_str).unwrap_or("");
    let privacy = info["privacy_level"].as_str().unwrap_or("");
    let invalid = if b.pointer("/source_info/source").and_then(Value::as_str) != Some("PULL_FROM_URL") || url.is_empty()
    {
        Some("source_info needs source PULL_FROM_URL and a video_url")
    } else if title.chars().count() > MAX_TITLE_CHARS {
        Some("title is longer than 2200 characters")
    } else if !to_inbox && !PRIVACY_OPTIONS.contains(&privacy) {
        Some("privacy_level is not one of the creator's options")
    } else {
        None
    };
    if let Some(m) = invalid {
        return (refuse(400, "invalid_params", m), None);
    }
    p.seq += 1;
    let publish_id = format!("v_pub_url~v2.{}", 7_300_000_000u64 + p.seq);
    let failed = url.contains("bad");
    let post_id = if to_inbox || failed { String::new() } else { format!("7{:018}", p.seq) };
    let created = chrono::Utc::now();
    let title = title.to_owned();
    p.items.push(Post { publish_id: publish_id.clone(), post_id, title, to_inbox, failed, reads: 0, created });
    let answer = ok(json!({"publish_id": publish_id}));
    match p.lose.take() {
        Some((n, mode)) => {
            p.lose = (n > 1).then_some((n - 1, mode));
            match mode {
                LoseMode::Timeout(hold) => (answer, Some(hold)),
                LoseMode::Error500 => (refuse(500, "internal_error", "Something went wrong."), None),
            }
        }
        None => (answer, None),
    }
}

fn status(p: &mut Posts, b: &Value) -> Response {
    let id = b["publish_id"].as_str().unwrap_or("");
    let processing = p.processing_reads;
    let Some(post) = p.items.iter_mut().find(|x| x.publish_id == id) else {
        return refuse(400, "invalid_params", "publish_id is invalid");
    };
    post.reads += 1;
    let data = if post.reads <= processing {
        json!({"status": "PROCESSING_DOWNLOAD", "downloaded_bytes": 1_048_576})
    } else if post.failed {
        json!({"status": "FAILED", "fail_reason": "video_pull_failed"})
    } else if post.to_inbox {
        json!({"status": "SEND_TO_USER_INBOX"})
    } else {
        let id: Value = post.post_id.parse::<u64>().map_or_else(|_| json!(post.post_id), |n| json!(n));
        json!({"status": "PUBLISH_COMPLETE", "publicaly_available_post_id": [id]})
    };
    ok(data)
}

fn list(p: &Posts, b: &Value) -> Response {
    let max = b["max_count"].as_u64().unwrap_or(LIST_PAGE);
    if max == 0 || max > LIST_PAGE {
        return refuse(400, "invalid_params", "max_count must be 1 to 20");
    }
    let skip = b["cursor"].as_u64().unwrap_or(0);
    let posted: Vec<&Post> = p.items.iter().rev().filter(|x| !x.to_inbox && !x.failed).collect();
    let page: Vec<Value> = posted
        .iter()
        .skip(usize::try_from(skip).unwrap_or(usize::MAX))
        .take(usize::try_from(max).unwrap_or(usize::MAX))
        .map(|x| {
            let share = format!("https://www.tiktok.com/@fake_creator/video/{}", x.post_id);
            json!({"id": x.post_id, "title": x.title, "share_url": share, "create_time": x.created.timestamp()})
        })
        .collect();
    let next = skip + page.len() as u64;
    ok(json!({"videos": page, "cursor": next, "has_more": (next as usize) < posted.len()}))
}
