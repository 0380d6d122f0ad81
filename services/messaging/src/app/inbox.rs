//! The shared inbox: conversations listed with their unread counts, assigned to a member,
//! resolved and reopened, read; and the live feed of a workspace's inbox.
//!
//! The feed follows the events every change writes to the outbox, as the relay publishes them
//! to NATS (a plain subscription next to JetStream's): whichever replica stored a message, every
//! replica serving a watcher sees it.

use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::{Stream, StreamExt as _};
use nexus_kernel::ids::UserId;
use nexus_kernel::{Error, Page, PageRequest, TenantId};
use nexus_platform::db::{self, Keyset};
use nexus_platform::identity::{Action, Principal};
use nexus_proto::events as ev;
use uuid::Uuid;

use super::parse_id;
use super::whatsapp::WhatsApp;
use crate::events::whatsapp as events;
use crate::repo::inbox::{self as repo, ConversationRow, Filter};

/// How long one watch lasts at most (it also ends when the process starts stopping); clients
/// reconnect.
const WATCH_FOR: Duration = Duration::from_secs(3600);

/// A conversation as shown.
#[derive(Debug, Clone, PartialEq)]
pub struct Conversation {
    pub row: ConversationRow,
    /// `usr_…` of the assignee.
    pub assigned_to: Option<String>,
}

fn view(row: ConversationRow) -> Conversation {
    let assigned_to = row.assigned_to.map(|u| UserId::from_uuid(u).to_string());
    Conversation { row, assigned_to }
}

/// One change of a workspace's inbox, as the live feed shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboxEvent {
    /// `message` or `conversation`.
    pub kind: &'static str,
    pub number_id: String,
    pub contact_id: String,
    pub message_id: String,
    pub direction: &'static str,
    /// A message's status, or what changed about the conversation.
    pub status: String,
    pub at: Option<DateTime<Utc>>,
}

/// What a person does to a conversation.
#[derive(Debug, Clone, Copy)]
enum Change {
    Assign(Option<Uuid>),
    Resolve(bool),
    Read,
}

impl WhatsApp {
    pub async fn conversations(
        &self,
        p: &Principal,
        filter: &str,
        number: &str,
        page: &PageRequest,
    ) -> Result<Page<Conversation>, Error> {
        p.require(Action::Read)?;
        let filter = match filter.trim() {
            "" | "open" => Filter::Open,
            "mine" => Filter::AssignedTo(p.user_id.as_uuid()),
            "unassigned" => Filter::Unassigned,
            "resolved" => Filter::Resolved,
            "all" => Filter::All,
            other => {
                return Err(Error::invalid("messaging.whatsapp_inbox_filter_invalid").with_param("filter", other));
            }
        };
        let number = if number.trim().is_empty() {
            None
        } else {
            Some(parse_id(number, "messaging.whatsapp_number_not_found")?)
        };
        let keyset = Keyset::new(page)?;
        let mut tx = db::tenant(&self.pool, p.workspace_id).await?;
        if let Some(n) = number {
            crate::repo::whatsapp::number(&mut tx, n)
                .await?
                .ok_or_else(|| Error::not_found("messaging.whatsapp_number_not_found"))?;
        }
        let rows = repo::list(&mut tx, filter, number, &keyset).await?;
        db::commit(tx).await?;
        Ok(Page { items: rows.items.into_iter().map(view).collect(), next_cursor: rows.next_cursor })
    }

    /// Assigns the conversation to a current member (an empty user id unassigns).
    pub async fn assign(&self, p: &Principal, number: &str, contact: &str, user: &str) -> Result<Conversation, Error> {
        p.require(Action::Write)?;
        let user = if user.trim().is_empty() {
            None
        } else {
            let parsed = UserId::parse(user.trim())
                .map_err(|_| Error::invalid(super::members::NOT_A_MEMBER).with_violation("user_id", "not_a_member"))?;
            Some(parsed.as_uuid())
        };
        self.change(p, number, contact, Change::Assign(user)).await
    }

    /// Resolves the conversation, or reopens it.
    pub async fn resolve(
        &self,
        p: &Principal,
        number: &str,
        contact: &str,
        resolved: bool,
    ) -> Result<Conversation, Error> {
        p.require(Action::Write)?;
        self.change(p, number, contact, Change::Resolve(resolved)).await
    }

    /// Resets the unread count (readers may: reading is what they do).
    pub async fn mark_read(&self, p: &Principal, number: &str, contact: &str) -> Result<Conversation, Error> {
        p.require(Action::Read)?;
        self.change(p, number, contact, Change::Read).await
    }

    /// Locks the conversation, applies `change` and — when it changed something — announces it
    /// in the same transaction.
    async fn change(&self, p: &Principal, number: &str, contact: &str, change: Change) -> Result<Conversation, Error> {
        let number = parse_id(number, "messaging.whatsapp_conversation_not_found")?;
        let contact = parse_id(contact, "messaging.whatsapp_conversation_not_found")?;
        let tenant = p.workspace_id;
        let mut tx = db::tenant(&self.pool, tenant).await?;
        let (assigned, resolved) = repo::lock(&mut tx, number, contact)
            .await?
            .ok_or_else(|| Error::not_found("messaging.whatsapp_conversation_not_found"))?;
        let done = match change {
            Change::Assign(user) => {
                if let Some(u) = user {
                    super::members::require_member(&mut tx, p, u, "user_id").await?;
                }
                if assigned == user {
                    None
                } else {
                    repo::set_assignee(&mut tx, number, contact, user).await?;
                    Some(if user.is_some() { "assigned" } else { "unassigned" })
                }
            }
            Change::Resolve(to) if to != resolved => {
                repo::set_resolved(&mut tx, number, contact, to).await?;
                Some(if to { "resolved" } else { "reopened" })
            }
            Change::Resolve(_) => None,
            Change::Read => repo::mark_read(&mut tx, number, contact).await?.then_some("read"),
        };
        let row = repo::get(&mut tx, number, contact).await?.ok_or_else(|| Error::internal("conversation vanished"))?;
        if let Some(change) = done {
            let e = ev::WhatsAppConversationChanged {
                workspace_id: tenant.to_string(),
                number_id: number.to_string(),
                contact_id: contact.to_string(),
                change: change.to_owned(),
                assigned_to: row.assigned_to.map(|u| UserId::from_uuid(u).to_string()).unwrap_or_default(),
            };
            events::conversation_changed(&mut tx, tenant, e).await?;
        }
        db::commit(tx).await?;
        Ok(view(row))
    }

    /// The workspace's inbox changes from now on, until the caller hangs up (or an hour passes).
    pub async fn watch_inbox(&self, p: &Principal) -> Result<impl Stream<Item = InboxEvent> + Send + 'static, Error> {
        p.require(Action::Read)?;
        let bus = self.bus.clone().ok_or_else(|| Error::unavailable("messaging.whatsapp_unavailable"))?;
        let mut subscriptions = Vec::new();
        for subject in crate::events::inbox::SUBJECTS {
            let sub = bus.client.subscribe(bus.subject(subject)).await.map_err(|e| {
                tracing::warn!(error = %e, "inbox watch: subscribe");
                Error::unavailable("messaging.whatsapp_unavailable")
            })?;
            subscriptions.push(sub);
        }
        // Once NATS confirms the subscriptions, the caller misses nothing that happens after
        // this answers.
        bus.client.flush().await.map_err(|e| {
            tracing::warn!(error = %e, "inbox watch: flush");
            Error::unavailable("messaging.whatsapp_unavailable")
        })?;
        let tenant: TenantId = p.workspace_id;
        let stopping = self.stopping.clone().cancelled_owned();
        let until = async move {
            tokio::select! { () = tokio::time::sleep(WATCH_FOR) => {}, () = stopping => {} }
        };
        let events = futures::stream::select_all(subscriptions)
            .filter_map(move |msg| async move { crate::events::inbox::decode(tenant, &msg.payload) })
            .take_until(Box::pin(until));
        Ok(events)
    }
}
