//! Price and stock monitoring: every imported variant's supplier cost and stock checked, the
//! change recorded in the price history, prices moved by the rule within the automatic limit
//! (and pushed to the store), alerts raised once when the margin falls below the threshold or
//! a variant runs out, and supplier tracking numbers synced to the store.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::Utc;
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
    pub async fn run_monitoring(&self, p: &Principal) -> Result<Report, Error> {
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

    /// One workspace's sweep.
    pub async fn monitor_workspace(&self, tenant: TenantId) -> Result<Report, Error> {
        let mut tx = db::tenant(&self.pool, tenant).await?;
        let products = repo::products::monitored(&mut tx).await?;
        let rules: Vec<PricingRule> = repo::rules::pricing_rules(&mut tx).await?.into_iter().map(|(_, r)| r).collect();
        db::commit(tx).await?;
        let mut ids: Vec<Uuid> = products.iter().map(|p| p.connection_id).collect();
        ids.sort();
        ids.dedup();
        let creds = self.credentials(tenant, &ids).await?;
        let mut report = Report::default();
        let mut fetched: HashMap<(Uuid, String), SupplierProduct> = HashMap::new();
        for product in &products {
            let Some(c) = creds.get(&product.connection_id) else { continue };
            let key = (product.connection_id, product.supplier_product_id.clone());
            if !fetched.contains_key(&key) {
                match self.supplier_product(c, &product.supplier_product_id).await {
                    Ok(sp) => {
                        fetched.insert(key.clone(), sp);
                    }
                    Err(e) => {
                        tracing::warn!(error = ?e, product = %product.id, "supplier product not checked");
                        continue;
                    }
                }
            }
            let sp = &fetched[&key];
            match self.apply_check(tenant, product, sp, &rules).await {
                Ok(r) => report.add(r),
                Err(e) => tracing::warn!(error = ?e, product = %product.id, "monitoring result not stored"),
            }
        }
        Ok(report)
    }

    async fn apply_check(
        &self,
        tenant: TenantId,
        product: &Product,
        sp: &SupplierProduct,
        rules: &[PricingRule],
    ) -> Result<Report, Error> {
        let rates = self.rate_table();
        let today = Utc::now().date_naive();
        let pid = ProductId::from_uuid(product.id).to_string();
        let mut report = Report::default();
        let mut repriced = false;
        let mut restocked = false;
        let mut tx = db::tenant(&self.pool, tenant).await?;
        for v in &product.variants {
            let Some(sv) = sp.variants.iter().find(|s| s.supplier_variant_id == v.supplier_variant_id) else {
                continue;
            };
            report.variants_checked += 1;
            let rule = rule_for(rules, &pid, &product.category)
                .filter(|r| r.currency == v.price_currency)
                .cloned()
                .unwrap_or_else(|| builtin_rule(v.price_currency));
            let conversion = rates.conversion(sv.currency, v.price_currency, today)?;
            let cost_in_store = conversion.apply_exact(sv.cost);
            let cost_changed = sv.cost != v.cost || sv.currency != v.cost_currency;
            let stock_changed = sv.stock != v.stock;
            if !cost_changed && !stock_changed {
                continue;
            }
            let (new_price, compare_at) = if cost_changed {
                let out = reprice(&rule, v.price, cost_in_store);
                let detail = json!({
                    "product_id": pid, "sku": v.sku, "old_cost": v.cost.to_string(), "new_cost": sv.cost.to_string(),
                    "cost_currency": sv.currency.code(), "price": v.price.to_string(), "new_price": out.new_price.to_string(),
                    "currency": v.price_currency.code(),
                    "margin_percent": margin_percent(v.price, cost_in_store).map(|m| m.to_string()),
                    "threshold_percent": rule.min_margin_percent.to_string(),
                });
                if out.margin_alert
                    && repo::alerts::raise(&mut tx, tenant, "margin_below_threshold", v.id, &detail).await?
                {
                    report.alerts_raised += 1;
                }
                if !out.margin_alert {
                    repo::alerts::resolve(&mut tx, "margin_below_threshold", v.id).await?;
                }
                if out.capped && repo::alerts::raise(&mut tx, tenant, "price_limit_reached", v.id, &detail).await? {
                    report.alerts_raised += 1;
                }
                (out.new_price, out.compare_at)
            } else {
                (v.price, None)
            };
            let change = VariantChange {
                variant: v,
                new_cost: sv.cost,
                new_price,
                new_compare_at: compare_at,
                new_stock: sv.stock,
                rate: conversion.rate,
                rate_day: conversion.day,
                rate_source: self.rate_source(),
                reason: "monitoring",
            };
            repo::products::change_variant(&mut tx, tenant, &change).await?;
            if new_price != v.price || cost_changed {
                events::price_changed(&mut tx, tenant, product.id, v, (sv.cost, new_price), "monitoring").await?;
            }
            if new_price != v.price {
                report.prices_changed += 1;
                repriced = true;
            }
            restocked |= sv.stock != v.stock;
            if sv.stock == 0 && v.stock > 0 {
                report.out_of_stock += 1;
                events::stock_out(&mut tx, tenant, product.id, v).await?;
                let detail = json!({"product_id": pid, "sku": v.sku});
                if repo::alerts::raise(&mut tx, tenant, "out_of_stock", v.id, &detail).await? {
                    report.alerts_raised += 1;
                }
            } else if sv.stock > 0 && v.stock == 0 {
                repo::alerts::resolve(&mut tx, "out_of_stock", v.id).await?;
            }
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
        repo::products::set_status(&mut tx, product.id, status).await?;
        let store = repo::products::store_of(&mut tx, product.id).await?;
        db::commit(tx).await?;
        // The store gets the new prices and stock once, after they are stored (the push sets
        // them, so repeating it changes nothing).
        if (repriced || restocked)
            && let Some(store) = store
        {
            let creds = self.credentials(tenant, &[store]).await?;
            let mut tx = db::tenant(&self.pool, tenant).await?;
            let fresh = repo::products::get(&mut tx, product.id).await?;
            db::commit(tx).await?;
            if let (Some(c), Some(fresh)) = (creds.get(&store), fresh) {
                self.push(c, &fresh).await?;
            }
        }
        Ok(report)
    }

    /// Every workspace with products, one after the other.
    pub async fn sweep(&self) -> Result<Report, Error> {
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
