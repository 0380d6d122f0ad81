//! D-ID webhooks (`/webhooks/d-id`, passed through untouched by the gateway). D-ID signs
//! nothing, so a delivery is believed only as a hint: its URL must carry the job's own secret
//! token (constant-time compared), and even then the body is not read — the talk is fetched
//! from D-ID again, and only a talk that D-ID itself says is finished makes the job due now
//! (the worker then finishes it from its own read). A forged delivery (wrong token) is refused
//! and changes nothing; a replayed one finds the job past rendering and changes nothing.

use nexus_kernel::Error;
use serde_json::json;
use subtle::ConstantTimeEq as _;

use super::App;
use crate::domain::VideoId;
use crate::repo::videos as repo;

/// What the provider is answered: an HTTP status and a JSON body.
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookAnswer {
    pub status: u32,
    pub body: serde_json::Value,
}

fn rejected(code: &str) -> WebhookAnswer {
    let message = nexus_i18n::error_message(nexus_kernel::Locale::default(), code, &[], 400);
    WebhookAnswer { status: 400, body: json!({"error": {"code": code, "message": message}}) }
}

impl App {
    /// Applies a delivery to `/webhooks/{provider}`. Providers other than D-ID are not ours.
    #[tracing::instrument(skip_all, fields(provider))]
    pub async fn deliver_webhook(&self, provider: &str, method: &str, query: &str) -> Result<WebhookAnswer, Error> {
        if provider != "d-id" || self.talks.name() != "d-id" {
            return Err(Error::not_found("request.not_found"));
        }
        if method != "POST" {
            return Ok(rejected("webhooks.invalid_request"));
        }
        let params: std::collections::HashMap<String, String> =
            url::form_urlencoded::parse(query.as_bytes()).into_owned().collect();
        let (Some(video), Some(token)) = (params.get("video"), params.get("token")) else {
            return Ok(rejected("webhooks.invalid_signature"));
        };
        let Ok(video) = VideoId::parse(video) else { return Ok(rejected("webhooks.invalid_signature")) };
        let mut tx = nexus_platform::db::system(&self.pool).await?;
        let found = repo::for_webhook(&mut tx, video.as_uuid()).await?;
        nexus_platform::db::commit(tx).await?;
        let Some((_, status, talk_id, secret)) = found else {
            return Ok(rejected("webhooks.invalid_signature"));
        };
        if !bool::from(secret.as_bytes().ct_eq(token.as_bytes())) {
            tracing::warn!(%video, "d-id webhook with a wrong token");
            metrics::counter!("nexus_webhooks_rejected_total", "provider" => "d-id").increment(1);
            return Ok(rejected("webhooks.invalid_signature"));
        }
        let Some(talk_id) = talk_id.filter(|_| status == "rendering") else {
            // Finished already (a redelivery), or not at the talk yet: nothing to do.
            return Ok(WebhookAnswer { status: 200, body: json!({"received": true, "applied": false}) });
        };
        // A D-ID error here is answered with a 5xx so D-ID delivers again; polling covers it too.
        let talk = self.talks.get_talk(&talk_id).await.map_err(Error::from)?;
        let mut applied = false;
        if talk.status.is_terminal() {
            let mut tx = nexus_platform::db::system(&self.pool).await?;
            applied = repo::wake(&mut tx, video.as_uuid()).await?;
            nexus_platform::db::commit(tx).await?;
        }
        metrics::counter!("nexus_webhooks_applied_total", "provider" => "d-id").increment(1);
        Ok(WebhookAnswer { status: 200, body: json!({"received": true, "applied": applied}) })
    }
}
