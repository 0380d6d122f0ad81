//! `nexus-video`: AI avatar videos. A script is spoken (ElevenLabs, or local speech) and rendered
//! as a talking head (D-ID, or locally) by a durable job kept in Postgres; the finished file is
//! copied into our storage. Credits and the plan's monthly count are held before any provider
//! call and settled through the outbox when the job ends.

pub mod app;
pub mod config;
pub mod domain;
pub mod events;
pub mod grpc;
pub mod repo;

use std::sync::Arc;

use nexus_platform::{Infra, Listeners, ServiceDef};
use nexus_proto::nexus::video::v1::video_server::VideoServer;
use nexus_proto::nexus::webhooks::v1::webhook_receiver_server::WebhookReceiverServer;
use sqlx::migrate::Migrator;
use tokio_util::sync::CancellationToken;

pub use crate::config::{Config, DEFAULTS};

pub static MIGRATIONS: Migrator = sqlx::migrate!("./migrations");

pub const DEF: ServiceDef = ServiceDef {
    name: "video",
    migrations: Some(&MIGRATIONS),
    grpc_services: &["nexus.video.v1.Video", "nexus.webhooks.v1.WebhookReceiver"],
    sealed: &[],
};

/// Serves the video service on `listeners` until `shutdown` (tests serve [`service`] instead).
pub async fn run(config: Config, listeners: Listeners, shutdown: CancellationToken) -> anyhow::Result<()> {
    let common = config.common.clone();
    let build = service(config)?;
    nexus_platform::app::serve_with_keys(DEF, common, listeners, shutdown, None, build).await
}

/// Checks `config` and returns what builds the service from the platform's infrastructure: the
/// gRPC routes, with the job workers on the platform's task tracker.
pub fn service(
    config: Config,
) -> anyhow::Result<impl FnOnce(&Infra) -> anyhow::Result<tonic::service::Routes> + Send + 'static> {
    config.voice_provider()?;
    config.render_provider()?;
    crate::domain::links::LinkKeys::parse(config.downloads.signing_keys.expose())
        .map_err(|e| anyhow::anyhow!("downloads.signing_keys: {e}"))?;
    anyhow::ensure!(config.pipeline.workers > 0, "pipeline.workers: at least 1");
    anyhow::ensure!(config.pipeline.max_attempts > 0, "pipeline.max_attempts: at least 1");
    Ok(move |infra: &Infra| build(config, infra))
}

fn build(config: Config, infra: &Infra) -> anyhow::Result<tonic::service::Routes> {
    nexus_platform::install_crypto_provider();
    let credits = Arc::new(app::GrpcCredits::new(&config.services.subscriptions, config.services.timeout)?);
    let providers = app::providers::Providers::from_config(&config)?;
    tracing::info!(voice = providers.speech.name(), render = providers.talks.name(), "video providers");
    let storage = app::storage::Storage::new(&config.storage)?;
    let (cfg_content_url, cfg_timeout) = (config.services.content.clone(), config.services.content_timeout);
    let workers = config.pipeline.workers;
    let links = domain::links::LinkKeys::parse(config.downloads.signing_keys.expose())
        .map_err(|e| anyhow::anyhow!("downloads.signing_keys: {e}"))?;
    let app = Arc::new(app::App {
        pool: infra.db.clone(),
        cfg: Arc::new(config),
        credits,
        speech: providers.speech,
        talks: providers.talks,
        storage,
        // Finished files are at URLs the provider chose: the safe client.
        outbound: infra.outbound.clone(),
        voices: Default::default(),
        links,
        scripts: app::scripts::ScriptWriter::new(infra.service_tokens.clone(), &cfg_content_url, cfg_timeout)?,
    });
    for n in 0..workers {
        infra.spawn(app::pipeline::worker(app.clone(), n, infra.work.clone()));
    }
    Ok(tonic::service::Routes::new(nexus_platform::sized!(VideoServer::new(grpc::VideoService { app: app.clone() })))
        .add_service(nexus_platform::sized!(WebhookReceiverServer::new(grpc::Webhooks { app }))))
}
