//! `nexus-messaging`: one contact book per workspace (contacts, channel identities, consent, the
//! CRM timeline, deals, segments, CSV import and export), outbound webhooks to the workspace's
//! own systems, and — built on them — WhatsApp.

pub mod app;
pub mod config;
pub mod domain;
pub mod events;
pub mod grpc;
pub mod repo;

use std::sync::Arc;

use nexus_platform::consumer::{Consumer, ConsumerSpec};
use nexus_platform::{Infra, Listeners, ServiceDef};
use nexus_proto::nexus::messaging::v1::contact_transfer_server::ContactTransferServer;
use nexus_proto::nexus::messaging::v1::contacts_server::ContactsServer;
use nexus_proto::nexus::messaging::v1::crm_server::CrmServer;
use nexus_proto::nexus::messaging::v1::webhooks_server::WebhooksServer;
use sqlx::migrate::Migrator;
use tokio_util::sync::CancellationToken;
use tonic::service::Routes;

pub use crate::config::{Config, DEFAULTS};

/// The service's own migrations (after the platform's: outbox, inbox, audit, tenant tables).
pub static MIGRATIONS: Migrator = sqlx::migrate!("./migrations");

pub const DEF: ServiceDef = ServiceDef {
    name: "messaging",
    migrations: Some(&MIGRATIONS),
    grpc_services: &[
        "nexus.messaging.v1.Contacts",
        "nexus.messaging.v1.Crm",
        "nexus.messaging.v1.ContactTransfer",
        "nexus.messaging.v1.Webhooks",
    ],
};

/// Serves the messaging service on `listeners` until `shutdown` (tests serve [`service`] instead).
pub async fn run(config: Config, listeners: Listeners, shutdown: CancellationToken) -> anyhow::Result<()> {
    let common = config.common.clone();
    let build = service(config)?;
    nexus_platform::app::serve_with_keys(DEF, common, listeners, shutdown, None, build).await
}

/// Checks `config` and returns what builds the service from the platform's infrastructure: the
/// use cases over `infra.db`, the event consumers, and the gRPC routes. Tests hand it to
/// `RunningService`.
pub fn service(config: Config) -> anyhow::Result<impl FnOnce(&Infra) -> anyhow::Result<Routes> + Send + 'static> {
    config.validate()?;
    Ok(move |infra: &Infra| {
        let app = Arc::new(app::App { pool: infra.db.clone() });
        if config.leads.enabled {
            let spec = ConsumerSpec::new(
                "content",
                "messaging-leads",
                "nexus.content.page.lead_captured",
                &config.common.nats,
            );
            let handler = Arc::new(events::LeadHandler { app: app.clone() });
            infra.spawn(Consumer::new(infra.db.clone(), infra.bus.clone(), spec, handler).run(infra.work.clone()));
        }
        let handler = Arc::new(events::members::MembersHandler);
        for spec in events::members::specs(&config.common.nats) {
            let consumer = Consumer::new(infra.db.clone(), infra.bus.clone(), spec, handler.clone());
            infra.spawn(consumer.run(infra.work.clone()));
        }
        infra.spawn(app::transfer::run_import_sweeper(
            (*app).clone(),
            config.imports.stalled_after,
            config.imports.sweep_every,
            infra.work.clone(),
        ));
        let hooks = webhooks(&config, infra)?;
        let contacts = grpc::contacts::ContactsService { app: app.clone() };
        let crm = grpc::crm::CrmService { app: app.clone() };
        let transfer = grpc::transfer::TransferService { app: app.clone() };
        let webhooks = grpc::webhooks::WebhooksService { hooks };
        Ok(Routes::new(nexus_platform::sized!(ContactsServer::new(contacts)))
            .add_service(nexus_platform::sized!(CrmServer::new(crm)))
            .add_service(nexus_platform::sized!(ContactTransferServer::new(transfer)))
            .add_service(nexus_platform::sized!(WebhooksServer::new(webhooks))))
    })
}

/// The webhook use cases, and — as configured — the delivery worker and the fan-out of
/// content's page events, on the platform's task tracker.
fn webhooks(config: &Config, infra: &Infra) -> anyhow::Result<Arc<app::webhooks::Webhooks>> {
    let sealer = nexus_platform::crypto::Sealer::from_config(config.messaging.sealing_keys.expose())
        .map_err(|e| anyhow::anyhow!("messaging.sealing_keys: {e}"))?;
    let clock: Arc<dyn domain::webhooks::Clock> = Arc::new(domain::webhooks::SystemClock);
    let development = config.common.environment == nexus_platform::config::Environment::Development;
    let hooks = Arc::new(app::webhooks::Webhooks {
        pool: infra.db.clone(),
        sealer: sealer.clone(),
        outbound: infra.outbound.clone(),
        allow_http: config.webhooks.allow_http.unwrap_or(development),
        clock: clock.clone(),
    });
    if config.webhooks.deliver {
        let cfg = events::deliver::WorkerConfig {
            in_flight: config.webhooks.in_flight,
            batch: config.webhooks.batch,
            ..Default::default()
        };
        let worker = events::deliver::Worker::new(infra.db.clone(), &config.common.outbound, sealer, clock, cfg)?;
        infra.spawn(worker.run(infra.work.clone()));
    }
    if config.webhooks.fanout {
        let spec = events::fanout::spec(&config.common.nats);
        let handler = Arc::new(events::fanout::ContentFanout);
        infra.spawn(Consumer::new(infra.db.clone(), infra.bus.clone(), spec, handler).run(infra.work.clone()));
    }
    Ok(hooks)
}
