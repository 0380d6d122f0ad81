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
    config.check_service_credentials().map_err(|e| anyhow::anyhow!(e))?;
    let pool = nexus_platform::db::connect(DEF.name, &config.common.database).await?;
    let keys = Arc::new(keys::SigningKeys::new(pool.clone(), sealer.clone(), config.auth.access_ttl));
    // Discovery documents name the endpoints auth then fetches: through the safe outbound client,
    // so a provider (or a misconfigured discovery URL) cannot point auth at internal addresses.
    let outbound = nexus_platform::outbound::OutboundClient::new(&config.common.outbound)?;
    let oidc: HashMap<String, OidcClient> = config
        .oauth
        .providers
        .iter()
        .map(|(name, c)| {
            let client = OidcClient::new(c.clone(), outbound.http().clone()).with_endpoint_guard(outbound.url_guard());
            (name.clone(), client)
        })
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
            Ok(tonic::service::Routes::new(nexus_platform::sized!(AuthServer::new(grpc::AuthService { app }))))
        },
    )
    .await
}
