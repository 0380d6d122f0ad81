use std::time::Duration;

use nexus_kernel::WorkspaceId;
use nexus_platform::identity::Role;
use nexus_proto::nexus::content::v1 as pb;
use nexus_proto::nexus::content::v1::content_client::ContentClient;
use nexus_proto::nexus::subscriptions::v1 as spb;
use nexus_proto::nexus::subscriptions::v1::subscriptions_client::SubscriptionsClient;
use nexus_testkit::identity::{TestIssuer, authed};
use nexus_testkit::openai::{FakeOpenAi, TEST_API_KEY, TEST_MODEL};
use nexus_testkit::{RunningService, TestDb, TestNats};
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;

/// The content service and the subscriptions service it charges, in one test database.
pub struct Stack {
    pub url: String,
    pub subs_url: String,
    pub db: TestDb,
    nats: TestNats,
    pub issuer: TestIssuer,
    content: RunningService,
    stop: CancellationToken,
    /// Stops only the subscriptions service (a child of `stop`).
    subs_stop: CancellationToken,
}

impl Drop for Stack {
    fn drop(&mut self) {
        self.content.shutdown.cancel();
        self.stop.cancel();
    }
}

/// Starts the subscriptions service on a new port; returns its URL.
async fn spawn_subscriptions(db: &TestDb, nats: &TestNats, issuer: &TestIssuer, stop: CancellationToken) -> String {
    let sub_cfg: nexus_subscriptions::Config = nexus_platform::config::load_from_env(
        "subscriptions",
        nexus_subscriptions::DEFAULTS,
        None,
        env(db, nats, "subscriptions", &[]),
    )
    .expect("subscriptions config");
    nexus_platform::db::migrate("subscriptions", &sub_cfg.common.database, Some(&nexus_subscriptions::MIGRATIONS))
        .await
        .expect("migrate subscriptions");
    let listeners = nexus_platform::Listeners::ephemeral().await.unwrap();
    let subs_url = format!("http://{}", listeners.grpc.local_addr().unwrap());
    let keys = issuer.keys();
    tokio::spawn(async move {
        nexus_subscriptions::run_with_keys(sub_cfg, listeners, stop, Some(keys)).await.expect("subscriptions serves")
    });
    subs_url
}

fn env(db: &TestDb, nats: &TestNats, service: &str, extra: &[(&str, String)]) -> Vec<(String, String)> {
    let cfg = db.config(service);
    let mut env = vec![
        ("NEXUS_DATABASE__URL".to_owned(), cfg.url.expose().to_owned()),
        ("NEXUS_DATABASE__ADMIN_URL".to_owned(), cfg.admin_url.expose().to_owned()),
        ("NEXUS_NATS__URL".to_owned(), nats.url.clone()),
        ("NEXUS_NATS__PREFIX".to_owned(), nats.prefix.clone()),
        // Provider fakes and their output files listen on loopback.
        ("NEXUS_OUTBOUND__ALLOW_PRIVATE_CIDRS".to_owned(), "127.0.0.0/8".to_owned()),
    ];
    env.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), v.clone())));
    env
}

pub async fn start() -> Stack {
    start_with(&[]).await
}

/// Starts both services; `extra` are more `NEXUS_*` settings for the content service.
pub async fn start_with(extra: &[(&str, String)]) -> Stack {
    nexus_testkit::init_tracing();
    let db = TestDb::new().await;
    let nats = TestNats::new();
    let issuer = TestIssuer::new();
    let stop = CancellationToken::new();
    let subs_stop = stop.child_token();
    let subs_url = spawn_subscriptions(&db, &nats, &issuer, subs_stop.clone()).await;

    let mut extra: Vec<(&str, String)> = extra.to_vec();
    extra.push(("NEXUS_SERVICES__SUBSCRIPTIONS", subs_url.clone()));
    let cfg: nexus_content::Config = nexus_platform::config::load_from_env(
        "content",
        nexus_content::DEFAULTS,
        None,
        env(&db, &nats, "content", &extra),
    )
    .expect("content config");
    let common = cfg.common.clone();
    let build = nexus_content::service(cfg).expect("content config");
    let content = RunningService::start_with_keys(nexus_content::DEF, common, Some(issuer.keys()), build).await;
    let url = content.grpc_url();

    let stack = Stack { url, subs_url, db, nats, issuer, content, stop, subs_stop };
    for _ in 0..200 {
        let content_up = stack.client().get_published_page(pb::GetPublishedPageRequest::default()).await;
        let subs_up = stack.subs().list_plans(spb::ListPlansRequest::default()).await.is_ok();
        // Any answer from the content service (even an error) means it is serving.
        let content_up = !matches!(&content_up, Err(s) if s.code() == tonic::Code::Unavailable);
        if content_up && subs_up {
            return stack;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("services did not start");
}

/// Both services, content generating with a model: the fake OpenAI server (no retries).
pub async fn with_model() -> (Stack, FakeOpenAi) {
    let fake = FakeOpenAi::start().await;
    let s = start_with(&[
        ("NEXUS_LLM__PROVIDER", "openai".into()),
        ("NEXUS_LLM__BASE_URL", fake.base_url.clone()),
        ("NEXUS_LLM__API_KEY", TEST_API_KEY.into()),
        ("NEXUS_LLM__MODEL", TEST_MODEL.into()),
        ("NEXUS_LLM__MAX_RETRIES", "0".into()),
    ])
    .await;
    (s, fake)
}

impl Stack {
    pub fn client(&self) -> ContentClient<Channel> {
        ContentClient::new(nexus_platform::grpc::channel(&self.url, Duration::from_secs(30)).unwrap())
    }

    pub fn subs(&self) -> SubscriptionsClient<Channel> {
        SubscriptionsClient::new(nexus_platform::grpc::channel(&self.subs_url, Duration::from_secs(30)).unwrap())
    }

    pub fn owner(&self, ws: WorkspaceId) -> String {
        self.issuer.user_token(ws, Role::Owner)
    }

    pub async fn balance(&self, token: &str) -> spb::Balance {
        self.subs().get_balance(authed(spb::Empty {}, token)).await.unwrap().into_inner()
    }

    /// The balance once every hold is settled (settlements arrive through the outbox and NATS).
    pub async fn settled(&self, token: &str) -> spb::Balance {
        nexus_testkit::eventually(Duration::from_secs(20), || async { self.balance(token).await.reserved == 0 }).await;
        self.balance(token).await
    }

    /// Stops the subscriptions service (content keeps running and can no longer reach it).
    pub async fn stop_subscriptions(&self) {
        self.subs_stop.cancel();
        for _ in 0..100 {
            if self.subs().list_plans(spb::ListPlansRequest::default()).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("subscriptions did not stop");
    }

    /// Starts subscriptions again (on a new port, same database and NATS); `subs()` then uses it.
    pub async fn restart_subscriptions(&mut self) {
        self.subs_stop = self.stop.child_token();
        self.subs_url = spawn_subscriptions(&self.db, &self.nats, &self.issuer, self.subs_stop.clone()).await;
        for _ in 0..200 {
            if self.subs().list_plans(spb::ListPlansRequest::default()).await.is_ok() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("subscriptions did not restart");
    }

    /// Settlements content wrote for a workspace, in order.
    pub async fn settlements(&self, ws: WorkspaceId) -> Vec<nexus_proto::events::MeteredJobFinished> {
        use prost::Message;
        let rows: Vec<Vec<u8>> = sqlx::query_scalar(
            "SELECT payload FROM content.outbox WHERE tenant_id = $1 AND subject = 'nexus.content.job.finished' ORDER BY seq",
        )
        .bind(ws.as_uuid())
        .fetch_all(&self.admin().await)
        .await
        .unwrap();
        rows.iter().map(|p| nexus_proto::events::MeteredJobFinished::decode(p.as_slice()).unwrap()).collect()
    }

    /// The sum of the workspace's ledger (it must equal its available credits).
    pub async fn ledger_sum(&self, ws: WorkspaceId) -> i64 {
        sqlx::query_scalar(
            "SELECT coalesce(sum(amount), 0)::bigint FROM subscriptions.credit_ledger WHERE tenant_id = $1",
        )
        .bind(ws.as_uuid())
        .fetch_one(&self.admin().await)
        .await
        .unwrap()
    }

    pub async fn admin(&self) -> sqlx::PgPool {
        self.db.admin_pool().await
    }

    /// Ledger rows of a workspace, as the subscriptions service keeps them.
    pub async fn ledger_rows(&self, ws: WorkspaceId) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM subscriptions.credit_ledger WHERE tenant_id = $1")
            .bind(ws.as_uuid())
            .fetch_one(&self.admin().await)
            .await
            .unwrap()
    }

    pub async fn count(&self, sql: &str, ws: WorkspaceId) -> i64 {
        sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
            .bind(ws.as_uuid())
            .fetch_one(&self.admin().await)
            .await
            .unwrap()
    }
}

pub fn code_of(s: &tonic::Status) -> String {
    nexus_kernel::Error::from_status(s).code().to_owned()
}

pub fn request(kind: &str, platform: &str, language: &str) -> pb::GenerateRequest {
    pb::GenerateRequest {
        kind: kind.into(),
        platform: platform.into(),
        language: language.into(),
        product: "Trail Runner X".into(),
        audience: "weekend hikers".into(),
        facts: vec!["breathable mesh upper".into(), "weighs only 220 g".into()],
        ..Default::default()
    }
}
