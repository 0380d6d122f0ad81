//! `workspaces`, `memberships` and `invitations`. Tenant tables: in a tenant transaction they
//! show one workspace; lookups across workspaces need a system transaction.

use chrono::{DateTime, Utc};
use nexus_kernel::Error;
use nexus_platform::db::DbResultExt;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::domain::mail::Recipient;
use crate::domain::{InvitationView, MemberView, Membership, PendingInvitation};

pub async fn insert(conn: &mut PgConnection, id: Uuid, name: &str, owner: Uuid) -> Result<(), Error> {
    sqlx::query("INSERT INTO workspaces (id, name, owner_id) VALUES ($1, $2, $3)")
        .bind(id)
        .bind(name)
        .bind(owner)
        .execute(conn)
        .await
        .db()?;
    Ok(())
}

pub async fn exists(conn: &mut PgConnection, id: Uuid) -> Result<bool, Error> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM workspaces WHERE id = $1)").bind(id).fetch_one(conn).await.db()
}

/// Adds a member; false when they are one already.
pub async fn add_member(conn: &mut PgConnection, workspace: Uuid, user: Uuid, role: &str) -> Result<bool, Error> {
    let joined = sqlx::query(
        "INSERT INTO memberships (tenant_id, user_id, role) VALUES ($1, $2, $3) ON CONFLICT (tenant_id, user_id) DO NOTHING",
    )
    .bind(workspace)
    .bind(user)
    .bind(role)
    .execute(conn)
    .await
    .db()?
    .rows_affected();
    Ok(joined == 1)
}

fn memberships(rows: Vec<(Uuid, String, String)>) -> Vec<Membership> {
    rows.into_iter()
        .map(|(workspace_id, workspace_name, role)| Membership { workspace_id, workspace_name, role })
        .collect()
}

/// Workspaces of a user, oldest membership first. Needs a system transaction (spans tenants).
pub async fn memberships_of(conn: &mut PgConnection, user: Uuid) -> Result<Vec<Membership>, Error> {
    let rows: Vec<(Uuid, String, String)> = sqlx::query_as(
        "SELECT w.id, w.name, m.role FROM memberships m \
         JOIN workspaces w ON w.id = m.tenant_id WHERE m.user_id = $1 ORDER BY m.created_at, w.id",
    )
    .bind(user)
    .fetch_all(conn)
    .await
    .db()?;
    Ok(memberships(rows))
}

pub async fn membership(conn: &mut PgConnection, user: Uuid, workspace: Uuid) -> Result<Option<Membership>, Error> {
    let row: Option<(Uuid, String, String)> = sqlx::query_as(
        "SELECT w.id, w.name, m.role FROM memberships m \
         JOIN workspaces w ON w.id = m.tenant_id WHERE m.user_id = $1 AND m.tenant_id = $2",
    )
    .bind(user)
    .bind(workspace)
    .fetch_optional(conn)
    .await
    .db()?;
    Ok(memberships(row.into_iter().collect()).pop())
}

/// The role of `user` in `workspace`, if a member.
pub async fn role_in(conn: &mut PgConnection, workspace: Uuid, user: Uuid) -> Result<Option<String>, Error> {
    sqlx::query_scalar("SELECT role FROM memberships WHERE tenant_id = $1 AND user_id = $2")
        .bind(workspace)
        .bind(user)
        .fetch_optional(conn)
        .await
        .db()
}

/// The role of a member of the transaction's workspace, their membership locked.
pub async fn role_for_update(conn: &mut PgConnection, user: Uuid) -> Result<Option<String>, Error> {
    sqlx::query_scalar("SELECT role FROM memberships WHERE user_id = $1 FOR UPDATE")
        .bind(user)
        .fetch_optional(conn)
        .await
        .db()
}

/// Removes a member of the transaction's workspace.
pub async fn remove_member(conn: &mut PgConnection, user: Uuid) -> Result<(), Error> {
    sqlx::query("DELETE FROM memberships WHERE user_id = $1").bind(user).execute(conn).await.db()?;
    Ok(())
}

/// Members of the transaction's workspace, in order of joining.
pub async fn members(conn: &mut PgConnection) -> Result<Vec<MemberView>, Error> {
    let rows: Vec<(Uuid, String, String, String, DateTime<Utc>)> = sqlx::query_as(
        "SELECT m.user_id, u.email, u.name, m.role, m.created_at FROM memberships m JOIN users u ON u.id = m.user_id ORDER BY m.created_at",
    )
    .fetch_all(conn)
    .await
    .db()?;
    Ok(rows
        .into_iter()
        .map(|(user_id, email, name, role, joined_at)| MemberView { user_id, email, name, role, joined_at })
        .collect())
}

/// Who answers for the transaction's workspace's integrations: its owner and admins (the roles
/// that may change webhook endpoints), each in their language; people who asked for their
/// account's deletion are left out.
pub async fn integration_admins(conn: &mut PgConnection) -> Result<Vec<Recipient>, Error> {
    let rows: Vec<(String, String, Option<String>)> = sqlx::query_as(
        "SELECT u.email, u.name, s.locale FROM memberships m JOIN users u ON u.id = m.user_id \
         LEFT JOIN user_settings s ON s.user_id = u.id \
         WHERE m.role IN ('owner', 'admin') AND u.deletion_requested_at IS NULL ORDER BY m.created_at, u.id",
    )
    .fetch_all(conn)
    .await
    .db()?;
    Ok(rows
        .into_iter()
        .map(|(email, name, locale)| Recipient {
            email,
            name,
            locale: locale.and_then(|l| l.parse().ok()).unwrap_or_default(),
        })
        .collect())
}

/// Whether the address belongs to a member of the transaction's workspace.
pub async fn email_is_member(conn: &mut PgConnection, email: &str) -> Result<bool, Error> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM memberships m JOIN users u ON u.id = m.user_id WHERE u.email = $1)",
    )
    .bind(email)
    .fetch_one(conn)
    .await
    .db()
}

/// `(inviter's name, workspace name)` for an invitation mail.
pub async fn invitation_names(
    conn: &mut PgConnection,
    inviter: Uuid,
    workspace: Uuid,
) -> Result<(String, String), Error> {
    sqlx::query_as("SELECT u.name, w.name FROM users u, workspaces w WHERE u.id = $1 AND w.id = $2")
        .bind(inviter)
        .bind(workspace)
        .fetch_one(conn)
        .await
        .db()
}

fn invitation((id, email, role, expires_at): (Uuid, String, String, DateTime<Utc>)) -> InvitationView {
    InvitationView { id, email, role, expires_at }
}

/// Open invitations of the transaction's workspace, oldest first.
pub async fn open_invitations(conn: &mut PgConnection) -> Result<Vec<InvitationView>, Error> {
    let rows: Vec<(Uuid, String, String, DateTime<Utc>)> = sqlx::query_as(
        "SELECT id, email, role, expires_at FROM invitations WHERE accepted_at IS NULL AND revoked_at IS NULL AND expires_at > now() ORDER BY created_at",
    )
    .fetch_all(conn)
    .await
    .db()?;
    Ok(rows.into_iter().map(invitation).collect())
}

/// An invitation to insert, valid for seven days.
pub struct NewInvitation<'a> {
    pub id: Uuid,
    pub workspace: Uuid,
    pub email: &'a str,
    pub role: &'a str,
    pub token_hash: &'a [u8],
    pub invited_by: Uuid,
}

pub async fn insert_invitation(conn: &mut PgConnection, i: &NewInvitation<'_>) -> Result<InvitationView, Error> {
    let row = sqlx::query_as(
        "INSERT INTO invitations (id, tenant_id, email, role, token_hash, invited_by, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, now() + interval '7 days') RETURNING id, email, role, expires_at",
    )
    .bind(i.id)
    .bind(i.workspace)
    .bind(i.email)
    .bind(i.role)
    .bind(i.token_hash)
    .bind(i.invited_by)
    .fetch_one(conn)
    .await
    .db()?;
    Ok(invitation(row))
}

/// The open invitation of a token (by its hash), locked for acceptance.
pub async fn pending_invitation(
    conn: &mut PgConnection,
    token_hash: &[u8],
) -> Result<Option<PendingInvitation>, Error> {
    let row: Option<(Uuid, Uuid, String, String)> = sqlx::query_as(
        "SELECT id, tenant_id, email, role FROM invitations WHERE token_hash = $1 AND accepted_at IS NULL AND revoked_at IS NULL AND expires_at > now() FOR UPDATE",
    )
    .bind(token_hash)
    .fetch_optional(conn)
    .await
    .db()?;
    Ok(row.map(|(id, workspace_id, email, role)| PendingInvitation { id, workspace_id, email, role }))
}

pub async fn mark_accepted(conn: &mut PgConnection, invitation: Uuid) -> Result<(), Error> {
    sqlx::query("UPDATE invitations SET accepted_at = now() WHERE id = $1")
        .bind(invitation)
        .execute(conn)
        .await
        .db()?;
    Ok(())
}

/// Ownership transfer, inside a tenant transaction of the workspace: locks the workspace row
/// (transfers of one workspace run one at a time) and the memberships of `users`; returns their
/// current roles.
pub async fn lock_for_transfer(
    conn: &mut PgConnection,
    workspace: Uuid,
    users: &[Uuid],
) -> Result<Vec<(Uuid, String)>, Error> {
    sqlx::query("SELECT 1 FROM workspaces WHERE id = $1 FOR UPDATE").bind(workspace).execute(&mut *conn).await.db()?;
    sqlx::query_as("SELECT user_id, role FROM memberships WHERE user_id = ANY($1) ORDER BY user_id FOR UPDATE")
        .bind(users)
        .fetch_all(conn)
        .await
        .db()
}

/// `to` becomes the owner, `from` an admin.
pub async fn hand_over(conn: &mut PgConnection, from: Uuid, to: Uuid) -> Result<(), Error> {
    sqlx::query(
        "UPDATE memberships SET role = CASE WHEN user_id = $1 THEN 'owner' ELSE 'admin' END WHERE user_id = ANY($2)",
    )
    .bind(to)
    .bind(vec![from, to])
    .execute(&mut *conn)
    .await
    .db()?;
    sqlx::query("UPDATE workspaces SET owner_id = $1").bind(to).execute(conn).await.db()?;
    Ok(())
}
