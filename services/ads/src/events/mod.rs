//! The events the ads service emits, each written to the outbox in the transaction that makes
//! its change (the platform relay publishes them on `nexus.ads.<entity>.<verb>`). Notices and
//! outbound webhooks subscribe to them.

use nexus_kernel::{Error, TenantId};
use nexus_platform::db::DbResultExt;
use nexus_platform::grpc::ts;
use nexus_platform::outbox::enqueue;
use nexus_proto::events;
use sqlx::PgConnection;

use crate::domain::{BuildId, CampaignId, ConnectionId, PostId, PostTargetId};
use crate::repo::builds::Build;
use crate::repo::connections::Due;
use crate::repo::posts::{Claimed, Target};

pub const CONNECTION_EXPIRING: &str = "nexus.ads.connection.expiring";
pub const CONNECTION_EXPIRED: &str = "nexus.ads.connection.expired";
pub const CAMPAIGN_CREATED: &str = "nexus.ads.campaign.created";
pub const CAMPAIGN_FAILED: &str = "nexus.ads.campaign.failed";
pub const CAMPAIGN_STATUS_CHANGED: &str = "nexus.ads.campaign.status_changed";
pub const AD_REJECTED: &str = "nexus.ads.ad.rejected";
pub const AUDIENCE_REFRESHED: &str = "nexus.ads.audience.refreshed";
pub const AUDIENCE_REFRESH_FAILED: &str = "nexus.ads.audience.refresh_failed";
pub const POST_SCHEDULED: &str = "nexus.ads.post.scheduled";
pub const POST_PUBLISHED: &str = "nexus.ads.post.published";
pub const POST_FAILED: &str = "nexus.ads.post.failed";
pub const ACCOUNT_PAUSED: &str = "nexus.ads.account.paused";
/// Not under `post.>`: readings arrive all day, and consumers of post events need not see them.
pub const POST_ENGAGEMENT: &str = "nexus.ads.post_engagement.measured";

pub async fn connection_expiring(conn: &mut PgConnection, tenant: TenantId, d: &Due) -> Result<(), Error> {
    let e = events::AdsConnectionExpiring {
        workspace_id: tenant.to_string(),
        connection_id: ConnectionId::from_uuid(d.id).to_string(),
        provider: d.provider.clone(),
        expires_at: d.token_expires_at.map(ts),
    };
    enqueue(conn, CONNECTION_EXPIRING, Some(tenant), &e).await.db()?;
    Ok(())
}

pub async fn connection_expired(conn: &mut PgConnection, tenant: TenantId, d: &Due) -> Result<(), Error> {
    let e = events::AdsConnectionExpired {
        workspace_id: tenant.to_string(),
        connection_id: ConnectionId::from_uuid(d.id).to_string(),
        provider: d.provider.clone(),
        expired_at: d.token_expires_at.map(ts),
    };
    enqueue(conn, CONNECTION_EXPIRED, Some(tenant), &e).await.db()?;
    Ok(())
}

pub async fn campaign_created(
    conn: &mut PgConnection,
    tenant: TenantId,
    b: &Build,
    platform_campaign_id: &str,
    name: &str,
    daily_budget: i64,
) -> Result<(), Error> {
    let e = events::AdsCampaignCreated {
        workspace_id: tenant.to_string(),
        build_id: BuildId::from_uuid(b.id).to_string(),
        campaign_id: b.campaign_id.map(|c| CampaignId::from_uuid(c).to_string()).unwrap_or_default(),
        provider: b.provider.clone(),
        ad_account: b.ad_account.clone(),
        platform_campaign_id: platform_campaign_id.to_owned(),
        name: name.to_owned(),
        daily_budget_minor: daily_budget,
        currency: b.currency.clone(),
    };
    enqueue(conn, CAMPAIGN_CREATED, Some(tenant), &e).await.db()?;
    Ok(())
}

pub async fn campaign_failed(
    conn: &mut PgConnection,
    tenant: TenantId,
    b: &Build,
    step: &str,
    error: &str,
) -> Result<(), Error> {
    let e = events::AdsCampaignFailed {
        workspace_id: tenant.to_string(),
        build_id: BuildId::from_uuid(b.id).to_string(),
        provider: b.provider.clone(),
        step: step.to_owned(),
        error: error.to_owned(),
    };
    enqueue(conn, CAMPAIGN_FAILED, Some(tenant), &e).await.db()?;
    Ok(())
}

pub async fn campaign_status_changed(
    conn: &mut PgConnection,
    tenant: TenantId,
    b: &Build,
    old: &str,
    new: &str,
) -> Result<(), Error> {
    let e = events::AdsCampaignStatusChanged {
        workspace_id: tenant.to_string(),
        build_id: BuildId::from_uuid(b.id).to_string(),
        provider: b.provider.clone(),
        old_status: old.to_owned(),
        new_status: new.to_owned(),
    };
    enqueue(conn, CAMPAIGN_STATUS_CHANGED, Some(tenant), &e).await.db()?;
    Ok(())
}

pub async fn ad_rejected(
    conn: &mut PgConnection,
    tenant: TenantId,
    b: &Build,
    platform_ad_id: &str,
    reason: &str,
) -> Result<(), Error> {
    let e = events::AdsAdRejected {
        workspace_id: tenant.to_string(),
        build_id: BuildId::from_uuid(b.id).to_string(),
        provider: b.provider.clone(),
        platform_ad_id: platform_ad_id.to_owned(),
        reason: reason.to_owned(),
    };
    enqueue(conn, AD_REJECTED, Some(tenant), &e).await.db()?;
    Ok(())
}

/// A segment audience's refresh: done, or failed (its error code kept on the row).
pub async fn audience_refreshed(
    conn: &mut PgConnection,
    tenant: TenantId,
    a: &crate::repo::audiences::Audience,
) -> Result<(), Error> {
    let e = events::AdsAudienceRefreshed {
        workspace_id: tenant.to_string(),
        audience_id: crate::domain::AudienceId::from_uuid(a.id).to_string(),
        segment_id: a.segment_id.clone(),
        platform_id: a.platform_id.clone(),
        members: a.members,
        excluded: a.excluded,
        error: a.refresh_error.clone(),
    };
    let subject = if a.refresh_status == "failed" { AUDIENCE_REFRESH_FAILED } else { AUDIENCE_REFRESHED };
    enqueue(conn, subject, Some(tenant), &e).await.db()?;
    Ok(())
}

pub async fn post_scheduled(conn: &mut PgConnection, tenant: TenantId, t: &Target) -> Result<(), Error> {
    let e = events::AdsPostScheduled {
        workspace_id: tenant.to_string(),
        post_id: PostId::from_uuid(t.post_id).to_string(),
        target_id: PostTargetId::from_uuid(t.id).to_string(),
        provider: t.provider.clone(),
        platform: t.platform.clone(),
        account: t.account.clone(),
        scheduled_at: t.due_at.map(ts),
    };
    enqueue(conn, POST_SCHEDULED, Some(tenant), &e).await.db()?;
    Ok(())
}

/// The `post.published` event of a claimed target.
pub fn post_published_event(
    tenant: TenantId,
    c: &Claimed,
    platform_post_id: &str,
    permalink: &str,
    published_at: chrono::DateTime<chrono::Utc>,
) -> events::AdsPostPublished {
    events::AdsPostPublished {
        workspace_id: tenant.to_string(),
        post_id: PostId::from_uuid(c.post_id).to_string(),
        target_id: PostTargetId::from_uuid(c.id).to_string(),
        provider: c.provider.clone(),
        platform: c.platform.clone(),
        account: c.account.clone(),
        platform_post_id: platform_post_id.to_owned(),
        permalink: permalink.to_owned(),
        scheduled_at: c.due_at.map(ts),
        published_at: Some(ts(published_at)),
    }
}

/// A workspace's `post.published` events, in one statement.
pub async fn posts_published(
    conn: &mut PgConnection,
    tenant: TenantId,
    events: &[events::AdsPostPublished],
) -> Result<(), Error> {
    nexus_platform::outbox::enqueue_many(conn, POST_PUBLISHED, Some(tenant), events).await.db()?;
    Ok(())
}

pub async fn post_failed(
    conn: &mut PgConnection,
    tenant: TenantId,
    c: &Claimed,
    code: &str,
    reason: &str,
) -> Result<(), Error> {
    let e = events::AdsPostFailed {
        workspace_id: tenant.to_string(),
        post_id: PostId::from_uuid(c.post_id).to_string(),
        target_id: PostTargetId::from_uuid(c.id).to_string(),
        provider: c.provider.clone(),
        platform: c.platform.clone(),
        account: c.account.clone(),
        error_code: code.to_owned(),
        reason: reason.to_owned(),
    };
    enqueue(conn, POST_FAILED, Some(tenant), &e).await.db()?;
    Ok(())
}

pub async fn account_paused(conn: &mut PgConnection, tenant: TenantId, c: &Claimed, reason: &str) -> Result<(), Error> {
    let e = events::AdsAccountPaused {
        workspace_id: tenant.to_string(),
        connection_id: ConnectionId::from_uuid(c.connection_id).to_string(),
        provider: c.provider.clone(),
        reason: reason.to_owned(),
    };
    enqueue(conn, ACCOUNT_PAUSED, Some(tenant), &e).await.db()?;
    Ok(())
}
