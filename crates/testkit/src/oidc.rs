//! A fake OpenID Connect provider (Google/Facebook stand-in) on port 0: discovery, JWKS,
//! `/authorize` (auto-consents) and `/token` (authorization code + PKCE S256, single-use codes).
//!
//! Tests usually skip the browser: build an authorization URL with the client under test, then
//! call [`FakeIdp::issue_code`] with it, which records the code with the URL's PKCE challenge,
//! nonce and redirect URI, exactly as if the user had consented.
//!
//! ID tokens are RS256-signed with the test-only keys in `fixtures/` (`kid` [`PRIMARY_KID`]);
//! [`IdTokenSpec`] overrides any claim and [`Signing`] selects another key or a forged token.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{Jwk, JwkSet, PublicKeyUse};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::FakeServer;

/// `kid` of the key published from the start.
pub const PRIMARY_KID: &str = "test-key-1";
/// `kid` of the second key, published only after [`FakeIdp::publish_rotated_key`].
pub const ROTATED_KID: &str = "test-key-2";
/// A `kid` the JWKS never lists (tokens are signed with the second key).
pub const UNPUBLISHED_KID: &str = "test-key-unpublished";

const KEY_1_PEM: &str = include_str!("../fixtures/oidc-test-rsa-1.pem");
const KEY_1_PUB_PEM: &str = include_str!("../fixtures/oidc-test-rsa-1.pub.pem");
const KEY_2_PEM: &str = include_str!("../fixtures/oidc-test-rsa-2.pem");

const CODE_TTL: Duration = Duration::from_secs(600);

/// How the fake signs an ID token.
#[derive(Debug, Clone, Default)]
pub enum Signing {
    /// RS256 with the published primary key (`kid` [`PRIMARY_KID`]).
    #[default]
    Primary,
    /// RS256 with the second key (`kid` [`ROTATED_KID`]); the JWKS lists it only after
    /// [`FakeIdp::publish_rotated_key`].
    Rotated,
    /// RS256 with the second key under `kid` [`UNPUBLISHED_KID`], which is never published.
    Unpublished,
    /// `{"alg":"none"}` and an empty signature.
    AlgNone,
    /// HS256 keyed with these bytes, `kid` [`PRIMARY_KID`] (key-confusion attack when the bytes are
    /// [`FakeIdp::public_key_pem`]).
    Hs256(Vec<u8>),
}

/// Claims of the ID token a code will yield. `None` means the fake's normal value.
#[derive(Debug, Clone)]
pub struct IdTokenSpec {
    pub sub: String,
    pub email: Option<String>,
    /// Any JSON (`true`, `false`, `"true"`…); `None` omits the claim.
    pub email_verified: Option<Value>,
    pub name: Option<String>,
    pub picture: Option<String>,
    /// Default: the nonce of the authorization URL.
    pub nonce: Option<String>,
    /// Default: the client id (a string). May be an array.
    pub aud: Option<Value>,
    /// Default: omitted.
    pub azp: Option<String>,
    /// Default: the fake's issuer.
    pub iss: Option<String>,
    /// Unix seconds. Default: an hour after the token is minted.
    pub exp: Option<i64>,
    /// Unix seconds. Default: when the token is minted.
    pub iat: Option<i64>,
    /// Further claims, added last (they win).
    pub extra: serde_json::Map<String, Value>,
    pub signing: Signing,
}

impl Default for IdTokenSpec {
    fn default() -> Self {
        Self {
            sub: "fake-user-1".into(),
            email: Some("user@example.com".into()),
            email_verified: Some(Value::Bool(true)),
            name: Some("Test User".into()),
            picture: Some("https://example.com/avatar.png".into()),
            nonce: None,
            aud: None,
            azp: None,
            iss: None,
            exp: None,
            iat: None,
            extra: serde_json::Map::new(),
            signing: Signing::Primary,
        }
    }
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

struct PendingCode {
    client_id: String,
    redirect_uri: String,
    code_challenge: String,
    nonce: Option<String>,
    spec: IdTokenSpec,
    issued_at: Instant,
}

#[derive(Default)]
struct Counters {
    discovery: usize,
    jwks: usize,
    token: usize,
}

struct Keys {
    primary: EncodingKey,
    second: EncodingKey,
    primary_jwk: Jwk,
    second_jwk: Jwk,
}

struct Shared {
    client_id: String,
    client_secret: String,
    keys: Keys,
    state: Mutex<IdpState>,
}

#[derive(Default)]
struct IdpState {
    issuer: String,
    codes: HashMap<String, PendingCode>,
    rotated_published: bool,
    counters: Counters,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, IdpState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

pub struct FakeIdp {
    pub server: FakeServer,
    /// `http://127.0.0.1:<port>`; the discovery document sits under it.
    pub issuer: String,
    pub client_id: String,
    pub client_secret: String,
    shared: Arc<Shared>,
}

impl FakeIdp {
    pub async fn start() -> FakeIdp {
        let client_id = "fake-client-id.apps.example.com".to_string();
        let client_secret = "fake-client-secret".to_string();
        let shared = Arc::new(Shared {
            client_id: client_id.clone(),
            client_secret: client_secret.clone(),
            keys: Keys::load(),
            state: Mutex::new(IdpState::default()),
        });
        let router = Router::new()
            .route("/.well-known/openid-configuration", get(discovery))
            .route("/jwks", get(jwks))
            .route("/authorize", get(authorize))
            .route("/token", post(token))
            .with_state(shared.clone());
        let server = FakeServer::start(router).await;
        let issuer = server.base_url.clone();
        shared.lock().issuer = issuer.clone();
        FakeIdp { server, issuer, client_id, client_secret, shared }
    }

    pub fn discovery_url(&self) -> String {
        format!("{}/.well-known/openid-configuration", self.issuer)
    }

    /// Simulates the user consenting on the authorization URL the client built: records a
    /// single-use code bound to its client id, redirect URI, PKCE challenge and nonce, yielding an
    /// ID token per `spec`. Panics if the URL is not a valid code + PKCE S256 request for this
    /// client.
    pub fn issue_code(&self, authorization_url: &str, spec: IdTokenSpec) -> String {
        let url = url::Url::parse(authorization_url).expect("authorization URL parses");
        let params: HashMap<String, String> = url.query_pairs().into_owned().collect();
        self.shared.issue(&params, spec).unwrap_or_else(|e| panic!("issue_code: {e}"))
    }

    /// Signs an ID token directly (no code), for tests of verification alone.
    pub fn sign_id_token(&self, claims: &Value, signing: &Signing) -> String {
        self.shared.sign(claims, signing)
    }

    /// The claims a code with `spec` would yield, with `nonce` as the authorization nonce.
    pub fn claims_for(&self, spec: &IdTokenSpec, nonce: Option<&str>) -> Value {
        let issuer = self.shared.lock().issuer.clone();
        build_claims(&issuer, &self.client_id, spec, nonce.map(String::from))
    }

    /// Adds the second key ([`ROTATED_KID`]) to the JWKS, as a provider rotating keys does.
    pub fn publish_rotated_key(&self) {
        self.shared.lock().rotated_published = true;
    }

    /// PEM (SPKI) of the primary public key.
    pub fn public_key_pem() -> &'static str {
        KEY_1_PUB_PEM
    }

    pub fn discovery_requests(&self) -> usize {
        self.shared.lock().counters.discovery
    }

    pub fn jwks_requests(&self) -> usize {
        self.shared.lock().counters.jwks
    }

    pub fn token_requests(&self) -> usize {
        self.shared.lock().counters.token
    }
}

impl Keys {
    fn load() -> Keys {
        let primary = EncodingKey::from_rsa_pem(KEY_1_PEM.as_bytes()).expect("test key 1");
        let second = EncodingKey::from_rsa_pem(KEY_2_PEM.as_bytes()).expect("test key 2");
        let jwk = |key: &EncodingKey, kid: &str| {
            let mut jwk = Jwk::from_encoding_key(key, Algorithm::RS256).expect("jwk from key");
            jwk.common.key_id = Some(kid.to_string());
            jwk.common.public_key_use = Some(PublicKeyUse::Signature);
            jwk
        };
        Keys { primary_jwk: jwk(&primary, PRIMARY_KID), second_jwk: jwk(&second, ROTATED_KID), primary, second }
    }
}

impl Shared {
    fn issue(&self, params: &HashMap<String, String>, spec: IdTokenSpec) -> Result<String, String> {
        let get = |k: &str| params.get(k).cloned().unwrap_or_default();
        if get("response_type") != "code" {
            return Err("response_type must be code".into());
        }
        if get("client_id") != self.client_id {
            return Err("unknown client_id".into());
        }
        if get("redirect_uri").is_empty() {
            return Err("redirect_uri missing".into());
        }
        if get("code_challenge_method") != "S256" || get("code_challenge").len() != 43 {
            return Err("PKCE S256 code_challenge required".into());
        }
        let code = random_string();
        self.lock().codes.insert(
            code.clone(),
            PendingCode {
                client_id: get("client_id"),
                redirect_uri: get("redirect_uri"),
                code_challenge: get("code_challenge"),
                nonce: params.get("nonce").cloned(),
                spec,
                issued_at: Instant::now(),
            },
        );
        Ok(code)
    }

    fn sign(&self, claims: &Value, signing: &Signing) -> String {
        let rs256 = |key: &EncodingKey, kid: &str| {
            let mut header = Header::new(Algorithm::RS256);
            header.kid = Some(kid.to_string());
            jsonwebtoken::encode(&header, claims, key).expect("sign id token")
        };
        match signing {
            Signing::Primary => rs256(&self.keys.primary, PRIMARY_KID),
            Signing::Rotated => rs256(&self.keys.second, ROTATED_KID),
            Signing::Unpublished => rs256(&self.keys.second, UNPUBLISHED_KID),
            Signing::AlgNone => format!(
                "{}.{}.",
                URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#),
                URL_SAFE_NO_PAD.encode(claims.to_string())
            ),
            Signing::Hs256(secret) => {
                let mut header = Header::new(Algorithm::HS256);
                header.kid = Some(PRIMARY_KID.to_string());
                jsonwebtoken::encode(&header, claims, &EncodingKey::from_secret(secret)).expect("sign hs256")
            }
        }
    }
}

fn build_claims(issuer: &str, client_id: &str, spec: &IdTokenSpec, nonce: Option<String>) -> Value {
    let now = unix_now();
    let mut c = serde_json::Map::new();
    c.insert("iss".into(), json!(spec.iss.clone().unwrap_or_else(|| issuer.to_string())));
    c.insert("sub".into(), json!(spec.sub));
    c.insert("aud".into(), spec.aud.clone().unwrap_or_else(|| json!(client_id)));
    if let Some(azp) = &spec.azp {
        c.insert("azp".into(), json!(azp));
    }
    c.insert("iat".into(), json!(spec.iat.unwrap_or(now)));
    c.insert("exp".into(), json!(spec.exp.unwrap_or(now + 3600)));
    if let Some(nonce) = spec.nonce.clone().or(nonce) {
        c.insert("nonce".into(), json!(nonce));
    }
    if let Some(email) = &spec.email {
        c.insert("email".into(), json!(email));
    }
    if let Some(v) = &spec.email_verified {
        c.insert("email_verified".into(), v.clone());
    }
    if let Some(name) = &spec.name {
        c.insert("name".into(), json!(name));
    }
    if let Some(picture) = &spec.picture {
        c.insert("picture".into(), json!(picture));
    }
    for (k, v) in &spec.extra {
        c.insert(k.clone(), v.clone());
    }
    Value::Object(c)
}

fn random_string() -> String {
    URL_SAFE_NO_PAD.encode(rand::random::<[u8; 24]>())
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    (status, [(header::CACHE_CONTROL, "no-store")], Json(json!({ "error": error, "error_description": description })))
        .into_response()
}

async fn discovery(State(shared): State<Arc<Shared>>) -> Json<Value> {
    let issuer = {
        let mut st = shared.lock();
        st.counters.discovery += 1;
        st.issuer.clone()
    };
    Json(json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/authorize"),
        "token_endpoint": format!("{issuer}/token"),
        "jwks_uri": format!("{issuer}/jwks"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "scopes_supported": ["openid", "email", "profile"],
        "token_endpoint_auth_methods_supported": ["client_secret_post"],
        "code_challenge_methods_supported": ["S256"],
        "claims_supported": ["aud", "email", "email_verified", "exp", "iat", "iss", "name", "picture", "sub", "nonce"],
    }))
}

async fn jwks(State(shared): State<Arc<Shared>>) -> Json<JwkSet> {
    let rotated = {
        let mut st = shared.lock();
        st.counters.jwks += 1;
        st.rotated_published
    };
    let mut keys = vec![shared.keys.primary_jwk.clone()];
    if rotated {
        keys.push(shared.keys.second_jwk.clone());
    }
    Json(JwkSet { keys })
}

/// Auto-consents with the default [`IdTokenSpec`] and redirects back with `code` and `state`.
async fn authorize(State(shared): State<Arc<Shared>>, Query(params): Query<HashMap<String, String>>) -> Response {
    match shared.issue(&params, IdTokenSpec::default()) {
        Ok(code) => {
            let Ok(mut back) = url::Url::parse(&params["redirect_uri"]) else {
                return (StatusCode::BAD_REQUEST, "bad redirect_uri").into_response();
            };
            back.query_pairs_mut().append_pair("code", &code);
            if let Some(state) = params.get("state") {
                back.query_pairs_mut().append_pair("state", state);
            }
            (StatusCode::FOUND, [(header::LOCATION, back.to_string())]).into_response()
        }
        Err(e) => (StatusCode::BAD_REQUEST, e).into_response(),
    }
}

async fn token(State(shared): State<Arc<Shared>>, Form(form): Form<HashMap<String, String>>) -> Response {
    let get = |k: &str| form.get(k).map(String::as_str).unwrap_or("");
    let (pending, issuer) = {
        let mut st = shared.lock();
        st.counters.token += 1;
        if get("grant_type") != "authorization_code" {
            return oauth_error(StatusCode::BAD_REQUEST, "unsupported_grant_type", "");
        }
        if get("client_id") != shared.client_id || get("client_secret") != shared.client_secret {
            return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", "client authentication failed");
        }
        // Single use: a presented code is spent whatever happens next.
        let Some(pending) = st.codes.remove(get("code")) else {
            return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", "unknown, expired or used code");
        };
        (pending, st.issuer.clone())
    };
    if pending.issued_at.elapsed() > CODE_TTL {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", "code expired");
    }
    if pending.client_id != get("client_id") {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", "code issued to another client");
    }
    if pending.redirect_uri != get("redirect_uri") {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", "redirect_uri mismatch");
    }
    let verifier = get("code_verifier");
    let verifier_ok = (43..=128).contains(&verifier.len())
        && verifier.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
    if !verifier_ok || URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())) != pending.code_challenge {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", "PKCE verification failed");
    }
    let claims = build_claims(&issuer, &shared.client_id, &pending.spec, pending.nonce.clone());
    let id_token = shared.sign(&claims, &pending.spec.signing);
    (
        StatusCode::OK,
        [(header::CACHE_CONTROL, "no-store")],
        Json(json!({
            "access_token": format!("fake-access-{}", random_string()),
            "id_token": id_token,
            "expires_in": 3599,
            "token_type": "Bearer",
            "scope": "openid email profile",
        })),
    )
        .into_response()
}
