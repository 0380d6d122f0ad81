//! OpenID Connect client against the fake provider (real HTTP on 127.0.0.1, port 0).

use std::collections::HashMap;
use std::time::Duration;

use nexus_providers::oidc::{IdTokenClaims, OidcClient, OidcConfig, OidcError, pkce_challenge};
use nexus_testkit::oidc::{FakeIdp, IdTokenSpec, Signing, unix_now};
use serde_json::json;

const REDIRECT: &str = "https://app.example.com/v1/auth/oauth/google/callback";

fn http() -> reqwest::Client {
    nexus_testkit::init_tracing();
    reqwest::Client::builder().build().expect("http client")
}

fn config(fake: &FakeIdp) -> OidcConfig {
    OidcConfig {
        provider: "google".into(),
        issuer: fake.issuer.clone(),
        discovery_url: String::new(),
        client_id: fake.client_id.clone(),
        client_secret: fake.client_secret.clone(),
        scopes: vec!["openid".into(), "email".into(), "profile".into()],
    }
}

async fn setup() -> (FakeIdp, OidcClient) {
    let fake = FakeIdp::start().await;
    let client = OidcClient::new(config(&fake), http());
    (fake, client)
}

/// The whole flow: authorization URL, the user consents with `spec`, callback, login.
async fn login_with(fake: &FakeIdp, client: &OidcClient, spec: IdTokenSpec) -> Result<IdTokenClaims, OidcError> {
    let req = client.authorization_request(REDIRECT).await.expect("authorization request");
    let code = fake.issue_code(&req.url, spec);
    client.login(&code, &req.pkce_verifier, REDIRECT, &req.nonce).await
}

fn assert_invalid(result: Result<IdTokenClaims, OidcError>, reason: &str) {
    match result {
        Err(OidcError::InvalidToken(m)) => assert!(m.contains(reason), "expected InvalidToken({reason}), got {m:?}"),
        other => panic!("expected InvalidToken({reason}), got {other:?}"),
    }
}

fn query(url: &str) -> HashMap<String, String> {
    url::Url::parse(url).expect("url").query_pairs().into_owned().collect()
}

#[tokio::test]
async fn happy_path_authorization_url_exchange_and_claims() {
    let (fake, client) = setup().await;

    let req = client.authorization_request(REDIRECT).await.unwrap();
    assert!(req.url.starts_with(&format!("{}/authorize?", fake.issuer)), "{}", req.url);
    let q = query(&req.url);
    assert_eq!(q["response_type"], "code");
    assert_eq!(q["client_id"], fake.client_id);
    assert_eq!(q["redirect_uri"], REDIRECT);
    assert_eq!(q["scope"], "openid email profile");
    assert_eq!(q["state"], req.state);
    assert_eq!(q["nonce"], req.nonce);
    assert_eq!(q["code_challenge_method"], "S256");
    assert_eq!(q["code_challenge"], pkce_challenge(&req.pkce_verifier));
    assert!(!q.contains_key("client_secret"));
    for v in [&req.state, &req.nonce, &req.pkce_verifier] {
        assert_eq!(v.len(), 43, "32 random bytes, base64url: {v}");
    }
    assert!(req.state != req.nonce && req.nonce != req.pkce_verifier && req.state != req.pkce_verifier);
    let again = client.authorization_request(REDIRECT).await.unwrap();
    assert_ne!(again.state, req.state);
    assert_ne!(again.pkce_verifier, req.pkce_verifier);
    assert!(!format!("{req:?}").contains(&req.pkce_verifier));

    let code = fake.issue_code(&req.url, IdTokenSpec::default());
    let tokens = client.exchange_code(&code, &req.pkce_verifier, REDIRECT).await.unwrap();
    assert_eq!(tokens.token_type, "Bearer");
    assert_eq!(tokens.expires_in, Some(3599));
    assert!(!tokens.access_token.is_empty());
    assert!(!format!("{tokens:?}").contains(&tokens.id_token));

    let claims = client.verify_id_token(&tokens.id_token, &req.nonce).await.unwrap();
    assert_eq!(
        claims,
        IdTokenClaims {
            sub: "fake-user-1".into(),
            email: Some("user@example.com".into()),
            email_verified: true,
            name: Some("Test User".into()),
            picture: Some("https://example.com/avatar.png".into()),
            issuer: fake.issuer.clone(),
        }
    );

    // Discovery and JWKS were fetched once and cached, shared by clones.
    let clone = client.clone();
    let claims = login_with(&fake, &clone, IdTokenSpec { sub: "another".into(), ..Default::default() }).await.unwrap();
    assert_eq!(claims.sub, "another");
    assert_eq!(fake.discovery_requests(), 1);
    assert_eq!(fake.jwks_requests(), 1);
}

#[tokio::test]
async fn authorize_endpoint_redirects_back_with_code_and_state() {
    let (_fake, client) = setup().await;
    let req = client.authorization_request(REDIRECT).await.unwrap();
    let browser = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let resp = browser.get(&req.url).send().await.unwrap();
    assert_eq!(resp.status(), 302);
    let location = resp.headers()["location"].to_str().unwrap().to_string();
    assert!(location.starts_with(REDIRECT), "{location}");
    let back = query(&location);
    assert_eq!(back["state"], req.state);
    let claims = client.login(&back["code"], &req.pkce_verifier, REDIRECT, &req.nonce).await.unwrap();
    assert_eq!(claims.sub, "fake-user-1");
}

#[tokio::test]
async fn wrong_pkce_verifier_is_invalid_grant() {
    let (fake, client) = setup().await;
    let req = client.authorization_request(REDIRECT).await.unwrap();
    let code = fake.issue_code(&req.url, IdTokenSpec::default());
    let other = client.authorization_request(REDIRECT).await.unwrap();
    match client.login(&code, &other.pkce_verifier, REDIRECT, &req.nonce).await {
        Err(OidcError::Provider { error, .. }) => assert_eq!(error, "invalid_grant"),
        other => panic!("expected invalid_grant, got {other:?}"),
    }
    assert_eq!(fake.token_requests(), 1);
}

#[tokio::test]
async fn code_is_single_use() {
    let (fake, client) = setup().await;
    let req = client.authorization_request(REDIRECT).await.unwrap();
    let code = fake.issue_code(&req.url, IdTokenSpec::default());
    client.login(&code, &req.pkce_verifier, REDIRECT, &req.nonce).await.unwrap();
    match client.login(&code, &req.pkce_verifier, REDIRECT, &req.nonce).await {
        Err(OidcError::Provider { error, .. }) => assert_eq!(error, "invalid_grant"),
        other => panic!("expected invalid_grant on reuse, got {other:?}"),
    }
}

#[tokio::test]
async fn redirect_uri_mismatch_and_bad_client_secret_are_refused() {
    let (fake, client) = setup().await;
    let req = client.authorization_request(REDIRECT).await.unwrap();
    let code = fake.issue_code(&req.url, IdTokenSpec::default());
    match client.exchange_code(&code, &req.pkce_verifier, "https://evil.example.com/cb").await {
        Err(OidcError::Provider { error, .. }) => assert_eq!(error, "invalid_grant"),
        other => panic!("expected invalid_grant, got {other:?}"),
    }

    let bad = OidcClient::new(OidcConfig { client_secret: "wrong".into(), ..config(&fake) }, http());
    let req = bad.authorization_request(REDIRECT).await.unwrap();
    let code = fake.issue_code(&req.url, IdTokenSpec::default());
    match bad.exchange_code(&code, &req.pkce_verifier, REDIRECT).await {
        Err(OidcError::Provider { error, .. }) => assert_eq!(error, "invalid_client"),
        other => panic!("expected invalid_client, got {other:?}"),
    }
}

#[tokio::test]
async fn wrong_nonce_is_rejected() {
    let (fake, client) = setup().await;
    // The token carries another nonce than the one we sent.
    let result = login_with(&fake, &client, IdTokenSpec { nonce: Some("attacker-nonce".into()), ..Default::default() });
    assert!(matches!(result.await, Err(OidcError::NonceMismatch)));

    // The token is fine but the session expects another nonce (e.g. a replayed callback).
    let req = client.authorization_request(REDIRECT).await.unwrap();
    let code = fake.issue_code(&req.url, IdTokenSpec::default());
    let other = client.authorization_request(REDIRECT).await.unwrap();
    let result = client.login(&code, &req.pkce_verifier, REDIRECT, &other.nonce).await;
    assert!(matches!(result, Err(OidcError::NonceMismatch)), "{result:?}");

    // No nonce at all, and an empty expected nonce, never match.
    let claims = fake.claims_for(&IdTokenSpec::default(), None);
    let token = fake.sign_id_token(&claims, &Signing::Primary);
    assert!(matches!(client.verify_id_token(&token, "").await, Err(OidcError::NonceMismatch)));
    assert!(matches!(client.verify_id_token(&token, "x").await, Err(OidcError::NonceMismatch)));
}

#[tokio::test]
async fn wrong_audience_is_rejected() {
    let (fake, client) = setup().await;
    let spec = IdTokenSpec { aud: Some(json!("someone-elses-client")), ..Default::default() };
    assert_invalid(login_with(&fake, &client, spec).await, "audience");

    // Several audiences: azp must name us.
    let several = json!([fake.client_id, "other-client"]);
    let spec = IdTokenSpec { aud: Some(several.clone()), ..Default::default() };
    assert_invalid(login_with(&fake, &client, spec).await, "azp");
    let spec = IdTokenSpec { aud: Some(several.clone()), azp: Some("other-client".into()), ..Default::default() };
    assert_invalid(login_with(&fake, &client, spec).await, "azp");
    let spec = IdTokenSpec { aud: Some(several), azp: Some(fake.client_id.clone()), ..Default::default() };
    login_with(&fake, &client, spec).await.expect("azp names us");
}

#[tokio::test]
async fn wrong_issuer_is_rejected() {
    let (fake, client) = setup().await;
    let spec = IdTokenSpec { iss: Some("https://accounts.evil.example.com".into()), ..Default::default() };
    assert_invalid(login_with(&fake, &client, spec).await, "issuer");
}

#[tokio::test]
async fn expiry_and_issue_time_are_checked_with_leeway() {
    let (fake, client) = setup().await;
    let now = unix_now();
    let expired = IdTokenSpec { iat: Some(now - 7200), exp: Some(now - 3600), ..Default::default() };
    assert_invalid(login_with(&fake, &client, expired).await, "expired");
    let just_past = IdTokenSpec { iat: Some(now - 3600), exp: Some(now - 90), ..Default::default() };
    assert_invalid(login_with(&fake, &client, just_past).await, "expired");
    let within_leeway = IdTokenSpec { iat: Some(now - 3600), exp: Some(now - 20), ..Default::default() };
    login_with(&fake, &client, within_leeway).await.expect("20 s of skew is tolerated");
    let future = IdTokenSpec { iat: Some(now + 600), exp: Some(now + 4200), ..Default::default() };
    assert_invalid(login_with(&fake, &client, future).await, "future");
}

#[tokio::test]
async fn alg_none_is_rejected_before_any_key_lookup() {
    let (fake, client) = setup().await;
    let spec = IdTokenSpec { signing: Signing::AlgNone, ..Default::default() };
    assert_invalid(login_with(&fake, &client, spec).await, "algorithm not allowed");
    assert_eq!(fake.jwks_requests(), 0);
}

#[tokio::test]
async fn hs256_signed_with_the_public_key_is_rejected() {
    let (fake, client) = setup().await;
    let secret = FakeIdp::public_key_pem().as_bytes().to_vec();
    let spec = IdTokenSpec { signing: Signing::Hs256(secret), ..Default::default() };
    assert_invalid(login_with(&fake, &client, spec).await, "algorithm not allowed");
    assert_eq!(fake.jwks_requests(), 0);
}

#[tokio::test]
async fn tampered_payload_fails_the_signature() {
    let (fake, client) = setup().await;
    let claims = fake.claims_for(&IdTokenSpec::default(), Some("n"));
    let token = fake.sign_id_token(&claims, &Signing::Primary);
    client.verify_id_token(&token, "n").await.expect("untampered token verifies");

    let mut forged = claims.clone();
    forged["sub"] = json!("admin");
    let forged_token = fake.sign_id_token(&forged, &Signing::Primary);
    let parts: Vec<&str> = token.split('.').collect();
    let forged_parts: Vec<&str> = forged_token.split('.').collect();
    let spliced = format!("{}.{}.{}", parts[0], forged_parts[1], parts[2]);
    assert_invalid(client.verify_id_token(&spliced, "n").await, "signature");
    assert_invalid(client.verify_id_token("not-a-jwt", "n").await, "malformed");
}

#[tokio::test]
async fn rotated_key_is_found_by_refreshing_the_jwks() {
    let fake = FakeIdp::start().await;
    let client = OidcClient::new(config(&fake), http()).with_jwks_min_refresh(Duration::from_millis(100));
    login_with(&fake, &client, IdTokenSpec::default()).await.unwrap();
    assert_eq!(fake.jwks_requests(), 1);

    fake.publish_rotated_key();
    tokio::time::sleep(Duration::from_millis(150)).await;
    let claims = login_with(&fake, &client, IdTokenSpec { signing: Signing::Rotated, ..Default::default() }).await;
    assert_eq!(claims.unwrap().sub, "fake-user-1");
    assert_eq!(fake.jwks_requests(), 2, "the unknown kid caused one refresh");

    // Both keys now verify without further fetches.
    login_with(&fake, &client, IdTokenSpec::default()).await.unwrap();
    login_with(&fake, &client, IdTokenSpec { signing: Signing::Rotated, ..Default::default() }).await.unwrap();
    assert_eq!(fake.jwks_requests(), 2);
}

#[tokio::test]
async fn never_published_kid_is_rejected_after_a_refresh() {
    let fake = FakeIdp::start().await;
    let client = OidcClient::new(config(&fake), http()).with_jwks_min_refresh(Duration::ZERO);
    login_with(&fake, &client, IdTokenSpec::default()).await.unwrap();
    let spec = IdTokenSpec { signing: Signing::Unpublished, ..Default::default() };
    assert_invalid(login_with(&fake, &client, spec).await, "unknown key id");
    assert_eq!(fake.jwks_requests(), 2, "refreshed once, kid still unknown");
}

#[tokio::test]
async fn unknown_kid_refreshes_are_rate_limited() {
    let (fake, client) = setup().await; // default 30 s between refreshes
    login_with(&fake, &client, IdTokenSpec::default()).await.unwrap();
    for _ in 0..5 {
        let spec = IdTokenSpec { signing: Signing::Unpublished, ..Default::default() };
        assert_invalid(login_with(&fake, &client, spec).await, "unknown key id");
    }
    // Even a key that was since published waits for the interval.
    fake.publish_rotated_key();
    let spec = IdTokenSpec { signing: Signing::Rotated, ..Default::default() };
    assert_invalid(login_with(&fake, &client, spec).await, "unknown key id");
    assert_eq!(fake.jwks_requests(), 1, "kid spraying must not hammer the provider");

    // A fresh client (empty cache) fetches on first use and finds the rotated key.
    let fresh = OidcClient::new(config(&fake), http());
    let spec = IdTokenSpec { signing: Signing::Rotated, ..Default::default() };
    login_with(&fake, &fresh, spec).await.expect("fresh JWKS has the rotated key");
}

#[tokio::test]
async fn email_verified_passes_through() {
    let (fake, client) = setup().await;
    let cases = [
        (Some(json!(false)), false),
        (Some(json!("false")), false),
        (Some(json!("true")), true),
        (Some(json!(true)), true),
        (None, false),
    ];
    for (value, expected) in cases {
        let spec = IdTokenSpec { email_verified: value.clone(), ..Default::default() };
        let claims = login_with(&fake, &client, spec).await.unwrap();
        assert_eq!(claims.email_verified, expected, "email_verified = {value:?}");
        assert_eq!(claims.email.as_deref(), Some("user@example.com"));
    }
    let spec = IdTokenSpec { email: None, name: None, picture: None, email_verified: None, ..Default::default() };
    let claims = login_with(&fake, &client, spec).await.unwrap();
    assert_eq!((claims.email, claims.name, claims.picture, claims.email_verified), (None, None, None, false));
}

#[tokio::test]
async fn discovery_problems_are_discovery_errors() {
    let fake = FakeIdp::start().await;
    // The document's issuer must be the configured one.
    let cfg = OidcConfig {
        issuer: "https://accounts.google.com".into(),
        discovery_url: fake.discovery_url(),
        ..config(&fake)
    };
    let client = OidcClient::new(cfg, http());
    assert!(matches!(client.authorization_request(REDIRECT).await, Err(OidcError::Discovery(_))));

    // Nothing listening.
    let dead = format!("http://{}", nexus_testkit::unreachable_addr());
    let client = OidcClient::new(OidcConfig { issuer: dead, ..config(&fake) }, http());
    let err = client.authorization_request(REDIRECT).await.unwrap_err();
    assert!(matches!(err, OidcError::Discovery(_)), "{err:?}");
    let kernel = err.into_kernel_error("google");
    assert_eq!(kernel.kind(), nexus_kernel::ErrorKind::Unavailable);
    assert_eq!(kernel.code(), "service.unavailable");

    // Plain HTTP to a non-loopback host is refused without a request.
    let cfg = OidcConfig { issuer: "http://idp.example.com".into(), ..config(&fake) };
    let client = OidcClient::new(cfg, http());
    assert!(matches!(client.authorization_request(REDIRECT).await, Err(OidcError::Discovery(_))));
}

#[tokio::test]
async fn login_errors_map_to_unauthenticated_with_provider() {
    let (fake, client) = setup().await;
    let err =
        login_with(&fake, &client, IdTokenSpec { nonce: Some("x".into()), ..Default::default() }).await.unwrap_err();
    let kernel = err.into_kernel_error(client.provider());
    assert_eq!(kernel.kind(), nexus_kernel::ErrorKind::Unauthenticated);
    assert_eq!(kernel.code(), "auth.oauth_failed");
    assert_eq!(kernel.param("provider"), Some("google"));
}

/// Through the platform's outbound client: the fake on 127.0.0.1 is refused unless allowlisted,
/// both as an IP literal (the guard) and by a name resolving to it (the client's resolver).
#[tokio::test]
async fn outbound_client_refuses_internal_providers_unless_allowlisted() {
    use nexus_platform::outbound::{OutboundClient, OutboundConfig};
    nexus_testkit::init_tracing();
    let fake = FakeIdp::start().await;
    let strict = OutboundClient::new(&OutboundConfig::default()).unwrap();
    let client = OidcClient::new(config(&fake), strict.http().clone()).with_endpoint_guard(strict.url_guard());
    let err = client.authorization_request(REDIRECT).await.unwrap_err();
    assert!(matches!(err, OidcError::Discovery(ref m) if m.contains("refused")), "{err:?}");

    let by_name = OidcConfig {
        discovery_url: format!("{}/.well-known/openid-configuration", fake.issuer.replace("127.0.0.1", "localhost")),
        ..config(&fake)
    };
    let client = OidcClient::new(by_name.clone(), strict.http().clone()).with_endpoint_guard(strict.url_guard());
    assert!(matches!(client.authorization_request(REDIRECT).await, Err(OidcError::Discovery(_))));

    let allowed =
        OutboundClient::new(&OutboundConfig { allow_private_cidrs: vec!["127.0.0.0/8".into()], ..Default::default() })
            .unwrap();
    let client = OidcClient::new(config(&fake), allowed.http().clone()).with_endpoint_guard(allowed.url_guard());
    let claims = login_with(&fake, &client, IdTokenSpec::default()).await.unwrap();
    assert!(!claims.sub.is_empty());
    let client = OidcClient::new(by_name, allowed.http().clone()).with_endpoint_guard(allowed.url_guard());
    client.authorization_request(REDIRECT).await.expect("the same name passes once allowlisted");
}
