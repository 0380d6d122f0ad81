//! `nexus-ads`: platform connections (Meta for Facebook and Instagram, TikTok Business, Google for
//! YouTube, and the offline `local` sandbox) with their ad accounts, pages and channels; tokens
//! sealed at rest and watched for expiry; and the marketing campaign umbrella.

pub mod app;
pub mod config;
pub mod domain;
pub mod events;
pub mod grpc;
pub mod repo;

use std::sync::{Arc, OnceLock};

use nexus_platform::{Infra, Listeners, ServiceDef};
use nexus_proto::nexus::ads::v1::ads_server::AdsServer;
use sqlx::migrate::Migrator;
use tokio_util::sync::CancellationToken;
use tonic::service::Routes;

pub use crate::config::{Config, DEFAULTS};

/// The service's own migrations (after the platform's: outbox, inbox, audit, tenant tables).
pub static MIGRATIONS: Migrator = sqlx::migrate!("./migrations");

pub const DEF: ServiceDef = ServiceDef {
    name: "ads",
    migrations: Some(&MIGRATIONS),
    grpc_services: &["nexus.ads.v1.Ads"],
    sealed: app::sealed::COLUMNS,
};

/// Serves the ads service on `listeners` until `shutdown` (tests serve [`service`] instead).
pub async fn run(config: Config, listeners: Listeners, shutdown: CancellationToken) -> anyhow::Result<()> {
    let common = config.common.clone();
    let build = service(config)?;
    nexus_platform::app::serve_with_keys(DEF, common, listeners, shutdown, None, build).await
}

/// Checks `config` and returns what builds the service from the platform's infrastructure: the
/// use cases over `infra.db`, the token expiry watch and the insights sweep on the platform's
/// task tracker, and the
/// gRPC routes. Tests hand it to `RunningService`.
pub fn service(config: Config) -> anyhow::Result<impl FnOnce(&Infra) -> anyhow::Result<Routes> + Send + 'static> {
    service_sharing(config, Arc::new(OnceLock::new()))
}

/// [`service`], also handing the use cases to `app` once built (tests run the expiry watch's
/// rounds on demand through it).
pub fn service_sharing(
    config: Config,
    shared: Arc<OnceLock<Arc<app::App>>>,
) -> anyhow::Result<impl FnOnce(&Infra) -> anyhow::Result<Routes> + Send + 'static> {
    service_with(config, shared, MediaServices::default())
}

/// The video and content services as the use cases see them, in place of the configured gRPC
/// ones (tests stand in for them; a field left `None` keeps the configured one).
#[derive(Default, Clone)]
pub struct MediaServices {
    pub videos: Option<Arc<dyn app::media_refs::Videos>>,
    pub images: Option<Arc<dyn app::media_refs::Images>>,
}

/// [`service_sharing`] with `media` in place of the configured media services.
pub fn service_with(
    config: Config,
    shared: Arc<OnceLock<Arc<app::App>>>,
    media: MediaServices,
) -> anyhow::Result<impl FnOnce(&Infra) -> anyhow::Result<Routes> + Send + 'static> {
    config.validate()?;
    Ok(move |infra: &Infra| {
        let mut app = app::App::new(config, infra)?;
        if media.videos.is_some() {
            app.videos = media.videos;
        }
        if media.images.is_some() {
            app.images = media.images;
        }
        let app = Arc::new(app);
        let _ = shared.set(app.clone());
        infra.spawn(app::expiry::watcher(app.clone(), infra.work.clone()));
        infra.spawn(app::sweep::sweeper(app.clone(), infra.work.clone()));
        infra.spawn(app::audience_refresh::sweeper(app.clone(), infra.work.clone()));
        infra.spawn(app::scheduler::scheduler(app.clone(), infra.work.clone()));
        infra.spawn(app::engagement::reader(app.clone(), infra.work.clone()));
        Ok(Routes::new(nexus_platform::sized!(AdsServer::new(grpc::AdsService { app }))))
    })
}
