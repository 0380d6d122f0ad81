//! Provider webhooks for images. The gateway passes `/webhooks/replicate` and `/webhooks/runware`
//! deliveries through `nexus.webhooks.v1.WebhookReceiver` untouched; they are authenticated
//! before anything is read: Replicate's Standard Webhooks signature with the account's `whsec_`
//! secret (at most 5 minutes old), Runware's secret token in the URL query.

use std::time::{SystemTime, UNIX_EPOCH};

use nexus_kernel::Error;
use nexus_providers::replicate::WebhookHeaders;
use serde_json::json;

use super::App;

/// What the provider is answered: an HTTP status and a JSON body.
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookAnswer {
    pub status: u32,
    pub body: serde_json::Value,
}

/// One delivery as the gateway received it.
pub struct Delivery<'a, H: ?Sized> {
    pub provider: &'a str,
    pub method: &'a str,
    pub headers: &'a H,
    pub query: &'a str,
    pub body: &'a [u8],
}

fn rejected(code: &str) -> WebhookAnswer {
    let message = nexus_i18n::error_message(nexus_kernel::Locale::default(), code, &[], 400);
    WebhookAnswer { status: 400, body: json!({"error": {"code": code, "message": message}}) }
}

fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| i64::try_from(d.as_secs()).unwrap_or(0)).unwrap_or(0)
}

impl App {
    /// Verifies a delivery and applies the finished jobs in it. A provider that is not ours is
    /// `request.not_found`; a bad signature a 400 answer; a database error an error (a 5xx makes
    /// the provider deliver again).
    #[tracing::instrument(skip_all, fields(provider = d.provider))]
    pub async fn deliver_webhook<H: WebhookHeaders + ?Sized>(
        &self,
        d: Delivery<'_, H>,
    ) -> Result<WebhookAnswer, Error> {
        let provider = match &self.images {
            Some(p) if p.name() == d.provider => p,
            _ => return Err(Error::not_found("request.not_found")),
        };
        if d.method != "POST" {
            return Ok(rejected("webhooks.invalid_request"));
        }
        let name = provider.name();
        let jobs = match provider.verify(d.headers, d.query, d.body, now()) {
            Ok(jobs) => jobs,
            Err(why) => {
                tracing::warn!(provider = name, error = %why, "webhook rejected");
                metrics::counter!("nexus_webhooks_rejected_total", "provider" => name).increment(1);
                return Ok(rejected("webhooks.invalid_signature"));
            }
        };
        let mut known = 0;
        for (job, outcome) in jobs {
            known += usize::from(self.finish_image(name, &job, outcome).await.inspect_err(|e| {
                tracing::warn!(provider = name, error = ?e, %job, "webhook not applied; it will be retried");
            })?);
        }
        metrics::counter!("nexus_webhooks_applied_total", "provider" => name).increment(1);
        Ok(WebhookAnswer { status: 200, body: json!({"received": true, "known": known}) })
    }
}
