//! The HTTP plumbing every provider client shares: one retry loop ([`RetryPolicy::run`]),
//! bounded body reads, transport error reasons that are safe to log, the waits a provider asks
//! for (`Retry-After` in seconds or as an HTTP-date, `retry-after-ms`, `x-ratelimit-reset-*`)
//! and jittered exponential backoff.
//!
//! A client keeps its own request building, error mapping and retry decisions: each attempt is a
//! closure that sends one request (with its own timeout, so every attempt is bounded) and, on
//! failure, says in a [`Failed`] whether the error may be retried and what wait the provider
//! asked for. The loop bounds the attempts, sleeps between them and stops at once when the
//! provider asks for a wait longer than the policy's cap. It logs nothing itself: the client's
//! `report` hook logs what it knows to be safe (never keys, tokens or bodies).

use std::fmt;
use std::future::Future;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::header::HeaderMap;

/// What a provider client holds: its configuration, its base URL (no trailing slash), the HTTP
/// client (which may be shared) and how its calls are retried. Its `Debug` shows the
/// configuration's own `Debug`, which hides the secrets.
pub(crate) struct Endpoint<C> {
    pub cfg: C,
    pub base: String,
    pub http: reqwest::Client,
    pub retry: RetryPolicy,
}

impl<C> Endpoint<C> {
    /// `base` loses its trailing slashes and is warned about when it is plain HTTP to another
    /// host than loopback ([`warn_if_cleartext`]); `names` is (provider, secret) for that
    /// warning, e.g. `("stripe", "secret key")`.
    pub(crate) fn new(cfg: C, base: &str, http: reqwest::Client, retry: RetryPolicy, names: (&str, &str)) -> Self {
        let base = base.trim_end_matches('/').to_string();
        warn_if_cleartext(&base, names.0, names.1);
        Self { cfg, base, http, retry }
    }
}

impl<C: fmt::Debug> fmt::Debug for Endpoint<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Endpoint").field("cfg", &self.cfg).field("base", &self.base).finish_non_exhaustive()
    }
}

/// How one call is retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RetryPolicy {
    /// Attempts per call, the first included (at least one is made).
    pub attempts: u32,
    /// The longest provider-requested wait slept through; a longer one ends the retries and the
    /// caller gets that attempt's error (a rate limit carrying the wait) at once.
    pub max_wait: Duration,
    /// Add up to 10 % (at most 1 s) to a provider-requested wait, so clients released by the
    /// same reset do not come back in lock-step.
    pub jitter_requested_wait: bool,
}

/// A failed attempt, as its client judged it.
#[derive(Debug)]
pub(crate) struct Failed<E> {
    pub error: E,
    /// Whether sending the same request again may succeed.
    pub retryable: bool,
    /// The wait the provider asked for, if any.
    pub wait: Option<Duration>,
}

impl<E> Failed<E> {
    pub(crate) fn new(error: E, retryable: bool, wait: Option<Duration>) -> Self {
        Self { error, retryable, wait }
    }
}

/// What the loop decided after a failed attempt, for the client's log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Decision {
    /// 1-based number of the attempt that failed.
    pub attempt: u32,
    /// Whether another attempt follows.
    pub retry: bool,
}

impl RetryPolicy {
    pub(crate) const fn new(attempts: u32, max_wait: Duration) -> Self {
        Self { attempts, max_wait, jitter_requested_wait: false }
    }

    /// Runs `attempt(n)` (n = 1, 2, …) until it succeeds, fails for good, the attempts are
    /// spent or the provider asks for a wait longer than [`RetryPolicy::max_wait`]. `report` is
    /// told of every failure before the loop sleeps or returns.
    pub(crate) async fn run<T, E, A, Fut>(
        &self,
        mut attempt: A,
        mut report: impl FnMut(&Failed<E>, Decision),
    ) -> Result<T, E>
    where
        A: FnMut(u32) -> Fut,
        Fut: Future<Output = Result<T, Failed<E>>>,
    {
        let mut n: u32 = 0;
        loop {
            n += 1;
            let failed = match attempt(n).await {
                Ok(v) => return Ok(v),
                Err(f) => f,
            };
            let too_long = failed.wait.is_some_and(|w| w > self.max_wait);
            let retry = failed.retryable && n < self.attempts && !too_long;
            report(&failed, Decision { attempt: n, retry });
            if !retry {
                return Err(failed.error);
            }
            tokio::time::sleep(self.pause(n, failed.wait)).await;
        }
    }

    /// The sleep after failed attempt `attempt`: the requested wait (jittered if the policy says
    /// so), else [`jittered_backoff`].
    pub(crate) fn pause(&self, attempt: u32, wait: Option<Duration>) -> Duration {
        match wait {
            Some(w) if self.jitter_requested_wait => w + wait_jitter(w),
            Some(w) => w,
            None => jittered_backoff(attempt),
        }
    }
}

/// `retryable` (sending again may work now: the provider's rate limit, or a 5xx or no answer
/// at all, `status` 0) and `is_transient` (the same, or a timeout: the provider is busy or
/// unreachable, try later; not the request or the account) of a provider's error enum whose
/// variants include `$limited { .. }`, `Upstream { status, .. }` and `Timeout`.
macro_rules! transient_errors {
    ($ty:ident, $limited:ident) => {
        impl $ty {
            fn retryable(&self) -> bool {
                match self {
                    $ty::$limited { .. } => true,
                    $ty::Upstream { status, .. } => *status == 0 || *status >= 500,
                    _ => false,
                }
            }

            pub fn is_transient(&self) -> bool {
                self.retryable() || matches!(self, $ty::Timeout)
            }
        }
    };
}
pub(crate) use transient_errors;

/// The statuses worth sending again by default: 429 and 5xx (never another 4xx).
pub(crate) fn retryable_status(status: u16) -> bool {
    status == 429 || (500..600).contains(&status)
}

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

/// Whether `url`'s host is loopback (`localhost`, 127.0.0.0/8, `::1`): where local fakes run.
pub(crate) fn is_loopback_host(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

pub(crate) fn is_loopback(base: &str) -> bool {
    url::Url::parse(base).ok().is_some_and(|u| is_loopback_host(&u))
}

/// Warns when `base` is plain HTTP to another host than loopback: the `secret` sent with every
/// request would travel in clear. Names the URL, never the secret.
pub(crate) fn warn_if_cleartext(base: &str, provider: &str, secret: &str) {
    if base.starts_with("http://") && !is_loopback(base) {
        tracing::warn!(base_url = %base, "{provider} base URL is not HTTPS; the {secret} travels in clear");
    }
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim)
}

/// `Retry-After`: a number of seconds (decimals allowed) or an HTTP-date (IMF-fixdate, e.g.
/// `Wed, 21 Oct 2015 07:28:00 GMT`; a date already past means no wait).
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    retry_after_at(headers, SystemTime::now())
}

fn retry_after_at(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let v = header(headers, reqwest::header::RETRY_AFTER.as_str())?;
    if let Some(secs) = non_negative(v) {
        return Some(Duration::from_secs_f64(secs));
    }
    let at = parse_http_date(v)?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

fn non_negative(v: &str) -> Option<f64> {
    v.parse::<f64>().ok().filter(|v| v.is_finite() && *v >= 0.0 && *v < 1e9)
}

/// The wait an OpenAI-style API asks for: `retry-after-ms`, else `Retry-After`, else the
/// `x-ratelimit-reset-requests`/`-tokens` of the exhausted limit (the later of the two when
/// it is not known which one is exhausted).
pub(crate) fn provider_wait(headers: &HeaderMap) -> Option<Duration> {
    let get = |name: &str| header(headers, name);
    if let Some(ms) = get("retry-after-ms").and_then(non_negative) {
        return Some(Duration::from_secs_f64(ms / 1000.0));
    }
    if let Some(wait) = retry_after(headers) {
        return Some(wait);
    }
    let requests = get("x-ratelimit-reset-requests").and_then(parse_reset_duration);
    let tokens = get("x-ratelimit-reset-tokens").and_then(parse_reset_duration);
    let exhausted = |name: &str| get(name).is_some_and(|v| v == "0");
    let chosen = match (exhausted("x-ratelimit-remaining-requests"), exhausted("x-ratelimit-remaining-tokens")) {
        (true, false) => requests,
        (false, true) => tokens,
        _ => None,
    };
    chosen.or_else(|| match (requests, tokens) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    })
}

/// Parses the duration form of the `x-ratelimit-reset-*` headers: one or more
/// `<number><unit>` with units `h`, `m`, `s`, `ms`, `us`/`µs`, `ns` and optional decimals
/// (`1s`, `6m0s`, `20ms`, `1.5s`, `1h2m3.5s`); a bare number is seconds. `None` if malformed.
pub fn parse_reset_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    if let Ok(secs) = s.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs));
    }
    let mut total = 0f64;
    let mut rest = s;
    while !rest.is_empty() {
        let num_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        if num_len == 0 {
            return None;
        }
        let value: f64 = rest[..num_len].parse().ok()?;
        rest = &rest[num_len..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 1e-3,
            "us" | "µs" => 1e-6,
            "ns" => 1e-9,
            _ => return None,
        };
        total += value * scale;
        rest = &rest[unit_len..];
    }
    (total.is_finite() && total < 1e9).then(|| Duration::from_secs_f64(total))
}

const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/// An IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), the HTTP-date form senders must use.
fn parse_http_date(s: &str) -> Option<SystemTime> {
    let (weekday, rest) = s.split_once(", ")?;
    let parts: Vec<&str> = rest.split(' ').collect();
    let [day, month, year, time, "GMT"] = parts.as_slice() else {
        return None;
    };
    let digits = |v: &str, len: usize| -> Option<i64> {
        (v.len() == len && v.bytes().all(|b| b.is_ascii_digit())).then(|| v.parse().ok()).flatten()
    };
    let (day, year) = (digits(day, 2)?, digits(year, 4)?);
    let month = i64::try_from(MONTHS.iter().position(|m| m == month)?).ok()? + 1;
    let mut hms = time.split(':');
    let (h, m, sec) = (digits(hms.next()?, 2)?, digits(hms.next()?, 2)?, digits(hms.next()?, 2)?);
    let valid = weekday.len() == 3 && (1..=31).contains(&day) && h < 24 && m < 60 && sec <= 60;
    if !valid || hms.next().is_some() || year < 1970 {
        return None;
    }
    let secs = days_from_civil(year, month, day) * 86_400 + h * 3600 + m * 60 + sec;
    Some(UNIX_EPOCH + Duration::from_secs(u64::try_from(secs).ok()?))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (month 1–12).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Delay before the retry that follows failed attempt `attempt` (1-based): 200 ms doubling per
/// attempt, plus up to as much again of random jitter.
pub(crate) fn jittered_backoff(attempt: u32) -> Duration {
    let base = 200u64 << attempt.saturating_sub(1).min(10);
    Duration::from_millis(base + rand::random_range(0..=base))
}

/// Up to 10 % of `wait` (at most 1 s).
fn wait_jitter(wait: Duration) -> Duration {
    let max = (wait / 10).min(Duration::from_secs(1));
    let max_us = u64::try_from(max.as_micros()).unwrap_or(u64::MAX);
    Duration::from_micros(rand::random_range(0..=max_us))
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};
    use std::time::Instant;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    const FAST: RetryPolicy = RetryPolicy::new(3, Duration::from_secs(1));

    #[test]
    fn backoff_doubles_with_jitter() {
        for _ in 0..50 {
            let d1 = jittered_backoff(1).as_millis();
            let d2 = jittered_backoff(2).as_millis();
            let d3 = jittered_backoff(3).as_millis();
            assert!((200..=400).contains(&d1), "{d1}");
            assert!((400..=800).contains(&d2), "{d2}");
            assert!((800..=1600).contains(&d3), "{d3}");
        }
        // Absurd attempt numbers neither overflow nor panic, and stay bounded.
        let huge = jittered_backoff(u32::MAX);
        assert!(huge > Duration::ZERO && huge <= Duration::from_millis(2 * (200 << 10)), "{huge:?}");
    }

    #[test]
    fn pause_is_the_requested_wait_or_backoff() {
        let plain = RetryPolicy::new(3, Duration::from_secs(30));
        assert_eq!(plain.pause(1, Some(Duration::from_secs(2))), Duration::from_secs(2));
        let jittered = RetryPolicy { jitter_requested_wait: true, ..plain };
        for _ in 0..50 {
            let p = jittered.pause(1, Some(Duration::from_secs(2)));
            assert!(p >= Duration::from_secs(2) && p <= Duration::from_millis(2200), "{p:?}");
            let long = jittered.pause(1, Some(Duration::from_secs(20)));
            assert!(long <= Duration::from_secs(21), "jitter is at most a second: {long:?}");
            let b = plain.pause(2, None).as_millis();
            assert!((400..=800).contains(&b), "{b}");
        }
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn retry_after_in_seconds_and_as_an_http_date() {
        let now = UNIX_EPOCH + Duration::from_secs(1_445_412_470); // 07:27:50 on that day
        let at = |v: &str| retry_after_at(&headers(&[("retry-after", v)]), now);
        assert_eq!(retry_after_at(&HeaderMap::new(), now), None);
        assert_eq!(at(" 3 "), Some(Duration::from_secs(3)));
        assert_eq!(at("0"), Some(Duration::ZERO));
        assert_eq!(at("1.5"), Some(Duration::from_millis(1500)));
        assert_eq!(at("Wed, 21 Oct 2015 07:28:00 GMT"), Some(Duration::from_secs(10)));
        assert_eq!(at("Wed, 21 Oct 2015 07:27:00 GMT"), Some(Duration::ZERO), "a past date: no wait");
        assert_eq!(at("Sat, 01 Jan 2000 00:00:00 GMT"), Some(Duration::ZERO));
        for bad in [
            "-1",
            "NaN",
            "inf",
            "soon",
            "Wed, 21 Oct 2015 07:28:00 PST",
            "Wed, 21 Oct 15 07:28:00 GMT",
            "Wed, 21 Foo 2015 07:28:00 GMT",
            "Wed, 32 Oct 2015 07:28:00 GMT",
            "Wed, 21 Oct 2015 24:00:00 GMT",
            "Wed, 21 Oct 2015 07:28 GMT",
            "Wednesday, 21-Oct-15 07:28:00 GMT",
        ] {
            assert_eq!(at(bad), None, "{bad}");
        }
        // The real clock: a date far in the future is a long wait.
        let far = retry_after(&headers(&[("retry-after", "Fri, 01 Jan 2100 00:00:00 GMT")])).unwrap();
        assert!(far > Duration::from_secs(86_400 * 365 * 50), "{far:?}");
    }

    #[test]
    fn http_dates_map_to_the_right_instant() {
        let secs = |s: &str| parse_http_date(s).map(|t| t.duration_since(UNIX_EPOCH).unwrap().as_secs());
        assert_eq!(secs("Thu, 01 Jan 1970 00:00:00 GMT"), Some(0));
        assert_eq!(secs("Sun, 06 Nov 1994 08:49:37 GMT"), Some(784_111_777));
        assert_eq!(secs("Tue, 29 Feb 2000 12:00:00 GMT"), Some(951_825_600));
        assert_eq!(secs("Sun, 06 Dec 2026 00:00:00 GMT"), Some(1_796_515_200));
    }

    #[test]
    fn loopback_hosts_are_only_local_ones() {
        for local in ["http://localhost:1", "http://127.0.0.1:9/v1", "http://127.8.0.1/", "http://[::1]:8/"] {
            assert!(is_loopback(local), "{local}");
        }
        for remote in ["http://example.com", "http://10.0.0.1/", "http://localhost.example.com/", "not a url", ""] {
            assert!(!is_loopback(remote), "{remote}");
        }
    }

    #[test]
    fn only_429_and_5xx_are_retryable_statuses() {
        for s in [429, 500, 502, 503, 504, 599] {
            assert!(retryable_status(s), "{s}");
        }
        for s in [200, 301, 400, 401, 403, 404, 408, 409, 422, 600] {
            assert!(!retryable_status(s), "{s}");
        }
    }

    /// Runs `policy` over scripted failures; answers the attempts made and the result.
    async fn scripted(policy: RetryPolicy, script: Vec<Failed<&'static str>>) -> (u32, Result<u32, &'static str>) {
        let script = Mutex::new(script.into_iter());
        let mut reported = Vec::new();
        let result = policy
            .run(
                |n| {
                    let next = script.lock().unwrap().next();
                    async move { next.map_or(Ok(n), Err) }
                },
                |f: &Failed<&str>, d| reported.push((f.error, d)),
            )
            .await;
        let made = reported.last().map_or(1, |(_, d)| d.attempt + u32::from(d.retry));
        (made, result)
    }

    #[tokio::test]
    async fn attempts_are_bounded_and_success_ends_the_loop() {
        let (made, r) = scripted(FAST, vec![Failed::new("503", true, None)]).await;
        assert_eq!((made, r), (2, Ok(2)));
        let fails = (0..5).map(|_| Failed::new("503", true, Some(Duration::from_millis(5)))).collect();
        let (made, r) = scripted(FAST, fails).await;
        assert_eq!((made, r), (3, Err("503")), "three attempts, the last error returned");
        let (made, r) = scripted(RetryPolicy::new(0, Duration::ZERO), vec![Failed::new("x", true, None)]).await;
        assert_eq!((made, r), (1, Err("x")), "at least one attempt is made");
    }

    #[tokio::test]
    async fn a_non_retryable_failure_is_returned_at_once() {
        let started = Instant::now();
        let (made, r) = scripted(FAST, vec![Failed::new("400", false, None), Failed::new("never", true, None)]).await;
        assert_eq!((made, r), (1, Err("400")));
        assert!(started.elapsed() < Duration::from_millis(150));
    }

    #[tokio::test]
    async fn a_wait_over_the_cap_returns_the_error_at_once() {
        let started = Instant::now();
        let long = Failed::new("429", true, Some(Duration::from_secs(60)));
        let (made, r) = scripted(FAST, vec![long, Failed::new("never", true, None)]).await;
        assert_eq!((made, r), (1, Err("429")));
        assert!(started.elapsed() < Duration::from_millis(150), "{:?}", started.elapsed());
        // A wait at the cap is slept through.
        let at_cap = RetryPolicy::new(3, Duration::from_millis(50));
        let started = Instant::now();
        let (made, r) = scripted(at_cap, vec![Failed::new("429", true, Some(Duration::from_millis(50)))]).await;
        assert_eq!((made, r), (2, Ok(2)));
        assert!(started.elapsed() >= Duration::from_millis(50));
    }

    fn client() -> reqwest::Client {
        nexus_platform::install_crypto_provider();
        reqwest::Client::new()
    }

    /// A one-connection-per-request HTTP server answering `statuses` in turn (then 200) and
    /// recording every request body.
    async fn server(statuses: Vec<u16>) -> (String, Arc<Mutex<Vec<Vec<u8>>>>) {
        server_with(statuses.into_iter().map(|s| (s, "")).collect()).await
    }

    /// Like [`server`], each answer with an extra header line (or none when empty).
    async fn server_with(answers: Vec<(u16, &'static str)>) -> (String, Arc<Mutex<Vec<Vec<u8>>>>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/x", listener.local_addr().unwrap());
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let seen = bodies.clone();
        tokio::spawn(async move {
            let mut answers = answers.into_iter();
            while let Ok((mut conn, _)) = listener.accept().await {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                let body = loop {
                    let n = conn.read(&mut chunk).await.unwrap();
                    buf.extend_from_slice(&chunk[..n]);
                    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else { continue };
                    let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                    let len: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .map_or(0, |v| v.trim().parse().unwrap());
                    if buf.len() >= end + 4 + len || n == 0 {
                        break buf[end + 4..].to_vec();
                    }
                };
                seen.lock().unwrap().push(body);
                let (status, extra) = answers.next().unwrap_or((200, ""));
                let extra = if extra.is_empty() { String::new() } else { format!("{extra}\r\n") };
                let answer = format!("HTTP/1.1 {status} X\r\ncontent-length: 2\r\nconnection: close\r\n{extra}\r\nok");
                conn.write_all(answer.as_bytes()).await.unwrap();
            }
        });
        (url, bodies)
    }

    /// One attempt the way the clients make them: a fresh request each time, retrying
    /// transport failures, 429 and 5xx.
    async fn post(url: &str, body: &[u8]) -> Result<u16, String> {
        let http = client();
        FAST.run(
            |_| async {
                match http.post(url).body(body.to_vec()).timeout(Duration::from_secs(5)).send().await {
                    Ok(r) if r.status().is_success() => Ok(r.status().as_u16()),
                    Ok(r) => {
                        let s = r.status().as_u16();
                        Err(Failed::new(format!("status {s}"), retryable_status(s), retry_after(r.headers())))
                    }
                    Err(e) => Err(Failed::new(transport_reason(&e).to_string(), !e.is_timeout(), None)),
                }
            },
            |_, _| {},
        )
        .await
    }

    #[tokio::test]
    async fn the_request_body_is_sent_again_identically() {
        let (url, bodies) = server(vec![503, 429]).await;
        let body = br#"{"prompt":"a cat","n":1}"#;
        assert_eq!(post(&url, body).await, Ok(200));
        let bodies = bodies.lock().unwrap();
        assert_eq!(bodies.len(), 3);
        assert!(bodies.iter().all(|b| b == body), "{bodies:?}");
    }

    #[tokio::test]
    async fn other_4xx_are_not_retried() {
        for status in [400, 401, 404, 409, 422] {
            let (url, bodies) = server(vec![status]).await;
            assert_eq!(post(&url, b"{}").await, Err(format!("status {status}")));
            assert_eq!(bodies.lock().unwrap().len(), 1, "{status}");
        }
        let (url, bodies) = server(vec![500, 500, 500, 500]).await;
        assert_eq!(post(&url, b"{}").await, Err("status 500".into()));
        assert_eq!(bodies.lock().unwrap().len(), 3, "5xx: every attempt spent");
    }

    #[tokio::test]
    async fn an_http_date_retry_after_is_honoured_over_the_wire() {
        // A date already past: retried at once, without the 200 ms or more of backoff.
        let (url, bodies) = server_with(vec![(503, "Retry-After: Thu, 01 Jan 1970 00:00:00 GMT")]).await;
        let started = Instant::now();
        assert_eq!(post(&url, b"{}").await, Ok(200));
        assert!(started.elapsed() < Duration::from_millis(190), "{:?}", started.elapsed());
        assert_eq!(bodies.lock().unwrap().len(), 2);
        // A date decades away is over the cap: the error comes back at once, not retried.
        let (url, bodies) = server_with(vec![(429, "Retry-After: Fri, 01 Jan 2100 00:00:00 GMT")]).await;
        let started = Instant::now();
        assert_eq!(post(&url, b"{}").await, Err("status 429".into()));
        assert!(started.elapsed() < Duration::from_millis(190), "{:?}", started.elapsed());
        assert_eq!(bodies.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn connection_failures_are_retried() {
        // A port nobody listens on any more.
        let addr = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap();
        let http = client();
        let attempts = Mutex::new(0);
        let result: Result<(), String> = FAST
            .run(
                |_| {
                    *attempts.lock().unwrap() += 1;
                    let send = http.get(format!("http://{addr}/")).timeout(Duration::from_secs(5)).send();
                    async move {
                        let e = send.await.expect_err("nobody listens");
                        Err(Failed::new(transport_reason(&e).to_string(), e.is_connect(), None))
                    }
                },
                |_, _| {},
            )
            .await;
        assert_eq!(result, Err("connection failed".into()));
        assert_eq!(*attempts.lock().unwrap(), 3);
    }
}
