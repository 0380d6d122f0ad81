//! The events auth emits, written to the outbox in the transaction of the change they announce,
//! and the ones it consumes: messaging's `webhook_endpoint.disabled` and the ads scheduler's
//! `post.failed` and `account.paused` become mail to the workspace's owner and admins
//! ([`notices`]).

pub mod notices;

use nexus_kernel::{Error, UserId, WorkspaceId};
use nexus_platform::db::DbResultExt;
use nexus_platform::outbox::enqueue;
use nexus_proto::events;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::app::Issued;

async fn emit<M>(conn: &mut PgConnection, subject: &str, ws: Option<WorkspaceId>, event: &M) -> Result<(), Error>
where
    M: prost::Message + prost::Name,
{
    enqueue(conn, subject, ws, event).await.db()?;
    Ok(())
}

fn user(id: Uuid) -> String {
    UserId::from_uuid(id).to_string()
}

pub async fn signed_up(
    conn: &mut PgConnection,
    user_id: Uuid,
    workspace: Uuid,
    email: &str,
    locale: &str,
) -> Result<(), Error> {
    let ws = WorkspaceId::from_uuid(workspace);
    let event = events::UserSignedUp {
        user_id: user(user_id),
        workspace_id: ws.to_string(),
        email: email.into(),
        locale: locale.into(),
    };
    emit(conn, "nexus.auth.user.signed_up", Some(ws), &event).await
}

/// A sign-in opened the session of `issued` with `method` (`pwd+otp`, `oauth:google`, …).
pub async fn logged_in(conn: &mut PgConnection, issued: &Issued, ip: &str, method: &str) -> Result<(), Error> {
    let ws = WorkspaceId::from_uuid(issued.workspace.workspace_id);
    let event = events::UserLoggedIn {
        user_id: user(issued.user.id),
        workspace_id: ws.to_string(),
        session_id: issued.session_id.to_string(),
        ip: ip.into(),
        method: method.into(),
    };
    emit(conn, "nexus.auth.user.logged_in", Some(ws), &event).await
}

pub async fn login_failed(conn: &mut PgConnection, email_hash: String, ip: &str) -> Result<(), Error> {
    let event = events::LoginFailed { email_hash, ip: ip.into(), reason: "invalid_credentials".into() };
    emit(conn, "nexus.auth.login.failed", None, &event).await
}

/// One event per ended session family: every service drops the family's tokens.
pub async fn sessions_revoked(
    conn: &mut PgConnection,
    user_id: Uuid,
    families: &[Uuid],
    reason: &str,
) -> Result<(), Error> {
    for f in families {
        let event = events::SessionRevoked { user_id: user(user_id), session_id: f.to_string(), reason: reason.into() };
        emit(&mut *conn, "nexus.auth.session.revoked", None, &event).await?;
    }
    Ok(())
}

pub async fn user_locked(conn: &mut PgConnection, user_id: Uuid, minutes: u32, factor: &str) -> Result<(), Error> {
    let event = events::UserLocked { user_id: user(user_id), minutes, factor: factor.into() };
    emit(conn, "nexus.auth.user.locked", None, &event).await
}

pub async fn mfa_enabled(conn: &mut PgConnection, user_id: Uuid) -> Result<(), Error> {
    emit(conn, "nexus.auth.mfa.enabled", None, &events::MfaEnabled { user_id: user(user_id) }).await
}

/// The other services erase what they hold of the person.
pub async fn account_deletion_requested(conn: &mut PgConnection, user_id: Uuid) -> Result<(), Error> {
    let event = events::AccountDeletionRequested { user_id: user(user_id) };
    emit(conn, "nexus.auth.account.deletion_requested", None, &event).await
}

pub async fn api_key_created(
    conn: &mut PgConnection,
    ws: WorkspaceId,
    key: Uuid,
    scopes: Vec<String>,
) -> Result<(), Error> {
    let event = events::ApiKeyCreated { key_id: key.to_string(), workspace_id: ws.to_string(), scopes };
    emit(conn, "nexus.auth.api_key.created", Some(ws), &event).await
}

pub async fn api_key_revoked(conn: &mut PgConnection, ws: WorkspaceId, key: Uuid) -> Result<(), Error> {
    let event = events::ApiKeyRevoked { key_id: key.to_string(), workspace_id: ws.to_string() };
    emit(conn, "nexus.auth.api_key.revoked", Some(ws), &event).await
}

pub async fn member_invited(
    conn: &mut PgConnection,
    ws: WorkspaceId,
    invitation: Uuid,
    role: &str,
) -> Result<(), Error> {
    let event = events::MemberInvited {
        workspace_id: ws.to_string(),
        invitation_id: invitation.to_string(),
        role: role.into(),
    };
    emit(conn, "nexus.auth.member.invited", Some(ws), &event).await
}

pub async fn member_joined(conn: &mut PgConnection, ws: WorkspaceId, user_id: UserId, role: &str) -> Result<(), Error> {
    let event = events::MemberJoined { workspace_id: ws.to_string(), user_id: user_id.to_string(), role: role.into() };
    emit(conn, "nexus.auth.member.joined", Some(ws), &event).await
}

pub async fn member_removed(conn: &mut PgConnection, ws: WorkspaceId, user_id: Uuid) -> Result<(), Error> {
    let event = events::MemberRemoved { workspace_id: ws.to_string(), user_id: user(user_id) };
    emit(conn, "nexus.auth.member.removed", Some(ws), &event).await
}
