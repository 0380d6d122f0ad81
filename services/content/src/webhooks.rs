//! `nexus.webhooks.v1.WebhookReceiver` for the content service's image providers. The gateway
//! passes `/webhooks/replicate` and `/webhooks/runware` deliveries here untouched; they are
//! authenticated before anything is read: Replicate's Standard Webhooks signature with the
//! account's `whsec_` secret (at most 5 minutes old), Runware's secret token in the URL query.

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
        let provider = match &self.app.images {
            Some(p) if p.name() == req.provider => p,
            _ => return Err(Error::not_found("request.not_found").into()),
        };
        if req.method != "POST" {
            return Ok(rejected("webhooks.invalid_request"));
        }
        let name = provider.name();
        let jobs = match provider.verify(&req.headers, &req.query, &req.body, now()) {
            Ok(jobs) => jobs,
            Err(why) => {
                tracing::warn!(provider = name, error = %why, "webhook rejected");
                metrics::counter!("nexus_webhooks_rejected_total", "provider" => name).increment(1);
                return Ok(rejected("webhooks.invalid_signature"));
            }
        };
        let mut known = 0;
        for (job, outcome) in jobs {
            // Errors here are ours (database): a 5xx makes the provider deliver again.
            known += usize::from(self.app.finish_image(name, &job, outcome).await.map_err(|e| {
                tracing::warn!(provider = name, error = ?e, %job, "webhook not applied; it will be retried");
                Status::from(e)
            })?);
        }
        metrics::counter!("nexus_webhooks_applied_total", "provider" => name).increment(1);
        Ok(answer(200, json!({"received": true, "known": known})))
    }
}
