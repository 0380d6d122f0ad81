//! The NexusOne gateway: the only public HTTP surface. It serves the REST API under `/v1`, the
//! OpenAPI document (`/openapi.json`) and its docs page (`/docs`), auth's key set
//! (`/.well-known/jwks.json`), provider webhooks (`/webhooks/{provider}`), published landing
//! pages (`/p/{slug}`) and the post calendar's iCal feeds (`/ical/{token}`). It owns its JSON
//! types and talks to the services over gRPC; generated proto types never reach the public API.
//! It owns no data.
//!
//! - [`routes`]: one module per resource (URL prefix), each with its `router()` merged in
//!   [`api_router`]; request and response pieces several of them use are in `routes::common`.
//! - [`edge`]: the middleware every request passes (request id, language, client address,
//!   downstream context, error envelopes, timeout, rate limit, metrics); [`with_edge`] stacks it.
//! - [`identity`]: bearer tokens and API keys to the caller; [`limits`]: rate-limit budgets.
//! - [`error`]: `ApiError` and the one renderer of error bodies (JSON and event-stream alike);
//!   [`extract`]: extractors whose rejections are such errors.
//! - [`upstream`]: the lazy gRPC channels to the services; [`openapi`]: the document's frame;
//!   [`config`]: `GatewayConfig`.
//!
//! The binary starts through the platform's bootstrap (`nexus_platform::app::http_main`:
//! config, telemetry, environment check, signals); [`run`] serves the public and admin
//! listeners until the token is cancelled, then drains like every service
//! (`nexus_platform::shutdown::drain`).

pub mod config;
pub mod edge;
pub mod error;
pub mod extract;
pub mod identity;
pub mod limits;
pub mod openapi;
pub mod routes;
pub mod upstream;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, HeaderValue, Method, header};
use axum::middleware::{from_fn, from_fn_with_state};
use nexus_kernel::ErrorKind;
use nexus_platform::admin::{self, Readiness};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::compression::CompressionLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use utoipa_axum::router::OpenApiRouter;
use utoipa_swagger_ui::SwaggerUi;

use crate::config::GatewayConfig;
use crate::edge::{EdgeConfig, RateLimits};
use crate::error::ApiError;
use crate::identity::{ExchangedTokens, Identity};
use crate::upstream::Upstreams;
use nexus_platform::identity::{GrpcKeySource, Verifier};

#[derive(Clone)]
pub struct AppState {
    pub config: Arc<GatewayConfig>,
    /// Behind an `Arc`: handlers take the state by value, and cloning ten channels per request
    /// showed in the profile of `make bench`'s reads.
    pub upstreams: Arc<Upstreams>,
    /// API-key tokens the identity layer reuses; revoking a key here drops them.
    pub exchanged: ExchangedTokens,
}

/// Every documented route, with its OpenAPI description: one router per resource.
pub fn api_router() -> OpenApiRouter<AppState> {
    use routes::*;
    [
        meta::router(),
        webhooks::router(),
        auth::router(),
        local_mail::router(),
        me::router(),
        sessions::router(),
        workspaces::router(),
        members::router(),
        mfa::router(),
        api_keys::router(),
        // Before billing: both name a schema `UsageBody`, and the first merged keeps the name
        // (the committed document has always shown the generation's).
        content::router(),
        plans::router(),
        billing::router(),
        credits::router(),
        pages::router(),
        public_pages::router(),
        agents::router(),
        images::router(),
        contacts::router(),
        webhook_endpoints::router(),
        activities::router(),
        pipeline::router(),
        deals::router(),
        segments::router(),
        transfer::router(),
        track::router(),
        analytics_settings::router(),
        reports::router(),
        revenue_metrics::router(),
        audit::router(),
        fleet::router(),
        churn::router(),
        videos::router(),
        voices::router(),
        media::router(),
        avatars::router(),
        commerce_connections::router(),
        commerce_catalogue::router(),
        commerce_pricing::router(),
        commerce_orders::router(),
        commerce_sales::router(),
        ads_connections::router(),
        ads_campaigns::router(),
        ads_builds::router(),
        ads_audiences::router(),
        ads_posts::router(),
        ads_scheduler::router(),
        ads_media::router(),
        whatsapp_numbers::router(),
        whatsapp_templates::router(),
        whatsapp_inbox::router(),
        whatsapp_broadcasts::router(),
        whatsapp_bots::router(),
    ]
    .into_iter()
    .fold(OpenApiRouter::with_openapi(openapi::base()), OpenApiRouter::merge)
}

/// The OpenAPI document as served at `/openapi.json`.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let mut doc = api_router().split_for_parts().1;
    openapi::add_standard_errors(&mut doc);
    doc
}

/// Wraps routes in the edge stack every public request passes through, outermost first:
/// compression, edge (request id, language, context, error envelopes), panic catcher, CORS,
/// timeout, rate limit, body limit. Exposed so tests can put the same stack around test routes.
pub fn with_edge(router: Router, config: &GatewayConfig, limits: RateLimits, identity: Option<Identity>) -> Router {
    let cors = cors(&config.http.cors_origins);
    let router = router
        .route_layer(from_fn(edge::metrics))
        .fallback(|| async { ApiError::new(ErrorKind::NotFound, "request.not_found") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(ErrorKind::MethodNotAllowed, "request.method_not_allowed")
        })
        .layer(DefaultBodyLimit::max(config.http.body_limit))
        .layer(from_fn_with_state(limits, edge::rate_limit));
    // Identity runs before the rate limiter so authenticated callers are limited per user.
    let router = match identity {
        Some(id) => router.layer(from_fn_with_state(id, identity::authenticate)),
        None => router,
    };
    router
        .layer(from_fn_with_state(config.http.request_timeout, edge::timeout))
        .layer(cors)
        .layer(CatchPanicLayer::new())
        .layer(from_fn_with_state(EdgeConfig::from(&config.http), edge::edge))
        .layer(CompressionLayer::new())
}

fn cors(origins: &[String]) -> CorsLayer {
    let any = origins.iter().any(|o| o == "*");
    let listed: Vec<HeaderValue> = origins.iter().filter_map(|o| o.parse::<HeaderValue>().ok()).collect();
    // Tracking is called from customers' own sites, so any origin may send to it: the write key
    // is public and write-only (and may itself be bound to origins); no credentials are involved.
    let allow = AllowOrigin::predicate(move |origin: &HeaderValue, parts: &axum::http::request::Parts| {
        any || parts.uri.path() == "/v1/track" || parts.uri.path() == "/v1/track/batch" || listed.contains(origin)
    });
    CorsLayer::new()
        .allow_origin(allow)
        .allow_methods([Method::GET, Method::POST, Method::PUT, Method::PATCH, Method::DELETE])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::ACCEPT,
            header::ACCEPT_LANGUAGE,
            HeaderName::from_static("x-request-id"),
            HeaderName::from_static("idempotency-key"),
        ])
        .expose_headers([HeaderName::from_static("x-request-id"), header::RETRY_AFTER, header::CONTENT_LANGUAGE])
        .max_age(Duration::from_secs(3600))
}

/// The complete public application.
pub fn app(config: GatewayConfig, limits: RateLimits) -> anyhow::Result<Router> {
    let upstreams = Upstreams::new(&config.services, config.http.upstream_timeout)?;
    let exchanged = ExchangedTokens::default();
    let state = AppState {
        config: Arc::new(config.clone()),
        upstreams: Arc::new(upstreams.clone()),
        exchanged: exchanged.clone(),
    };
    let verifier = Arc::new(Verifier::new(Arc::new(GrpcKeySource::new(&config.services.auth)?)));
    let identity = Identity::new(verifier, upstreams.auth.clone(), limits.clone(), exchanged);
    let (router, mut api) = api_router().split_for_parts();
    openapi::add_standard_errors(&mut api);
    // No validator badge: Swagger UI would otherwise call an outside host from the docs page.
    let docs = SwaggerUi::new("/docs")
        .url("/openapi.json", api)
        .config(utoipa_swagger_ui::Config::default().validator_url("none"));
    let router = router.with_state(state).merge(docs);
    Ok(with_edge(router, &config, limits, Some(identity)))
}

/// The listener with Nagle's algorithm off on every accepted connection: an answer written in
/// more than one piece would otherwise wait for the client's delayed ACK (tens of milliseconds).
pub fn nodelay(listener: TcpListener) -> axum::serve::TapIo<TcpListener, fn(&mut TcpStream)> {
    use axum::serve::ListenerExt;
    fn set(tcp: &mut TcpStream) {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "TCP_NODELAY not set");
        }
    }
    listener.tap_io(set as fn(&mut TcpStream))
}

/// Sockets the gateway serves on, bound before [`run`] so tests can use port 0.
pub struct Listeners {
    pub http: TcpListener,
    pub admin: TcpListener,
}

impl Listeners {
    pub async fn bind(config: &GatewayConfig) -> std::io::Result<Self> {
        Ok(Self {
            http: TcpListener::bind(config.http.addr).await?,
            admin: TcpListener::bind(config.admin.addr).await?,
        })
    }
}

/// Serves until `shutdown`; in-flight requests finish (up to the grace period) before it returns.
pub async fn run(config: GatewayConfig, listeners: Listeners, shutdown: CancellationToken) -> anyhow::Result<()> {
    let limits = RateLimits::new(&config.rate_limit);
    let app = app(config.clone(), limits.clone())?;

    let readiness = Readiness::default();
    let admin_stop = CancellationToken::new();
    let mut admin_router = admin::router(readiness.clone(), Vec::new());
    if !config.environment.is_production() {
        // The whole local mailbox, on the admin port only (never the public one).
        let auth = Upstreams::new(&config.services, config.http.upstream_timeout)?.auth;
        let tokens = nexus_platform::identity::ServiceTokens::new(
            "gateway",
            config.identity.service_secret.clone(),
            &config.services.auth,
        )?;
        admin_router = admin_router.merge(routes::local_mail::admin_router(auth, Arc::new(tokens)));
    }
    let admin = tokio::spawn(admin::serve(listeners.admin, admin_router, admin_stop.clone()));

    let sweeper_stop = shutdown.clone();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                () = sweeper_stop.cancelled() => return,
                () = tokio::time::sleep(Duration::from_secs(60)) => limits.retain_recent(),
            }
        }
    });

    tracing::info!(http = %listeners.http.local_addr()?, "gateway serving");
    readiness.set(true);
    let drained = shutdown.clone();
    let server = axum::serve(nodelay(listeners.http), app.into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(async move { drained.cancelled().await });
    let server = tokio::spawn(async move { server.await });
    let result = nexus_platform::shutdown::drain(server, &shutdown, config.shutdown.grace, &readiness, "gateway").await;
    admin_stop.cancel();
    let _ = admin.await;
    tracing::info!("gateway stopped");
    result??;
    Ok(())
}
