use std::time::Duration;

use nexus_kernel::WorkspaceId;
use nexus_platform::identity::Role;
use nexus_proto::nexus::subscriptions::v1 as pb;
use nexus_proto::nexus::subscriptions::v1::subscriptions_client::SubscriptionsClient;
use nexus_proto::nexus::webhooks::v1::webhook_receiver_client::WebhookReceiverClient;
use nexus_testkit::identity::{TestIssuer, authed};
use nexus_testkit::{RunningService, TestDb, TestNats};
use tonic::transport::Channel;

pub struct Svc {
    pub url: String,
    pub db: TestDb,
    pub nats: TestNats,
    pub issuer: TestIssuer,
    _running: Stopper,
}

/// Stops the service when the test's [`Svc`] goes.
struct Stopper(tokio_util::sync::CancellationToken);

impl Drop for Stopper {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

pub async fn start() -> Svc {
    start_with(Vec::new()).await
}

/// [`start`] with extra configuration (`NEXUS_…` variables).
pub async fn start_with(extra: Vec<(&str, String)>) -> Svc {
    nexus_testkit::init_tracing();
    let db = TestDb::new().await;
    let nats = TestNats::new();
    let cfg = db.config("subscriptions");
    let env = vec![
        ("NEXUS_DATABASE__URL".to_owned(), cfg.url.expose().to_owned()),
        ("NEXUS_DATABASE__ADMIN_URL".to_owned(), cfg.admin_url.expose().to_owned()),
        ("NEXUS_DATABASE__MAX_CONNECTIONS".to_owned(), "24".to_owned()),
        // A thousand calls queue for 24 connections on a 2-core machine: allow the wait.
        ("NEXUS_DATABASE__ACQUIRE_TIMEOUT".to_owned(), "60s".to_owned()),
        ("NEXUS_NATS__URL".to_owned(), nats.url.clone()),
        ("NEXUS_NATS__PREFIX".to_owned(), nats.prefix.clone()),
        ("NEXUS_BILLING__SWEEP_INTERVAL".to_owned(), "500ms".to_owned()),
    ]
    .into_iter()
    .chain(extra.into_iter().map(|(k, v)| (k.to_owned(), v)))
    .collect::<Vec<_>>();
    let config: nexus_subscriptions::Config =
        nexus_platform::config::load_from_env("subscriptions", nexus_subscriptions::DEFAULTS, None, env)
            .expect("config");
    let issuer = TestIssuer::new();
    let running = RunningService::start_with_keys(
        nexus_subscriptions::DEF,
        config.common.clone(),
        Some(issuer.keys()),
        nexus_subscriptions::service(config).expect("config"),
    )
    .await;
    let svc = Svc { url: running.grpc_url(), db, nats, issuer, _running: Stopper(running.shutdown) };
    for _ in 0..100 {
        if svc.client().list_plans(pb::ListPlansRequest::default()).await.is_ok() {
            return svc;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("subscriptions did not start");
}

impl Svc {
    pub fn client(&self) -> SubscriptionsClient<Channel> {
        SubscriptionsClient::new(nexus_platform::grpc::channel(&self.url, Duration::from_secs(30)).unwrap())
    }

    pub fn owner(&self, ws: WorkspaceId) -> String {
        self.issuer.user_token(ws, Role::Owner)
    }

    pub async fn balance(&self, token: &str) -> pb::Balance {
        self.client().get_balance(authed(pb::Empty {}, token)).await.unwrap().into_inner()
    }

    /// Adds credits the way a purchase would (test set-up).
    pub async fn add_credits(&self, ws: WorkspaceId, amount: i64) {
        let pool = nexus_platform::db::connect("subscriptions", &self.db.config("subscriptions")).await.unwrap();
        let mut tx = nexus_platform::db::begin_tenant(&pool, ws).await.unwrap();
        nexus_subscriptions::app::Billing::ensure_subscription(&mut tx, ws).await.unwrap();
        nexus_subscriptions::app::Billing::grant(
            &mut tx,
            ws,
            amount,
            "purchase",
            &format!("test:{}", uuid::Uuid::new_v4()),
            false,
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
    }

    pub fn webhooks(&self) -> WebhookReceiverClient<Channel> {
        WebhookReceiverClient::new(nexus_platform::grpc::channel(&self.url, Duration::from_secs(30)).unwrap())
    }

    pub async fn admin(&self) -> sqlx::PgPool {
        self.db.admin_pool().await
    }
}

pub fn code_of(s: &tonic::Status) -> String {
    nexus_kernel::Error::from_status(s).code().to_owned()
}

pub fn reserve(credits: i64, key: &str) -> pb::ReserveRequest {
    pb::ReserveRequest {
        action: "content.generation".into(),
        credits,
        idempotency_key: key.into(),
        ..Default::default()
    }
}

pub async fn outbox_subjects(svc: &Svc, ws: WorkspaceId, like: &str) -> Vec<String> {
    sqlx::query_scalar("SELECT subject FROM subscriptions.outbox WHERE tenant_id = $1 AND subject LIKE $2 ORDER BY seq")
        .bind(ws.as_uuid())
        .bind(like)
        .fetch_all(&svc.admin().await)
        .await
        .unwrap()
}

pub async fn ledger_sum(svc: &Svc, ws: WorkspaceId) -> i64 {
    sqlx::query_scalar("SELECT coalesce(sum(amount), 0)::bigint FROM subscriptions.credit_ledger WHERE tenant_id = $1")
        .bind(ws.as_uuid())
        .fetch_one(&svc.admin().await)
        .await
        .unwrap()
}
