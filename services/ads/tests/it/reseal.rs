//! Key rotation: connection tokens and a pending authorization's PKCE verifier, sealed by the
//! OAuth round trip, are re-sealed under a new key by the ads service's declared columns and used
//! by an ads service holding only the new key; a dump shows no token.

use std::sync::{Arc, OnceLock};

use nexus_platform::crypto::Sealer;
use nexus_platform::reseal::{ResealOptions, reseal};
use nexus_proto::nexus::ads::v1 as pb;
use nexus_proto::nexus::ads::v1::ads_client::AdsClient;
use uuid::Uuid;

use crate::support::{Service, code_and_state};

#[tokio::test]
async fn tokens_and_verifiers_resealed_under_a_new_key_open_with_it_alone() {
    let (k1, k2) = (Sealer::generate_key(), Sealer::generate_key());
    let s = Service::start_with(&[("NEXUS_ADS__SEALING_KEYS", format!("1:{k1}"))]).await;
    let (a, b, pending) = (s.admin(), s.admin(), s.admin());
    s.connect_local(&a).await;
    s.connect_local(&b).await;
    let started = s.begin(&pending, "local").await;
    let old = "SELECT (SELECT count(*) FROM ads.connections WHERE credentials LIKE 'v1.%') \
                    + (SELECT count(*) FROM ads.oauth_states WHERE verifier_sealed LIKE 'v1.%')";
    assert_eq!(s.scalar(old).await, 3);
    let stored: Vec<(Uuid, String)> =
        sqlx::query_as("SELECT id, credentials FROM ads.connections").fetch_all(&s.admin_pool).await.unwrap();
    let tokens: Vec<String> =
        stored.iter().map(|(id, sealed)| s.app.open_tokens(*id, sealed).unwrap().access_token).collect();

    let pool = nexus_platform::db::connect("ads", &s.db.config("ads")).await.unwrap();
    let rotated = Sealer::from_config(&format!("1:{k1},2:{k2}")).unwrap();
    let report = reseal(&pool, &rotated, nexus_ads::DEF.sealed, ResealOptions { batch_size: 1, max_batches: None })
        .await
        .unwrap();
    assert_eq!((report.resealed(), report.failed()), (3, 0), "{report:?}");
    assert_eq!(s.scalar(old).await, 0, "nothing left under the old key");

    // Ads with only key 2: opens every connection's tokens and finishes the pending authorization.
    let shared = Arc::new(OnceLock::new());
    let sharing = shared.clone();
    let after = s
        .another(
            nexus_ads::DEF,
            nexus_ads::DEFAULTS,
            &[
                ("NEXUS_STORAGE__ROOT", s.store.path().display().to_string()),
                ("NEXUS_OUTBOUND__ALLOW_PRIVATE_CIDRS", "127.0.0.0/8".into()),
                ("NEXUS_EXPIRY__INTERVAL", "1h".into()),
                ("NEXUS_INSIGHTS__SWEEP_INTERVAL", "1h".into()),
                ("NEXUS_ADS__SEALING_KEYS", format!("2:{k2}")),
            ],
            |config: nexus_ads::Config| nexus_ads::service_sharing(config, sharing).expect("config"),
        )
        .await;
    let app = loop {
        if let Some(app) = shared.get() {
            break Arc::clone(app);
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    };
    let resealed: Vec<(Uuid, String)> =
        sqlx::query_as("SELECT id, credentials FROM ads.connections").fetch_all(&s.admin_pool).await.unwrap();
    for ((id, sealed), token) in resealed.iter().zip(&tokens) {
        assert_eq!(&app.open_tokens(*id, sealed).unwrap().access_token, token);
    }
    let channel = tonic::transport::Endpoint::from_shared(after.grpc_url()).unwrap().connect().await.unwrap();
    let (code, state) = code_and_state(&started.authorize_url);
    let done = AdsClient::new(channel)
        .complete_connection(pending.req(pb::CompleteConnectionRequest { provider: "local".into(), code, state }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(done.status, "active");
    after.shutdown.cancel();

    let tokens: Vec<&str> = tokens.iter().map(String::as_str).collect();
    assert!(s.db.assert_dump_hides(&tokens) > 0);
}
