//! Workspaces and their members. Tenant operations run in tenant transactions, so an id from
//! another workspace finds nothing (404) by Row Level Security, not by a forgotten WHERE.

use nexus_kernel::{Error, ErrorKind, Locale, UserId, WorkspaceId};
use nexus_platform::db;
use nexus_platform::identity::{Action, Principal, Role};
use uuid::Uuid;

use super::{App, Client, Issued, mail};
use crate::domain::{self, Email, InvitationView, MemberView, Membership};
use crate::events;
use crate::repo::{self, sessions::Revoke, throttles};

/// Ids in requests are prefixed typed ids; anything else names nothing.
fn user_id(raw: &str) -> Result<Uuid, Error> {
    UserId::parse(raw).map(|u| u.as_uuid()).map_err(|_| Error::not_found("request.not_found"))
}

impl App {
    /// The caller's workspaces, across tenants: a signed-in user's only (an API key is bound to
    /// one workspace and must not learn its creator's others).
    #[tracing::instrument(skip_all)]
    pub async fn list_workspaces(&self, p: &Principal) -> Result<Vec<Membership>, Error> {
        self.require_live(p).await?;
        App::require_user(p)?;
        let mut tx = db::system(&self.pool).await?;
        repo::workspaces::memberships_of(&mut tx, p.user_id.as_uuid()).await
    }

    #[tracing::instrument(skip_all, fields(workspace = %workspace))]
    pub async fn switch_workspace(&self, p: &Principal, workspace: &str, client: &Client) -> Result<Issued, Error> {
        self.require_live(p).await?;
        App::require_user(p)?;
        let ws = WorkspaceId::parse(workspace).map_err(|_| Error::not_found("request.not_found"))?;
        let mut tx = db::system(&self.pool).await?;
        let m = repo::workspaces::membership(&mut tx, p.user_id.as_uuid(), ws.as_uuid())
            .await?
            .ok_or_else(|| Error::not_found("request.not_found"))?;
        let user = repo::users::by_id(&mut tx, p.user_id.as_uuid(), false)
            .await?
            .ok_or_else(|| Error::unauthenticated("auth.unauthenticated"))?;
        let issued = self.open_session_like(&mut tx, p, user, m, client).await?;
        db::commit(tx).await?;
        Ok(issued)
    }

    #[tracing::instrument(skip_all)]
    pub async fn list_members(&self, p: &Principal) -> Result<(Vec<MemberView>, Vec<InvitationView>), Error> {
        self.require_live(p).await?;
        p.require(Action::Read)?;
        let mut tx = db::tenant(&self.pool, p.workspace_id).await?;
        let members = repo::workspaces::members(&mut tx).await?;
        let invitations = repo::workspaces::open_invitations(&mut tx).await?;
        Ok((members, invitations))
    }

    #[tracing::instrument(skip_all)]
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
        let mut tx = db::tenant(&self.pool, p.workspace_id).await?;
        // Budgets per workspace (a day) and per inviter (an hour): invitations are mail to
        // addresses of the inviter's choosing.
        let cfg = &self.cfg.auth;
        for (key, budget, window) in [
            (format!("invite:ws:{}", p.workspace_id), cfg.invitations_per_workspace_per_day, 86_400),
            (format!("invite:user:{}", p.user_id), cfg.invitations_per_inviter_per_hour, 3_600),
        ] {
            if let Some(until) = throttles::spend(&mut tx, &key, budget, std::time::Duration::from_secs(window)).await?
            {
                return Err(super::locked_error("auth.invitations_rate_limited", until));
            }
        }
        let already = repo::workspaces::email_is_member(&mut tx, email.as_str()).await?;
        if already {
            return Err(Error::new(ErrorKind::Conflict, "auth.already_member"));
        }
        let token = domain::random_token("nxi_");
        let id = Uuid::now_v7();
        let token_hash = domain::token_hash(&token);
        let new = repo::workspaces::NewInvitation {
            id,
            workspace: p.workspace_id.as_uuid(),
            email: email.as_str(),
            role: role.as_str(),
            token_hash: &token_hash,
            invited_by: p.user_id.as_uuid(),
        };
        let invitation = repo::workspaces::insert_invitation(&mut tx, &new).await?;
        let (inviter, workspace) =
            repo::workspaces::invitation_names(&mut tx, p.user_id.as_uuid(), p.workspace_id.as_uuid()).await?;
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
        events::member_invited(&mut tx, p.workspace_id, id, role.as_str()).await?;
        db::commit(tx).await?;
        Ok(invitation)
    }

    /// The invitee, signed in with the invited email, joins and gets a session in the workspace.
    #[tracing::instrument(skip_all)]
    pub async fn accept_invite(&self, p: &Principal, token: &str, client: &Client) -> Result<Issued, Error> {
        self.require_live(p).await?;
        App::require_user(p)?;
        let mut tx = db::system(&self.pool).await?;
        let inv = repo::workspaces::pending_invitation(&mut tx, &domain::token_hash(token))
            .await?
            .ok_or_else(|| Error::invalid("auth.invite_invalid"))?;
        let (id, workspace, email, role) = (inv.id, inv.workspace_id, inv.email, inv.role);
        let user = repo::users::by_id(&mut tx, p.user_id.as_uuid(), false)
            .await?
            .ok_or_else(|| Error::unauthenticated("auth.unauthenticated"))?;
        if user.email != email {
            return Err(Error::forbidden("auth.invite_email_mismatch"));
        }
        if !repo::workspaces::add_member(&mut tx, workspace, user.id, &role).await? {
            return Err(Error::new(ErrorKind::Conflict, "auth.already_member"));
        }
        repo::workspaces::mark_accepted(&mut tx, id).await?;
        events::member_joined(&mut tx, WorkspaceId::from_uuid(workspace), p.user_id, &role).await?;
        let m = repo::workspaces::membership(&mut tx, user.id, workspace)
            .await?
            .ok_or_else(|| Error::internal("membership vanished"))?;
        let issued = self.open_session_like(&mut tx, p, user, m, client).await?;
        db::commit(tx).await?;
        Ok(issued)
    }

    #[tracing::instrument(skip_all, fields(member = %member))]
    pub async fn remove_member(&self, p: &Principal, member: &str) -> Result<(), Error> {
        self.require_live(p).await?;
        p.require(Action::ManageMembers)?;
        let target = user_id(member)?;
        let mut tx = db::tenant(&self.pool, p.workspace_id).await?;
        let role = repo::workspaces::role_for_update(&mut tx, target)
            .await?
            .ok_or_else(|| Error::not_found("request.not_found"))?;
        let role: Role = role.parse()?;
        if role == Role::Owner {
            return Err(Error::new(ErrorKind::FailedPrecondition, "auth.cannot_remove_owner"));
        }
        if role == Role::Admin && p.role != Role::Owner {
            return Err(Error::forbidden("auth.role_insufficient"));
        }
        repo::workspaces::remove_member(&mut tx, target).await?;
        // Their sessions in this workspace end now.
        let families =
            repo::sessions::revoke(&mut tx, Revoke::InWorkspace { user: target, workspace: p.workspace_id.as_uuid() })
                .await?;
        events::sessions_revoked(&mut tx, target, &families, "removed_from_workspace").await?;
        events::member_removed(&mut tx, p.workspace_id, target).await?;
        db::commit(tx).await
    }

    /// Makes `member` the owner and the caller an admin, at once: the caller's sessions in this
    /// workspace end (their access tokens stop working fleet-wide through the revocation feed).
    /// The workspace row is locked first, so concurrent transfers run one after the other and
    /// the second finds the caller no longer owner: exactly one owner remains.
    #[tracing::instrument(skip_all, fields(member = %member))]
    pub async fn transfer_ownership(&self, p: &Principal, member: &str) -> Result<(), Error> {
        self.require_live(p).await?;
        App::require_user(p)?;
        p.require(Action::OwnWorkspace)?;
        let target = user_id(member)?;
        let me = p.user_id.as_uuid();
        if target == me {
            return Ok(());
        }
        let mut tx = db::tenant(&self.pool, p.workspace_id).await?;
        let roles = repo::workspaces::lock_for_transfer(&mut tx, p.workspace_id.as_uuid(), &[me, target]).await?;
        let role_of = |u: Uuid| roles.iter().find(|(id, _)| *id == u).map(|(_, r)| r.as_str());
        // The token may predate an earlier transfer: the row decides.
        if role_of(me) != Some("owner") {
            return Err(Error::forbidden("auth.role_insufficient"));
        }
        if role_of(target).is_none() {
            return Err(Error::not_found("request.not_found"));
        }
        repo::workspaces::hand_over(&mut tx, me, target).await?;
        let families =
            repo::sessions::revoke(&mut tx, Revoke::InWorkspace { user: me, workspace: p.workspace_id.as_uuid() })
                .await?;
        events::sessions_revoked(&mut tx, me, &families, "ownership_transferred").await?;
        db::commit(tx).await
    }
}
