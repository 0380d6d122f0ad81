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
