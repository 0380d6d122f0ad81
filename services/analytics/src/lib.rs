//! `nexus-analytics`: where every fact of NexusOne ends up. Tracking over a browser-safe write
//! key (accepted once JetStream persisted it, written to Postgres in batches by a durable
//! consumer), every service's domain and audit events, monthly-partitioned storage with
//! per-workspace retention, privacy by construction (truncated IPs, salted hashes of emails and
//! phones), reports, churn risk, and the fleet monitor.

pub mod app;
pub mod config;
pub mod domain;
pub mod events;
pub mod grpc;
pub mod repo;

use std::sync::Arc;

use nexus_kernel::WorkspaceId;
use nexus_platform::consumer::{Consumer, ConsumerSpec};
use nexus_platform::crypto::Sealer;
use nexus_platform::{Infra, Listeners, ServiceDef};
use nexus_proto::nexus::analytics::v1::analytics_server::AnalyticsServer;
use sqlx::migrate::Migrator;
use tokio_util::sync::CancellationToken;
use tonic::service::Routes;

use crate::app::Analytics;
use crate::app::churn::Churn;
use crate::app::fleet::Monitor;
use crate::app::ingest::IngestWriter;
use crate::app::maintenance::Maintenance;
use crate::app::rollups::Compactor;
use crate::app::track::Tracker;

pub use crate::config::{Config, DEFAULTS};

pub static MIGRATIONS: Migrator = sqlx::migrate!("./migrations");

pub const DEF: ServiceDef = ServiceDef {
    name: "analytics",
    migrations: Some(&MIGRATIONS),
    grpc_services: &["nexus.analytics.v1.Analytics"],
    sealed: app::sealed::COLUMNS,
};

/// Services whose events analytics consumes (each has its stream `NEXUS_<SERVICE>`). A stream
/// that does not exist yet is created, so analytics may start before its producers.
pub const PRODUCERS: &[&str] =
    &["auth", "subscriptions", "content", "video", "messaging", "ads", "commerce", "analytics"];

/// Serves the analytics service on `listeners` until `shutdown` (tests serve [`service`] instead).
pub async fn run(config: Config, listeners: Listeners, shutdown: CancellationToken) -> anyhow::Result<()> {
    let common = config.common.clone();
    let build = service(config)?;
    nexus_platform::app::serve_with_keys(DEF, common, listeners, shutdown, None, build).await
}

/// Checks `config` and returns what builds the service from the platform's infrastructure: its
/// state over `infra.db`, the ingest writers, the domain-event consumers, maintenance and the
/// fleet monitor, and the gRPC routes. Tests hand it to `RunningService`.
pub fn service(config: Config) -> anyhow::Result<impl FnOnce(&Infra) -> anyhow::Result<Routes> + Send + 'static> {
    config.validate()?;
    let sealer = Sealer::from_config(config.analytics.sealing_keys.expose())
        .map_err(|e| anyhow::anyhow!("analytics.sealing_keys: {e}"))?;
    let monitor = Arc::new(Monitor::new(config.fleet.clone())?);
    let operator_workspaces: Vec<WorkspaceId> =
        config.fleet.operator_workspaces.iter().filter_map(|w| WorkspaceId::parse(w).ok()).collect();
    Ok(move |infra: &Infra| {
        let app = Arc::new(Analytics::new(
            infra.db.clone(),
            sealer,
            config.analytics.default_retention_days,
            config.analytics.write_key_cache_ttl,
        ));
        let tracker = Arc::new(Tracker::new(app.clone(), infra.bus.clone(), config.analytics.clone()));
        if config.ingest.enabled {
            let writer =
                Arc::new(IngestWriter { app: app.clone(), bus: infra.bus.clone(), cfg: config.ingest.clone() });
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
                &config.common.nats,
            );
            let handler = Arc::new(events::DomainHandler { app: app.clone() });
            infra.spawn(Consumer::new(infra.db.clone(), infra.bus.clone(), spec, handler).run(infra.work.clone()));
        }
        let maintenance = Maintenance {
            app: app.clone(),
            cfg: config.maintenance.clone(),
            default_retention_days: config.analytics.default_retention_days,
        };
        infra.spawn(maintenance.run(infra.work.clone()));
        let compactor = Compactor { app: app.clone(), cfg: config.rollups.clone() };
        infra.spawn(compactor.run(infra.work.clone()));
        infra.spawn(monitor.clone().run(infra.work.clone()));
        let churn = Arc::new(Churn {
            app: app.clone(),
            cfg: config.churn.clone(),
            operator: operator_workspaces.first().copied(),
        });
        if config.churn.enabled {
            infra.spawn(churn.clone().run(infra.work.clone()));
        }
        let service = grpc::AnalyticsService { tracker, app, monitor, churn, operator_workspaces };
        Ok(Routes::new(nexus_platform::sized!(AnalyticsServer::new(service))))
    })
}
