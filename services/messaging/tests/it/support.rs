//! A migrated messaging schema in a fresh database, and principals to act as.

use nexus_kernel::{UserId, WorkspaceId};
use nexus_messaging::app::App;
use nexus_platform::identity::{Principal, PrincipalKind, Role};
use nexus_testkit::TestDb;

pub struct Book {
    pub app: App,
    _db: TestDb,
}

pub async fn book() -> Book {
    nexus_testkit::init_tracing();
    let db = TestDb::new().await;
    let cfg = db.config("messaging");
    nexus_platform::db::migrate("messaging", &cfg, Some(&nexus_messaging::MIGRATIONS)).await.unwrap();
    let pool = nexus_platform::db::connect("messaging", &cfg).await.unwrap();
    Book { app: App { pool }, _db: db }
}

impl Book {
    /// A superuser pool on the book's database (RLS does not apply): for setting up what no use
    /// case writes, and for looking into the catalog.
    pub async fn admin_pool(&self) -> sqlx::PgPool {
        self._db.admin_pool().await
    }

    /// Records `p` as a current member of their workspace, as auth's events would.
    pub async fn join(&self, p: &Principal) {
        let mut tx = nexus_platform::db::tenant(&self.app.pool, p.workspace_id).await.unwrap();
        nexus_messaging::app::members::joined(&mut tx, p.workspace_id, p.user_id.as_uuid(), chrono::Utc::now())
            .await
            .unwrap();
        nexus_platform::db::commit(tx).await.unwrap();
    }
}

/// A signed-in member of `workspace` with `role`.
pub fn member(workspace: WorkspaceId, role: Role) -> Principal {
    Principal {
        user_id: UserId::new(),
        workspace_id: workspace,
        role,
        scopes: None,
        session_id: "test-session".into(),
        kind: PrincipalKind::User,
        token_id: "test-token".into(),
        expires_at: i64::MAX,
        locale: None,
        service: None,
    }
}

/// The messaging service running on port 0 against a fresh database and NATS prefix, with a
/// token issuer whose tokens it accepts.
pub struct Service {
    pub running: nexus_testkit::RunningService,
    pub issuer: nexus_testkit::identity::TestIssuer,
    pub pool: sqlx::PgPool,
    pub admin_pool: sqlx::PgPool,
    nats: nexus_testkit::TestNats,
    _db: TestDb,
}

impl Service {
    pub async fn start() -> Service {
        Self::start_with(&[]).await
    }

    pub async fn start_with(extra: &[(&str, String)]) -> Service {
        nexus_testkit::init_tracing();
        let db = TestDb::new().await;
        let nats = nexus_testkit::TestNats::new();
        let config: nexus_messaging::Config =
            nexus_testkit::service::service_config("messaging", nexus_messaging::DEFAULTS, &db, &nats, extra);
        let issuer = nexus_testkit::identity::TestIssuer::new();
        let running = nexus_testkit::RunningService::start_with_keys(
            nexus_messaging::DEF,
            config.common.clone(),
            Some(issuer.keys()),
            nexus_messaging::service(config.clone()).expect("config"),
        )
        .await;
        let pool = nexus_platform::db::connect("messaging", &config.common.database).await.unwrap();
        let admin_pool = db.admin_pool().await;
        Service { running, issuer, pool, admin_pool, nats, _db: db }
    }

    pub async fn bus(&self) -> nexus_platform::bus::Bus {
        self.nats.bus().await
    }

    pub async fn contacts(
        &self,
    ) -> nexus_proto::nexus::messaging::v1::contacts_client::ContactsClient<tonic::transport::Channel> {
        let channel =
            tonic::transport::Endpoint::from_shared(self.running.grpc_url()).unwrap().connect().await.unwrap();
        nexus_proto::nexus::messaging::v1::contacts_client::ContactsClient::new(channel)
    }

    /// Polls `f` until it yields something (10 s at most).
    pub async fn eventually<T, F, Fut>(&self, mut f: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Option<T>>,
    {
        for _ in 0..200 {
            if let Some(v) = f().await {
                return v;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("nothing came within 10 s");
    }

    /// Waits until the durable consumer `durable` of content's stream acknowledged `n` messages.
    pub async fn wait_consumed(&self, durable: &str, n: u64) {
        self.wait_consumed_of("content", durable, n).await;
    }

    /// Waits until the durable consumer `durable` of `producer`'s stream acknowledged `n` messages.
    pub async fn wait_consumed_of(&self, producer: &str, durable: &str, n: u64) {
        let bus = self.bus().await;
        let stream = bus.js.get_stream(bus.stream_name(producer)).await.unwrap();
        for _ in 0..200 {
            let consumer: Result<async_nats::jetstream::consumer::PullConsumer, _> = stream.get_consumer(durable).await;
            if let Ok(mut consumer) = consumer
                && consumer.info().await.unwrap().ack_floor.consumer_sequence >= n
            {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("{durable} did not acknowledge {n} messages within 10 s");
    }

    /// A count over the messaging schema as the database owner (RLS does not apply).
    pub async fn count(&self, ws: WorkspaceId, sql: &'static str) -> i64 {
        sqlx::query_scalar(sql).bind(ws.as_uuid()).fetch_one(&self.admin_pool).await.unwrap()
    }
}

/// Publishes `msg` as `source` would, on `subject`, under `event_id`. No message id: JetStream
/// keeps every copy, so the consumer really sees each one.
pub async fn publish_event<M: prost::Message + prost::Name>(
    bus: &nexus_platform::bus::Bus,
    (source, subject): (&str, &str),
    ws: WorkspaceId,
    event_id: uuid::Uuid,
    at: chrono::DateTime<chrono::Utc>,
    msg: &M,
) {
    let env = nexus_proto::events::Envelope {
        event_id: event_id.to_string(),
        tenant_id: ws.as_uuid().to_string(),
        event_type: M::full_name(),
        occurred_at: Some(nexus_platform::grpc::ts(at)),
        schema_version: 1,
        source: source.into(),
        payload: msg.encode_to_vec(),
        ..Default::default()
    };
    bus.js.publish(bus.subject(subject), prost::Message::encode_to_vec(&env).into()).await.unwrap().await.unwrap();
}
