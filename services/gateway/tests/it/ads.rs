//! Ads through the gateway: a sandbox connection made over REST (start, follow the address,
//! callback), a campaign created, and bad input answered with localized 4xx envelopes.

use nexus_testkit::service::service_config;
use nexus_testkit::{RunningService, TestDb, TestNats};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::auth::{PASSWORD, email};
use crate::support::{client, config, serve};

struct AdsStack {
    base: String,
    db: TestDb,
    _nats: TestNats,
    stop: CancellationToken,
}

impl Drop for AdsStack {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

async fn stack() -> AdsStack {
    nexus_testkit::init_tracing();
    let db = TestDb::new().await;
    let nats = TestNats::new();
    let stop = CancellationToken::new();
    let auth_extra =
        [("NEXUS_AUTH__ARGON2_MEMORY_KIB", "1024".to_owned()), ("NEXUS_AUTH__ARGON2_ITERATIONS", "1".to_owned())];
    let auth_cfg: nexus_auth::Config = service_config("auth", nexus_auth::DEFAULTS, &db, &nats, &auth_extra);
    let s = stop.clone();
    let auth = RunningService::spawn(nexus_auth::DEF, &auth_cfg.common.database.clone(), |l, _| {
        nexus_auth::run(auth_cfg, l, s)
    })
    .await;
    let extra = [("NEXUS_IDENTITY__AUTH_URL", auth.grpc_url())];
    let a_cfg: nexus_ads::Config = service_config("ads", nexus_ads::DEFAULTS, &db, &nats, &extra);
    let s = stop.clone();
    let a_db = a_cfg.common.database.clone();
    let ads = RunningService::spawn(nexus_ads::DEF, &a_db, |l, _| nexus_ads::run(a_cfg, l, s)).await;
    let mut cfg = config();
    cfg.services.auth = auth.grpc_url();
    cfg.services.ads = ads.grpc_url();
    let limits = nexus_gateway::edge::RateLimits::new(&cfg.rate_limit);
    let base = serve(nexus_gateway::app(cfg, limits).unwrap()).await;
    for _ in 0..100 {
        if client().get(format!("{base}/.well-known/jwks.json")).send().await.is_ok_and(|r| r.status() == 200) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    AdsStack { base, db, _nats: nats, stop }
}

impl AdsStack {
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        lang: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut r = client().request(method, format!("{}{path}", self.base)).header("accept-language", lang);
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

    /// An owner of a new workspace who signed up in `lang` (the saved language wins over
    /// `Accept-Language`).
    async fn owner(&self, lang: &str) -> String {
        let body = json!({"email": email("ads"), "password": PASSWORD, "name": "Ana"});
        let (status, body) = self.call(reqwest::Method::POST, "/v1/auth/signup", None, lang, Some(body)).await;
        assert_eq!(status, 201, "{body}");
        body["access_token"].as_str().unwrap().to_owned()
    }

    async fn count(&self, sql: &'static str) -> i64 {
        sqlx::query_scalar(sql).fetch_one(&self.db.admin_pool().await).await.unwrap()
    }
}

#[tokio::test]
async fn a_sandbox_connection_and_a_campaign_over_rest_with_localized_refusals() {
    use reqwest::Method as M;
    let s = stack().await;
    let token = s.owner("en").await;
    let redirect = "http://localhost:3000/connections/callback";
    let (status, started) = s
        .call(
            M::POST,
            "/v1/ads/connections/start",
            Some(&token),
            "en",
            Some(json!({"provider": "local", "redirect_uri": redirect})),
        )
        .await;
    assert_eq!(status, 200, "{started}");
    let url = reqwest::Url::parse(started["authorize_url"].as_str().unwrap()).unwrap();
    let q = |k: &str| url.query_pairs().find(|(n, _)| n == k).map(|(_, v)| v.into_owned()).unwrap();
    let (status, conn) = s
        .call(
            M::POST,
            "/v1/ads/connections/callback",
            Some(&token),
            "en",
            Some(json!({"provider": "local", "code": q("code"), "state": q("state")})),
        )
        .await;
    assert_eq!(status, 201, "{conn}");
    assert_eq!(conn["provider"], "local");
    assert!(conn["accounts"].as_array().unwrap().len() >= 4, "{conn}");

    let campaign = json!({"name": "Winter", "goal": "leads", "budget_minor": 50000, "currency": "EUR"});
    let (status, c) = s.call(M::POST, "/v1/ads/campaigns", Some(&token), "en", Some(campaign)).await;
    assert_eq!(status, 201, "{c}");
    assert_eq!((c["budget_minor"].as_i64(), c["currency"].as_str()), (Some(50000), Some("EUR")));

    let bad = json!({"name": "x", "goal": "leads", "budget_minor": -1, "currency": "EUR"});
    let (status, es) = s.call(M::POST, "/v1/ads/campaigns", Some(&s.owner("es").await), "es", Some(bad.clone())).await;
    assert_eq!((status, es["error"]["code"].as_str()), (400, Some("ads.campaign_invalid")), "{es}");
    assert!(es["error"]["message"].as_str().unwrap().contains("no es válido"), "{es}");
    let (status, ar) = s.call(M::POST, "/v1/ads/campaigns", Some(&s.owner("ar").await), "ar", Some(bad)).await;
    assert_eq!(status, 400);
    assert!(ar["error"]["message"].as_str().unwrap().contains("غير صالح"), "{ar}");

    let (status, e) = s
        .call(
            M::POST,
            "/v1/ads/connections/start",
            Some(&token),
            "en",
            Some(json!({"provider": "myspace", "redirect_uri": redirect})),
        )
        .await;
    assert_eq!((status, e["error"]["code"].as_str()), (400, Some("ads.provider_unknown")), "{e}");
    let (status, _) = s.call(M::GET, "/v1/ads/campaigns", None, "en", None).await;
    assert_eq!(status, 401);
    // Another workspace sees none of it.
    let other = s.owner("en").await;
    let (status, _) =
        s.call(M::GET, &format!("/v1/ads/campaigns/{}", c["id"].as_str().unwrap()), Some(&other), "en", None).await;
    assert_eq!(status, 404);
    let (status, _) = s
        .call(M::GET, &format!("/v1/ads/connections/{}", conn["id"].as_str().unwrap()), Some(&other), "en", None)
        .await;
    assert_eq!(status, 404);
    assert_eq!(s.count("SELECT count(*) FROM ads.campaigns").await, 1);
}
