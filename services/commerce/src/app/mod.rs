//! Use cases. gRPC handlers call these with the verified caller; every state change commits
//! with its outbox event. Provider calls happen outside transactions; a saga step that follows
//! one records its outcome in a transaction of its own.

pub mod catalogue;
pub mod connections;
pub mod localization;
pub mod monitoring;
pub mod orders;
pub mod pricing;
pub mod rates;
pub mod refunds;
pub mod sales;
pub mod sealed;
pub mod suppliers;
pub mod webhooks;

use nexus_platform::grpc::ContextChannel;
use std::sync::{Arc, RwLock};

use nexus_kernel::{Currency, Error};
use nexus_platform::Infra;
use nexus_platform::crypto::Sealer;
use nexus_platform::identity::{Action, Principal};
use rust_decimal::Decimal;
use sqlx::PgPool;
use uuid::Uuid;

use crate::config::Config;
use crate::domain::catalogue::LocalCatalogue;
use crate::domain::rates::RateTable;
use crate::domain::sales::Fees;

/// The sample supplier catalogue shipped with the service (`data/generate.py`).
pub const LOCAL_CATALOGUE: &str = include_str!("../../data/catalogue.csv");

pub struct App {
    pub pool: PgPool,
    pub cfg: Arc<Config>,
    /// Seals store and supplier credentials at rest.
    pub sealer: Sealer,
    /// Daily exchange rates in use, and where they come from.
    pub rates: RwLock<Arc<RateTable>>,
    pub local: Arc<LocalCatalogue>,
    /// Supplier APIs at configured base URLs.
    pub http: reqwest::Client,
    /// Store APIs, at addresses the tenant chose (a shop domain): the safe outbound client.
    pub store_http: reqwest::Client,
    pub reporting: Currency,
    pub fees: Fees,
    /// The content service (`services.content`), which translates product texts; `None`: unset.
    pub content: Option<ContextChannel>,
}

impl App {
    pub fn new(config: Config, infra: &Infra) -> anyhow::Result<App> {
        let sealer = Sealer::from_config(config.commerce.sealing_keys.expose())
            .map_err(|e| anyhow::anyhow!("commerce.sealing_keys: {e}"))?;
        let local = LocalCatalogue::parse(LOCAL_CATALOGUE).map_err(|e| anyhow::anyhow!("data/catalogue.csv: {e}"))?;
        // With the ECB feed nothing converts until the first fetch: never with the offline rates.
        let rates = if config.rates.provider == "ecb" {
            RateTable::default()
        } else {
            rates::local_table().map_err(|e| anyhow::anyhow!("data/rates.csv: {e}"))?
        };
        nexus_platform::install_crypto_provider();
        let http = reqwest::Client::builder().connect_timeout(std::time::Duration::from_secs(5)).build()?;
        let reporting: Currency = config
            .commerce
            .reporting_currency
            .parse()
            .map_err(|_| anyhow::anyhow!("commerce.reporting_currency: unsupported"))?;
        let fees = config.sales.fees()?;
        let content = match config.services.content.trim() {
            "" => None,
            url => Some(
                nexus_platform::grpc::context_channel(url, config.services.content_timeout)
                    .map_err(|e| anyhow::anyhow!("services.content: {url:?}: {e}"))?,
            ),
        };
        Ok(App {
            content,
            pool: infra.db.clone(),
            store_http: infra.outbound.http().clone(),
            cfg: Arc::new(config),
            sealer,
            rates: RwLock::new(Arc::new(rates)),
            local: Arc::new(local),
            http,
            reporting,
            fees,
        })
    }

    /// The rates in use now.
    pub fn rate_table(&self) -> Arc<RateTable> {
        self.rates.read().map(|r| r.clone()).unwrap_or_default()
    }
}

/// The caller, allowed to do `action`.
pub fn require(p: &Principal, action: Action) -> Result<(), Error> {
    p.require(action)
}

/// An id of ours (`prod_…`) as its UUID; anything else is not found (never a hint of
/// another workspace's rows, which RLS hides anyway).
pub fn id_of<T: std::str::FromStr>(
    raw: &str,
    not_found: &'static str,
    uuid: impl Fn(&T) -> Uuid,
) -> Result<Uuid, Error> {
    raw.parse::<T>().map(|t| uuid(&t)).map_err(|_| Error::not_found(not_found))
}

/// A decimal text from a client (percent, amount), checked for plain notation.
pub fn decimal(raw: &str, field: &str) -> Result<Decimal, Error> {
    let s = raw.trim();
    let bad = || Error::invalid("commerce.amount_invalid").with_param("field", field).with_violation(field, "invalid");
    if s.is_empty() || s.len() > 24 || !s.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return Err(bad());
    }
    s.parse().map_err(|_| bad())
}

/// `decimal`, with an empty text meaning none.
pub fn optional_decimal(raw: &str, field: &str) -> Result<Option<Decimal>, Error> {
    if raw.trim().is_empty() { Ok(None) } else { decimal(raw, field).map(Some) }
}
