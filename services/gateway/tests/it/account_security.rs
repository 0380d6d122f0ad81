//! Account-safety rules through HTTP, with the fake OpenID provider configured as `google`:
//! linking needs a fresh user session, OAuth never attaches to unverified accounts, MFA users pass
//! TOTP after OAuth too, key scopes, ownership transfer and linked identities.

use nexus_testkit::oidc::{FakeIdp, IdTokenSpec};
use serde_json::{Value, json};

use crate::auth::{Stack, bearer, email, stack_env};

const REDIRECT: &str = "http://127.0.0.1:3000/auth/callback";

async fn oauth_stack() -> (Stack, FakeIdp) {
    let idp = FakeIdp::start().await;
    let p = "NEXUS_OAUTH__PROVIDERS__GOOGLE__";
    let env: Vec<(String, String)> = [
        ("PROVIDER", "google".to_owned()),
        ("ISSUER", idp.issuer.clone()),
        ("CLIENT_ID", idp.client_id.clone()),
        ("CLIENT_SECRET", idp.client_secret.clone()),
        ("DISCOVERY_URL", idp.discovery_url()),
    ]
    .into_iter()
    .map(|(k, v)| (format!("{p}{k}"), v))
    .collect();
    (stack_env(1000, false, false, false, &env).await, idp)
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
    format!("google-{}", uuid::Uuid::new_v4().simple())
}

impl Stack {
    async fn oauth_start(&self, headers: &[(&str, &str)]) -> (u16, Value) {
        self.get(&format!("/v1/auth/oauth/google/start?redirect_uri={REDIRECT}"), headers).await
    }

    /// Start, consent at the fake provider with `spec`, and the callback (with `extra` fields).
    async fn oauth_sign_in(&self, idp: &FakeIdp, spec: IdTokenSpec) -> (u16, Value, String, String) {
        let (status, started) = self.oauth_start(&[]).await;
        assert_eq!(status, 200, "{started}");
        let code = idp.issue_code(started["authorization_url"].as_str().unwrap(), spec);
        let state = started["state"].as_str().unwrap().to_owned();
        let (status, body) =
            self.post("/v1/auth/oauth/google/callback", None, json!({"code": code, "state": state})).await;
        (status, body, code, state)
    }

    async fn key(&self, token: &str, scopes: &[&str]) -> String {
        let (status, key) = self.post("/v1/api-keys", Some(token), json!({"name": "k", "scopes": scopes})).await;
        assert_eq!(status, 201, "{key}");
        key["secret"].as_str().unwrap().to_owned()
    }

    async fn verify_email(&self, token: &str, to: &str) {
        let (status, mail) = self.get("/v1/me/mail", &[("authorization", &bearer(token))]).await;
        assert_eq!(status, 200, "{mail}");
        assert!(mail["items"].as_array().unwrap().iter().all(|m| m["to"] == to), "only the caller's own mail: {mail}");
        let body = mail["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["body"].as_str().unwrap())
            .find(|b| b.contains("/verify-email"))
            .expect("verification mail")
            .to_owned();
        let t = body[body.find("token=").unwrap() + 6..].split_whitespace().next().unwrap();
        let (status, _) = self.post("/v1/auth/verify-email", None, json!({"token": t})).await;
        assert_eq!(status, 204);
    }
}

#[tokio::test]
async fn an_api_key_cannot_start_a_link_but_a_fresh_session_can() {
    let (s, _idp) = oauth_stack().await;
    let signed = s.sign_up(&email("linker")).await;
    let token = signed["access_token"].as_str().unwrap();
    let key = s.key(token, &["read", "write", "admin"]).await;
    let key_bearer = bearer(&key);
    for headers in [[("x-api-key", key.as_str())], [("authorization", key_bearer.as_str())]] {
        let (status, body) = s.oauth_start(&headers).await;
        assert_eq!(status, 403, "{body}");
        assert_eq!(body["error"]["code"], "auth.user_session_required");
    }
    let (status, body) = s.oauth_start(&[("authorization", &bearer(token))]).await;
    assert_eq!(status, 200, "a session that just signed in with its password may link: {body}");
    let (status, _) = s.oauth_start(&[]).await;
    assert_eq!(status, 200, "anonymous: a sign-in");
    // A stale sign-in must re-authenticate.
    sqlx::query("UPDATE auth.sessions SET auth_time = now() - interval '11 minutes'")
        .execute(&s.db.admin_pool().await)
        .await
        .unwrap();
    let (status, body) = s.oauth_start(&[("authorization", &bearer(token))]).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["code"], "auth.reauthentication_required");
}

#[tokio::test]
async fn an_oauth_sign_in_does_not_attach_to_an_unverified_account_and_mfa_users_pass_totp() {
    let (s, idp) = oauth_stack().await;
    let e = email("local");
    let signed = s.sign_up(&e).await;
    let sub = subject();
    let (status, body, _, _) = s.oauth_sign_in(&idp, spec(&sub, &e, true)).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["code"], "auth.oauth_local_unverified");
    let admin = s.db.admin_pool().await;
    let linked: i64 = sqlx::query_scalar("SELECT count(*) FROM auth.oauth_identities").fetch_one(&admin).await.unwrap();
    assert_eq!(linked, 0);
    let users: i64 = sqlx::query_scalar("SELECT count(*) FROM auth.users").fetch_one(&admin).await.unwrap();
    assert_eq!(users, 1, "nothing created");

    // Verified and with TOTP on: the provider alone is not enough.
    let token = signed["access_token"].as_str().unwrap();
    s.verify_email(token, &e).await;
    let (status, enrol) = s.post("/v1/mfa/totp", Some(token), json!({})).await;
    assert_eq!(status, 200, "{enrol}");
    let secret = enrol["secret"].as_str().unwrap().to_owned();
    let totp = nexus_auth::domain::totp(&secret, &e).unwrap();
    let now = || std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let (status, _) =
        s.post("/v1/mfa/totp/confirm", Some(token), json!({"code": totp.generate(now()).to_string()})).await;
    assert_eq!(status, 200);
    let (status, body, code, state) = s.oauth_sign_in(&idp, spec(&sub, &e, true)).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"]["code"], "auth.mfa_required");
    let (status, body) = s
        .post("/v1/auth/oauth/google/callback", None, json!({"code": code, "state": state, "totp_code": "000000"}))
        .await;
    assert_eq!(status, 401);
    assert_eq!(body["error"]["code"], "auth.invalid_mfa_code");
    let (status, session) = s
        .post(
            "/v1/auth/oauth/google/callback",
            None,
            json!({"code": code, "state": state, "totp_code": totp.generate(now() + 30).to_string()}),
        )
        .await;
    assert_eq!(status, 200, "{session}");
    assert_eq!(session["user"]["id"], signed["user"]["id"]);
    // Malformed callback bodies: 400, nothing changes.
    let (status, body) = s.post("/v1/auth/oauth/google/callback", None, json!({"code": 5, "state": "x"})).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["code"], "request.invalid_body");
}

#[tokio::test]
async fn a_read_key_gets_403_on_sessions_and_workspaces() {
    let (s, _idp) = oauth_stack().await;
    let signed = s.sign_up(&email("reader")).await;
    let token = signed["access_token"].as_str().unwrap();
    let key = s.key(token, &["read"]).await;
    let k = [("x-api-key", key.as_str())];
    for (what, (status, body)) in [
        ("list sessions", s.get("/v1/sessions", &k).await),
        ("list workspaces", s.get("/v1/workspaces", &k).await),
        ("revoke session", s.delete(&format!("/v1/sessions/{}", signed["session_id"].as_str().unwrap()), &k).await),
        ("revoke all", s.delete("/v1/sessions", &k).await),
        ("identities", s.get("/v1/me/identities", &k).await),
    ] {
        assert_eq!(status, 403, "{what}: {body}");
        assert_eq!(body["error"]["code"], "auth.user_session_required", "{what}");
        assert!(!body["error"]["message"].as_str().unwrap().is_empty());
    }
    let resp = crate::support::client()
        .post(format!("{}/v1/me/verification", s.base))
        .header("x-api-key", &key)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    // The session survived.
    let (status, sessions) = s.get("/v1/sessions", &[("authorization", &bearer(token))]).await;
    assert_eq!(status, 200);
    assert_eq!(sessions["items"].as_array().unwrap().len(), 1);
    let (status, _) = s.get("/v1/me", &k).await;
    assert_eq!(status, 200, "reading the key's own context is fine");
}

#[tokio::test]
async fn transfer_a_to_b_then_a_to_c_with_the_old_token_leaves_one_owner() {
    let (s, _idp) = oauth_stack().await;
    let a = s.sign_up(&email("a")).await;
    let ta = a["access_token"].as_str().unwrap().to_owned();
    let mut ids = Vec::new();
    for tag in ["b", "c"] {
        let e = email(tag);
        let (status, _) = s.post("/v1/members/invitations", Some(&ta), json!({"email": e, "role": "member"})).await;
        assert_eq!(status, 201);
        let m = s.sign_up(&e).await;
        let (_, mail) = s.get("/v1/me/mail", &[("authorization", &bearer(m["access_token"].as_str().unwrap()))]).await;
        let body = mail["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["body"].as_str().unwrap())
            .find(|b| b.contains("/accept-invite"))
            .unwrap()
            .to_owned();
        let t = body[body.find("token=").unwrap() + 6..].split_whitespace().next().unwrap();
        let (status, _) =
            s.post("/v1/invitations/accept", Some(m["access_token"].as_str().unwrap()), json!({"token": t})).await;
        assert_eq!(status, 200);
        ids.push(m["user"]["id"].as_str().unwrap().to_owned());
    }
    let (status, body) = s.post(&format!("/v1/members/{}/transfer-ownership", ids[0]), Some(&ta), json!({})).await;
    assert_eq!(status, 204, "{body}");
    let (status, body) = s.post(&format!("/v1/members/{}/transfer-ownership", ids[1]), Some(&ta), json!({})).await;
    assert!(status == 401 || status == 403, "{status} {body}");
    let ws = nexus_kernel::WorkspaceId::parse(a["workspace"]["id"].as_str().unwrap()).unwrap().as_uuid();
    let owners: Vec<uuid::Uuid> =
        sqlx::query_scalar("SELECT user_id FROM auth.memberships WHERE tenant_id = $1 AND role = 'owner'")
            .bind(ws)
            .fetch_all(&s.db.admin_pool().await)
            .await
            .unwrap();
    assert_eq!(owners, vec![nexus_kernel::UserId::parse(&ids[0]).unwrap().as_uuid()], "exactly one owner: B");
    let (status, _) = s.get("/v1/me", &[("authorization", &bearer(&ta))]).await;
    assert_eq!(status, 401, "A's old token is dead");
}

#[tokio::test]
async fn identities_are_listed_and_unlinked_over_http() {
    let (s, idp) = oauth_stack().await;
    let (status, g, _, _) = s.oauth_sign_in(&idp, spec(&subject(), &email("g"), true)).await;
    assert_eq!(status, 200, "{g}");
    let tg = bearer(g["access_token"].as_str().unwrap());
    let (status, list) = s.get("/v1/me/identities", &[("authorization", &tg)]).await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["has_password"], false);
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["provider"], "google");
    let id = items[0]["id"].as_str().unwrap();
    let (status, body) = s.delete(&format!("/v1/me/identities/{id}"), &[("authorization", &tg)]).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["code"], "auth.last_sign_in_method");
    let (status, _) =
        s.delete("/v1/me/identities/idn_0192f0c5c2b87c31a1f1e4f2b1a0c9da", &[("authorization", &tg)]).await;
    assert_eq!(status, 404);
    let (status, _) = s.get("/v1/me/identities", &[]).await;
    assert_eq!(status, 401);

    // A password user links Google (fresh sign-in), then unlinks it.
    let e = email("pw");
    let signed = s.sign_up(&e).await;
    let t = bearer(signed["access_token"].as_str().unwrap());
    let (status, started) = s.oauth_start(&[("authorization", &t)]).await;
    assert_eq!(status, 200);
    let code = idp.issue_code(started["authorization_url"].as_str().unwrap(), spec(&subject(), &email("pg"), true));
    let (status, body) =
        s.post("/v1/auth/oauth/google/callback", None, json!({"code": code, "state": started["state"]})).await;
    assert_eq!(status, 200, "{body}");
    let (_, list) = s.get("/v1/me/identities", &[("authorization", &t)]).await;
    assert_eq!(list["has_password"], true);
    let id = list["items"][0]["id"].as_str().unwrap().to_owned();
    let (status, _) = s.delete(&format!("/v1/me/identities/{id}"), &[("authorization", &t)]).await;
    assert_eq!(status, 204);
    let (_, list) = s.get("/v1/me/identities", &[("authorization", &t)]).await;
    assert!(list["items"].as_array().unwrap().is_empty());
    // And the user heard about the link.
    let (_, mail) = s.get("/v1/me/mail", &[("authorization", &t)]).await;
    assert!(mail["items"].as_array().unwrap().iter().any(|m| m["body"].as_str().unwrap().contains("Google")));
}
