//! Start a service in-process on port 0 and get its addresses back.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use nexus_platform::config::{
    AdminConfig, CommonConfig, Environment, GrpcConfig, IdentityConfig, LogFormat, ShutdownConfig, TelemetryConfig,
};
use nexus_platform::identity::KeySource;
use nexus_platform::{Infra, Listeners, ServiceDef};

use crate::{TestDb, TestNats};

/// Common config pointing at a test database and test NATS prefix, on ephemeral ports.
pub fn common_config(service: &str, db: &TestDb, nats: &TestNats) -> CommonConfig {
    CommonConfig {
        environment: Environment::Development,
        database: db.config(service),
        nats: nats.config(),
        grpc: GrpcConfig { addr: "127.0.0.1:0".parse().expect("addr"), request_timeout: Duration::from_secs(10) },
        admin: AdminConfig { addr: "127.0.0.1:0".parse().expect("addr") },
        telemetry: TelemetryConfig {
            log_format: LogFormat::Pretty,
            log_level: "warn".into(),
            otlp_endpoint: String::new(),
            sample_ratio: 1.0,
        },
        shutdown: ShutdownConfig { grace: Duration::from_secs(10) },
        // Tests that need real tokens point this at an auth service they start.
        identity: IdentityConfig {
            auth_url: "http://127.0.0.1:1".into(),
            revocation_window: Duration::from_secs(1200),
            service_secret: nexus_platform::config::Secret::new(nexus_platform::identity::dev_service_secret(service)),
        },
        // Fakes listen on loopback.
        outbound: nexus_platform::outbound::OutboundConfig {
            allow_private_cidrs: vec!["127.0.0.0/8".into(), "::1/128".into()],
            ..Default::default()
        },
    }
}

/// The environment a service binary would get from `make test` for `service`: its database and
/// role, the test NATS prefix, development rules; `extra` (e.g. `NEXUS_IDENTITY__AUTH_URL`) last,
/// so it wins. Load it with `nexus_platform::config::load_from_env(service, DEFAULTS, None, env)`.
pub fn service_env(service: &str, db: &TestDb, nats: &TestNats, extra: &[(&str, String)]) -> Vec<(String, String)> {
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

/// A service's config as its binary would load it under `make test`: its built-in `defaults`
/// and [`service_env`] with `extra`.
pub fn service_config<C: serde::de::DeserializeOwned>(
    service: &str,
    defaults: &str,
    db: &TestDb,
    nats: &TestNats,
    extra: &[(&str, String)],
) -> C {
    nexus_platform::config::load_from_env(service, defaults, None, service_env(service, db, nats, extra))
        .unwrap_or_else(|e| panic!("{service} config: {e}"))
}

pub struct RunningService {
    pub grpc_addr: SocketAddr,
    pub admin_addr: SocketAddr,
    pub shutdown: CancellationToken,
    pub handle: JoinHandle<anyhow::Result<()>>,
}

impl RunningService {
    /// Migrates, then serves `def` in the background.
    pub async fn start<F>(def: ServiceDef, config: CommonConfig, build: F) -> RunningService
    where
        F: FnOnce(&Infra) -> anyhow::Result<tonic::service::Routes> + Send + 'static,
    {
        Self::start_with_keys(def, config, None, build).await
    }

    /// Migrates `def`'s schema, then runs a service's own `run(config, listeners, shutdown)` on
    /// port 0 in the background: `RunningService::spawn(DEF, &cfg.common.database, |l, s| run(cfg, l, s))`.
    pub async fn spawn<F, Fut>(
        def: ServiceDef,
        database: &nexus_platform::config::DatabaseConfig,
        run: F,
    ) -> RunningService
    where
        F: FnOnce(Listeners, CancellationToken) -> Fut,
        Fut: std::future::Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        nexus_platform::db::migrate(def.name, database, def.migrations).await.expect("migrate");
        let listeners = Listeners::ephemeral().await.expect("bind");
        let grpc_addr = listeners.grpc.local_addr().expect("addr");
        let admin_addr = listeners.admin.local_addr().expect("addr");
        let shutdown = CancellationToken::new();
        let handle = tokio::spawn(run(listeners, shutdown.clone()));
        RunningService { grpc_addr, admin_addr, shutdown, handle }
    }

    /// [`RunningService::start`] with an explicit token-key source.
    pub async fn start_with_keys<F>(
        def: ServiceDef,
        config: CommonConfig,
        keys: Option<Arc<dyn KeySource>>,
        build: F,
    ) -> RunningService
    where
        F: FnOnce(&Infra) -> anyhow::Result<tonic::service::Routes> + Send + 'static,
    {
        nexus_platform::db::migrate(def.name, &config.database, def.migrations).await.expect("migrate");
        let listeners = Listeners::ephemeral().await.expect("bind");
        let grpc_addr = listeners.grpc.local_addr().expect("addr");
        let admin_addr = listeners.admin.local_addr().expect("addr");
        let shutdown = CancellationToken::new();
        let token = shutdown.clone();
        let handle = tokio::spawn(async move {
            nexus_platform::app::serve_with_keys(def, config, listeners, token, keys, build).await
        });
        RunningService { grpc_addr, admin_addr, shutdown, handle }
    }

    pub fn grpc_url(&self) -> String {
        format!("http://{}", self.grpc_addr)
    }

    pub fn admin_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.admin_addr)
    }

    /// Cancels and waits for a clean exit.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        self.handle.await?
    }
}

/// A service under test: its own database and NATS prefix, served on port 0, accepting the
/// tokens of `issuer`; cancelled when dropped. Services' test harnesses wrap it with their fakes.
pub struct TestService {
    pub running: RunningService,
    pub issuer: crate::identity::TestIssuer,
    /// A superuser pool on the service's database (RLS does not apply).
    pub admin_pool: sqlx::PgPool,
    pub nats: TestNats,
    pub db: TestDb,
}

impl Drop for TestService {
    fn drop(&mut self) {
        self.running.shutdown.cancel();
    }
}

impl TestService {
    /// A fresh database and NATS prefix for `def`: its config (from `defaults` and `env` as the
    /// binary would load it) is handed to `build`, which returns the service's routes.
    pub async fn start<C, F, B>(def: ServiceDef, defaults: &str, env: &[(&str, String)], build: F) -> TestService
    where
        C: serde::de::DeserializeOwned + AsRef<CommonConfig>,
        F: FnOnce(C) -> B,
        B: FnOnce(&Infra) -> anyhow::Result<tonic::service::Routes> + Send + 'static,
    {
        crate::init_tracing();
        let db = TestDb::new().await;
        let nats = TestNats::new();
        let config: C = service_config(def.name, defaults, &db, &nats, env);
        let common = config.as_ref().clone();
        let issuer = crate::identity::TestIssuer::new();
        let running = RunningService::start_with_keys(def, common, Some(issuer.keys()), build(config)).await;
        let admin_pool = db.admin_pool().await;
        TestService { running, issuer, admin_pool, nats, db }
    }

    /// A second instance of the service on the same database and NATS prefix under other
    /// settings (`env` as in [`TestService::start`]; e.g. other sealing keys after a rotation),
    /// accepting the same issuer's tokens; stopped by its own `shutdown`.
    pub async fn another<C, F, B>(
        &self,
        def: ServiceDef,
        defaults: &str,
        env: &[(&str, String)],
        build: F,
    ) -> RunningService
    where
        C: serde::de::DeserializeOwned + AsRef<CommonConfig>,
        F: FnOnce(C) -> B,
        B: FnOnce(&Infra) -> anyhow::Result<tonic::service::Routes> + Send + 'static,
    {
        let config: C = service_config(def.name, defaults, &self.db, &self.nats, env);
        let common = config.as_ref().clone();
        RunningService::start_with_keys(def, common, Some(self.issuer.keys()), build(config)).await
    }

    /// A connected channel to the service's gRPC port.
    pub async fn channel(&self) -> tonic::transport::Channel {
        tonic::transport::Endpoint::from_shared(self.running.grpc_url()).expect("url").connect().await.expect("connect")
    }

    /// A member of a new workspace with `role`.
    pub fn caller(&self, role: nexus_platform::identity::Role) -> crate::identity::Caller {
        let ws = nexus_kernel::WorkspaceId::new();
        crate::identity::Caller { ws, token: self.issuer.user_token(ws, role) }
    }

    /// An admin of a new workspace.
    pub fn admin(&self) -> crate::identity::Caller {
        self.caller(nexus_platform::identity::Role::Admin)
    }

    /// The same workspace, another role.
    pub fn as_role(
        &self,
        c: &crate::identity::Caller,
        role: nexus_platform::identity::Role,
    ) -> crate::identity::Caller {
        crate::identity::Caller { ws: c.ws, token: self.issuer.user_token(c.ws, role) }
    }

    /// A scalar read as the database owner.
    pub async fn scalar(&self, sql: &str) -> i64 {
        sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned())).fetch_one(&self.admin_pool).await.expect("scalar")
    }

    /// A statement run as the database owner.
    pub async fn exec(&self, sql: &str) {
        sqlx::query(sqlx::AssertSqlSafe(sql.to_owned())).execute(&self.admin_pool).await.expect("exec");
    }
}
