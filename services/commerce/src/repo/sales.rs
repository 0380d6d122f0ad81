//! Sales (`dropshipping_sales`) and commissions.

use chrono::{DateTime, NaiveDate, Utc};
use nexus_kernel::{Error, Page, TenantId};
use nexus_platform::db::{DbResultExt, Keyset};
use rust_decimal::Decimal;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::domain::commissions::Standing;

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct Sale {
    pub id: Uuid,
    pub order_id: Uuid,
    pub currency: String,
    pub revenue: Decimal,
    pub product_cost: Decimal,
    pub shipping_cost: Decimal,
    pub platform_fee: Decimal,
    pub payment_fee: Decimal,
    pub taxes: Decimal,
    pub profit: Decimal,
    pub reporting_currency: String,
    pub rate: Decimal,
    pub rate_day: NaiveDate,
    pub reporting_revenue: Decimal,
    pub reporting_profit: Decimal,
    pub status: String,
    pub paid_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
}

const COLUMNS: &str = "id, order_id, currency, revenue, product_cost, shipping_cost, platform_fee, payment_fee, taxes, profit, \
                       reporting_currency, rate, rate_day, reporting_revenue, reporting_profit, status, paid_at, created_at";

/// Inserts a sale unless the order has one; answers whether it did.
pub async fn insert(conn: &mut PgConnection, tenant: TenantId, s: &Sale) -> Result<bool, Error> {
    let n = sqlx::query(
        "INSERT INTO dropshipping_sales (id, tenant_id, order_id, currency, revenue, product_cost, shipping_cost, platform_fee, \
           payment_fee, taxes, profit, reporting_currency, rate, rate_day, reporting_revenue, reporting_profit, paid_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17) ON CONFLICT (order_id) DO NOTHING",
    )
    .bind(s.id)
    .bind(tenant.as_uuid())
    .bind(s.order_id)
    .bind(&s.currency)
    .bind(s.revenue)
    .bind(s.product_cost)
    .bind(s.shipping_cost)
    .bind(s.platform_fee)
    .bind(s.payment_fee)
    .bind(s.taxes)
    .bind(s.profit)
    .bind(&s.reporting_currency)
    .bind(s.rate)
    .bind(s.rate_day)
    .bind(s.reporting_revenue)
    .bind(s.reporting_profit)
    .bind(s.paid_at)
    .execute(conn)
    .await
    .db()?
    .rows_affected();
    Ok(n == 1)
}

pub async fn of_order(conn: &mut PgConnection, order: Uuid) -> Result<Option<Sale>, Error> {
    let q = format!("SELECT {COLUMNS} FROM dropshipping_sales WHERE order_id = $1");
    sqlx::query_as(sqlx::AssertSqlSafe(q)).bind(order).fetch_optional(conn).await.db()
}

/// Marks a sale reversed; false when it already was.
pub async fn reverse(conn: &mut PgConnection, id: Uuid) -> Result<bool, Error> {
    let n = sqlx::query(
        "UPDATE dropshipping_sales SET status = 'reversed', reversed_at = now() WHERE id = $1 AND status = 'recorded'",
    )
    .bind(id)
    .execute(conn)
    .await
    .db()?
    .rows_affected();
    Ok(n == 1)
}

pub async fn list(conn: &mut PgConnection, keyset: &Keyset) -> Result<Page<Sale>, Error> {
    let q = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM dropshipping_sales WHERE {}",
        Keyset::newest_first_by("created_at", "id", 1)
    )));
    let rows: Vec<Sale> = keyset.bind(q).fetch_all(conn).await.db()?;
    Ok(keyset.page(rows, |s| (s.created_at, s.id)))
}

/// A rule's standing with a beneficiary in a period: earned commissions counted and summed.
pub async fn standing(
    conn: &mut PgConnection,
    rule: Uuid,
    beneficiary: &str,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Standing, Error> {
    let (orders, earned): (i64, Option<Decimal>) = sqlx::query_as(
        "SELECT count(*), sum(amount) FROM commissions WHERE rule_id = $1 AND beneficiary = $2 AND status = 'earned' \
           AND earned_at >= $3::date AND earned_at < $4::date",
    )
    .bind(rule)
    .bind(beneficiary)
    .bind(from)
    .bind(to)
    .fetch_one(conn)
    .await
    .db()?;
    Ok(Standing { orders: u32::try_from(orders).unwrap_or(u32::MAX), earned: earned.unwrap_or_default() })
}

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct Commission {
    pub id: Uuid,
    pub sale_id: Uuid,
    pub rule_id: Uuid,
    pub beneficiary: String,
    pub amount: Decimal,
    pub currency: String,
    pub status: String,
    pub earned_at: DateTime<Utc>,
}

pub async fn insert_commission(conn: &mut PgConnection, tenant: TenantId, c: &Commission) -> Result<bool, Error> {
    let n = sqlx::query(
        "INSERT INTO commissions (id, tenant_id, sale_id, rule_id, beneficiary, amount, currency, earned_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (sale_id, rule_id) DO NOTHING",
    )
    .bind(c.id)
    .bind(tenant.as_uuid())
    .bind(c.sale_id)
    .bind(c.rule_id)
    .bind(&c.beneficiary)
    .bind(c.amount)
    .bind(&c.currency)
    .bind(c.earned_at)
    .execute(conn)
    .await
    .db()?
    .rows_affected();
    Ok(n == 1)
}

/// Reverses a sale's earned commissions; answers the ones reversed.
pub async fn reverse_commissions(conn: &mut PgConnection, sale: Uuid) -> Result<Vec<Commission>, Error> {
    sqlx::query_as(
        "UPDATE commissions SET status = 'reversed', reversed_at = now() WHERE sale_id = $1 AND status = 'earned' \
         RETURNING id, sale_id, rule_id, beneficiary, amount, currency, status, earned_at",
    )
    .bind(sale)
    .fetch_all(conn)
    .await
    .db()
}

pub async fn commissions_of_sale(conn: &mut PgConnection, sale: Uuid) -> Result<Vec<Commission>, Error> {
    sqlx::query_as(
        "SELECT id, sale_id, rule_id, beneficiary, amount, currency, status, earned_at FROM commissions WHERE sale_id = $1 ORDER BY id",
    )
    .bind(sale)
    .fetch_all(conn)
    .await
    .db()
}

#[derive(sqlx::FromRow)]
struct MovementRow {
    id: Uuid,
    sale_id: Uuid,
    beneficiary: String,
    kind: String,
    amount: Decimal,
    at: DateTime<Utc>,
}

/// Commissions earned, and reversals (whole or partial) made, in `[from, to)`, of one
/// beneficiary or all.
pub async fn movements(
    conn: &mut PgConnection,
    from: NaiveDate,
    to: NaiveDate,
    beneficiary: Option<&str>,
) -> Result<Vec<crate::domain::payouts::Movement>, Error> {
    let rows: Vec<MovementRow> = sqlx::query_as(
        "SELECT id, sale_id, beneficiary, 'earned' AS kind, amount, earned_at AS at FROM commissions \
         WHERE $1::date <= earned_at AND earned_at < $2::date AND ($3::text IS NULL OR beneficiary = $3) \
         UNION ALL \
         SELECT c.id, c.sale_id, c.beneficiary, 'reversal', r.amount, r.reversed_at FROM commission_reversals r \
           JOIN commissions c ON c.id = r.commission_id \
         WHERE $1::date <= r.reversed_at AND r.reversed_at < $2::date AND ($3::text IS NULL OR c.beneficiary = $3) \
         ORDER BY at, id",
    )
    .bind(from)
    .bind(to)
    .bind(beneficiary)
    .fetch_all(conn)
    .await
    .db()?;
    Ok(rows
        .into_iter()
        .map(|r| crate::domain::payouts::Movement {
            commission: r.id,
            sale: r.sale_id,
            beneficiary: r.beneficiary,
            reversal: r.kind == "reversal",
            amount: r.amount,
            at: r.at,
        })
        .collect())
}
