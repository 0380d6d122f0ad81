//! Identity across the fleet: the access-token claims `auth` signs, the verified [`Principal`]
//! every service works with, the one permission check, and the [`Verifier`] each service runs
//! against the JWKS it fetches from `auth` (cached; refetched when an unknown `kid` appears,
//! refreshed in the background when stale, and kept when a refresh fails).
//! No service trusts a header alone.
//!
//! Services calling services on their own behalf use a service identity: [`ServiceTokens`]
//! exchanges the service's credential (`identity.service_secret`) at auth for a short-lived token
//! whose principal answers [`Principal::is_service`], optionally bound to one workspace.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Serialize};

use nexus_kernel::{Error, UserId, WorkspaceId};

pub const ISSUER: &str = "nexus-auth";
pub const AUDIENCE: &str = "nexus";

nexus_kernel::word_enum! {
    /// A member's role in a workspace, weakest first (the order is the permission order).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
    #[serde(rename_all = "lowercase")]
    pub enum Role: invalid "auth.invalid_role", param "role" {
        Viewer = "viewer",
        Member = "member",
        Admin = "admin",
        Owner = "owner",
    }
}

nexus_kernel::word_enum! {
    /// What an API key may do. A signed-in user has no scope restriction.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
    #[serde(rename_all = "lowercase")]
    pub enum Scope: invalid "auth.invalid_scope", param "scope" {
        Read = "read",
        Write = "write",
        Admin = "admin",
    }
}

/// What a caller wants to do; the only input to the permission check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Read,
    Write,
    ManageMembers,
    ManageBilling,
    ManageApiKeys,
    OwnWorkspace,
}

impl Action {
    const fn min_role(self) -> Role {
        match self {
            Self::Read => Role::Viewer,
            Self::Write => Role::Member,
            Self::ManageMembers | Self::ManageBilling | Self::ManageApiKeys => Role::Admin,
            Self::OwnWorkspace => Role::Owner,
        }
    }

    const fn min_scope(self) -> Scope {
        match self {
            Self::Read => Scope::Read,
            Self::Write => Scope::Write,
            _ => Scope::Admin,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PrincipalKind {
    User,
    ApiKey,
    /// A NexusOne service acting on its own behalf (or for one workspace); see [`ServiceTokens`].
    Service,
}

/// Development default of `identity.service_secret`: this prefix and the service name. Auth
/// accepts it only as configured in `auth.service_credentials`; production must not use it.
pub const DEV_SERVICE_SECRET_PREFIX: &str = "nexus-dev-service-secret:";

/// The development credential of `service`.
pub fn dev_service_secret(service: &str) -> String {
    format!("{DEV_SERVICE_SECRET_PREFIX}{service}")
}

/// Whether `secret` is a built-in development credential.
pub fn is_dev_service_secret(secret: &str) -> bool {
    secret.starts_with(DEV_SERVICE_SECRET_PREFIX)
}

/// `sub` of a service token that acts for no workspace (and `ws` then): the nil id, which names
/// no user and no tenant, so nothing tenant-scoped can be reached with it.
pub fn nil_user() -> UserId {
    UserId::from_uuid(uuid::Uuid::nil())
}

/// Access-token claims (JWT, EdDSA).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub aud: String,
    /// User id (`usr_…`).
    pub sub: String,
    /// Workspace id (`ws_…`): the tenant this token acts in.
    pub ws: String,
    pub role: Role,
    /// Empty for users (no restriction); an API key's scopes otherwise.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scp: Vec<Scope>,
    /// Session family (users) or API key id (keys): revoking it kills the token.
    pub sid: String,
    pub kind: PrincipalKind,
    pub jti: String,
    pub iat: i64,
    pub exp: i64,
    /// How the user authenticated: "pwd", "otp", "oauth".
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub amr: Vec<String>,
    /// The user's language at issue time, so every hop can answer in it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub loc: String,
    /// Service tokens: the calling service's name (`kind` is `service`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub svc: String,
}

/// A verified caller.
#[derive(Debug, Clone)]
pub struct Principal {
    pub user_id: UserId,
    pub workspace_id: WorkspaceId,
    pub role: Role,
    pub scopes: Option<Vec<Scope>>,
    pub session_id: String,
    pub kind: PrincipalKind,
    pub token_id: String,
    pub expires_at: i64,
    /// The user's saved language (`loc` claim), which wins over `Accept-Language`.
    pub locale: Option<nexus_kernel::Locale>,
    /// The calling service's name, for service principals.
    pub service: Option<String>,
}

/// The language to answer in when a request names none: the user's saved setting, else the
/// request's negotiated locale, else English.
pub fn caller_locale(p: Option<&Principal>) -> nexus_kernel::Locale {
    p.and_then(|p| p.locale)
        .or_else(|| crate::RequestContext::current().locale.and_then(|l| l.parse().ok()))
        .unwrap_or_default()
}

impl Principal {
    /// The shared permission check: the role must reach the action's minimum, and an API key (or
    /// a service, which acts with `read` and `write` in one workspace) must also hold a scope that
    /// covers it.
    pub fn require(&self, action: Action) -> Result<(), Error> {
        // A service acting for no workspace has no tenant to act in.
        if self.is_service() && self.service_workspace().is_none() {
            return Err(Error::forbidden("auth.permission_denied"));
        }
        if self.role < action.min_role() {
            return Err(Error::forbidden("auth.role_insufficient"));
        }
        if let Some(scopes) = &self.scopes {
            let needed = action.min_scope();
            let covered = scopes.iter().any(|s| match needed {
                Scope::Read => true,
                Scope::Write => matches!(s, Scope::Write | Scope::Admin),
                Scope::Admin => *s == Scope::Admin,
            });
            if !covered {
                return Err(Error::forbidden("auth.scope_missing").with_param("scope", needed.as_str()));
            }
        }
        Ok(())
    }

    /// Audit actor: the user, the API key acting for them, or the service.
    pub fn actor(&self) -> String {
        match self.kind {
            PrincipalKind::User => self.user_id.to_string(),
            PrincipalKind::ApiKey => format!("key:{}", self.session_id),
            PrincipalKind::Service => format!("svc:{}", self.service.as_deref().unwrap_or("")),
        }
    }

    /// A NexusOne service rather than a person or an API key.
    pub fn is_service(&self) -> bool {
        self.kind == PrincipalKind::Service
    }

    /// The workspace a service principal acts for, if any (users and keys always have one).
    pub fn service_workspace(&self) -> Option<WorkspaceId> {
        (self.workspace_id.as_uuid() != uuid::Uuid::nil()).then_some(self.workspace_id)
    }

    /// For internal-only RPCs (key rotation, dead letters, local mail): only a service acting for
    /// no particular workspace passes; end users, API keys and workspace-bound service tokens get
    /// `PermissionDenied`.
    pub fn require_internal(&self) -> Result<(), Error> {
        if self.is_service() && self.service_workspace().is_none() {
            Ok(())
        } else {
            Err(Error::forbidden("auth.service_only"))
        }
    }

    /// Fails unless the caller acts in `workspace` (a service token for W cannot act in X).
    pub fn require_workspace(&self, workspace: WorkspaceId) -> Result<(), Error> {
        if self.workspace_id == workspace { Ok(()) } else { Err(Error::forbidden("auth.not_member")) }
    }

    fn from_claims(c: Claims) -> Result<Self, Error> {
        let bad = || Error::unauthenticated("auth.unauthenticated");
        let service = (c.kind == PrincipalKind::Service).then(|| c.svc.clone());
        if service.as_deref().is_some_and(str::is_empty) {
            return Err(bad());
        }
        Ok(Self {
            user_id: UserId::parse(&c.sub).map_err(|_| bad())?,
            workspace_id: WorkspaceId::parse(&c.ws).map_err(|_| bad())?,
            role: c.role,
            scopes: (c.kind != PrincipalKind::User).then_some(c.scp),
            session_id: c.sid,
            kind: c.kind,
            token_id: c.jti,
            expires_at: c.exp,
            locale: c.loc.parse().ok(),
            service,
        })
    }
}

/// Reads the principal the context layer verified; `auth.unauthenticated` when there is none.
pub fn principal<T>(req: &tonic::Request<T>) -> Result<Principal, tonic::Status> {
    req.extensions().get::<Principal>().cloned().ok_or_else(|| Error::unauthenticated("auth.unauthenticated").into())
}

/// Where a verifier gets the JWKS document from.
#[async_trait::async_trait]
pub trait KeySource: Send + Sync + 'static {
    async fn jwks(&self) -> Result<String, Error>;
}

/// Fetches the JWKS from the auth service over gRPC.
pub struct GrpcKeySource {
    channel: tonic::transport::Channel,
}

impl GrpcKeySource {
    pub fn new(auth_url: &str) -> Result<Self, tonic::transport::Error> {
        Ok(Self { channel: crate::grpc::channel(auth_url, Duration::from_secs(5))? })
    }
}

#[async_trait::async_trait]
impl KeySource for GrpcKeySource {
    async fn jwks(&self) -> Result<String, Error> {
        let mut client = nexus_proto::nexus::auth::v1::auth_client::AuthClient::new(self.channel.clone());
        let resp = client.get_jwks(nexus_proto::nexus::auth::v1::Empty {}).await.map_err(|s| Error::from_status(&s))?;
        Ok(resp.into_inner().json)
    }
}

#[derive(Deserialize)]
struct Jwk {
    kid: String,
    kty: String,
    #[serde(default)]
    crv: String,
    #[serde(default)]
    x: String,
}

#[derive(Deserialize)]
struct JwkSet {
    keys: Vec<Jwk>,
}

/// Parses an Ed25519 JWKS into decoding keys by `kid`.
pub fn parse_jwks(json: &str) -> Result<HashMap<String, DecodingKey>, Error> {
    let set: JwkSet = serde_json::from_str(json).map_err(|e| Error::internal(format!("jwks: {e}")))?;
    let mut out = HashMap::new();
    for k in set.keys {
        if k.kty == "OKP" && k.crv == "Ed25519" {
            let key =
                DecodingKey::from_ed_components(&k.x).map_err(|e| Error::internal(format!("jwk {}: {e}", k.kid)))?;
            out.insert(k.kid, key);
        }
    }
    Ok(out)
}

/// Session families revoked recently (their access tokens may still be unexpired).
#[derive(Default)]
pub struct Revocations {
    // sid -> unix time after which the entry can be forgotten (all its tokens expired).
    map: Mutex<HashMap<String, i64>>,
}

impl Revocations {
    pub fn revoke(&self, sid: &str, forget_after: i64) {
        let mut m = self.map.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = chrono::Utc::now().timestamp();
        m.retain(|_, until| *until > now);
        m.insert(sid.to_owned(), forget_after);
    }

    pub fn is_revoked(&self, sid: &str) -> bool {
        self.map.lock().unwrap_or_else(std::sync::PoisonError::into_inner).contains_key(sid)
    }
}

struct Keys {
    by_kid: HashMap<String, DecodingKey>,
    /// When the keys were last fetched successfully.
    fetched: Option<Instant>,
    /// When a fetch was last started (successful or not): unknown `kid`s and stale caches
    /// trigger at most one fetch per [`MIN_REFETCH`].
    attempted: Option<Instant>,
}

/// The JWKS cache a verifier shares with its background refreshes.
struct KeyCache {
    source: Arc<dyn KeySource>,
    keys: RwLock<Keys>,
    /// Held for the duration of a fetch: concurrent callers wait for it and then read its result
    /// instead of fetching again (single flight).
    fetch: tokio::sync::Mutex<()>,
    /// A background refresh is queued or running.
    refreshing: AtomicBool,
    /// Completed fetches (successful or not): a caller that sees it move while waiting for the
    /// fetch lock takes that fetch's answer.
    fetches: AtomicU64,
}

impl KeyCache {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, Keys> {
        self.keys.read().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Fetches the JWKS, single flight: a caller that waited behind a fetch started after it
    /// arrived takes that fetch's answer. Fetches are at least [`MIN_REFETCH`] apart (a sprayed
    /// `kid` costs auth nothing); a caller inside that gap waits it out, so a token signed with a
    /// just-rotated key is accepted a moment later rather than refused. A failed fetch or an
    /// unparsable document keeps the known keys.
    async fn refresh(&self) -> Result<(), Error> {
        let seen = self.fetches.load(Ordering::Acquire);
        let _flight = self.fetch.lock().await;
        if self.fetches.load(Ordering::Acquire) != seen {
            // Someone fetched while we waited: their answer is ours.
            return if self.read().fetched.is_some() { Ok(()) } else { Err(Error::unavailable("service.unavailable")) };
        }
        let last = self.read().attempted;
        if let Some(wait) = last.and_then(|t| MIN_REFETCH.checked_sub(t.elapsed())) {
            tokio::time::sleep(wait).await;
        }
        self.keys.write().unwrap_or_else(std::sync::PoisonError::into_inner).attempted = Some(Instant::now());
        let fetched = async { parse_jwks(&self.source.jwks().await?) }.await;
        self.fetches.fetch_add(1, Ordering::AcqRel);
        match fetched {
            Ok(by_kid) => {
                let mut keys = self.keys.write().unwrap_or_else(std::sync::PoisonError::into_inner);
                keys.by_kid = by_kid;
                keys.fetched = Some(Instant::now());
                Ok(())
            }
            Err(e) => {
                metrics::counter!("nexus_jwks_refresh_failures_total").increment(1);
                tracing::warn!(error = %e, known_keys = self.read().by_kid.len(), "JWKS refresh failed; keeping the known keys");
                Err(e)
            }
        }
    }
}

/// Verifies access tokens. Only EdDSA is accepted: `alg: none`, HMAC (including "HS256 with the
/// public key") and every other algorithm are refused before any key is looked up.
///
/// Keys: a known `kid` is answered from the cache at once, even when the cache is stale (a
/// refresh then runs in the background) or auth is down (a failed refresh keeps the known keys).
/// An unknown `kid` waits for one fetch, shared by every caller that asks at the same time.
pub struct Verifier {
    cache: Arc<KeyCache>,
    /// Keys older than this are refreshed in the background.
    max_key_age: Duration,
    pub revocations: Revocations,
    /// Tokens already verified, by SHA-256 of the token, until they expire: a client sends the
    /// same token many times, and an Ed25519 check costs more than the rest of a request.
    verified: RwLock<HashMap<[u8; 32], Principal>>,
}

/// Bound on remembered tokens; past it, expired entries go, then everything.
const VERIFIED_CACHE_MAX: usize = 50_000;

/// Minimum time between JWKS fetches (resists kid spraying and spares a failing auth).
const MIN_REFETCH: Duration = Duration::from_secs(1);
/// Keys older than this are refreshed in the background, by default.
const MAX_KEY_AGE: Duration = Duration::from_secs(600);

impl Verifier {
    pub fn new(source: Arc<dyn KeySource>) -> Self {
        Self {
            cache: Arc::new(KeyCache {
                source,
                keys: RwLock::new(Keys { by_kid: HashMap::new(), fetched: None, attempted: None }),
                fetch: tokio::sync::Mutex::new(()),
                refreshing: AtomicBool::new(false),
                fetches: AtomicU64::new(0),
            }),
            max_key_age: MAX_KEY_AGE,
            revocations: Revocations::default(),
            verified: RwLock::new(HashMap::new()),
        }
    }

    /// Refreshes keys older than `age` in the background (default ten minutes).
    #[must_use]
    pub fn with_max_key_age(mut self, age: Duration) -> Self {
        self.max_key_age = age;
        self
    }

    fn cached(&self, kid: &str) -> (Option<DecodingKey>, bool) {
        let keys = self.cache.read();
        let stale = keys.fetched.is_none_or(|t| t.elapsed() > self.max_key_age);
        (keys.by_kid.get(kid).cloned(), stale)
    }

    /// Starts one background refresh unless one is already under way.
    fn refresh_in_background(&self) {
        if self.cache.refreshing.swap(true, Ordering::AcqRel) {
            return;
        }
        let cache = self.cache.clone();
        tokio::spawn(async move {
            // The failure is logged and counted inside; the known keys stay.
            let _ = cache.refresh().await;
            cache.refreshing.store(false, Ordering::Release);
        });
    }

    async fn key_for(&self, kid: &str) -> Result<Option<DecodingKey>, Error> {
        let (key, stale) = self.cached(kid);
        if let Some(key) = key {
            if stale {
                self.refresh_in_background();
            }
            return Ok(Some(key));
        }
        let refreshed = self.cache.refresh().await;
        match self.cached(kid).0 {
            Some(key) => Ok(Some(key)),
            // Auth could not be asked and the key is not known: say so (503), not "bad token".
            None => refreshed.map(|()| None),
        }
    }

    pub async fn verify(&self, token: &str) -> Result<Principal, Error> {
        use sha2::Digest;
        let digest: [u8; 32] = sha2::Sha256::digest(token.as_bytes()).into();
        let now = chrono::Utc::now().timestamp();
        let cached = self.verified.read().unwrap_or_else(std::sync::PoisonError::into_inner).get(&digest).cloned();
        if let Some(p) = cached
            && p.expires_at > now
        {
            if self.revocations.is_revoked(&p.session_id) {
                return Err(Error::unauthenticated("auth.token_expired"));
            }
            return Ok(p);
        }
        let principal = self.verify_uncached(token).await?;
        let mut cache = self.verified.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        if cache.len() >= VERIFIED_CACHE_MAX {
            cache.retain(|_, p| p.expires_at > now);
            if cache.len() >= VERIFIED_CACHE_MAX {
                cache.clear();
            }
        }
        cache.insert(digest, principal.clone());
        Ok(principal)
    }

    async fn verify_uncached(&self, token: &str) -> Result<Principal, Error> {
        let unauth = || Error::unauthenticated("auth.unauthenticated");
        let header = jsonwebtoken::decode_header(token).map_err(|_| unauth())?;
        if header.alg != Algorithm::EdDSA {
            return Err(unauth());
        }
        let kid = header.kid.ok_or_else(unauth)?;
        let key = self.key_for(&kid).await?.ok_or_else(unauth)?;
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        validation.leeway = 30;
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        let data = jsonwebtoken::decode::<Claims>(token, &key, &validation).map_err(|e| match e.kind() {
            jsonwebtoken::errors::ErrorKind::ExpiredSignature => Error::unauthenticated("auth.token_expired"),
            _ => unauth(),
        })?;
        if self.revocations.is_revoked(&data.claims.sid) {
            return Err(Error::unauthenticated("auth.token_expired"));
        }
        Principal::from_claims(data.claims)
    }
}

/// Keeps `verifier.revocations` current from `nexus.auth.session.revoked` and
/// `nexus.auth.api_key.revoked` events, replaying the last `window` on start.
pub async fn follow_revocations(
    bus: crate::bus::Bus,
    verifier: Arc<Verifier>,
    window: Duration,
    stop: tokio_util::sync::CancellationToken,
) {
    use async_nats::jetstream::consumer::{DeliverPolicy, pull};
    use futures::StreamExt;
    use prost::Message;

    loop {
        let started = async {
            let stream = bus.ensure_service_stream("auth").await.map_err(|e| e.to_string())?;
            let start = time::OffsetDateTime::now_utc() - window;
            let consumer = stream
                .create_consumer(pull::OrderedConfig {
                    // One wildcard filter: multiple filter subjects need NATS 2.10.
                    filter_subject: bus.subject("nexus.auth.*.revoked"),
                    deliver_policy: DeliverPolicy::ByStartTime { start_time: start },
                    ..Default::default()
                })
                .await
                .map_err(|e| e.to_string())?;
            consumer.messages().await.map_err(|e| e.to_string())
        }
        .await;
        let mut messages = match started {
            Ok(m) => m,
            Err(e) => {
                tracing::debug!(error = %e, "revocation feed not available yet");
                tokio::select! { () = stop.cancelled() => return, () = tokio::time::sleep(Duration::from_secs(2)) => continue }
            }
        };
        loop {
            let next = tokio::select! { () = stop.cancelled() => return, n = messages.next() => n };
            let Some(Ok(msg)) = next else { break };
            let Ok(env) = nexus_proto::events::Envelope::decode(msg.payload.as_ref()) else { continue };
            let sid = match env.event_type.as_str() {
                "nexus.events.v1.SessionRevoked" => {
                    nexus_proto::events::SessionRevoked::decode(env.payload.as_slice()).map(|e| e.session_id).ok()
                }
                "nexus.events.v1.ApiKeyRevoked" => {
                    nexus_proto::events::ApiKeyRevoked::decode(env.payload.as_slice()).map(|e| e.key_id).ok()
                }
                _ => None,
            };
            if let Some(sid) = sid {
                let forget = chrono::Utc::now().timestamp() + i64::try_from(window.as_secs()).unwrap_or(i64::MAX / 2);
                verifier.revocations.revoke(&sid, forget);
            }
        }
    }
}

/// A service's own tokens, exchanged at auth for its credential (`identity.service_secret`) and
/// cached per workspace until shortly before they expire. Call another service on the service's
/// own behalf (or a workspace's) by running the call in [`ServiceTokens::context`]: the
/// forwarding interceptor then sends the service token instead of any end user's.
pub struct ServiceTokens {
    service: String,
    secret: crate::config::Secret,
    channel: tonic::transport::Channel,
    cache: tokio::sync::Mutex<HashMap<Option<WorkspaceId>, (crate::config::Secret, Instant)>>,
}

/// A cached service token is replaced this long before it expires.
const SERVICE_TOKEN_MARGIN: Duration = Duration::from_secs(60);

impl ServiceTokens {
    pub fn new(service: &str, secret: crate::config::Secret, auth_url: &str) -> Result<Self, tonic::transport::Error> {
        Ok(Self {
            service: service.to_owned(),
            secret,
            channel: crate::grpc::channel(auth_url, Duration::from_secs(5))?,
            cache: tokio::sync::Mutex::new(HashMap::new()),
        })
    }

    /// From the common configuration (`identity.auth_url`, `identity.service_secret`).
    pub fn from_config(service: &str, config: &crate::config::CommonConfig) -> Result<Self, tonic::transport::Error> {
        Self::new(service, config.identity.service_secret.clone(), &config.identity.auth_url)
    }

    pub fn service(&self) -> &str {
        &self.service
    }

    /// A valid token for the service, acting for `workspace` or for none.
    pub async fn token(&self, workspace: Option<WorkspaceId>) -> Result<crate::config::Secret, Error> {
        let mut cache = self.cache.lock().await;
        if let Some((token, until)) = cache.get(&workspace)
            && Instant::now() < *until
        {
            return Ok(token.clone());
        }
        let mut client = nexus_proto::nexus::auth::v1::auth_client::AuthClient::new(self.channel.clone());
        let resp = client
            .exchange_service_credential(nexus_proto::nexus::auth::v1::ExchangeServiceCredentialRequest {
                service: self.service.clone(),
                secret: self.secret.expose().to_owned(),
                workspace_id: workspace.map(|w| w.to_string()).unwrap_or_default(),
            })
            .await
            .map_err(|s| Error::from_status(&s))?
            .into_inner();
        let lifetime = Duration::from_secs(u64::from(resp.expires_in));
        let until = Instant::now() + lifetime.saturating_sub(SERVICE_TOKEN_MARGIN.min(lifetime / 2));
        let token = crate::config::Secret::new(resp.access_token);
        cache.insert(workspace, (token.clone(), until));
        Ok(token)
    }

    /// The current request context with the service token as its bearer (and the workspace as
    /// its tenant): `ctx.scope(client.call(..)).await` calls as the service.
    pub async fn context(&self, workspace: Option<WorkspaceId>) -> Result<crate::RequestContext, Error> {
        let token = self.token(workspace).await?;
        let mut ctx = crate::RequestContext::current();
        ctx.bearer = Some(token);
        ctx.tenant_id = workspace;
        ctx.actor_id = Some(format!("svc:{}", self.service));
        Ok(ctx)
    }
}
