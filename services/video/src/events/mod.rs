//! The events the video service emits, each written to the outbox in the transaction that makes
//! its change (the platform relay publishes them). The service consumes none.
//!
//! Settlement: how a video's job ended is announced as `MeteredJobFinished` on [`JOB_FINISHED`]
//! in the transaction that records the end; subscriptions then charges the hold (done) or gives
//! it back together with the month's video count (failed, canceled), so no crash between
//! recording and settling can make a video free or charge it twice.

use nexus_kernel::{Error, TenantId};
use nexus_platform::db::DbResultExt;
use nexus_platform::outbox::enqueue;
use nexus_proto::events;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::domain::VideoId;

/// Subject of the settlement events subscriptions consumes (`subscriptions-settlement-video`).
pub const JOB_FINISHED: &str = "nexus.video.job.finished";
/// The plan limit a video counts against.
pub const FEATURE: &str = "videos_per_month";

/// How a video's hold ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settle {
    /// Charge this many credits (at most the hold; the rest goes back).
    Charge(i64),
    /// Give the hold and the month's count back.
    GiveBack,
}

/// Writes the settlement of a video's hold (and, when given back, its monthly count).
pub async fn settle_in(
    conn: &mut PgConnection,
    tenant: TenantId,
    video: Uuid,
    reservation: &str,
    feature_use_key: &str,
    how: Settle,
) -> Result<(), Error> {
    let (succeeded, credits) = match how {
        Settle::Charge(n) if n > 0 => (true, n),
        Settle::Charge(_) | Settle::GiveBack => (false, 0),
    };
    let event = events::MeteredJobFinished {
        workspace_id: tenant.to_string(),
        reservation_id: reservation.to_owned(),
        succeeded,
        credits,
        job: format!("video.render:{}", VideoId::from_uuid(video)),
        feature: if succeeded { String::new() } else { FEATURE.to_owned() },
        feature_use_key: if succeeded { String::new() } else { feature_use_key.to_owned() },
    };
    enqueue(conn, JOB_FINISHED, Some(tenant), &event).await.db()?;
    Ok(())
}

pub async fn video_requested(
    conn: &mut PgConnection,
    tenant: TenantId,
    e: events::VideoRequested,
) -> Result<(), Error> {
    enqueue(conn, "nexus.video.video.requested", Some(tenant), &e).await.db()?;
    Ok(())
}

pub async fn video_completed(
    conn: &mut PgConnection,
    tenant: TenantId,
    e: events::VideoCompleted,
) -> Result<(), Error> {
    enqueue(conn, "nexus.video.video.completed", Some(tenant), &e).await.db()?;
    Ok(())
}

pub async fn video_failed(conn: &mut PgConnection, tenant: TenantId, e: events::VideoFailed) -> Result<(), Error> {
    enqueue(conn, "nexus.video.video.failed", Some(tenant), &e).await.db()?;
    Ok(())
}
