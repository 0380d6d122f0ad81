//! TikTok Content Posting API (`reference/providers.md` §9b): organic video posts for the social
//! scheduler, with a creator's user token (`video.publish`, or `video.upload` for inbox drafts).
//!
//! - `{base_url}/v2/…`, `Authorization: Bearer <token>`; every answer carries
//!   `{"error": {"code", "message", "log_id"}}` and a `code` other than `"ok"` is the error.
//! - A post is an init (TikTok pulls the video from a URL on a verified domain) answered with a
//!   `publish_id`, then polled through `status/fetch` until it is complete, in the inbox or failed.
//! - An init is sent once and never retried here: a timeout or 5xx leaves the post possibly made,
//!   and only the caller can tell, from [`TikTokPostClient::recent_videos`], whether to post again.

use std::time::Duration;

use serde_json::{Value, json};

use crate::http::RetryPolicy;
use crate::marketing::{Engagement, PlatformError, PublishedItem, call, text};

const PLATFORM: &str = "TikTok";
/// The videos one page of `video/list` may hold.
const LIST_PAGE: u32 = 20;
/// How long `spam_risk_too_many_posts` holds: TikTok names no figure and it is not a matter of
/// seconds, so the scheduler waits hours rather than retrying within the minute.
pub const SPAM_RISK_WAIT: Duration = Duration::from_secs(4 * 3600);
/// The shortest wait after an init was throttled: the limit is 6 inits a minute per token.
const INIT_LIMIT_WAIT: Duration = Duration::from_secs(60);

/// The stable numbers [`PlatformError::Api`] carries for TikTok's string codes (the string itself
/// stays in the message); [`UNKNOWN_CODE`] for codes not listed.
const CODES: &[(&str, i64)] = &[
    ("invalid_params", 1001),
    ("spam_risk_too_many_posts", 1002),
    ("spam_risk_user_banned_from_posting", 1003),
    ("privacy_level_option_mismatch", 1004),
    ("url_ownership_unverified", 1005),
    ("unaudited_client_can_only_post_to_private_accounts", 1006),
    ("reached_active_user_cap", 1007),
    ("video_not_found", 1008),
];
pub const UNKNOWN_CODE: i64 = 1000;
pub const INVALID_PARAMS: i64 = 1001;
pub const VIDEO_NOT_FOUND: i64 = 1008;
const SPAM_RISK: i64 = 1002;

/// The number [`PlatformError::Api`] carries for TikTok's error `code`.
pub fn code_number(code: &str) -> i64 {
    CODES.iter().find(|(c, _)| *c == code).map_or(UNKNOWN_CODE, |(_, n)| *n)
}

#[derive(Debug, Clone)]
pub struct TikTokPostConfig {
    /// `https://open.tiktokapis.com` (tests: a fake).
    pub base_url: String,
    pub timeout: Duration,
    /// Attempts of the reads (creator info, status, lists); an init is sent once.
    pub attempts: u32,
}

/// What the creator allows, to be shown before posting (TikTok's UX rules).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatorInfo {
    pub privacy_level_options: Vec<String>,
    pub max_video_post_duration_sec: u32,
    pub comment_disabled: bool,
    pub duet_disabled: bool,
    pub stitch_disabled: bool,
}

/// A video post, pulled by TikTok from `video_url`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TikTokPost {
    pub title: String,
    /// One of the creator's [`CreatorInfo::privacy_level_options`].
    pub privacy_level: String,
    pub disable_comment: bool,
    pub disable_duet: bool,
    pub disable_stitch: bool,
    pub video_url: String,
    /// A draft in the creator's inbox instead of a direct post.
    pub to_inbox: bool,
}

/// Where a publish stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublishState {
    /// TikTok is still fetching or processing the video.
    Processing,
    /// A draft waits in the creator's inbox (the creator finishes the post in the app).
    InInbox,
    /// Posted; the public ids (empty while the post is private or under review).
    Complete { post_ids: Vec<String> },
    /// TikTok's `fail_reason`.
    Failed(String),
}

pub struct TikTokPostClient {
    cfg: TikTokPostConfig,
    base: String,
    http: reqwest::Client,
    retry: RetryPolicy,
}

fn judge(status: u16, v: &Value) -> Option<(i64, String, bool, bool)> {
    let code = v.pointer("/error/code").and_then(Value::as_str)?;
    if code == "ok" {
        return None;
    }
    let message = format!("{code}: {}", v.pointer("/error/message").and_then(Value::as_str).unwrap_or(""));
    let auth = matches!(code, "access_token_invalid" | "scope_not_authorized") || status == 401;
    Some((code_number(code), message, auth, code == "rate_limit_exceeded"))
}

/// `data` of an answer, or `Null`.
fn data(v: Value) -> Value {
    match v {
        Value::Object(mut m) => m.remove("data").unwrap_or(Value::Null),
        _ => Value::Null,
    }
}

fn flag(v: &Value, key: &str) -> bool {
    v.get(key).and_then(Value::as_bool).unwrap_or(false)
}

fn count(v: &Value, key: &str) -> i64 {
    v.get(key).and_then(Value::as_i64).unwrap_or(0)
}

impl TikTokPostClient {
    pub fn new(cfg: TikTokPostConfig, http: reqwest::Client) -> Self {
        let base = format!("{}/v2", cfg.base_url.trim_end_matches('/'));
        let retry = RetryPolicy::new(cfg.attempts.max(1), Duration::from_secs(10));
        Self { cfg, base, http, retry }
    }

    /// POSTs `body` to `{base}/{path}`; answers `data`.
    async fn post(
        &self,
        token: &str,
        path: &str,
        body: &Value,
        retry: RetryPolicy,
        what: &'static str,
    ) -> Result<Value, PlatformError> {
        let url = format!("{}/{path}", self.base);
        let answer =
            call(PLATFORM, retry, self.cfg.timeout, what, judge, || self.http.post(&url).bearer_auth(token).json(body))
                .await
                .map_err(|e| match e {
                    PlatformError::Api { code: SPAM_RISK, .. } => {
                        PlatformError::RateLimited { platform: PLATFORM, retry_after: Some(SPAM_RISK_WAIT) }
                    }
                    other => other,
                })?;
        Ok(data(answer.json))
    }

    /// The creator's allowed privacy levels, longest video and interaction defaults.
    pub async fn creator_info(&self, token: &str) -> Result<CreatorInfo, PlatformError> {
        let d = self.post(token, "post/publish/creator_info/query/", &json!({}), self.retry, "creator info").await?;
        let options = d
            .get("privacy_level_options")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(|x| x.as_str().map(str::to_owned)).collect())
            .unwrap_or_default();
        let max = d.get("max_video_post_duration_sec").and_then(Value::as_u64).unwrap_or(0);
        Ok(CreatorInfo {
            privacy_level_options: options,
            max_video_post_duration_sec: u32::try_from(max).unwrap_or(u32::MAX),
            comment_disabled: flag(&d, "comment_disabled"),
            duet_disabled: flag(&d, "duet_disabled"),
            stitch_disabled: flag(&d, "stitch_disabled"),
        })
    }

    /// Starts a post; answers its `publish_id`. Sent once: on `Timeout` or `Upstream` the post
    /// may exist, and the caller reconciles through [`Self::recent_videos`] before any new init.
    pub async fn init(&self, token: &str, p: &TikTokPost) -> Result<String, PlatformError> {
        let path = if p.to_inbox { "post/publish/inbox/video/init/" } else { "post/publish/video/init/" };
        let body = json!({
            "post_info": {
                "title": p.title,
                "privacy_level": p.privacy_level,
                "disable_comment": p.disable_comment,
                "disable_duet": p.disable_duet,
                "disable_stitch": p.disable_stitch,
            },
            "source_info": {"source": "PULL_FROM_URL", "video_url": p.video_url},
        });
        let once = RetryPolicy::new(1, Duration::ZERO);
        let d = self.post(token, path, &body, once, "post init").await.map_err(|e| match e {
            // A retry within the minute would be refused again.
            PlatformError::RateLimited { platform, retry_after } => PlatformError::RateLimited {
                platform,
                retry_after: Some(retry_after.unwrap_or(INIT_LIMIT_WAIT).max(INIT_LIMIT_WAIT)),
            },
            other => other,
        })?;
        let id = text(&d, "publish_id");
        if id.is_empty() {
            return Err(PlatformError::Decode { platform: PLATFORM, message: "no publish_id".into() });
        }
        Ok(id)
    }

    /// Where the publish `publish_id` stands.
    pub async fn status(&self, token: &str, publish_id: &str) -> Result<PublishState, PlatformError> {
        let body = json!({"publish_id": publish_id});
        let d = self.post(token, "post/publish/status/fetch/", &body, self.retry, "post status").await?;
        match text(&d, "status").as_str() {
            "PROCESSING_UPLOAD" | "PROCESSING_DOWNLOAD" => Ok(PublishState::Processing),
            "SEND_TO_USER_INBOX" => Ok(PublishState::InInbox),
            "PUBLISH_COMPLETE" => {
                // TikTok spells the field "publicaly"; the corrected spelling is read too.
                let ids = d
                    .get("publicaly_available_post_id")
                    .or_else(|| d.get("publicly_available_post_id"))
                    .and_then(Value::as_array)
                    .map(|a| a.iter().map(|x| x.as_str().map(str::to_owned).unwrap_or_else(|| x.to_string())).collect())
                    .unwrap_or_default();
                Ok(PublishState::Complete { post_ids: ids })
            }
            "FAILED" => Ok(PublishState::Failed(text(&d, "fail_reason"))),
            other => Err(PlatformError::Decode { platform: PLATFORM, message: format!("unknown status {other:?}") }),
        }
    }

    /// The creator's latest videos, newest first, at most `limit`: how an init whose answer was
    /// lost is found again (by its title).
    pub async fn recent_videos(&self, token: &str, limit: u32) -> Result<Vec<PublishedItem>, PlatformError> {
        let mut items = Vec::new();
        let mut cursor: Option<Value> = None;
        while (items.len() as u64) < u64::from(limit) {
            let left = u32::try_from(u64::from(limit) - items.len() as u64).unwrap_or(LIST_PAGE);
            let mut body = json!({"max_count": left.min(LIST_PAGE)});
            if let Some(c) = &cursor {
                body["cursor"] = c.clone();
            }
            let path = "video/list/?fields=id,title,share_url,create_time";
            let d = self.post(token, path, &body, self.retry, "video list").await?;
            let videos = d.get("videos").and_then(Value::as_array).cloned().unwrap_or_default();
            items.extend(videos.iter().map(|v| PublishedItem {
                id: text(v, "id"),
                permalink: text(v, "share_url"),
                text: text(v, "title"),
                // Unix seconds.
                created_at:
                    v.get("create_time").and_then(Value::as_i64).and_then(|t| chrono::DateTime::from_timestamp(t, 0)),
            }));
            cursor = d.get("cursor").cloned();
            if videos.is_empty() || !flag(&d, "has_more") || cursor.is_none() {
                break;
            }
        }
        items.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        Ok(items)
    }

    /// Likes, comments, shares and views of one of the creator's videos.
    pub async fn engagement(&self, token: &str, video_id: &str) -> Result<Engagement, PlatformError> {
        let body = json!({"filters": {"video_ids": [video_id]}});
        let path = "video/query/?fields=id,like_count,comment_count,share_count,view_count";
        let d = self.post(token, path, &body, self.retry, "video query").await?;
        let videos = d.get("videos").and_then(Value::as_array).cloned().unwrap_or_default();
        let Some(v) = videos.iter().find(|v| text(v, "id") == video_id) else {
            return Err(PlatformError::Api {
                platform: PLATFORM,
                code: VIDEO_NOT_FOUND,
                message: "video_not_found: not among the creator's videos".into(),
            });
        };
        Ok(Engagement {
            likes: count(v, "like_count"),
            comments: count(v, "comment_count"),
            shares: count(v, "share_count"),
            views: count(v, "view_count"),
        })
    }
}
