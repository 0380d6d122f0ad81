//! The identity path end to end in one process: the real gateway app in front of the real auth
//! service (Postgres, NATS), over HTTP.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use nexus_gateway::edge::RateLimits;
use nexus_testkit::service::service_config;
use nexus_testkit::{RunningService, TestDb, TestNats};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::support::{client, config, envelope, json as read, serve};

pub struct Stack {
    pub base: String,
    /// The gateway's configuration, for starting more gateways in front of the same services.
    pub cfg: nexus_gateway::config::GatewayConfig,
    pub db: TestDb,
    _nats: TestNats,
    stop: CancellationToken,
}

impl Drop for Stack {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

pub async fn stack(auth_per_ip: u32) -> Stack {
    stack_with(auth_per_ip, false).await
}

/// The gateway in front of auth and, with `billing`, the subscriptions service too (all sharing
/// one test database and NATS prefix, so events flow between them).
pub async fn stack_with(auth_per_ip: u32, billing: bool) -> Stack {
    stack_full(auth_per_ip, billing, false).await
}

/// [`stack_with`], plus the content service (which needs billing) when `content` is set.
pub async fn stack_full(auth_per_ip: u32, billing: bool, content: bool) -> Stack {
    stack_all(auth_per_ip, billing, content, false).await
}

/// [`stack_full`], and with `analytics` the analytics service too.
pub async fn stack_all(auth_per_ip: u32, billing: bool, content: bool, analytics: bool) -> Stack {
    stack_env(auth_per_ip, billing, content, analytics, &[]).await
}

/// Billing, content and the messaging service (which consumes content's leads).
pub async fn stack_messaging() -> Stack {
    stack_of(Services { billing: true, content: true, messaging: true, ..Services::default() }).await
}

/// [`stack_all`] with extra environment for the auth service (e.g. OAuth providers).
pub async fn stack_env(
    auth_per_ip: u32,
    billing: bool,
    content: bool,
    analytics: bool,
    auth_env: &[(String, String)],
) -> Stack {
    stack_services(auth_per_ip, Services { billing, content, analytics, ..Services::default() }, auth_env).await
}

/// Which services run behind the gateway besides auth.
#[derive(Clone, Copy, Default)]
pub struct Services {
    pub billing: bool,
    pub content: bool,
    pub analytics: bool,
    pub messaging: bool,
    pub ads: bool,
    pub commerce: bool,
    /// The video service with its local voice and renderer (needs `billing` for its credits);
    /// ads, when running, reads its videos (and content's images, when content runs).
    pub video: bool,
}

/// The gateway in front of auth and `services`, with the default per-IP limit of these tests.
pub async fn stack_of(services: Services) -> Stack {
    stack_services(1000, services, &[]).await
}

async fn stack_services(auth_per_ip: u32, services: Services, auth_env: &[(String, String)]) -> Stack {
    let Services { billing, content, analytics, messaging, ads, commerce, video } = services;
    nexus_testkit::init_tracing();
    let db = TestDb::new().await;
    let nats = TestNats::new();
    let stop = CancellationToken::new();
    let mut auth_extra = vec![
        ("NEXUS_AUTH__ARGON2_MEMORY_KIB", "1024".to_owned()),
        ("NEXUS_AUTH__ARGON2_ITERATIONS", "1".to_owned()),
        ("NEXUS_OUTBOUND__ALLOW_PRIVATE_CIDRS", "127.0.0.0/8".to_owned()),
    ];
    auth_extra.extend(auth_env.iter().map(|(k, v)| (k.as_str(), v.clone())));
    let auth_cfg: nexus_auth::Config = service_config("auth", nexus_auth::DEFAULTS, &db, &nats, &auth_extra);
    let s = stop.clone();
    let auth = RunningService::spawn(nexus_auth::DEF, &auth_cfg.common.database.clone(), |l, _| {
        nexus_auth::run(auth_cfg, l, s)
    })
    .await;
    let auth_url = auth.grpc_url();
    let with_auth = [("NEXUS_IDENTITY__AUTH_URL", auth_url.clone())];

    let mut cfg = config();
    if billing {
        let sub_cfg: nexus_subscriptions::Config =
            service_config("subscriptions", nexus_subscriptions::DEFAULTS, &db, &nats, &with_auth);
        let s = stop.clone();
        let db = sub_cfg.common.database.clone();
        let sub =
            RunningService::spawn(nexus_subscriptions::DEF, &db, |l, _| nexus_subscriptions::run(sub_cfg, l, s)).await;
        cfg.services.subscriptions = sub.grpc_url();
    }
    if content {
        let extra = [with_auth[0].clone(), ("NEXUS_SERVICES__SUBSCRIPTIONS", cfg.services.subscriptions.clone())];
        let content_cfg: nexus_content::Config = service_config("content", nexus_content::DEFAULTS, &db, &nats, &extra);
        let s = stop.clone();
        let db = content_cfg.common.database.clone();
        let c = RunningService::spawn(nexus_content::DEF, &db, |l, _| nexus_content::run(content_cfg, l, s)).await;
        cfg.services.content = c.grpc_url();
    }
    if analytics {
        let mut an_cfg: nexus_analytics::Config =
            service_config("analytics", nexus_analytics::DEFAULTS, &db, &nats, &with_auth);
        // Nothing else of the fleet runs here.
        an_cfg.fleet.services.clear();
        let s = stop.clone();
        let db = an_cfg.common.database.clone();
        let an = RunningService::spawn(nexus_analytics::DEF, &db, |l, _| nexus_analytics::run(an_cfg, l, s)).await;
        cfg.services.analytics = an.grpc_url();
    }
    if messaging {
        // Webhook receivers of the tests listen on 127.0.0.1.
        // Subscriptions (when running) answers messaging's plan limits and credits; content's
        // agents answer its bots.
        let extra = [
            with_auth[0].clone(),
            ("NEXUS_OUTBOUND__ALLOW_PRIVATE_CIDRS", "127.0.0.0/8".to_owned()),
            ("NEXUS_SERVICES__SUBSCRIPTIONS", cfg.services.subscriptions.clone()),
            ("NEXUS_SERVICES__CONTENT", cfg.services.content.clone()),
            // Inbound media of this test's messaging only.
            (
                "NEXUS_STORAGE__ROOT",
                std::env::temp_dir()
                    .join(format!("nexus-gw-media-{}", uuid::Uuid::new_v4().simple()))
                    .display()
                    .to_string(),
            ),
        ];
        let m_cfg: nexus_messaging::Config = service_config("messaging", nexus_messaging::DEFAULTS, &db, &nats, &extra);
        let s = stop.clone();
        let db = m_cfg.common.database.clone();
        let m = RunningService::spawn(nexus_messaging::DEF, &db, |l, _| nexus_messaging::run(m_cfg, l, s)).await;
        cfg.services.messaging = m.grpc_url();
    }
    if video {
        let extra = [
            with_auth[0].clone(),
            ("NEXUS_SERVICES__SUBSCRIPTIONS", cfg.services.subscriptions.clone()),
            ("NEXUS_VOICE__PROVIDER", "local".to_owned()),
            ("NEXUS_RENDER__PROVIDER", "local".to_owned()),
            ("NEXUS_PIPELINE__IDLE_POLL", "50ms".to_owned()),
            (
                "NEXUS_STORAGE__ROOT",
                std::env::temp_dir()
                    .join(format!("nexus-gw-video-{}", uuid::Uuid::new_v4().simple()))
                    .display()
                    .to_string(),
            ),
        ];
        let v_cfg: nexus_video::Config = service_config("video", nexus_video::DEFAULTS, &db, &nats, &extra);
        let s = stop.clone();
        let db = v_cfg.common.database.clone();
        let v = RunningService::spawn(nexus_video::DEF, &db, |l, _| nexus_video::run(v_cfg, l, s)).await;
        cfg.services.video = v.grpc_url();
    }
    if ads {
        // Posts may name the video service's videos and content's images (when they run here);
        // uploaded post media of this test's ads only.
        let store = std::env::temp_dir().join(format!("nexus-gw-ads-{}", uuid::Uuid::new_v4().simple()));
        let extra = [
            with_auth[0].clone(),
            ("NEXUS_SERVICES__VIDEO", if video { cfg.services.video.clone() } else { String::new() }),
            ("NEXUS_SERVICES__CONTENT", if content { cfg.services.content.clone() } else { String::new() }),
            // Audiences may be made from the contact book's segments (when messaging runs here).
            ("NEXUS_SERVICES__MESSAGING", if messaging { cfg.services.messaging.clone() } else { String::new() }),
            ("NEXUS_STORAGE__ROOT", store.display().to_string()),
        ];
        let a_cfg: nexus_ads::Config = service_config("ads", nexus_ads::DEFAULTS, &db, &nats, &extra);
        let s = stop.clone();
        let db = a_cfg.common.database.clone();
        let a = RunningService::spawn(nexus_ads::DEF, &db, |l, _| nexus_ads::run(a_cfg, l, s)).await;
        cfg.services.ads = a.grpc_url();
    }
    if commerce {
        let extra = [with_auth[0].clone(), ("NEXUS_MONITORING__ENABLED", "false".to_owned())];
        let c_cfg: nexus_commerce::Config = service_config("commerce", nexus_commerce::DEFAULTS, &db, &nats, &extra);
        let s = stop.clone();
        let db = c_cfg.common.database.clone();
        let c = RunningService::spawn(nexus_commerce::DEF, &db, |l, _| nexus_commerce::run(c_cfg, l, s)).await;
        cfg.services.commerce = c.grpc_url();
    }
    cfg.services.auth = auth_url;
    cfg.rate_limit.auth_per_ip_per_minute = auth_per_ip;
    let limits = RateLimits::new(&cfg.rate_limit);
    let base = serve(nexus_gateway::app(cfg.clone(), limits).unwrap()).await;
    // Ready once auth answers through the gateway.
    for _ in 0..100 {
        if client().get(format!("{base}/.well-known/jwks.json")).send().await.is_ok_and(|r| r.status() == 200) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    Stack { base, cfg, db, _nats: nats, stop }
}

pub fn email(tag: &str) -> String {
    format!("{tag}.{}@example.com", &uuid::Uuid::new_v4().simple().to_string()[..8])
}

pub const PASSWORD: &str = "correct horse battery staple";

impl Stack {
    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> (u16, Value) {
        let mut r = client().post(format!("{}{path}", self.base)).json(&body);
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        let resp = r.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    pub async fn get(&self, path: &str, headers: &[(&str, &str)]) -> (u16, Value) {
        let mut r = client().get(format!("{}{path}", self.base));
        for (k, v) in headers {
            r = r.header(*k, *v);
        }
        let (status, _, body) = read(r.send().await.unwrap()).await;
        (status, body)
    }

    pub async fn sign_up(&self, email: &str) -> Value {
        let (status, body) = self
            .post("/v1/auth/signup", None, json!({"email": email, "password": PASSWORD, "name": "Ana Silva"}))
            .await;
        assert_eq!(status, 201, "{body}");
        body
    }

    pub async fn delete(&self, path: &str, headers: &[(&str, &str)]) -> (u16, Value) {
        let mut r = client().delete(format!("{}{path}", self.base));
        for (k, v) in headers {
            r = r.header(*k, *v);
        }
        let resp = r.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// A new user invited into the workspace of `inviter` (an access token) with `role`, who
    /// accepted the invitation from their local mailbox: what accepting answered (its
    /// `access_token` acts in the workspace).
    pub async fn join_as(&self, inviter: &str, role: &str) -> Value {
        let invitee = email(role);
        let (status, _) =
            self.post("/v1/members/invitations", Some(inviter), json!({"email": invitee, "role": role})).await;
        assert_eq!(status, 201);
        // The invitee reads the invitation in their own local mailbox once signed up.
        let v = self.sign_up(&invitee).await;
        let bearer = format!("Bearer {}", v["access_token"].as_str().unwrap());
        let (status, mail) = self.get("/v1/me/mail", &[("authorization", bearer.as_str())]).await;
        assert_eq!(status, 200, "{mail}");
        // Written in the inviter's language: found by its link's token (`nxi_`, not the sign-up
        // mail's `nxv_`).
        let invitation =
            mail["items"].as_array().unwrap().iter().find(|m| m["body"].as_str().unwrap().contains("token=nxi_"));
        let body = invitation.expect("invitation mail")["body"].as_str().unwrap();
        // Up to the first character a URL token has not (some languages isolate the link with
        // direction marks).
        let url_char = |c: &char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '~' | '%');
        let token: String = body[body.find("token=nxi_").unwrap() + 6..].chars().take_while(url_char).collect();
        let (status, joined) = self
            .post("/v1/invitations/accept", Some(v["access_token"].as_str().unwrap()), json!({"token": token}))
            .await;
        assert_eq!(status, 200, "{joined}");
        joined
    }

    /// `method` on `path` with an optional bearer, `Accept-Language` (none when empty) and JSON
    /// body: the status and the body (JSON, or the text as a string).
    pub async fn call_in(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        lang: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut r = client().request(method, format!("{}{path}", self.base));
        if !lang.is_empty() {
            r = r.header("accept-language", lang);
        }
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        if let Some(b) = body {
            r = r.json(&b);
        }
        let resp = r.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    /// `body` POSTed to `path` as it is (not re-encoded) as `content_type`, with an optional bearer
    /// and `Accept-Language` (none when empty): the status and the JSON body (null when not JSON).
    pub async fn post_raw(
        &self,
        path: &str,
        token: Option<&str>,
        content_type: &str,
        lang: &str,
        body: impl Into<reqwest::Body>,
    ) -> (u16, Value) {
        let mut r = client().post(format!("{}{path}", self.base)).header("content-type", content_type).body(body);
        if !lang.is_empty() {
            r = r.header("accept-language", lang);
        }
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        let resp = r.send().await.unwrap();
        let status = resp.status().as_u16();
        (status, serde_json::from_str(&resp.text().await.unwrap()).unwrap_or(Value::Null))
    }

    /// [`Stack::call_in`] without a language.
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        self.call_in(method, path, token, "", body).await
    }

    /// The access token of the owner of a new workspace who signed up in `lang` (the saved
    /// language wins over `Accept-Language` later).
    pub async fn owner(&self, lang: &str) -> String {
        let body = json!({"email": email("owner"), "password": PASSWORD, "name": "Ana"});
        let (status, body) = self.call_in(reqwest::Method::POST, "/v1/auth/signup", None, lang, Some(body)).await;
        assert_eq!(status, 201, "{body}");
        body["access_token"].as_str().unwrap().to_owned()
    }

    /// A count read as the database owner (past RLS).
    pub async fn count(&self, sql: &'static str) -> i64 {
        sqlx::query_scalar(sql).fetch_one(&self.db.admin_pool().await).await.unwrap()
    }

    async fn users(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM auth.users").fetch_one(&self.db.admin_pool().await).await.unwrap()
    }
}

/// The auth service's signing keys, as it holds them: tokens they sign pass the gateway.
async fn signing_keys(s: &Stack) -> nexus_auth::app::keys::SigningKeys {
    let pool = nexus_platform::db::connect("auth", &s.db.config("auth")).await.unwrap();
    let defaults: nexus_auth::Config =
        nexus_platform::config::load_from_env("auth", nexus_auth::DEFAULTS, None, Vec::new()).unwrap();
    let sealer = nexus_platform::crypto::Sealer::from_config(defaults.auth.sealing_keys.expose()).unwrap();
    nexus_auth::app::keys::SigningKeys::new(pool, sealer, std::time::Duration::from_secs(900))
}

/// `token`'s claims signed again by the auth service's own key, expired an hour ago.
pub async fn expired_copy(s: &Stack, token: &str) -> String {
    let payload = URL_SAFE_NO_PAD.decode(token.split('.').nth(1).unwrap()).unwrap();
    let mut claims: nexus_platform::identity::Claims = serde_json::from_slice(&payload).unwrap();
    let now = chrono::Utc::now().timestamp();
    (claims.iat, claims.exp) = (now - 7200, now - 3600);
    signing_keys(s).await.sign(&claims).await.unwrap()
}

pub fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

#[tokio::test]
async fn sign_up_login_refresh_and_reuse_through_the_gateway() {
    let s = stack(1000).await;
    let e = email("ana");
    let signed = s.sign_up(&e).await;
    assert_eq!(signed["token_type"], "Bearer");
    assert!(signed["user"]["id"].as_str().unwrap().starts_with("usr_"));

    let (status, login) = s.post("/v1/auth/login", None, json!({"email": e, "password": PASSWORD})).await;
    assert_eq!(status, 200, "{login}");
    let (status, me) = s
        .get(
            "/v1/me",
            &[("authorization", &bearer(login["access_token"].as_str().unwrap())), ("accept-language", "he")],
        )
        .await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["user"]["email"], e);
    assert_eq!(me["settings"]["dir"], "ltr");

    let (status, first) = s.post("/v1/auth/refresh", None, json!({"refresh_token": login["refresh_token"]})).await;
    assert_eq!(status, 200);
    // Sent again at once (a lost response): the same successor.
    let (status, again) = s.post("/v1/auth/refresh", None, json!({"refresh_token": login["refresh_token"]})).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["refresh_token"], first["refresh_token"]);
    // Sent again after the 10 s grace: the family dies.
    sqlx::query(
        "UPDATE auth.sessions SET replaced_at = replaced_at - interval '11 seconds' WHERE replaced_at IS NOT NULL",
    )
    .execute(&s.db.admin_pool().await)
    .await
    .unwrap();
    let (status, reuse) = s.post("/v1/auth/refresh", None, json!({"refresh_token": login["refresh_token"]})).await;
    assert_eq!(status, 401);
    assert_eq!(reuse["error"]["code"], "auth.invalid_refresh_token");
    let (status, dead) = s.get("/v1/me", &[("authorization", &bearer(first["access_token"].as_str().unwrap()))]).await;
    assert_eq!(status, 401, "{dead}");
    let (status, _) = s.post("/v1/auth/refresh", None, json!({"refresh_token": first["refresh_token"]})).await;
    assert_eq!(status, 401);

    // Wrong password and unknown email: the same answer.
    let (a_status, a) = s.post("/v1/auth/login", None, json!({"email": e, "password": "not the password"})).await;
    let (b_status, b) =
        s.post("/v1/auth/login", None, json!({"email": email("ghost"), "password": "not the password"})).await;
    assert_eq!((a_status, b_status), (401, 401));
    assert_eq!(a["error"]["code"], b["error"]["code"]);
    assert_eq!(a["error"]["message"], b["error"]["message"]);
}

#[tokio::test]
async fn the_gateway_refuses_bad_tokens_before_any_service() {
    let s = stack(1000).await;
    let signed = s.sign_up(&email("tok")).await;
    let token = signed["access_token"].as_str().unwrap();
    let (status, jwks) = s.get("/.well-known/jwks.json", &[]).await;
    assert_eq!(status, 200);
    let kid = jwks["keys"][0]["kid"].as_str().unwrap();
    let parts: Vec<&str> = token.split('.').collect();
    let mut claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    let enc = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());

    // Expired: same key is not available here, so present a validly-shaped token whose
    // signature no longer matches after the edit; plus the classic forgeries.
    claims["exp"] = json!(1);
    let resigned_expired = format!("{}.{}.{}", parts[0], enc(&claims), parts[2]);
    let alg_none = format!("{}.{}.", enc(&json!({"alg": "none", "kid": kid})), parts[1]);
    let hs256 = {
        use hmac_sha256_stub::sign;
        let header = enc(&json!({"alg": "HS256", "kid": kid}));
        let x = URL_SAFE_NO_PAD.decode(jwks["keys"][0]["x"].as_str().unwrap()).unwrap();
        format!("{header}.{}.{}", parts[1], sign(&x, format!("{header}.{}", parts[1]).as_bytes()))
    };
    let unknown_kid = format!("{}.{}.{}", enc(&json!({"alg": "EdDSA", "kid": "k-nope"})), parts[1], parts[2]);
    for (name, bad) in [
        ("edited", resigned_expired),
        ("alg none", alg_none),
        ("hs256", hs256),
        ("unknown kid", unknown_kid),
        ("junk", "abc".into()),
    ] {
        let (status, body) = s.get("/v1/me", &[("authorization", &bearer(&bad)), ("accept-language", "ar")]).await;
        assert_eq!(status, 401, "{name}: {body}");
        let (code, message) = envelope(&body);
        assert_eq!(code, "auth.unauthenticated", "{name}");
        assert_eq!(message, nexus_i18n::error_message(nexus_kernel::Locale::Ar, "auth.unauthenticated", &[], 401));
        assert_eq!(body["error"]["dir"], "rtl");
    }
    // Anonymous where a caller is needed: 401 too.
    let (status, body) = s.get("/v1/me", &[]).await;
    assert_eq!((status, body["error"]["code"].as_str()), (401, Some("auth.unauthenticated")));
}

/// HMAC-SHA256 for forging an "HS256 with the public key" token.
mod hmac_sha256_stub {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    pub fn sign(key: &[u8], msg: &[u8]) -> String {
        let tag = ring::hmac::sign(&ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key), msg);
        URL_SAFE_NO_PAD.encode(tag.as_ref())
    }
}

#[tokio::test]
async fn api_keys_through_the_gateway() {
    let s = stack(1000).await;
    let signed = s.sign_up(&email("keys")).await;
    let owner = bearer(signed["access_token"].as_str().unwrap());
    let (status, created) = s
        .post(
            "/v1/api-keys",
            Some(signed["access_token"].as_str().unwrap()),
            json!({"name": "Reports", "scopes": ["read"]}),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let secret = created["secret"].as_str().unwrap().to_owned();

    let (status, listed) = s.get("/v1/api-keys", &[("x-api-key", &secret)]).await;
    assert_eq!(status, 200, "{listed}");
    assert_eq!(listed["items"].as_array().unwrap().len(), 1);
    let (status, denied) = s.post("/v1/api-keys", Some(&secret), json!({"name": "more", "scopes": ["read"]})).await;
    assert_eq!(status, 403, "{denied}");
    assert_eq!(denied["error"]["code"], "auth.scope_missing");

    let id = created["key"]["id"].as_str().unwrap();
    let resp =
        client().delete(format!("{}/v1/api-keys/{id}", s.base)).header("authorization", &owner).send().await.unwrap();
    assert_eq!(resp.status(), 204);
    let (status, gone) = s.get("/v1/api-keys", &[("x-api-key", &secret)]).await;
    assert_eq!(status, 401, "revoked keys fail at once: {gone}");
    assert_eq!(gone["error"]["code"], "auth.api_key_invalid");
}

#[tokio::test]
async fn bad_input_gets_localized_4xx_and_changes_nothing() {
    let s = stack(1000).await;
    let before = s.users().await;
    let long = "x".repeat(300);
    let cases = [
        (json!({"email": "no-at-sign", "password": PASSWORD, "name": "Ana"}), 400, "auth.invalid_email"),
        (json!({"email": email("w"), "password": "short", "name": "Ana"}), 400, "auth.password_too_short"),
        (json!({"email": email("w"), "password": "qwertyuiop", "name": "Ana"}), 400, "auth.password_too_common"),
        (json!({"email": email("w"), "password": PASSWORD, "name": long}), 400, "auth.field_too_long"),
        (
            json!({"email": format!("{long}@example.com"), "password": PASSWORD, "name": "Ana"}),
            400,
            "auth.invalid_email",
        ),
        (json!({"email": email("w"), "password": PASSWORD}), 422, "request.invalid_body"),
        (json!({"email": email("w"), "password": 12345, "name": "Ana"}), 422, "request.invalid_body"),
        (
            json!({"email": email("w"), "password": PASSWORD, "name": "Ana", "role": "owner"}),
            422,
            "request.invalid_body",
        ),
        (json!({"email": email("w"), "password": PASSWORD, "name": "Ana", "locale": "fr"}), 400, "auth.invalid_locale"),
    ];
    for (body, status, code) in cases {
        for lang in ["es", "ar"] {
            let resp = client()
                .post(format!("{}/v1/auth/signup", s.base))
                .header("accept-language", lang)
                .json(&body)
                .send()
                .await
                .unwrap();
            let (got, _, b) = read(resp).await;
            assert_eq!(got, status, "{body}: {b}");
            let (c, message) = envelope(&b);
            assert_eq!(c, code, "{body}");
            assert_ne!(
                message,
                nexus_i18n::error_message(nexus_kernel::Locale::En, code, &[], status),
                "{lang} is not English"
            );
        }
    }
    let resp = client()
        .post(format!("{}/v1/auth/signup", s.base))
        .header("content-type", "application/json")
        .body("{\"email\":")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert_eq!(s.users().await, before, "nothing was created");
}

#[tokio::test]
async fn other_workspaces_are_404_and_viewers_cannot_invite_over_http() {
    let s = stack(1000).await;
    let a = s.sign_up(&email("a")).await;
    let b = s.sign_up(&email("b")).await;
    let ta = a["access_token"].as_str().unwrap();
    let tb = b["access_token"].as_str().unwrap();
    let (_, key_b) = s.post("/v1/api-keys", Some(tb), json!({"name": "b", "scopes": ["read"]})).await;
    for path in [
        format!("/v1/api-keys/{}", key_b["key"]["id"].as_str().unwrap()),
        format!("/v1/members/{}", b["user"]["id"].as_str().unwrap()),
        format!("/v1/sessions/{}", b["session_id"].as_str().unwrap()),
    ] {
        let resp = client().delete(format!("{}{path}", s.base)).bearer_auth(ta).send().await.unwrap();
        let (status, _, body) = read(resp).await;
        assert_eq!(status, 404, "{path}: {body}");
        assert_eq!(body["error"]["code"], "request.not_found");
    }
    let (status, _) =
        s.post(&format!("/v1/workspaces/{}/switch", b["workspace"]["id"].as_str().unwrap()), Some(ta), json!({})).await;
    assert_eq!(status, 404);

    let joined = s.join_as(ta, "viewer").await;
    let (status, denied) = s
        .post(
            "/v1/members/invitations",
            Some(joined["access_token"].as_str().unwrap()),
            json!({"email": email("x"), "role": "member"}),
        )
        .await;
    assert_eq!(status, 403, "{denied}");
    assert_eq!(denied["error"]["code"], "auth.role_insufficient");
}

#[tokio::test]
async fn auth_routes_have_a_stricter_per_ip_limit() {
    let s = stack(3).await;
    let mut statuses = Vec::new();
    for _ in 0..4 {
        let (status, _) =
            s.post("/v1/auth/login", None, json!({"email": email("x"), "password": "whatever it is"})).await;
        statuses.push(status);
    }
    assert_eq!(statuses, vec![401, 401, 401, 429]);
}

#[tokio::test]
async fn expired_and_foreign_key_tokens_are_refused_at_the_gateway() {
    use nexus_platform::identity::{AUDIENCE, Claims, ISSUER, PrincipalKind, Role};
    let s = stack(1000).await;
    let signed = s.sign_up(&email("exp")).await;
    let now = chrono::Utc::now().timestamp();
    let claims = |exp: i64| Claims {
        iss: ISSUER.into(),
        aud: AUDIENCE.into(),
        sub: signed["user"]["id"].as_str().unwrap().into(),
        ws: signed["workspace"]["id"].as_str().unwrap().into(),
        role: Role::Owner,
        scp: vec![],
        sid: signed["session_id"].as_str().unwrap().into(),
        kind: PrincipalKind::User,
        jti: "bench".into(),
        iat: now,
        exp,
        amr: vec![],
        loc: String::new(),
        svc: String::new(),
    };
    // The service's own key, as the auth service holds it, signs an expired token.
    let keys = signing_keys(&s).await;
    let expired = keys.sign(&claims(now - 3600)).await.unwrap();
    let fresh = keys.sign(&claims(now + 600)).await.unwrap();
    let (status, _) = s.get("/v1/me", &[("authorization", &bearer(&fresh))]).await;
    assert_eq!(status, 200, "control: a token from the real key passes");
    let (status, body) = s.get("/v1/me", &[("authorization", &bearer(&expired))]).await;
    assert_eq!(status, 401);
    assert_eq!(body["error"]["code"], "auth.token_expired");

    // Same kid, another Ed25519 key.
    let kid = jsonwebtoken::decode_header(&fresh).unwrap().kid;
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
    header.kid = kid;
    let mut der = vec![0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20];
    der.extend_from_slice(&[9u8; 32]);
    let foreign =
        jsonwebtoken::encode(&header, &claims(now + 600), &jsonwebtoken::EncodingKey::from_ed_der(&der)).unwrap();
    let (status, body) = s.get("/v1/me", &[("authorization", &bearer(&foreign))]).await;
    assert_eq!(status, 401);
    assert_eq!(body["error"]["code"], "auth.unauthenticated");
}

#[tokio::test]
async fn errors_speak_the_user_s_saved_language_over_accept_language() {
    let s = stack(1000).await;
    let e = email("he");
    let (status, signed) = s
        .post("/v1/auth/signup", None, json!({"email": e, "password": PASSWORD, "name": "Dana", "locale": "he"}))
        .await;
    assert_eq!(status, 201);
    let token = signed["access_token"].as_str().unwrap();
    let resp = client()
        .delete(format!("{}/v1/api-keys/key_00000000000000000000000000000000", s.base))
        .bearer_auth(token)
        .header("accept-language", "es")
        .send()
        .await
        .unwrap();
    let (status, headers, body) = read(resp).await;
    assert_eq!(status, 404);
    assert_eq!(headers["content-language"], "he");
    assert_eq!(body["error"]["dir"], "rtl");
    assert_eq!(
        body["error"]["message"],
        nexus_i18n::error_message(nexus_kernel::Locale::He, "request.not_found", &[], 404)
    );
    // Without a token, Accept-Language decides.
    let (_, anon) = s.get("/v1/nowhere", &[("accept-language", "es")]).await;
    assert_eq!(
        anon["error"]["message"],
        nexus_i18n::error_message(nexus_kernel::Locale::Es, "request.not_found", &[], 404)
    );
}

/// Another gateway in front of the same services, with its own settings.
async fn gateway_like(s: &Stack, mutate: impl FnOnce(&mut nexus_gateway::config::GatewayConfig)) -> String {
    let mut cfg = s.cfg.clone();
    mutate(&mut cfg);
    let limits = RateLimits::new(&cfg.rate_limit);
    serve(nexus_gateway::app(cfg, limits).unwrap()).await
}

async fn status_of(url: String, headers: &[(&str, &str)]) -> u16 {
    let mut r = client().get(url);
    for (k, v) in headers {
        r = r.header(*k, *v);
    }
    r.send().await.unwrap().status().as_u16()
}

#[tokio::test]
async fn two_gateways_sharing_redis_enforce_one_budget_per_user_across_keys() {
    let s = stack(1000).await;
    let signed = s.sign_up(&email("shared")).await;
    let token = signed["access_token"].as_str().unwrap().to_owned();
    let (status, created) = s.post("/v1/api-keys", Some(&token), json!({"name": "ci", "scopes": ["read"]})).await;
    assert_eq!(status, 201, "{created}");
    let key = created["secret"].as_str().unwrap().to_owned();
    let as_user = bearer(&token);

    // Six requests a minute per user, kept in Redis under a prefix of this test's own.
    let prefix = format!("test:{}:", uuid::Uuid::new_v4().simple());
    let shared = |cfg: &mut nexus_gateway::config::GatewayConfig| {
        cfg.rate_limit.per_user_per_minute = 6;
        cfg.rate_limit.redis_url = nexus_platform::config::Secret::new("redis://127.0.0.1:6379");
        cfg.rate_limit.redis_prefix = prefix.clone();
    };
    let a = gateway_like(&s, shared).await;
    let b = gateway_like(&s, shared).await;
    // Alternating gateways, and the user's session token with one of their API keys: one budget.
    let mut passed = 0;
    for i in 0..6 {
        let base = if i % 2 == 0 { &a } else { &b };
        let headers: Vec<(&str, &str)> =
            if i % 3 == 0 { vec![("x-api-key", key.as_str())] } else { vec![("authorization", as_user.as_str())] };
        let got = status_of(format!("{base}/v1/me"), &headers).await;
        assert_eq!(got, 200, "request {i}");
        passed += 1;
    }
    assert_eq!(passed, 6);
    for base in [&a, &b] {
        let resp = client().get(format!("{base}/v1/me")).header("authorization", &as_user).send().await.unwrap();
        assert_eq!(resp.status(), 429, "the seventh request on either gateway is over the shared budget");
        let wait: u64 = resp.headers()["retry-after"].to_str().unwrap().parse().unwrap();
        assert!((1..=60).contains(&wait), "{wait}");
        let (_, _, body) = read(resp).await;
        assert_eq!(body["error"]["code"], "request.rate_limited");
        let got = status_of(format!("{base}/v1/me"), &[("x-api-key", key.as_str())]).await;
        assert_eq!(got, 429, "an API key of the same user draws on the same budget");
    }

    // Without Redis each gateway keeps its own budget: the same traffic passes twice over.
    let local = |cfg: &mut nexus_gateway::config::GatewayConfig| cfg.rate_limit.per_user_per_minute = 6;
    let (c, d) = (gateway_like(&s, local).await, gateway_like(&s, local).await);
    for base in [&c, &d] {
        for _ in 0..6 {
            assert_eq!(status_of(format!("{base}/v1/me"), &[("authorization", as_user.as_str())]).await, 200);
        }
        assert_eq!(status_of(format!("{base}/v1/me"), &[("authorization", as_user.as_str())]).await, 429);
    }
}

#[tokio::test]
async fn api_key_exchanges_are_cached_and_spend_the_ip_budget_first() {
    let s = stack(1000).await;
    let signed = s.sign_up(&email("cache")).await;
    let token = signed["access_token"].as_str().unwrap().to_owned();
    let (_, created) = s.post("/v1/api-keys", Some(&token), json!({"name": "ci", "scopes": ["read"]})).await;
    let key = created["secret"].as_str().unwrap().to_owned();

    // Two anonymous requests a minute per address: one exchange spends one of them; later requests
    // with the same key reuse its token and spend none.
    let base = gateway_like(&s, |cfg| cfg.rate_limit.per_ip_per_minute = 2).await;
    for _ in 0..5 {
        assert_eq!(status_of(format!("{base}/v1/me"), &[("x-api-key", key.as_str())]).await, 200);
    }
    assert_eq!(status_of(format!("{base}/v1/locales"), &[]).await, 200, "one anonymous request left");
    assert_eq!(status_of(format!("{base}/v1/locales"), &[]).await, 429, "the exchange spent the other");
    // A guessed key needs an exchange, and the address has no budget left for one.
    let guessed = status_of(format!("{base}/v1/me"), &[("x-api-key", "nx_guessed_key_0000000000000000")]).await;
    assert_eq!(guessed, 429);
}
