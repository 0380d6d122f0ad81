//! OpenID Connect relying party for "Sign in with Google/Facebook": authorization code flow with
//! PKCE (S256), ID token verification against the provider's JWKS.
//!
//! - The discovery document is fetched lazily and cached for the life of the client.
//! - The JWKS is fetched lazily, cached (at most [`JWKS_MAX_AGE`]), and re-fetched when a token
//!   names an unknown `kid` — at most once per [`JWKS_MIN_REFRESH`], so a stream of tokens with
//!   made-up `kid`s cannot turn us into a request amplifier against the provider.
//! - Only asymmetric signatures are accepted; `alg: none` and HMAC are refused before any key
//!   is looked up, and keys named by the token itself (`jku`, `jwk`, `x5u`) are ignored.
//! - Every request has a timeout; client secrets, codes and tokens are never logged.

use std::fmt;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::http::{
    Failed, RetryPolicy, is_loopback_host, read_limited, retry_after, retryable_status, transport_reason,
};

/// Timeout of every request to the provider.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Minimum time between two JWKS fetches triggered by an unknown `kid`.
pub const JWKS_MIN_REFRESH: Duration = Duration::from_secs(30);
/// A cached JWKS older than this is fetched again before use (so removed keys stop verifying).
pub const JWKS_MAX_AGE: Duration = Duration::from_secs(3600);
/// Clock skew tolerated on `exp` and `iat`.
pub const LEEWAY_SECS: u64 = 60;

const MAX_TOKEN_LEN: usize = 16 * 1024;
const MAX_BODY_BYTES: usize = 1024 * 1024;
/// Retries of discovery and JWKS reads.
const GET_RETRY: RetryPolicy = RetryPolicy::new(3, MAX_GET_RETRY_AFTER);
/// A longer `Retry-After` on a discovery or JWKS read is not waited out: the backoff is used.
const MAX_GET_RETRY_AFTER: Duration = Duration::from_secs(5);

fn default_scopes() -> Vec<String> {
    ["openid", "email", "profile"].into_iter().map(String::from).collect()
}

/// One OpenID provider, as configured.
#[derive(Clone, Deserialize)]
pub struct OidcConfig {
    /// `"google"` or `"facebook"`; used in errors and logs.
    pub provider: String,
    pub issuer: String,
    /// Empty means `issuer + "/.well-known/openid-configuration"`.
    #[serde(default)]
    pub discovery_url: String,
    pub client_id: String,
    pub client_secret: String,
    /// Empty means `openid email profile`; `openid` is always requested.
    #[serde(default = "default_scopes")]
    pub scopes: Vec<String>,
}

impl fmt::Debug for OidcConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OidcConfig")
            .field("provider", &self.provider)
            .field("issuer", &self.issuer)
            .field("discovery_url", &self.discovery_url)
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .field("scopes", &self.scopes)
            .finish()
    }
}

/// What the caller keeps (server side, bound to the browser session) between redirecting the
/// user to `url` and handling the callback.
#[derive(Clone, Serialize, Deserialize)]
pub struct AuthorizationRequest {
    pub url: String,
    pub state: String,
    pub nonce: String,
    pub pkce_verifier: String,
}

impl fmt::Debug for AuthorizationRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthorizationRequest")
            .field("url", &self.url)
            .field("state", &self.state)
            .field("nonce", &self.nonce)
            .field("pkce_verifier", &"<redacted>")
            .finish()
    }
}

/// Tokens from the token endpoint.
#[derive(Clone)]
pub struct TokenSet {
    pub access_token: String,
    pub id_token: String,
    pub expires_in: Option<u64>,
    pub token_type: String,
}

impl fmt::Debug for TokenSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenSet")
            .field("access_token", &"<redacted>")
            .field("id_token", &"<redacted>")
            .field("expires_in", &self.expires_in)
            .field("token_type", &self.token_type)
            .finish()
    }
}

/// The verified identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdTokenClaims {
    pub sub: String,
    pub email: Option<String>,
    pub email_verified: bool,
    pub name: Option<String>,
    pub picture: Option<String>,
    pub issuer: String,
}

#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    #[error("OpenID discovery failed: {0}")]
    Discovery(String),
    #[error("OpenID provider request failed: {0}")]
    Http(String),
    #[error("OpenID provider refused: {error}: {description}")]
    Provider { error: String, description: String },
    #[error("invalid ID token: {0}")]
    InvalidToken(String),
    #[error("ID token nonce does not match")]
    NonceMismatch,
}

impl OidcError {
    /// The platform error, with the `provider` param (e.g. `"google"`) the message needs.
    pub fn into_kernel_error(self, provider: &str) -> nexus_kernel::Error {
        let provider = Some(provider).filter(|p| !p.is_empty());
        to_kernel(self, provider)
    }
}

impl From<OidcError> for nexus_kernel::Error {
    /// Without the provider name; prefer [`OidcError::into_kernel_error`] when it is known.
    fn from(e: OidcError) -> Self {
        to_kernel(e, None)
    }
}

fn to_kernel(e: OidcError, provider: Option<&str>) -> nexus_kernel::Error {
    use nexus_kernel::{Error, ErrorKind};
    let err = match &e {
        OidcError::Discovery(_) | OidcError::Http(_) => {
            return Error::new(ErrorKind::Unavailable, "service.unavailable").with_source(e);
        }
        OidcError::Provider { .. } | OidcError::InvalidToken(_) | OidcError::NonceMismatch => {
            Error::new(ErrorKind::Unauthenticated, "auth.oauth_failed")
        }
    };
    let err = match provider {
        Some(p) => err.with_param("provider", p),
        None => err,
    };
    err.with_source(e)
}

/// The parts of the discovery document we use.
#[derive(Debug, Clone, Deserialize)]
struct Discovery {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    jwks_uri: String,
}

struct JwksCache {
    keys: Vec<Jwk>,
    fetched_at: Instant,
}

struct Inner {
    cfg: OidcConfig,
    http: reqwest::Client,
    discovery: tokio::sync::OnceCell<Discovery>,
    jwks: RwLock<Option<JwksCache>>,
    /// Serializes JWKS fetches; holds when the last one was attempted.
    jwks_fetch: tokio::sync::Mutex<Option<Instant>>,
    jwks_min_refresh: Duration,
    guard: Option<EndpointGuard>,
}

/// Checks an endpoint URL before it is fetched (the platform's outbound client refuses internal
/// destinations with it): `Err` carries the reason.
pub type EndpointGuard = Arc<dyn Fn(&str) -> Result<(), String> + Send + Sync>;

/// OpenID Connect client for one provider. Cheap to clone; clones share the caches.
#[derive(Clone)]
pub struct OidcClient {
    inner: Arc<Inner>,
}

impl fmt::Debug for OidcClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OidcClient").field("cfg", &self.inner.cfg).finish_non_exhaustive()
    }
}

impl OidcClient {
    pub fn new(cfg: OidcConfig, http: reqwest::Client) -> Self {
        Self::build(cfg, http, JWKS_MIN_REFRESH, None)
    }

    /// A client like this one (fresh caches) whose JWKS refreshes for unknown `kid`s are at least
    /// `interval` apart instead of [`JWKS_MIN_REFRESH`]. Meant for tests.
    pub fn with_jwks_min_refresh(self, interval: Duration) -> Self {
        Self::build(self.inner.cfg.clone(), self.inner.http.clone(), interval, self.inner.guard.clone())
    }

    /// A client like this one (fresh caches) that runs `guard` on the discovery URL and on every
    /// endpoint the discovery document names, refusing the provider when it fails. Give it the
    /// platform's outbound check together with the outbound client as `http`.
    pub fn with_endpoint_guard(self, guard: EndpointGuard) -> Self {
        Self::build(self.inner.cfg.clone(), self.inner.http.clone(), self.inner.jwks_min_refresh, Some(guard))
    }

    fn build(cfg: OidcConfig, http: reqwest::Client, jwks_min_refresh: Duration, guard: Option<EndpointGuard>) -> Self {
        Self {
            inner: Arc::new(Inner {
                cfg,
                http,
                discovery: tokio::sync::OnceCell::new(),
                jwks: RwLock::new(None),
                jwks_fetch: tokio::sync::Mutex::new(None),
                jwks_min_refresh,
                guard,
            }),
        }
    }

    fn guard(&self, url: &str) -> Result<(), OidcError> {
        match &self.inner.guard {
            Some(g) => g(url).map_err(|why| OidcError::Discovery(format!("endpoint {url:?} refused: {why}"))),
            None => Ok(()),
        }
    }

    pub fn provider(&self) -> &str {
        &self.inner.cfg.provider
    }

    pub fn config(&self) -> &OidcConfig {
        &self.inner.cfg
    }

    /// Builds the URL to send the user to, with fresh `state`, `nonce` and PKCE verifier.
    pub async fn authorization_request(&self, redirect_uri: &str) -> Result<AuthorizationRequest, OidcError> {
        let disc = self.discovery().await?;
        let Pkce { state, verifier: pkce_verifier, challenge } = Pkce::new();
        let nonce = random_token();

        let mut url = url::Url::parse(&disc.authorization_endpoint)
            .map_err(|e| OidcError::Discovery(format!("bad authorization_endpoint: {e}")))?;
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &self.inner.cfg.client_id)
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("scope", &self.scope())
            .append_pair("state", &state)
            .append_pair("nonce", &nonce)
            .append_pair("code_challenge", &challenge)
            .append_pair("code_challenge_method", "S256");

        Ok(AuthorizationRequest { url: url.into(), state, nonce, pkce_verifier })
    }

    /// Exchanges an authorization code at the token endpoint. Never retried once sent: codes
    /// are single-use.
    pub async fn exchange_code(
        &self,
        code: &str,
        pkce_verifier: &str,
        redirect_uri: &str,
    ) -> Result<TokenSet, OidcError> {
        let disc = self.discovery().await?;
        let cfg = &self.inner.cfg;
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect_uri),
            ("client_id", cfg.client_id.as_str()),
            ("client_secret", cfg.client_secret.as_str()),
            ("code_verifier", pkce_verifier),
        ];
        let send = || {
            self.inner
                .http
                .post(&disc.token_endpoint)
                .header(http::header::ACCEPT, "application/json")
                .timeout(REQUEST_TIMEOUT)
                .form(&form)
                .send()
        };
        let resp = match send().await {
            // The request never reached the provider, so the code is unspent: one more try.
            Err(e) if e.is_connect() => send().await,
            other => other,
        }
        .map_err(|e| {
            let reason = transport_reason(&e);
            tracing::warn!(provider = %cfg.provider, reason, "oidc token request failed");
            OidcError::Http(format!("token endpoint: {reason}"))
        })?;

        let status = resp.status();
        let body = read_limited(resp, MAX_BODY_BYTES)
            .await
            .map_err(|e| OidcError::Http(format!("token endpoint: {}", transport_reason(&e))))?;
        let json: Option<serde_json::Value> = serde_json::from_slice(&body).ok();

        if let Some(err) = json.as_ref().and_then(provider_error) {
            tracing::info!(provider = %cfg.provider, %status, error = %err.0, "oidc token endpoint refused the code");
            return Err(OidcError::Provider { error: err.0, description: err.1 });
        }
        if !status.is_success() {
            tracing::warn!(provider = %cfg.provider, %status, "oidc token endpoint failed");
            return Err(OidcError::Http(format!("token endpoint answered {status}")));
        }
        let json = json.ok_or_else(|| OidcError::Http("token endpoint answered non-JSON".into()))?;
        let str_field = |k: &str| json.get(k).and_then(|v| v.as_str()).map(String::from);
        let id_token =
            str_field("id_token").ok_or_else(|| OidcError::InvalidToken("token response has no id_token".into()))?;
        let access_token = str_field("access_token").unwrap_or_default();
        let token_type = str_field("token_type").unwrap_or_else(|| "Bearer".into());
        let expires_in = json.get("expires_in").and_then(|v| match v {
            serde_json::Value::Number(n) => n.as_u64(),
            serde_json::Value::String(s) => s.parse().ok(),
            _ => None,
        });
        Ok(TokenSet { access_token, id_token, expires_in, token_type })
    }

    /// Verifies an ID token: signature against the provider's JWKS, issuer, audience, expiry,
    /// issue time and nonce.
    pub async fn verify_id_token(&self, id_token: &str, expected_nonce: &str) -> Result<IdTokenClaims, OidcError> {
        let invalid = |m: &str| OidcError::InvalidToken(m.to_string());
        if id_token.len() > MAX_TOKEN_LEN {
            return Err(invalid("token too large"));
        }
        let (alg, kid) = parse_header(id_token)?;
        let disc = self.discovery().await?;
        let key = self.decoding_key(&kid, alg).await?;

        let cfg = &self.inner.cfg;
        let issuers = accepted_issuers(&disc.issuer);
        let mut validation = Validation::new(alg);
        validation.leeway = LEEWAY_SECS;
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.set_issuer(&issuers);
        validation.set_audience(&[cfg.client_id.as_str()]);

        let claims = jsonwebtoken::decode::<RawClaims>(id_token, &key, &validation)
            .map_err(|e| {
                use jsonwebtoken::errors::ErrorKind as K;
                let reason = match e.kind() {
                    K::InvalidSignature => "bad signature",
                    K::ExpiredSignature => "token expired",
                    K::InvalidIssuer => "issuer mismatch",
                    K::InvalidAudience => "audience mismatch",
                    K::MissingRequiredClaim(_) => "missing required claim",
                    K::InvalidAlgorithm => "algorithm does not match key",
                    K::Json(_) => "malformed claims",
                    _ => "malformed token",
                };
                tracing::info!(provider = %cfg.provider, reason, "oidc id token rejected");
                invalid(reason)
            })?
            .claims;

        // Belt and braces over the library's checks.
        if !issuers.contains(&claims.iss) {
            return Err(invalid("issuer mismatch"));
        }
        let aud = claims.aud.into_vec();
        if !aud.contains(&cfg.client_id) {
            return Err(invalid("audience mismatch"));
        }
        match &claims.azp {
            Some(azp) if *azp != cfg.client_id => return Err(invalid("azp mismatch")),
            None if aud.len() > 1 => return Err(invalid("azp missing with several audiences")),
            _ => {}
        }
        let now = jsonwebtoken::get_current_timestamp();
        if claims.exp.saturating_add(LEEWAY_SECS) < now {
            return Err(invalid("token expired"));
        }
        match claims.iat {
            Some(iat) if iat > now.saturating_add(LEEWAY_SECS) => {
                return Err(invalid("token issued in the future"));
            }
            Some(_) => {}
            None => return Err(invalid("missing required claim")),
        }
        let nonce_ok = !expected_nonce.is_empty()
            && claims.nonce.as_deref().is_some_and(|n| bool::from(n.as_bytes().ct_eq(expected_nonce.as_bytes())));
        if !nonce_ok {
            return Err(OidcError::NonceMismatch);
        }
        if claims.sub.is_empty() {
            return Err(invalid("empty subject"));
        }

        Ok(IdTokenClaims {
            sub: claims.sub,
            email: claims.email,
            email_verified: claims.email_verified.is_some_and(|v| match v {
                serde_json::Value::Bool(b) => b,
                serde_json::Value::String(s) => s.eq_ignore_ascii_case("true"),
                _ => false,
            }),
            name: claims.name,
            picture: claims.picture,
            issuer: claims.iss,
        })
    }

    /// [`exchange_code`](Self::exchange_code) then [`verify_id_token`](Self::verify_id_token).
    pub async fn login(
        &self,
        code: &str,
        pkce_verifier: &str,
        redirect_uri: &str,
        expected_nonce: &str,
    ) -> Result<IdTokenClaims, OidcError> {
        let tokens = self.exchange_code(code, pkce_verifier, redirect_uri).await?;
        self.verify_id_token(&tokens.id_token, expected_nonce).await
    }

    fn scope(&self) -> String {
        let mut scopes: Vec<&str> = self.inner.cfg.scopes.iter().map(String::as_str).collect();
        if scopes.is_empty() {
            scopes = vec!["openid", "email", "profile"];
        }
        if !scopes.contains(&"openid") {
            scopes.insert(0, "openid");
        }
        scopes.join(" ")
    }

    async fn discovery(&self) -> Result<&Discovery, OidcError> {
        self.inner.discovery.get_or_try_init(|| self.fetch_discovery()).await
    }

    async fn fetch_discovery(&self) -> Result<Discovery, OidcError> {
        let cfg = &self.inner.cfg;
        let url = if cfg.discovery_url.is_empty() {
            if cfg.issuer.is_empty() {
                return Err(OidcError::Discovery("neither issuer nor discovery_url configured".into()));
            }
            format!("{}/.well-known/openid-configuration", cfg.issuer.trim_end_matches('/'))
        } else {
            cfg.discovery_url.clone()
        };
        check_endpoint(&url).map_err(OidcError::Discovery)?;
        self.guard(&url)?;
        let body = self.get_with_retry(&url).await.map_err(OidcError::Discovery)?;
        let disc: Discovery =
            serde_json::from_slice(&body).map_err(|e| OidcError::Discovery(format!("bad discovery document: {e}")))?;
        if !cfg.issuer.is_empty() && disc.issuer != cfg.issuer {
            return Err(OidcError::Discovery(format!(
                "discovery issuer {:?} is not the configured issuer {:?}",
                disc.issuer, cfg.issuer
            )));
        }
        for ep in [&disc.authorization_endpoint, &disc.token_endpoint, &disc.jwks_uri] {
            check_endpoint(ep).map_err(OidcError::Discovery)?;
            self.guard(ep)?;
        }
        tracing::debug!(provider = %cfg.provider, issuer = %disc.issuer, "oidc discovery loaded");
        Ok(disc)
    }

    /// The key for `kid`, fetching the JWKS if there is none, it is stale, or `kid` is unknown
    /// (the last only if the previous fetch is older than the minimum refresh interval).
    async fn decoding_key(&self, kid: &str, alg: Algorithm) -> Result<DecodingKey, OidcError> {
        if let Some(found) = self.cached_key(kid, alg, true) {
            return found;
        }
        let mut last_fetch = self.inner.jwks_fetch.lock().await;
        // Someone may have fetched while we waited for the lock.
        if let Some(found) = self.cached_key(kid, alg, true) {
            return found;
        }
        let have_fresh = self
            .inner
            .jwks
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .is_some_and(|c| c.fetched_at.elapsed() < JWKS_MAX_AGE);
        if have_fresh && last_fetch.is_some_and(|t| t.elapsed() < self.inner.jwks_min_refresh) {
            return Err(OidcError::InvalidToken("unknown key id".into()));
        }
        *last_fetch = Some(Instant::now());
        let keys = self.fetch_jwks().await?;
        *self.inner.jwks.write().unwrap_or_else(|p| p.into_inner()) =
            Some(JwksCache { keys, fetched_at: Instant::now() });
        drop(last_fetch);
        self.cached_key(kid, alg, false).unwrap_or_else(|| Err(OidcError::InvalidToken("unknown key id".into())))
    }

    /// `None`: not cached (or cache stale when `fresh_only`). `Some(Err)`: the `kid` exists but
    /// cannot verify `alg`.
    fn cached_key(&self, kid: &str, alg: Algorithm, fresh_only: bool) -> Option<Result<DecodingKey, OidcError>> {
        let guard = self.inner.jwks.read().unwrap_or_else(|p| p.into_inner());
        let cache = guard.as_ref()?;
        if fresh_only && cache.fetched_at.elapsed() >= JWKS_MAX_AGE {
            return None;
        }
        let mut named = cache.keys.iter().filter(|k| k.common.key_id.as_deref() == Some(kid)).peekable();
        named.peek()?;
        let found = named
            .find(|k| key_fits(k, alg))
            .map(|k| DecodingKey::from_jwk(k).map_err(|_| OidcError::InvalidToken("unusable key in JWKS".into())))
            .unwrap_or_else(|| Err(OidcError::InvalidToken("key does not match alg".into())));
        Some(found)
    }

    async fn fetch_jwks(&self) -> Result<Vec<Jwk>, OidcError> {
        let disc = self.discovery().await?;
        let body = self.get_with_retry(&disc.jwks_uri).await.map_err(|e| OidcError::Http(format!("jwks: {e}")))?;
        #[derive(Deserialize)]
        struct RawSet {
            keys: Vec<serde_json::Value>,
        }
        let set: RawSet =
            serde_json::from_slice(&body).map_err(|e| OidcError::Http(format!("jwks: bad document: {e}")))?;
        // Keys we cannot parse are skipped rather than failing the whole set.
        let keys: Vec<Jwk> = set.keys.into_iter().filter_map(|k| serde_json::from_value(k).ok()).collect();
        tracing::debug!(provider = %self.inner.cfg.provider, keys = keys.len(), "oidc jwks loaded");
        Ok(keys)
    }

    /// GET with timeout, retrying transport errors, 429 and 5xx with jittered backoff (honouring
    /// a `Retry-After` of up to [`MAX_GET_RETRY_AFTER`]; a longer one is replaced by the
    /// backoff). Returns the body of a 2xx answer.
    async fn get_with_retry(&self, url: &str) -> Result<Vec<u8>, String> {
        let attempt = |_| async {
            let sent = self
                .inner
                .http
                .get(url)
                .header(http::header::ACCEPT, "application/json")
                .timeout(REQUEST_TIMEOUT)
                .send()
                .await;
            match sent {
                Ok(resp) if resp.status().is_success() => read_limited(resp, MAX_BODY_BYTES)
                    .await
                    .map_err(|e| Failed::new(transport_reason(&e).into(), false, None)),
                Ok(resp) => {
                    let status = resp.status();
                    let wait = retry_after(resp.headers()).filter(|d| *d <= MAX_GET_RETRY_AFTER);
                    Err(Failed::new(format!("{url} answered {status}"), retryable_status(status.as_u16()), wait))
                }
                Err(e) => Err(Failed::new(format!("{url}: {}", transport_reason(&e)), true, None)),
            }
        };
        GET_RETRY
            .run(attempt, |failed, d| {
                if failed.retryable {
                    let (provider, reason) = (&self.inner.cfg.provider, &failed.error);
                    tracing::warn!(%provider, attempt = d.attempt, %reason, "oidc provider request failed");
                }
            })
            .await
    }
}

/// Parses the JOSE header: the algorithm must be on the allow-list and a `kid` present.
fn parse_header(token: &str) -> Result<(Algorithm, String), OidcError> {
    let invalid = |m: &str| OidcError::InvalidToken(m.to_string());
    let mut parts = token.split('.');
    let (Some(header), Some(_), Some(_), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(invalid("malformed token"));
    };
    let bytes = URL_SAFE_NO_PAD.decode(header).map_err(|_| invalid("malformed header"))?;
    let header: serde_json::Value = serde_json::from_slice(&bytes).map_err(|_| invalid("malformed header"))?;
    let alg = header.get("alg").and_then(|a| a.as_str()).ok_or_else(|| invalid("malformed header"))?;
    let alg = match alg {
        "RS256" => Algorithm::RS256,
        "RS384" => Algorithm::RS384,
        "RS512" => Algorithm::RS512,
        "ES256" => Algorithm::ES256,
        "ES384" => Algorithm::ES384,
        "EdDSA" => Algorithm::EdDSA,
        _ => return Err(invalid("algorithm not allowed")),
    };
    if header.get("crit").is_some() {
        return Err(invalid("unsupported critical header"));
    }
    let kid = header
        .get("kid")
        .and_then(|k| k.as_str())
        .filter(|k| !k.is_empty())
        .ok_or_else(|| invalid("missing key id"))?;
    Ok((alg, kid.to_string()))
}

/// Whether a JWK may verify `alg`: matching key type and curve, no conflicting `alg`, not an
/// encryption key.
fn key_fits(jwk: &Jwk, alg: Algorithm) -> bool {
    if matches!(jwk.common.public_key_use, Some(ref u) if *u != PublicKeyUse::Signature) {
        return false;
    }
    if let Some(key_alg) = jwk.common.key_algorithm
        && key_alg != alg.into()
    {
        return false;
    }
    match (&jwk.algorithm, alg) {
        (AlgorithmParameters::RSA(_), Algorithm::RS256 | Algorithm::RS384 | Algorithm::RS512) => true,
        (AlgorithmParameters::EllipticCurve(p), Algorithm::ES256) => p.curve == EllipticCurve::P256,
        (AlgorithmParameters::EllipticCurve(p), Algorithm::ES384) => p.curve == EllipticCurve::P384,
        (AlgorithmParameters::OctetKeyPair(p), Algorithm::EdDSA) => p.curve == EllipticCurve::Ed25519,
        _ => false,
    }
}

/// Google documents ID tokens carrying `iss` with or without the scheme.
fn accepted_issuers(issuer: &str) -> Vec<String> {
    let mut v = vec![issuer.to_string()];
    if issuer == "https://accounts.google.com" {
        v.push("accounts.google.com".into());
    }
    v
}

/// Provider endpoints must be HTTPS, except on loopback (local fakes).
fn check_endpoint(raw: &str) -> Result<(), String> {
    let url = url::Url::parse(raw).map_err(|e| format!("bad endpoint URL {raw:?}: {e}"))?;
    let loopback = is_loopback_host(&url);
    match url.scheme() {
        "https" => Ok(()),
        "http" if loopback => Ok(()),
        _ => Err(format!("endpoint {raw:?} is not HTTPS")),
    }
}

/// `(error, description)` from an OAuth error body, or from Facebook's `{"error":{...}}`.
fn provider_error(json: &serde_json::Value) -> Option<(String, String)> {
    let err = json.get("error")?;
    let text = |v: Option<&serde_json::Value>| v.and_then(|v| v.as_str()).map(String::from);
    match err {
        serde_json::Value::String(code) => {
            Some((code.clone(), text(json.get("error_description")).unwrap_or_default()))
        }
        serde_json::Value::Object(obj) => Some((
            text(obj.get("type")).unwrap_or_else(|| "provider_error".into()),
            text(obj.get("message")).unwrap_or_default(),
        )),
        _ => None,
    }
}

/// The secrets of one authorization-code round trip: a fresh `state` and a PKCE verifier with
/// its S256 challenge. Sign-in here and plain OAuth 2.0 grants (the ads service's platform
/// connections) share it; the caller keeps `state` hashed and `verifier` sealed until the
/// callback.
pub struct Pkce {
    pub state: String,
    pub verifier: String,
    pub challenge: String,
}

impl Pkce {
    pub fn new() -> Self {
        let verifier = random_token();
        let challenge = pkce_challenge(&verifier);
        Self { state: random_token(), verifier, challenge }
    }
}

impl Default for Pkce {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Pkce {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pkce").field("state", &self.state).field("verifier", &"<redacted>").finish_non_exhaustive()
    }
}

/// 32 random bytes, base64url without padding (43 characters).
pub fn random_token() -> String {
    URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>())
}

/// PKCE S256: `BASE64URL(SHA256(ascii(verifier)))`.
pub fn pkce_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

impl Audience {
    fn into_vec(self) -> Vec<String> {
        match self {
            Audience::One(a) => vec![a],
            Audience::Many(v) => v,
        }
    }
}

#[derive(Deserialize)]
struct RawClaims {
    iss: String,
    sub: String,
    aud: Audience,
    azp: Option<String>,
    exp: u64,
    iat: Option<u64>,
    nonce: Option<String>,
    email: Option<String>,
    email_verified: Option<serde_json::Value>,
    name: Option<String>,
    picture: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_challenge_matches_rfc7636_example() {
        // RFC 7636 appendix B.
        assert_eq!(
            pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn random_tokens_are_32_bytes_and_distinct() {
        let a = random_token();
        let b = random_token();
        assert_eq!(a.len(), 43);
        assert_eq!(URL_SAFE_NO_PAD.decode(&a).unwrap().len(), 32);
        assert_ne!(a, b);
    }

    #[test]
    fn a_pkce_round_trip_has_a_matching_challenge_and_its_own_state() {
        let p = Pkce::new();
        assert_eq!(p.challenge, pkce_challenge(&p.verifier));
        assert_ne!(p.state, p.verifier);
        assert!(!format!("{p:?}").contains(&p.verifier));
    }

    fn token_with_header(header: &str) -> String {
        format!("{}.{}.sig", URL_SAFE_NO_PAD.encode(header), URL_SAFE_NO_PAD.encode("{}"))
    }

    #[test]
    fn header_allow_list() {
        for bad in [
            r#"{"alg":"none","kid":"k"}"#,
            r#"{"alg":"HS256","kid":"k"}"#,
            r#"{"alg":"PS256","kid":"k"}"#,
            r#"{"alg":"RS256"}"#,
            r#"{"alg":"RS256","kid":"k","crit":["b64"]}"#,
        ] {
            assert!(matches!(parse_header(&token_with_header(bad)), Err(OidcError::InvalidToken(_))), "{bad}");
        }
        let (alg, kid) = parse_header(&token_with_header(r#"{"alg":"ES256","kid":"k1"}"#)).unwrap();
        assert_eq!((alg, kid.as_str()), (Algorithm::ES256, "k1"));
        assert!(parse_header("a.b").is_err());
        assert!(parse_header("a.b.c.d").is_err());
    }

    #[test]
    fn endpoints_must_be_https_unless_loopback() {
        assert!(check_endpoint("https://accounts.google.com/o/oauth2/v2/auth").is_ok());
        assert!(check_endpoint("http://127.0.0.1:8080/token").is_ok());
        assert!(check_endpoint("http://localhost/token").is_ok());
        assert!(check_endpoint("http://example.com/token").is_err());
        assert!(check_endpoint("ftp://example.com/token").is_err());
    }

    #[test]
    fn provider_error_shapes() {
        let oauth = serde_json::json!({"error": "invalid_grant", "error_description": "bad code"});
        assert_eq!(provider_error(&oauth), Some(("invalid_grant".into(), "bad code".into())));
        let fb = serde_json::json!({"error": {"message": "Invalid code", "type": "OAuthException", "code": 100}});
        assert_eq!(provider_error(&fb), Some(("OAuthException".into(), "Invalid code".into())));
        assert_eq!(provider_error(&serde_json::json!({"id_token": "x"})), None);
    }

    #[test]
    fn config_debug_hides_secret_and_defaults_apply() {
        let cfg: OidcConfig = serde_json::from_value(serde_json::json!({
            "provider": "google", "issuer": "https://accounts.google.com",
            "client_id": "cid", "client_secret": "very-secret"
        }))
        .unwrap();
        assert_eq!(cfg.scopes, default_scopes());
        assert_eq!(cfg.discovery_url, "");
        assert!(!format!("{cfg:?}").contains("very-secret"));
    }

    #[test]
    fn kernel_mapping() {
        use nexus_kernel::ErrorKind;
        let e = OidcError::NonceMismatch.into_kernel_error("google");
        assert_eq!(e.kind(), ErrorKind::Unauthenticated);
        assert_eq!(e.code(), "auth.oauth_failed");
        assert_eq!(e.param("provider"), Some("google"));
        let e: nexus_kernel::Error = OidcError::InvalidToken("x".into()).into();
        assert_eq!(e.kind(), ErrorKind::Unauthenticated);
        let e = OidcError::Http("down".into()).into_kernel_error("facebook");
        assert_eq!(e.kind(), ErrorKind::Unavailable);
        assert_eq!(e.code(), "service.unavailable");
        let e: nexus_kernel::Error = OidcError::Discovery("down".into()).into();
        assert_eq!(e.kind(), ErrorKind::Unavailable);
    }
}
