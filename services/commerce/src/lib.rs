//! `nexus-commerce`: dropshipping. Supplier connections (CJ Dropshipping, AliExpress, a local
//! sample catalogue) and stores (Shopify, a local store); catalogue search and import with
//! variants, pricing rules in exact decimal money with recorded exchange rates; price and stock
//! monitoring; store orders from webhooks and their fulfilment through the supplier; sales and
//! commissions.

pub mod app;
pub mod config;
pub mod domain;
pub mod events;
pub mod grpc;
pub mod repo;

use std::sync::{Arc, OnceLock};

use nexus_platform::{Infra, Listeners, ServiceDef};
use nexus_proto::nexus::commerce::v1::commerce_server::CommerceServer;
use nexus_proto::nexus::webhooks::v1::webhook_receiver_server::WebhookReceiverServer;
use sqlx::migrate::Migrator;
use tokio_util::sync::CancellationToken;
use tonic::service::Routes;

pub use crate::config::{Config, DEFAULTS};

/// The service's own migrations (after the platform's: outbox, inbox, audit, tenant tables).
pub static MIGRATIONS: Migrator = sqlx::migrate!("./migrations");

pub const DEF: ServiceDef = ServiceDef {
    name: "commerce",
    migrations: Some(&MIGRATIONS),
    grpc_services: &["nexus.commerce.v1.Commerce", "nexus.webhooks.v1.WebhookReceiver"],
    sealed: app::sealed::COLUMNS,
};

/// Serves the commerce service on `listeners` until `shutdown` (tests serve [`service`] instead).
pub async fn run(config: Config, listeners: Listeners, shutdown: CancellationToken) -> anyhow::Result<()> {
    let common = config.common.clone();
    let build = service(config)?;
    nexus_platform::app::serve_with_keys(DEF, common, listeners, shutdown, None, build).await
}

/// Checks `config` and returns what builds the service from the platform's infrastructure: the
/// use cases over `infra.db`, the monitoring sweep and rates refresher on the platform's task
/// tracker, and the gRPC routes. Tests hand it to `RunningService`.
pub fn service(config: Config) -> anyhow::Result<impl FnOnce(&Infra) -> anyhow::Result<Routes> + Send + 'static> {
    service_sharing(config, Arc::new(OnceLock::new()))
}

/// [`service`], also handing the use cases to `shared` once built (the benchmarks run the
/// monitoring sweep on demand through it).
pub fn service_sharing(
    config: Config,
    shared: Arc<OnceLock<Arc<app::App>>>,
) -> anyhow::Result<impl FnOnce(&Infra) -> anyhow::Result<Routes> + Send + 'static> {
    config.validate()?;
    Ok(move |infra: &Infra| {
        let monitoring = config.monitoring.enabled;
        let ecb = config.rates.provider == "ecb";
        let app = Arc::new(app::App::new(config, infra)?);
        let _ = shared.set(app.clone());
        if monitoring {
            infra.spawn(app::monitoring::sweeper(app.clone(), infra.work.clone()));
        }
        if ecb {
            infra.spawn(app::rates::refresher(app.clone(), infra.work.clone()));
        }
        Ok(Routes::new(nexus_platform::sized!(CommerceServer::new(grpc::CommerceService { app: app.clone() })))
            .add_service(nexus_platform::sized!(WebhookReceiverServer::new(grpc::Webhooks { app }))))
    })
}
