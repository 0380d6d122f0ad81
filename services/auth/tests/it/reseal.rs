//! Key rotation: TOTP secrets (confirmed and pending) and token-signing keys, sealed the way auth
//! seals them, are re-sealed under a new key by auth's declared columns, then used by an auth
//! started with only the new key; a dump of the database shows no TOTP secret.

use std::time::Duration;

use nexus_platform::crypto::Sealer;
use nexus_platform::reseal::{ResealOptions, reseal};
use nexus_proto::nexus::auth::v1 as pb;
use nexus_proto::nexus::auth::v1::auth_client::AuthClient;
use nexus_testkit::RunningService;

use crate::mfa::{base32_decode, now, totp};
use crate::support::*;

#[tokio::test]
async fn mfa_secrets_and_signing_keys_resealed_under_a_new_key_work_with_it_alone() {
    let (k1, k2) = (Sealer::generate_key(), Sealer::generate_key());
    let auth = start_auth(&[("NEXUS_AUTH__SEALING_KEYS", &format!("1:{k1}"))]).await;
    let mut c = auth.client();
    // One user with TOTP confirmed, one with an enrolment pending.
    let (confirmed, pending) = (unique_email("reseal-a"), unique_email("reseal-b"));
    let a = auth.sign_up(&confirmed).await;
    let enrol_a = c.enroll_totp(authed(pb::Empty {}, &a.access_token)).await.unwrap().into_inner();
    let key_a = base32_decode(&enrol_a.secret);
    c.confirm_totp(authed(pb::CodeRequest { code: totp(&key_a, now(), 6) }, &a.access_token)).await.unwrap();
    let b = auth.sign_up(&pending).await;
    let enrol_b = c.enroll_totp(authed(pb::Empty {}, &b.access_token)).await.unwrap().into_inner();
    let admin = auth.db.admin_pool().await;
    let old: i64 = sqlx::query_scalar(
        "SELECT (SELECT count(*) FROM auth.users WHERE mfa_secret_sealed LIKE 'v1.%' OR mfa_pending_sealed LIKE 'v1.%') \
              + (SELECT count(*) FROM auth.signing_keys WHERE private_key_sealed LIKE 'v1.%')",
    )
    .fetch_one(&admin)
    .await
    .unwrap();
    assert!(old >= 3, "two TOTP secrets and at least one signing key under key 1, got {old}");

    let pool = nexus_platform::db::connect("auth", &auth.db.config("auth")).await.unwrap();
    let rotated = Sealer::from_config(&format!("1:{k1},2:{k2}")).unwrap();
    let report = reseal(&pool, &rotated, nexus_auth::DEF.sealed, ResealOptions { batch_size: 1, max_batches: None })
        .await
        .unwrap();
    assert_eq!(report.failed(), 0, "{report:?}");
    assert_eq!(report.resealed(), u64::try_from(old).unwrap(), "{report:?}");
    let left: i64 = sqlx::query_scalar(
        "SELECT (SELECT count(*) FROM auth.users WHERE mfa_secret_sealed LIKE 'v1.%' OR mfa_pending_sealed LIKE 'v1.%') \
              + (SELECT count(*) FROM auth.signing_keys WHERE private_key_sealed LIKE 'v1.%') \
              + (SELECT count(*) FROM auth.sessions WHERE successor_sealed LIKE 'v1.%') \
              + (SELECT count(*) FROM auth.oauth_states WHERE verifier_sealed LIKE 'v1.%')",
    )
    .fetch_one(&admin)
    .await
    .unwrap();
    assert_eq!(left, 0, "nothing left under the old key");

    // Auth with only key 2: signs tokens with its re-sealed signing key, checks the confirmed
    // TOTP secret at login and the pending one at confirmation.
    let config: nexus_auth::Config = nexus_platform::config::load_from_env(
        "auth",
        nexus_auth::DEFAULTS,
        None,
        env_for(&auth.db, &auth._nats, &[("NEXUS_AUTH__SEALING_KEYS", &format!("2:{k2}"))]),
    )
    .unwrap();
    let nexus_auth::Service { keys, build } = nexus_auth::service(config.clone()).unwrap();
    let after = RunningService::start_with_keys(nexus_auth::DEF, config.common.clone(), Some(keys), build).await;
    let mut c2 = AuthClient::new(nexus_platform::grpc::channel(&after.grpc_url(), Duration::from_secs(10)).unwrap());
    let mut up = false;
    for _ in 0..100 {
        if c2.get_jwks(pb::Empty {}).await.is_ok() {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(up, "auth with the new key did not start");
    let login = c2
        .login(pb::LoginRequest {
            email: confirmed.clone(),
            password: PASSWORD.into(),
            totp_code: totp(&key_a, now() + 30, 6),
            recovery_code: String::new(),
            client: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!login.access_token.is_empty());
    let key_b = base32_decode(&enrol_b.secret);
    let codes = c2
        .confirm_totp(authed(pb::CodeRequest { code: totp(&key_b, now(), 6) }, &b.access_token))
        .await
        .unwrap()
        .into_inner()
        .codes;
    assert_eq!(codes.len(), 10);
    after.shutdown.cancel();

    assert!(auth.db.assert_dump_hides(&[&enrol_a.secret, &enrol_b.secret]) > 0);
}
