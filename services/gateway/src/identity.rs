//! Who is calling. A bearer JWT is verified here (signature, expiry, algorithm) against auth's
//! JWKS; an API key (`X-Api-Key`, or a bearer starting `nx_`) is exchanged with auth for a
//! short-lived internal token. Either way the token forwarded to services is one they verify
//! themselves; the gateway's check only turns bad tokens away early and keys rate limits.

use std::sync::Arc;

use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use nexus_platform::RequestContext;
use nexus_platform::config::Secret;
use nexus_platform::grpc::ContextChannel;
use nexus_platform::identity::{Principal, Verifier};
use nexus_proto::nexus::auth::v1::ExchangeApiKeyRequest;
use nexus_proto::nexus::auth::v1::auth_client::AuthClient;

use crate::edge::{RateKey, RateLimits};
use crate::error::ApiError;

#[derive(Clone)]
pub struct Identity {
    pub verifier: Arc<Verifier>,
    pub auth: ContextChannel,
    /// Failed credentials spend the caller's per-IP budget, so guessing is rate limited too.
    pub limits: RateLimits,
}

fn credential(parts: &axum::http::HeaderMap) -> Option<Credential> {
    if let Some(key) = parts.get("x-api-key").and_then(|v| v.to_str().ok()) {
        return Some(Credential::ApiKey(key.trim().to_owned()));
    }
    let bearer = parts.get(axum::http::header::AUTHORIZATION).and_then(|v| v.to_str().ok())?;
    let token = bearer.strip_prefix("Bearer ").or_else(|| bearer.strip_prefix("bearer "))?.trim();
    if token.starts_with("wk_") {
        // An analytics write key: not a user credential; only the tracking routes read it.
        None
    } else if token.starts_with("nx_") {
        Some(Credential::ApiKey(token.to_owned()))
    } else {
        Some(Credential::Jwt(token.to_owned()))
    }
}

enum Credential {
    Jwt(String),
    ApiKey(String),
}

/// Resolves the caller (if any) before rate limiting and routing. A credential that does not
/// verify is refused here with 401; no credential passes on anonymous.
pub async fn authenticate(State(id): State<Identity>, mut req: Request, next: Next) -> Response {
    let Some(cred) = credential(req.headers()) else {
        return next.run(req).await;
    };
    let token = match cred {
        Credential::Jwt(t) => t,
        Credential::ApiKey(secret) => {
            // The exchange itself goes out without the caller's credential: the key is the payload.
            let anonymous = RequestContext { bearer: None, ..RequestContext::current() };
            let exchanged = anonymous
                .scope(AuthClient::new(id.auth.clone()).exchange_api_key(ExchangeApiKeyRequest { secret }))
                .await;
            match exchanged {
                Ok(r) => r.into_inner().access_token,
                Err(status) => return refuse(&id, &req, ApiError::from(status)),
            }
        }
    };
    let principal = match id.verifier.verify(&token).await {
        Ok(p) => p,
        Err(e) => return refuse(&id, &req, ApiError::from(e)),
    };
    req.extensions_mut().insert(RateKey(principal.actor()));
    req.extensions_mut().insert(principal.clone());
    let mut ctx = RequestContext::current();
    ctx.bearer = Some(Secret::new(token));
    ctx.tenant_id = Some(principal.workspace_id);
    ctx.actor_id = Some(principal.actor());
    if let Some(l) = principal.locale {
        ctx.locale = Some(l.code().to_owned());
    }
    let mut resp = ctx.scope(next.run(req)).await;
    // The user's saved language wins over Accept-Language for the error envelope too.
    if let Some(l) = principal.locale {
        resp.extensions_mut().insert(UserLocale(l));
    }
    resp
}

/// Set on responses to authenticated requests: the language the edge renders errors in.
#[derive(Debug, Clone, Copy)]
pub struct UserLocale(pub nexus_kernel::Locale);

fn refuse(id: &Identity, req: &Request, error: ApiError) -> Response {
    let ip = req.extensions().get::<crate::edge::Edge>().map(|e| e.client_ip);
    if let Some(limited) = ip.and_then(|ip| id.limits.check_ip(ip)) {
        return limited.into_response();
    }
    error.into_response()
}

/// The authenticated caller; 401 `auth.unauthenticated` when there is none.
pub struct Authenticated(pub Principal);

impl<S: Send + Sync> FromRequestParts<S> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Principal>()
            .cloned()
            .map(Authenticated)
            .ok_or_else(|| ApiError::new(nexus_kernel::ErrorKind::Unauthenticated, "auth.unauthenticated"))
    }
}
