//! `nexus-subscriptions`: plans, subscriptions, the credit ledger every metered feature reserves
//! against, and entitlements.

pub mod app;
pub mod config;
pub mod domain;
pub mod grpc;
pub mod payments;
pub mod provision;
pub mod settlement;
pub mod stripe_webhooks;

use std::sync::Arc;
use std::time::Duration;

use nexus_platform::consumer::{Consumer, ConsumerSpec};
use nexus_platform::{Listeners, ServiceDef};
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
    let pool = nexus_platform::db::connect(DEF.name, &config.common.database).await?;
    let billing = Arc::new(app::Billing::new(pool.clone(), config.billing.clone()));
    let stripe = config.stripe.enabled().then(|| {
        let mut cfg = nexus_providers::stripe::StripeConfig::new(config.stripe.api_key.expose());
        cfg.base_url = config.stripe.base_url.clone();
        nexus_providers::stripe::StripeClient::new(cfg, reqwest::Client::new())
    });
    if stripe.is_none() {
        tracing::info!("no Stripe key: billing is local (checkouts complete in the app, no money moves)");
    }
    let payments = Arc::new(payments::Payments { billing: billing.clone(), stripe, settings: config.stripe.clone() });
    let sweep = config.billing.sweep_interval;
    let nats = config.common.nats.clone();
    nexus_platform::app::serve_with_keys(DEF, config.common.clone(), listeners, shutdown, keys, move |infra| {
        // New workspaces start on FREE as soon as auth announces them.
        let spec = ConsumerSpec::new("auth", "subscriptions-provisioning", "nexus.auth.user.signed_up", &nats);
        infra.spawn(
            Consumer::new(pool.clone(), infra.bus.clone(), spec, Arc::new(provision::Provisioner))
                .run(infra.work.clone()),
        );
        for producer in settlement::PRODUCERS {
            let spec = ConsumerSpec::new(
                *producer,
                format!("subscriptions-settlement-{producer}"),
                format!("nexus.{producer}.job.finished"),
                &nats,
            );
            let handler = Arc::new(settlement::Settlement { billing: billing.clone() });
            infra.spawn(Consumer::new(pool.clone(), infra.bus.clone(), spec, handler).run(infra.work.clone()));
        }
        infra.spawn(sweeper(billing.clone(), sweep, infra.work.clone()));
        Ok(tonic::service::Routes::new(nexus_platform::sized!(SubscriptionsServer::new(grpc::SubscriptionsService {
            billing,
            payments: payments.clone(),
        })))
        .add_service(nexus_platform::sized!(WebhookReceiverServer::new(
            stripe_webhooks::StripeWebhooks::new(payments)
        ))))
    })
    .await
}

/// Gives back expired reservations and renews locally billed subscriptions.
async fn sweeper(billing: Arc<app::Billing>, every: Duration, stop: CancellationToken) {
    loop {
        if let Err(e) = billing.expire_reservations().await {
            tracing::warn!(error = %e, "reservation expiry sweep failed");
        }
        if let Err(e) = billing.renew_due().await {
            tracing::warn!(error = %e, "renewal sweep failed");
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
    }
}
