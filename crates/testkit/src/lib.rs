//! Test support shared by every crate: a database per test, NATS subjects and streams per test,
//! services on port 0, private NATS servers that tests may stop and start, and fake third-party
//! HTTP servers.
//!
//! Postgres and NATS are the real servers (`make test` makes sure they run); nothing here mocks
//! them.

pub mod aliexpress;
pub mod bench;
pub mod cj;
pub mod db;
pub mod did;
pub mod elevenlabs;
pub mod fake;
pub mod identity;
pub mod messages;
pub mod meta;
pub mod meta_publish;
pub mod nats;
pub mod oidc;
pub mod openai;
pub mod proxy;
pub mod replicate;
pub mod runware;
pub mod s3;
pub mod service;
pub mod service_auth;
pub mod shopify;
pub mod smtp;
pub mod stripe;
pub mod tiktok;
pub mod tiktok_login;
pub mod tiktok_posts;
pub mod whatsapp;
pub mod youtube;

pub use db::TestDb;
pub use fake::FakeServer;
pub use nats::{NatsServer, TestNats};
pub use proxy::TcpProxy;
pub use service::RunningService;

/// Admin URL of the Postgres cluster tests use (superuser; creates per-test databases).
pub fn admin_url() -> String {
    std::env::var("NEXUS_TEST_DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

pub fn nats_url() -> String {
    std::env::var("NEXUS_TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into())
}

/// Quiet logs unless RUST_LOG asks for more.
pub fn init_tracing() {
    nexus_platform::install_crypto_provider();
    nexus_platform::telemetry::init_for_tests();
}

/// Polls `check` every 50 ms until it returns true or `timeout` passes.
pub async fn eventually<F, Fut>(timeout: std::time::Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if check().await {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// An address where nothing listens, for "the provider is unreachable" tests. A port taken from
/// a listener that is then dropped is free for any parallel test to bind again (a fake server
/// of another test may then answer); port 1 on loopback is bound by nothing here.
pub fn unreachable_addr() -> std::net::SocketAddr {
    std::net::SocketAddr::from(([127, 0, 0, 1], 1))
}
