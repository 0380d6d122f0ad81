//! Sales and commissions: recorded in exact decimals when an order is paid (in the transaction
//! that marks it paid), reversed when it is refunded.

use std::collections::HashMap;

use chrono::Utc;
use nexus_kernel::{Error, Page, PageRequest, TenantId};
use nexus_platform::db::{self, Keyset};
use nexus_platform::identity::{Action, Principal};
use rust_decimal::Decimal;
use sqlx::PgConnection;
use uuid::Uuid;

use super::{App, require};
use crate::domain::ProductId;
use crate::domain::commissions::{CommissionLine, SaleForCommission, earn, period_end, period_of};
use crate::domain::money::Amount;
use crate::domain::orders::Order;
use crate::domain::sales::{Charged, LineCost, compute};
use crate::repo::sales::{Commission, Sale};
use crate::{events, repo};

impl App {
    /// Records the sale of a paid order and the commissions it earns (once: a second call for
    /// the same order does nothing).
    pub async fn record_sale(&self, conn: &mut PgConnection, tenant: TenantId, o: &Order) -> Result<(), Error> {
        if repo::sales::of_order(conn, o.id).await?.is_some() {
            return Ok(());
        }
        let paid_at = o.paid_at.unwrap_or_else(Utc::now);
        let ids: Vec<Uuid> = o.lines.iter().filter_map(|l| l.variant_id).collect();
        let variants: HashMap<Uuid, (Uuid, crate::domain::catalogue::Variant)> =
            repo::products::variants_by_id(conn, &ids).await?.into_iter().map(|(p, v)| (v.id, (p, v))).collect();
        let costs: Vec<LineCost> = o
            .lines
            .iter()
            .filter_map(|l| {
                let (_, v) = variants.get(&l.variant_id?)?;
                Some(LineCost { unit_cost: Amount { value: v.cost, currency: v.cost_currency }, quantity: l.quantity })
            })
            .collect();
        let charged = Charged {
            currency: o.totals.currency,
            subtotal: o.totals.subtotal,
            shipping: o.totals.shipping,
            taxes: o.totals.taxes,
            paid_on: paid_at.date_naive(),
        };
        let rates = self.rate_table();
        // The supplier's freight is known only once fulfilment chooses it; the sale counts none.
        let figures = compute(&charged, &costs, Amount::zero(o.totals.currency), &self.fees, &rates, self.reporting)?;
        let sale = Sale {
            id: Uuid::now_v7(),
            order_id: o.id,
            currency: o.totals.currency.code().to_owned(),
            revenue: figures.revenue,
            product_cost: figures.product_cost,
            shipping_cost: figures.shipping_cost,
            platform_fee: figures.platform_fee,
            payment_fee: figures.payment_fee,
            taxes: figures.taxes,
            profit: figures.profit,
            reporting_currency: self.reporting.code().to_owned(),
            rate: figures.reporting.rate,
            rate_day: figures.reporting.day,
            reporting_revenue: figures.reporting_revenue,
            reporting_profit: figures.reporting_profit,
            status: "recorded".into(),
            paid_at,
            created_at: Utc::now(),
        };
        if !repo::sales::insert(conn, tenant, &sale).await? {
            return Ok(());
        }
        events::sale_recorded(conn, tenant, &sale).await?;
        let for_commission = SaleForCommission {
            revenue: figures.reporting_revenue,
            lines: o
                .lines
                .iter()
                .map(|l| {
                    let line = Amount { value: l.price * Decimal::from(l.quantity), currency: o.totals.currency };
                    Ok(CommissionLine {
                        product: l
                            .variant_id
                            .and_then(|id| variants.get(&id))
                            .map(|(p, _)| ProductId::from_uuid(*p).to_string())
                            .unwrap_or_default(),
                        vendor: l.vendor.clone(),
                        revenue: figures.reporting.apply(line)?.value,
                    })
                })
                .collect::<Result<Vec<_>, Error>>()?,
            affiliate: o.affiliate.clone(),
            paid_at,
        };
        let period = period_of(paid_at);
        for rule in repo::rules::commission_rules_locked(conn).await? {
            let standing = repo::sales::standing(conn, rule.id, &rule.beneficiary, period, period_end(period)).await?;
            let Some(amount) = earn(&rule, &for_commission, standing) else { continue };
            let c = Commission {
                id: Uuid::now_v7(),
                sale_id: sale.id,
                rule_id: rule.id,
                beneficiary: rule.beneficiary.clone(),
                amount,
                currency: rule.currency.code().to_owned(),
                status: "earned".into(),
                earned_at: paid_at,
            };
            if repo::sales::insert_commission(conn, tenant, &c).await? {
                events::commission(conn, tenant, &c, "earned").await?;
            }
        }
        Ok(())
    }

    pub async fn list_sales(&self, p: &Principal, page: &PageRequest) -> Result<Page<Sale>, Error> {
        require(p, Action::Read)?;
        let keyset = Keyset::new(page)?;
        let mut tx = db::tenant(&self.pool, p.workspace_id).await?;
        let page = repo::sales::list(&mut tx, &keyset).await?;
        db::commit(tx).await?;
        Ok(page)
    }
}

impl App {
    /// The payout statement of a month (`YYYY-MM`), for one beneficiary or all, in the
    /// reporting currency (commissions are computed in it).
    pub async fn payout_statement(
        &self,
        p: &Principal,
        period: &str,
        beneficiary: &str,
    ) -> Result<crate::domain::payouts::Statement, Error> {
        require(p, Action::Read)?;
        let start = crate::domain::payouts::parse_period(period)?;
        let b = beneficiary.trim();
        if b.chars().count() > 200 || b.chars().any(char::is_control) {
            return Err(Error::invalid("commerce.beneficiary_invalid").with_violation("beneficiary", "invalid"));
        }
        let mut tx = db::tenant(&self.pool, p.workspace_id).await?;
        let moves =
            repo::sales::movements(&mut tx, start, period_end(start), Some(b).filter(|b| !b.is_empty())).await?;
        db::commit(tx).await?;
        Ok(crate::domain::payouts::statement(start, &moves))
    }
}
