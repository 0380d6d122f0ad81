//! Identity across the fleet: the access-token claims `auth` signs, the verified [`Principal`]
//! every service works with, the one permission check, and the [`Verifier`] each service runs
//! against the JWKS it fetches from `auth` (cached; refetched when an unknown `kid` appears).
//! No service trusts a header alone.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Serialize};

use nexus_kernel::{Error, UserId, WorkspaceId};

pub const ISSUER: &str = "nexus-auth";
pub const AUDIENCE: &str = "nexus";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Viewer,
    Member,
    Admin,
    Owner,
}

impl Role {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Owner => "owner",
            Self::Admin => "admin",
            Self::Member => "member",
            Self::Viewer => "viewer",
        }
    }
}

impl FromStr for Role {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        match s {
            "owner" => Ok(Self::Owner),
            "admin" => Ok(Self::Admin),
            "member" => Ok(Self::Member),
            "viewer" => Ok(Self::Viewer),
            other => Err(Error::invalid("auth.invalid_role").with_param("role", other)),
        }
    }
}

/// What an API key may do. A signed-in user has no scope restriction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    Read,
    Write,
    Admin,
}

impl Scope {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Write => "write",
            Self::Admin => "admin",
        }
    }
}

impl FromStr for Scope {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        match s {
            "read" => Ok(Self::Read),
            "write" => Ok(Self::Write),
            "admin" => Ok(Self::Admin),
            other => Err(Error::invalid("auth.invalid_scope").with_param("scope", other)),
        }
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
}

impl Principal {
    /// The shared permission check: the role must reach the action's minimum, and an API key
    /// must also hold a scope that covers it.
    pub fn require(&self, action: Action) -> Result<(), Error> {
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

    /// Audit actor: the user, or the API key acting for them.
    pub fn actor(&self) -> String {
        match self.kind {
            PrincipalKind::User => self.user_id.to_string(),
            PrincipalKind::ApiKey => format!("key:{}", self.session_id),
        }
    }

    fn from_claims(c: Claims) -> Result<Self, Error> {
        let bad = || Error::unauthenticated("auth.unauthenticated");
        Ok(Self {
            user_id: UserId::parse(&c.sub).map_err(|_| bad())?,
            workspace_id: WorkspaceId::parse(&c.ws).map_err(|_| bad())?,
            role: c.role,
            scopes: (c.kind == PrincipalKind::ApiKey).then_some(c.scp),
            session_id: c.sid,
            kind: c.kind,
            token_id: c.jti,
            expires_at: c.exp,
            locale: c.loc.parse().ok(),
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
    fetched: Option<Instant>,
}

/// Verifies access tokens. Only EdDSA is accepted: `alg: none`, HMAC (including "HS256 with the
/// public key") and every other algorithm are refused before any key is looked up.
pub struct Verifier {
    source: Arc<dyn KeySource>,
    keys: RwLock<Keys>,
    refresh: tokio::sync::Mutex<Option<Instant>>,
    pub revocations: Revocations,
    /// Tokens already verified, by SHA-256 of the token, until they expire: a client sends the
    /// same token many times, and an Ed25519 check costs more than the rest of a request.
    verified: RwLock<HashMap<[u8; 32], Principal>>,
}

/// Bound on remembered tokens; past it, expired entries go, then everything.
const VERIFIED_CACHE_MAX: usize = 50_000;

/// Minimum time between JWKS fetches triggered by unknown `kid`s (resists kid spraying).
const UNKNOWN_KID_REFETCH: Duration = Duration::from_secs(5);
/// Keys are refreshed in the background this often anyway.
const MAX_KEY_AGE: Duration = Duration::from_secs(600);

impl Verifier {
    pub fn new(source: Arc<dyn KeySource>) -> Self {
        Self {
            source,
            keys: RwLock::new(Keys { by_kid: HashMap::new(), fetched: None }),
            refresh: tokio::sync::Mutex::new(None),
            revocations: Revocations::default(),
            verified: RwLock::new(HashMap::new()),
        }
    }

    fn cached(&self, kid: &str) -> (Option<DecodingKey>, bool) {
        let keys = self.keys.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        let stale = keys.fetched.is_none_or(|t| t.elapsed() > MAX_KEY_AGE);
        (keys.by_kid.get(kid).cloned(), stale)
    }

    async fn refetch(&self, force: bool) -> Result<(), Error> {
        let mut last = self.refresh.lock().await;
        if !force && last.is_some_and(|t| t.elapsed() < UNKNOWN_KID_REFETCH) {
            return Ok(());
        }
        *last = Some(Instant::now());
        let json = self.source.jwks().await?;
        let by_kid = parse_jwks(&json)?;
        *self.keys.write().unwrap_or_else(std::sync::PoisonError::into_inner) =
            Keys { by_kid, fetched: Some(Instant::now()) };
        Ok(())
    }

    async fn key_for(&self, kid: &str) -> Result<Option<DecodingKey>, Error> {
        let (key, stale) = self.cached(kid);
        if key.is_some() && !stale {
            return Ok(key);
        }
        self.refetch(stale).await?;
        Ok(self.cached(kid).0)
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
