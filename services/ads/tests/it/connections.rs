//! Connections through the OAuth round trip (the local sandbox here), accounts chosen,
//! disconnect, the expiry watch, and the refusals.

use nexus_platform::identity::Role;
use nexus_proto::nexus::ads::v1 as pb;

use crate::support::{REDIRECT, Service, code, code_and_state};

#[tokio::test]
async fn a_local_connection_completes_with_sealed_tokens_and_its_accounts() {
    let s = Service::start().await;
    let admin = s.admin();
    let c = s.connect_local(&admin).await;
    assert_eq!((c.provider.as_str(), c.status.as_str()), ("local", "active"));
    assert!(c.id.starts_with("conn_"));
    let kinds: Vec<&str> = c.accounts.iter().map(|a| a.kind.as_str()).collect();
    for k in ["ad_account", "page", "instagram", "advertiser", "channel"] {
        assert!(kinds.contains(&k), "{kinds:?}");
    }
    assert!(c.token_expires_at.is_some());
    // The token is stored sealed: the code the sandbox issued never appears in clear.
    let stored: String =
        sqlx::query_scalar("SELECT credentials FROM ads.connections").fetch_one(&s.admin_pool).await.unwrap();
    assert!(!stored.contains("local-"), "{stored}");
    // Pending authorizations are used up.
    assert_eq!(s.scalar("SELECT count(*) FROM ads.oauth_states").await, 0);

    // Connecting the same platform user again renews the one connection.
    let again = s.connect_local(&admin).await;
    assert_eq!(again.id, c.id);
    let mut client = s.client().await;
    let list = client.list_connections(admin.req(pb::ListRequest::default())).await.unwrap().into_inner();
    assert_eq!(list.connections.len(), 1);
}

#[tokio::test]
async fn a_state_is_used_once_by_the_workspace_that_started_it() {
    let s = Service::start().await;
    let admin = s.admin();
    let other = s.admin();
    let mut client = s.client().await;
    let started = client
        .start_connection(
            admin.req(pb::StartConnectionRequest { provider: "local".into(), redirect_uri: REDIRECT.into() }),
        )
        .await
        .unwrap()
        .into_inner();
    let (code_, state) = code_and_state(&started.authorize_url);
    let complete = |state: &str, provider: &str| pb::CompleteConnectionRequest {
        provider: provider.into(),
        code: code_.clone(),
        state: state.into(),
    };
    // Another workspace cannot finish it (and does not use it up).
    let e = client.complete_connection(other.req(complete(&state, "local"))).await.unwrap_err();
    assert_eq!(code(&e), "ads.oauth_state_invalid");
    // Nor may it be finished as another platform.
    let e = client.complete_connection(admin.req(complete(&state, "meta"))).await.unwrap_err();
    assert_eq!(code(&e), "ads.oauth_state_invalid");
    // The provider mismatch used the state up: a state is single-use whatever happens.
    let e = client.complete_connection(admin.req(complete(&state, "local"))).await.unwrap_err();
    assert_eq!(code(&e), "ads.oauth_state_invalid");
    assert_eq!(s.scalar("SELECT count(*) FROM ads.connections").await, 0);
    let e = client.complete_connection(admin.req(complete("made-up", "local"))).await.unwrap_err();
    assert_eq!((e.code(), code(&e)), (tonic::Code::InvalidArgument, "ads.oauth_state_invalid".to_owned()));
}

#[tokio::test]
async fn bad_starts_are_refused_with_a_clear_code_and_nothing_stored() {
    let s = Service::start_with(&[("NEXUS_GOOGLE__CLIENT_ID", String::new())]).await;
    let admin = s.admin();
    let mut client = s.client().await;
    let start = |provider: &str, redirect: &str| pb::StartConnectionRequest {
        provider: provider.into(),
        redirect_uri: redirect.into(),
    };
    let e = client.start_connection(admin.req(start("myspace", REDIRECT))).await.unwrap_err();
    assert_eq!((e.code(), code(&e)), (tonic::Code::InvalidArgument, "ads.provider_unknown".to_owned()));
    let e = client.start_connection(admin.req(start("local", "https://evil.example/cb"))).await.unwrap_err();
    assert_eq!(code(&e), "ads.redirect_not_allowed");
    // Google has no app configured here.
    let e = client.start_connection(admin.req(start("google", REDIRECT))).await.unwrap_err();
    assert_eq!((e.code(), code(&e)), (tonic::Code::FailedPrecondition, "ads.provider_not_configured".to_owned()));
    // Members use connections; admins make them.
    let member = s.as_role(&admin, Role::Member);
    let e = client.start_connection(member.req(start("local", REDIRECT))).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::PermissionDenied);
    assert_eq!(s.scalar("SELECT count(*) FROM ads.oauth_states").await, 0);
}

#[tokio::test]
async fn the_sandbox_is_off_when_configured_off() {
    let s = Service::start_with(&[("NEXUS_SANDBOX__ENABLED", "false".into())]).await;
    let admin = s.admin();
    let e = s
        .client()
        .await
        .start_connection(
            admin.req(pb::StartConnectionRequest { provider: "local".into(), redirect_uri: REDIRECT.into() }),
        )
        .await
        .unwrap_err();
    assert_eq!(code(&e), "ads.sandbox_disabled");
}

#[tokio::test]
async fn accounts_are_chosen_among_the_connections_own_and_other_workspaces_see_nothing() {
    let s = Service::start().await;
    let admin = s.admin();
    let c = s.connect_local(&admin).await;
    let mut client = s.client().await;
    let chosen = client
        .choose_accounts(
            admin.req(pb::ChooseAccountsRequest { id: c.id.clone(), external_ids: vec!["act_local_1".into()] }),
        )
        .await
        .unwrap()
        .into_inner();
    let on: Vec<&str> = chosen.accounts.iter().filter(|a| a.chosen).map(|a| a.external_id.as_str()).collect();
    assert_eq!(on, ["act_local_1"]);
    let ad = chosen.accounts.iter().find(|a| a.external_id == "act_local_1").unwrap();
    assert_eq!((ad.currency.as_str(), ad.time_zone.as_str()), ("USD", "America/New_York"));

    let e = client
        .choose_accounts(
            admin.req(pb::ChooseAccountsRequest { id: c.id.clone(), external_ids: vec!["act_someone_else".into()] }),
        )
        .await
        .unwrap_err();
    assert_eq!(code(&e), "ads.account_unknown");
    // The refused choice changed nothing.
    let still = client.get_connection(admin.req(pb::GetByIdRequest { id: c.id.clone() })).await.unwrap().into_inner();
    assert_eq!(still.accounts.iter().filter(|a| a.chosen).count(), 1);

    let other = s.admin();
    let e = client.get_connection(other.req(pb::GetByIdRequest { id: c.id.clone() })).await.unwrap_err();
    assert_eq!((e.code(), code(&e)), (tonic::Code::NotFound, "ads.connection_not_found".to_owned()));
    let e = client.disconnect(other.req(pb::GetByIdRequest { id: c.id.clone() })).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::NotFound);
    let e = client.get_connection(admin.req(pb::GetByIdRequest { id: "conn_nonsense".into() })).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::NotFound);
}

#[tokio::test]
async fn disconnecting_forgets_the_tokens_and_accounts() {
    let s = Service::start().await;
    let admin = s.admin();
    let c = s.connect_local(&admin).await;
    let mut client = s.client().await;
    let gone = client.disconnect(admin.req(pb::GetByIdRequest { id: c.id.clone() })).await.unwrap().into_inner();
    assert_eq!(gone.status, "disconnected");
    assert_eq!(s.scalar("SELECT count(*) FROM ads.connection_accounts").await, 0);
    assert_eq!(s.scalar("SELECT count(*) FROM ads.connections WHERE credentials <> ''").await, 0);
    let e = client.get_connection(admin.req(pb::GetByIdRequest { id: c.id.clone() })).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::NotFound);
    assert!(
        client
            .list_connections(admin.req(pb::ListRequest::default()))
            .await
            .unwrap()
            .into_inner()
            .connections
            .is_empty()
    );
}

#[tokio::test]
async fn a_token_expiring_in_six_days_is_reported_once_then_expired() {
    let s = Service::start().await;
    let admin = s.admin();
    let c = s.connect_local(&admin).await;
    let app = &s.app;
    // Sixty days left: nothing to say.
    assert_eq!(app.watch_expiry().await.unwrap(), Default::default());

    s.exec("UPDATE ads.connections SET token_expires_at = now() + interval '6 days'").await;
    let round = app.watch_expiry().await.unwrap();
    assert_eq!((round.warned, round.expired), (1, 0));
    // Once: later rounds say nothing more for the same token.
    assert_eq!(app.watch_expiry().await.unwrap().warned, 0);
    assert_eq!(s.events("nexus.ads.connection.expiring").await, 1);
    let mut client = s.client().await;
    let shown = client.get_connection(admin.req(pb::GetByIdRequest { id: c.id.clone() })).await.unwrap().into_inner();
    assert_eq!(shown.status, "expiring");

    s.exec("UPDATE ads.connections SET token_expires_at = now() - interval '1 minute'").await;
    assert_eq!(app.watch_expiry().await.unwrap().expired, 1);
    assert_eq!(app.watch_expiry().await.unwrap().expired, 0);
    assert_eq!(s.events("nexus.ads.connection.expired").await, 1);
    assert_eq!(s.events("nexus.ads.connection.expiring").await, 1);
    let shown = client.get_connection(admin.req(pb::GetByIdRequest { id: c.id.clone() })).await.unwrap().into_inner();
    assert_eq!(shown.status, "expired");

    // Connecting again renews the token and a later expiry is reported afresh.
    let renewed = s.connect_local(&admin).await;
    assert_eq!((renewed.id.as_str(), renewed.status.as_str()), (c.id.as_str(), "active"));
    s.exec("UPDATE ads.connections SET token_expires_at = now() + interval '6 days'").await;
    assert_eq!(app.watch_expiry().await.unwrap().warned, 1);
    assert_eq!(s.events("nexus.ads.connection.expiring").await, 2);
}

/// Google's consent asks for offline access with PKCE; the watch renews its hourly token with
/// the refresh token (no notice), reports a grant Google no longer honours as expiring, and
/// disconnecting revokes the grant at Google.
#[tokio::test]
async fn a_google_connection_is_renewed_by_the_watch_and_revoked_at_google_on_disconnect() {
    use base64::Engine;
    use sha2::{Digest, Sha256};
    let s = Service::start().await;
    let admin = s.admin();
    let started = s.begin(&admin, "google").await;
    let url = reqwest::Url::parse(&started.authorize_url).unwrap();
    let q: std::collections::HashMap<String, String> = url.query_pairs().into_owned().collect();
    let get = |k: &str| q.get(k).map(String::as_str).unwrap_or("");
    assert_eq!(
        (get("access_type"), get("prompt"), get("code_challenge_method"), get("state")),
        ("offline", "consent", "S256", started.state.as_str())
    );
    assert!(get("scope").contains("https://www.googleapis.com/auth/youtube.upload"), "{q:?}");
    let c = s.complete(&admin, "google", nexus_testkit::youtube::TEST_CODE, &started.state).await.unwrap();
    // The verifier sent with the code is the one the challenge was made from.
    let verifiers = s.youtube.verifiers();
    assert_eq!(verifiers.len(), 1);
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(verifiers[0].as_bytes()));
    assert_eq!(challenge, get("code_challenge"));
    assert_eq!(c.status, "active");
    assert!(c.accounts.iter().any(|a| a.external_id == nexus_testkit::youtube::TEST_CHANNEL_ID && a.chosen));

    // The hour is nearly up: renewed with the refresh token, nothing to tell the user.
    s.youtube.rotate_token("ya29.the-next-hour");
    s.exec("UPDATE ads.connections SET token_expires_at = now() + interval '5 minutes'").await;
    let round = s.app.watch_expiry().await.unwrap();
    assert_eq!((round.refreshed, round.warned, round.expired), (1, 0, 0));
    assert_eq!(
        s.scalar("SELECT count(*) FROM ads.connections WHERE token_expires_at > now() + interval '50 minutes'").await,
        1
    );
    assert_eq!(s.events("nexus.ads.connection.expiring").await, 0);
    let mut client = s.client().await;
    let shown = client.get_connection(admin.req(pb::GetByIdRequest { id: c.id.clone() })).await.unwrap().into_inner();
    assert_eq!(shown.status, "active");

    // The user revoked access at Google: the renewal is refused, so the connection is reported.
    s.youtube.revoke();
    s.exec("UPDATE ads.connections SET token_expires_at = now() + interval '5 minutes'").await;
    let round = s.app.watch_expiry().await.unwrap();
    assert_eq!((round.refreshed, round.warned), (0, 1));
    assert_eq!(s.events("nexus.ads.connection.expiring").await, 1);
    let shown = client.get_connection(admin.req(pb::GetByIdRequest { id: c.id.clone() })).await.unwrap().into_inner();
    assert_eq!(shown.status, "expiring");

    // Connected again (a new consent), then disconnected: the grant is revoked at Google.
    let again = s.begin(&admin, "google").await;
    let c2 = s.complete(&admin, "google", nexus_testkit::youtube::TEST_CODE, &again.state).await.unwrap();
    assert_eq!((c2.id.as_str(), c2.status.as_str()), (c.id.as_str(), "active"));
    assert!(s.youtube.revocations().is_empty());
    let gone = client.disconnect(admin.req(pb::GetByIdRequest { id: c.id.clone() })).await.unwrap().into_inner();
    assert_eq!(gone.status, "disconnected");
    assert_eq!(s.youtube.revocations(), ["1//fake-google-refresh"]);
    // Nothing is left to renew or report.
    s.exec("UPDATE ads.connections SET token_expires_at = now() + interval '5 minutes'").await;
    assert_eq!(s.app.watch_expiry().await.unwrap(), Default::default());
}
