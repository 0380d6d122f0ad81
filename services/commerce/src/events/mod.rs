//! The events the commerce service emits, each written to the outbox in the transaction that
//! makes its change (the platform relay publishes them on `nexus.commerce.<entity>.<verb>`).
//! Revenue reports in analytics and outbound webhooks subscribe to them; the buyer of an order
//! travels with `order.created` so the CRM can keep a contact with a purchase activity.

use nexus_kernel::{Error, TenantId};
use nexus_platform::db::DbResultExt;
use nexus_platform::outbox::{enqueue, enqueue_many};
use nexus_proto::events;
use rust_decimal::Decimal;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::domain::catalogue::{Product, Variant};
use crate::domain::orders::Order;
use crate::repo::sales::{Commission, Sale};

pub const PRODUCT_IMPORTED: &str = "nexus.commerce.product.imported";
pub const PRICE_CHANGED: &str = "nexus.commerce.price.changed";
pub const STOCK_OUT: &str = "nexus.commerce.stock.out";
pub const ORDER_CREATED: &str = "nexus.commerce.order.created";
pub const ORDER_FULFILLED: &str = "nexus.commerce.order.fulfilled";
pub const ORDER_REFUNDED: &str = "nexus.commerce.order.refunded";
pub const SALE_RECORDED: &str = "nexus.commerce.sale.recorded";
pub const COMMISSION_EARNED: &str = "nexus.commerce.commission.earned";

fn pid(id: Uuid) -> String {
    crate::domain::ProductId::from_uuid(id).to_string()
}

fn oid(id: Uuid) -> String {
    crate::domain::OrderId::from_uuid(id).to_string()
}

pub async fn product_imported(conn: &mut PgConnection, tenant: TenantId, p: &Product) -> Result<(), Error> {
    let e = events::CommerceProductImported {
        workspace_id: tenant.to_string(),
        product_id: pid(p.id),
        supplier: p.supplier.clone(),
        supplier_product_id: p.supplier_product_id.clone(),
        title: p.title.clone(),
        variants: u32::try_from(p.variants.len()).unwrap_or(u32::MAX),
    };
    enqueue(conn, PRODUCT_IMPORTED, Some(tenant), &e).await.db()?;
    Ok(())
}

/// A variant's cost or price moved: its event, written with its page-mates' by [`price_changes`].
pub fn price_changed(
    tenant: TenantId,
    product: Uuid,
    v: &Variant,
    (new_cost, new_price): (Decimal, Decimal),
    reason: &str,
) -> events::CommercePriceChanged {
    events::CommercePriceChanged {
        workspace_id: tenant.to_string(),
        product_id: pid(product),
        variant_id: crate::domain::VariantId::from_uuid(v.id).to_string(),
        old_price: v.price.to_string(),
        new_price: new_price.to_string(),
        currency: v.price_currency.code().to_owned(),
        old_cost: v.cost.to_string(),
        new_cost: new_cost.to_string(),
        reason: reason.to_owned(),
    }
}

/// Writes [`price_changed`] events, one statement for all.
pub async fn price_changes(
    conn: &mut PgConnection,
    tenant: TenantId,
    changes: &[events::CommercePriceChanged],
) -> Result<(), Error> {
    enqueue_many(conn, PRICE_CHANGED, Some(tenant), changes).await.db()?;
    Ok(())
}

/// A variant ran out: its event, written with its page-mates' by [`stock_outs`].
pub fn stock_out(tenant: TenantId, product: Uuid, v: &Variant) -> events::CommerceStockOut {
    events::CommerceStockOut {
        workspace_id: tenant.to_string(),
        product_id: pid(product),
        variant_id: crate::domain::VariantId::from_uuid(v.id).to_string(),
        sku: v.sku.clone(),
    }
}

/// Writes [`stock_out`] events, one statement for all.
pub async fn stock_outs(
    conn: &mut PgConnection,
    tenant: TenantId,
    outs: &[events::CommerceStockOut],
) -> Result<(), Error> {
    enqueue_many(conn, STOCK_OUT, Some(tenant), outs).await.db()?;
    Ok(())
}

pub async fn order_created(conn: &mut PgConnection, tenant: TenantId, o: &Order) -> Result<(), Error> {
    let e = events::CommerceOrderCreated {
        workspace_id: tenant.to_string(),
        order_id: oid(o.id),
        source: o.source.clone(),
        external_id: o.external_id.clone(),
        total: o.totals.total.to_string(),
        currency: o.totals.currency.code().to_owned(),
        customer_email: o.customer.email.clone(),
        customer_name: o.customer.name.clone(),
        customer_phone: o.customer.phone.clone(),
        order_number: o.number.clone(),
    };
    enqueue(conn, ORDER_CREATED, Some(tenant), &e).await.db()?;
    Ok(())
}

pub async fn order_fulfilled(
    conn: &mut PgConnection,
    tenant: TenantId,
    o: &Order,
    supplier: &str,
) -> Result<(), Error> {
    let e = events::CommerceOrderFulfilled {
        workspace_id: tenant.to_string(),
        order_id: oid(o.id),
        supplier: supplier.to_owned(),
        supplier_order_id: o.supplier_order_id.clone().unwrap_or_default(),
        tracking_numbers: o.tracking.clone(),
    };
    enqueue(conn, ORDER_FULFILLED, Some(tenant), &e).await.db()?;
    Ok(())
}

/// `order.refunded` for one refund of `amount`; `full` when nothing remains refundable.
pub async fn order_refunded(
    conn: &mut PgConnection,
    tenant: TenantId,
    o: &Order,
    refund: Uuid,
    amount: Decimal,
    full: bool,
) -> Result<(), Error> {
    let e = events::CommerceOrderRefunded {
        workspace_id: tenant.to_string(),
        order_id: oid(o.id),
        amount: amount.to_string(),
        currency: o.totals.currency.code().to_owned(),
        refund_id: crate::domain::RefundId::from_uuid(refund).to_string(),
        full,
        order_number: o.number.clone(),
        customer_email: o.customer.email.clone(),
        customer_name: o.customer.name.clone(),
        customer_phone: o.customer.phone.clone(),
    };
    enqueue(conn, ORDER_REFUNDED, Some(tenant), &e).await.db()?;
    Ok(())
}

pub async fn sale_recorded(conn: &mut PgConnection, tenant: TenantId, s: &Sale) -> Result<(), Error> {
    let e = events::CommerceSaleRecorded {
        workspace_id: tenant.to_string(),
        sale_id: crate::domain::SaleId::from_uuid(s.id).to_string(),
        order_id: oid(s.order_id),
        revenue: s.revenue.to_string(),
        profit: s.profit.to_string(),
        currency: s.currency.clone(),
        reporting_revenue: s.reporting_revenue.to_string(),
        reporting_profit: s.reporting_profit.to_string(),
        reporting_currency: s.reporting_currency.clone(),
    };
    enqueue(conn, SALE_RECORDED, Some(tenant), &e).await.db()?;
    Ok(())
}

/// `commission.earned`, also for a reversal (status `reversed`).
pub async fn commission(conn: &mut PgConnection, tenant: TenantId, c: &Commission, status: &str) -> Result<(), Error> {
    let e = events::CommerceCommissionEarned {
        workspace_id: tenant.to_string(),
        commission_id: crate::domain::CommissionId::from_uuid(c.id).to_string(),
        sale_id: crate::domain::SaleId::from_uuid(c.sale_id).to_string(),
        beneficiary: c.beneficiary.clone(),
        amount: c.amount.to_string(),
        currency: c.currency.clone(),
        status: status.to_owned(),
    };
    enqueue(conn, COMMISSION_EARNED, Some(tenant), &e).await.db()?;
    Ok(())
}
