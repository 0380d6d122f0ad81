//! Store orders and the webhook deliveries already applied.

use chrono::{DateTime, Utc};
use nexus_kernel::{Error, Page, TenantId};
use nexus_platform::db::{DbResultExt, Keyset};
use rust_decimal::Decimal;
use sqlx::PgConnection;
use sqlx::types::Json;
use uuid::Uuid;

use crate::domain::orders::{Customer, Line, Order, Status, Totals};

const COLUMNS: &str = "id, source, external_id, number, status, currency, subtotal, shipping, taxes, total, customer, lines, \
                       external_updated_at, supplier_order_id, supplier_pay_url, tracking, failure, affiliate, paid_at, \
                       created_at, updated_at";

#[derive(sqlx::FromRow)]
struct Row {
    id: Uuid,
    source: String,
    external_id: String,
    number: String,
    status: String,
    currency: String,
    subtotal: Decimal,
    shipping: Decimal,
    taxes: Decimal,
    total: Decimal,
    customer: Json<Customer>,
    lines: Json<Vec<Line>>,
    external_updated_at: DateTime<Utc>,
    supplier_order_id: Option<String>,
    supplier_pay_url: Option<String>,
    tracking: Json<Vec<String>>,
    failure: String,
    affiliate: Option<String>,
    paid_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl Row {
    fn into_order(self) -> Result<Order, Error> {
        Ok(Order {
            id: self.id,
            source: self.source,
            external_id: self.external_id,
            number: self.number,
            status: Status::parse(&self.status)
                .ok_or_else(|| Error::internal(format!("stored status {}", self.status)))?,
            totals: Totals {
                currency: self.currency.parse()?,
                subtotal: self.subtotal,
                shipping: self.shipping,
                taxes: self.taxes,
                total: self.total,
            },
            customer: self.customer.0,
            lines: self.lines.0,
            external_updated_at: self.external_updated_at,
            supplier_order_id: self.supplier_order_id,
            supplier_pay_url: self.supplier_pay_url,
            tracking: self.tracking.0,
            failure: self.failure,
            affiliate: self.affiliate,
            paid_at: self.paid_at,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

pub async fn get(conn: &mut PgConnection, id: Uuid) -> Result<Option<Order>, Error> {
    let q = format!("SELECT {COLUMNS} FROM orders WHERE id = $1");
    let row: Option<Row> = sqlx::query_as(sqlx::AssertSqlSafe(q)).bind(id).fetch_optional(conn).await.db()?;
    row.map(Row::into_order).transpose()
}

/// The order, locked for the change the caller is about to make.
pub async fn lock(conn: &mut PgConnection, id: Uuid) -> Result<Option<Order>, Error> {
    let q = format!("SELECT {COLUMNS} FROM orders WHERE id = $1 FOR UPDATE");
    let row: Option<Row> = sqlx::query_as(sqlx::AssertSqlSafe(q)).bind(id).fetch_optional(conn).await.db()?;
    row.map(Row::into_order).transpose()
}

pub async fn lock_external(conn: &mut PgConnection, source: &str, external_id: &str) -> Result<Option<Order>, Error> {
    let q = format!("SELECT {COLUMNS} FROM orders WHERE source = $1 AND external_id = $2 FOR UPDATE");
    let row: Option<Row> =
        sqlx::query_as(sqlx::AssertSqlSafe(q)).bind(source).bind(external_id).fetch_optional(conn).await.db()?;
    row.map(Row::into_order).transpose()
}

pub async fn list(conn: &mut PgConnection, keyset: &Keyset) -> Result<Page<Order>, Error> {
    let q =
        sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM orders WHERE {}", Keyset::newest_first(1))));
    let rows: Vec<Row> = keyset.bind(q).fetch_all(conn).await.db()?;
    let items = rows.into_iter().map(Row::into_order).collect::<Result<Vec<_>, _>>()?;
    Ok(keyset.page(items, |o| (o.created_at, o.id)))
}

/// Orders waiting for their supplier's tracking number.
pub async fn awaiting_tracking(conn: &mut PgConnection) -> Result<Vec<Order>, Error> {
    let q = format!(
        "SELECT {COLUMNS} FROM orders WHERE status = 'fulfilling' AND supplier_order_id IS NOT NULL ORDER BY created_at"
    );
    let rows: Vec<Row> = sqlx::query_as(sqlx::AssertSqlSafe(q)).fetch_all(conn).await.db()?;
    rows.into_iter().map(Row::into_order).collect()
}

/// Inserts `o` unless the same (source, external id) exists; answers whether it did.
pub async fn insert(
    conn: &mut PgConnection,
    tenant: TenantId,
    connection: Option<Uuid>,
    o: &Order,
) -> Result<bool, Error> {
    let n = sqlx::query(
        "INSERT INTO orders (id, tenant_id, connection_id, source, external_id, number, status, currency, subtotal, shipping, \
           taxes, total, customer, lines, external_updated_at, affiliate, paid_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17) \
         ON CONFLICT (tenant_id, source, external_id) DO NOTHING",
    )
    .bind(o.id)
    .bind(tenant.as_uuid())
    .bind(connection)
    .bind(&o.source)
    .bind(&o.external_id)
    .bind(&o.number)
    .bind(o.status.as_str())
    .bind(o.totals.currency.code())
    .bind(o.totals.subtotal)
    .bind(o.totals.shipping)
    .bind(o.totals.taxes)
    .bind(o.totals.total)
    .bind(Json(&o.customer))
    .bind(Json(&o.lines))
    .bind(o.external_updated_at)
    .bind(&o.affiliate)
    .bind(o.paid_at)
    .execute(conn)
    .await
    .db()?
    .rows_affected();
    Ok(n == 1)
}

/// Writes every changeable field of `o`.
pub async fn update(conn: &mut PgConnection, o: &Order) -> Result<(), Error> {
    sqlx::query(
        "UPDATE orders SET number = $2, status = $3, subtotal = $4, shipping = $5, taxes = $6, total = $7, customer = $8, \
           lines = $9, external_updated_at = $10, supplier_order_id = $11, supplier_pay_url = $12, tracking = $13, \
           failure = $14, affiliate = $15, paid_at = $16, updated_at = now() WHERE id = $1",
    )
    .bind(o.id)
    .bind(&o.number)
    .bind(o.status.as_str())
    .bind(o.totals.subtotal)
    .bind(o.totals.shipping)
    .bind(o.totals.taxes)
    .bind(o.totals.total)
    .bind(Json(&o.customer))
    .bind(Json(&o.lines))
    .bind(o.external_updated_at)
    .bind(&o.supplier_order_id)
    .bind(&o.supplier_pay_url)
    .bind(Json(&o.tracking))
    .bind(&o.failure)
    .bind(&o.affiliate)
    .bind(o.paid_at)
    .execute(conn)
    .await
    .db()?;
    Ok(())
}

pub async fn request_refund(conn: &mut PgConnection, id: Uuid) -> Result<(), Error> {
    sqlx::query("UPDATE orders SET refund_requested_at = coalesce(refund_requested_at, now()) WHERE id = $1")
        .bind(id)
        .execute(conn)
        .await
        .db()?;
    Ok(())
}

/// Claims a webhook delivery id; false when it was applied already.
pub async fn claim_webhook(
    conn: &mut PgConnection,
    tenant: TenantId,
    webhook_id: &str,
    topic: &str,
) -> Result<bool, Error> {
    let n = sqlx::query(
        "INSERT INTO webhook_receipts (tenant_id, webhook_id, topic) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
    )
    .bind(tenant.as_uuid())
    .bind(webhook_id)
    .bind(topic)
    .execute(conn)
    .await
    .db()?
    .rows_affected();
    Ok(n == 1)
}

/// The store connection an order came from.
pub async fn store_connection(conn: &mut PgConnection, id: Uuid) -> Result<Option<Uuid>, Error> {
    sqlx::query_scalar("SELECT connection_id FROM orders WHERE id = $1")
        .bind(id)
        .fetch_optional(conn)
        .await
        .db()
        .map(Option::flatten)
}
