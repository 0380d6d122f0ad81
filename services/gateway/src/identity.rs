//! Who is calling. A bearer JWT is verified here (signature, expiry, algorithm) against auth's
//! JWKS; an API key (`X-Api-Key`, or a bearer starting `nx_`) is exchanged with auth for a
//! short-lived internal token. Either way the token forwarded to services is one they verify
//! themselves; the gateway's check only turns bad tokens away early and keys rate limits.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

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

use sha2::{Digest, Sha256};

use crate::edge::{Budget, RateKey, RateLimits, too_many};
use crate::error::ApiError;

#[derive(Clone)]
pub struct Identity {
    pub verifier: Arc<Verifier>,
    pub auth: ContextChannel,
    /// Failed credentials and API-key exchanges spend the caller's per-IP budget, so guessing is
    /// rate limited too.
    pub limits: RateLimits,
    /// Internal tokens of exchanged API keys, reused until shortly before they expire.
    pub exchanged: ExchangedTokens,
}

impl Identity {
    pub fn new(verifier: Arc<Verifier>, auth: ContextChannel, limits: RateLimits, exchanged: ExchangedTokens) -> Self {
        Self { verifier, auth, limits, exchanged }
    }
}

/// Most entries an exchange cache holds; past it, expired entries go, and failing that nothing
/// more is cached (the exchange still works, it is just not remembered).
const EXCHANGE_CACHE_MAX: usize = 10_000;
/// A cached token is not handed out in its last seconds, so it cannot expire on its way.
const EXCHANGE_MARGIN_SECS: i64 = 30;

/// API-key secret (by SHA-256, never the secret itself) → the internal token auth gave for it,
/// its expiry and the key's id. Revoking a key through this gateway drops its tokens at once;
/// a revocation made elsewhere reaches every service's verifier through auth's events, and the
/// first 401 a service answers for a cached token drops it here too.
#[derive(Clone, Default)]
pub struct ExchangedTokens(Arc<Mutex<HashMap<[u8; 32], Exchanged>>>);

struct Exchanged {
    token: String,
    expires_at: i64,
    key_id: Option<uuid::Uuid>,
}

/// `key_0192…` (as the API shows it) or a plain UUID (as tokens carry it).
fn key_uuid(id: &str) -> Option<uuid::Uuid> {
    uuid::Uuid::parse_str(id.strip_prefix("key_").unwrap_or(id)).ok()
}

impl ExchangedTokens {
    fn digest(secret: &str) -> [u8; 32] {
        Sha256::digest(secret.as_bytes()).into()
    }

    fn get(&self, secret: &str) -> Option<String> {
        let now = chrono::Utc::now().timestamp();
        let map = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        map.get(&Self::digest(secret)).filter(|e| e.expires_at - EXCHANGE_MARGIN_SECS > now).map(|e| e.token.clone())
    }

    fn put(&self, secret: &str, token: &str, principal: &Principal) {
        let now = chrono::Utc::now().timestamp();
        let mut map = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if map.len() >= EXCHANGE_CACHE_MAX {
            map.retain(|_, e| e.expires_at - EXCHANGE_MARGIN_SECS > now);
        }
        if map.len() < EXCHANGE_CACHE_MAX {
            let entry = Exchanged {
                token: token.to_owned(),
                expires_at: principal.expires_at,
                key_id: key_uuid(&principal.session_id),
            };
            map.insert(Self::digest(secret), entry);
        }
    }

    fn forget(&self, secret: &str) {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(&Self::digest(secret));
    }

    /// Drops every cached token of the API key `key_id` (it was just revoked).
    pub fn forget_key(&self, key_id: &str) {
        let Some(wanted) = key_uuid(key_id) else { return };
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).retain(|_, e| e.key_id != Some(wanted));
    }
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
    let ip = req.extensions().get::<crate::edge::Edge>().map(|e| e.client_ip);
    let (token, api_key) = match cred {
        Credential::Jwt(t) => (t, None),
        Credential::ApiKey(secret) => match id.exchanged.get(&secret) {
            Some(t) => (t, Some(secret)),
            None => {
                // An exchange is a database lookup at auth: it spends the per-IP budget first, so
                // keys cannot be guessed (or auth flooded) faster than anonymous requests.
                if let Some(ip) = ip
                    && let Err(wait) = id.limits.check_ip(Budget::Ip, ip).await
                {
                    return too_many(wait).into_response();
                }
                // The exchange goes out without the caller's credential: the key is the payload.
                let anonymous = RequestContext { bearer: None, ..RequestContext::current() };
                let exchanged = anonymous
                    .scope(
                        AuthClient::new(id.auth.clone())
                            .exchange_api_key(ExchangeApiKeyRequest { secret: secret.clone() }),
                    )
                    .await;
                match exchanged {
                    Ok(r) => (r.into_inner().access_token, Some(secret)),
                    Err(status) => return ApiError::from(status).into_response(),
                }
            }
        },
    };
    let principal = match id.verifier.verify(&token).await {
        Ok(p) => p,
        Err(e) => {
            if let Some(secret) = &api_key {
                id.exchanged.forget(secret);
            }
            return refuse(&id, ip, ApiError::from(e)).await;
        }
    };
    if let Some(secret) = &api_key {
        id.exchanged.put(secret, &token, &principal);
    }
    // Budgets belong to the person: every API key of a user draws on the same one.
    req.extensions_mut().insert(RateKey(principal.user_id.to_string()));
    req.extensions_mut().insert(principal.clone());
    let mut ctx = RequestContext::current();
    ctx.bearer = Some(Secret::new(token));
    ctx.tenant_id = Some(principal.workspace_id);
    ctx.actor_id = Some(principal.actor());
    if let Some(l) = principal.locale {
        ctx.locale = Some(l.code().to_owned());
    }
    let mut resp = ctx.scope(next.run(req)).await;
    if resp.status() == axum::http::StatusCode::UNAUTHORIZED
        && let Some(secret) = &api_key
    {
        // A service refused the cached token (the key was revoked elsewhere): exchange afresh next time.
        id.exchanged.forget(secret);
    }
    // The user's saved language wins over Accept-Language for the error envelope too.
    if let Some(l) = principal.locale {
        resp.extensions_mut().insert(UserLocale(l));
    }
    resp
}

/// Set on responses to authenticated requests: the language the edge renders errors in.
#[derive(Debug, Clone, Copy)]
pub struct UserLocale(pub nexus_kernel::Locale);

async fn refuse(id: &Identity, ip: Option<std::net::IpAddr>, error: ApiError) -> Response {
    if let Some(ip) = ip
        && let Err(wait) = id.limits.check_ip(Budget::Ip, ip).await
    {
        return too_many(wait).into_response();
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
