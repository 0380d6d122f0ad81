//! Plans, their prices and texts, the price table of metered actions, and credit packs: data that
//! changes by deployment, read by every workspace.

use nexus_kernel::{Error, Locale, TenantId};
use nexus_platform::db::DbResultExt;
use sqlx::PgConnection;

use super::{Row, from_row, rows};
use crate::domain::Plan;

from_row!(Plan { code, monthly_credits, rollover, entitlements, name, description, currency, amount_minor, interval });

/// Credits per unit of every metered action.
pub async fn price_table(conn: &mut PgConnection) -> Result<Vec<(String, i64)>, Error> {
    sqlx::query_as("SELECT action, credits FROM price_table").fetch_all(conn).await.db()
}

/// Active plans by rank, texts in `locale` (else English), prices in `currency` (else USD).
pub async fn list_plans(conn: &mut PgConnection, locale: Locale, currency: &str) -> Result<Vec<Plan>, Error> {
    let found: Vec<Row<Plan>> = sqlx::query_as(
        "SELECT p.code, p.monthly_credits, p.rollover, p.entitlements, \
                coalesce(t.name, e.name) AS name, coalesce(t.description, e.description) AS description, \
                coalesce(pp.currency, usd.currency) AS currency, coalesce(pp.amount_minor, usd.amount_minor) AS amount_minor, \
                coalesce(pp.interval, usd.interval) AS interval \
         FROM plans p \
         JOIN plan_texts e ON e.plan_code = p.code AND e.locale = 'en' \
         LEFT JOIN plan_texts t ON t.plan_code = p.code AND t.locale = $1 \
         JOIN plan_prices usd ON usd.plan_code = p.code AND usd.currency = 'USD' \
         LEFT JOIN plan_prices pp ON pp.plan_code = p.code AND pp.currency = $2 \
         WHERE p.active ORDER BY p.rank",
    )
    .bind(locale.code())
    .bind(currency)
    .fetch_all(conn)
    .await
    .db()?;
    Ok(rows(found))
}

/// A plan's price in every currency it is sold in.
pub async fn prices_of(conn: &mut PgConnection, plan: &str) -> Result<Vec<(String, i64)>, Error> {
    sqlx::query_as("SELECT currency, amount_minor FROM plan_prices WHERE plan_code = $1 ORDER BY currency")
        .bind(plan)
        .fetch_all(conn)
        .await
        .db()
}

/// A plan's monthly credits and whether they roll over.
pub async fn plan_credits(conn: &mut PgConnection, plan: &str) -> Result<(i64, bool), Error> {
    sqlx::query_as("SELECT monthly_credits, rollover FROM plans WHERE code = $1").bind(plan).fetch_one(conn).await.db()
}

/// A plan's limit of `feature`, if the plan names that feature.
pub async fn limit_of(conn: &mut PgConnection, plan: &str, feature: &str) -> Result<Option<i64>, Error> {
    sqlx::query_scalar("SELECT (entitlements ->> $2)::bigint FROM plans WHERE code = $1")
        .bind(plan)
        .bind(feature)
        .fetch_one(conn)
        .await
        .db()
}

pub async fn entitlements(conn: &mut PgConnection, plan: &str) -> Result<serde_json::Value, Error> {
    sqlx::query_scalar("SELECT entitlements FROM plans WHERE code = $1").bind(plan).fetch_one(conn).await.db()
}

/// Rank and monthly credits of the plans among `codes`.
pub async fn ranks(conn: &mut PgConnection, codes: Vec<String>) -> Result<Vec<(String, i32, i64)>, Error> {
    sqlx::query_as("SELECT code, rank, monthly_credits FROM plans WHERE code = ANY($1)")
        .bind(codes)
        .fetch_all(conn)
        .await
        .db()
}

pub async fn rank(conn: &mut PgConnection, plan: &str) -> Result<Option<i32>, Error> {
    sqlx::query_scalar("SELECT rank FROM plans WHERE code = $1").bind(plan).fetch_optional(conn).await.db()
}

pub async fn plan_exists(conn: &mut PgConnection, plan: &str) -> Result<bool, Error> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM plans WHERE code = $1)").bind(plan).fetch_one(conn).await.db()
}

/// A plan's price in `currency`, if it is sold in it.
pub async fn plan_price(conn: &mut PgConnection, plan: &str, currency: &str) -> Result<Option<i64>, Error> {
    sqlx::query_scalar("SELECT amount_minor FROM plan_prices WHERE plan_code = $1 AND currency = $2")
        .bind(plan)
        .bind(currency)
        .fetch_optional(conn)
        .await
        .db()
}

/// The workspace's subscription currency and `plan`'s price per month in it (a yearly price
/// divided by 12, rounded down), 0 when the plan is not sold in that currency.
pub async fn monthly_amount(conn: &mut PgConnection, tenant: TenantId, plan: &str) -> Result<(String, i64), Error> {
    sqlx::query_as(
        "SELECT s.currency, coalesce(CASE pp.interval WHEN 'year' THEN pp.amount_minor / 12 \
                ELSE pp.amount_minor END, 0) \
         FROM subscriptions s LEFT JOIN plan_prices pp ON pp.plan_code = $2 AND pp.currency = s.currency \
         WHERE s.tenant_id = $1",
    )
    .bind(tenant.as_uuid())
    .bind(plan)
    .fetch_optional(conn)
    .await
    .db()
    .map(|r| r.unwrap_or_else(|| ("USD".to_owned(), 0)))
}

pub async fn pack_credits(conn: &mut PgConnection, code: &str) -> Result<Option<i64>, Error> {
    sqlx::query_scalar("SELECT credits FROM credit_packs WHERE code = $1").bind(code).fetch_optional(conn).await.db()
}

pub async fn pack_price(conn: &mut PgConnection, code: &str, currency: &str) -> Result<Option<i64>, Error> {
    sqlx::query_scalar("SELECT amount_minor FROM credit_pack_prices WHERE pack_code = $1 AND currency = $2")
        .bind(code)
        .bind(currency)
        .fetch_optional(conn)
        .await
        .db()
}

/// Code, credits and price in `currency` of the packs sold in it, by rank.
pub async fn list_packs(conn: &mut PgConnection, currency: &str) -> Result<Vec<(String, i64, i64)>, Error> {
    sqlx::query_as(
        "SELECT p.code, p.credits, pp.amount_minor FROM credit_packs p \
         JOIN credit_pack_prices pp ON pp.pack_code = p.code AND pp.currency = $1 ORDER BY p.rank",
    )
    .bind(currency)
    .fetch_all(conn)
    .await
    .db()
}
