//! Every new workspace starts on FREE: the `user.signed_up` event from auth creates its
//! subscription and first grant, once (the consumer's inbox and the table's unique key both
//! guard against a second time).

use nexus_platform::consumer::{Event, EventHandler, HandleError};
use nexus_proto::events::UserSignedUp;
use sqlx::PgConnection;

use crate::app::Billing;

pub struct Provisioner;

#[async_trait::async_trait]
impl EventHandler for Provisioner {
    async fn handle(&self, tx: &mut PgConnection, event: &Event) -> Result<(), HandleError> {
        let _: UserSignedUp = event.decode()?;
        let tenant = event.tenant.ok_or_else(|| HandleError::Permanent("user.signed_up without a workspace".into()))?;
        Billing::ensure_subscription(tx, tenant).await.map_err(HandleError::from)?;
        Ok(())
    }
}
