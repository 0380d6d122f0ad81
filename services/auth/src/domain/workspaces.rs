//! Workspaces and their members.

use chrono::{DateTime, Utc};
use uuid::Uuid;

/// A user's place in a workspace.
#[derive(Debug, Clone)]
pub struct Membership {
    pub workspace_id: Uuid,
    pub workspace_name: String,
    pub role: String,
}

#[derive(Debug, Clone)]
pub struct MemberView {
    pub user_id: Uuid,
    pub email: String,
    pub name: String,
    pub role: String,
    pub joined_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct InvitationView {
    pub id: Uuid,
    pub email: String,
    pub role: String,
    pub expires_at: DateTime<Utc>,
}

/// An open invitation found by its token, as acceptance reads it.
#[derive(Debug, Clone)]
pub struct PendingInvitation {
    pub id: Uuid,
    pub workspace_id: Uuid,
    pub email: String,
    pub role: String,
}
