//! Middleware every request passes: request id, language, client address, the downstream
//! context, error envelopes, timeouts, rate limits and metrics.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use nexus_kernel::ids::RequestId;
use nexus_kernel::{ErrorKind, Locale};
use nexus_platform::RequestContext;
use nexus_platform::config::Secret;
use tracing::Instrument;

use crate::config::{HttpConfig, RateLimitConfig};
use crate::error::{ApiError, ErrorBody, ErrorEnvelope, ErrorInfo};

pub const REQUEST_ID: &str = "x-request-id";

/// Per-request facts the edge works out once; handlers read them from extensions.
#[derive(Debug, Clone)]
pub struct Edge {
    pub request_id: RequestId,
    pub locale: Locale,
    pub client_ip: IpAddr,
}

#[derive(Clone)]
pub struct EdgeConfig {
    pub body_limit: usize,
    pub trust_forwarded_for: bool,
}

impl From<&HttpConfig> for EdgeConfig {
    fn from(c: &HttpConfig) -> Self {
        Self { body_limit: c.body_limit, trust_forwarded_for: c.trust_forwarded_for }
    }
}

fn client_ip(req: &Request, trust_forwarded_for: bool) -> IpAddr {
    if trust_forwarded_for {
        // The last hop was added by our own proxy; earlier ones are client-controlled.
        let forwarded = req
            .headers()
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.rsplit(',').next())
            .and_then(|v| v.trim().parse::<IpAddr>().ok());
        if let Some(ip) = forwarded {
            return ip;
        }
    }
    req.extensions().get::<ConnectInfo<SocketAddr>>().map_or(IpAddr::V4(Ipv4Addr::LOCALHOST), |ci| ci.0.ip())
}

/// Outermost middleware: identifies the request, negotiates the language, scopes the downstream
/// context, and renders every error response as the localized envelope.
pub async fn edge(State(cfg): State<EdgeConfig>, mut req: Request, next: Next) -> Response {
    let request_id = req
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .and_then(RequestId::parse)
        .unwrap_or_else(RequestId::generate);
    let accept = req.headers().get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok());
    let locale = Locale::negotiate(None, accept);
    let ip = client_ip(&req, cfg.trust_forwarded_for);
    let bearer = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|t| Secret::new(t.trim()));
    let edge = Edge { request_id: request_id.clone(), locale, client_ip: ip };
    req.extensions_mut().insert(edge.clone());

    let ctx = RequestContext {
        request_id: Some(request_id.clone()),
        client_ip: Some(ip),
        bearer,
        locale: Some(locale.code().to_owned()),
        ..Default::default()
    };
    let span = tracing::info_span!(
        "http",
        otel.kind = "server",
        method = %req.method(),
        path = %req.uri().path(),
        request_id = %request_id,
        status = tracing::field::Empty,
    );
    nexus_platform::telemetry::set_parent_from(&span, req.headers());
    let method = req.method().clone();
    let mut resp = ctx.scope(next.run(req)).instrument(span.clone()).await;
    span.record("status", resp.status().as_u16());

    if resp.status().is_client_error() || resp.status().is_server_error() {
        resp = render_error(resp, &edge, &method, cfg.body_limit);
    }
    if let Ok(v) = HeaderValue::from_str(request_id.as_str()) {
        resp.headers_mut().insert(REQUEST_ID, v);
    }
    resp
}

fn is_json(headers: &HeaderMap) -> bool {
    headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|v| v.starts_with("application/json"))
}

/// Error code for an error response some layer produced without our marker.
fn code_for_status(status: StatusCode) -> &'static str {
    match status {
        StatusCode::NOT_FOUND => "request.not_found",
        StatusCode::METHOD_NOT_ALLOWED => "request.method_not_allowed",
        StatusCode::PAYLOAD_TOO_LARGE => "request.body_too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "request.unsupported_media_type",
        StatusCode::REQUEST_TIMEOUT | StatusCode::GATEWAY_TIMEOUT => "request.timeout",
        StatusCode::TOO_MANY_REQUESTS => "request.rate_limited",
        StatusCode::UNAUTHORIZED => "auth.unauthenticated",
        StatusCode::FORBIDDEN => "auth.permission_denied",
        StatusCode::SERVICE_UNAVAILABLE | StatusCode::BAD_GATEWAY => "service.unavailable",
        s if s.is_server_error() => "internal",
        _ => "request.invalid",
    }
}

fn render_error(resp: Response, edge: &Edge, method: &axum::http::Method, body_limit: usize) -> Response {
    let status = resp.status();
    let info = resp.extensions().get::<ErrorInfo>().cloned();
    let locale = resp.extensions().get::<crate::identity::UserLocale>().map_or(edge.locale, |u| u.0);
    // A JSON error body from elsewhere (e.g. a webhook receiver answering its provider) stands.
    if info.is_none() && is_json(resp.headers()) {
        return resp;
    }
    let mut info = info.unwrap_or_else(|| ErrorInfo {
        code: code_for_status(status).to_owned(),
        params: Vec::new(),
        fields: Vec::new(),
    });
    let has = |info: &ErrorInfo, k: &str| info.params.iter().any(|(p, _)| p == k);
    // Arguments the messages need that only the edge knows.
    if info.code == "request.body_too_large" && !has(&info, "limit") {
        info.params.push(("limit".into(), body_limit.to_string()));
    }
    if info.code == "request.method_not_allowed" && !has(&info, "method") {
        info.params.push(("method".into(), method.to_string()));
    }
    if info.code == "request.rate_limited" && !has(&info, "retry_after") {
        let secs = resp.headers().get(header::RETRY_AFTER).and_then(|v| v.to_str().ok()).unwrap_or("60").to_owned();
        info.params.push(("retry_after".into(), secs));
    }
    // 5xx bodies say nothing internal: the generic message for the class, whatever the code was.
    let (code, message) =
        if status.is_server_error() && info.code != "service.unavailable" && info.code != "request.timeout" {
            ("internal".to_owned(), nexus_i18n::error_message(locale, "internal", &[], status.as_u16()))
        } else {
            let msg = nexus_i18n::error_message(locale, &info.code, &info.params, status.as_u16());
            (info.code.clone(), msg)
        };
    let envelope = ErrorEnvelope {
        error: ErrorBody {
            code,
            message,
            request_id: edge.request_id.to_string(),
            dir: locale.direction().as_str().to_owned(),
            fields: info.fields,
        },
    };
    let (mut parts, _) = resp.into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.remove(header::CONTENT_ENCODING);
    parts.headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if let Ok(v) = HeaderValue::from_str(locale.code()) {
        parts.headers.insert(header::CONTENT_LANGUAGE, v);
    }
    let body = serde_json::to_vec(&envelope).unwrap_or_default();
    Response::from_parts(parts, Body::from(body))
}

/// Stops requests that run past the configured time with `request.timeout`.
pub async fn timeout(State(limit): State<Duration>, req: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(r) => r,
        Err(_) => ApiError::new(ErrorKind::DeadlineExceeded, "request.timeout").into_response(),
    }
}

/// Keyed GCRA rate limits. Authenticated callers are keyed by principal (set by the identity
/// layer); everyone else by client IP, with a stricter budget on `/v1/auth/*`.
#[derive(Clone)]
pub struct RateLimits {
    per_user: Arc<DefaultKeyedRateLimiter<String>>,
    per_ip: Arc<DefaultKeyedRateLimiter<IpAddr>>,
    auth_per_ip: Arc<DefaultKeyedRateLimiter<IpAddr>>,
    track_per_ip: Arc<DefaultKeyedRateLimiter<IpAddr>>,
}

/// Set by the identity layer for authenticated requests; the rate limiter keys on it.
#[derive(Debug, Clone)]
pub struct RateKey(pub String);

fn per_minute(n: u32) -> Quota {
    Quota::per_minute(NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN))
}

impl RateLimits {
    pub fn new(cfg: &RateLimitConfig) -> Self {
        Self {
            per_user: Arc::new(RateLimiter::keyed(per_minute(cfg.per_user_per_minute))),
            per_ip: Arc::new(RateLimiter::keyed(per_minute(cfg.per_ip_per_minute))),
            auth_per_ip: Arc::new(RateLimiter::keyed(per_minute(cfg.auth_per_ip_per_minute))),
            track_per_ip: Arc::new(RateLimiter::keyed(per_minute(cfg.track_per_ip_per_minute))),
        }
    }

    /// Spends one unit of `ip`'s anonymous budget; the 429 to answer when it is gone.
    pub fn check_ip(&self, ip: IpAddr) -> Option<ApiError> {
        self.per_ip.check_key(&ip).err().map(|not_until| too_many(&not_until))
    }

    /// Forgets idle keys so the maps stay bounded; run periodically.
    pub fn retain_recent(&self) {
        self.per_user.retain_recent();
        self.per_ip.retain_recent();
        self.auth_per_ip.retain_recent();
        self.track_per_ip.retain_recent();
    }
}

pub async fn rate_limit(State(limits): State<RateLimits>, req: Request, next: Next) -> Response {
    let ip = req.extensions().get::<Edge>().map_or(IpAddr::V4(Ipv4Addr::LOCALHOST), |e| e.client_ip);
    let path = req.uri().path();
    let verdict = if path.starts_with("/v1/auth/") {
        limits.auth_per_ip.check_key(&ip)
    } else if path == "/v1/track" || path == "/v1/track/batch" {
        limits.track_per_ip.check_key(&ip)
    } else if let Some(key) = req.extensions().get::<RateKey>() {
        limits.per_user.check_key(&key.0)
    } else {
        limits.per_ip.check_key(&ip)
    };
    match verdict {
        Ok(()) => next.run(req).await,
        Err(not_until) => too_many(&not_until).into_response(),
    }
}

fn too_many(not_until: &governor::NotUntil<governor::clock::QuantaInstant>) -> ApiError {
    let wait = not_until.wait_time_from(DefaultClock::default().now());
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    metrics::counter!("nexus_http_rate_limited_total").increment(1);
    ApiError::new(ErrorKind::RateLimited, "request.rate_limited").retry_after(secs.max(1))
}

/// Per-route request counts and latency (route templates, not raw paths, as labels).
pub async fn metrics(req: Request, next: Next) -> Response {
    let route = req.extensions().get::<MatchedPath>().map_or_else(|| "unmatched".to_owned(), |m| m.as_str().to_owned());
    let method = req.method().to_string();
    let start = Instant::now();
    let resp = next.run(req).await;
    let status = resp.status().as_u16().to_string();
    metrics::histogram!("nexus_http_request_duration_seconds", "route" => route.clone(), "method" => method.clone())
        .record(start.elapsed().as_secs_f64());
    metrics::counter!("nexus_http_requests_total", "route" => route, "method" => method, "status" => status)
        .increment(1);
    resp
}
