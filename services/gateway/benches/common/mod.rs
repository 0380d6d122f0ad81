//! What the gateway benchmarks share: the services behind the gateway, started in process on
//! port 0 against the local Postgres and NATS, and a signed-up user.

#![allow(dead_code)] // each benchmark uses a part

use std::time::Duration;

use nexus_gateway::config::GatewayConfig;
use nexus_gateway::edge::RateLimits;
use nexus_testkit::service::service_config;
use nexus_testkit::{RunningService, TestDb, TestNats};
use tokio_util::sync::CancellationToken;

pub struct Stack {
    pub db: TestDb,
    pub nats: TestNats,
    pub stop: CancellationToken,
    /// Gateway config pointing at the started services (start a gateway with [`start_gateway`]).
    pub gateway: GatewayConfig,
}

/// Auth (with `auth_env`, e.g. production Argon2 parameters when empty), and with `products`
/// subscriptions and content too. Rate limits are lifted so they never cap a measurement.
pub async fn start(auth_env: &[(&str, String)], products: bool) -> Stack {
    nexus_testkit::init_tracing();
    let db = TestDb::new().await;
    let nats = TestNats::new();
    let stop = CancellationToken::new();

    let auth_cfg: nexus_auth::Config = service_config("auth", nexus_auth::DEFAULTS, &db, &nats, auth_env);
    println!(
        "argon2id: m={} KiB, t={}, p={}",
        auth_cfg.auth.argon2_memory_kib, auth_cfg.auth.argon2_iterations, auth_cfg.auth.argon2_parallelism
    );
    let s = stop.clone();
    let db_cfg = auth_cfg.common.database.clone();
    let auth_url =
        RunningService::spawn(nexus_auth::DEF, &db_cfg, |l, _| nexus_auth::run(auth_cfg, l, s)).await.grpc_url();

    let mut gateway: GatewayConfig =
        nexus_platform::config::load_from_env("gateway", nexus_gateway::config::DEFAULTS, None, Vec::new()).unwrap();
    gateway.services.auth = auth_url.clone();
    gateway.rate_limit.per_ip_per_minute = 100_000_000;
    gateway.rate_limit.per_user_per_minute = 100_000_000;
    gateway.rate_limit.auth_per_ip_per_minute = 100_000_000;

    if products {
        let with_auth = [("NEXUS_IDENTITY__AUTH_URL", auth_url.clone())];
        let sub_cfg: nexus_subscriptions::Config =
            service_config("subscriptions", nexus_subscriptions::DEFAULTS, &db, &nats, &with_auth);
        let (s, db_cfg) = (stop.clone(), sub_cfg.common.database.clone());
        let sub_url =
            RunningService::spawn(nexus_subscriptions::DEF, &db_cfg, |l, _| nexus_subscriptions::run(sub_cfg, l, s))
                .await
                .grpc_url();
        let extra = [with_auth[0].clone(), ("NEXUS_SERVICES__SUBSCRIPTIONS", sub_url.clone())];
        let content_cfg: nexus_content::Config = service_config("content", nexus_content::DEFAULTS, &db, &nats, &extra);
        let (s, db_cfg) = (stop.clone(), content_cfg.common.database.clone());
        gateway.services.content =
            RunningService::spawn(nexus_content::DEF, &db_cfg, |l, _| nexus_content::run(content_cfg, l, s))
                .await
                .grpc_url();
        gateway.services.subscriptions = sub_url;
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
