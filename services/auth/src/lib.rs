//! `nexus-auth`: accounts, workspaces, sessions and tokens, MFA, OAuth and API keys. Signs the
//! access tokens every other service verifies.

pub mod app;
pub mod config;
pub mod domain;
pub mod events;
pub mod grpc;
pub mod repo;

use std::collections::HashMap;
use std::sync::Arc;

use nexus_platform::consumer::Consumer;
use nexus_platform::crypto::Sealer;
use nexus_platform::identity::KeySource;
use nexus_platform::{Infra, Listeners, ServiceDef};
use nexus_proto::nexus::auth::v1::auth_server::AuthServer;
use nexus_providers::oidc::OidcClient;
use sqlx::migrate::Migrator;
use tokio_util::sync::CancellationToken;

use crate::app::keys::{LocalKeys, SigningKeys};
pub use crate::config::{Config, DEFAULTS};

pub static MIGRATIONS: Migrator = sqlx::migrate!("./migrations");

pub const DEF: ServiceDef = ServiceDef {
    name: "auth",
    migrations: Some(&MIGRATIONS),
    grpc_services: &["nexus.auth.v1.Auth"],
    sealed: app::sealed::COLUMNS,
};

/// Serves the auth service on `listeners` until `shutdown`.
pub async fn run(config: Config, listeners: Listeners, shutdown: CancellationToken) -> anyhow::Result<()> {
    let common = config.common.clone();
    let Service { keys, build } = service(config)?;
    nexus_platform::app::serve_with_keys(DEF, common, listeners, shutdown, Some(keys), build).await
}

/// Builds a service's gRPC routes from the platform's [`Infra`].
pub type Build = Box<dyn FnOnce(&Infra) -> anyhow::Result<tonic::service::Routes> + Send>;

/// What `serve_with_keys` takes for auth (tests hand it to `RunningService`).
pub struct Service {
    /// The source of token-verification keys: auth's own signing keys.
    pub keys: Arc<dyn KeySource>,
    /// Builds the service from the platform's [`Infra`].
    pub build: Build,
}

/// The auth [`Service`] of `config`. The signing keys need the platform's pool, which exists
/// only once `build` runs; it attaches them to the key source then, before the first RPC.
pub fn service(config: Config) -> anyhow::Result<Service> {
    let sealer = Sealer::from_config(config.auth.sealing_keys.expose())
        .map_err(|e| anyhow::anyhow!("auth.sealing_keys: {e}"))?;
    config.check_service_credentials().map_err(|e| anyhow::anyhow!(e))?;
    let local = Arc::new(LocalKeys::default());
    let key_source: Arc<dyn KeySource> = local.clone();
    let build = move |infra: &Infra| {
        let keys = Arc::new(SigningKeys::new(infra.db.clone(), sealer.clone(), config.auth.access_ttl));
        local.attach(keys.clone());
        // Discovery documents name the endpoints auth then fetches: through the safe outbound
        // client, so a provider (or a misconfigured discovery URL) cannot point auth at internal
        // addresses.
        let outbound = &infra.outbound;
        let oidc: HashMap<String, OidcClient> = config
            .oauth
            .providers
            .iter()
            .map(|(name, c)| {
                let client =
                    OidcClient::new(c.clone(), outbound.http().clone()).with_endpoint_guard(outbound.url_guard());
                (name.clone(), client)
            })
            .collect();
        let mail_cfg = config.mail.clone();
        let notices = Arc::new(events::notices::EndpointDisabledHandler { public_url: config.auth.public_url.clone() });
        let spec = events::notices::spec(&config.common.nats);
        infra.spawn(Consumer::new(infra.db.clone(), infra.bus.clone(), spec, notices).run(infra.work.clone()));
        let ads_notices = Arc::new(events::notices::AdsNoticesHandler { public_url: config.auth.public_url.clone() });
        for spec in events::notices::ads_specs(&config.common.nats) {
            let consumer = Consumer::new(infra.db.clone(), infra.bus.clone(), spec, ads_notices.clone());
            infra.spawn(consumer.run(infra.work.clone()));
        }
        let app = Arc::new(app::App::new(infra.db.clone(), keys, sealer, Arc::new(config), oidc)?);
        infra.spawn(app::mail::run_sender(infra.db.clone(), mail_cfg.clone(), infra.work.clone()));
        infra.spawn(app::mail::run_purger(infra.db.clone(), mail_cfg, infra.work.clone()));
        Ok(tonic::service::Routes::new(nexus_platform::sized!(AuthServer::new(grpc::AuthService { app }))))
    };
    Ok(Service { keys: key_source, build: Box::new(build) })
}
