//! Refunds of (part of) an order, as a short saga: (1) the refund holds its amount (`pending`,
//! committed, the order row locked so concurrent refunds cannot exceed what remains; the same
//! Idempotency-Key answers the same refund); (2) a store order is refunded at Shopify with the
//! refund's id as `@idempotent` key, outside any transaction; (3) the refund is completed with
//! its share of the sale's profit and commissions taken back and `order.refunded`, or `failed`
//! when the store refused it (its amount is refundable again). A store that did not answer
//! leaves it `pending`: the same request again resumes it, and Shopify refunds once.

use chrono::Utc;
use nexus_kernel::{Error, ErrorKind, TenantId};
use nexus_platform::db;
use nexus_platform::identity::{Action, Principal};
use nexus_providers::shopify::RefundInput;
use rust_decimal::Decimal;
use sqlx::PgConnection;
use sqlx::types::Json;
use uuid::Uuid;

use super::suppliers::{Credentials, shopify_error};
use super::{App, require};
use crate::domain::OrderId;
use crate::domain::orders::{Order, Status, StoreRefund};
use crate::domain::refunds::{Prior, RefundLine, plan, share};
use crate::repo::refunds::Refund;
use crate::{events, repo};

/// A refund as a client asked for it: an amount, or some of the order's lines.
#[derive(Debug, Clone, Default)]
pub struct RefundRequest {
    pub idempotency_key: String,
    pub amount: String,
    pub lines: Vec<RefundLine>,
    pub reason: String,
}

fn text_ok(s: &str, max: usize) -> bool {
    s.chars().count() <= max && !s.chars().any(char::is_control)
}

/// A new refund of `o` holding `amount`, before the store or the books have it.
fn pending(o: &Order, key: impl Into<String>, amount: Decimal, lines: Vec<RefundLine>, reason: String) -> Refund {
    Refund {
        id: Uuid::now_v7(),
        order_id: o.id,
        idempotency_key: key.into(),
        status: "pending".into(),
        amount,
        currency: o.totals.currency.code().to_owned(),
        lines: Json(lines),
        reason,
        store_refund_id: None,
        failure: String::new(),
        profit_reversed: Decimal::ZERO,
        reporting_profit_reversed: Decimal::ZERO,
        created_at: Utc::now(),
        completed_at: None,
    }
}

/// The refunds holding part of an order (pending or completed).
fn holding(refunds: &[Refund]) -> Vec<Prior> {
    refunds
        .iter()
        .filter(|r| r.status != "failed")
        .map(|r| Prior { amount: r.amount, lines: r.lines.0.clone() })
        .collect()
}

impl App {
    pub async fn refund(&self, p: &Principal, raw_order: &str, req: RefundRequest) -> Result<Refund, Error> {
        require(p, Action::Write)?;
        let key = req.idempotency_key.trim();
        if key.is_empty() || !text_ok(key, 200) {
            return Err(Error::invalid("commerce.idempotency_key_invalid").with_violation("idempotency_key", "invalid"));
        }
        let reason = req.reason.trim();
        if !text_ok(reason, 500) {
            return Err(Error::invalid("commerce.refund_invalid")
                .with_param("field", "reason")
                .with_violation("reason", "invalid"));
        }
        let order_id = super::id_of::<OrderId>(raw_order, "commerce.order_not_found", OrderId::as_uuid)?;
        let tenant = p.workspace_id;

        // (1) Hold the amount.
        let mut tx = db::tenant(&self.pool, tenant).await?;
        let o =
            repo::orders::lock(&mut tx, order_id).await?.ok_or_else(|| Error::not_found("commerce.order_not_found"))?;
        let refund = match repo::refunds::by_key(&mut tx, o.id, key).await? {
            Some(r) if r.status != "pending" => {
                db::commit(tx).await?;
                return Ok(r);
            }
            Some(r) => r,
            None => {
                if !o.status.is_paid() {
                    return Err(Error::new(ErrorKind::Conflict, "commerce.order_not_refundable")
                        .with_param("status", o.status.as_str()));
                }
                let prior = holding(&repo::refunds::of_order(&mut tx, o.id).await?);
                let (amount, lines) =
                    plan(o.totals.total, o.totals.currency, &o.lines, &prior, &req.amount, &req.lines)?;
                let r = pending(&o, key, amount, lines, reason.to_owned());
                repo::refunds::insert(&mut tx, tenant, &r).await?;
                r
            }
        };
        let store = self.store_of(&mut tx, &o).await?;
        db::commit(tx).await?;

        // (2) The store gives the money back.
        let mut store_refund = None;
        if let Some(Credentials::Shopify { shop, access_token }) = store {
            let input = RefundInput {
                order_id: format!("gid://shopify/Order/{}", o.external_id),
                amount: crate::domain::money::text(refund.amount, o.totals.currency),
                lines: refund
                    .lines
                    .0
                    .iter()
                    .filter_map(|l| {
                        let line = o.lines.get(l.line)?;
                        Some((line.store_line_id.clone(), l.quantity)).filter(|(id, _)| !id.is_empty())
                    })
                    .collect(),
                note: refund.reason.clone(),
                key: refund.id.to_string(),
            };
            match self.shopify(&shop, &access_token).refund(&input).await {
                Ok(id) => store_refund = Some(id),
                Err(e) if e.is_transient() => return Err(shopify_error(e)),
                Err(e) => {
                    let mut tx = db::tenant(&self.pool, tenant).await?;
                    repo::refunds::fail(&mut tx, refund.id, &e.to_string()).await?;
                    db::commit(tx).await?;
                    return Err(shopify_error(e));
                }
            }
        }

        // (3) Record it.
        let mut tx = db::tenant(&self.pool, tenant).await?;
        let mut o =
            repo::orders::lock(&mut tx, order_id).await?.ok_or_else(|| Error::not_found("commerce.order_not_found"))?;
        self.complete_refund(&mut tx, tenant, &mut o, refund.id, store_refund.as_deref()).await?;
        let done = repo::refunds::get(&mut tx, refund.id).await?.ok_or_else(|| Error::internal("refund vanished"))?;
        db::commit(tx).await?;
        Ok(done)
    }

    /// An order's refunds, oldest first.
    pub async fn refunds(&self, p: &Principal, raw_order: &str) -> Result<Vec<Refund>, Error> {
        require(p, Action::Read)?;
        let order_id = super::id_of::<OrderId>(raw_order, "commerce.order_not_found", OrderId::as_uuid)?;
        let mut tx = db::tenant(&self.pool, p.workspace_id).await?;
        repo::orders::get(&mut tx, order_id).await?.ok_or_else(|| Error::not_found("commerce.order_not_found"))?;
        let all = repo::refunds::of_order(&mut tx, order_id).await?;
        db::commit(tx).await?;
        Ok(all)
    }

    /// The store connection's credentials of a store order that holds the buyer's money.
    pub(crate) async fn store_of(&self, tx: &mut PgConnection, o: &Order) -> Result<Option<Credentials>, Error> {
        if o.source != "shopify" || !o.status.is_paid() {
            return Ok(None);
        }
        let Some(sc) = repo::orders::store_connection(tx, o.id).await? else { return Ok(None) };
        repo::connections::get(tx, sc).await?.map(|x| self.unseal(sc, &x.credentials)).transpose()
    }

    /// Refunds what remains of `o` (locked by the caller) as one completed refund under `key`:
    /// the store refunded it all (its webhook, or a cancellation with refund).
    pub(crate) async fn refund_remaining(
        &self,
        tx: &mut PgConnection,
        tenant: TenantId,
        o: &mut Order,
        key: &str,
    ) -> Result<(), Error> {
        let all = repo::refunds::of_order(tx, o.id).await?;
        if all.iter().any(|r| r.idempotency_key == key) {
            return Ok(());
        }
        let left = crate::domain::refunds::remaining(o.totals.total, &holding(&all));
        if left <= Decimal::ZERO {
            o.status = Status::Refunded;
            return repo::orders::update(tx, o).await;
        }
        let r = pending(o, key, left, Vec::new(), String::new());
        repo::refunds::insert(tx, tenant, &r).await?;
        self.complete_refund(tx, tenant, o, r.id, None).await
    }

    /// Records the refunds the store made of `o` (locked, paid), each once: keyed by the store's
    /// refund id, and not at all when it is one of ours coming back (we keep the store's id of
    /// what we sent). Each takes back its share of profit and commissions as ours do; a refund
    /// listed by an older payload delivered late is one of those already recorded.
    pub(crate) async fn record_store_refunds(
        &self,
        tx: &mut PgConnection,
        tenant: TenantId,
        o: &mut Order,
        refunds: &[StoreRefund],
    ) -> Result<(), Error> {
        for sr in refunds {
            if !o.status.is_paid() {
                break;
            }
            let all = repo::refunds::of_order(tx, o.id).await?;
            let key = format!("store:refund:{}", sr.id);
            if all.iter().any(|r| r.idempotency_key == key || r.store_refund_id.as_deref().is_some_and(|x| sr.is(x))) {
                continue;
            }
            let left = crate::domain::refunds::remaining(o.totals.total, &holding(&all));
            if sr.amount > left {
                // Ours still pending at the store for that money: it completes as this refund.
                tracing::warn!(order = %o.id, refund = sr.id, "a store refund larger than what remains is not recorded");
                continue;
            }
            let r = pending(o, key, sr.amount, sr.lines.clone(), sr.note.chars().take(500).collect());
            repo::refunds::insert(tx, tenant, &r).await?;
            self.complete_refund(tx, tenant, o, r.id, Some(&sr.id)).await?;
        }
        Ok(())
    }

    /// Completes a pending refund of `o` (locked): its share of the sale's profit and of each
    /// commission taken back, the order `refunded` once nothing remains, `order.refunded`.
    /// Nothing when it is no longer pending (a concurrent retry completed it).
    async fn complete_refund(
        &self,
        tx: &mut PgConnection,
        tenant: TenantId,
        o: &mut Order,
        refund: Uuid,
        store_refund: Option<&str>,
    ) -> Result<(), Error> {
        let all = repo::refunds::of_order(tx, o.id).await?;
        let Some(r) = all.iter().find(|r| r.id == refund && r.status == "pending").cloned() else { return Ok(()) };
        let done: Vec<&Refund> = all.iter().filter(|x| x.status == "completed").collect();
        let before: Decimal = done.iter().map(|x| x.amount).sum();
        let portion = (before, r.amount, o.totals.total);
        let full = before + r.amount >= o.totals.total;
        let mut reversed = (Decimal::ZERO, Decimal::ZERO);
        if let Some(sale) = repo::sales::of_order(tx, o.id).await? {
            let (profit_before, reporting_before) = done.iter().fold((Decimal::ZERO, Decimal::ZERO), |(a, b), x| {
                (a + x.profit_reversed, b + x.reporting_profit_reversed)
            });
            reversed = (
                share(sale.profit, profit_before, portion, o.totals.currency),
                share(sale.reporting_profit, reporting_before, portion, self.reporting),
            );
            let taken = repo::refunds::reversed_of_sale(tx, sale.id).await?;
            for c in repo::sales::commissions_of_sale(tx, sale.id).await? {
                if c.status != "earned" {
                    continue;
                }
                let currency = c.currency.parse().unwrap_or(self.reporting);
                let back = share(c.amount, taken.get(&c.id).copied().unwrap_or_default(), portion, currency);
                if back > Decimal::ZERO {
                    repo::refunds::insert_reversal(tx, tenant, c.id, r.id, back).await?;
                    events::commission(tx, tenant, &crate::repo::sales::Commission { amount: back, ..c }, "reversed")
                        .await?;
                }
            }
            if full {
                repo::sales::reverse(tx, sale.id).await?;
                repo::sales::reverse_commissions(tx, sale.id).await?;
            }
        }
        repo::refunds::complete(tx, r.id, store_refund, reversed).await?;
        if full && o.status != Status::Refunded {
            o.status = Status::Refunded;
            repo::orders::update(tx, o).await?;
        }
        events::order_refunded(tx, tenant, o, r.id, r.amount, full).await
    }
}
