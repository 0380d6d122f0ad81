//! An ECB-style daily reference-rate feed: an XML document of `<Cube time>` days holding
//! `<Cube currency rate>` rates per euro. This client only fetches the document (through
//! [`RetryPolicy`]); the service parses and stores the rates.

use std::time::Duration;

use crate::http::{Failed, RetryPolicy, read_limited, retry_after, retryable_status, transport_reason};

pub const DEFAULT_URL: &str = "https://www.ecb.europa.eu/stats/eurofxref/eurofxref-daily.xml";
const MAX_BODY_BYTES: usize = 2 * 1024 * 1024;

#[derive(Debug, Clone, thiserror::Error)]
pub enum RatesError {
    #[error("the rates feed answered {status}")]
    Status { status: u16 },
    #[error("the rates feed could not be reached: {0}")]
    Transport(&'static str),
    #[error("the rates feed is not text")]
    Decode,
}

/// Fetches the feed at `url` (3 attempts; 429 and 5xx retried).
pub async fn fetch_daily(http: &reqwest::Client, url: &str, timeout: Duration) -> Result<String, RatesError> {
    let policy = RetryPolicy::new(3, Duration::from_secs(10));
    policy
        .run(
            |_| async {
                let resp = http.get(url).timeout(timeout).send().await.map_err(|e| Failed::new(RatesError::Transport(transport_reason(&e)), true, None))?;
                let status = resp.status().as_u16();
                let wait = retry_after(resp.headers());
                if !(200..300).contains(&status) {
                    return Err(Failed::new(RatesError::Status { status }, retryable_status(status), wait));
                }
                let bytes = read_limited(resp, MAX_BODY_BYTES)
                    .await
                    .map_err(|e| Failed::new(RatesError::Transport(transport_reason(&e)), true, None))?;
                String::from_utf8(bytes).map_err(|_| Failed::new(RatesError::Decode, false, None))
            },
            |failed, d| tracing::warn!(attempt = d.attempt, error = %failed.error, retry = d.retry, "rates feed failed"),
        )
        .await
}
