//! What the gateway benchmarks share: the services behind the gateway, started in process on
//! port 0 against the local Postgres and NATS, and a signed-up user.

#![allow(dead_code)] // each benchmark uses a part

use std::time::Duration;

use nexus_gateway::config::GatewayConfig;
use nexus_gateway::edge::RateLimits;
use nexus_testkit::{TestDb, TestNats};
use tokio_util::sync::CancellationToken;

pub struct Stack {
    pub db: TestDb,
    pub nats: TestNats,
    pub stop: CancellationToken,
    /// Gateway config pointing at the started services (start a gateway with [`start_gateway`]).
    pub gateway: GatewayConfig,
}

/// The environment a service of the bench runs with; `extra` wins.
fn env(db: &TestDb, nats: &TestNats, service: &str, extra: &[(&str, String)]) -> Vec<(String, String)> {
    let c = db.config(service);
    [
        ("NEXUS_DATABASE__URL", c.url.expose().to_owned()),
        ("NEXUS_DATABASE__ADMIN_URL", c.admin_url.expose().to_owned()),
        ("NEXUS_NATS__URL", nats.url.clone()),
        ("NEXUS_NATS__PREFIX", nats.prefix.clone()),
        ("NEXUS_ENVIRONMENT", "development".to_owned()),
    ]
    .into_iter()
    .chain(extra.iter().cloned())
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

async fn ephemeral() -> (nexus_platform::Listeners, String) {
    let listeners = nexus_platform::Listeners::ephemeral().await.unwrap();
    let url = format!("http://{}", listeners.grpc.local_addr().unwrap());
    (listeners, url)
}

/// Auth (with `auth_env`, e.g. production Argon2 parameters when empty), and with `products`
/// subscriptions and content too. Rate limits are lifted so they never cap a measurement.
pub async fn start(auth_env: &[(&str, String)], products: bool) -> Stack {
    nexus_testkit::init_tracing();
    let db = TestDb::new().await;
    let nats = TestNats::new();
    let stop = CancellationToken::new();

    let auth_cfg: nexus_auth::Config =
        nexus_platform::config::load_from_env("auth", nexus_auth::DEFAULTS, None, env(&db, &nats, "auth", auth_env))
            .unwrap();
    println!(
        "argon2id: m={} KiB, t={}, p={}",
        auth_cfg.auth.argon2_memory_kib, auth_cfg.auth.argon2_iterations, auth_cfg.auth.argon2_parallelism
    );
    nexus_platform::db::migrate("auth", &auth_cfg.common.database, Some(&nexus_auth::MIGRATIONS)).await.unwrap();
    let (listeners, auth_url) = ephemeral().await;
    let s = stop.clone();
    tokio::spawn(async move { nexus_auth::run(auth_cfg, listeners, s).await.unwrap() });

    let mut gateway: GatewayConfig =
        nexus_platform::config::load_from_env("gateway", nexus_gateway::config::DEFAULTS, None, Vec::new()).unwrap();
    gateway.services.auth = auth_url.clone();
    gateway.rate_limit.per_ip_per_minute = 100_000_000;
    gateway.rate_limit.per_user_per_minute = 100_000_000;
    gateway.rate_limit.auth_per_ip_per_minute = 100_000_000;

    if products {
        let sub_env = env(&db, &nats, "subscriptions", &[("NEXUS_IDENTITY__AUTH_URL", auth_url.clone())]);
        let sub_cfg: nexus_subscriptions::Config =
            nexus_platform::config::load_from_env("subscriptions", nexus_subscriptions::DEFAULTS, None, sub_env)
                .unwrap();
        nexus_platform::db::migrate("subscriptions", &sub_cfg.common.database, Some(&nexus_subscriptions::MIGRATIONS))
            .await
            .unwrap();
        let (listeners, sub_url) = ephemeral().await;
        let s = stop.clone();
        tokio::spawn(async move { nexus_subscriptions::run(sub_cfg, listeners, s).await.unwrap() });

        let content_env = env(
            &db,
            &nats,
            "content",
            &[("NEXUS_IDENTITY__AUTH_URL", auth_url.clone()), ("NEXUS_SERVICES__SUBSCRIPTIONS", sub_url.clone())],
        );
        let content_cfg: nexus_content::Config =
            nexus_platform::config::load_from_env("content", nexus_content::DEFAULTS, None, content_env).unwrap();
        nexus_platform::db::migrate("content", &content_cfg.common.database, Some(&nexus_content::MIGRATIONS))
            .await
            .unwrap();
        let (listeners, content_url) = ephemeral().await;
        let s = stop.clone();
        tokio::spawn(async move { nexus_content::run(content_cfg, listeners, s).await.unwrap() });
        gateway.services.subscriptions = sub_url;
        gateway.services.content = content_url;
    }
    Stack { db, nats, stop, gateway }
}

/// Serves a gateway with `cfg` on port 0; returns its base URL.
pub async fn start_gateway(cfg: &GatewayConfig) -> String {
    let app = nexus_gateway::app(cfg.clone(), RateLimits::new(&cfg.rate_limit)).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        axum::serve(listener, app.into_make_service_with_connect_info::<std::net::SocketAddr>()).await.unwrap();
    });
    base
}

/// Signs up a new user through the gateway (retrying while the services come up); returns
/// (email, the sign-up response).
pub async fn sign_up(base: &str, password: &str) -> (String, serde_json::Value) {
    let http = reqwest::Client::new();
    let email = format!("bench.{}@example.com", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    for _ in 0..150 {
        let r = http
            .post(format!("{base}/v1/auth/signup"))
            .json(&serde_json::json!({"email": email, "password": password, "name": "Bench"}))
            .send()
            .await;
        if let Ok(r) = r
            && r.status() == 201
        {
            return (email, r.json().await.unwrap());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("sign-up through the gateway never succeeded");
}
