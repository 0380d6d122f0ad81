//! Meta and TikTok connections against their fakes: the authorization address, the code
//! exchanged with its PKCE verifier, the long-lived token, the accounts; refusals; revocation;
//! a long-lived token expiring in six days reported once.

use nexus_proto::nexus::ads::v1 as pb;

use crate::support::{Service, code};

fn query(url: &str, key: &str) -> String {
    let u = reqwest::Url::parse(url).unwrap();
    u.query_pairs().find(|(k, _)| k == key).map(|(_, v)| v.into_owned()).unwrap_or_default()
}

#[tokio::test]
async fn meta_connects_with_pkce_a_long_lived_token_and_its_accounts() {
    let s = Service::start().await;
    let admin = s.admin();
    let started = s.begin(&admin, "meta").await;
    let url = &started.authorize_url;
    assert!(url.starts_with("https://www.facebook.com/v25.0/dialog/oauth?"), "{url}");
    assert_eq!(query(url, "client_id"), nexus_testkit::meta::TEST_APP_ID);
    assert_eq!(query(url, "state"), started.state);
    assert_eq!(query(url, "code_challenge_method"), "S256");
    assert!(query(url, "scope").contains("ads_management"));

    let c = s.complete(&admin, "meta", nexus_testkit::meta::TEST_CODE, &started.state).await.unwrap();
    // The verifier sent with the code is the one whose challenge went to the dialog.
    let verifiers = s.meta.verifiers();
    assert_eq!(verifiers.len(), 1);
    assert_eq!(nexus_providers::oidc::pkce_challenge(&verifiers[0]), query(url, "code_challenge"));
    assert_eq!((c.provider.as_str(), c.external_user.as_str(), c.display_name.as_str()), ("meta", "10001", "Ana Meta"));
    let expires = c.token_expires_at.unwrap().seconds - chrono::Utc::now().timestamp();
    assert!((59 * 86_400..=60 * 86_400).contains(&expires), "{expires}");
    let mut ad: Vec<(&str, &str, &str, bool)> = c
        .accounts
        .iter()
        .filter(|a| a.kind == "ad_account")
        .map(|a| (a.external_id.as_str(), a.currency.as_str(), a.time_zone.as_str(), a.chosen))
        .collect();
    ad.sort();
    assert_eq!(ad, [("act_111", "USD", "America/Los_Angeles", false), ("act_222", "EUR", "Europe/Madrid", false)]);
    let page = c.accounts.iter().find(|a| a.kind == "page").unwrap();
    assert_eq!((page.external_id.as_str(), page.chosen), ("555", true));
    let ig = c.accounts.iter().find(|a| a.kind == "instagram").unwrap();
    assert_eq!((ig.external_id.as_str(), ig.name.as_str()), ("1784", "anasbakery"));

    // Disconnecting revokes the grant at Meta.
    let mut client = s.client().await;
    client.disconnect(admin.req(pb::GetByIdRequest { id: c.id })).await.unwrap();
    assert_eq!(s.meta.revoked().len(), 1);
}

#[tokio::test]
async fn a_code_meta_refuses_is_a_failed_authorization_and_stores_nothing() {
    let s = Service::start().await;
    let admin = s.admin();
    let started = s.begin(&admin, "meta").await;
    let e = s.complete(&admin, "meta", "forged-code", &started.state).await.unwrap_err();
    assert_eq!((e.code(), code(&e)), (tonic::Code::Unauthenticated, "ads.oauth_failed".to_owned()));
    assert_eq!(s.scalar("SELECT count(*) FROM ads.connections").await, 0);
    // The state was used: retrying with the right code needs a new start.
    let e = s.complete(&admin, "meta", nexus_testkit::meta::TEST_CODE, &started.state).await.unwrap_err();
    assert_eq!(code(&e), "ads.oauth_state_invalid");
}

#[tokio::test]
async fn a_meta_token_expiring_in_six_days_produces_the_expiring_event_and_status_once() {
    let s = Service::start().await;
    let admin = s.admin();
    s.meta.set_long_lived_secs(6 * 86_400);
    let started = s.begin(&admin, "meta").await;
    let c = s.complete(&admin, "meta", nexus_testkit::meta::TEST_CODE, &started.state).await.unwrap();
    let round = s.app.watch_expiry().await.unwrap();
    assert_eq!((round.warned, round.refreshed, round.expired), (1, 0, 0));
    assert_eq!(s.app.watch_expiry().await.unwrap().warned, 0);
    assert_eq!(s.events("nexus.ads.connection.expiring").await, 1);
    let shown = s.client().await.get_connection(admin.req(pb::GetByIdRequest { id: c.id })).await.unwrap().into_inner();
    assert_eq!(shown.status, "expiring");
}

#[tokio::test]
async fn tiktok_connects_with_its_advertisers() {
    let s = Service::start().await;
    let admin = s.admin();
    let started = s.begin(&admin, "tiktok").await;
    assert_eq!(query(&started.authorize_url, "app_id"), nexus_testkit::tiktok::TEST_APP_ID);
    assert_eq!(query(&started.authorize_url, "state"), started.state);
    let c = s.complete(&admin, "tiktok", nexus_testkit::tiktok::TEST_AUTH_CODE, &started.state).await.unwrap();
    assert_eq!(c.provider, "tiktok");
    assert!(s.tiktok.log().iter().all(|(_, code)| *code == 0), "{:?}", s.tiktok.log());
    // TikTok's advertiser tokens do not expire.
    assert!(c.token_expires_at.is_none());
    let mut adv: Vec<(&str, &str, &str)> =
        c.accounts.iter().map(|a| (a.external_id.as_str(), a.currency.as_str(), a.time_zone.as_str())).collect();
    adv.sort();
    assert_eq!(adv, [("7001", "MXN", "America/Mexico_City"), ("7002", "USD", "UTC")]);

    let started = s.begin(&admin, "tiktok").await;
    let e = s.complete(&admin, "tiktok", "bad-code", &started.state).await.unwrap_err();
    assert_eq!(code(&e), "ads.oauth_failed");
}
