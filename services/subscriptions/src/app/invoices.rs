//! Invoices and receipts, and the credit notices shown in the app.

use nexus_kernel::{Error, Page, PageRequest, TenantId};
use nexus_platform::db::{Keyset, commit, tenant};
use sqlx::PgConnection;

use super::Billing;
use crate::domain::{Invoice, NewInvoice, Notice};
use crate::{events, repo};

impl Billing {
    /// Stores an invoice (or a newer state of it). Announces `invoice.paid` the first time it is
    /// seen paid, and `payment.failed` when `failed` says a payment attempt failed.
    pub async fn record_invoice(
        conn: &mut PgConnection,
        tenant: TenantId,
        inv: &NewInvoice,
        failed: bool,
    ) -> Result<(), Error> {
        let was_paid = repo::invoices::upsert(&mut *conn, tenant, inv).await?;
        if inv.status == "paid" && !was_paid {
            events::invoice_paid(&mut *conn, tenant, &inv.external_id, inv.amount_paid, &inv.currency).await?;
        }
        if failed {
            events::payment_failed(conn, tenant, &inv.external_id).await?;
        }
        Ok(())
    }

    #[tracing::instrument(skip_all)]
    pub async fn invoices(&self, workspace: TenantId, page: &PageRequest) -> Result<Page<Invoice>, Error> {
        let keyset = Keyset::new(page)?;
        let mut tx = tenant(&self.db, workspace).await?;
        let rows = repo::invoices::list(&mut tx, &keyset).await?;
        commit(tx).await?;
        Ok(keyset.page(rows, |r| (r.created_at, r.id)))
    }

    /// Credit notices of the current period, newest first.
    #[tracing::instrument(skip_all)]
    pub async fn notices(&self, workspace: TenantId) -> Result<Vec<Notice>, Error> {
        let mut tx = tenant(&self.db, workspace).await?;
        Self::ensure_subscription(&mut tx, workspace).await?;
        let rows = repo::credits::notices(&mut tx).await?;
        commit(tx).await?;
        Ok(rows)
    }
}
