//! `nexus-auth`: accounts, workspaces, sessions and tokens, MFA, OAuth and API keys. Signs the
//! access tokens every other service verifies.

pub mod app;
pub mod config;
pub mod domain;
pub mod grpc;
pub mod keys;
pub mod mail;
pub mod repo;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use nexus_platform::crypto::Sealer;
use nexus_platform::{Listeners, ServiceDef};
use nexus_proto::nexus::auth::v1::auth_server::AuthServer;
use nexus_providers::oidc::OidcClient;
use sqlx::migrate::Migrator;
use tokio_util::sync::CancellationToken;

pub use crate::config::{Config, DEFAULTS};

pub static MIGRATIONS: Migrator = sqlx::migrate!("./migrations");

pub const DEF: ServiceDef =
    ServiceDef { name: "auth", migrations: Some(&MIGRATIONS), grpc_services: &["nexus.auth.v1.Auth"] };

/// Serves the auth service on `listeners` until `shutdown`.
pub async fn run(config: Config, listeners: Listeners, shutdown: CancellationToken) -> anyhow::Result<()> {
    let sealer = Sealer::from_config(config.auth.sealing_keys.expose())
        .map_err(|e| anyhow::anyhow!("auth.sealing_keys: {e}"))?;
    if config.auth.sealing_keys.expose() == "1:bmV4dXMtbG9jYWwtZGV2ZWxvcG1lbnQta2V5LTMyYis=" {
        tracing::warn!(
            "auth.sealing_keys is the built-in development key; set NEXUS_AUTH__SEALING_KEYS_FILE in production"
        );
    }
    if config.mail.mode == config::MailMode::Local {
        tracing::warn!("mail.mode = local: mail is not sent, it is readable at GET /v1/local/mail");
    }
    config.check_service_credentials().map_err(|e| anyhow::anyhow!(e))?;
    let dev_credentials = config.dev_service_credentials();
    if !dev_credentials.is_empty() {
        tracing::warn!(
            services = ?dev_credentials,
            "auth.service_credentials accepts built-in development credentials; set real ones in production"
        );
    }
    let pool = nexus_platform::db::connect(DEF.name, &config.common.database).await?;
    let keys = Arc::new(keys::SigningKeys::new(pool.clone(), sealer.clone(), config.auth.access_ttl));
    let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build()?;
    let oidc: HashMap<String, OidcClient> = config
        .oauth
        .providers
        .iter()
        .map(|(name, c)| (name.clone(), OidcClient::new(c.clone(), http.clone())))
        .collect();
    let config = Arc::new(config);
    let app = Arc::new(app::App::new(pool.clone(), keys.clone(), sealer, config.clone(), oidc)?);
    let key_source: Arc<dyn nexus_platform::identity::KeySource> = Arc::new(keys::LocalKeys(keys));
    let mail_cfg = config.mail.clone();
    nexus_platform::app::serve_with_keys(
        DEF,
        config.common.clone(),
        listeners,
        shutdown,
        Some(key_source),
        move |infra| {
            infra.spawn(mail::run_sender(pool.clone(), mail_cfg.clone(), infra.work.clone()));
            infra.spawn(mail::run_purger(pool, mail_cfg, infra.work.clone()));
            Ok(tonic::service::Routes::new(AuthServer::new(grpc::AuthService { app })))
        },
    )
    .await
}
