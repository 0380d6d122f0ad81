use std::sync::{Arc, OnceLock};
use std::time::Duration;

use nexus_analytics::app::Analytics;
use nexus_kernel::WorkspaceId;
use nexus_platform::identity::Role;
use nexus_proto::nexus::analytics::v1 as pb;
use nexus_proto::nexus::analytics::v1::analytics_client::AnalyticsClient;
use nexus_testkit::identity::{TestIssuer, authed};
use nexus_testkit::{RunningService, TestDb, TestNats};
use tonic::transport::Channel;

pub struct Svc {
    pub url: String,
    pub db: TestDb,
    pub nats: TestNats,
    pub issuer: TestIssuer,
    pub config: nexus_analytics::Config,
    pub running: RunningService,
}

impl Drop for Svc {
    fn drop(&mut self) {
        self.running.shutdown.cancel();
    }
}

pub struct Options {
    /// Run the ingest writer inside the service (tests that crash it run their own).
    pub ingest: bool,
    pub operator: Option<WorkspaceId>,
    pub extra_env: Vec<(&'static str, String)>,
    /// Fleet services to watch besides analytics itself.
    pub fleet: Vec<(&'static str, String)>,
}

impl Default for Options {
    fn default() -> Self {
        Self { ingest: true, operator: None, extra_env: Vec::new(), fleet: Vec::new() }
    }
}

pub fn env_for(db: &TestDb, nats: &TestNats) -> Vec<(String, String)> {
    let cfg = db.config("analytics");
    vec![
        ("NEXUS_DATABASE__URL".to_owned(), cfg.url.expose().to_owned()),
        ("NEXUS_DATABASE__ADMIN_URL".to_owned(), cfg.admin_url.expose().to_owned()),
        ("NEXUS_DATABASE__MAX_CONNECTIONS".to_owned(), "24".to_owned()),
        ("NEXUS_DATABASE__ACQUIRE_TIMEOUT".to_owned(), "60s".to_owned()),
        ("NEXUS_NATS__URL".to_owned(), nats.url.clone()),
        ("NEXUS_NATS__PREFIX".to_owned(), nats.prefix.clone()),
        // Redelivery after a crash comes quickly.
        ("NEXUS_NATS__ACK_WAIT".to_owned(), "2s".to_owned()),
        ("NEXUS_FLEET__SCRAPE_INTERVAL".to_owned(), "300ms".to_owned()),
    ]
}

pub async fn start() -> Svc {
    start_with(Options::default()).await
}

pub async fn start_with(opts: Options) -> Svc {
    nexus_testkit::init_tracing();
    let db = TestDb::new().await;
    let nats = TestNats::new();
    let mut env = env_for(&db, &nats);
    env.push(("NEXUS_INGEST__ENABLED".to_owned(), opts.ingest.to_string()));
    for (k, v) in opts.extra_env {
        env.push((k.to_owned(), v));
    }
    let mut config: nexus_analytics::Config =
        nexus_platform::config::load_from_env("analytics", nexus_analytics::DEFAULTS, None, env).expect("config");
    config.fleet.services = opts.fleet.into_iter().map(|(name, u)| (name.to_owned(), u)).collect();
    config.fleet.operator_workspaces = opts.operator.map(|w| vec![w.to_string()]).unwrap_or_default();
    let issuer = TestIssuer::new();
    // The fleet also watches analytics itself, whose admin address exists only once it listens.
    // It is set below before the service task first runs (the test runtime has one thread, and
    // the task connects to Postgres and NATS before it builds the service).
    let own_admin: Arc<OnceLock<String>> = Arc::default();
    let (c, admin) = (config.clone(), own_admin.clone());
    let running = RunningService::start_with_keys(
        nexus_analytics::DEF,
        config.common.clone(),
        Some(issuer.keys()),
        move |infra| {
            let mut c = c;
            c.fleet.services.insert("analytics".into(), admin.get().cloned().expect("admin address set"));
            nexus_analytics::service(c)?(infra)
        },
    )
    .await;
    own_admin.set(format!("http://{}", running.admin_addr)).expect("set once");
    let svc = Svc { url: running.grpc_url(), db, nats, issuer, config, running };
    let token = svc.owner(WorkspaceId::new());
    for _ in 0..200 {
        if svc.client().get_settings(authed(pb::Empty {}, &token)).await.is_ok() {
            return svc;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("analytics did not start");
}

impl Svc {
    pub fn client(&self) -> AnalyticsClient<Channel> {
        AnalyticsClient::new(nexus_platform::grpc::channel(&self.url, Duration::from_secs(60)).unwrap())
            .max_decoding_message_size(16 << 20)
    }

    pub fn owner(&self, ws: WorkspaceId) -> String {
        self.issuer.user_token(ws, Role::Owner)
    }

    pub fn token(&self, ws: WorkspaceId, role: Role) -> String {
        self.issuer.user_token(ws, role)
    }

    /// The workspace's write key (created on first request).
    pub async fn write_key(&self, ws: WorkspaceId) -> String {
        self.client().get_write_key(authed(pb::Empty {}, &self.owner(ws))).await.unwrap().into_inner().key
    }

    pub async fn admin(&self) -> sqlx::PgPool {
        self.db.admin_pool().await
    }

    /// The service state on its own pool, as the service role (for tests that run the writer or
    /// maintenance themselves).
    pub async fn app(&self) -> Arc<Analytics> {
        let pool = nexus_platform::db::connect("analytics", &self.config.common.database).await.unwrap();
        let sealer = nexus_platform::crypto::Sealer::from_config(self.config.analytics.sealing_keys.expose()).unwrap();
        Arc::new(Analytics::new(pool, sealer, self.config.analytics.default_retention_days, Duration::from_secs(30)))
    }

    pub async fn bus(&self) -> nexus_platform::bus::Bus {
        let bus = nexus_platform::bus::Bus::connect("analytics-test", &self.config.common.nats).await.unwrap();
        assert!(
            nexus_testkit::eventually(Duration::from_secs(10), || {
                let b = bus.clone();
                async move { b.is_connected() }
            })
            .await
        );
        bus
    }

    pub async fn count_events(&self, ws: WorkspaceId) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM analytics.analytics_events WHERE tenant_id = $1")
            .bind(ws.as_uuid())
            .fetch_one(&self.admin().await)
            .await
            .unwrap()
    }

    /// Waits until `ws` has `n` stored events (fails after `secs`), then checks it stays exactly `n`.
    pub async fn wait_for_events(&self, ws: WorkspaceId, n: i64, secs: u64) {
        let deadline = std::time::Instant::now() + Duration::from_secs(secs);
        let mut have = self.count_events(ws).await;
        while have < n && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
            have = self.count_events(ws).await;
        }
        assert_eq!(have, n, "stored events of {ws}");
    }
}

pub fn code_of(s: &tonic::Status) -> String {
    nexus_kernel::Error::from_status(s).code().to_owned()
}

pub fn event(name: &str, id: &str, at: chrono::DateTime<chrono::Utc>, anon: &str) -> pb::TrackEvent {
    pb::TrackEvent {
        name: name.into(),
        client_event_id: id.into(),
        timestamp: at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        anonymous_id: anon.into(),
        ..Default::default()
    }
}

pub fn batch(key: &str, events: Vec<pb::TrackEvent>) -> pb::TrackBatchRequest {
    pb::TrackBatchRequest { write_key: key.into(), origin: String::new(), events }
}

/// The `sub` claim of a test token.
pub fn user_of(token: &str) -> String {
    use base64::Engine;
    let payload = token.split('.').nth(1).unwrap();
    let claims: serde_json::Value =
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    claims["sub"].as_str().unwrap().to_owned()
}

/// Publishes a domain event that happened at `at` for `ws`, as its producing service would.
pub async fn publish_at<M: prost::Message + prost::Name>(
    bus: &nexus_platform::bus::Bus,
    subject: &str,
    ws: WorkspaceId,
    event_id: uuid::Uuid,
    at: chrono::DateTime<chrono::Utc>,
    msg: &M,
) {
    let env = nexus_proto::events::Envelope {
        event_id: event_id.to_string(),
        tenant_id: ws.as_uuid().to_string(),
        event_type: M::full_name(),
        occurred_at: Some(prost_types::Timestamp { seconds: at.timestamp(), nanos: 0 }),
        schema_version: 1,
        source: subject.split('.').nth(1).unwrap_or_default().to_owned(),
        payload: msg.encode_to_vec(),
        ..Default::default()
    };
    use prost::Message as _;
    // No message id: JetStream keeps every copy, so a consumer really sees a repeat twice.
    bus.js.publish(bus.subject(subject), env.encode_to_vec().into()).await.unwrap().await.unwrap();
}
