//! Catalogue search, import with variants (priced by the workspace's rules in the store's
//! currency, the conversion recorded on every price), products, and the push to a store.

use std::collections::{BTreeMap, HashMap};

use chrono::Utc;
use nexus_kernel::{Currency, Error, ErrorKind, Page, PageRequest, TenantId};
use nexus_platform::db::{self, Keyset};
use nexus_platform::identity::{Action, Principal};
use nexus_providers::shopify::{ShopifyClient, TranslationInput};
use rust_decimal::Decimal;
use serde_json::json;
use uuid::Uuid;

use super::suppliers::{Credentials, provider_of, shopify_error};
use super::{App, require};
use crate::domain::ProductId;
use crate::domain::catalogue::{CatalogueItem, Product, Search, Variant};
use crate::domain::connections::Role;
use crate::domain::orders::{Line, Order, Status, Totals};
use crate::domain::pricing::{PricingRule, Rounding, Scope, rule_for};
use crate::{events, repo};

/// What a DSers import did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DsersReport {
    pub rows: u64,
    pub imported: u32,
    pub already_imported: u32,
    pub errors: Vec<crate::domain::dsers::RowError>,
}

/// The rule used when a workspace has none: cost doubled, charm-rounded, alerts under 20 %
/// margin, automatic rises up to 10 %.
pub fn builtin_rule(currency: Currency) -> PricingRule {
    PricingRule {
        scope: Scope::Default,
        markup_percent: Decimal::ONE_HUNDRED,
        markup_fixed: Decimal::ZERO,
        compare_at_percent: None,
        rounding: Rounding::Cents99,
        currency,
        min_margin_percent: Decimal::from(20),
        max_auto_increase_percent: Decimal::from(10),
    }
}

impl App {
    pub async fn search_catalogue(
        &self,
        p: &Principal,
        connection: &str,
        s: &Search,
    ) -> Result<(Vec<CatalogueItem>, String), Error> {
        require(p, Action::Read)?;
        let (c, creds) = self.connection(p, connection).await?;
        if c.role != Role::Supplier {
            return Err(Error::invalid("commerce.connection_not_supplier"));
        }
        let items = self.supplier_search(&creds, s).await?;
        Ok((items, c.provider.as_str().to_owned()))
    }

    /// Imports a supplier product with its variants. Importing one already imported answers it.
    pub async fn import_product(
        &self,
        p: &Principal,
        connection: &str,
        supplier_product_id: &str,
        currency: &str,
    ) -> Result<Product, Error> {
        require(p, Action::Write)?;
        let id = supplier_product_id.trim();
        if id.is_empty() || id.len() > 100 || id.chars().any(char::is_control) {
            return Err(
                Error::invalid("commerce.supplier_product_invalid").with_violation("supplier_product_id", "invalid")
            );
        }
        let currency: Currency = if currency.trim().is_empty() { self.reporting } else { currency.trim().parse()? };
        let (c, creds) = self.connection(p, connection).await?;
        if c.role != Role::Supplier {
            return Err(Error::invalid("commerce.connection_not_supplier"));
        }
        let supplier = provider_of(&creds).as_str();
        {
            let mut tx = db::tenant(&self.pool, p.workspace_id).await?;
            let existing = repo::products::find_by_supplier(&mut tx, supplier, id).await?;
            db::commit(tx).await?;
            if let Some(existing) = existing {
                return Ok(existing);
            }
        }
        let sp = self.supplier_product(&creds, id).await?;
        self.store_import(p, c.id, supplier, &sp, currency).await
    }

    /// Stores a fetched supplier product: each variant priced by the workspace's rule in
    /// `currency`, with the conversion recorded, and `product.imported` in the same transaction.
    pub async fn store_import(
        &self,
        p: &Principal,
        connection: Uuid,
        supplier: &str,
        sp: &crate::domain::catalogue::SupplierProduct,
        currency: Currency,
    ) -> Result<Product, Error> {
        if sp.variants.is_empty() {
            return Err(Error::new(ErrorKind::Unprocessable, "commerce.supplier_product_empty"));
        }
        let rates = self.rate_table();
        let today = Utc::now().date_naive();
        let product_id = Uuid::now_v7();
        let mut tx = db::tenant(&self.pool, p.workspace_id).await?;
        let rules: Vec<PricingRule> = repo::rules::pricing_rules(&mut tx).await?.into_iter().map(|(_, r)| r).collect();
        let pid = ProductId::from_uuid(product_id).to_string();
        let rule = rule_for(&rules, &pid, &sp.category)
            .filter(|r| r.currency == currency)
            .cloned()
            .unwrap_or_else(|| builtin_rule(currency));
        let mut variants = Vec::new();
        for v in &sp.variants {
            let conversion = rates.conversion(v.currency, currency, today)?;
            let cost_in_store = conversion.apply_exact(v.cost);
            let priced = rule.price(cost_in_store);
            variants.push(Variant {
                id: Uuid::now_v7(),
                supplier_variant_id: v.supplier_variant_id.clone(),
                sku: v.sku.clone(),
                options: v.options.clone(),
                cost: v.cost,
                cost_currency: v.currency,
                price: priced.price.value,
                compare_at: priced.compare_at,
                price_currency: currency,
                rate: conversion.rate,
                rate_day: conversion.day,
                rate_source: self.rate_source().to_owned(),
                stock: v.stock,
                store_variant_id: None,
            });
        }
        let now = Utc::now();
        let product = Product {
            id: product_id,
            connection_id: connection,
            supplier: supplier.to_owned(),
            supplier_product_id: sp.supplier_product_id.clone(),
            title: sp.title.chars().take(500).collect(),
            description: sp.description.chars().take(20_000).collect(),
            category: sp.category.chars().take(200).collect(),
            images: sp.images.iter().take(20).cloned().collect(),
            status: if variants.iter().all(|v| v.stock == 0) { "out_of_stock".into() } else { "draft".into() },
            store_product_id: None,
            translations: Vec::new(),
            variants,
            created_at: now,
            updated_at: now,
        };
        repo::products::insert(&mut tx, p.workspace_id, &product).await?;
        events::product_imported(&mut tx, p.workspace_id, &product).await?;
        db::commit(tx).await?;
        Ok(product)
    }

    /// Imports a DSers product export (CSV) into a supplier connection: products already
    /// imported are left as they are; unusable rows are reported by line.
    pub async fn import_dsers_products(
        &self,
        p: &Principal,
        connection: &str,
        csv: &[u8],
        currency: &str,
    ) -> Result<DsersReport, Error> {
        require(p, Action::Write)?;
        let currency: Currency = if currency.trim().is_empty() { self.reporting } else { currency.trim().parse()? };
        let parsed = crate::domain::dsers::parse_products(csv)?;
        let (c, creds) = self.connection(p, connection).await?;
        if c.role != Role::Supplier {
            return Err(Error::invalid("commerce.connection_not_supplier"));
        }
        let supplier = provider_of(&creds).as_str();
        let mut report = DsersReport { rows: parsed.rows, errors: parsed.errors, ..DsersReport::default() };
        for sp in &parsed.products {
            let mut tx = db::tenant(&self.pool, p.workspace_id).await?;
            let existing = repo::products::find_by_supplier(&mut tx, supplier, &sp.supplier_product_id).await?;
            db::commit(tx).await?;
            if existing.is_some() {
                report.already_imported += 1;
                continue;
            }
            match self.store_import(p, c.id, supplier, sp, currency).await {
                Ok(_) => report.imported += 1,
                Err(e) if e.kind() == ErrorKind::Internal || e.kind() == ErrorKind::Unavailable => return Err(e),
                Err(e) => report.errors.push(crate::domain::dsers::RowError {
                    line: 0,
                    reason: format!("product {}: {}", sp.supplier_product_id, e.code()),
                }),
            }
        }
        Ok(report)
    }

    /// Imports a DSers order export (CSV): each order once (keyed by its order number, so a
    /// re-import creates nothing twice), its lines matched to imported variants by SKU, the sale
    /// recorded when paid; unusable rows are reported by line.
    pub async fn import_dsers_orders(&self, p: &Principal, csv: &[u8]) -> Result<DsersReport, Error> {
        require(p, Action::Write)?;
        let parsed = crate::domain::dsers::parse_orders(csv)?;
        let mut report = DsersReport { rows: parsed.rows, errors: parsed.errors, ..DsersReport::default() };
        for d in parsed.orders {
            let line = d.line;
            let number = d.number.clone();
            match self.import_dsers_order(p.workspace_id, d).await {
                Ok(true) => report.imported += 1,
                Ok(false) => report.already_imported += 1,
                Err(e) if e.kind() == ErrorKind::Internal || e.kind() == ErrorKind::Unavailable => return Err(e),
                Err(e) => report
                    .errors
                    .push(crate::domain::dsers::RowError { line, reason: format!("order {number}: {}", e.code()) }),
            }
        }
        report.errors.sort_by_key(|e| e.line);
        Ok(report)
    }

    /// One imported order in its own transaction; `false` when it was imported before.
    async fn import_dsers_order(&self, tenant: TenantId, d: crate::domain::dsers::DsersOrder) -> Result<bool, Error> {
        let mut tx = db::tenant(&self.pool, tenant).await?;
        if repo::orders::lock_external(&mut tx, "dsers", &d.number).await?.is_some() {
            db::commit(tx).await?;
            return Ok(false);
        }
        let skus: Vec<String> = d.lines.iter().map(|l| l.sku.clone()).filter(|s| !s.is_empty()).collect();
        let by_sku: HashMap<String, Uuid> =
            repo::products::variants_by_sku(&mut tx, &skus).await?.into_iter().map(|(_, v)| (v.sku, v.id)).collect();
        let lines: Vec<Line> =
            d.lines.into_iter().map(|l| Line { variant_id: by_sku.get(&l.sku).copied(), ..l }).collect();
        let subtotal: Decimal = lines.iter().map(|l| l.price * Decimal::from(l.quantity)).sum();
        let now = Utc::now();
        let at = d.ordered_at.unwrap_or(now);
        let order = Order {
            id: Uuid::now_v7(),
            source: "dsers".into(),
            external_id: d.number.clone(),
            number: d.number,
            status: if d.paid { Status::Paid } else { Status::Pending },
            totals: Totals {
                currency: d.currency,
                subtotal,
                shipping: d.shipping,
                taxes: Decimal::ZERO,
                total: subtotal + d.shipping,
            },
            customer: d.customer,
            lines,
            external_updated_at: at,
            supplier_order_id: None,
            supplier_pay_url: None,
            tracking: Vec::new(),
            failure: String::new(),
            affiliate: None,
            paid_at: d.paid.then_some(at),
            created_at: now,
            updated_at: now,
        };
        if !repo::orders::insert(&mut tx, tenant, None, &order).await? {
            // Imported by a concurrent request since we looked.
            return Ok(false);
        }
        events::order_created(&mut tx, tenant, &order).await?;
        if order.status.is_paid() {
            self.record_sale(&mut tx, tenant, &order).await?;
        }
        db::commit(tx).await?;
        Ok(true)
    }

    pub async fn get_product(&self, p: &Principal, raw_id: &str) -> Result<Product, Error> {
        require(p, Action::Read)?;
        let id = super::id_of::<ProductId>(raw_id, "commerce.product_not_found", ProductId::as_uuid)?;
        let mut tx = db::tenant(&self.pool, p.workspace_id).await?;
        let product =
            repo::products::get(&mut tx, id).await?.ok_or_else(|| Error::not_found("commerce.product_not_found"))?;
        db::commit(tx).await?;
        Ok(product)
    }

    pub async fn list_products(&self, p: &Principal, page: &PageRequest) -> Result<Page<Product>, Error> {
        require(p, Action::Read)?;
        let keyset = Keyset::new(page)?;
        let mut tx = db::tenant(&self.pool, p.workspace_id).await?;
        let page = repo::products::list(&mut tx, &keyset).await?;
        db::commit(tx).await?;
        Ok(page)
    }

    /// Pushes a product to a store. The store identifies it by a handle made from our id, so
    /// pushing again sets the same product (idempotent).
    pub async fn publish_product(&self, p: &Principal, raw_id: &str, store: &str) -> Result<Product, Error> {
        require(p, Action::Write)?;
        let product = self.get_product(p, raw_id).await?;
        let (c, creds) = self.connection(p, store).await?;
        if c.role != Role::Store {
            return Err(Error::invalid("commerce.connection_not_store"));
        }
        let (store_id, variant_ids) = self.push(&creds, &product).await?;
        let mut tx = db::tenant(&self.pool, p.workspace_id).await?;
        repo::products::published(&mut tx, product.id, c.id, &store_id, &variant_ids).await?;
        let updated = repo::products::get(&mut tx, product.id)
            .await?
            .ok_or_else(|| Error::not_found("commerce.product_not_found"))?;
        db::commit(tx).await?;
        Ok(updated)
    }

    /// Sends a product's current state to a store: (store product id, (variant, store variant id)).
    pub async fn push(&self, creds: &Credentials, product: &Product) -> Result<(String, Vec<(Uuid, String)>), Error> {
        let handle = format!("nx-{}", product.id.simple());
        match creds {
            Credentials::Local => Ok((
                format!("local:{handle}"),
                product.variants.iter().map(|v| (v.id, format!("local:{}", v.id.simple()))).collect(),
            )),
            Credentials::Shopify { shop, access_token } => {
                let client = self.shopify(shop, access_token);
                // Stock is set, not adjusted, at the primary location: a repeated push leaves
                // the same quantities.
                let location = client.primary_location().await.map_err(shopify_error)?;
                let option_names: Vec<String> = {
                    let mut names: Vec<String> =
                        product.variants.iter().flat_map(|v| v.options.keys().cloned()).collect();
                    names.sort();
                    names.dedup();
                    names
                };
                let options: Vec<_> = option_names
                    .iter()
                    .map(|n| {
                        let mut values: Vec<&String> =
                            product.variants.iter().filter_map(|v| v.options.get(n)).collect();
                        values.sort();
                        values.dedup();
                        json!({"name": n, "values": values.iter().map(|v| json!({"name": v})).collect::<Vec<_>>()})
                    })
                    .collect();
                let variants: Vec<_> = product
                    .variants
                    .iter()
                    .map(|v| {
                        let option_values: Vec<_> =
                            v.options.iter().map(|(k, val)| json!({"optionName": k, "name": val})).collect();
                        json!({
                            "optionValues": option_values,
                            "price": crate::domain::money::text(v.price, v.price_currency),
                            "compareAtPrice": v.compare_at.map(|c| crate::domain::money::text(c, v.price_currency)),
                            "inventoryItem": {"sku": v.sku, "tracked": true},
                            "inventoryQuantities": [{"locationId": location, "name": "available", "quantity": v.stock.max(0)}],
                        })
                    })
                    .collect();
                let files: Vec<_> =
                    product.images.iter().map(|u| json!({"originalSource": u, "contentType": "IMAGE"})).collect();
                let input = json!({
                    "title": product.title,
                    "descriptionHtml": product.description,
                    "productType": product.category,
                    "status": "ACTIVE",
                    "productOptions": options,
                    "variants": variants,
                    "files": files,
                });
                let pushed = client.product_set(&handle, input).await.map_err(shopify_error)?;
                push_translations(&client, &pushed.id, product).await?;
                let by_sku: BTreeMap<&str, &str> =
                    pushed.variants.iter().map(|(id, sku, _)| (sku.as_str(), id.as_str())).collect();
                let ids = product
                    .variants
                    .iter()
                    .filter_map(|v| by_sku.get(v.sku.as_str()).map(|id| (v.id, (*id).to_owned())))
                    .collect();
                Ok((pushed.id, ids))
            }
            _ => Err(Error::invalid("commerce.connection_not_store")),
        }
    }
}

/// The product's stored translations registered at the store, for each locale the shop has
/// enabled in that language (`pt` goes to `pt-BR` and `pt-PT` alike) other than its primary one
/// (which holds the product's own texts). A language the shop has not enabled is left out and
/// logged: Shopify refuses translations into it. Registering the same texts again changes
/// nothing, so every push sends them (a push after a title change refreshes their digests).
async fn push_translations(client: &ShopifyClient, resource: &str, product: &Product) -> Result<(), Error> {
    if product.translations.is_empty() {
        return Ok(());
    }
    let shop = client.translatable(resource).await.map_err(shopify_error)?;
    let mut inputs = Vec::new();
    let mut not_enabled = Vec::new();
    for text in &product.translations {
        let code = text.language.code();
        let locales: Vec<&str> = shop
            .locales
            .iter()
            .filter(|l| {
                !l.primary && (l.locale == code || l.locale.strip_prefix(code).is_some_and(|r| r.starts_with('-')))
            })
            .map(|l| l.locale.as_str())
            .collect();
        if locales.is_empty() {
            not_enabled.push(code);
        }
        for locale in locales {
            for (key, value) in [("title", &text.title), ("body_html", &text.description)] {
                if let Some(digest) = shop.digests.get(key).filter(|_| !value.is_empty()) {
                    inputs.push(TranslationInput {
                        locale: locale.to_owned(),
                        key: key.to_owned(),
                        value: value.clone(),
                        digest: digest.clone(),
                    });
                }
            }
        }
    }
    if !not_enabled.is_empty() {
        tracing::info!(product = %product.id, languages = ?not_enabled, "translations not sent: the shop has not enabled these languages");
    }
    if !inputs.is_empty() {
        client.register_translations(resource, &inputs).await.map_err(shopify_error)?;
    }
    Ok(())
}
