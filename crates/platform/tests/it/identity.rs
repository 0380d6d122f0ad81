//! Token verification as every service runs it, and the fleet-wide revocation feed.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use nexus_kernel::{Error, UserId, WorkspaceId};
use nexus_platform::identity::{
    AUDIENCE, Action, Claims, ISSUER, KeySource, PrincipalKind, Role, Verifier, follow_revocations,
};
use nexus_testkit::{TestNats, eventually};
use prost::Message;

struct StaticKeys(String);

#[async_trait::async_trait]
impl KeySource for StaticKeys {
    async fn jwks(&self) -> Result<String, Error> {
        Ok(self.0.clone())
    }
}

fn keypair(seed: u8) -> (jsonwebtoken::EncodingKey, String) {
    let mut der = vec![0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20];
    der.extend_from_slice(&[seed; 32]);
    let pair = ring::signature::Ed25519KeyPair::from_seed_unchecked(&[seed; 32]).unwrap();
    let x = URL_SAFE_NO_PAD.encode(ring::signature::KeyPair::public_key(&pair).as_ref());
    (jsonwebtoken::EncodingKey::from_ed_der(&der), x)
}

fn token(
    key: &jsonwebtoken::EncodingKey,
    sid: &str,
    kind: PrincipalKind,
    role: Role,
    scp: Vec<nexus_platform::identity::Scope>,
) -> String {
    let now = chrono::Utc::now().timestamp();
    let claims = Claims {
        iss: ISSUER.into(),
        aud: AUDIENCE.into(),
        sub: UserId::new().to_string(),
        ws: WorkspaceId::new().to_string(),
        role,
        scp,
        sid: sid.into(),
        kind,
        jti: "j".into(),
        iat: now,
        exp: now + 600,
        amr: vec![],
        loc: "ar".into(),
    };
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
    header.kid = Some("k1".into());
    jsonwebtoken::encode(&header, &claims, key).unwrap()
}

fn new_verifier() -> (Arc<Verifier>, jsonwebtoken::EncodingKey) {
    let (key, x) = keypair(3);
    let jwks = serde_json::json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "x": x, "kid": "k1", "alg": "EdDSA"}]})
        .to_string();
    (Arc::new(Verifier::new(Arc::new(StaticKeys(jwks)))), key)
}

#[tokio::test]
async fn revoked_sessions_die_fleet_wide_from_the_event_stream() {
    nexus_testkit::init_tracing();
    let nats = TestNats::new();
    let bus = nats.bus().await;
    bus.ensure_service_stream("auth").await.unwrap();
    let (verifier, key) = new_verifier();
    let sid = uuid::Uuid::now_v7().to_string();
    let t = token(&key, &sid, PrincipalKind::User, Role::Member, vec![]);
    let p = verifier.verify(&t).await.unwrap();
    assert_eq!(p.locale, Some(nexus_kernel::Locale::Ar));

    let stop = tokio_util::sync::CancellationToken::new();
    tokio::spawn(follow_revocations(bus.clone(), verifier.clone(), Duration::from_secs(1200), stop.clone()));
    let env = nexus_proto::events::Envelope {
        event_id: uuid::Uuid::now_v7().to_string(),
        event_type: "nexus.events.v1.SessionRevoked".into(),
        payload: nexus_proto::events::SessionRevoked { session_id: sid.clone(), ..Default::default() }.encode_to_vec(),
        ..Default::default()
    };
    bus.js.publish(bus.subject("nexus.auth.session.revoked"), env.encode_to_vec().into()).await.unwrap().await.unwrap();
    let dead = eventually(Duration::from_secs(10), || {
        let (v, t) = (verifier.clone(), t.clone());
        async move { v.verify(&t).await.is_err_and(|e| e.code() == "auth.token_expired") }
    })
    .await;
    assert!(dead, "the revoked session's token is refused");
    let other = token(&key, "another-session", PrincipalKind::User, Role::Member, vec![]);
    assert!(verifier.verify(&other).await.is_ok(), "other sessions live on");

    // A verifier started later replays the recent past and knows too.
    let (late, _) = new_verifier();
    tokio::spawn(follow_revocations(bus.clone(), late.clone(), Duration::from_secs(1200), stop.clone()));
    let replayed = eventually(Duration::from_secs(10), || {
        let (v, t) = (late.clone(), t.clone());
        async move { v.verify(&t).await.is_err() }
    })
    .await;
    assert!(replayed);
    stop.cancel();
}

#[tokio::test]
async fn the_permission_check_combines_role_and_key_scope() {
    use nexus_platform::identity::Scope;
    let (verifier, key) = new_verifier();
    let viewer = verifier.verify(&token(&key, "s", PrincipalKind::User, Role::Viewer, vec![])).await.unwrap();
    assert!(viewer.require(Action::Read).is_ok());
    assert_eq!(viewer.require(Action::Write).unwrap_err().code(), "auth.role_insufficient");
    let admin = verifier.verify(&token(&key, "s", PrincipalKind::User, Role::Admin, vec![])).await.unwrap();
    assert!(admin.require(Action::ManageMembers).is_ok());
    assert_eq!(admin.require(Action::OwnWorkspace).unwrap_err().code(), "auth.role_insufficient");
    let read_key =
        verifier.verify(&token(&key, "k", PrincipalKind::ApiKey, Role::Owner, vec![Scope::Read])).await.unwrap();
    assert!(read_key.require(Action::Read).is_ok());
    let e = read_key.require(Action::Write).unwrap_err();
    assert_eq!((e.code(), e.param("scope")), ("auth.scope_missing", Some("write")));
    let write_key =
        verifier.verify(&token(&key, "k", PrincipalKind::ApiKey, Role::Member, vec![Scope::Write])).await.unwrap();
    assert!(write_key.require(Action::Write).is_ok());
    assert_eq!(
        write_key.require(Action::ManageApiKeys).unwrap_err().code(),
        "auth.role_insufficient",
        "role still binds keys"
    );
    // An owner's key with only `write` cannot manage keys either.
    let owner_write =
        verifier.verify(&token(&key, "k", PrincipalKind::ApiKey, Role::Owner, vec![Scope::Write])).await.unwrap();
    assert_eq!(owner_write.require(Action::ManageApiKeys).unwrap_err().code(), "auth.scope_missing");
}
