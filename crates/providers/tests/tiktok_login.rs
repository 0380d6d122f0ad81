//! TikTok Login Kit client against the fake TikTok (real HTTP on 127.0.0.1, port 0): a creator's
//! code for a token that posts, renewal with rotating refresh tokens, revocation, and refusals.

use std::time::Duration;

use nexus_providers::marketing::PlatformError;
use nexus_providers::tiktok_login::{TikTokLoginClient, TikTokLoginConfig};
use nexus_providers::tiktok_posts::{TikTokPostClient, TikTokPostConfig};
use nexus_testkit::tiktok::FakeTikTok;
use nexus_testkit::tiktok_login::{TEST_CLIENT_KEY, TEST_CLIENT_SECRET, TEST_CREATOR_CODE, TEST_OPEN_ID};

const REDIRECT: &str = "https://app.example.com/connections/callback";

fn client(fake: &FakeTikTok, secret: &str) -> TikTokLoginClient {
    nexus_testkit::init_tracing();
    let cfg = TikTokLoginConfig {
        client_key: TEST_CLIENT_KEY.into(),
        client_secret: secret.into(),
        authorize_url: "https://www.tiktok.com/v2/auth/authorize/".into(),
        api_url: fake.base_url.clone(),
        timeout: Duration::from_secs(5),
        attempts: 2,
    };
    TikTokLoginClient::new(cfg, reqwest::Client::new())
}

#[tokio::test]
async fn a_creators_code_gives_a_token_that_posts_and_renewals_rotate_the_refresh_token() {
    let fake = FakeTikTok::start().await;
    let login = client(&fake, TEST_CLIENT_SECRET);
    let scopes = ["user.info.basic".to_owned(), "video.publish".to_owned()];
    let url = reqwest::Url::parse(&login.authorize_url(REDIRECT, &scopes, "st-1").unwrap()).unwrap();
    let q: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
    assert_eq!(q["client_key"], TEST_CLIENT_KEY);
    assert_eq!((q["scope"].as_str(), q["response_type"].as_str()), ("user.info.basic,video.publish", "code"));
    assert_eq!((q["redirect_uri"].as_str(), q["state"].as_str()), (REDIRECT, "st-1"));

    let grant = login.exchange_code(TEST_CREATOR_CODE, REDIRECT).await.unwrap();
    assert_eq!(grant.open_id, TEST_OPEN_ID);
    assert!(grant.scope.contains(&"video.publish".to_owned()), "{grant:?}");
    assert_eq!((grant.expires_in, grant.refresh_expires_in.is_some()), (Some(7_200), true));
    let profile = login.profile(&grant.access_token).await.unwrap();
    assert_eq!((profile.open_id.as_str(), profile.username.as_str()), (TEST_OPEN_ID, "fake_creator"));
    let posts = TikTokPostClient::new(
        TikTokPostConfig { base_url: fake.base_url.clone(), timeout: Duration::from_secs(5), attempts: 1 },
        reqwest::Client::new(),
    );
    assert!(!posts.creator_info(&grant.access_token).await.unwrap().privacy_level_options.is_empty());

    let renewed = login.refresh(&grant.refresh_token).await.unwrap();
    assert_ne!(renewed.refresh_token, grant.refresh_token, "rotated");
    assert_eq!(fake.creator_refreshes(), 1);
    let again = login.refresh(&grant.refresh_token).await.unwrap_err();
    assert!(matches!(again, PlatformError::Auth { .. }), "the old refresh token no longer works: {again:?}");
    assert_eq!(fake.creator_refreshes(), 1, "a renewal is sent once, never retried");

    login.revoke(&renewed.access_token).await.unwrap();
    let gone = login.profile(&renewed.access_token).await.unwrap_err();
    assert!(matches!(gone, PlatformError::Auth { .. }), "{gone:?}");
    let gone = login.refresh(&renewed.refresh_token).await.unwrap_err();
    assert!(matches!(gone, PlatformError::Auth { .. }), "{gone:?}");
}

#[tokio::test]
async fn a_wrong_code_or_secret_is_a_refused_credential() {
    let fake = FakeTikTok::start().await;
    let e = client(&fake, TEST_CLIENT_SECRET).exchange_code("used-or-forged", REDIRECT).await.unwrap_err();
    assert!(matches!(&e, PlatformError::Auth { message, .. } if message.contains("invalid_grant")), "{e:?}");
    let e = client(&fake, "not-the-secret").exchange_code(TEST_CREATOR_CODE, REDIRECT).await.unwrap_err();
    assert!(matches!(&e, PlatformError::Auth { message, .. } if message.contains("invalid_client")), "{e:?}");
    let e = client(&fake, TEST_CLIENT_SECRET).profile("act.forged").await.unwrap_err();
    assert!(matches!(e, PlatformError::Auth { .. }), "{e:?}");
}
