//! Charges or gives back the reservation of a job that finished after its request ended (a
//! provider image, a video render): the producing service announces `MeteredJobFinished` through
//! its outbox, so no user token is needed and nothing is lost if either side restarts. Commit and
//! release are idempotent, and the consumer's inbox records the event in the same transaction.

use nexus_kernel::{ErrorKind, WorkspaceId};
use nexus_platform::consumer::{Event, EventHandler, HandleError};
use nexus_proto::events::MeteredJobFinished;
use sqlx::PgConnection;
use std::sync::Arc;

use crate::app::Billing;

/// Services whose jobs settle this way, each read by its own durable consumer
/// (`subscriptions-settlement-<service>`, subject `nexus.<service>.job.finished`).
pub const PRODUCERS: &[&str] = &["content", "video", "messaging"];

pub struct Settlement {
    pub billing: Arc<Billing>,
}

#[async_trait::async_trait]
impl EventHandler for Settlement {
    async fn handle(&self, tx: &mut PgConnection, event: &Event) -> Result<(), HandleError> {
        let job: MeteredJobFinished = event.decode()?;
        let tenant = match event.tenant {
            Some(t) => t,
            None => job
                .workspace_id
                .parse::<WorkspaceId>()
                .map_err(|_| HandleError::Permanent("job.finished without a workspace".into()))?,
        };
        nexus_platform::db::enter_tenant(&mut *tx, tenant).await.map_err(HandleError::from)?;
        // A failed job gives back the use of a limited feature it counted (a video this month).
        if !job.succeeded && !job.feature.is_empty() && !job.feature_use_key.is_empty() {
            let released =
                crate::repo::features::release_use(&mut *tx, tenant, &job.feature_use_key, &job.feature).await?;
            tracing::info!(job = %job.job, feature = %job.feature, released, "failed job's feature use given back");
        }
        let result = if job.succeeded {
            let credits = (job.credits > 0).then_some(job.credits);
            self.billing.commit_in(&mut *tx, tenant, &job.reservation_id, credits).await
        } else {
            Billing::release_in(&mut *tx, tenant, &job.reservation_id).await
        };
        match result {
            Ok((r, _)) => {
                tracing::info!(job = %job.job, reservation = %job.reservation_id, status = %r.status, "metered job settled");
                Ok(())
            }
            // The hold expired first (the job outlived its TTL, or this event waited out an
            // outage longer than it): a stored result is still charged, from what is available.
            Err(e) if e.kind() == ErrorKind::FailedPrecondition && job.succeeded => {
                let credits = (job.credits > 0).then_some(job.credits);
                match self.billing.charge_expired_in(&mut *tx, tenant, &job.reservation_id, credits).await {
                    Ok(Some((r, _))) => {
                        tracing::warn!(job = %job.job, reservation = %job.reservation_id, charged = r.committed_amount, "job finished after its hold expired; charged late");
                        Ok(())
                    }
                    Ok(None) => {
                        tracing::warn!(job = %job.job, reservation = %job.reservation_id, error = %e, "job finished after its reservation closed");
                        Ok(())
                    }
                    Err(e) => Err(HandleError::from(e)),
                }
            }
            // A failed job whose hold is closed already: nothing to give back.
            Err(e) if e.kind() == ErrorKind::FailedPrecondition => {
                tracing::info!(job = %job.job, reservation = %job.reservation_id, error = %e, "failed job's reservation already closed");
                Ok(())
            }
            Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::InvalidArgument) => {
                Err(HandleError::Permanent(format!("{}: {e}", job.reservation_id)))
            }
            Err(e) => Err(HandleError::from(e)),
        }
    }
}
