//! Small HTTP helpers shared by the provider clients: bounded body reads, transport error
//! reasons that are safe to log, `Retry-After` parsing and jittered exponential backoff.

use std::time::Duration;

/// Reads at most `max` bytes of the body. Longer bodies are cut short, which makes them fail to
/// parse — the answer we want for a provider that sends far more than the contract says.
pub(crate) async fn read_limited(mut resp: reqwest::Response, max: usize) -> Result<Vec<u8>, reqwest::Error> {
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await? {
        if body.len() + chunk.len() > max {
            break;
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// A fixed description of a transport failure (no URLs, headers or bodies, so nothing secret).
pub(crate) fn transport_reason(e: &reqwest::Error) -> &'static str {
    if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else if e.is_body() || e.is_decode() {
        "bad response body"
    } else {
        "request failed"
    }
}

/// `Retry-After` given in seconds (the HTTP-date form is not honoured).
pub(crate) fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    headers
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs)
}

/// Delay before the retry that follows failed attempt `attempt` (1-based): 200 ms doubling per
/// attempt, plus up to as much again of random jitter.
pub(crate) fn jittered_backoff(attempt: u32) -> Duration {
    let base = 200u64 << attempt.saturating_sub(1).min(10);
    Duration::from_millis(base + rand::random_range(0..=base))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter() {
        for _ in 0..50 {
            let d1 = jittered_backoff(1).as_millis();
            let d2 = jittered_backoff(2).as_millis();
            assert!((200..=400).contains(&d1), "{d1}");
            assert!((400..=800).contains(&d2), "{d2}");
        }
        // Absurd attempt numbers neither overflow nor panic.
        assert!(jittered_backoff(u32::MAX) > Duration::ZERO);
    }

    #[test]
    fn retry_after_seconds_only() {
        let mut h = reqwest::header::HeaderMap::new();
        assert_eq!(retry_after(&h), None);
        h.insert(reqwest::header::RETRY_AFTER, " 3 ".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(3)));
        h.insert(reqwest::header::RETRY_AFTER, "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap());
        assert_eq!(retry_after(&h), None);
    }
}
