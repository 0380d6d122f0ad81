//! Provider adapters: the sealed credentials of a connection, the clients built from them, and
//! the few operations the use cases need from a supplier (search, product, order, tracking) or a
//! store (push a product, fulfil with tracking, register webhooks). `local` answers from the
//! sample catalogue and a local store, so everything works offline.

use std::collections::BTreeMap;
use std::time::Duration;

use nexus_kernel::{Currency, Error, ErrorKind};
use nexus_providers::aliexpress::{
    AeAddress, AeOrderItem, AeSession, AliExpressClient, AliExpressConfig, AliExpressError,
};
use nexus_providers::cj::{CjClient, CjConfig, CjError, CjOrderLine, CjOrderRequest, CjSearch, CjTokens};
use nexus_providers::shopify::{ShopifyClient, ShopifyConfig, ShopifyError};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::App;
use crate::domain::catalogue::{CatalogueItem, Search, SupplierProduct, SupplierVariant};
use crate::domain::connections::Provider;
use crate::domain::orders::Order;

/// What a connection's sealed credentials hold.
#[derive(Clone, Serialize, Deserialize)]
#[serde(tag = "provider", rename_all = "snake_case")]
pub enum Credentials {
    Cj { api_key: String, tokens: Option<CjTokens> },
    Aliexpress { app_key: String, app_secret: String, session: AeSession },
    Shopify { shop: String, access_token: String },
    Local,
}

pub(crate) fn context(connection: Uuid) -> String {
    format!("commerce.connection:{connection}")
}

impl App {
    pub fn seal(&self, connection: Uuid, c: &Credentials) -> Result<String, Error> {
        let json = serde_json::to_vec(c).map_err(Error::internal)?;
        Ok(self.sealer.seal(&json, &context(connection)))
    }

    pub fn unseal(&self, connection: Uuid, sealed: &str) -> Result<Credentials, Error> {
        let plain = self.sealer.open(sealed, &context(connection)).map_err(Error::internal)?;
        serde_json::from_slice(&plain).map_err(Error::internal)
    }

    pub fn cj(&self, api_key: &str, tokens: Option<CjTokens>) -> CjClient {
        let cfg = CjConfig {
            base_url: self.cfg.cj.base_url.clone(),
            timeout: self.cfg.providers.timeout,
            refresh_before: self.cfg.cj.refresh_before,
            attempts: self.cfg.providers.attempts,
            max_retry_after: Duration::from_secs(10),
            ..CjConfig::new(api_key)
        };
        CjClient::with_tokens(cfg, self.http.clone(), tokens)
    }

    pub fn aliexpress(&self, app_key: &str, app_secret: &str) -> AliExpressClient {
        let cfg = AliExpressConfig {
            base_url: self.cfg.aliexpress.base_url.clone(),
            timeout: self.cfg.providers.timeout,
            attempts: self.cfg.providers.attempts,
            ..AliExpressConfig::new(app_key, app_secret)
        };
        AliExpressClient::new(cfg, self.http.clone())
    }

    pub fn shopify(&self, shop: &str, token: &str) -> ShopifyClient {
        let cfg = ShopifyConfig {
            api_version: self.cfg.shopify.api_version.clone(),
            base_url: self.cfg.shopify.base_url.clone(),
            timeout: self.cfg.providers.timeout,
            attempts: self.cfg.providers.attempts.max(2),
            ..ShopifyConfig::new(shop, token)
        };
        ShopifyClient::new(cfg, self.store_http.clone())
    }

    /// One page of a supplier's catalogue.
    pub async fn supplier_search(&self, creds: &Credentials, s: &Search) -> Result<Vec<CatalogueItem>, Error> {
        match creds {
            Credentials::Local => Ok(self.local.search(s)),
            Credentials::Cj { api_key, tokens } => {
                let client = self.cj(api_key, tokens.clone());
                let found = client
                    .search(&CjSearch {
                        keyword: s.keyword.clone(),
                        category_id: String::new(),
                        page: s.page,
                        page_size: s.page_size,
                    })
                    .await
                    .map_err(cj_error)?;
                Ok(found
                    .into_iter()
                    .filter_map(|p| {
                        let price: Decimal = p.sell_price.parse().ok()?;
                        let ok = s.min_price.is_none_or(|m| price >= m)
                            && s.max_price.is_none_or(|m| price <= m)
                            && (s.category.is_empty() || p.category.eq_ignore_ascii_case(&s.category));
                        ok.then(|| CatalogueItem {
                            supplier_product_id: p.pid,
                            title: p.name,
                            category: p.category,
                            image: p.image,
                            price,
                            // CJ prices in US dollars.
                            currency: Currency::USD,
                            ship_from: "CN".into(),
                            variants: 0,
                        })
                    })
                    .collect())
            }
            // The dropshipping API has no keyword search: products are imported by id.
            Credentials::Aliexpress { .. } => {
                Err(Error::new(ErrorKind::FailedPrecondition, "commerce.search_unsupported"))
            }
            Credentials::Shopify { .. } => Err(Error::invalid("commerce.connection_not_supplier")),
        }
    }

    /// A supplier product with its variants, costs and stock, for import or monitoring.
    pub async fn supplier_product(&self, creds: &Credentials, id: &str) -> Result<SupplierProduct, Error> {
        match creds {
            Credentials::Local => {
                self.local.product(id).cloned().ok_or_else(|| Error::not_found("commerce.supplier_product_not_found"))
            }
            Credentials::Cj { api_key, tokens } => {
                let client = self.cj(api_key, tokens.clone());
                let p = client.product(id).await.map_err(|e| match e {
                    CjError::Api { code: 1600100, .. } => Error::not_found("commerce.supplier_product_not_found"),
                    other => cj_error(other),
                })?;
                let mut variants = Vec::new();
                for v in &p.variants {
                    let stock = client.stock(&v.vid).await.map_err(cj_error)?;
                    let cost: Decimal = v.sell_price.parse().map_err(|_| supplier_garbled("variantSellPrice"))?;
                    variants.push(SupplierVariant {
                        supplier_variant_id: v.vid.clone(),
                        sku: v.sku.clone(),
                        options: BTreeMap::from([("Variant".to_owned(), v.key.clone())]),
                        cost,
                        currency: Currency::USD,
                        stock: i32::try_from(stock.clamp(0, i64::from(i32::MAX))).unwrap_or(i32::MAX),
                    });
                }
                Ok(SupplierProduct {
                    supplier_product_id: p.pid,
                    title: p.name,
                    description: p.description,
                    category: p.category,
                    images: p.images,
                    ship_from: "CN".into(),
                    variants,
                })
            }
            Credentials::Aliexpress { app_key, app_secret, session } => {
                let client = self.aliexpress(app_key, app_secret);
                let p = client
                    .product(&session.access_token, id, "US", self.reporting.code(), "en")
                    .await
                    .map_err(ae_error)?;
                let variants = p
                    .skus
                    .iter()
                    .map(|s| {
                        Ok(SupplierVariant {
                            supplier_variant_id: s.sku_id.clone(),
                            sku: format!("AE-{}", s.sku_id),
                            options: BTreeMap::from([("sku_attr".to_owned(), s.sku_attr.clone())]),
                            cost: s.price.parse().map_err(|_| supplier_garbled("offer_sale_price"))?,
                            currency: s.currency.parse().map_err(|_| supplier_garbled("currency_code"))?,
                            stock: i32::try_from(s.stock.clamp(0, i64::from(i32::MAX))).unwrap_or(i32::MAX),
                        })
                    })
                    .collect::<Result<Vec<_>, Error>>()?;
                Ok(SupplierProduct {
                    supplier_product_id: p.product_id,
                    title: p.title,
                    description: p.description,
                    category: p.category_id,
                    images: p.images,
                    ship_from: "CN".into(),
                    variants,
                })
            }
            Credentials::Shopify { .. } => Err(Error::invalid("commerce.connection_not_supplier")),
        }
    }

    /// Places `order` with the supplier: (supplier order id, pay link, tracking numbers when
    /// known at once).
    pub async fn supplier_order(
        &self,
        creds: &Credentials,
        order: &Order,
        lines: &[(String, u32, BTreeMap<String, String>, String)],
        logistic_name: &str,
        pay_from_balance: bool,
    ) -> Result<(String, Option<String>, Vec<String>), Error> {
        let c = &order.customer;
        let number = order.id.simple().to_string();
        match creds {
            Credentials::Local => {
                Ok((format!("LOCAL-{}", &number[..12]), None, vec![format!("LOCALTRACK{}", &number[..10])]))
            }
            Credentials::Cj { api_key, tokens } => {
                let client = self.cj(api_key, tokens.clone());
                let request = CjOrderRequest {
                    order_number: number,
                    shipping_country_code: c.country_code.clone(),
                    shipping_country: c.country_code.clone(),
                    shipping_province: c.province.clone(),
                    shipping_city: c.city.clone(),
                    shipping_address: c.address1.clone(),
                    shipping_address2: c.address2.clone(),
                    shipping_zip: c.zip.clone(),
                    shipping_phone: c.phone.clone(),
                    shipping_customer_name: c.name.clone(),
                    email: c.email.clone(),
                    logistic_name: if logistic_name.is_empty() {
                        "CJPacket Ordinary".into()
                    } else {
                        logistic_name.to_owned()
                    },
                    from_country_code: "CN".into(),
                    pay_type: if pay_from_balance { 2 } else { 1 },
                    products: lines
                        .iter()
                        .map(|(vid, q, _, store_line)| CjOrderLine {
                            vid: vid.clone(),
                            quantity: *q,
                            store_line_item_id: store_line.clone(),
                        })
                        .collect(),
                };
                let created = client.create_order(&request).await.map_err(cj_error)?;
                Ok((created.order_id, created.pay_url, Vec::new()))
            }
            Credentials::Aliexpress { app_key, app_secret, session } => {
                let client = self.aliexpress(app_key, app_secret);
                let address = AeAddress {
                    address: c.address1.clone(),
                    address2: c.address2.clone(),
                    city: c.city.clone(),
                    contact_person: c.name.clone(),
                    country: c.country_code.clone(),
                    full_name: c.name.clone(),
                    mobile_no: c.phone.clone(),
                    phone_country: String::new(),
                    province: c.province.clone(),
                    zip: c.zip.clone(),
                };
                let items: Vec<AeOrderItem> = lines
                    .iter()
                    .map(|(product, q, options, _)| AeOrderItem {
                        product_id: product.clone(),
                        sku_attr: options.get("sku_attr").cloned().unwrap_or_default(),
                        product_count: *q,
                        logistics_service_name: if logistic_name.is_empty() {
                            "CAINIAO_STANDARD".into()
                        } else {
                            logistic_name.to_owned()
                        },
                        order_memo: String::new(),
                    })
                    .collect();
                let ids =
                    client.create_order(&session.access_token, &number, &address, &items).await.map_err(ae_error)?;
                Ok((ids.join(","), None, Vec::new()))
            }
            Credentials::Shopify { .. } => Err(Error::invalid("commerce.connection_not_supplier")),
        }
    }

    /// The tracking number of a supplier order, once it shipped.
    pub async fn supplier_tracking(
        &self,
        creds: &Credentials,
        supplier_order_id: &str,
    ) -> Result<Option<String>, Error> {
        match creds {
            Credentials::Cj { api_key, tokens } => {
                let detail = self.cj(api_key, tokens.clone()).order(supplier_order_id).await.map_err(cj_error)?;
                Ok(detail.track_number)
            }
            _ => Ok(None),
        }
    }
}

fn supplier_garbled(field: &str) -> Error {
    Error::unavailable("commerce.supplier_unavailable").with_source(format!("supplier sent an unreadable {field}"))
}

/// A supplier's answer as our error: outages are unavailable (try later), refused credentials
/// are the connection's problem, anything else the supplier refused about the request.
pub fn cj_error(e: CjError) -> Error {
    match &e {
        CjError::Auth { .. } => Error::new(ErrorKind::FailedPrecondition, "commerce.credentials_refused")
            .with_param("provider", "cj")
            .with_source(e),
        CjError::Api { message, .. } => Error::new(ErrorKind::Unprocessable, "commerce.supplier_refused")
            .with_param("provider", "cj")
            .with_param("detail", message.clone())
            .with_source(e),
        _ => Error::unavailable("commerce.supplier_unavailable").with_param("provider", "cj").with_source(e),
    }
}

pub fn ae_error(e: AliExpressError) -> Error {
    match &e {
        AliExpressError::Auth { .. } => Error::new(ErrorKind::FailedPrecondition, "commerce.credentials_refused")
            .with_param("provider", "aliexpress")
            .with_source(e),
        AliExpressError::Api { message, .. } => Error::new(ErrorKind::Unprocessable, "commerce.supplier_refused")
            .with_param("provider", "aliexpress")
            .with_param("detail", message.clone())
            .with_source(e),
        _ => Error::unavailable("commerce.supplier_unavailable").with_param("provider", "aliexpress").with_source(e),
    }
}

pub fn shopify_error(e: ShopifyError) -> Error {
    match &e {
        ShopifyError::Auth | ShopifyError::Shop { .. } => {
            Error::new(ErrorKind::FailedPrecondition, "commerce.credentials_refused")
                .with_param("provider", "shopify")
                .with_source(e)
        }
        ShopifyError::UserErrors(m) | ShopifyError::GraphQl(m) => {
            Error::new(ErrorKind::Unprocessable, "commerce.store_refused")
                .with_param("detail", m.clone())
                .with_source(e)
        }
        _ => Error::unavailable("commerce.store_unavailable").with_source(e),
    }
}

/// The provider a connection's credentials are for.
pub fn provider_of(c: &Credentials) -> Provider {
    match c {
        Credentials::Cj { .. } => Provider::Cj,
        Credentials::Aliexpress { .. } => Provider::AliExpress,
        Credentials::Shopify { .. } => Provider::Shopify,
        Credentials::Local => Provider::Local,
    }
}
