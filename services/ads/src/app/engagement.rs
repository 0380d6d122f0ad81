//! Engagement of published posts (likes, comments, shares, views), read from the platforms on a
//! schedule — each post again once its last reading is `posts.engagement_every` old, claimed
//! across replicas with SKIP LOCKED — stored on the post and sent to analytics as
//! `post_engagement.measured` (totals: the latest reading wins).

use std::sync::Arc;

use chrono::Utc;
use nexus_kernel::{Error, TenantId};
use nexus_platform::db;
use nexus_platform::db::DbResultExt;
use nexus_platform::outbox::enqueue;
use nexus_providers::marketing::{Engagement, PlatformError};
use tokio_util::sync::CancellationToken;

use super::App;
use crate::domain::posts::Platform;
use crate::domain::{PostId, PostTargetId};
use crate::repo;
use crate::repo::posts::Published;

/// Posts read per round.
const BATCH: i64 = 50;

/// Runs rounds until `stop`: again at once while they come back full (a backlog), else after
/// `posts.engagement_poll`.
pub async fn reader(app: Arc<App>, stop: CancellationToken) {
    let mut full = false;
    loop {
        if !full {
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(app.cfg.posts.engagement_poll) => {}
            }
        } else if stop.is_cancelled() {
            return;
        }
        full = match app.read_engagement().await {
            Ok(r) => i64::from(r.read + r.failed) >= BATCH,
            Err(e) => {
                tracing::warn!(error = ?e, "engagement round failed");
                false
            }
        };
    }
}

/// What one round did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct EngagementRound {
    pub read: u32,
    pub failed: u32,
}

impl App {
    /// One round: the published posts whose reading is oldest (never read first).
    pub async fn read_engagement(&self) -> Result<EngagementRound, Error> {
        let every = chrono::Duration::from_std(self.cfg.posts.engagement_every).unwrap_or(chrono::Duration::hours(6));
        let mut sys = db::system(&self.pool).await?;
        let due = repo::posts::claim_engagement(&mut sys, Utc::now() - every, BATCH).await?;
        db::commit(sys).await?;
        let mut round = EngagementRound::default();
        for p in due {
            match self.engagement_of(&p).await {
                Ok(e) => {
                    let tenant = TenantId::from_uuid(p.tenant_id);
                    let mut tx = db::tenant(&self.pool, tenant).await?;
                    repo::posts::set_engagement(&mut tx, p.id, &e).await?;
                    let event = nexus_proto::events::AdsPostEngagement {
                        workspace_id: tenant.to_string(),
                        post_id: PostId::from_uuid(p.post_id).to_string(),
                        target_id: PostTargetId::from_uuid(p.id).to_string(),
                        provider: p.provider.clone(),
                        platform: p.platform.clone(),
                        account: p.account.clone(),
                        platform_post_id: p.platform_post_id.clone(),
                        likes: e.likes,
                        comments: e.comments,
                        shares: e.shares,
                        views: e.views,
                        measured_at: Some(nexus_platform::grpc::ts(Utc::now())),
                    };
                    enqueue(&mut tx, crate::events::POST_ENGAGEMENT, Some(tenant), &event).await.db()?;
                    db::commit(tx).await?;
                    round.read += 1;
                }
                Err(e) => {
                    // Read again at the next period; a token problem shows on the connection.
                    tracing::warn!(platform = %p.platform, error = %e, "engagement could not be read");
                    round.failed += 1;
                }
            }
        }
        Ok(round)
    }

    async fn engagement_of(&self, p: &Published) -> Result<Engagement, PlatformError> {
        let platform: Platform = p.platform.parse().map_err(|_| decode("platform"))?;
        if p.provider == "local" {
            return Ok(sandbox_engagement(&p.platform_post_id));
        }
        let tenant = TenantId::from_uuid(p.tenant_id);
        let token = self.connection_token(tenant, p.connection_id).await.map_err(|_| decode("connection"))?;
        let id = p.platform_post_id.as_str();
        let missing = || PlatformError::Decode { platform: "ads", message: "client not configured".into() };
        match platform {
            Platform::Instagram => self.meta.as_ref().ok_or_else(missing)?.ig_engagement(&token, id).await,
            Platform::Facebook => {
                let meta = self.meta.as_ref().ok_or_else(missing)?;
                let page_token = meta.page_token(&token, &p.account).await?;
                meta.page_engagement(&page_token, id).await
            }
            Platform::TikTok => self.tiktok_posts.as_ref().ok_or_else(missing)?.engagement(&token, id).await,
            Platform::YouTube => self.youtube.as_ref().ok_or_else(missing)?.engagement(&token, id).await,
        }
    }
}

fn decode(what: &str) -> PlatformError {
    PlatformError::Decode { platform: "ads", message: format!("stored {what}") }
}

/// The sandbox's plausible figures, steady for a post (derived from its id), labelled local by
/// the post's provider.
fn sandbox_engagement(id: &str) -> Engagement {
    let seed: i64 = id.bytes().map(i64::from).sum();
    Engagement { likes: seed % 97 + 3, comments: seed % 13, shares: seed % 7, views: seed % 997 * 10 + 100 }
}
