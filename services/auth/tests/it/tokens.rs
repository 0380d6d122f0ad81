//! Forged, expired and otherwise wrong tokens are refused by a service called directly, and API
//! keys are bound by their scopes and die when revoked.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use nexus_platform::crypto::Sealer;
use nexus_platform::identity::{AUDIENCE, Claims, ISSUER, PrincipalKind, Role};
use nexus_proto::nexus::auth::v1 as pb;
use sha2::Sha256;

use crate::support::*;

fn b64(v: &serde_json::Value) -> String {
    URL_SAFE_NO_PAD.encode(v.to_string())
}

fn claims_for(s: &pb::AuthSession, exp_offset: i64) -> Claims {
    let now = chrono::Utc::now().timestamp();
    Claims {
        iss: ISSUER.into(),
        aud: AUDIENCE.into(),
        sub: s.user.as_ref().unwrap().id.clone(),
        ws: s.workspace.as_ref().unwrap().id.clone(),
        role: Role::Owner,
        scp: vec![],
        sid: s.session_id.clone(),
        kind: PrincipalKind::User,
        jti: "t".into(),
        iat: now,
        exp: now + exp_offset,
        amr: vec![],
        loc: String::new(),
        svc: String::new(),
    }
}

/// An Ed25519 key of our own, in the PKCS#8 form jsonwebtoken wants.
fn foreign_key() -> jsonwebtoken::EncodingKey {
    let mut der = vec![0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20];
    der.extend_from_slice(&[7u8; 32]);
    jsonwebtoken::EncodingKey::from_ed_der(&der)
}

#[tokio::test]
async fn forged_expired_and_odd_tokens_are_refused_over_grpc() {
    let auth = start_auth(&[]).await;
    let s = auth.sign_up(&unique_email("tok")).await;
    let mut c = auth.client();
    assert!(c.get_me(authed(pb::Empty {}, &s.access_token)).await.is_ok());

    let jwks: serde_json::Value =
        serde_json::from_str(&c.get_jwks(pb::Empty {}).await.unwrap().into_inner().json).unwrap();
    let key = &jwks["keys"][0];
    let kid = key["kid"].as_str().unwrap().to_owned();
    assert_eq!(key["kty"], "OKP");
    assert_eq!(key["alg"], "EdDSA");

    // The real key (as the service holds it) can mint an expired token.
    let pool = nexus_platform::db::connect("auth", &auth.config.common.database).await.unwrap();
    let sealer = Sealer::from_config(auth.config.auth.sealing_keys.expose()).unwrap();
    let keys = nexus_auth::app::keys::SigningKeys::new(pool, sealer, Duration::from_secs(900));
    let expired = keys.sign(&claims_for(&s, -3600)).await.unwrap();
    let valid_again = keys.sign(&claims_for(&s, 600)).await.unwrap();
    assert!(c.get_me(authed(pb::Empty {}, &valid_again)).await.is_ok(), "control: a well-made token passes");

    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
    header.kid = Some(kid.clone());
    let other_key = jsonwebtoken::encode(&header, &claims_for(&s, 600), &foreign_key()).unwrap();
    header.kid = Some("k-never-published".into());
    let unknown_kid = jsonwebtoken::encode(&header, &claims_for(&s, 600), &foreign_key()).unwrap();

    let payload = b64(&serde_json::to_value(claims_for(&s, 600)).unwrap());
    let alg_none = format!("{}.{payload}.", b64(&serde_json::json!({"alg": "none", "typ": "JWT", "kid": kid})));
    let hs_header = b64(&serde_json::json!({"alg": "HS256", "typ": "JWT", "kid": kid}));
    let public = URL_SAFE_NO_PAD.decode(key["x"].as_str().unwrap()).unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(&public).unwrap();
    mac.update(format!("{hs_header}.{payload}").as_bytes());
    let hs256 = format!("{hs_header}.{payload}.{}", URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes()));
    let mut tampered = s.access_token.clone();
    tampered.insert(tampered.find('.').unwrap() + 5, 'x');

    for (name, token, code) in [
        ("expired", expired.as_str(), "auth.token_expired"),
        ("signed with another key", other_key.as_str(), "auth.unauthenticated"),
        ("unknown kid", unknown_kid.as_str(), "auth.unauthenticated"),
        ("alg none", alg_none.as_str(), "auth.unauthenticated"),
        ("HS256 with the public key", hs256.as_str(), "auth.unauthenticated"),
        ("tampered payload", tampered.as_str(), "auth.unauthenticated"),
        ("garbage", "not.a.jwt", "auth.unauthenticated"),
    ] {
        let e = c.get_me(authed(pb::Empty {}, token)).await.unwrap_err();
        assert_eq!(e.code(), tonic::Code::Unauthenticated, "{name}");
        assert_eq!(code_of(&e), code, "{name}");
    }
    // No token at all: the handler asks for one.
    assert_eq!(code_of(&c.get_me(pb::Empty {}).await.unwrap_err()), "auth.unauthenticated");
}

#[tokio::test]
async fn rotated_keys_keep_verifying_until_their_tokens_expire() {
    let auth = start_auth(&[]).await;
    let s = auth.sign_up(&unique_email("rot")).await;
    let mut c = auth.client();
    let before = c.get_jwks(pb::Empty {}).await.unwrap().into_inner().json;
    let after: serde_json::Value = serde_json::from_str(
        &c.rotate_signing_key(authed(pb::Empty {}, &auth.ops_token().await)).await.unwrap().into_inner().json,
    )
    .unwrap();
    assert_eq!(after["keys"].as_array().unwrap().len(), 2, "old key still published: {before}");
    assert!(c.get_me(authed(pb::Empty {}, &s.access_token)).await.is_ok(), "token signed before rotation");
    let fresh = auth.login(&s.user.as_ref().unwrap().email, PASSWORD).await.unwrap();
    let kid = jsonwebtoken::decode_header(&fresh.access_token).unwrap().kid.unwrap();
    assert_eq!(kid, after["keys"][0]["kid"].as_str().unwrap(), "new tokens use the new key: {after}");
    assert!(c.get_me(authed(pb::Empty {}, &fresh.access_token)).await.is_ok());
}

#[tokio::test]
async fn api_keys_obey_scopes_and_die_at_once_when_revoked() {
    let auth = start_auth(&[]).await;
    let s = auth.sign_up(&unique_email("keys")).await;
    let mut c = auth.client();
    let created = c
        .create_api_key(authed(
            pb::CreateApiKeyRequest { name: "Reporting".into(), scopes: vec!["read".into()], expires_at: None },
            &s.access_token,
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(created.secret.starts_with("nx_"));
    let listed = c.list_api_keys(authed(pb::Empty {}, &s.access_token)).await.unwrap().into_inner().items;
    assert_eq!(listed.len(), 1);
    assert!(created.secret.starts_with(&listed[0].prefix), "the public prefix identifies the key");
    let admin = auth.db.admin_pool().await;
    let stored: Vec<u8> = sqlx::query_scalar("SELECT secret_hash FROM auth.api_keys").fetch_one(&admin).await.unwrap();
    assert_ne!(stored, created.secret.as_bytes(), "only a hash is stored");

    let token =
        c.exchange_api_key(pb::ExchangeApiKeyRequest { secret: created.secret.clone() }).await.unwrap().into_inner();
    // Reads are allowed; a write needs a write scope.
    assert!(c.list_api_keys(authed(pb::Empty {}, &token.access_token)).await.is_ok());
    let denied = c
        .create_api_key(authed(
            pb::CreateApiKeyRequest { name: "escalate".into(), scopes: vec!["admin".into()], expires_at: None },
            &token.access_token,
        ))
        .await
        .unwrap_err();
    assert_eq!(denied.code(), tonic::Code::PermissionDenied);
    assert_eq!(code_of(&denied), "auth.scope_missing");
    let bad_scope = c
        .create_api_key(authed(
            pb::CreateApiKeyRequest { name: "x".into(), scopes: vec!["root".into()], expires_at: None },
            &s.access_token,
        ))
        .await
        .unwrap_err();
    assert_eq!(code_of(&bad_scope), "auth.invalid_scope");

    c.revoke_api_key(authed(pb::IdRequest { id: created.key.as_ref().unwrap().id.clone() }, &s.access_token))
        .await
        .unwrap();
    let gone = c.exchange_api_key(pb::ExchangeApiKeyRequest { secret: created.secret.clone() }).await.unwrap_err();
    assert_eq!(gone.code(), tonic::Code::Unauthenticated);
    assert_eq!(code_of(&gone), "auth.api_key_invalid");
    assert_eq!(
        c.list_api_keys(authed(pb::Empty {}, &token.access_token)).await.unwrap_err().code(),
        tonic::Code::Unauthenticated,
        "its internal token died too"
    );
    let forged = format!("{}x", &created.secret[..created.secret.len() - 1]);
    assert_eq!(
        code_of(&c.exchange_api_key(pb::ExchangeApiKeyRequest { secret: forged }).await.unwrap_err()),
        "auth.api_key_invalid"
    );
}
