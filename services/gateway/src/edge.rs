//! Middleware every request passes: request id, language, client address, the downstream
//! context, error envelopes, timeouts, rate limits and metrics.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use ipnet::IpNet;
use nexus_kernel::ids::RequestId;
use nexus_kernel::{ErrorKind, Locale};
use nexus_platform::RequestContext;
use nexus_platform::config::Secret;
use tracing::Instrument;

use crate::config::HttpConfig;
use crate::error::{ApiError, ErrorInfo};
pub use crate::limits::{Budget, RateLimits};

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
    pub trusted_proxies: Arc<[IpNet]>,
}

impl From<&HttpConfig> for EdgeConfig {
    fn from(c: &HttpConfig) -> Self {
        Self {
            body_limit: c.body_limit,
            trust_forwarded_for: c.trust_forwarded_for,
            trusted_proxies: c.trusted_proxies.clone().into(),
        }
    }
}

impl EdgeConfig {
    fn trusts(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.trust_forwarded_for && self.trusted_proxies.iter().any(|net| net.contains(&ip))
    }
}

/// `::ffff:10.0.0.1` is `10.0.0.1` (dual-stack listeners report IPv4 peers that way).
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The client's address and whether it reached us over TLS (as far as a trusted proxy says).
/// `X-Forwarded-For` is believed only when the peer is a trusted proxy; then the hops are read
/// from the right (each proxy appends the address it saw) and the first one that is not itself a
/// trusted proxy is the client. Anything left of it was written by the client and is ignored.
fn client_ip(req: &Request, cfg: &EdgeConfig) -> (IpAddr, bool) {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::LOCALHOST), |ci| canonical(ci.0.ip()));
    if !cfg.trusts(peer) {
        return (peer, false);
    }
    let tls = req
        .headers()
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').next_back().is_some_and(|p| p.trim().eq_ignore_ascii_case("https")));
    let mut client = peer;
    let hops = req.headers().get_all("x-forwarded-for").iter().filter_map(|v| v.to_str().ok()).collect::<Vec<_>>();
    for hop in hops.iter().rev().flat_map(|v| v.rsplit(',')) {
        match hop.trim().parse::<IpAddr>() {
            Ok(ip) => {
                client = canonical(ip);
                if !cfg.trusts(client) {
                    break;
                }
            }
            // A hop that is not an address was not written by a proxy of ours: stop at the last
            // address a trusted proxy vouched for.
            Err(_) => break,
        }
    }
    (client, tls)
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
    let (ip, tls) = client_ip(&req, &cfg);
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
    security_headers(resp.headers_mut(), tls);
    resp
}

/// Headers every response carries. A response that set its own policy (a published page's
/// strict CSP) keeps it; HSTS only when a trusted proxy says the request came over TLS, since a
/// browser ignores it over plain HTTP and a development setup has no TLS at all.
fn security_headers(headers: &mut HeaderMap, tls: bool) {
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers
        .entry(header::REFERRER_POLICY)
        .or_insert_with(|| HeaderValue::from_static("strict-origin-when-cross-origin"));
    headers.entry(header::X_FRAME_OPTIONS).or_insert_with(|| HeaderValue::from_static("DENY"));
    headers
        .entry(header::CONTENT_SECURITY_POLICY)
        .or_insert_with(|| HeaderValue::from_static("frame-ancestors 'none'"));
    if tls {
        headers
            .insert(header::STRICT_TRANSPORT_SECURITY, HeaderValue::from_static("max-age=31536000; includeSubDomains"));
    }
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

pub(crate) fn render_error(resp: Response, edge: &Edge, method: &axum::http::Method, body_limit: usize) -> Response {
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
    let envelope = crate::error::envelope(status, info, locale, edge.request_id.as_str());
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

/// Paths whose POST streams a file in: their routes enforce their own, longer limit while it
/// arrives.
const UPLOAD_PATHS: [&str; 2] = ["/v1/contacts/imports", "/v1/ads/media"];

/// Stops requests that run past the configured time with `request.timeout`. A CSV import and a
/// post media upload have their own, longer limit, which their routes enforce while the file
/// streams in.
pub async fn timeout(State(limit): State<Duration>, req: Request, next: Next) -> Response {
    let limit = if req.method() == axum::http::Method::POST && UPLOAD_PATHS.contains(&req.uri().path()) {
        limit.max(crate::upstream::UPLOAD_DEADLINE)
    } else {
        limit
    };
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(r) => r,
        Err(_) => ApiError::new(ErrorKind::DeadlineExceeded, "request.timeout").into_response(),
    }
}

/// Spends the request's budget: per user for authenticated callers (set by the identity layer),
/// else per client address, with stricter budgets on `/v1/auth/*` and their own on tracking.
pub async fn rate_limit(State(limits): State<RateLimits>, req: Request, next: Next) -> Response {
    let ip = req.extensions().get::<Edge>().map_or(IpAddr::V4(Ipv4Addr::LOCALHOST), |e| e.client_ip);
    let path = req.uri().path();
    let verdict = if path.starts_with("/v1/auth/") {
        limits.check_ip(Budget::AuthIp, ip).await
    } else if path == "/v1/track" || path == "/v1/track/batch" {
        limits.check_ip(Budget::TrackIp, ip).await
    } else if let Some(key) = req.extensions().get::<RateKey>() {
        limits.check(Budget::User, &key.0).await
    } else {
        limits.check_ip(Budget::Ip, ip).await
    };
    match verdict {
        Ok(()) => next.run(req).await,
        Err(wait) => too_many(wait).into_response(),
    }
}

/// Set by the identity layer for authenticated requests: the user the budget belongs to.
#[derive(Debug, Clone)]
pub struct RateKey(pub String);

/// The 429 for a budget that is spent, with whole seconds to wait.
pub fn too_many(wait: Duration) -> ApiError {
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
