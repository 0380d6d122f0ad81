//! Workspace members, as far as messaging needs them: owners of contacts and deals and
//! assignees of tasks must be current members. The projection is fed by auth's events
//! (`events::members`).

use chrono::{DateTime, Utc};
use nexus_kernel::{Error, TenantId};
use nexus_platform::identity::{Principal, PrincipalKind};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::repo;

pub const NOT_A_MEMBER: &str = "messaging.not_a_member";

/// Refuses `user` as the owner or assignee named by `field` unless they are a current member of
/// the transaction's workspace. A signed-in user naming themselves passes without the lookup:
/// their token proves the membership, and the projection may not have caught up with a
/// sign-up a moment ago.
pub async fn require_member(
    tx: &mut PgConnection,
    p: &Principal,
    user: Uuid,
    field: &'static str,
) -> Result<(), Error> {
    if caller(p) == Some(user) {
        return Ok(());
    }
    if repo::members::is_member(tx, user).await? {
        Ok(())
    } else {
        Err(Error::invalid(NOT_A_MEMBER).with_violation(field, "not_a_member"))
    }
}

/// Of `users`, those the transaction's workspace does not have as current members; `caller` (a
/// signed-in user, whose token proves their membership) never counts as missing.
pub async fn not_members(
    tx: &mut PgConnection,
    caller: Option<Uuid>,
    users: &[Uuid],
) -> Result<std::collections::HashSet<Uuid>, Error> {
    let mut asked: Vec<Uuid> = users.iter().copied().filter(|u| Some(*u) != caller).collect();
    asked.sort_unstable();
    asked.dedup();
    if asked.is_empty() {
        return Ok(Default::default());
    }
    let current = repo::members::current_among(tx, &asked).await?;
    Ok(asked.into_iter().filter(|u| !current.contains(u)).collect())
}

/// The user a principal's token proves a member, if it is a signed-in user.
pub fn caller(p: &Principal) -> Option<Uuid> {
    (p.kind == PrincipalKind::User).then(|| p.user_id.as_uuid())
}

/// `user` joined the workspace (or created it) at `at`.
pub async fn joined(tx: &mut PgConnection, tenant: TenantId, user: Uuid, at: DateTime<Utc>) -> Result<(), Error> {
    repo::members::record(tx, tenant, user, true, at).await
}

/// `user` left the workspace at `at`.
pub async fn left(tx: &mut PgConnection, tenant: TenantId, user: Uuid, at: DateTime<Utc>) -> Result<(), Error> {
    repo::members::record(tx, tenant, user, false, at).await
}
