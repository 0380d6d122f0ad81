//! What is on sale: plans, credit packs, and the price of metered actions.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use nexus_kernel::{Error, Locale};
use nexus_platform::db::DbResultExt;
use sqlx::PgConnection;

use super::Billing;
use crate::domain::{self, Pack, Plan};
use crate::repo;

pub(super) const PRICE_CACHE_TTL: Duration = Duration::from_secs(30);

impl Billing {
    #[tracing::instrument(skip_all, fields(currency = %currency))]
    pub async fn list_plans(&self, locale: Locale, currency: &str) -> Result<Vec<Plan>, Error> {
        let currency = if currency.is_empty() { "USD" } else { currency };
        currency.parse::<nexus_kernel::Currency>()?;
        let mut conn = self.db.acquire().await.db()?;
        repo::catalogue::list_plans(&mut conn, locale, currency).await
    }

    #[tracing::instrument(skip_all, fields(plan = %plan))]
    pub async fn prices_of(&self, plan: &str) -> Result<Vec<(String, i64)>, Error> {
        let mut conn = self.db.acquire().await.db()?;
        repo::catalogue::prices_of(&mut conn, plan).await
    }

    /// Credit packs with their price in `currency` (default USD).
    #[tracing::instrument(skip_all, fields(currency = %currency))]
    pub async fn list_packs(&self, currency: &str) -> Result<Vec<Pack>, Error> {
        let currency = domain::normalize_currency(currency)?;
        let mut conn = self.db.acquire().await.db()?;
        let rows = repo::catalogue::list_packs(&mut conn, &currency).await?;
        Ok(rows
            .into_iter()
            .map(|(code, credits, amount_minor)| Pack { code, credits, currency: currency.clone(), amount_minor })
            .collect())
    }

    /// Credits per unit of `action` (cached, see [`PRICE_CACHE_TTL`]).
    pub(super) async fn unit_price(&self, action: &str) -> Result<Option<i64>, Error> {
        {
            let cached = self.prices.read().unwrap_or_else(|p| p.into_inner());
            if let Some((at, table)) = cached.as_ref()
                && at.elapsed() < PRICE_CACHE_TTL
            {
                return Ok(table.get(action).copied());
            }
        }
        let mut conn = self.db.acquire().await.db()?;
        let table: HashMap<String, i64> = repo::catalogue::price_table(&mut conn).await?.into_iter().collect();
        let price = table.get(action).copied();
        *self.prices.write().unwrap_or_else(|p| p.into_inner()) = Some((Instant::now(), table));
        Ok(price)
    }

    /// A plan's price in `currency`: unknown plans and currencies it is not sold in are refused.
    pub(super) async fn plan_price(conn: &mut PgConnection, plan: &str, currency: &str) -> Result<i64, Error> {
        if !repo::catalogue::plan_exists(&mut *conn, plan).await? {
            return Err(Error::invalid("subscriptions.unknown_plan").with_param("plan", plan));
        }
        repo::catalogue::plan_price(conn, plan, currency)
            .await?
            .ok_or_else(|| Error::invalid("subscriptions.unsupported_currency").with_param("currency", currency))
    }

    /// A pack with its price in `currency`: unknown packs and currencies it is not sold in are refused.
    pub(super) async fn pack(conn: &mut PgConnection, code: &str, currency: &str) -> Result<Pack, Error> {
        let credits = repo::catalogue::pack_credits(&mut *conn, code)
            .await?
            .ok_or_else(|| Error::invalid("subscriptions.unknown_pack").with_param("pack", code))?;
        let amount = repo::catalogue::pack_price(conn, code, currency)
            .await?
            .ok_or_else(|| Error::invalid("subscriptions.unsupported_currency").with_param("currency", currency))?;
        Ok(Pack { code: code.into(), credits, currency: currency.into(), amount_minor: amount })
    }

    /// A plan's rank (higher is more).
    pub(super) async fn rank(&self, plan: &str) -> Result<i32, Error> {
        let mut conn = self.db.acquire().await.db()?;
        repo::catalogue::rank(&mut conn, plan)
            .await?
            .ok_or_else(|| Error::invalid("subscriptions.unknown_plan").with_param("plan", plan))
    }
}
