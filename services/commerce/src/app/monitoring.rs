//! Price and stock monitoring: every imported variant's supplier cost and stock checked, the
//! change recorded in the price history, prices moved by the rule within the automatic limit
//! (and pushed to the store), alerts raised once when the margin falls below the threshold or
//! a variant runs out, and supplier tracking numbers synced to the store.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use nexus_kernel::{Error, TenantId};
use nexus_platform::db;
use nexus_platform::identity::{Action, Principal};
use serde_json::json;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::catalogue::builtin_rule;
use super::suppliers::Credentials;
use super::{App, require};
use crate::domain::ProductId;
use crate::domain::catalogue::{Product, SupplierProduct};
use crate::domain::pricing::{PricingRule, margin_percent, reprice, rule_for};
use crate::repo::products::VariantChange;
use crate::{events, repo};

/// A page's supplier products, by (supplier connection, supplier product id).
type Fetched = HashMap<(Uuid, String), SupplierProduct>;

/// What a sweep did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Report {
    pub variants_checked: u32,
    pub prices_changed: u32,
    pub alerts_raised: u32,
    pub out_of_stock: u32,
}

impl Report {
    fn add(&mut self, o: Report) {
        self.variants_checked += o.variants_checked;
        self.prices_changed += o.prices_changed;
        self.alerts_raised += o.alerts_raised;
        self.out_of_stock += o.out_of_stock;
    }
}

impl App {
    /// Checks the caller's workspace now.
    pub async fn run_monitoring(self: &Arc<Self>, p: &Principal) -> Result<Report, Error> {
        require(p, Action::Write)?;
        let report = self.monitor_workspace(p.workspace_id).await?;
        self.sync_tracking(p.workspace_id).await?;
        Ok(report)
    }

    async fn credentials(&self, tenant: TenantId, ids: &[Uuid]) -> Result<HashMap<Uuid, Credentials>, Error> {
        let mut tx = db::tenant(&self.pool, tenant).await?;
        let mut out = HashMap::new();
        for id in ids {
            if let Some(s) = repo::connections::get(&mut tx, *id).await?
                && s.record.status != "disconnected"
            {
                out.insert(*id, self.unseal(*id, &s.credentials)?);
            }
        }
        db::commit(tx).await?;
        Ok(out)
    }

    /// One workspace's sweep, a page of products at a time: the page's supplier products
    /// fetched `monitoring.concurrency` at once, then its changes stored in one transaction of a
    /// few statements for the page (a catalogue of tens of thousands of products is checked in
    /// the time its supplier calls take, and held in memory a few pages at a time).
    pub async fn monitor_workspace(self: &Arc<Self>, tenant: TenantId) -> Result<Report, Error> {
        let mut tx = db::tenant(&self.pool, tenant).await?;
        let rules: Vec<PricingRule> = repo::rules::pricing_rules(&mut tx).await?.into_iter().map(|(_, r)| r).collect();
        let ids = repo::products::monitored_connections(&mut tx).await?;
        db::commit(tx).await?;
        let creds = self.credentials(tenant, &ids).await?;
        let page_size = self.cfg.monitoring.page_size;
        // The supplier calls and the writes run side by side, handing pages over a channel of
        // one: while a page's results are written the next page is fetched, and neither waits
        // for the other's page to finish unless it is a whole page ahead.
        let (pages, mut fetched_pages) = tokio::sync::mpsc::channel::<(Vec<Product>, Fetched)>(1);
        let read = |after: Option<(DateTime<Utc>, Uuid)>| async move {
            let mut tx = db::tenant(&self.pool, tenant).await?;
            let page = repo::products::monitored_page(&mut tx, tenant, after, i64::from(page_size)).await?;
            db::commit(tx).await?;
            Ok::<Vec<Product>, Error>(page)
        };
        let fetching = async move {
            let mut page = read(None).await?;
            // The next page is read while this one's supplier calls are made.
            while let Some(last) = page.last() {
                let last_page = page.len() < page_size as usize;
                let after = Some((last.created_at, last.id));
                let next = async move { if last_page { Ok(Vec::new()) } else { read(after).await } };
                let (fetched, next) = tokio::join!(self.fetch_page(&creds, &page), next);
                if pages.send((page, fetched)).await.is_err() {
                    break;
                }
                page = next?;
            }
            Ok::<(), Error>(())
        };
        // The writes run in a task of their own, so their work never holds up the polling of
        // the supplier calls in flight.
        let app = Arc::clone(self);
        let storing = tokio::spawn(async move {
            let mut report = Report::default();
            while let Some((page, fetched)) = fetched_pages.recv().await {
                match app.apply_checks(tenant, &page, &fetched, &rules).await {
                    Ok(r) => report.add(r),
                    Err(e) => {
                        tracing::warn!(error = ?e, products = page.len(), "monitoring results of a page not stored");
                    }
                }
            }
            report
        });
        let fetched = fetching.await;
        let report = storing.await.map_err(|e| Error::internal(format!("monitoring writes stopped: {e}")))?;
        fetched?;
        Ok(report)
    }

    /// The supplier's side of a page's products, each supplier product asked once; a product
    /// whose supplier cannot answer is left out (and checked again next sweep).
    async fn fetch_page(&self, creds: &HashMap<Uuid, Credentials>, page: &[Product]) -> Fetched {
        let mut keys: Vec<(Uuid, &str)> = page
            .iter()
            .filter(|p| creds.contains_key(&p.connection_id))
            .map(|p| (p.connection_id, p.supplier_product_id.as_str()))
            .collect();
        keys.sort_unstable();
        keys.dedup();
        // A plain loop over a set of calls in flight (no stream combinator closures: the sweep's
        // future must stay `Send` for the task that runs it).
        let limit = self.cfg.monitoring.concurrency;
        let mut keys = keys.into_iter();
        let mut in_flight = FuturesUnordered::new();
        let mut answers = Vec::new();
        loop {
            while in_flight.len() < limit {
                let Some((connection, id)) = keys.next() else { break };
                in_flight.push(self.fetch_one(&creds[&connection], connection, id));
            }
            match in_flight.next().await {
                Some(answer) => answers.push(answer),
                None => break,
            }
        }
        let mut fetched = HashMap::with_capacity(answers.len());
        for (connection, id, answer) in answers {
            match answer {
                Ok(sp) => {
                    fetched.insert((connection, id.to_owned()), sp);
                }
                Err(e) => tracing::warn!(error = ?e, supplier_product = id, "supplier product not checked"),
            }
        }
        fetched
    }

    async fn fetch_one<'a>(
        &self,
        creds: &Credentials,
        connection: Uuid,
        id: &'a str,
    ) -> (Uuid, &'a str, Result<SupplierProduct, Error>) {
        (connection, id, self.supplier_product(creds, id).await)
    }

    /// A page's checks against what the supplier answered, stored in one transaction; then the
    /// products whose price or stock moved pushed to their store.
    async fn apply_checks(
        &self,
        tenant: TenantId,
        page: &[Product],
        fetched: &Fetched,
        rules: &[PricingRule],
    ) -> Result<Report, Error> {
        let rates = self.rate_table();
        let today = Utc::now().date_naive();
        let rate_source = self.rate_source();
        let mut report = Report::default();
        let mut changes = Vec::new();
        let mut statuses = Vec::new();
        let mut to_push = Vec::new();
        // The page's alerts and events are gathered and written a statement per kind, not per
        // variant: a sweep's cost is then its supplier calls, not its round trips.
        let (mut raise, mut resolve) = (Vec::new(), Vec::new());
        let (mut price_events, mut stock_events) = (Vec::new(), Vec::new());
        for product in page {
            let Some(sp) = fetched.get(&(product.connection_id, product.supplier_product_id.clone())) else {
                continue;
            };
            let pid = ProductId::from_uuid(product.id).to_string();
            let mut moved = false;
            for v in &product.variants {
                let Some(sv) = sp.variants.iter().find(|s| s.supplier_variant_id == v.supplier_variant_id) else {
                    continue;
                };
                report.variants_checked += 1;
                let cost_changed = sv.cost != v.cost || sv.currency != v.cost_currency;
                let stock_changed = sv.stock != v.stock;
                if !cost_changed && !stock_changed {
                    continue;
                }
                let rule = rule_for(rules, &pid, &product.category)
                    .filter(|r| r.currency == v.price_currency)
                    .cloned()
                    .unwrap_or_else(|| builtin_rule(v.price_currency));
                // A variant whose currencies have no rate today is left for a later sweep; its
                // page-mates are still checked.
                let conversion = match rates.conversion(sv.currency, v.price_currency, today) {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::warn!(error = ?e, variant = %v.id, "no rate to check a variant's cost with");
                        continue;
                    }
                };
                let cost_in_store = conversion.apply_exact(sv.cost);
                let (new_price, compare_at) = if cost_changed {
                    let out = reprice(&rule, v.price, cost_in_store);
                    let detail = json!({
                        "product_id": pid, "sku": v.sku, "old_cost": v.cost.to_string(), "new_cost": sv.cost.to_string(),
                        "cost_currency": sv.currency.code(), "price": v.price.to_string(), "new_price": out.new_price.to_string(),
                        "currency": v.price_currency.code(),
                        "margin_percent": margin_percent(v.price, cost_in_store).map(|m| m.to_string()),
                        "threshold_percent": rule.min_margin_percent.to_string(),
                    });
                    if out.margin_alert {
                        raise.push(("margin_below_threshold", v.id, detail.clone()));
                    } else {
                        resolve.push(("margin_below_threshold", v.id));
                    }
                    if out.capped {
                        raise.push(("price_limit_reached", v.id, detail));
                    }
                    (out.new_price, out.compare_at)
                } else {
                    (v.price, None)
                };
                if new_price != v.price || cost_changed {
                    price_events.push(events::price_changed(tenant, product.id, v, (sv.cost, new_price), "monitoring"));
                }
                if new_price != v.price {
                    report.prices_changed += 1;
                }
                moved |= new_price != v.price || stock_changed;
                if sv.stock == 0 && v.stock > 0 {
                    report.out_of_stock += 1;
                    stock_events.push(events::stock_out(tenant, product.id, v));
                    raise.push(("out_of_stock", v.id, json!({"product_id": pid, "sku": v.sku})));
                } else if sv.stock > 0 && v.stock == 0 {
                    resolve.push(("out_of_stock", v.id));
                }
                changes.push(VariantChange {
                    variant: v,
                    new_cost: sv.cost,
                    new_price,
                    new_compare_at: compare_at,
                    new_stock: sv.stock,
                    rate: conversion.rate,
                    rate_day: conversion.day,
                    rate_source,
                    reason: "monitoring",
                });
            }
            let all_out = product.variants.iter().all(|v| {
                sp.variants.iter().find(|s| s.supplier_variant_id == v.supplier_variant_id).map_or(v.stock, |s| s.stock)
                    == 0
            });
            let status = match (all_out, product.store_product_id.is_some()) {
                (true, _) => "out_of_stock",
                (false, true) => "published",
                (false, false) => "draft",
            };
            if status != product.status {
                statuses.push((product.id, status));
            }
            if moved {
                to_push.push(product.id);
            }
        }
        let mut tx = db::tenant(&self.pool, tenant).await?;
        report.alerts_raised += repo::alerts::raise_many(&mut tx, tenant, &raise).await?;
        repo::alerts::resolve_many(&mut tx, tenant, &resolve).await?;
        events::price_changes(&mut tx, tenant, &price_events).await?;
        events::stock_outs(&mut tx, tenant, &stock_events).await?;
        repo::products::change_variants(&mut tx, tenant, &changes).await?;
        repo::products::set_statuses(&mut tx, &statuses).await?;
        let stores = if to_push.is_empty() { Vec::new() } else { repo::products::stores_of(&mut tx, &to_push).await? };
        db::commit(tx).await?;
        self.push_changed(tenant, &stores).await;
        Ok(report)
    }

    /// The stores get the new prices and stock once, after they are stored (the push sets them,
    /// so repeating it changes nothing); a push that fails is logged and made again next time the
    /// figures move.
    pub(super) async fn push_changed(&self, tenant: TenantId, stores: &[(Uuid, Uuid)]) {
        if stores.is_empty() {
            return;
        }
        let pushed = async {
            let mut ids: Vec<Uuid> = stores.iter().map(|s| s.1).collect();
            ids.sort_unstable();
            ids.dedup();
            let creds = self.credentials(tenant, &ids).await?;
            let products: Vec<Uuid> = stores.iter().map(|s| s.0).collect();
            let mut tx = db::tenant(&self.pool, tenant).await?;
            let fresh = repo::products::get_many(&mut tx, &products).await?;
            db::commit(tx).await?;
            let store_of: HashMap<Uuid, Uuid> = stores.iter().copied().collect();
            for product in &fresh {
                let Some(c) = store_of.get(&product.id).and_then(|s| creds.get(s)) else { continue };
                if let Err(e) = self.push(c, product).await {
                    tracing::warn!(error = ?e, product = %product.id, "monitored changes not pushed to the store");
                }
            }
            Ok::<(), Error>(())
        };
        if let Err(e) = pushed.await {
            tracing::warn!(error = ?e, "monitored changes not pushed to the stores");
        }
    }

    /// Every workspace with products, one after the other.
    pub async fn sweep(self: &Arc<Self>) -> Result<Report, Error> {
        let mut tx = db::system(&self.pool).await?;
        let tenants = repo::products::tenants(&mut tx).await?;
        db::commit(tx).await?;
        let mut report = Report::default();
        for t in tenants {
            match self.monitor_workspace(t).await {
                Ok(r) => report.add(r),
                Err(e) => tracing::warn!(error = ?e, tenant = %t, "monitoring sweep of a workspace failed"),
            }
            if let Err(e) = self.sync_tracking(t).await {
                tracing::warn!(error = ?e, tenant = %t, "tracking sync failed");
            }
        }
        Ok(report)
    }
}

/// The periodic sweep, every `monitoring.interval`.
pub async fn sweeper(app: Arc<App>, stop: CancellationToken) {
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(app.cfg.monitoring.interval) => {}
        }
        if let Err(e) = app.sweep().await {
            tracing::warn!(error = ?e, "monitoring sweep failed");
        }
    }
}

impl App {
    pub async fn list_alerts(
        &self,
        p: &Principal,
        page: &nexus_kernel::PageRequest,
    ) -> Result<nexus_kernel::Page<repo::alerts::Alert>, Error> {
        require(p, Action::Read)?;
        let keyset = nexus_platform::db::Keyset::new(page)?;
        let mut tx = db::tenant(&self.pool, p.workspace_id).await?;
        let page = repo::alerts::list(&mut tx, &keyset).await?;
        db::commit(tx).await?;
        Ok(page)
    }
}
