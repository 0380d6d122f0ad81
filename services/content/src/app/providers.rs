//! Images made by a provider (Replicate or Runware). The job is started with a webhook when a
//! public webhook address is configured; the authenticated webhook, or the polling sweeper for
//! jobs that never report, brings the result, and the output is copied into our storage with a
//! size cap and a timeout (provider outputs are deleted after a while). Finishing is idempotent:
//! a redelivered webhook, or a poll racing a webhook, changes nothing twice.

use std::time::Duration;

use base64::Engine as _;
use nexus_kernel::Error;
use nexus_platform::db;
use nexus_platform::outbound::{Limits, OutboundClient, OutboundError};
use nexus_providers::replicate::{
    CreatePrediction, Prediction, PredictionStatus, PredictionTarget, ReplicateClient, ReplicateConfig,
    WEBHOOK_TOLERANCE, WebhookHeaders,
};
use nexus_providers::runware::{
    ImageInference, ImageResult, OutputFormat, OutputType, RunwareClient, RunwareConfig, RunwareError, TaskResponse,
};
use serde_json::json;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::App;
use crate::config::Config;
use crate::repo::images as repo;

/// Where a finished image's bytes are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Url(String),
    Bytes { content_type: String, data: Vec<u8> },
}

/// A finished job: the image, or why there is none.
pub type Outcome = Result<Source, String>;

/// What starting a job gave.
pub enum Started {
    /// Running at the provider under this id.
    Pending(String),
    /// Already finished (Runware's synchronous delivery).
    Done(String, Source),
}

pub struct ReplicateImages {
    pub client: ReplicateClient,
    pub target: PredictionTarget,
    pub webhook_secret: String,
    /// `<webhook_base>/replicate`, when webhooks can reach us.
    pub webhook_url: Option<String>,
}

pub struct RunwareImages {
    pub client: RunwareClient,
    pub model: String,
    /// The secret carried in the webhook URL's query.
    pub webhook_token: String,
    /// `<webhook_base>/runware?token=…`, when webhooks can reach us.
    pub webhook_url: Option<String>,
}

/// The file type a provider is asked for: ads are posted to platforms that take JPEG only
/// (Instagram); heroes stay PNG.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageFormat {
    Png,
    Jpeg,
}

impl ImageFormat {
    pub fn of_purpose(purpose: &str) -> Self {
        if purpose == "ad" { Self::Jpeg } else { Self::Png }
    }
}

pub enum ImageProvider {
    Replicate(ReplicateImages),
    Runware(RunwareImages),
}

fn prediction_outcome(p: &Prediction) -> Option<Outcome> {
    match &p.status {
        PredictionStatus::Succeeded => {
            Some(p.output_urls().into_iter().next().map(Source::Url).ok_or_else(|| "no output".to_owned()))
        }
        PredictionStatus::Failed | PredictionStatus::Canceled => {
            Some(Err(p.error.clone().unwrap_or_else(|| p.status.as_str().to_owned())))
        }
        _ => None,
    }
}

fn result_source(r: &ImageResult) -> Outcome {
    if let Some(b64) = &r.image_base64_data {
        let data = base64::engine::general_purpose::STANDARD
            .decode(b64.trim())
            .map_err(|_| "malformed image data".to_owned())?;
        // Inline data carries no type: its first bytes tell it (the format the task asked for).
        let content_type = if data.starts_with(&[0xFF, 0xD8, 0xFF]) { "image/jpeg" } else { "image/png" };
        return Ok(Source::Bytes { content_type: content_type.into(), data });
    }
    r.image_url.clone().map(Source::Url).ok_or_else(|| "no image in the result".to_owned())
}

impl ImageProvider {
    pub fn from_config(cfg: &Config, http: reqwest::Client) -> anyhow::Result<Option<Self>> {
        let base = cfg.images.webhook_base.trim_end_matches('/');
        match cfg.images.resolved_provider(&cfg.replicate, &cfg.runware) {
            "local" => Ok(None),
            "replicate" => {
                let r = &cfg.replicate;
                anyhow::ensure!(
                    !r.api_token.is_empty(),
                    "replicate.api_token: required when images.provider = replicate"
                );
                let target = PredictionTarget::parse(&r.model).map_err(|e| anyhow::anyhow!("replicate.model: {e}"))?;
                let mut rc = ReplicateConfig::new(r.api_token.expose());
                rc.base_url = r.base_url.clone();
                let webhook_url = (!base.is_empty()).then(|| format!("{base}/replicate"));
                anyhow::ensure!(
                    webhook_url.is_none() || !r.webhook_secret.is_empty(),
                    "replicate.webhook_secret: required when images.webhook_base is set"
                );
                Ok(Some(Self::Replicate(ReplicateImages {
                    client: ReplicateClient::new(rc, http),
                    target,
                    webhook_secret: r.webhook_secret.expose().to_owned(),
                    webhook_url,
                })))
            }
            "runware" => {
                let r = &cfg.runware;
                anyhow::ensure!(!r.api_key.is_empty(), "runware.api_key: required when images.provider = runware");
                let mut rc = RunwareConfig::new(r.api_key.expose());
                rc.base_url = r.base_url.clone();
                let webhook_url = if base.is_empty() {
                    None
                } else {
                    anyhow::ensure!(
                        r.webhook_token.expose().len() >= 32,
                        "runware.webhook_token: at least 32 characters when images.webhook_base is set"
                    );
                    Some(
                        nexus_providers::runware::webhook_url(&format!("{base}/runware"), r.webhook_token.expose())
                            .map_err(|e| anyhow::anyhow!("images.webhook_base: {e}"))?,
                    )
                };
                Ok(Some(Self::Runware(RunwareImages {
                    client: RunwareClient::new(rc, http),
                    model: r.model.clone(),
                    webhook_token: r.webhook_token.expose().to_owned(),
                    webhook_url,
                })))
            }
            other => anyhow::bail!("images.provider: {other:?} is not one of auto, local, replicate, runware"),
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Self::Replicate(_) => "replicate",
            Self::Runware(_) => "runware",
        }
    }

    /// Starts a job for an image.
    pub async fn start(&self, prompt: &str, width: u32, height: u32, format: ImageFormat) -> Result<Started, Error> {
        match self {
            Self::Replicate(r) => {
                let output_format = match format {
                    ImageFormat::Png => "png",
                    ImageFormat::Jpeg => "jpg",
                };
                let mut req = CreatePrediction::new(
                    r.target.clone(),
                    json!({"prompt": prompt, "width": width, "height": height, "num_outputs": 1,
                        "output_format": output_format}),
                );
                if let Some(url) = &r.webhook_url {
                    req = req.with_completion_webhook(url);
                }
                Ok(Started::Pending(r.client.create_prediction(&req).await?.id))
            }
            Self::Runware(r) => {
                let mut task = ImageInference::new(prompt, &r.model, width, height);
                task.output_format = match format {
                    ImageFormat::Png => OutputFormat::Png,
                    ImageFormat::Jpeg => OutputFormat::Jpg,
                };
                let id = task.task_uuid.to_string();
                match &r.webhook_url {
                    Some(url) => {
                        task.webhook_url = Some(url.clone());
                        r.client.submit_image_inference(&task).await.map_err(Error::from)?;
                        Ok(Started::Pending(id))
                    }
                    None => {
                        // No way back to us: wait for the image, delivered inline.
                        task.output_type = OutputType::Base64Data;
                        let results = r.client.image_inference(&task).await.map_err(Error::from)?;
                        let first = results.first().ok_or_else(|| Error::unavailable("provider.generation_failed"))?;
                        let source =
                            result_source(first).map_err(|_| Error::unavailable("provider.generation_failed"))?;
                        Ok(Started::Done(id, source))
                    }
                }
            }
        }
    }

    /// Asks the provider how a job went; `None` while it runs.
    pub async fn poll(&self, external_id: &str) -> Result<Option<Outcome>, Error> {
        match self {
            Self::Replicate(r) => Ok(prediction_outcome(&r.client.get_prediction(external_id).await?)),
            Self::Runware(r) => {
                let uuid = Uuid::parse_str(external_id).map_err(Error::internal)?;
                match r.client.get_response(&uuid).await {
                    Ok(results) if results.iter().any(ImageResult::is_processing) || results.is_empty() => Ok(None),
                    Ok(results) => Ok(Some(result_source(&results[0]))),
                    Err(RunwareError::Task { errors, .. }) => {
                        Ok(Some(Err(errors.first().map(|e| e.message.clone()).unwrap_or_else(|| "failed".into()))))
                    }
                    Err(e) => Err(e.into()),
                }
            }
        }
    }

    /// Authenticates a webhook delivery and reads the finished jobs in it: (job id, outcome).
    pub fn verify<H: WebhookHeaders + ?Sized>(
        &self,
        headers: &H,
        query: &str,
        body: &[u8],
        now: i64,
    ) -> Result<Vec<(String, Outcome)>, String> {
        match self {
            Self::Replicate(r) => {
                nexus_providers::replicate::verify_webhook(&r.webhook_secret, headers, body, now, WEBHOOK_TOLERANCE)
                    .map_err(|e| e.to_string())?;
                let p = nexus_providers::replicate::parse_webhook(headers, body).map_err(|e| e.to_string())?.prediction;
                Ok(prediction_outcome(&p).map(|o| (p.id.clone(), o)).into_iter().collect())
            }
            Self::Runware(r) => {
                nexus_providers::runware::verify_webhook_token(&r.webhook_token, query).map_err(|e| e.to_string())?;
                let resp = TaskResponse::parse(body).map_err(|e| e.to_string())?;
                let mut out = Vec::new();
                for item in &resp.data {
                    if let Ok(result) = serde_json::from_value::<ImageResult>(item.clone())
                        && !result.is_processing()
                    {
                        out.push((result.task_uuid.clone(), result_source(&result)));
                    }
                }
                for e in &resp.errors {
                    if let Some(task) = &e.task_uuid {
                        out.push((task.clone(), Err(e.message.clone())));
                    }
                }
                Ok(out)
            }
        }
    }
}

/// Reads an image from a provider's output URL through the safe outbound client (no internal
/// destinations, on any redirect either): 2xx, an image content type, at most `max` bytes,
/// within `timeout`.
async fn download(
    http: &OutboundClient,
    url: &str,
    max: usize,
    timeout: Duration,
) -> Result<(String, Vec<u8>), String> {
    let limits = Limits { max_bytes: max as u64, timeout };
    let resp = http.get_with(url, limits).await.map_err(|e| match e {
        OutboundError::TooLarge { .. } => "image larger than the limit".to_owned(),
        other => format!("download failed: {other}"),
    })?;
    if !resp.status.is_success() {
        return Err(format!("download answered {}", resp.status));
    }
    let content_type = resp.content_type();
    check_type(&content_type)?;
    Ok((content_type, resp.body.to_vec()))
}

fn check_type(content_type: &str) -> Result<(), String> {
    if matches!(content_type, "image/png" | "image/jpeg" | "image/webp" | "image/gif") {
        Ok(())
    } else {
        Err(format!("not an image: {content_type:?}"))
    }
}

impl App {
    /// The bytes of a finished job's image, checked (type, size).
    pub(crate) async fn fetch(&self, source: Source) -> Result<(String, Vec<u8>), String> {
        let max = self.cfg.images.max_bytes;
        match source {
            Source::Url(url) => download(&self.http, &url, max, self.cfg.images.download_timeout).await,
            Source::Bytes { content_type, data } => {
                check_type(&content_type)?;
                if data.len() > max {
                    return Err("image larger than the limit".into());
                }
                Ok((content_type, data))
            }
        }
    }

    /// Applies a finished job to its image. `Ok(false)` when the job is not one of ours.
    #[tracing::instrument(skip_all, fields(provider, job = external_id))]
    pub async fn finish_image(&self, provider: &str, external_id: &str, outcome: Outcome) -> Result<bool, Error> {
        let mut tx = db::system(&self.pool).await?;
        let found = repo::by_job(&mut tx, provider, external_id).await?;
        db::commit(tx).await?;
        let Some(image) = found else { return Ok(false) };
        if image.status != "pending" {
            // A redelivery, or a poll that lost the race to the webhook.
            return Ok(true);
        }
        let fetched = match outcome {
            Ok(source) => self.fetch(source).await,
            Err(why) => Err(why),
        };
        let mut tx = db::system(&self.pool).await?;
        let succeeded = fetched.is_ok();
        let changed = match fetched {
            Ok((content_type, data)) => repo::succeed(&mut tx, image.id, &content_type, &data).await?,
            Err(why) => {
                tracing::warn!(provider, job = %external_id, error = %why, "image job did not give an image");
                repo::fail(&mut tx, image.id, &why.chars().take(500).collect::<String>()).await?
            }
        };
        if changed {
            job_finished(&mut tx, &image, succeeded).await?;
        }
        db::commit(tx).await?;
        Ok(true)
    }

    /// Polls jobs that have not reported back in time; gives up on very old ones.
    #[tracing::instrument(skip_all)]
    pub async fn sweep_images(&self) -> Result<usize, Error> {
        let Some(provider) = &self.images else { return Ok(0) };
        let name = provider.name();
        let mut tx = db::system(&self.pool).await?;
        let given_up = repo::give_up(&mut tx, name, self.cfg.images.give_up_after.as_secs_f64()).await?;
        for image in &given_up {
            job_finished(&mut tx, image, false).await?;
        }
        let due = repo::due(&mut tx, name, self.cfg.images.poll_after.as_secs_f64()).await?;
        db::commit(tx).await?;
        let mut finished = 0;
        for id in due {
            match provider.poll(&id).await {
                Ok(Some(outcome)) => finished += usize::from(self.finish_image(name, &id, outcome).await?),
                Ok(None) => {}
                Err(e) => tracing::warn!(provider = name, job = %id, error = ?e, "polling an image job failed"),
            }
        }
        Ok(finished)
    }
}

/// Runs [`App::sweep_images`] until `stop`.
pub async fn sweeper(app: std::sync::Arc<App>, stop: CancellationToken) {
    let every = app.cfg.images.sweep_interval;
    loop {
        if let Err(e) = app.sweep_images().await {
            tracing::warn!(error = ?e, "image job sweep failed");
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
    }
}

/// Announces how a provider image job ended, in the transaction that records it: subscriptions
/// then charges the job's reservation or gives it back (no user token is around by now).
async fn job_finished(conn: &mut sqlx::PgConnection, image: &repo::JobImage, succeeded: bool) -> Result<(), Error> {
    let Some(reservation) = &image.reservation else { return Ok(()) };
    crate::events::image_job_finished(conn, image.tenant, image.id, reservation, succeeded).await
}
