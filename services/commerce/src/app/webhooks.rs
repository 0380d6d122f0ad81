//! Store webhooks. The gateway passes `/webhooks/shopify` deliveries through
//! `nexus.webhooks.v1.WebhookReceiver` untouched. A delivery is verified before anything is
//! read (`X-Shopify-Hmac-Sha256` over the raw body, with the current or previous app secret),
//! routed by its shop to the workspace that connected it, deduplicated by
//! `X-Shopify-Webhook-Id` in the transaction that applies it, and applied as a version of the
//! order (older versions change nothing).

use std::collections::HashMap;

use nexus_kernel::{Error, Locale, TenantId};
use nexus_platform::db;
use serde_json::{Value, json};

use super::App;
use crate::domain::orders::parse_shopify_order;
use crate::repo;

/// What the provider is answered: an HTTP status and a JSON body.
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookAnswer {
    pub status: u32,
    pub body: Value,
}

/// The order topics applied; others are acknowledged and ignored.
const ORDER_TOPICS: &[&str] =
    &["orders/create", "orders/updated", "orders/paid", "orders/cancelled", "orders/fulfilled"];

fn answer(status: u32, code: &str) -> WebhookAnswer {
    let message = nexus_i18n::error_message(Locale::default(), code, &[], 400);
    WebhookAnswer { status, body: json!({"error": {"code": code, "message": message}}) }
}

fn ok(body: Value) -> WebhookAnswer {
    WebhookAnswer { status: 200, body }
}

impl App {
    /// Handles one delivery. A forged or unsigned one is refused (401) before anything is read.
    #[tracing::instrument(skip_all, fields(provider))]
    pub async fn deliver_webhook(
        &self,
        provider: &str,
        method: &str,
        headers: &HashMap<String, String>,
        body: &[u8],
    ) -> Result<WebhookAnswer, Error> {
        if provider != "shopify" {
            return Err(Error::not_found("request.not_found"));
        }
        if method != "POST" {
            return Ok(answer(405, "webhooks.invalid_request"));
        }
        let header = |name: &str| headers.get(name).map(String::as_str).unwrap_or_default();
        if !nexus_providers::shopify::verify_webhook(self.cfg.shopify.secrets(), body, header("x-shopify-hmac-sha256"))
        {
            tracing::warn!("shopify webhook with a bad signature refused");
            return Ok(answer(401, "webhooks.invalid_signature"));
        }
        let topic = header("x-shopify-topic").to_owned();
        let webhook_id = header("x-shopify-webhook-id").to_owned();
        let shop = header("x-shopify-shop-domain").to_ascii_lowercase();
        if webhook_id.is_empty() || webhook_id.len() > 200 || shop.is_empty() {
            return Ok(answer(400, "webhooks.invalid_request"));
        }
        let mut tx = db::system(&self.pool).await?;
        let owner = repo::connections::tenant_of_shop(&mut tx, &shop).await?;
        db::commit(tx).await?;
        // A shop nobody connected (any more): acknowledged, so the store stops retrying.
        let Some((tenant, connection)) = owner else {
            return Ok(ok(json!({"received": true, "applied": false})));
        };
        let tenant = TenantId::from_uuid(tenant);
        let payload: Value = match serde_json::from_slice(body) {
            Ok(v) => v,
            Err(_) => return Ok(answer(400, "webhooks.invalid_request")),
        };
        let mut tx = db::tenant(&self.pool, tenant).await?;
        if !repo::orders::claim_webhook(&mut tx, tenant, &webhook_id, &topic).await? {
            return Ok(ok(json!({"received": true, "duplicate": true})));
        }
        let applied = if ORDER_TOPICS.contains(&topic.as_str()) {
            let snapshot = match parse_shopify_order(&payload) {
                Ok(s) => s,
                Err(e) => {
                    // Rolled back: the delivery id is not spent on a payload we could not read.
                    tracing::warn!(error = ?e, topic, "shopify order payload refused");
                    return Ok(answer(422, e.code()));
                }
            };
            let order = self.apply_snapshot(&mut tx, tenant, connection, snapshot).await?;
            Some(order.status.as_str())
        } else {
            None
        };
        db::commit(tx).await?;
        Ok(ok(json!({"received": true, "applied": applied.is_some(), "status": applied})))
    }
}
