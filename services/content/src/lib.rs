//! `nexus-content`: AI copy in five languages (streamed or not), magic landing pages served to
//! the public web, images, and AI agents. Works offline with a deterministic local generator.

pub mod app;
pub mod config;
pub mod domain;
pub mod generator;
pub mod grpc;
pub mod local;
pub mod prompts;
pub mod render;

use std::sync::Arc;

use nexus_platform::{Listeners, ServiceDef};
use nexus_proto::nexus::content::v1::content_server::ContentServer;
use sqlx::migrate::Migrator;
use tokio_util::sync::CancellationToken;

pub use crate::config::{Config, DEFAULTS};

pub static MIGRATIONS: Migrator = sqlx::migrate!("./migrations");

pub const DEF: ServiceDef = ServiceDef {
    name: "content",
    migrations: Some(&MIGRATIONS),
    grpc_services: &["nexus.content.v1.Content", "nexus.webhooks.v1.WebhookReceiver"],
};

/// Serves the content service on `listeners` until `shutdown`.
pub async fn run(config: Config, listeners: Listeners, shutdown: CancellationToken) -> anyhow::Result<()> {
    run_with_keys(config, listeners, shutdown, None).await
}

/// [`run`] with an explicit source of token-verification keys (tests).
pub async fn run_with_keys(
    config: Config,
    listeners: Listeners,
    shutdown: CancellationToken,
    keys: Option<Arc<dyn nexus_platform::identity::KeySource>>,
) -> anyhow::Result<()> {
    let pool = nexus_platform::db::connect(DEF.name, &config.common.database).await?;
    let local = Arc::new(local::LocalGenerator::new()?);
    let credits = Arc::new(app::GrpcCredits::new(&config.services.subscriptions, config.services.timeout)?);
    let text: Arc<dyn generator::TextGenerator> = local.clone();
    let app = Arc::new(app::App { pool, cfg: Arc::new(config.clone()), credits, text, local });
    nexus_platform::app::serve_with_keys(DEF, config.common.clone(), listeners, shutdown, keys, move |_infra| {
        Ok(tonic::service::Routes::new(ContentServer::new(grpc::ContentService { app })))
    })
    .await
}
