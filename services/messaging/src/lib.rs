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
use nexus_proto::nexus::messaging::v1::whats_app_server::WhatsAppServer;
use nexus_proto::nexus::webhooks::v1::webhook_receiver_server::WebhookReceiverServer;
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
        "nexus.messaging.v1.WhatsApp",
        "nexus.webhooks.v1.WebhookReceiver",
    ],
    sealed: app::sealed::COLUMNS,
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
        let handler = Arc::new(events::orders::OrdersHandler);
        for spec in events::orders::specs(&config.common.nats) {
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
        let wa = whatsapp(&config, infra)?;
        if config.broadcasts.send {
            let b = &config.broadcasts;
            let cfg = app::broadcasts::SenderConfig {
                default_rate: b.default_rate,
                batch: b.batch,
                in_flight: b.in_flight,
                lease: b.lease,
                idle: b.idle,
            };
            infra.spawn(app::broadcasts::run_sender(wa.clone(), cfg, infra.work.clone()));
        }
        if config.media.download {
            let handler = Arc::new(events::media::MediaHandler {
                wa: wa.clone(),
                max_deliveries: config.common.nats.max_deliveries,
            });
            let spec = events::media::spec(&config.common.nats);
            infra.spawn(Consumer::new(infra.db.clone(), infra.bus.clone(), spec, handler).run(infra.work.clone()));
        }
        infra.spawn(app::numbers::run_quality_refresh(
            wa.clone(),
            config.whatsapp.quality_refresh_every,
            infra.work.clone(),
        ));
        let contacts = grpc::contacts::ContactsService { app: app.clone() };
        let crm = grpc::crm::CrmService { app: app.clone() };
        let transfer = grpc::transfer::TransferService { app: app.clone() };
        let webhooks = grpc::webhooks::WebhooksService { hooks };
        Ok(Routes::new(nexus_platform::sized!(ContactsServer::new(contacts)))
            .add_service(nexus_platform::sized!(CrmServer::new(crm)))
            .add_service(nexus_platform::sized!(ContactTransferServer::new(transfer)))
            .add_service(nexus_platform::sized!(WebhooksServer::new(webhooks)))
            .add_service(nexus_platform::sized!(WhatsAppServer::new(grpc::whatsapp::WhatsAppService {
                wa: wa.clone(),
                default_rate: config.broadcasts.default_rate,
            })))
            .add_service(nexus_platform::sized!(WebhookReceiverServer::new(grpc::whatsapp::Webhooks { wa }))))
    })
}

/// The WhatsApp use cases: Meta's Cloud API (the token is each number's own), the local
/// sandbox when allowed, and credits and plan limits through subscriptions.
fn whatsapp(config: &Config, infra: &Infra) -> anyhow::Result<Arc<app::whatsapp::WhatsApp>> {
    nexus_platform::install_crypto_provider();
    let sealer = nexus_platform::crypto::Sealer::from_config(config.messaging.sealing_keys.expose())
        .map_err(|e| anyhow::anyhow!("messaging.sealing_keys: {e}"))?;
    let http = reqwest::Client::builder().connect_timeout(std::time::Duration::from_secs(5)).build()?;
    // Media URLs are Meta's choice: fetched through the safe outbound client.
    let meta: Arc<dyn nexus_providers::whatsapp::WhatsApp> = Arc::new(
        nexus_providers::whatsapp::WhatsAppClient::new(
            nexus_providers::whatsapp::WhatsAppConfig { base_url: config.whatsapp.base_url.clone() },
            http,
        )
        .with_media_fetch(infra.outbound.http().clone(), infra.outbound.url_guard()),
    );
    let storage = Arc::new(nexus_platform::storage::Storage::new(&config.storage)?);
    let credits =
        Arc::new(nexus_platform::credits::GrpcCredits::new(&config.services.subscriptions, config.services.timeout)?);
    let agents: Option<Arc<dyn app::bots::BotAgent>> = if config.services.content.is_empty() {
        None
    } else {
        let channel = nexus_platform::grpc::context_channel(&config.services.content, config.services.timeout)
            .map_err(|e| anyhow::anyhow!("services.content: {:?}: {e}", config.services.content))?;
        Some(Arc::new(app::bots::ContentAgents { channel, tokens: infra.service_tokens.clone() }))
    };
    Ok(Arc::new(app::whatsapp::WhatsApp {
        pool: infra.db.clone(),
        sealer,
        credits,
        meta: Some(meta),
        local: Arc::new(nexus_providers::whatsapp::LocalWhatsApp::new()),
        allow_local: config.whatsapp_local(),
        app_secret: config.whatsapp.app_secret.expose().to_owned(),
        verify_token: config.whatsapp.verify_token.expose().to_owned(),
        bus: Some(infra.bus.clone()),
        stopping: infra.stopping.clone(),
        agents,
        storage,
    }))
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
        let handler = Arc::new(events::fanout::AdsFanout);
        for spec in events::fanout::ads_specs(&config.common.nats) {
            let consumer = Consumer::new(infra.db.clone(), infra.bus.clone(), spec, handler.clone());
            infra.spawn(consumer.run(infra.work.clone()));
        }
        let spec = events::fanout::analytics_spec(&config.common.nats);
        let handler = Arc::new(events::fanout::AnalyticsFanout);
        infra.spawn(Consumer::new(infra.db.clone(), infra.bus.clone(), spec, handler).run(infra.work.clone()));
    }
    Ok(hooks)
}
