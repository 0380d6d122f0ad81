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
        svc: String::new(),
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

/// A JWKS source that counts its calls, can be made to fail, and answers after `delay`.
struct CountingKeys {
    jwks: std::sync::Mutex<String>,
    calls: std::sync::atomic::AtomicUsize,
    fail: std::sync::atomic::AtomicBool,
    delay: Duration,
}

impl CountingKeys {
    fn new(jwks: String, delay: Duration) -> Arc<Self> {
        Arc::new(Self {
            jwks: std::sync::Mutex::new(jwks),
            calls: std::sync::atomic::AtomicUsize::new(0),
            fail: std::sync::atomic::AtomicBool::new(false),
            delay,
        })
    }

    fn calls(&self) -> usize {
        self.calls.load(std::sync::atomic::Ordering::SeqCst)
    }

    fn set_failing(&self, fail: bool) {
        self.fail.store(fail, std::sync::atomic::Ordering::SeqCst);
    }
}

#[async_trait::async_trait]
impl KeySource for CountingKeys {
    async fn jwks(&self) -> Result<String, Error> {
        self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        tokio::time::sleep(self.delay).await;
        if self.fail.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(Error::unavailable("service.unavailable"));
        }
        Ok(self.jwks.lock().unwrap().clone())
    }
}

fn jwks_of(keys: &[(&str, &str)]) -> String {
    let keys: Vec<_> = keys
        .iter()
        .map(|(kid, x)| serde_json::json!({"kty": "OKP", "crv": "Ed25519", "x": x, "kid": kid, "alg": "EdDSA"}))
        .collect();
    serde_json::json!({ "keys": keys }).to_string()
}

/// A user token signed by `key` under `kid`, unique each call (the verifier caches by token).
fn token_kid(key: &jsonwebtoken::EncodingKey, kid: &str) -> String {
    let now = chrono::Utc::now().timestamp();
    let claims = Claims {
        iss: ISSUER.into(),
        aud: AUDIENCE.into(),
        sub: UserId::new().to_string(),
        ws: WorkspaceId::new().to_string(),
        role: Role::Member,
        scp: vec![],
        sid: "s".into(),
        kind: PrincipalKind::User,
        jti: uuid::Uuid::now_v7().to_string(),
        iat: now,
        exp: now + 600,
        amr: vec![],
        loc: String::new(),
        svc: String::new(),
    };
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
    header.kid = Some(kid.into());
    jsonwebtoken::encode(&header, &claims, key).unwrap()
}

#[tokio::test]
async fn concurrent_verifications_with_an_unknown_kid_cause_one_fetch() {
    let (key, x) = keypair(5);
    let source = CountingKeys::new(jwks_of(&[("k1", &x)]), Duration::from_millis(100));
    let verifier = Arc::new(Verifier::new(source.clone()));
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let v = verifier.clone();
            let t = token_kid(&key, "k1");
            tokio::spawn(async move { v.verify(&t).await })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().expect("valid token");
    }
    assert_eq!(source.calls(), 1, "one fetch for fifty callers");

    // A sprayed kid costs at most one fetch a second, and is refused.
    let started = std::time::Instant::now();
    let sprayed: Vec<_> = (0..20)
        .map(|i| {
            let v = verifier.clone();
            let t = token_kid(&key, &format!("made-up-{i}"));
            tokio::spawn(async move { v.verify(&t).await })
        })
        .collect();
    for t in sprayed {
        assert_eq!(t.await.unwrap().unwrap_err().code(), "auth.unauthenticated");
    }
    assert!(source.calls() <= 3, "{} fetches", source.calls());
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn a_failed_refresh_keeps_serving_the_known_keys() {
    let (key, x) = keypair(6);
    let source = CountingKeys::new(jwks_of(&[("k1", &x)]), Duration::from_millis(20));
    let verifier = Verifier::new(source.clone()).with_max_key_age(Duration::from_millis(50));
    verifier.verify(&token_kid(&key, "k1")).await.unwrap();
    assert_eq!(source.calls(), 1);

    // Auth goes down; the keys go stale.
    source.set_failing(true);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = std::time::Instant::now();
    for _ in 0..10 {
        verifier.verify(&token_kid(&key, "k1")).await.expect("known key still verifies");
    }
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "stale keys answer at once; the refresh is in the background"
    );
    assert!(
        nexus_testkit::eventually(Duration::from_secs(3), || async { source.calls() >= 2 }).await,
        "a refresh was tried"
    );
    // More stale verifications while the refresh keeps failing: still accepted, fetches stay rare.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    for _ in 0..10 {
        verifier.verify(&token_kid(&key, "k1")).await.expect("known key still verifies");
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(source.calls() <= 4, "{} fetches", source.calls());

    // An unknown kid while auth is down: unavailable (503), not a bad token.
    let (key2, x2) = keypair(7);
    let err = verifier.verify(&token_kid(&key2, "k2")).await.unwrap_err();
    assert_eq!(err.kind(), nexus_kernel::ErrorKind::Unavailable, "{err:?}");

    // Auth is back with a rotated key set: both keys verify.
    *source.jwks.lock().unwrap() = jwks_of(&[("k2", &x2), ("k1", &x)]);
    source.set_failing(false);
    verifier.verify(&token_kid(&key2, "k2")).await.expect("new key fetched");
    verifier.verify(&token_kid(&key, "k1")).await.expect("old key kept");
}

#[tokio::test]
async fn with_auth_down_from_the_start_tokens_are_unavailable_not_invalid() {
    let (key, x) = keypair(8);
    let source = CountingKeys::new(jwks_of(&[("k1", &x)]), Duration::from_millis(50));
    source.set_failing(true);
    let verifier = Arc::new(Verifier::new(source.clone()));
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let v = verifier.clone();
            let t = token_kid(&key, "k1");
            tokio::spawn(async move { v.verify(&t).await })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap_err().kind(), nexus_kernel::ErrorKind::Unavailable);
    }
    assert_eq!(source.calls(), 1, "concurrent callers share the failed fetch");
    source.set_failing(false);
    tokio::time::sleep(Duration::from_millis(1000)).await;
    verifier.verify(&token_kid(&key, "k1")).await.expect("recovered");
}

#[test]
fn service_principals_are_told_apart_and_kept_to_their_workspace() {
    let parse = |claims: serde_json::Value| serde_json::from_value::<Claims>(claims).unwrap();
    let base = serde_json::json!({
        "iss": ISSUER, "aud": AUDIENCE, "sub": nexus_platform::identity::nil_user().to_string(),
        "ws": WorkspaceId::from_uuid(uuid::Uuid::nil()).to_string(), "role": "member", "scp": ["read", "write"],
        "sid": "svc:content", "kind": "service", "jti": "j", "iat": 0, "exp": 1, "svc": "content"
    });
    let c = parse(base.clone());
    assert_eq!(c.svc, "content");
    assert_eq!(c.kind, PrincipalKind::Service);
    // Claims without `svc` (every user token) still parse.
    let mut user = base;
    user.as_object_mut().unwrap().remove("svc");
    user["kind"] = "user".into();
    assert!(parse(user).svc.is_empty());
    assert!(nexus_platform::identity::is_dev_service_secret(&nexus_platform::identity::dev_service_secret("auth")));
    assert!(!nexus_platform::identity::is_dev_service_secret("a real secret"));
}
