//! `nexus-analytics`: where every fact of NexusOne ends up. Tracking over a browser-safe write
//! key (accepted once JetStream persisted it, written to Postgres in batches by a durable
//! consumer), every service's domain and audit events, monthly-partitioned storage with
//! per-workspace retention, privacy by construction (truncated IPs, salted hashes of emails and
//! phones), reports, and the fleet monitor.

pub mod config;
pub mod domain;
pub mod events;
pub mod fleet;
pub mod grpc;
pub mod ingest;
pub mod maintenance;
pub mod reports;
pub mod store;

use std::sync::Arc;

use nexus_kernel::WorkspaceId;
use nexus_platform::consumer::{Consumer, ConsumerSpec};
use nexus_platform::crypto::Sealer;
use nexus_platform::{Listeners, ServiceDef};
use nexus_proto::nexus::analytics::v1::analytics_server::AnalyticsServer;
use sqlx::migrate::Migrator;
use tokio_util::sync::CancellationToken;

pub use crate::config::{Config, DEFAULTS};

pub static MIGRATIONS: Migrator = sqlx::migrate!("./migrations");

pub const DEF: ServiceDef =
    ServiceDef { name: "analytics", migrations: Some(&MIGRATIONS), grpc_services: &["nexus.analytics.v1.Analytics"] };

/// Services whose events analytics consumes (each has its stream `NEXUS_<SERVICE>`). A stream
/// that does not exist yet is created, so analytics may start before its producers.
pub const PRODUCERS: &[&str] =
    &["auth", "subscriptions", "content", "video", "messaging", "ads", "commerce", "analytics"];

/// Serves the analytics service on `listeners` until `shutdown`.
pub async fn run(config: Config, listeners: Listeners, shutdown: CancellationToken) -> anyhow::Result<()> {
    run_with_keys(config, listeners, shutdown, None).await
}

/// [`run`] with an explicit source of token-verification keys (tests).
pub async fn run_with_keys(
    config: Config,
    listeners: Listeners,
    shutdown: CancellationToken,
    keys: Option<Arc<dyn nexus_platform::identity::KeySource>>,
) -> anyhow::Result<()> {
    config.validate()?;
    let sealer = Sealer::from_config(config.analytics.sealing_keys.expose())
        .map_err(|e| anyhow::anyhow!("analytics.sealing_keys: {e}"))?;
    let pool = nexus_platform::db::connect(DEF.name, &config.common.database).await?;
    let store = Arc::new(store::Store::new(
        pool.clone(),
        sealer,
        config.analytics.default_retention_days,
        config.analytics.write_key_cache_ttl,
    ));
    let monitor = Arc::new(fleet::Monitor::new(config.fleet.clone())?);
    let operator_workspaces =
        config.fleet.operator_workspaces.iter().filter_map(|w| WorkspaceId::parse(w).ok()).collect();
    let nats = config.common.nats.clone();
    nexus_platform::app::serve_with_keys(DEF, config.common.clone(), listeners, shutdown, keys, move |infra| {
        let tracker = Arc::new(ingest::Tracker::new(store.clone(), infra.bus.clone(), config.analytics.clone()));
        if config.ingest.enabled {
            let writer = Arc::new(ingest::IngestWriter {
                store: store.clone(),
                bus: infra.bus.clone(),
                cfg: config.ingest.clone(),
            });
            // Several pullers on the one durable consumer: one writes while another fetches.
            for _ in 0..config.ingest.workers.max(1) {
                infra.spawn(writer.clone().run(infra.work.clone()));
            }
        }
        for producer in PRODUCERS {
            let spec = ConsumerSpec::new(
                *producer,
                format!("analytics-domain-{producer}"),
                format!("nexus.{producer}.>"),
                &nats,
            );
            let handler = Arc::new(events::DomainHandler { store: store.clone() });
            infra.spawn(Consumer::new(pool.clone(), infra.bus.clone(), spec, handler).run(infra.work.clone()));
        }
        let maintenance = maintenance::Maintenance {
            store: store.clone(),
            cfg: config.maintenance.clone(),
            default_retention_days: config.analytics.default_retention_days,
        };
        infra.spawn(maintenance.run(infra.work.clone()));
        infra.spawn(monitor.clone().run(infra.work.clone()));
        let service = grpc::AnalyticsService {
            tracker,
            store: store.clone(),
            reports: reports::Reports { store: store.clone() },
            monitor: monitor.clone(),
            operator_workspaces,
        };
        Ok(tonic::service::Routes::new(nexus_platform::sized!(AnalyticsServer::new(service))))
    })
    .await
}
