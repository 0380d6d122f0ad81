//! `nexus-content`: AI copy in five languages (streamed or not), magic landing pages served to
//! the public web, images, and AI agents. Works offline with a deterministic local generator.

pub mod app;
pub mod config;
pub mod domain;
pub mod events;
pub mod grpc;
pub mod repo;

use std::sync::Arc;

use nexus_platform::{Infra, Listeners, ServiceDef};
use nexus_proto::nexus::content::v1::content_server::ContentServer;
use nexus_proto::nexus::webhooks::v1::webhook_receiver_server::WebhookReceiverServer;
use sqlx::migrate::Migrator;
use tokio_util::sync::CancellationToken;

pub use crate::config::{Config, DEFAULTS};

pub static MIGRATIONS: Migrator = sqlx::migrate!("./migrations");

pub const DEF: ServiceDef = ServiceDef {
    name: "content",
    migrations: Some(&MIGRATIONS),
    grpc_services: &["nexus.content.v1.Content", "nexus.webhooks.v1.WebhookReceiver"],
    sealed: &[],
};

/// Serves the content service on `listeners` until `shutdown` (tests serve [`service`] instead).
pub async fn run(config: Config, listeners: Listeners, shutdown: CancellationToken) -> anyhow::Result<()> {
    let common = config.common.clone();
    let build = service(config)?;
    nexus_platform::app::serve_with_keys(DEF, common, listeners, shutdown, None, build).await
}

/// Checks `config` and returns what builds the service from the platform's infrastructure (its
/// one pool, the outbound client; the image sweeper runs on the platform's task tracker): the
/// gRPC routes. Tests hand it to `nexus_testkit::RunningService`.
pub fn service(
    config: Config,
) -> anyhow::Result<impl FnOnce(&Infra) -> anyhow::Result<tonic::service::Routes> + Send + 'static> {
    // Stored images are served back over gRPC, whose messages are capped at one size fleet-wide.
    if config.images.max_bytes > nexus_platform::grpc::MAX_ASSET_BYTES {
        anyhow::bail!(
            "images.max_bytes: {} is above the largest asset gRPC carries ({} bytes)",
            config.images.max_bytes,
            nexus_platform::grpc::MAX_ASSET_BYTES
        );
    }
    Ok(move |infra: &Infra| build(config, infra))
}

fn build(config: Config, infra: &Infra) -> anyhow::Result<tonic::service::Routes> {
    let local = Arc::new(app::local::LocalGenerator::new()?);
    let credits = Arc::new(app::GrpcCredits::new(&config.services.subscriptions, config.services.timeout)?);
    nexus_platform::install_crypto_provider();
    let text: Arc<dyn app::generator::TextGenerator> = if config.llm.use_model()? {
        let l = &config.llm;
        let mut cfg = nexus_providers::llm::LlmConfig::new(&l.base_url, l.api_key.expose(), &l.model);
        cfg.timeout = l.timeout;
        cfg.max_retries = l.max_retries;
        let http = reqwest::Client::builder().connect_timeout(std::time::Duration::from_secs(5)).build()?;
        tracing::info!(base_url = %l.base_url, model = %l.model, "generating with an OpenAI-compatible model");
        Arc::new(app::llm::LlmGenerator {
            model: Arc::new(nexus_providers::llm::OpenAiClient::new(cfg, http)),
            default_max_tokens: config.generation.default_max_tokens,
        })
    } else {
        tracing::info!("no model configured: generating with the local template generator");
        local.clone()
    };
    let http = reqwest::Client::builder().connect_timeout(std::time::Duration::from_secs(5)).build()?;
    // The provider APIs are at base URLs we configure; their outputs are wherever they say.
    let images = app::providers::ImageProvider::from_config(&config, http)?.map(Arc::new);
    let app = Arc::new(app::App {
        pool: infra.db.clone(),
        cfg: Arc::new(config),
        credits,
        text,
        local,
        images,
        // Downloads of provider outputs go to URLs the provider chose: the safe client.
        http: infra.outbound.clone(),
    });
    if app.images.is_some() {
        infra.spawn(app::providers::sweeper(app.clone(), infra.work.clone()));
    }
    Ok(tonic::service::Routes::new(nexus_platform::sized!(ContentServer::new(grpc::ContentService {
        app: app.clone()
    })))
    .add_service(nexus_platform::sized!(WebhookReceiverServer::new(grpc::Webhooks { app }))))
}
