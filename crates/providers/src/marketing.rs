//! What the advertising platforms' clients ([`crate::meta`], [`crate::tiktok`],
//! [`crate::google`]) share: their error, and one JSON call through [`RetryPolicy`] (429 and 5xx
//! retried, honouring `Retry-After`; tokens and bodies never logged).

use std::time::Duration;

use serde_json::Value;

use crate::http::{Failed, RetryPolicy, read_limited, retry_after, retryable_status, transport_reason};

const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;

#[derive(Debug, Clone, thiserror::Error)]
pub enum PlatformError {
    /// The token or code was refused (expired, revoked, wrong app).
    #[error("{platform} refused the credentials: {message}")]
    Auth { platform: &'static str, message: String },
    #[error("{platform} rate limit")]
    RateLimited { platform: &'static str, retry_after: Option<Duration> },
    /// The platform refused the request itself (its code and message).
    #[error("{platform} error {code}: {message}")]
    Api { platform: &'static str, code: i64, message: String },
    #[error("{platform} did not answer in time")]
    Timeout { platform: &'static str },
    /// `status` 0: the platform could not be reached.
    #[error("{platform} error {status}")]
    Upstream { platform: &'static str, status: u16 },
    #[error("unreadable {platform} answer: {message}")]
    Decode { platform: &'static str, message: String },
}

impl PlatformError {
    fn retryable(&self) -> bool {
        match self {
            PlatformError::RateLimited { .. } => true,
            PlatformError::Upstream { status, .. } => *status == 0 || *status >= 500,
            _ => false,
        }
    }

    /// Whether trying later may succeed (the platform busy or unreachable).
    pub fn is_transient(&self) -> bool {
        self.retryable() || matches!(self, PlatformError::Timeout { .. })
    }
}

/// A successful answer.
pub(crate) struct Answer {
    pub json: Value,
    pub headers: reqwest::header::HeaderMap,
}

/// How a platform reports a refusal inside a body: `Some((code, message, is_auth,
/// is_throttle))` when the body is an error.
pub(crate) type Judge = fn(u16, &Value) -> Option<(i64, String, bool, bool)>;

/// Sends `build()` (rebuilt per attempt) until it succeeds, fails for good or the attempts are
/// spent.
pub(crate) async fn call(
    platform: &'static str,
    retry: RetryPolicy,
    timeout: Duration,
    what: &'static str,
    judge: Judge,
    build: impl Fn() -> reqwest::RequestBuilder,
) -> Result<Answer, PlatformError> {
    let attempt = |_| {
        let req = build().timeout(timeout);
        async move {
            one(platform, judge, req).await.map_err(|(e, wait)| {
                let retryable = e.retryable();
                Failed::new(e, retryable, wait)
            })
        }
    };
    retry
        .run(attempt, |failed, d| {
            let (attempt, error, retry) = (d.attempt, &failed.error, d.retry);
            tracing::warn!(attempt, %error, retry, platform, what, "platform request failed");
        })
        .await
}

async fn one(
    platform: &'static str,
    judge: Judge,
    req: reqwest::RequestBuilder,
) -> Result<Answer, (PlatformError, Option<Duration>)> {
    let transport = |e: &reqwest::Error| transport_error(platform, e);
    let resp = req.send().await.map_err(|e| (transport(&e), None))?;
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let wait = retry_after(&headers);
    let bytes = read_limited(resp, MAX_BODY_BYTES).await.map_err(|e| (transport(&e), None))?;
    let json = judged(platform, judge, status, &bytes, wait).map_err(|e| (e, wait))?;
    Ok(Answer { json, headers })
}

/// A request that got no (whole) answer: a timeout, or `Upstream` with status 0.
pub(crate) fn transport_error(platform: &'static str, e: &reqwest::Error) -> PlatformError {
    if e.is_timeout() {
        PlatformError::Timeout { platform }
    } else {
        tracing::debug!(reason = transport_reason(e), platform, "platform unreachable");
        PlatformError::Upstream { platform, status: 0 }
    }
}

/// The body of an answer already read, or the error it stands for (429, the platform's refusal
/// as `judge` reads it, another non-2xx status, or an unreadable body).
pub(crate) fn judged(
    platform: &'static str,
    judge: Judge,
    status: u16,
    bytes: &[u8],
    wait: Option<Duration>,
) -> Result<Value, PlatformError> {
    if status == 429 {
        return Err(PlatformError::RateLimited { platform, retry_after: wait });
    }
    let json: Value = if bytes.is_empty() {
        Value::Null
    } else {
        match serde_json::from_slice(bytes) {
            Ok(v) => v,
            Err(_) if retryable_status(status) || !(200..300).contains(&status) => {
                return Err(PlatformError::Upstream { platform, status });
            }
            Err(e) => return Err(PlatformError::Decode { platform, message: e.to_string() }),
        }
    };
    if let Some((code, message, auth, throttle)) = judge(status, &json) {
        let message = crate::llm::clip(&message);
        return Err(if throttle {
            PlatformError::RateLimited { platform, retry_after: wait.or(Some(Duration::from_secs(1))) }
        } else if auth {
            PlatformError::Auth { platform, message }
        } else if status >= 500 {
            PlatformError::Upstream { platform, status }
        } else {
            PlatformError::Api { platform, code, message }
        });
    }
    if !(200..300).contains(&status) {
        return Err(PlatformError::Upstream { platform, status });
    }
    Ok(json)
}

/// An interest an ad can target, as a platform's targeting search answers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interest {
    /// The platform's id, what an ad set's (Meta) or ad group's (TikTok) targeting names.
    pub id: String,
    pub name: String,
    /// The categories above it, outermost first (Meta's `path`; empty at TikTok).
    pub path: Vec<String>,
    /// The platform's estimate of the people it reaches, when it gives one.
    pub audience_min: Option<i64>,
    pub audience_max: Option<i64>,
}

/// One daily row of insights at ad level, figures as the platform sends them (decimal text in
/// the account's currency for money).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InsightRow {
    pub campaign_id: String,
    /// The ad set (Meta) or ad group (TikTok).
    pub adset_id: String,
    pub ad_id: String,
    /// `YYYY-MM-DD` in the account's time zone.
    pub date: String,
    pub spend: String,
    pub impressions: i64,
    pub reach: i64,
    pub clicks: i64,
    /// Purchases and leads.
    pub conversions: i64,
    /// Purchase value, decimal text.
    pub revenue: String,
}

/// A field as text (numbers too: platforms send ids either way).
pub(crate) fn text(v: &Value, key: &str) -> String {
    match v.get(key) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    }
}

/// What a published post has gathered so far, as the platform counts it (zero where the
/// platform does not count that figure).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Engagement {
    pub likes: i64,
    pub comments: i64,
    pub shares: i64,
    pub views: i64,
}

/// A post or video the platform shows on an account, as its recent-items listing returns it: how
/// a publish whose answer was lost is found again (by its caption or title).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishedItem {
    pub id: String,
    /// Where the public sees it (empty where the platform gives none).
    pub permalink: String,
    /// The caption, message or title.
    pub text: String,
    /// When the platform says it was made (absent where it gives no time): a twin with the same
    /// caption made before the publish was sent is not it.
    pub created_at: Option<chrono::DateTime<chrono::Utc>>,
}
