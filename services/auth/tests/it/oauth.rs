//! OAuth sign-in (`OAuthStart` / `OAuthCallback`) against the fake OpenID provider.

use std::collections::HashMap;

use nexus_kernel::UserId;
use nexus_proto::nexus::auth::v1 as pb;
use nexus_testkit::oidc::{FakeIdp, IdTokenSpec, Signing};
use serde_json::json;
use uuid::Uuid;

use crate::support::*;

/// In the default `oauth.redirect_allowlist`.
const REDIRECT: &str = "http://127.0.0.1:3000/auth/callback";

/// The auth service with `google` and `facebook` both pointing at one fake provider.
async fn setup() -> (Auth, FakeIdp) {
    let idp = FakeIdp::start().await;
    let discovery = idp.discovery_url();
    let mut env = Vec::new();
    for (provider, prefix) in
        [("google", "NEXUS_OAUTH__PROVIDERS__GOOGLE__"), ("facebook", "NEXUS_OAUTH__PROVIDERS__FACEBOOK__")]
    {
        for (key, value) in [
            ("PROVIDER", provider),
            ("ISSUER", idp.issuer.as_str()),
            ("CLIENT_ID", idp.client_id.as_str()),
            ("CLIENT_SECRET", idp.client_secret.as_str()),
            ("DISCOVERY_URL", discovery.as_str()),
        ] {
            env.push((format!("{prefix}{key}"), value.to_owned()));
        }
    }
    let extra: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let auth = start_auth(&extra).await;

    // The nested map keys really loaded from the environment.
    let google = &auth.config.oauth.providers["google"];
    assert_eq!(google.provider, "google");
    assert_eq!(google.issuer, idp.issuer);
    assert_eq!(google.client_id, idp.client_id);
    assert_eq!(google.client_secret, idp.client_secret);
    assert_eq!(google.discovery_url, discovery);
    assert_eq!(auth.config.oauth.providers["facebook"].provider, "facebook");
    assert!(auth.config.oauth.redirect_allowlist.iter().any(|u| u == REDIRECT));
    (auth, idp)
}

fn spec(sub: &str, email: &str, verified: bool) -> IdTokenSpec {
    IdTokenSpec {
        sub: sub.into(),
        email: Some(email.into()),
        email_verified: Some(json!(verified)),
        name: Some("Gabriela Souza".into()),
        ..Default::default()
    }
}

fn subject() -> String {
    format!("google-{}", Uuid::new_v4().simple())
}

async fn start(auth: &Auth, provider: &str, redirect_uri: &str) -> Result<pb::OAuthStartResponse, tonic::Status> {
    auth.client()
        .o_auth_start(pb::OAuthStartRequest { provider: provider.into(), redirect_uri: redirect_uri.into() })
        .await
        .map(tonic::Response::into_inner)
}

async fn callback(auth: &Auth, provider: &str, code: &str, state: &str) -> Result<pb::AuthSession, tonic::Status> {
    auth.client()
        .o_auth_callback(pb::OAuthCallbackRequest {
            provider: provider.into(),
            code: code.into(),
            state: state.into(),
            link: false,
            client: Some(client_info()),
            ..Default::default()
        })
        .await
        .map(tonic::Response::into_inner)
}

/// Start, the user consents at the fake with `spec`, callback.
async fn sign_in(auth: &Auth, idp: &FakeIdp, spec: IdTokenSpec) -> Result<pb::AuthSession, tonic::Status> {
    let started = start(auth, "google", REDIRECT).await.expect("oauth start");
    let code = idp.issue_code(&started.authorization_url, spec);
    callback(auth, "google", &code, &started.state).await
}

fn uuid_of(user: &pb::AuthSession) -> Uuid {
    UserId::parse(&user.user.as_ref().unwrap().id).expect("user id").as_uuid()
}

fn user_id(s: &pb::AuthSession) -> &str {
    &s.user.as_ref().unwrap().id
}

/// `(user_id, email)` of each identity with `subject`.
async fn identities(auth: &Auth, subject: &str) -> Vec<(Uuid, Option<String>)> {
    let admin = auth.db.admin_pool().await;
    sqlx::query_as("SELECT user_id, email FROM auth.oauth_identities WHERE provider = 'google' AND subject = $1")
        .bind(subject)
        .fetch_all(&admin)
        .await
        .unwrap()
}

async fn users_with_email(auth: &Auth, email: &str) -> i64 {
    let admin = auth.db.admin_pool().await;
    sqlx::query_scalar("SELECT count(*) FROM auth.users WHERE email = $1")
        .bind(email.to_lowercase())
        .fetch_one(&admin)
        .await
        .unwrap()
}

#[tokio::test]
async fn oauth_new_user_gets_verified_account_and_workspace_then_signs_in_again() {
    let (auth, idp) = setup().await;
    let started = start(&auth, "google", REDIRECT).await.unwrap();
    assert!(!started.state.is_empty());
    assert!(
        started.authorization_url.starts_with(&format!("{}/authorize?", idp.issuer)),
        "{}",
        started.authorization_url
    );
    let q: HashMap<String, String> =
        url::Url::parse(&started.authorization_url).unwrap().query_pairs().into_owned().collect();
    assert_eq!(q["state"], started.state);
    assert_eq!(q["redirect_uri"], REDIRECT);
    assert_eq!(q["client_id"], idp.client_id);
    assert_eq!(q["code_challenge_method"], "S256");
    assert!(!q["nonce"].is_empty());

    let sub = subject();
    let email = unique_email("gabi");
    let code = idp.issue_code(&started.authorization_url, spec(&sub, &email, true));
    let session = callback(&auth, "google", &code, &started.state).await.unwrap();
    let user = session.user.as_ref().unwrap();
    assert!(user.id.starts_with("usr_"));
    assert_eq!(user.email, email);
    assert!(user.email_verified, "the provider verified the address");
    assert_eq!(user.name, "Gabriela Souza");
    let ws = session.workspace.as_ref().unwrap();
    assert_eq!(ws.role, "owner");
    assert!(!session.access_token.is_empty() && !session.refresh_token.is_empty());
    let me = auth.client().get_me(authed(pb::Empty {}, &session.access_token)).await.unwrap().into_inner();
    assert_eq!(me.user.unwrap().id, user.id);

    let admin = auth.db.admin_pool().await;
    let owned: Vec<Uuid> = sqlx::query_scalar("SELECT id FROM auth.workspaces WHERE owner_id = $1")
        .bind(uuid_of(&session))
        .fetch_all(&admin)
        .await
        .unwrap();
    assert_eq!(owned.len(), 1, "a new workspace owned by the new user");
    assert_eq!(ws.id, nexus_kernel::WorkspaceId::from_uuid(owned[0]).to_string());
    assert_eq!(identities(&auth, &sub).await, vec![(uuid_of(&session), Some(email.clone()))]);

    // Same Google subject again (even with another address): same user, no new workspace.
    let again = sign_in(&auth, &idp, spec(&sub, &unique_email("renamed"), true)).await.unwrap();
    assert_eq!(user_id(&again), user.id);
    assert_eq!(again.workspace.as_ref().unwrap().id, ws.id);
    assert_ne!(again.session_id, session.session_id);
    assert_eq!(users_with_email(&auth, &email).await, 1);
    let workspaces: i64 = sqlx::query_scalar("SELECT count(*) FROM auth.workspaces WHERE owner_id = $1")
        .bind(uuid_of(&session))
        .fetch_one(&admin)
        .await
        .unwrap();
    assert_eq!(workspaces, 1);
}

#[tokio::test]
async fn oauth_verified_email_links_existing_password_account() {
    let (auth, idp) = setup().await;
    let email = unique_email("ana");
    let signed = auth.sign_up(&email).await;
    auth.verify(&email).await;
    let sub = subject();

    // The provider spells the address differently; it is the same account.
    let session = sign_in(&auth, &idp, spec(&sub, &email.to_uppercase(), true)).await.unwrap();
    assert_eq!(user_id(&session), user_id(&signed));
    assert_eq!(session.workspace.as_ref().unwrap().id, signed.workspace.as_ref().unwrap().id);
    assert_eq!(identities(&auth, &sub).await, vec![(uuid_of(&signed), Some(email.clone()))]);
    assert_eq!(users_with_email(&auth, &email).await, 1);
    // The password still works.
    assert_eq!(user_id(&auth.login(&email, PASSWORD).await.unwrap()), user_id(&signed));
}

#[tokio::test]
async fn oauth_unverified_email_does_not_link_existing_account() {
    let (auth, idp) = setup().await;
    let email = unique_email("ana");
    auth.sign_up(&email).await;
    let sub = subject();

    // The local account has not proven its address: no sign-in attaches to it, whatever the
    // provider says about its own.
    for verified in [true, false] {
        let err = sign_in(&auth, &idp, spec(&sub, &email, verified)).await.unwrap_err();
        assert_eq!(err.code(), tonic::Code::AlreadyExists, "verified at the provider: {verified}");
        assert_eq!(code_of(&err), "auth.oauth_local_unverified");
        assert!(identities(&auth, &sub).await.is_empty(), "nothing linked");
        assert_eq!(users_with_email(&auth, &email).await, 1, "no second account");
    }
    auth.verify(&email).await;

    let err = sign_in(&auth, &idp, spec(&sub, &email, false)).await.unwrap_err();
    assert_eq!(code_of(&err), "auth.oauth_link_required", "sign in with the password and link explicitly");
    assert!(identities(&auth, &sub).await.is_empty(), "nothing linked");
    assert_eq!(users_with_email(&auth, &email).await, 1, "no second account");

    // Nor is the claim left out treated as verified.
    let unsaid = IdTokenSpec { email_verified: None, ..spec(&sub, &email, true) };
    let err = sign_in(&auth, &idp, unsaid).await.unwrap_err();
    assert_eq!(code_of(&err), "auth.oauth_link_required");
    assert!(identities(&auth, &sub).await.is_empty());

    // No account yet and an unverified address: no account is made for it either, or anyone
    // could claim an address before its owner signs up.
    let fresh = unique_email("nobody-yet");
    let err = sign_in(&auth, &idp, spec(&subject(), &fresh, false)).await.unwrap_err();
    assert_eq!(code_of(&err), "auth.oauth_email_unverified");
    assert_eq!(users_with_email(&auth, &fresh).await, 0);
}

#[tokio::test]
async fn oauth_state_is_single_use_and_bound_to_its_provider() {
    let (auth, idp) = setup().await;
    let started = start(&auth, "google", REDIRECT).await.unwrap();
    let code = idp.issue_code(&started.authorization_url, spec(&subject(), &unique_email("s"), true));
    callback(&auth, "google", &code, &started.state).await.unwrap();

    // Used twice (with a fresh, valid code): refused.
    let code = idp.issue_code(&started.authorization_url, spec(&subject(), &unique_email("s"), true));
    let err = callback(&auth, "google", &code, &started.state).await.unwrap_err();
    assert_eq!(code_of(&err), "auth.oauth_state_invalid");

    // Made up.
    let err = callback(&auth, "google", &code, "made-up-state-ZmFrZS1zdGF0ZS12YWx1ZQ").await.unwrap_err();
    assert_eq!(code_of(&err), "auth.oauth_state_invalid");
    let err = callback(&auth, "google", &code, "").await.unwrap_err();
    assert_eq!(code_of(&err), "auth.oauth_state_invalid");

    // Started with google, called back as facebook: refused, and the state is spent.
    let started = start(&auth, "google", REDIRECT).await.unwrap();
    let code = idp.issue_code(&started.authorization_url, spec(&subject(), &unique_email("s"), true));
    let err = callback(&auth, "facebook", &code, &started.state).await.unwrap_err();
    assert_eq!(code_of(&err), "auth.oauth_state_invalid");
    let err = callback(&auth, "google", &code, &started.state).await.unwrap_err();
    assert_eq!(code_of(&err), "auth.oauth_state_invalid");
    assert_eq!(idp.token_requests(), 1, "only the first callback reached the provider");
}

#[tokio::test]
async fn oauth_redirect_must_be_allowed_and_provider_known() {
    let (auth, _idp) = setup().await;
    for bad in ["https://evil.example.com/auth/callback", "http://127.0.0.1:3000/auth/callback?next=/x", ""] {
        let err = start(&auth, "google", bad).await.unwrap_err();
        assert_eq!(err.code(), tonic::Code::InvalidArgument, "{bad}");
        assert_eq!(code_of(&err), "auth.invalid_url", "{bad}");
    }

    let err = start(&auth, "github", REDIRECT).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert_eq!(code_of(&err), "auth.oauth_unknown_provider");
    let err = callback(&auth, "github", "code", "state").await.unwrap_err();
    assert_eq!(code_of(&err), "auth.oauth_unknown_provider");
    let admin = auth.db.admin_pool().await;
    let states: i64 = sqlx::query_scalar("SELECT count(*) FROM auth.oauth_states").fetch_one(&admin).await.unwrap();
    assert_eq!(states, 0, "refused starts keep no state");
}

#[tokio::test]
async fn oauth_wrong_nonce_or_forged_id_token_fails() {
    let (auth, idp) = setup().await;
    let email = unique_email("forged");
    let sub = subject();
    let cases = [
        ("wrong nonce", IdTokenSpec { nonce: Some("attacker-nonce".into()), ..spec(&sub, &email, true) }),
        ("alg none", IdTokenSpec { signing: Signing::AlgNone, ..spec(&sub, &email, true) }),
        (
            "HS256 keyed with the public key",
            IdTokenSpec {
                signing: Signing::Hs256(FakeIdp::public_key_pem().as_bytes().to_vec()),
                ..spec(&sub, &email, true)
            },
        ),
        ("unpublished key", IdTokenSpec { signing: Signing::Unpublished, ..spec(&sub, &email, true) }),
        ("another audience", IdTokenSpec { aud: Some(json!("someone-else")), ..spec(&sub, &email, true) }),
        ("another issuer", IdTokenSpec { iss: Some("https://evil.example.com".into()), ..spec(&sub, &email, true) }),
    ];
    for (what, spec) in cases {
        let err = sign_in(&auth, &idp, spec).await.unwrap_err();
        assert_eq!(err.code(), tonic::Code::Unauthenticated, "{what}");
        assert_eq!(code_of(&err), "auth.oauth_failed", "{what}");
    }
    assert!(identities(&auth, &sub).await.is_empty());
    assert_eq!(users_with_email(&auth, &email).await, 0);
}

#[tokio::test]
async fn oauth_signed_in_user_links_identity_with_another_email() {
    let (auth, idp) = setup().await;
    let email = unique_email("ana");
    let signed = auth.sign_up(&email).await;
    let google_email = unique_email("ana.personal");
    let sub = subject();

    let started = auth
        .client()
        .o_auth_start(authed(
            pb::OAuthStartRequest { provider: "google".into(), redirect_uri: REDIRECT.into() },
            &signed.access_token,
        ))
        .await
        .unwrap()
        .into_inner();
    let code = idp.issue_code(&started.authorization_url, spec(&sub, &google_email, true));
    let session = auth
        .client()
        .o_auth_callback(pb::OAuthCallbackRequest {
            provider: "google".into(),
            code,
            state: started.state,
            link: true,
            client: Some(client_info()),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(user_id(&session), user_id(&signed));
    assert_eq!(session.user.as_ref().unwrap().email, email, "the account keeps its own address");
    assert_eq!(identities(&auth, &sub).await, vec![(uuid_of(&signed), Some(google_email.clone()))]);
    assert_eq!(users_with_email(&auth, &google_email).await, 0, "no account for the Google address");

    // From now on, signing in with Google alone lands on the same account.
    let later = sign_in(&auth, &idp, spec(&sub, &google_email, true)).await.unwrap();
    assert_eq!(user_id(&later), user_id(&signed));
}

#[tokio::test]
async fn oauth_linking_refuses_an_identity_owned_by_another_user() {
    let (auth, idp) = setup().await;
    let owner_email = unique_email("owner");
    let sub = subject();
    // The identity belongs to the account it created.
    let owner = sign_in(&auth, &idp, spec(&sub, &owner_email, true)).await.unwrap();
    let other = auth.sign_up(&unique_email("other")).await;

    let started = auth
        .client()
        .o_auth_start(authed(
            pb::OAuthStartRequest { provider: "google".into(), redirect_uri: REDIRECT.into() },
            &other.access_token,
        ))
        .await
        .unwrap()
        .into_inner();
    let code = idp.issue_code(&started.authorization_url, spec(&sub, &owner_email, true));
    let err = callback(&auth, "google", &code, &started.state).await.unwrap_err();
    assert_eq!(code_of(&err), "auth.oauth_already_linked");
    assert_eq!(identities(&auth, &sub).await, vec![(uuid_of(&owner), Some(owner_email))], "still the owner's");
}

/// `OAuthStart` with a bearer token (a link).
async fn start_link(auth: &Auth, token: &str) -> Result<pb::OAuthStartResponse, tonic::Status> {
    auth.client()
        .o_auth_start(authed(pb::OAuthStartRequest { provider: "google".into(), redirect_uri: REDIRECT.into() }, token))
        .await
        .map(tonic::Response::into_inner)
}

async fn states(auth: &Auth) -> i64 {
    let admin = auth.db.admin_pool().await;
    sqlx::query_scalar("SELECT count(*) FROM auth.oauth_states").fetch_one(&admin).await.unwrap()
}

#[tokio::test]
async fn oauth_link_needs_a_recently_authenticated_user_session_and_mails_the_user() {
    let (auth, idp) = setup().await;
    let email = unique_email("linker");
    let signed = auth.sign_up(&email).await;

    // An API key (its internal token) cannot start a link, whatever its scopes.
    for scopes in [&["read"][..], &["read", "write", "admin"][..]] {
        let key = auth.key_token(&signed.access_token, scopes).await;
        let err = start_link(&auth, &key).await.unwrap_err();
        assert_eq!(err.code(), tonic::Code::PermissionDenied, "{scopes:?}");
        assert_eq!(code_of(&err), "auth.user_session_required");
    }
    // A session whose password sign-in is older than ten minutes must re-authenticate first.
    let admin = auth.db.admin_pool().await;
    sqlx::query("UPDATE auth.sessions SET auth_time = now() - interval '11 minutes' WHERE family_id = $1::uuid")
        .bind(&signed.session_id)
        .execute(&admin)
        .await
        .unwrap();
    let err = start_link(&auth, &signed.access_token).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::PermissionDenied);
    assert_eq!(code_of(&err), "auth.reauthentication_required");
    assert_eq!(nexus_kernel::Error::from_status(&err).param("minutes"), Some("10"));
    // A refresh does not renew the authentication time.
    let refreshed = auth
        .client()
        .refresh(pb::RefreshRequest { refresh_token: signed.refresh_token.clone(), client: None })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        code_of(&start_link(&auth, &refreshed.access_token).await.unwrap_err()),
        "auth.reauthentication_required"
    );
    // Nor does switching workspaces.
    let ws = signed.workspace.as_ref().unwrap().id.clone();
    let switched = auth
        .client()
        .switch_workspace(authed(pb::IdRequest { id: ws }, &refreshed.access_token))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        code_of(&start_link(&auth, &switched.access_token).await.unwrap_err()),
        "auth.reauthentication_required"
    );
    assert_eq!(states(&auth).await, 0, "refused starts keep no state");

    // A fresh password sign-in may link; the user is told by mail.
    let fresh = auth.login(&email, PASSWORD).await.unwrap();
    let started = start_link(&auth, &fresh.access_token).await.unwrap();
    let sub = subject();
    let code = idp.issue_code(&started.authorization_url, spec(&sub, &unique_email("other"), true));
    callback(&auth, "google", &code, &started.state).await.unwrap();
    assert_eq!(identities(&auth, &sub).await.len(), 1);
    let mail = auth.last_mail(&email).await;
    // In the user's language (Portuguese, chosen at sign-up).
    assert_eq!(mail.subject, "Um método de login foi vinculado à sua conta");
    assert!(mail.body.contains("Google"), "{}", mail.body);

    // A session that signed in through the provider alone is not a re-authentication.
    let by_google = sign_in(&auth, &idp, spec(&sub, &unique_email("other"), true)).await.unwrap();
    assert_eq!(user_id(&by_google), user_id(&signed));
    assert_eq!(
        code_of(&start_link(&auth, &by_google.access_token).await.unwrap_err()),
        "auth.reauthentication_required"
    );
}

#[tokio::test]
async fn identities_are_listed_and_unlinked_but_never_the_last_way_in() {
    let (auth, idp) = setup().await;
    let list = |token: String| {
        let mut c = auth.client();
        async move { c.list_identities(authed(pb::Empty {}, &token)).await.map(tonic::Response::into_inner) }
    };
    let unlink = |token: String, id: String| {
        let mut c = auth.client();
        async move { c.unlink_identity(authed(pb::IdRequest { id }, &token)).await }
    };

    // An account made by Google has no password: its only identity stays.
    let google_email = unique_email("only-google");
    let g = sign_in(&auth, &idp, spec(&subject(), &google_email, true)).await.unwrap();
    let mine = list(g.access_token.clone()).await.unwrap();
    assert!(!mine.has_password);
    assert_eq!(mine.items.len(), 1);
    assert_eq!(mine.items[0].provider, "google");
    assert_eq!(mine.items[0].email, google_email);
    assert!(mine.items[0].id.starts_with("idn_"));
    let err = unlink(g.access_token.clone(), mine.items[0].id.clone()).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::FailedPrecondition);
    assert_eq!(code_of(&err), "auth.last_sign_in_method");
    assert_eq!(list(g.access_token.clone()).await.unwrap().items.len(), 1);

    // A password account with a linked identity may unlink it.
    let email = unique_email("pw");
    let signed = auth.sign_up(&email).await;
    let started = start_link(&auth, &signed.access_token).await.unwrap();
    let sub = subject();
    let code = idp.issue_code(&started.authorization_url, spec(&sub, &unique_email("g2"), true));
    callback(&auth, "google", &code, &started.state).await.unwrap();
    let linked = list(signed.access_token.clone()).await.unwrap();
    assert!(linked.has_password);
    assert_eq!(linked.items.len(), 1);

    // Someone else's identity, a malformed id and an API key: refused, nothing removed.
    let err = unlink(signed.access_token.clone(), mine.items[0].id.clone()).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::NotFound);
    let err = unlink(signed.access_token.clone(), "idn_not-an-id".into()).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::NotFound);
    let key = auth.key_token(&signed.access_token, &["read", "write", "admin"]).await;
    assert_eq!(list(key.clone()).await.unwrap_err().code(), tonic::Code::PermissionDenied);
    assert_eq!(unlink(key, linked.items[0].id.clone()).await.unwrap_err().code(), tonic::Code::PermissionDenied);
    assert_eq!(identities(&auth, &sub).await.len(), 1);
    assert_eq!(identities(&auth, &mine_subject(&auth, &google_email).await).await.len(), 1);

    unlink(signed.access_token.clone(), linked.items[0].id.clone()).await.unwrap();
    assert!(list(signed.access_token.clone()).await.unwrap().items.is_empty());
    assert!(identities(&auth, &sub).await.is_empty());
    // Signing in with that Google account no longer reaches this account.
    let again = sign_in(&auth, &idp, spec(&sub, &unique_email("g2"), true)).await.unwrap();
    assert_ne!(user_id(&again), user_id(&signed));
}

async fn mine_subject(auth: &Auth, email: &str) -> String {
    let admin = auth.db.admin_pool().await;
    sqlx::query_scalar("SELECT subject FROM auth.oauth_identities WHERE email = $1")
        .bind(email)
        .fetch_one(&admin)
        .await
        .unwrap()
}

#[tokio::test]
async fn an_mfa_user_signing_in_with_the_provider_must_pass_totp() {
    use crate::mfa::{base32_decode, now, totp};
    let (auth, idp) = setup().await;
    let email = unique_email("mfa-oauth");
    let signed = auth.sign_up(&email).await;
    auth.verify(&email).await;
    let mut c = auth.client();
    let enrol = c.enroll_totp(authed(pb::Empty {}, &signed.access_token)).await.unwrap().into_inner();
    let key = base32_decode(&enrol.secret);
    c.confirm_totp(authed(pb::CodeRequest { code: totp(&key, now(), 6) }, &signed.access_token)).await.unwrap();

    let sub = subject();
    let started = start(&auth, "google", REDIRECT).await.unwrap();
    let code = idp.issue_code(&started.authorization_url, spec(&sub, &email, true));
    let err = callback(&auth, "google", &code, &started.state).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unauthenticated);
    assert_eq!(code_of(&err), "auth.mfa_required");
    assert!(identities(&auth, &sub).await.is_empty(), "nothing linked before the second factor");

    let with = |code: String, state: String, totp_code: String| {
        let mut c = auth.client();
        async move {
            c.o_auth_callback(pb::OAuthCallbackRequest {
                provider: "google".into(),
                code,
                state,
                totp_code,
                client: Some(client_info()),
                ..Default::default()
            })
            .await
            .map(tonic::Response::into_inner)
        }
    };
    // Another code with the waiting state, or a wrong TOTP code: refused.
    let err = with("another-code".into(), started.state.clone(), totp(&key, now() + 30, 6)).await.unwrap_err();
    assert_eq!(code_of(&err), "auth.oauth_state_invalid");
    let started = start(&auth, "google", REDIRECT).await.unwrap();
    let code = idp.issue_code(&started.authorization_url, spec(&sub, &email, true));
    assert_eq!(code_of(&callback(&auth, "google", &code, &started.state).await.unwrap_err()), "auth.mfa_required");
    let err = with(code.clone(), started.state.clone(), "000000".into()).await.unwrap_err();
    assert_eq!(code_of(&err), "auth.invalid_mfa_code");
    // Asking again without a code still answers the challenge.
    assert_eq!(
        code_of(&with(code.clone(), started.state.clone(), String::new()).await.unwrap_err()),
        "auth.mfa_required"
    );
    let session = with(code.clone(), started.state.clone(), totp(&key, now() + 30, 6)).await.unwrap();
    assert_eq!(user_id(&session), user_id(&signed));
    assert_eq!(identities(&auth, &sub).await, vec![(uuid_of(&signed), Some(email.clone()))]);
    // The state is spent.
    let err = with(code, started.state, totp(&key, now() + 60, 6)).await.unwrap_err();
    assert_eq!(code_of(&err), "auth.oauth_state_invalid");
    assert_eq!(idp.token_requests(), 2, "the provider is asked once per sign-in");

    // Once linked, signing in with Google still needs the code.
    let err = sign_in(&auth, &idp, spec(&sub, &email, true)).await.unwrap_err();
    assert_eq!(code_of(&err), "auth.mfa_required");
}
