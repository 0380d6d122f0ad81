//! A token issuer for service tests: its own Ed25519 key, published through a [`KeySource`], so
//! a service under test verifies tokens exactly as in production without an auth service.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use nexus_kernel::{Error, UserId, WorkspaceId};
use nexus_platform::identity::{AUDIENCE, Claims, ISSUER, KeySource, PrincipalKind, Role, Scope};

#[derive(Clone)]
pub struct TestIssuer {
    key: jsonwebtoken::EncodingKey,
    jwks: String,
}

impl TestIssuer {
    pub fn new() -> Self {
        let mut seed = [0u8; 32];
        for (i, b) in uuid::Uuid::new_v4().as_bytes().iter().chain(uuid::Uuid::new_v4().as_bytes()).enumerate() {
            seed[i] = *b;
        }
        let mut der =
            vec![0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20];
        der.extend_from_slice(&seed);
        let pair = ring::signature::Ed25519KeyPair::from_seed_unchecked(&seed).expect("ed25519 seed");
        let x = URL_SAFE_NO_PAD.encode(ring::signature::KeyPair::public_key(&pair).as_ref());
        let jwks = serde_json::json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "x": x, "kid": "test", "alg": "EdDSA", "use": "sig"}]}).to_string();
        Self { key: jsonwebtoken::EncodingKey::from_ed_der(&der), jwks }
    }

    /// The key source to hand to `serve_with_keys`.
    pub fn keys(&self) -> Arc<dyn KeySource> {
        Arc::new(Static(self.jwks.clone()))
    }

    /// A user token for `workspace` with `role`.
    pub fn user_token(&self, workspace: WorkspaceId, role: Role) -> String {
        self.token(workspace, role, PrincipalKind::User, Vec::new(), &uuid::Uuid::now_v7().to_string())
    }

    /// An API-key token with `scopes`.
    pub fn key_token(&self, workspace: WorkspaceId, scopes: Vec<Scope>) -> String {
        self.token(workspace, Role::Owner, PrincipalKind::ApiKey, scopes, &uuid::Uuid::now_v7().to_string())
    }

    /// A service token as auth issues it for `service` acting in `workspace` (role member, read and
    /// write): what a chatbot or saga step calls another service with.
    pub fn service_token(&self, workspace: WorkspaceId, service: &str) -> String {
        let sid = format!("svc:{service}");
        self.sign(workspace, Role::Member, PrincipalKind::Service, vec![Scope::Read, Scope::Write], &sid, service)
    }

    pub fn token(&self, workspace: WorkspaceId, role: Role, kind: PrincipalKind, scp: Vec<Scope>, sid: &str) -> String {
        self.sign(workspace, role, kind, scp, sid, "")
    }

    fn sign(
        &self,
        workspace: WorkspaceId,
        role: Role,
        kind: PrincipalKind,
        scp: Vec<Scope>,
        sid: &str,
        svc: &str,
    ) -> String {
        let now = chrono::Utc::now().timestamp();
        let claims = Claims {
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
            sub: UserId::new().to_string(),
            ws: workspace.to_string(),
            role,
            scp,
            sid: sid.into(),
            kind,
            jti: uuid::Uuid::now_v7().to_string(),
            iat: now,
            exp: now + 3600,
            amr: vec![],
            loc: String::new(),
            svc: svc.to_owned(),
        };
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
        header.kid = Some("test".into());
        jsonwebtoken::encode(&header, &claims, &self.key).expect("sign test token")
    }
}

impl Default for TestIssuer {
    fn default() -> Self {
        Self::new()
    }
}

struct Static(String);

#[async_trait::async_trait]
impl KeySource for Static {
    async fn jwks(&self) -> Result<String, Error> {
        Ok(self.0.clone())
    }
}

/// A request carrying `token` as its bearer.
pub fn authed<T>(msg: T, token: &str) -> tonic::Request<T> {
    let mut r = tonic::Request::new(msg);
    r.metadata_mut().insert("authorization", format!("Bearer {token}").parse().expect("ascii token"));
    r
}

/// A workspace member as a test calls the service: their workspace and token.
pub struct Caller {
    pub ws: WorkspaceId,
    pub token: String,
}

impl Caller {
    /// `msg` as this member sends it.
    pub fn req<T>(&self, msg: T) -> tonic::Request<T> {
        authed(msg, &self.token)
    }
}
