//! Workspaces and their members. Tenant operations run in tenant transactions, so an id from
//! another workspace finds nothing (404) by Row Level Security, not by a forgotten WHERE.

use chrono::{DateTime, Utc};
use nexus_kernel::{Error, ErrorKind, Locale, UserId, WorkspaceId};
use nexus_platform::db::{begin_system, begin_tenant};
use nexus_platform::identity::{Action, Principal, Role};
use nexus_platform::outbox::enqueue;
use nexus_proto::events;
use uuid::Uuid;

use super::{App, Client, Issued};
use crate::domain::{self, Email};
use crate::mail;
use crate::repo::{self, MembershipRow, db, throttle};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct MemberView {
    pub user_id: Uuid,
    pub email: String,
    pub name: String,
    pub role: String,
    pub joined_at: DateTime<Utc>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct InvitationView {
    pub id: Uuid,
    pub email: String,
    pub role: String,
    pub expires_at: DateTime<Utc>,
}

/// Ids in requests are prefixed typed ids; anything else names nothing.
fn user_id(raw: &str) -> Result<Uuid, Error> {
    UserId::parse(raw).map(|u| u.as_uuid()).map_err(|_| Error::not_found("request.not_found"))
}

impl App {
    /// The caller's workspaces, across tenants: a signed-in user's only (an API key is bound to
    /// one workspace and must not learn its creator's others).
    pub async fn list_workspaces(&self, p: &Principal) -> Result<Vec<MembershipRow>, Error> {
        self.require_live(p).await?;
        App::require_user(p)?;
        let mut tx = begin_system(&self.pool).await.map_err(db)?;
        repo::memberships_of(&mut tx, p.user_id.as_uuid()).await
    }

    pub async fn switch_workspace(&self, p: &Principal, workspace: &str, client: &Client) -> Result<Issued, Error> {
        self.require_live(p).await?;
        App::require_user(p)?;
        let ws = WorkspaceId::parse(workspace).map_err(|_| Error::not_found("request.not_found"))?;
        let mut tx = begin_system(&self.pool).await.map_err(db)?;
        let m = repo::membership(&mut tx, p.user_id.as_uuid(), ws.as_uuid())
            .await?
            .ok_or_else(|| Error::not_found("request.not_found"))?;
        let user = repo::user_by_id(&mut tx, p.user_id.as_uuid(), false)
            .await?
            .ok_or_else(|| Error::unauthenticated("auth.unauthenticated"))?;
        let issued = self.open_session_like(&mut tx, p, user, m, client).await?;
        tx.commit().await.map_err(db)?;
        Ok(issued)
    }

    pub async fn list_members(&self, p: &Principal) -> Result<(Vec<MemberView>, Vec<InvitationView>), Error> {
        self.require_live(p).await?;
        p.require(Action::Read)?;
        let mut tx = begin_tenant(&self.pool, p.workspace_id).await.map_err(db)?;
        let members: Vec<MemberView> = sqlx::query_as(
            "SELECT m.user_id, u.email, u.name, m.role, m.created_at AS joined_at FROM memberships m JOIN users u ON u.id = m.user_id ORDER BY m.created_at",
        )
        .fetch_all(&mut *tx)
        .await
        .map_err(db)?;
        let invitations: Vec<InvitationView> = sqlx::query_as(
            "SELECT id, email, role, expires_at FROM invitations WHERE accepted_at IS NULL AND revoked_at IS NULL AND expires_at > now() ORDER BY created_at",
        )
        .fetch_all(&mut *tx)
        .await
        .map_err(db)?;
        Ok((members, invitations))
    }

    pub async fn invite_member(
        &self,
        p: &Principal,
        email: &str,
        role: &str,
        locale: Locale,
    ) -> Result<InvitationView, Error> {
        self.require_live(p).await?;
        p.require(Action::ManageMembers)?;
        let email = Email::parse(email)?;
        let role: Role = role.parse()?;
        if role == Role::Owner {
            return Err(Error::invalid("auth.invalid_role").with_param("role", "owner"));
        }
        // Only an owner may create admins.
        if role == Role::Admin && p.role != Role::Owner {
            return Err(Error::forbidden("auth.role_insufficient"));
        }
        let mut tx = begin_tenant(&self.pool, p.workspace_id).await.map_err(db)?;
        // Budgets per workspace (a day) and per inviter (an hour): invitations are mail to
        // addresses of the inviter's choosing.
        let cfg = &self.cfg.auth;
        for (key, budget, window) in [
            (format!("invite:ws:{}", p.workspace_id), cfg.invitations_per_workspace_per_day, 86_400),
            (format!("invite:user:{}", p.user_id), cfg.invitations_per_inviter_per_hour, 3_600),
        ] {
            if let Some(until) = throttle::spend(&mut tx, &key, budget, std::time::Duration::from_secs(window)).await? {
                return Err(super::locked_error("auth.invitations_rate_limited", until));
            }
        }
        let already: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM memberships m JOIN users u ON u.id = m.user_id WHERE u.email = $1)",
        )
        .bind(email.as_str())
        .fetch_one(&mut *tx)
        .await
        .map_err(db)?;
        if already {
            return Err(Error::new(ErrorKind::Conflict, "auth.already_member"));
        }
        let token = domain::random_token("nxi_");
        let id = Uuid::now_v7();
        let invitation: InvitationView = sqlx::query_as(
            "INSERT INTO invitations (id, tenant_id, email, role, token_hash, invited_by, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, now() + interval '7 days') RETURNING id, email, role, expires_at",
        )
        .bind(id)
        .bind(p.workspace_id.as_uuid())
        .bind(email.as_str())
        .bind(role.as_str())
        .bind(domain::token_hash(&token))
        .bind(p.user_id.as_uuid())
        .fetch_one(&mut *tx)
        .await
        .map_err(db)?;
        let (inviter, workspace): (String, String) =
            sqlx::query_as("SELECT u.name, w.name FROM users u, workspaces w WHERE u.id = $1 AND w.id = $2")
                .bind(p.user_id.as_uuid())
                .bind(p.workspace_id.as_uuid())
                .fetch_one(&mut *tx)
                .await
                .map_err(db)?;
        let role_name = nexus_i18n::try_message(locale, &format!("role-{}", role.as_str()), &[])
            .unwrap_or_else(|| role.as_str().into());
        let link = self.link("/accept-invite", &token);
        mail::enqueue(
            &mut tx,
            email.as_str(),
            locale,
            "invite",
            &[("inviter", &inviter), ("workspace", &workspace), ("role", &role_name), ("link", &link), ("days", "7")],
        )
        .await?;
        enqueue(
            &mut tx,
            "nexus.auth.member.invited",
            Some(p.workspace_id),
            &events::MemberInvited {
                workspace_id: p.workspace_id.to_string(),
                invitation_id: id.to_string(),
                role: role.as_str().into(),
            },
        )
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(invitation)
    }

    /// The invitee, signed in with the invited email, joins and gets a session in the workspace.
    pub async fn accept_invite(&self, p: &Principal, token: &str, client: &Client) -> Result<Issued, Error> {
        self.require_live(p).await?;
        App::require_user(p)?;
        let mut tx = begin_system(&self.pool).await.map_err(db)?;
        let inv: Option<(Uuid, Uuid, String, String)> = sqlx::query_as(
            "SELECT id, tenant_id, email, role FROM invitations WHERE token_hash = $1 AND accepted_at IS NULL AND revoked_at IS NULL AND expires_at > now() FOR UPDATE",
        )
        .bind(domain::token_hash(token))
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?;
        let (id, workspace, email, role) = inv.ok_or_else(|| Error::invalid("auth.invite_invalid"))?;
        let user = repo::user_by_id(&mut tx, p.user_id.as_uuid(), false)
            .await?
            .ok_or_else(|| Error::unauthenticated("auth.unauthenticated"))?;
        if user.email != email {
            return Err(Error::forbidden("auth.invite_email_mismatch"));
        }
        let joined = sqlx::query("INSERT INTO memberships (tenant_id, user_id, role) VALUES ($1, $2, $3) ON CONFLICT (tenant_id, user_id) DO NOTHING")
            .bind(workspace)
            .bind(user.id)
            .bind(&role)
            .execute(&mut *tx)
            .await
            .map_err(db)?
            .rows_affected();
        if joined == 0 {
            return Err(Error::new(ErrorKind::Conflict, "auth.already_member"));
        }
        sqlx::query("UPDATE invitations SET accepted_at = now() WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        let ws = WorkspaceId::from_uuid(workspace);
        enqueue(
            &mut tx,
            "nexus.auth.member.joined",
            Some(ws),
            &events::MemberJoined { workspace_id: ws.to_string(), user_id: p.user_id.to_string(), role: role.clone() },
        )
        .await
        .map_err(db)?;
        let m = repo::membership(&mut tx, user.id, workspace)
            .await?
            .ok_or_else(|| Error::internal("membership vanished"))?;
        let issued = self.open_session_like(&mut tx, p, user, m, client).await?;
        tx.commit().await.map_err(db)?;
        Ok(issued)
    }

    pub async fn remove_member(&self, p: &Principal, member: &str) -> Result<(), Error> {
        self.require_live(p).await?;
        p.require(Action::ManageMembers)?;
        let target = user_id(member)?;
        let mut tx = begin_tenant(&self.pool, p.workspace_id).await.map_err(db)?;
        let role: String = sqlx::query_scalar("SELECT role FROM memberships WHERE user_id = $1 FOR UPDATE")
            .bind(target)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db)?
            .ok_or_else(|| Error::not_found("request.not_found"))?;
        let role: Role = role.parse()?;
        if role == Role::Owner {
            return Err(Error::new(ErrorKind::FailedPrecondition, "auth.cannot_remove_owner"));
        }
        if role == Role::Admin && p.role != Role::Owner {
            return Err(Error::forbidden("auth.role_insufficient"));
        }
        sqlx::query("DELETE FROM memberships WHERE user_id = $1").bind(target).execute(&mut *tx).await.map_err(db)?;
        // Their sessions in this workspace end now.
        let families = repo::revoke_in_workspace(&mut tx, target, p.workspace_id.as_uuid()).await?;
        Self::emit_revoked(&mut tx, target, &families, "removed_from_workspace").await?;
        enqueue(
            &mut tx,
            "nexus.auth.member.removed",
            Some(p.workspace_id),
            &events::MemberRemoved {
                workspace_id: p.workspace_id.to_string(),
                user_id: UserId::from_uuid(target).to_string(),
            },
        )
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)
    }

    /// Makes `member` the owner and the caller an admin, at once: the caller's sessions in this
    /// workspace end (their access tokens stop working fleet-wide through the revocation feed).
    /// The workspace row is locked first, so concurrent transfers run one after the other and
    /// the second finds the caller no longer owner: exactly one owner remains.
    pub async fn transfer_ownership(&self, p: &Principal, member: &str) -> Result<(), Error> {
        self.require_live(p).await?;
        App::require_user(p)?;
        p.require(Action::OwnWorkspace)?;
        let target = user_id(member)?;
        let me = p.user_id.as_uuid();
        if target == me {
            return Ok(());
        }
        let mut tx = begin_tenant(&self.pool, p.workspace_id).await.map_err(db)?;
        let roles = repo::ownership::lock(&mut tx, p.workspace_id.as_uuid(), &[me, target]).await?;
        let role_of = |u: Uuid| roles.iter().find(|(id, _)| *id == u).map(|(_, r)| r.as_str());
        // The token may predate an earlier transfer: the row decides.
        if role_of(me) != Some("owner") {
            return Err(Error::forbidden("auth.role_insufficient"));
        }
        if role_of(target).is_none() {
            return Err(Error::not_found("request.not_found"));
        }
        repo::ownership::hand_over(&mut tx, me, target).await?;
        let families = repo::revoke_in_workspace(&mut tx, me, p.workspace_id.as_uuid()).await?;
        Self::emit_revoked(&mut tx, me, &families, "ownership_transferred").await?;
        tx.commit().await.map_err(db)
    }
}
