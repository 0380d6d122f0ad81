//! Use cases, one file per capability, over the one state [`Billing`].
//!
//! Stripe is the source of truth when configured: webhooks and our own calls both end in
//! [`Billing::observe`] with the subscription as Stripe reports it *now* (re-read, never taken
//! from an event body, so events arriving out of order cannot move us backwards). Without a Stripe
//! key the same state machine runs on local sessions, so the product works offline.

mod batch;
mod catalogue;
mod checkout;
mod credits;
mod entitlements;
mod invoices;
mod plan_change;
mod renewal;
mod subscription;
mod webhooks;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Instant;

use nexus_kernel::{Error, ErrorKind};
use nexus_providers::stripe::{StripeClient, StripeConfig, StripeError};
use sqlx::PgPool;

use crate::config::{BillingConfig, Config, StripeSettings};

pub use renewal::sweeper;
pub use webhooks::WebhookOutcome;

/// The subscriptions service's state: its pool, settings, and the Stripe client when configured.
pub struct Billing {
    pub db: PgPool,
    pub cfg: BillingConfig,
    pub stripe: Option<StripeClient>,
    pub settings: StripeSettings,
    /// Credits per action, read from `price_table` at most every [`catalogue::PRICE_CACHE_TTL`]:
    /// every reservation needs its price, and the table changes by deployment, not by request.
    prices: RwLock<Option<(Instant, HashMap<String, i64>)>>,
    /// Reservations of busy workspaces waiting to be sent together.
    batches: Arc<batch::Batches>,
}

impl Billing {
    pub fn new(db: PgPool, config: &Config) -> Self {
        let stripe = config.stripe.enabled().then(|| {
            let mut cfg = StripeConfig::new(config.stripe.api_key.expose());
            cfg.base_url = config.stripe.base_url.clone();
            StripeClient::new(cfg, reqwest::Client::new())
        });
        Self {
            db,
            cfg: config.billing.clone(),
            stripe,
            settings: config.stripe.clone(),
            prices: RwLock::new(None),
            batches: Arc::default(),
        }
    }

    fn stripe(&self) -> Result<&StripeClient, Error> {
        self.stripe.as_ref().ok_or_else(|| Error::unavailable("subscriptions.payment_provider_unavailable"))
    }

    /// Stripe price id configured for a plan or pack code.
    fn price_id(&self, code: &str) -> Result<&str, Error> {
        self.settings
            .prices
            .get(code)
            .map(String::as_str)
            .filter(|p| !p.is_empty())
            .ok_or_else(|| Error::new(ErrorKind::FailedPrecondition, "subscriptions.price_not_configured"))
    }
}

/// Stripe could not be reached or refused: transient failures are `unavailable` (the caller, or
/// Stripe's webhook retries, try again); anything else is a configuration or contract problem.
fn stripe_error(e: StripeError) -> Error {
    if e.retryable || e.status == 0 {
        Error::unavailable("subscriptions.payment_provider_unavailable").with_source(e)
    } else if e.is_card_error() {
        Error::new(ErrorKind::FailedPrecondition, "subscriptions.payment_failed").with_source(e)
    } else {
        Error::internal(e)
    }
}
