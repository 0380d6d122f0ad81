//! Auth's membership events into messaging's members projection: `user.signed_up` (the new
//! workspace's owner), `member.joined` and `member.removed`, one durable consumer per subject
//! (NATS 2.9 filters one subject per consumer). The platform inbox makes a redelivery change
//! nothing, and each row keeps the time of the change it holds, so an older event arriving late
//! (the consumers run side by side) does not undo a newer one.

use chrono::Utc;
use nexus_kernel::UserId;
use nexus_platform::config::NatsConfig;
use nexus_platform::consumer::{ConsumerSpec, Event, EventHandler, HandleError};
use nexus_proto::events as ev;
use prost::Name;
use sqlx::PgConnection;

use crate::app::members;

/// `(subject, durable)` of each consumer.
pub const SUBJECTS: [(&str, &str); 3] = [
    ("nexus.auth.user.signed_up", "messaging-members-signed-up"),
    ("nexus.auth.member.joined", "messaging-members-joined"),
    ("nexus.auth.member.removed", "messaging-members-removed"),
];

pub fn specs(nats: &NatsConfig) -> Vec<ConsumerSpec> {
    SUBJECTS.iter().map(|(subject, durable)| ConsumerSpec::new("auth", *durable, *subject, nats)).collect()
}

pub struct MembersHandler;

fn user_of(raw: &str) -> Result<uuid::Uuid, HandleError> {
    UserId::parse(raw).map(|u| u.as_uuid()).map_err(|_| HandleError::Permanent(format!("user id {raw:?} is not valid")))
}

#[async_trait::async_trait]
impl EventHandler for MembersHandler {
    async fn handle(&self, tx: &mut PgConnection, event: &Event) -> Result<(), HandleError> {
        let Some(tenant) = event.tenant else {
            return Err(HandleError::Permanent("a membership event without a workspace".into()));
        };
        let at = event.envelope.occurred_at.as_ref().and_then(nexus_platform::grpc::from_ts).unwrap_or_else(Utc::now);
        let t = event.envelope.event_type.as_str();
        if t == ev::UserSignedUp::full_name() {
            let e: ev::UserSignedUp = event.decode()?;
            members::joined(tx, tenant, user_of(&e.user_id)?, at).await?;
        } else if t == ev::MemberJoined::full_name() {
            let e: ev::MemberJoined = event.decode()?;
            members::joined(tx, tenant, user_of(&e.user_id)?, at).await?;
        } else if t == ev::MemberRemoved::full_name() {
            let e: ev::MemberRemoved = event.decode()?;
            members::left(tx, tenant, user_of(&e.user_id)?, at).await?;
        } else {
            return Err(HandleError::Permanent(format!("unexpected event type {t}")));
        }
        Ok(())
    }
}
