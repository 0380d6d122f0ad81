//! `nexus-subscriptions`: plans, subscriptions, the credit ledger every metered feature reserves
//! against, and entitlements.

pub mod app;
pub mod config;
pub mod domain;
pub mod events;
pub mod grpc;
pub mod repo;

use std::sync::Arc;

use nexus_platform::consumer::{Consumer, ConsumerSpec};
use nexus_platform::{Infra, Listeners, ServiceDef};
use nexus_proto::nexus::subscriptions::v1::subscriptions_server::SubscriptionsServer;
use nexus_proto::nexus::webhooks::v1::webhook_receiver_server::WebhookReceiverServer;
use sqlx::migrate::Migrator;
use tokio_util::sync::CancellationToken;

pub use crate::config::{Config, DEFAULTS};

pub static MIGRATIONS: Migrator = sqlx::migrate!("./migrations");

pub const DEF: ServiceDef = ServiceDef {
    name: "subscriptions",
    migrations: Some(&MIGRATIONS),
    grpc_services: &["nexus.subscriptions.v1.Subscriptions", "nexus.webhooks.v1.WebhookReceiver"],
    sealed: &[],
};

/// Serves the subscriptions service on `listeners` until `shutdown`.
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
    let common = config.common.clone();
    let build = service(config)?;
    nexus_platform::app::serve_with_keys(DEF, common, listeners, shutdown, keys, build).await
}

/// Returns what builds the service from the platform's infrastructure: its consumers, sweeper
/// and gRPC routes. Tests hand it to `nexus_testkit::RunningService`.
pub fn service(
    config: Config,
) -> anyhow::Result<impl FnOnce(&Infra) -> anyhow::Result<tonic::service::Routes> + Send + 'static> {
    Ok(move |infra: &Infra| build(&config, infra))
}

fn build(config: &Config, infra: &Infra) -> anyhow::Result<tonic::service::Routes> {
    let billing = Arc::new(app::Billing::new(infra.db.clone(), config));
    if billing.stripe.is_none() {
        tracing::info!("no Stripe key: billing is local (checkouts complete in the app, no money moves)");
    }
    let nats = &config.common.nats;
    // New workspaces start on FREE as soon as auth announces them.
    let spec = ConsumerSpec::new("auth", "subscriptions-provisioning", "nexus.auth.user.signed_up", nats);
    infra.spawn(
        Consumer::new(infra.db.clone(), infra.bus.clone(), spec, Arc::new(events::provision::Provisioner))
            .run(infra.work.clone()),
    );
    for producer in events::settlement::PRODUCERS {
        let spec = ConsumerSpec::new(
            *producer,
            format!("subscriptions-settlement-{producer}"),
            format!("nexus.{producer}.job.finished"),
            nats,
        );
        let handler = Arc::new(events::settlement::Settlement { billing: billing.clone() });
        infra.spawn(Consumer::new(infra.db.clone(), infra.bus.clone(), spec, handler).run(infra.work.clone()));
    }
    infra.spawn(app::sweeper(billing.clone(), config.billing.sweep_interval, infra.work.clone()));
    Ok(tonic::service::Routes::new(nexus_platform::sized!(SubscriptionsServer::new(grpc::SubscriptionsService {
        billing: billing.clone(),
    })))
    .add_service(nexus_platform::sized!(WebhookReceiverServer::new(grpc::StripeWebhooks { billing }))))
}
