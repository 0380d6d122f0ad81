//! `nexus.webhooks.v1.WebhookReceiver` for the content service's providers. The gateway passes
//! `/webhooks/replicate` deliveries here untouched; they are authenticated (Standard Webhooks
//! signature with the account's `whsec_` secret, at most 5 minutes old) before anything is read.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use nexus_kernel::Error;
use nexus_proto::nexus::webhooks::v1::webhook_receiver_server::WebhookReceiver;
use nexus_proto::nexus::webhooks::v1::{DeliverWebhookRequest, DeliverWebhookResponse};
use serde_json::json;
use tonic::{Request, Response, Status};

use crate::app::App;

pub struct Webhooks {
    pub app: Arc<App>,
}

fn answer(status: u32, body: serde_json::Value) -> Response<DeliverWebhookResponse> {
    Response::new(DeliverWebhookResponse {
        status,
        content_type: "application/json".into(),
        body: serde_json::to_vec(&body).unwrap_or_default(),
    })
}

fn rejected(code: &str) -> Response<DeliverWebhookResponse> {
    let message = nexus_i18n::error_message(nexus_kernel::Locale::default(), code, &[], 400);
    answer(400, json!({"error": {"code": code, "message": message}}))
}

fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| i64::try_from(d.as_secs()).unwrap_or(0)).unwrap_or(0)
}

#[tonic::async_trait]
impl WebhookReceiver for Webhooks {
    async fn deliver(&self, req: Request<DeliverWebhookRequest>) -> Result<Response<DeliverWebhookResponse>, Status> {
        let req = req.into_inner();
        let replicate = match (req.provider.as_str(), &self.app.replicate) {
            ("replicate", Some(r)) => r,
            _ => return Err(Error::not_found("request.not_found").into()),
        };
        if req.method != "POST" {
            return Ok(rejected("webhooks.invalid_request"));
        }
        let prediction = match replicate.verify(&req.headers, &req.body, now()) {
            Ok(p) => p,
            Err(why) => {
                tracing::warn!(error = %why, "replicate webhook rejected");
                metrics::counter!("nexus_webhooks_rejected_total", "provider" => "replicate").increment(1);
                return Ok(rejected("webhooks.invalid_signature"));
            }
        };
        // Errors here are ours (database, download): a 5xx makes Replicate deliver again.
        let known = self.app.finish_prediction(&prediction).await.map_err(|e| {
            tracing::warn!(error = ?e, prediction = %prediction.id, "replicate webhook not applied; it will be retried");
            Status::from(e)
        })?;
        metrics::counter!("nexus_webhooks_applied_total", "provider" => "replicate").increment(1);
        Ok(answer(200, json!({"received": true, "known": known})))
    }
}
