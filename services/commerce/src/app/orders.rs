//! Orders: manual ones, store ones from webhooks (applied in any order: an older version never
//! overwrites a newer one), fulfilment through the supplier as a saga with compensation, and
//! refunds. Paying records the sale and commissions; refunding reverses them; both in the
//! transaction that changes the order.

use std::collections::{BTreeMap, HashMap};

use chrono::Utc;
use nexus_kernel::{Currency, Error, ErrorKind, Page, PageRequest, TenantId};
use nexus_platform::db::{self, Keyset};
use nexus_platform::identity::{Action, Principal};
use rust_decimal::Decimal;
use serde_json::json;
use sqlx::PgConnection;
use uuid::Uuid;

use super::suppliers::{Credentials, provider_of, shopify_error};
use super::{App, require};
use crate::domain::connections::Role;
use crate::domain::orders::{Customer, Line, Order, Snapshot, Status, Totals};
use crate::domain::{OrderId, VariantId};
use crate::{events, repo};

/// A manual (or local store) order as a client sent it.
#[derive(Debug, Clone, Default)]
pub struct NewOrder {
    pub idempotency_key: String,
    pub currency: String,
    pub customer: Customer,
    /// (variant id, quantity, price or empty for the variant's price)
    pub lines: Vec<(String, u32, String)>,
    pub shipping: String,
    pub taxes: String,
    pub paid: bool,
    pub affiliate: String,
}

fn text_ok(s: &str, max: usize) -> bool {
    s.chars().count() <= max && !s.chars().any(char::is_control)
}

fn check_customer(c: &Customer) -> Result<(), Error> {
    let fields = [
        ("customer.name", &c.name, 200),
        ("customer.email", &c.email, 254),
        ("customer.phone", &c.phone, 32),
        ("customer.address1", &c.address1, 300),
        ("customer.address2", &c.address2, 300),
        ("customer.city", &c.city, 100),
        ("customer.province", &c.province, 100),
        ("customer.zip", &c.zip, 20),
    ];
    for (field, v, max) in fields {
        if !text_ok(v, max) {
            return Err(Error::invalid("commerce.order_invalid")
                .with_param("field", field)
                .with_violation(field, "invalid"));
        }
    }
    if !c.email.is_empty() && (!c.email.contains('@') || c.email.contains(' ')) {
        return Err(Error::invalid("commerce.order_invalid")
            .with_param("field", "customer.email")
            .with_violation("customer.email", "invalid"));
    }
    if !c.country_code.is_empty()
        && (c.country_code.len() != 2 || !c.country_code.bytes().all(|b| b.is_ascii_uppercase()))
    {
        return Err(Error::invalid("commerce.order_invalid")
            .with_param("field", "customer.country_code")
            .with_violation("customer.country_code", "invalid"));
    }
    Ok(())
}

impl App {
    pub async fn create_order(&self, p: &Principal, n: NewOrder) -> Result<Order, Error> {
        require(p, Action::Write)?;
        let key = n.idempotency_key.trim();
        if key.is_empty() || !text_ok(key, 200) {
            return Err(Error::invalid("commerce.idempotency_key_invalid").with_violation("idempotency_key", "invalid"));
        }
        let currency: Currency =
            n.currency.trim().parse().map_err(|e: Error| e.with_violation("currency", "invalid"))?;
        check_customer(&n.customer)?;
        if n.lines.is_empty() || n.lines.len() > 100 {
            return Err(Error::invalid("commerce.order_invalid")
                .with_param("field", "lines")
                .with_violation("lines", "invalid"));
        }
        let affiliate = n.affiliate.trim();
        if !text_ok(affiliate, 200) {
            return Err(Error::invalid("commerce.order_invalid")
                .with_param("field", "affiliate")
                .with_violation("affiliate", "invalid"));
        }
        let money = |raw: &str, field: &str| -> Result<Decimal, Error> {
            if raw.trim().is_empty() {
                return Ok(Decimal::ZERO);
            }
            Ok(crate::domain::money::Amount::parse(raw, currency.code(), field)?.value)
        };
        let shipping = money(&n.shipping, "shipping")?;
        let taxes = money(&n.taxes, "taxes")?;
        let mut wanted = Vec::new();
        for (raw, q, price) in &n.lines {
            let id = super::id_of::<VariantId>(raw, "commerce.variant_not_found", VariantId::as_uuid)?;
            if !(1..=10_000).contains(q) {
                return Err(Error::invalid("commerce.order_invalid")
                    .with_param("field", "quantity")
                    .with_violation("lines.quantity", "invalid"));
            }
            wanted.push((id, *q, if price.trim().is_empty() { None } else { Some(money(price, "price")?) }));
        }
        let mut tx = db::tenant(&self.pool, p.workspace_id).await?;
        if let Some(existing) = repo::orders::lock_external(&mut tx, "manual", key).await? {
            db::commit(tx).await?;
            return Ok(existing);
        }
        let ids: Vec<Uuid> = wanted.iter().map(|w| w.0).collect();
        let variants: HashMap<Uuid, crate::domain::catalogue::Variant> =
            repo::products::variants_by_id(&mut tx, &ids).await?.into_iter().map(|(_, v)| (v.id, v)).collect();
        let mut lines = Vec::new();
        for (id, q, price) in wanted {
            // Another workspace's variant is not visible: not found.
            let v = variants.get(&id).ok_or_else(|| Error::not_found("commerce.variant_not_found"))?;
            if v.price_currency != currency && price.is_none() {
                return Err(Error::invalid("commerce.currency_mismatch")
                    .with_param("expected", v.price_currency.code())
                    .with_param("currency", currency.code()));
            }
            lines.push(Line {
                variant_id: Some(id),
                sku: v.sku.clone(),
                quantity: q,
                price: price.unwrap_or(v.price),
                title: v.options.values().cloned().collect::<Vec<_>>().join(" / "),
                vendor: String::new(),
                store_line_id: String::new(),
            });
        }
        let subtotal: Decimal = lines.iter().map(|l| l.price * Decimal::from(l.quantity)).sum();
        let now = Utc::now();
        let order = Order {
            id: Uuid::now_v7(),
            source: "manual".into(),
            external_id: key.to_owned(),
            number: String::new(),
            status: if n.paid { Status::Paid } else { Status::Pending },
            totals: Totals { currency, subtotal, shipping, taxes, total: subtotal + shipping + taxes },
            customer: n.customer,
            lines,
            external_updated_at: now,
            supplier_order_id: None,
            supplier_pay_url: None,
            tracking: Vec::new(),
            failure: String::new(),
            affiliate: Some(affiliate.to_owned()).filter(|a| !a.is_empty()),
            paid_at: n.paid.then_some(now),
            created_at: now,
            updated_at: now,
        };
        repo::orders::insert(&mut tx, p.workspace_id, None, &order).await?;
        events::order_created(&mut tx, p.workspace_id, &order).await?;
        if order.status.is_paid() {
            self.record_sale(&mut tx, p.workspace_id, &order).await?;
        }
        db::commit(tx).await?;
        Ok(order)
    }

    pub async fn get_order(&self, p: &Principal, raw_id: &str) -> Result<Order, Error> {
        require(p, Action::Read)?;
        let id = super::id_of::<OrderId>(raw_id, "commerce.order_not_found", OrderId::as_uuid)?;
        let mut tx = db::tenant(&self.pool, p.workspace_id).await?;
        let o = repo::orders::get(&mut tx, id).await?.ok_or_else(|| Error::not_found("commerce.order_not_found"))?;
        db::commit(tx).await?;
        Ok(o)
    }

    pub async fn list_orders(&self, p: &Principal, page: &PageRequest) -> Result<Page<Order>, Error> {
        require(p, Action::Read)?;
        let keyset = Keyset::new(page)?;
        let mut tx = db::tenant(&self.pool, p.workspace_id).await?;
        let page = repo::orders::list(&mut tx, &keyset).await?;
        db::commit(tx).await?;
        Ok(page)
    }

    /// Applies a store's version of an order in the caller's transaction. A version older than
    /// (or as old as) the one applied changes nothing, so deliveries may come in any order.
    pub async fn apply_snapshot(
        &self,
        tx: &mut PgConnection,
        tenant: TenantId,
        connection: Uuid,
        s: Snapshot,
    ) -> Result<Order, Error> {
        let skus: Vec<String> = s.lines.iter().map(|l| l.sku.clone()).filter(|s| !s.is_empty()).collect();
        let by_sku: HashMap<String, Uuid> =
            repo::products::variants_by_sku(tx, &skus).await?.into_iter().map(|(_, v)| (v.sku, v.id)).collect();
        let lines: Vec<Line> =
            s.lines.into_iter().map(|l| Line { variant_id: by_sku.get(&l.sku).copied(), ..l }).collect();
        let existing = match repo::orders::lock_external(tx, "shopify", &s.external_id).await? {
            Some(o) => Some(o),
            None => {
                let order = Order {
                    id: Uuid::now_v7(),
                    source: "shopify".into(),
                    external_id: s.external_id.clone(),
                    number: s.number.clone(),
                    status: s.status,
                    totals: s.totals,
                    customer: s.customer.clone(),
                    lines: lines.clone(),
                    external_updated_at: s.updated_at,
                    supplier_order_id: None,
                    supplier_pay_url: None,
                    tracking: Vec::new(),
                    failure: String::new(),
                    affiliate: s.affiliate.clone(),
                    paid_at: s.status.is_paid().then_some(s.processed_at),
                    created_at: Utc::now(),
                    updated_at: Utc::now(),
                };
                if repo::orders::insert(tx, tenant, Some(connection), &order).await? {
                    events::order_created(tx, tenant, &order).await?;
                    let mut order = order;
                    match order.status {
                        st if st.is_paid() => {
                            self.record_sale(tx, tenant, &order).await?;
                            self.record_store_refunds(tx, tenant, &mut order, &s.refunds).await?;
                        }
                        Status::Refunded => {
                            events::order_refunded(tx, tenant, &order, Uuid::now_v7(), order.totals.total, true).await?
                        }
                        _ => {}
                    }
                    return Ok(order);
                }
                // Inserted by a concurrent delivery since we looked: apply on top of it.
                repo::orders::lock_external(tx, "shopify", &s.external_id).await?
            }
        };
        let mut o = existing.ok_or_else(|| Error::internal("order vanished while locked"))?;
        // Every payload lists all the store's refunds so far: an older one delivered late still
        // records those not seen yet (the others are known by their id).
        self.record_store_refunds(tx, tenant, &mut o, &s.refunds).await?;
        if s.updated_at <= o.external_updated_at {
            return Ok(o);
        }
        let before = o.status;
        o.status = before.merge(s.status);
        o.number = s.number;
        o.totals = s.totals;
        o.customer = s.customer;
        o.lines = lines;
        o.external_updated_at = s.updated_at;
        o.affiliate = s.affiliate.or(o.affiliate);
        if o.status.is_paid() && o.paid_at.is_none() {
            o.paid_at = Some(s.processed_at);
        }
        repo::orders::update(tx, &o).await?;
        if o.status.is_paid() && !before.is_paid() {
            self.record_sale(tx, tenant, &o).await?;
            self.record_store_refunds(tx, tenant, &mut o, &s.refunds).await?;
        }
        if o.status == Status::Refunded && before != Status::Refunded {
            // The store refunded what remained (here, or in its admin).
            self.refund_remaining(tx, tenant, &mut o, "store:refunded").await?;
        }
        Ok(o)
    }

    /// Refunds an order here (a manual or local one; a store refunds through its webhook).
    pub async fn refund_order(&self, p: &Principal, raw_id: &str) -> Result<Order, Error> {
        require(p, Action::Write)?;
        let id = super::id_of::<OrderId>(raw_id, "commerce.order_not_found", OrderId::as_uuid)?;
        // A store's order is refunded at the store first (it holds the customer's money), then
        // here. Should the answer be lost, the retry finds the order cancelled there and only
        // records it here.
        let store = {
            let mut tx = db::tenant(&self.pool, p.workspace_id).await?;
            let o =
                repo::orders::get(&mut tx, id).await?.ok_or_else(|| Error::not_found("commerce.order_not_found"))?;
            let store = self.store_of(&mut tx, &o).await?.map(|c| (c, o.external_id.clone()));
            db::commit(tx).await?;
            store
        };
        if let Some((Credentials::Shopify { shop, access_token }, external)) = store {
            let gid = format!("gid://shopify/Order/{external}");
            self.shopify(&shop, &access_token)
                .cancel_and_refund(&gid, "Refunded from NexusOne")
                .await
                .map_err(shopify_error)?;
        }
        let mut tx = db::tenant(&self.pool, p.workspace_id).await?;
        let mut o =
            repo::orders::lock(&mut tx, id).await?.ok_or_else(|| Error::not_found("commerce.order_not_found"))?;
        match o.status {
            Status::Refunded => {}
            st if st.is_paid() => self.refund_remaining(&mut tx, p.workspace_id, &mut o, "full").await?,
            _ => {
                return Err(Error::new(ErrorKind::Conflict, "commerce.order_not_refundable")
                    .with_param("status", o.status.as_str()));
            }
        }
        db::commit(tx).await?;
        Ok(o)
    }

    /// The fulfilment saga. (1) The paid order becomes `fulfilling` (committed). (2) The supplier
    /// order is placed (pay from balance or the supplier's pay link). (3a) Success records the
    /// supplier's order (a local supplier ships at once). (3b) A failure compensates: the order
    /// ends `fulfilment_failed` with the reason, a refund is requested for the buyer who paid,
    /// and an alert is raised, in one transaction.
    pub async fn fulfil_order(
        &self,
        p: &Principal,
        raw_id: &str,
        supplier: &str,
        logistic_name: &str,
        pay_with: &str,
    ) -> Result<Order, Error> {
        require(p, Action::Write)?;
        let id = super::id_of::<OrderId>(raw_id, "commerce.order_not_found", OrderId::as_uuid)?;
        let pay_from_balance = match pay_with.trim() {
            "" | "balance" => true,
            "page" => false,
            _ => {
                return Err(Error::invalid("commerce.order_invalid")
                    .with_param("field", "pay_with")
                    .with_violation("pay_with", "invalid"));
            }
        };
        if !text_ok(logistic_name, 100) {
            return Err(Error::invalid("commerce.order_invalid")
                .with_param("field", "logistic_name")
                .with_violation("logistic_name", "invalid"));
        }
        let (conn, creds) = self.connection(p, supplier).await?;
        if conn.role != Role::Supplier {
            return Err(Error::invalid("commerce.connection_not_supplier"));
        }
        // Step 1: claim the order for fulfilment.
        let mut tx = db::tenant(&self.pool, p.workspace_id).await?;
        let mut o =
            repo::orders::lock(&mut tx, id).await?.ok_or_else(|| Error::not_found("commerce.order_not_found"))?;
        if o.status == Status::Fulfilling && o.supplier_order_id.is_some() {
            db::commit(tx).await?;
            self.sync_tracking(p.workspace_id).await?;
            return self.get_order(p, raw_id).await;
        }
        if !matches!(o.status, Status::Paid | Status::FulfilmentFailed) {
            return Err(Error::new(ErrorKind::Conflict, "commerce.order_not_fulfillable")
                .with_param("status", o.status.as_str()));
        }
        let ids: Vec<Uuid> = o.lines.iter().filter_map(|l| l.variant_id).collect();
        let variants: HashMap<Uuid, (Uuid, crate::domain::catalogue::Variant)> =
            repo::products::variants_by_id(&mut tx, &ids).await?.into_iter().map(|(p, v)| (v.id, (p, v))).collect();
        let mut lines: Vec<(String, u32, BTreeMap<String, String>, String)> = Vec::new();
        for l in &o.lines {
            let Some((product, v)) = l.variant_id.and_then(|id| variants.get(&id)) else {
                return Err(Error::new(ErrorKind::Unprocessable, "commerce.order_lines_unknown")
                    .with_param("sku", l.sku.clone()));
            };
            let product = repo::products::get(&mut tx, *product)
                .await?
                .ok_or_else(|| Error::not_found("commerce.product_not_found"))?;
            if product.connection_id != conn.id {
                return Err(Error::new(ErrorKind::Unprocessable, "commerce.order_lines_unknown")
                    .with_param("sku", l.sku.clone()));
            }
            let supplier_ref = if matches!(creds, Credentials::Aliexpress { .. }) {
                product.supplier_product_id.clone()
            } else {
                v.supplier_variant_id.clone()
            };
            lines.push((supplier_ref, l.quantity, v.options.clone(), l.store_line_id.clone()));
        }
        o.status = Status::Fulfilling;
        o.failure.clear();
        repo::orders::update(&mut tx, &o).await?;
        db::commit(tx).await?;

        // Step 2: the supplier order.
        let placed = self.supplier_order(&creds, &o, &lines, logistic_name, pay_from_balance).await;

        // Step 3.
        let supplier_name = provider_of(&creds).as_str();
        let mut tx = db::tenant(&self.pool, p.workspace_id).await?;
        let mut o =
            repo::orders::lock(&mut tx, id).await?.ok_or_else(|| Error::not_found("commerce.order_not_found"))?;
        match placed {
            Ok((supplier_order_id, pay_url, tracking)) => {
                o.supplier_order_id = Some(supplier_order_id);
                o.supplier_pay_url = pay_url;
                if !tracking.is_empty() {
                    o.tracking = tracking;
                    o.status = Status::Fulfilled;
                }
                repo::orders::update(&mut tx, &o).await?;
                if o.status == Status::Fulfilled {
                    events::order_fulfilled(&mut tx, p.workspace_id, &o, supplier_name).await?;
                }
            }
            Err(e) => {
                tracing::warn!(error = ?e, order = %o.id, supplier = supplier_name, "supplier order failed; compensating");
                let reason = e.param("detail").map_or_else(|| e.code().to_owned(), |d| format!("{}: {d}", e.code()));
                o.status = Status::FulfilmentFailed;
                o.failure =
                    format!("{supplier_name} refused the order ({reason}); a refund was requested for the buyer");
                repo::orders::update(&mut tx, &o).await?;
                repo::orders::request_refund(&mut tx, o.id).await?;
                let detail = json!({
                    "order_id": OrderId::from_uuid(o.id).to_string(), "supplier": supplier_name, "error": e.code(),
                    "detail": e.param("detail"), "refund_requested": true,
                });
                repo::alerts::raise(&mut tx, p.workspace_id, "fulfilment_failed", o.id, &detail).await?;
            }
        }
        db::commit(tx).await?;
        Ok(o)
    }

    /// Orders whose supplier shipped: the tracking number goes to the store (a fulfillment with
    /// tracking) and the order becomes `fulfilled`.
    pub async fn sync_tracking(&self, tenant: TenantId) -> Result<u32, Error> {
        let mut tx = db::tenant(&self.pool, tenant).await?;
        let waiting = repo::orders::awaiting_tracking(&mut tx).await?;
        let mut suppliers: HashMap<Uuid, Credentials> = HashMap::new();
        let mut plans = Vec::new();
        for o in waiting {
            let Some(line) = o.lines.iter().find_map(|l| l.variant_id) else { continue };
            let Some((product, _)) = repo::products::variants_by_id(&mut tx, &[line]).await?.pop() else { continue };
            let Some(p) = repo::products::get(&mut tx, product).await? else { continue };
            if let std::collections::hash_map::Entry::Vacant(slot) = suppliers.entry(p.connection_id) {
                let Some(s) = repo::connections::get(&mut tx, p.connection_id).await? else { continue };
                slot.insert(self.unseal(p.connection_id, &s.credentials)?);
            }
            // The store the order came from gets the tracking number (none for manual orders).
            let store = match repo::orders::store_connection(&mut tx, o.id).await? {
                Some(sc) => {
                    repo::connections::get(&mut tx, sc).await?.map(|x| self.unseal(sc, &x.credentials)).transpose()?
                }
                None => None,
            };
            plans.push((o, p.connection_id, store));
        }
        db::commit(tx).await?;
        let mut done = 0;
        for (o, supplier, store) in plans {
            let creds = &suppliers[&supplier];
            let Some(supplier_order) = o.supplier_order_id.clone() else { continue };
            let tracking = match self.supplier_tracking(creds, &supplier_order).await {
                Ok(Some(t)) => t,
                Ok(None) => continue,
                Err(e) => {
                    tracing::warn!(error = ?e, order = %o.id, "tracking not read");
                    continue;
                }
            };
            if let Some(Credentials::Shopify { shop, access_token }) = &store {
                let gid = format!("gid://shopify/Order/{}", o.external_id);
                if let Err(e) =
                    self.shopify(shop, access_token).fulfil(&gid, &tracking, provider_of(creds).as_str()).await
                {
                    tracing::warn!(error = ?shopify_error(e), order = %o.id, "tracking not sent to the store; retried next sweep");
                    continue;
                }
            }
            let mut tx = db::tenant(&self.pool, tenant).await?;
            if let Some(mut locked) = repo::orders::lock(&mut tx, o.id).await?
                && locked.status == Status::Fulfilling
            {
                locked.tracking = vec![tracking];
                locked.status = Status::Fulfilled;
                repo::orders::update(&mut tx, &locked).await?;
                events::order_fulfilled(&mut tx, tenant, &locked, provider_of(creds).as_str()).await?;
                done += 1;
            }
            db::commit(tx).await?;
        }
        Ok(done)
    }
}
