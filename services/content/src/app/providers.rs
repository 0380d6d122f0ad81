//! Images made by a provider (Replicate): the prediction is created with a completion webhook
//! (when a public webhook address is configured), the signed webhook or the polling sweeper
//! brings the result, and the output is copied into our storage with a size cap and a timeout
//! (Replicate deletes outputs after about an hour). Finishing is idempotent: a duplicate webhook
//! or a poll racing a webhook changes nothing twice.

use std::time::Duration;

use futures::StreamExt;
use nexus_kernel::Error;
use nexus_platform::db::begin_system;
use nexus_providers::replicate::{
    CreatePrediction, Prediction, PredictionStatus, PredictionTarget, ReplicateClient, ReplicateConfig,
    WEBHOOK_TOLERANCE, WebhookHeaders, parse_webhook, verify_webhook,
};
use serde_json::json;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::{App, db};
use crate::config::Config;

pub struct ReplicateImages {
    pub client: ReplicateClient,
    pub target: PredictionTarget,
    pub webhook_secret: String,
    /// `<webhook_base>/replicate`, when webhooks can reach us.
    pub webhook_url: Option<String>,
}

impl ReplicateImages {
    pub fn from_config(cfg: &Config, http: reqwest::Client) -> anyhow::Result<Option<Self>> {
        match cfg.images.provider.as_str() {
            "local" => return Ok(None),
            "replicate" => {}
            other => anyhow::bail!("images.provider: {other:?} is not one of local, replicate"),
        }
        let r = &cfg.replicate;
        anyhow::ensure!(!r.api_token.is_empty(), "replicate.api_token: required when images.provider = replicate");
        let target = PredictionTarget::parse(&r.model).map_err(|e| anyhow::anyhow!("replicate.model: {e}"))?;
        let mut rc = ReplicateConfig::new(r.api_token.expose());
        rc.base_url = r.base_url.clone();
        let base = cfg.images.webhook_base.trim_end_matches('/');
        let webhook_url = (!base.is_empty()).then(|| format!("{base}/replicate"));
        anyhow::ensure!(
            webhook_url.is_none() || !r.webhook_secret.is_empty(),
            "replicate.webhook_secret: required when images.webhook_base is set"
        );
        Ok(Some(Self {
            client: ReplicateClient::new(rc, http),
            target,
            webhook_secret: r.webhook_secret.expose().to_owned(),
            webhook_url,
        }))
    }

    /// Starts a prediction for an image; returns its id.
    pub async fn start(&self, prompt: &str, width: u32, height: u32) -> Result<String, Error> {
        let mut req = CreatePrediction::new(
            self.target.clone(),
            json!({"prompt": prompt, "width": width, "height": height, "num_outputs": 1, "output_format": "png"}),
        );
        if let Some(url) = &self.webhook_url {
            req = req.with_completion_webhook(url);
        }
        Ok(self.client.create_prediction(&req).await?.id)
    }

    /// Authenticates a delivery (signature and age) and reads the prediction in it.
    pub fn verify<H: WebhookHeaders + ?Sized>(&self, headers: &H, body: &[u8], now: i64) -> Result<Prediction, String> {
        verify_webhook(&self.webhook_secret, headers, body, now, WEBHOOK_TOLERANCE).map_err(|e| e.to_string())?;
        parse_webhook(headers, body).map(|d| d.prediction).map_err(|e| e.to_string())
    }
}

/// Reads an image from a provider's output URL: 2xx, an image content type, at most `max`
/// bytes, within `timeout`.
async fn download(
    http: &reqwest::Client,
    url: &str,
    max: usize,
    timeout: Duration,
) -> Result<(String, Vec<u8>), String> {
    let resp = http.get(url).timeout(timeout).send().await.map_err(|e| format!("download failed: {e}"))?;
    if !resp.status().is_success() {
        return Err(format!("download answered {}", resp.status()));
    }
    let content_type = resp
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if !matches!(content_type.as_str(), "image/png" | "image/jpeg" | "image/webp" | "image/gif") {
        return Err(format!("not an image: {content_type:?}"));
    }
    if resp.content_length().is_some_and(|n| n > max as u64) {
        return Err("image larger than the limit".into());
    }
    let mut body = Vec::new();
    let mut stream = resp.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| format!("download failed: {e}"))?;
        if body.len() + chunk.len() > max {
            return Err("image larger than the limit".into());
        }
        body.extend_from_slice(&chunk);
    }
    Ok((content_type, body))
}

impl App {
    /// Applies a finished (or failed) prediction to its image. `Ok(false)` when the prediction
    /// is not one of ours or still running.
    pub async fn finish_prediction(&self, p: &Prediction) -> Result<bool, Error> {
        let mut tx = begin_system(&self.pool).await.map_err(db)?;
        let found: Option<(Uuid, String)> =
            sqlx::query_as("SELECT id, status FROM image_assets WHERE provider = 'replicate' AND external_id = $1")
                .bind(&p.id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(db)?;
        tx.commit().await.map_err(db)?;
        let Some((id, status)) = found else { return Ok(false) };
        if status != "pending" {
            // A redelivery, or a poll that lost the race to the webhook.
            return Ok(true);
        }
        let outcome = match &p.status {
            PredictionStatus::Succeeded => match p.output_urls().first() {
                Some(url) => {
                    download(&self.http, url, self.cfg.images.max_bytes, self.cfg.images.download_timeout).await
                }
                None => Err("no output".to_owned()),
            },
            PredictionStatus::Failed | PredictionStatus::Canceled => {
                Err(p.error.clone().unwrap_or_else(|| p.status.as_str().to_owned()))
            }
            _ => return Ok(false),
        };
        let mut tx = begin_system(&self.pool).await.map_err(db)?;
        match outcome {
            Ok((content_type, data)) => {
                sqlx::query(
                    "UPDATE image_assets SET status = 'succeeded', content_type = $2, data = $3, size_bytes = $4, updated_at = now() \
                     WHERE id = $1 AND status = 'pending'",
                )
                .bind(id)
                .bind(&content_type)
                .bind(&data)
                .bind(i64::try_from(data.len()).unwrap_or(i64::MAX))
                .execute(&mut *tx)
                .await
                .map_err(db)?;
            }
            Err(why) => {
                tracing::warn!(prediction = %p.id, error = %why, "image prediction did not give an image");
                sqlx::query("UPDATE image_assets SET status = 'failed', error = $2, updated_at = now() WHERE id = $1 AND status = 'pending'")
                    .bind(id)
                    .bind(why.chars().take(500).collect::<String>())
                    .execute(&mut *tx)
                    .await
                    .map_err(db)?;
            }
        }
        tx.commit().await.map_err(db)?;
        Ok(true)
    }

    /// Polls predictions that have not reported back in time; gives up on very old ones.
    pub async fn sweep_predictions(&self) -> Result<usize, Error> {
        let Some(replicate) = &self.replicate else { return Ok(0) };
        let poll_after = self.cfg.images.poll_after.as_secs_f64();
        let give_up = self.cfg.images.give_up_after.as_secs_f64();
        let mut tx = begin_system(&self.pool).await.map_err(db)?;
        sqlx::query(
            "UPDATE image_assets SET status = 'failed', error = 'the provider did not finish in time', updated_at = now() \
             WHERE provider = 'replicate' AND status = 'pending' AND created_at < now() - make_interval(secs => $1)",
        )
        .bind(give_up)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        let due: Vec<String> = sqlx::query_scalar(
            "SELECT external_id FROM image_assets WHERE provider = 'replicate' AND status = 'pending' AND external_id IS NOT NULL \
             AND updated_at < now() - make_interval(secs => $1) ORDER BY updated_at LIMIT 20",
        )
        .bind(poll_after)
        .fetch_all(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        let mut finished = 0;
        for id in due {
            match replicate.client.get_prediction(&id).await {
                Ok(p) if p.status.is_terminal() => finished += usize::from(self.finish_prediction(&p).await?),
                Ok(_) => {}
                Err(e) => tracing::warn!(prediction = %id, error = %e, "polling a prediction failed"),
            }
        }
        Ok(finished)
    }
}

/// Runs [`App::sweep_predictions`] until `stop`.
pub async fn sweeper(app: std::sync::Arc<App>, stop: CancellationToken) {
    let every = app.cfg.images.sweep_interval;
    loop {
        if let Err(e) = app.sweep_predictions().await {
            tracing::warn!(error = ?e, "prediction sweep failed");
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
    }
}
