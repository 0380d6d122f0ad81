//! `invoices`: copied from Stripe or written for local billing.

use nexus_kernel::{Error, TenantId};
use nexus_platform::db::{DbResultExt, Keyset};
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row as _};

use super::{Row, rows};
use crate::domain::{Invoice, NewInvoice};

impl<'r> sqlx::FromRow<'r, PgRow> for Row<Invoice> {
    fn from_row(r: &'r PgRow) -> Result<Self, sqlx::Error> {
        let details = NewInvoice {
            provider: r.try_get("provider")?,
            external_id: r.try_get("external_id")?,
            number: r.try_get("number")?,
            status: r.try_get("status")?,
            amount_due: r.try_get("amount_due")?,
            amount_paid: r.try_get("amount_paid")?,
            currency: r.try_get("currency")?,
            reason: r.try_get("reason")?,
            period_start: r.try_get("period_start")?,
            period_end: r.try_get("period_end")?,
            hosted_url: r.try_get("hosted_url")?,
            pdf_url: r.try_get("pdf_url")?,
        };
        Ok(Row(Invoice { id: r.try_get("id")?, created_at: r.try_get("created_at")?, details }))
    }
}

/// Stores an invoice or a newer state of it (paid stays paid); whether it was paid before.
pub async fn upsert(conn: &mut PgConnection, tenant: TenantId, inv: &NewInvoice) -> Result<bool, Error> {
    let was_paid: Option<bool> =
        sqlx::query_scalar("SELECT status = 'paid' FROM invoices WHERE external_id = $1 FOR UPDATE")
            .bind(&inv.external_id)
            .fetch_optional(&mut *conn)
            .await
            .db()?;
    sqlx::query(
        "INSERT INTO invoices (tenant_id, provider, external_id, number, status, amount_due, amount_paid, currency, reason, \
           period_start, period_end, hosted_url, pdf_url) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) \
         ON CONFLICT (external_id) DO UPDATE SET status = CASE WHEN invoices.status = 'paid' THEN 'paid' ELSE EXCLUDED.status END, \
           number = EXCLUDED.number, amount_due = EXCLUDED.amount_due, amount_paid = greatest(invoices.amount_paid, EXCLUDED.amount_paid), \
           hosted_url = EXCLUDED.hosted_url, pdf_url = EXCLUDED.pdf_url, updated_at = now()",
    )
    .bind(tenant.as_uuid())
    .bind(&inv.provider)
    .bind(&inv.external_id)
    .bind(&inv.number)
    .bind(&inv.status)
    .bind(inv.amount_due)
    .bind(inv.amount_paid)
    .bind(inv.currency.to_uppercase())
    .bind(&inv.reason)
    .bind(inv.period_start)
    .bind(inv.period_end)
    .bind(&inv.hosted_url)
    .bind(&inv.pdf_url)
    .execute(conn)
    .await
    .db()?;
    Ok(was_paid == Some(true))
}

/// The tenant transaction's invoices, newest first.
pub async fn list(conn: &mut PgConnection, page: &Keyset) -> Result<Vec<Invoice>, Error> {
    let found: Vec<Row<Invoice>> = page
        .bind(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT id, provider, external_id, number, status, amount_due, amount_paid, currency, reason, period_start, period_end, \
               hosted_url, pdf_url, created_at FROM invoices WHERE {}",
            Keyset::newest_first(1)
        ))))
        .fetch_all(conn)
        .await
        .db()?;
    Ok(rows(found))
}
