//! Use cases. gRPC handlers call these with the verified caller; every state change commits
//! with its outbox event. Platform calls happen outside transactions.

pub mod ad_platform;
mod audience_diff;
pub mod audience_refresh;
pub mod audiences;
pub mod builder;
pub mod campaigns;
pub mod connections;
pub mod contact_book;
pub mod creatives;
pub mod engagement;
pub mod expiry;
pub mod feeds;
pub mod insights;
pub mod management;
pub mod media;
pub mod media_refs;
pub mod platforms;
pub mod posts;
pub mod scheduler;
pub mod sealed;
pub mod sweep;
pub mod targeting;

use std::sync::Arc;

use nexus_kernel::Error;
use nexus_platform::Infra;
use nexus_platform::crypto::Sealer;
use nexus_platform::identity::{Action, Principal};
use sqlx::PgPool;
use uuid::Uuid;

use crate::config::Config;

pub struct App {
    pub pool: PgPool,
    pub cfg: Arc<Config>,
    /// Seals platform tokens and pending PKCE verifiers at rest.
    pub sealer: Sealer,
    /// Platform APIs at configured base URLs.
    pub http: reqwest::Client,
    /// The platforms whose apps are configured.
    pub meta: Option<nexus_providers::meta::MetaClient>,
    pub tiktok: Option<nexus_providers::tiktok::TikTokClient>,
    pub google: Option<nexus_providers::google::GoogleClient>,
    /// TikTok's Content Posting API (with the TikTok app) and YouTube uploads (with the Google
    /// client), for the social scheduler.
    pub tiktok_posts: Option<nexus_providers::tiktok_posts::TikTokPostClient>,
    /// TikTok Login Kit: creators' own tokens (with the client key).
    pub tiktok_login: Option<nexus_providers::tiktok_login::TikTokLoginClient>,
    pub youtube: Option<nexus_providers::youtube::YouTubeClient>,
    /// Fetches of user-chosen media URLs (videos uploaded to YouTube).
    pub outbound: nexus_platform::outbound::OutboundClient,
    /// The video service, for posts that name one of its videos.
    pub videos: Option<Arc<dyn media_refs::Videos>>,
    /// The content service, for posts that name one of its images.
    pub images: Option<Arc<dyn media_refs::Images>>,
    /// The contact book (messaging), for audiences made from a saved segment.
    pub contact_book: Option<Arc<dyn contact_book::ContactBook>>,
    /// Where uploaded post media are kept.
    pub storage: nexus_platform::storage::Storage,
    /// Signs and checks the links to post media.
    pub media_links: nexus_platform::links::LinkKeys,
}

impl App {
    pub fn new(config: Config, infra: &Infra) -> anyhow::Result<App> {
        let sealer = Sealer::from_config(config.ads.sealing_keys.expose())
            .map_err(|e| anyhow::anyhow!("ads.sealing_keys: {e}"))?;
        nexus_platform::install_crypto_provider();
        let http = reqwest::Client::builder()
            .connect_timeout(std::time::Duration::from_secs(5))
            .timeout(config.providers.timeout)
            .build()?;
        let (timeout, attempts) = (config.providers.timeout, config.providers.attempts);
        let meta = (!config.meta.app_id.is_empty()).then(|| {
            nexus_providers::meta::MetaClient::new(
                nexus_providers::meta::MetaConfig {
                    app_id: config.meta.app_id.clone(),
                    app_secret: config.meta.app_secret.expose().to_owned(),
                    graph_url: config.meta.graph_url.clone(),
                    api_version: config.meta.api_version.clone(),
                    timeout,
                    attempts,
                },
                http.clone(),
            )
        });
        let tiktok = (!config.tiktok.app_id.is_empty()).then(|| {
            nexus_providers::tiktok::TikTokClient::new(
                nexus_providers::tiktok::TikTokConfig {
                    app_id: config.tiktok.app_id.clone(),
                    secret: config.tiktok.secret.expose().to_owned(),
                    base_url: config.tiktok.base_url.clone(),
                    timeout,
                    attempts,
                },
                http.clone(),
            )
        });
        let google = (!config.google.client_id.is_empty()).then(|| {
            nexus_providers::google::GoogleClient::new(
                nexus_providers::google::GoogleConfig {
                    client_id: config.google.client_id.clone(),
                    client_secret: config.google.client_secret.expose().to_owned(),
                    token_url: config.google.token_url.clone(),
                    revoke_url: config.google.revoke_url.clone(),
                    api_url: config.google.api_url.clone(),
                    timeout,
                    attempts,
                },
                http.clone(),
            )
        });
        let tiktok_login = (!config.tiktok.client_key.is_empty()).then(|| {
            nexus_providers::tiktok_login::TikTokLoginClient::new(
                nexus_providers::tiktok_login::TikTokLoginConfig {
                    client_key: config.tiktok.client_key.clone(),
                    client_secret: config.tiktok.client_secret.expose().to_owned(),
                    authorize_url: config.tiktok.login_url.clone(),
                    api_url: config.tiktok.content_url.clone(),
                    timeout,
                    attempts,
                },
                http.clone(),
            )
        });
        let tiktok_posts = (!config.tiktok.app_id.is_empty() || !config.tiktok.client_key.is_empty()).then(|| {
            nexus_providers::tiktok_posts::TikTokPostClient::new(
                nexus_providers::tiktok_posts::TikTokPostConfig {
                    base_url: config.tiktok.content_url.clone(),
                    timeout,
                    attempts,
                },
                http.clone(),
            )
        });
        let youtube = (!config.google.client_id.is_empty()).then(|| {
            let api = config.google.api_url.trim_end_matches('/');
            nexus_providers::youtube::YouTubeClient::new(
                nexus_providers::youtube::YouTubeConfig {
                    upload_url: format!("{api}/upload/youtube/v3"),
                    api_url: format!("{api}/youtube/v3"),
                    timeout,
                    attempts,
                    chunk_size: config.posts.youtube_chunk_bytes,
                },
                http.clone(),
            )
        });
        let tokens = &infra.service_tokens;
        let videos: Option<Arc<dyn media_refs::Videos>> = service_channel(&config, "video", &config.services.video)?
            .map(|channel| Arc::new(media_refs::VideoService { channel, tokens: tokens.clone() }) as _);
        let images: Option<Arc<dyn media_refs::Images>> =
            service_channel(&config, "content", &config.services.content)?
                .map(|channel| Arc::new(media_refs::ContentImages { channel, tokens: tokens.clone() }) as _);
        let contact_book: Option<Arc<dyn contact_book::ContactBook>> =
            service_channel(&config, "messaging", &config.services.messaging)?
                .map(|channel| Arc::new(contact_book::MessagingContacts { channel, tokens: tokens.clone() }) as _);
        let storage = nexus_platform::storage::Storage::new(&config.storage)?;
        let media_links = nexus_platform::links::LinkKeys::parse(config.media.signing_keys.expose())
            .map_err(|e| anyhow::anyhow!("media.signing_keys: {e}"))?;
        Ok(App {
            pool: infra.db.clone(),
            cfg: Arc::new(config),
            sealer,
            http,
            meta,
            tiktok,
            google,
            tiktok_posts,
            tiktok_login,
            youtube,
            outbound: infra.outbound.clone(),
            videos,
            images,
            contact_book,
            storage,
            media_links,
        })
    }
}

impl App {
    pub fn budget_guard(&self) -> crate::domain::builder::BudgetGuard {
        let b = self.cfg.budget;
        crate::domain::builder::BudgetGuard {
            per_change_percent: b.max_increase_per_change_percent,
            per_day_percent: b.max_increase_per_day_percent,
            workspace_cap: b.workspace_daily_cap_minor,
        }
    }
}

/// A channel to the service `[services] <key>` names; `None` when it names none.
fn service_channel(
    config: &Config,
    key: &str,
    url: &str,
) -> anyhow::Result<Option<nexus_platform::grpc::ContextChannel>> {
    if url.is_empty() {
        return Ok(None);
    }
    let channel = nexus_platform::grpc::context_channel(url, config.services.timeout)
        .map_err(|e| anyhow::anyhow!("services.{key}: {url:?}: {e}"))?;
    Ok(Some(channel))
}

/// The caller, allowed to do `action`.
pub fn require(p: &Principal, action: Action) -> Result<(), Error> {
    p.require(action)
}

/// An id of ours (`cmp_…`) as its UUID; anything else is not found (never a hint of another
/// workspace's rows, which RLS hides anyway).
pub fn id_of<T: std::str::FromStr>(
    raw: &str,
    not_found: &'static str,
    uuid: impl Fn(&T) -> Uuid,
) -> Result<Uuid, Error> {
    raw.parse::<T>().map(|t| uuid(&t)).map_err(|_| Error::not_found(not_found))
}
