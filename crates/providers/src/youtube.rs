//! YouTube Data API v3 (`reference/providers.md` §10): videos uploaded through a resumable
//! session (private, or scheduled with `publishAt`), their processing state and statistics.
//!
//! - A session is started with the video's metadata and size; Google answers its URL in
//!   `Location`. Bytes are then PUT in chunks (multiples of 256 KiB) with `Content-Range`; each
//!   chunk is answered 308 with the `Range` held so far, the last 200/201 with the video.
//! - After a failed chunk the session is asked what it holds (`Content-Range: bytes */total`) and
//!   the upload continues from there, so no byte is sent twice and no second video is made. A
//!   fresh session (a new POST) would make a second video: only the caller decides on that, when
//!   the session has expired (404).
//! - The session URL grants the upload without more: it is never logged, nor put in an error.
//! - Errors are Google's `{"error": {"code", "message", "errors": [{"reason"}]}}`.

use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Timelike, Utc};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::http::{RetryPolicy, jittered_backoff, read_limited, retry_after};
use crate::marketing::{Engagement, PlatformError, call, judged, text, transport_error};

const PLATFORM: &str = "YouTube";
/// Chunks other than the last are multiples of this.
pub const CHUNK_UNIT: usize = 256 * 1024;
pub const DEFAULT_CHUNK_SIZE: usize = 8 * 1024 * 1024;
/// The code [`PlatformError::Api`] carries for a video id YouTube does not list.
pub const VIDEO_NOT_FOUND: i64 = 404;
/// Internal marker of a daily quota refusal (mapped to `RateLimited` until the reset).
const DAILY_QUOTA: i64 = -403;
/// Upload answers are small (the video resource).
const MAX_ANSWER_BYTES: usize = 1024 * 1024;

#[derive(Debug, Clone)]
pub struct YouTubeConfig {
    /// `https://www.googleapis.com/upload/youtube/v3`.
    pub upload_url: String,
    /// `https://www.googleapis.com/youtube/v3`.
    pub api_url: String,
    pub timeout: Duration,
    /// Attempts of a read, and failed chunks in a row an upload survives.
    pub attempts: u32,
    /// Bytes per PUT, a multiple of [`CHUNK_UNIT`] ([`DEFAULT_CHUNK_SIZE`]); rounded down to one,
    /// at least one unit.
    pub chunk_size: usize,
}

/// What the video is and who sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoMeta {
    pub title: String,
    pub description: String,
    pub tags: Vec<String>,
    /// e.g. `"22"` (People & Blogs).
    pub category_id: String,
    /// `private`, `unlisted` or `public`; `private` when `publish_at` is set.
    pub privacy: String,
    /// When YouTube makes the video public (scheduled publish).
    pub publish_at: Option<DateTime<Utc>>,
    pub made_for_kids: bool,
}

/// What a resumable session holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UploadState {
    /// Bytes `0..next_offset` are stored; send on from `next_offset`.
    Incomplete { next_offset: u64 },
    /// Every byte is stored; the video exists.
    Done { video_id: String },
    /// The session is gone (404): a new one must be started, and it makes a new video.
    Expired,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoStatus {
    /// `uploaded`, `processed`, `failed`, `rejected` or `deleted`.
    pub upload_status: String,
    /// `processing`, `succeeded`, `failed` or `terminated` (empty when YouTube gives none).
    pub processing_status: String,
    pub privacy: String,
}

pub struct YouTubeClient {
    cfg: YouTubeConfig,
    upload_base: String,
    api_base: String,
    http: reqwest::Client,
    retry: RetryPolicy,
    chunk: usize,
}

fn judge(status: u16, v: &Value) -> Option<(i64, String, bool, bool)> {
    let e = v.get("error")?;
    let reason = e.pointer("/errors/0/reason").and_then(Value::as_str).unwrap_or("");
    let message = format!("{reason}: {}", text(e, "message"));
    let code = match reason {
        "quotaExceeded" | "uploadLimitExceeded" | "dailyLimitExceeded" => DAILY_QUOTA,
        _ => i64::from(status),
    };
    let throttle = matches!(reason, "rateLimitExceeded" | "userRateLimitExceeded");
    Some((code, message, status == 401, throttle))
}

/// A daily quota refused: limited until the next reset, at midnight Pacific time (08:00 UTC is
/// at or just after it, summer time or not).
fn daily_quota(e: PlatformError) -> PlatformError {
    match e {
        PlatformError::Api { code: DAILY_QUOTA, .. } => {
            PlatformError::RateLimited { platform: PLATFORM, retry_after: Some(until_quota_reset(Utc::now())) }
        }
        other => other,
    }
}

fn until_quota_reset(now: DateTime<Utc>) -> Duration {
    let secs_of_day = i64::from(now.num_seconds_from_midnight());
    let reset = 8 * 3600;
    let left = (reset - secs_of_day).rem_euclid(86_400);
    Duration::from_secs(u64::try_from(left).unwrap_or(0).max(60))
}

/// The end of a `Range: bytes=0-N` answer, as the next offset (N + 1); 0 without one.
fn next_offset(headers: &reqwest::header::HeaderMap) -> Result<u64, PlatformError> {
    let Some(range) = headers.get(reqwest::header::RANGE) else {
        return Ok(0);
    };
    range
        .to_str()
        .ok()
        .and_then(|r| r.strip_prefix("bytes="))
        .and_then(|r| r.split_once('-'))
        .and_then(|(_, end)| end.trim().parse::<u64>().ok())
        .map(|end| end + 1)
        .ok_or_else(|| PlatformError::Decode { platform: PLATFORM, message: "unreadable Range header".into() })
}

impl YouTubeClient {
    pub fn new(cfg: YouTubeConfig, http: reqwest::Client) -> Self {
        let retry = RetryPolicy::new(cfg.attempts.max(1), Duration::from_secs(10));
        let chunk = (cfg.chunk_size / CHUNK_UNIT).max(1) * CHUNK_UNIT;
        let upload_base = cfg.upload_url.trim_end_matches('/').to_owned();
        let api_base = cfg.api_url.trim_end_matches('/').to_owned();
        Self { cfg, upload_base, api_base, http, retry, chunk }
    }

    /// Opens a resumable session for a video of `size` bytes; answers the session URL (a secret:
    /// whoever holds it may upload).
    pub async fn start_upload(
        &self,
        token: &str,
        meta: &VideoMeta,
        size: u64,
        content_type: &str,
    ) -> Result<String, PlatformError> {
        let url = format!("{}/videos", self.upload_base);
        let mut status = json!({"privacyStatus": meta.privacy, "selfDeclaredMadeForKids": meta.made_for_kids});
        if let Some(at) = meta.publish_at {
            status["publishAt"] = json!(at.to_rfc3339_opts(SecondsFormat::Secs, true));
        }
        let body = json!({
            "snippet": {
                "title": meta.title,
                "description": meta.description,
                "tags": meta.tags,
                "categoryId": meta.category_id,
            },
            "status": status,
        });
        let q = [("uploadType", "resumable"), ("part", "snippet,status")];
        // A session makes nothing until its last byte arrives: starting one again is harmless.
        let answer = call(PLATFORM, self.retry, self.cfg.timeout, "upload start", judge, || {
            self.http
                .post(&url)
                .bearer_auth(token)
                .query(&q)
                .header("X-Upload-Content-Length", size)
                .header("X-Upload-Content-Type", content_type)
                .json(&body)
        })
        .await
        .map_err(daily_quota)?;
        let location = answer.headers.get(reqwest::header::LOCATION).and_then(|l| l.to_str().ok());
        match location {
            Some(l) if !l.is_empty() => Ok(l.to_owned()),
            _ => Err(PlatformError::Decode { platform: PLATFORM, message: "no Location for the session".into() }),
        }
    }

    /// What the session holds of a file of `total` bytes.
    pub async fn upload_state(&self, token: &str, session: &str, total: u64) -> Result<UploadState, PlatformError> {
        self.session_put(token, session, format!("bytes */{total}"), Vec::new()).await
    }

    /// Sends `bytes[from..]` (the whole file is `bytes`) in chunks, each from where the session
    /// says it holds up to; after a failed chunk asks the session and goes on from there. Gives up
    /// after `attempts` failures in a row without progress.
    pub async fn upload(
        &self,
        token: &str,
        session: &str,
        bytes: &[u8],
        from: u64,
    ) -> Result<UploadState, PlatformError> {
        let total = bytes.len() as u64;
        let mut offset = from.min(total);
        let mut failures = 0u32;
        loop {
            let sent = if offset >= total {
                // Nothing left to send: the session tells whether it holds everything.
                self.upload_state(token, session, total).await
            } else {
                self.put_chunk(token, session, bytes, offset).await
            };
            let failed = match sent {
                Ok(UploadState::Incomplete { next_offset }) if next_offset > total => {
                    return Err(PlatformError::Decode { platform: PLATFORM, message: "Range beyond the file".into() });
                }
                Ok(UploadState::Incomplete { next_offset }) if next_offset > offset => {
                    (offset, failures) = (next_offset, 0);
                    continue;
                }
                // No progress (the session holds less than was sent): counted like a failure.
                Ok(UploadState::Incomplete { next_offset }) => {
                    offset = next_offset;
                    PlatformError::Upstream { platform: PLATFORM, status: 308 }
                }
                Ok(done_or_expired) => return Ok(done_or_expired),
                Err(e) if e.is_transient() => e,
                Err(e) => return Err(e),
            };
            failures += 1;
            tracing::warn!(failures, offset, error = %failed, "youtube upload chunk failed");
            if failures >= self.cfg.attempts.max(1) {
                return Err(failed);
            }
            tokio::time::sleep(jittered_backoff(failures)).await;
            match self.upload_state(token, session, total).await {
                Ok(UploadState::Incomplete { next_offset }) => offset = next_offset,
                Ok(done_or_expired) => return Ok(done_or_expired),
                // The next round tries the chunk again and counts a failure if it fails.
                Err(e) if e.is_transient() => {}
                Err(e) => return Err(e),
            }
        }
    }

    async fn put_chunk(
        &self,
        token: &str,
        session: &str,
        bytes: &[u8],
        offset: u64,
    ) -> Result<UploadState, PlatformError> {
        let total = bytes.len() as u64;
        let start = usize::try_from(offset).unwrap_or(usize::MAX).min(bytes.len());
        let end = start.saturating_add(self.chunk).min(bytes.len());
        let chunk = bytes[start..end].to_vec();
        let range = format!("bytes {start}-{}/{total}", end.saturating_sub(1));
        self.session_put(token, session, range, chunk).await
    }

    /// One PUT to the session: 308 and 404 are states here, not errors.
    async fn session_put(
        &self,
        token: &str,
        session: &str,
        range: String,
        body: Vec<u8>,
    ) -> Result<UploadState, PlatformError> {
        let transport = |e: &reqwest::Error| transport_error(PLATFORM, e);
        let req = self
            .http
            .put(session)
            .bearer_auth(token)
            .header(reqwest::header::CONTENT_RANGE, range)
            .header(reqwest::header::CONTENT_LENGTH, body.len())
            .body(body)
            .timeout(self.cfg.timeout);
        let resp = req.send().await.map_err(|e| transport(&e))?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = read_limited(resp, MAX_ANSWER_BYTES).await.map_err(|e| transport(&e))?;
        match status {
            StatusCode::PERMANENT_REDIRECT => Ok(UploadState::Incomplete { next_offset: next_offset(&headers)? }),
            StatusCode::NOT_FOUND | StatusCode::GONE => Ok(UploadState::Expired),
            _ => {
                let v = judged(PLATFORM, judge, status.as_u16(), &body, retry_after(&headers)).map_err(daily_quota)?;
                let video_id = text(&v, "id");
                if video_id.is_empty() {
                    return Err(PlatformError::Decode { platform: PLATFORM, message: "no video id".into() });
                }
                Ok(UploadState::Done { video_id })
            }
        }
    }

    /// GET `videos?part={part}&id={id}`: the one item, or [`VIDEO_NOT_FOUND`].
    async fn video(&self, token: &str, part: &str, id: &str, what: &'static str) -> Result<Value, PlatformError> {
        let url = format!("{}/videos", self.api_base);
        let q = [("part", part), ("id", id)];
        let v = call(PLATFORM, self.retry, self.cfg.timeout, what, judge, || {
            self.http.get(&url).bearer_auth(token).query(&q)
        })
        .await
        .map_err(daily_quota)?
        .json;
        let items = v.get("items").and_then(Value::as_array).cloned().unwrap_or_default();
        items.into_iter().find(|i| text(i, "id") == id).ok_or_else(|| PlatformError::Api {
            platform: PLATFORM,
            code: VIDEO_NOT_FOUND,
            message: "videoNotFound: YouTube lists no such video".into(),
        })
    }

    /// Whether YouTube has processed the video, and who sees it.
    pub async fn video_status(&self, token: &str, video_id: &str) -> Result<VideoStatus, PlatformError> {
        let v = self.video(token, "status,processingDetails", video_id, "video status").await?;
        let s = v.get("status").cloned().unwrap_or(Value::Null);
        Ok(VideoStatus {
            upload_status: text(&s, "uploadStatus"),
            processing_status: v
                .pointer("/processingDetails/processingStatus")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned(),
            privacy: text(&s, "privacyStatus"),
        })
    }

    /// Likes, comments and views (YouTube counts no shares; its counts are decimal text).
    pub async fn engagement(&self, token: &str, video_id: &str) -> Result<Engagement, PlatformError> {
        let v = self.video(token, "statistics", video_id, "video statistics").await?;
        let s = v.get("statistics").cloned().unwrap_or(Value::Null);
        let n = |k: &str| text(&s, k).parse::<i64>().unwrap_or(0);
        Ok(Engagement { likes: n("likeCount"), comments: n("commentCount"), shares: 0, views: n("viewCount") })
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn quota_resets_at_the_next_eight_utc() {
        let at = |h, m| Utc.with_ymd_and_hms(2026, 12, 7, h, m, 0).single().unwrap_or_default();
        assert_eq!(until_quota_reset(at(7, 0)), Duration::from_secs(3600));
        assert_eq!(until_quota_reset(at(9, 0)), Duration::from_secs(23 * 3600));
        assert_eq!(until_quota_reset(at(8, 0)), Duration::from_secs(60), "at the reset: a minute");
    }

    #[test]
    fn range_header_gives_the_next_offset() {
        let mut h = reqwest::header::HeaderMap::new();
        assert_eq!(next_offset(&h).ok(), Some(0));
        h.insert(reqwest::header::RANGE, reqwest::header::HeaderValue::from_static("bytes=0-262143"));
        assert_eq!(next_offset(&h).ok(), Some(262_144));
        h.insert(reqwest::header::RANGE, reqwest::header::HeaderValue::from_static("octets"));
        assert!(next_offset(&h).is_err());
    }
}
