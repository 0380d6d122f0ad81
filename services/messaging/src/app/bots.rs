//! WhatsApp chatbots: configured per number, run on each new inbound message (after it is
//! stored), silent once a person took the conversation over until it is given back.
//!
//! Bot replies answer a message the contact just sent, so the window is open. Rule replies are
//! not metered; an AI reply is (its agent turn by content, its message here), both with the
//! service's own identity for the workspace, since no caller's token exists on Meta's webhook
//! path.

use chrono::Utc;
use nexus_kernel::ids::UserId;
use nexus_kernel::{Error, TenantId};
use nexus_platform::credits::Hold;
use nexus_platform::db;
use nexus_platform::identity::{Action, Principal, ServiceTokens};
use nexus_proto::events as ev;
use nexus_providers::whatsapp::Sender;
use serde_json::json;
use uuid::Uuid;

use super::parse_id;
use super::whatsapp::{HOLD_TTL, WhatsApp};
use crate::domain::bot::{Bot, Decision};
use crate::domain::whatsapp::{Content, Status};
use crate::events::whatsapp::{self as events, SEND_ACTION};
use crate::repo::inbox as inbox_repo;
use crate::repo::whatsapp::{self as repo, NumberRow};

impl WhatsApp {
    pub async fn set_bot(&self, p: &Principal, number: &str, config_json: &str, enabled: bool) -> Result<(), Error> {
        p.require(Action::Write)?;
        let number_id = parse_id(number, "messaging.whatsapp_number_not_found")?;
        let bot: Bot = serde_json::from_str(config_json)
            .map_err(|_| Error::invalid("messaging.whatsapp_bot_invalid").with_param("field", "config_json"))?;
        bot.check()?;
        let config = serde_json::to_value(&bot).map_err(Error::internal)?;
        let mut tx = db::tenant(&self.pool, p.workspace_id).await?;
        repo::number(&mut tx, number_id)
            .await?
            .ok_or_else(|| Error::not_found("messaging.whatsapp_number_not_found"))?;
        if let Some(user) = bot.handoff_assignee()? {
            super::members::require_member(&mut tx, p, user.as_uuid(), "handoff_assignee").await?;
        }
        repo::upsert_bot(&mut tx, p.workspace_id, number_id, &config, enabled).await?;
        db::commit(tx).await
    }

    /// Removes the number's bot; conversations it handed to people stay with them.
    pub async fn delete_bot(&self, p: &Principal, number: &str) -> Result<(), Error> {
        p.require(Action::Write)?;
        let number_id = parse_id(number, "messaging.whatsapp_number_not_found")?;
        let mut tx = db::tenant(&self.pool, p.workspace_id).await?;
        repo::number(&mut tx, number_id)
            .await?
            .ok_or_else(|| Error::not_found("messaging.whatsapp_number_not_found"))?;
        if !repo::delete_bot(&mut tx, number_id).await? {
            return Err(Error::not_found("messaging.whatsapp_bot_not_found"));
        }
        db::commit(tx).await
    }

    /// The number's bot as configured; `None` when it has none.
    pub async fn bot(&self, p: &Principal, number: &str) -> Result<Option<crate::repo::inbox::BotRow>, Error> {
        p.require(Action::Read)?;
        let number_id = parse_id(number, "messaging.whatsapp_number_not_found")?;
        let mut tx = db::tenant(&self.pool, p.workspace_id).await?;
        repo::number(&mut tx, number_id)
            .await?
            .ok_or_else(|| Error::not_found("messaging.whatsapp_number_not_found"))?;
        let bot = crate::repo::inbox::bot(&mut tx, number_id).await?;
        db::commit(tx).await?;
        Ok(bot)
    }

    /// Gives a conversation back to the bot.
    pub async fn resume_bot(&self, p: &Principal, number: &str, contact: &str) -> Result<(), Error> {
        p.require(Action::Write)?;
        let number_id = parse_id(number, "messaging.whatsapp_number_not_found")?;
        let contact_id = parse_id(contact, "messaging.contact_not_found")?;
        let mut tx = db::tenant(&self.pool, p.workspace_id).await?;
        if !repo::set_bot_paused(&mut tx, number_id, contact_id, false).await? {
            return Err(Error::not_found("messaging.whatsapp_conversation_not_found"));
        }
        let e = ev::WhatsAppBotHandoff {
            workspace_id: p.workspace_id.to_string(),
            number_id: number_id.to_string(),
            contact_id: contact_id.to_string(),
            direction: "to_bot".into(),
            assigned_to: String::new(),
        };
        events::bot_handoff(&mut tx, p.workspace_id, e).await?;
        db::commit(tx).await
    }

    /// Runs the number's bot on a message just stored.
    pub(crate) async fn run_bot(&self, number: &NumberRow, m: &Inbound<'_>) -> Result<(), Error> {
        let tenant = TenantId::from_uuid(number.tenant_id);
        let mut tx = db::tenant(&self.pool, tenant).await?;
        let Some((config, paused)) = repo::bot_for(&mut tx, number.id, m.contact).await? else { return Ok(()) };
        if paused {
            return Ok(());
        }
        let bot: Bot = serde_json::from_value(config).map_err(Error::internal)?;
        let content = match bot.decide(m.text, m.reply_id, Utc::now()) {
            Decision::Reply(c) => c,
            Decision::Handoff(reply) => {
                hand_off(&mut tx, tenant, number.id, m.contact, &bot).await?;
                Content::Text(reply)
            }
            Decision::Fallback => {
                db::commit(tx).await?;
                return self.ai_reply(number, m, &bot).await;
            }
        };
        db::commit(tx).await?;
        self.bot_send(number, m.contact, m.from, &content, None).await
    }

    /// What no rule matched, answered by the bot's content agent (as the service, for the
    /// workspace) and sent metered like any message: its credits held first, settled with the
    /// outcome.
    ///
    /// An agent that cannot answer (its call fails: no credits left, content unavailable, or it
    /// answers nothing) hands the conversation to a person, as the handoff keyword does, rather
    /// than leaving the contact without an answer.
    async fn ai_reply(&self, number: &NumberRow, m: &Inbound<'_>, bot: &Bot) -> Result<(), Error> {
        let agent_id = bot.agent_id.as_str();
        let Some(agents) = self.agents.as_ref().filter(|_| !agent_id.is_empty() && !m.text.trim().is_empty()) else {
            return Ok(());
        };
        let workspace = TenantId::from_uuid(number.tenant_id);
        // The message's own id keys the turn: a redelivery neither asks nor pays twice.
        let key = format!("whatsapp.bot:{}", m.message);
        let reply = match agents.reply(workspace, agent_id, m.contact, m.text, &key).await {
            Ok(r) if !r.text.trim().is_empty() => r,
            outcome => {
                if let Err(e) = &outcome {
                    tracing::warn!(error = ?e, "bot agent could not answer; handing over");
                }
                let mut tx = db::tenant(&self.pool, workspace).await?;
                if let Ok(r) = &outcome {
                    crate::repo::inbox::set_agent_conversation(&mut tx, number.id, m.contact, &r.conversation_id)
                        .await?;
                }
                hand_off(&mut tx, workspace, number.id, m.contact, bot).await?;
                db::commit(tx).await?;
                let content = Content::Text(bot.handoff_reply.clone());
                return self.bot_send(number, m.contact, m.from, &content, None).await;
            }
        };
        let mut tx = db::tenant(&self.pool, workspace).await?;
        crate::repo::inbox::set_agent_conversation(&mut tx, number.id, m.contact, &reply.conversation_id).await?;
        db::commit(tx).await?;
        let text: String = reply.text.chars().take(crate::domain::whatsapp::TEXT_MAX).collect();
        let id = Uuid::now_v7();
        let job = format!("whatsapp.message:{id}");
        let hold = agents.as_service(workspace, self.credits.reserve(SEND_ACTION, 1, 0, &job, HOLD_TTL)).await?;
        self.bot_send(number, m.contact, m.from, &Content::Text(text), Some((id, hold))).await
    }

    /// Sends a bot reply; `metered` carries the message id and the hold of its credits.
    async fn bot_send(
        &self,
        number: &NumberRow,
        contact: Uuid,
        to: &str,
        content: &Content,
        metered: Option<(Uuid, Hold)>,
    ) -> Result<(), Error> {
        let tenant = TenantId::from_uuid(number.tenant_id);
        let provider = self.provider_for(number)?;
        let token = self.number_token(number)?;
        let (id, hold) = match metered {
            Some((id, hold)) => (id, Some(hold)),
            None => (Uuid::now_v7(), None),
        };
        let reservation = hold.as_ref().map(|h| h.id.clone()).unwrap_or_default();
        let payload = content.payload(to);
        let stored = json!({"summary": content.summary(), "payload": payload, "bot": true});
        let mut tx = db::tenant(&self.pool, tenant).await?;
        let new = repo::NewMessage {
            id,
            number_id: number.id,
            contact_id: contact,
            direction: "out",
            kind: content.kind(),
            content: &stored,
            status: Status::Sending,
            wamid: None,
            provider: provider.name(),
            reservation: &reservation,
            at: Utc::now(),
        };
        repo::insert_message(&mut tx, tenant, &new).await?;
        db::commit(tx).await?;
        let result = provider.send(&Sender { phone_number_id: &number.phone_number_id, token: &token }, &payload).await;
        let mut tx = db::tenant(&self.pool, tenant).await?;
        match result {
            Ok(a) => {
                repo::record_send(&mut tx, id, Some(&a.wamid), Status::Sent, None).await?;
                let charged = hold.as_ref().map_or(0, |h| h.amount);
                events::settle_in(&mut tx, tenant, id, &reservation, charged).await?;
                let e = ev::WhatsAppMessageSent {
                    workspace_id: tenant.to_string(),
                    message_id: id.to_string(),
                    contact_id: contact.to_string(),
                    number_id: number.id.to_string(),
                    r#type: content.kind().to_owned(),
                    broadcast_id: String::new(),
                };
                events::message_sent(&mut tx, tenant, e).await?;
            }
            Err(e) if e.not_sent() => {
                repo::record_send(&mut tx, id, None, Status::Failed, e.code()).await?;
                events::settle_in(&mut tx, tenant, id, &reservation, 0).await?;
            }
            // Maybe sent: the hold stays until it expires, as for any send whose answer was lost.
            Err(e) => tracing::warn!(message = %id, error = %e, "bot reply outcome unknown"),
        }
        db::commit(tx).await
    }
}

/// Hands the conversation to a person: the bot pauses on it, and — unless someone has it
/// already — it is assigned to the bot's `handoff_assignee` while a current member, or else to the
/// current member with the fewest open assigned conversations (ties: the longest-standing).
/// Announced with the assignee in the caller's transaction.
async fn hand_off(
    tx: &mut sqlx::PgConnection,
    tenant: TenantId,
    number: Uuid,
    contact: Uuid,
    bot: &Bot,
) -> Result<(), Error> {
    repo::set_bot_paused(tx, number, contact, true).await?;
    let (before, _) = inbox_repo::lock(tx, number, contact).await?.unwrap_or((None, false));
    let assignee = match before {
        Some(u) => Some(u),
        None => {
            let configured = match bot.handoff_assignee().ok().flatten() {
                Some(u) if crate::repo::members::is_member(tx, u.as_uuid()).await? => Some(u.as_uuid()),
                _ => None,
            };
            let chosen = match configured {
                Some(u) => Some(u),
                None => inbox_repo::least_loaded_member(tx).await?,
            };
            if let Some(u) = chosen {
                inbox_repo::set_assignee(tx, number, contact, Some(u)).await?;
                let e = ev::WhatsAppConversationChanged {
                    workspace_id: tenant.to_string(),
                    number_id: number.to_string(),
                    contact_id: contact.to_string(),
                    change: "assigned".into(),
                    assigned_to: UserId::from_uuid(u).to_string(),
                };
                events::conversation_changed(tx, tenant, e).await?;
            }
            chosen
        }
    };
    let e = ev::WhatsAppBotHandoff {
        workspace_id: tenant.to_string(),
        number_id: number.to_string(),
        contact_id: contact.to_string(),
        direction: "to_human".into(),
        assigned_to: assignee.map(|u| UserId::from_uuid(u).to_string()).unwrap_or_default(),
    };
    events::bot_handoff(tx, tenant, e).await
}

/// An inbound message a bot answers.
#[derive(Debug, Clone, Copy)]
pub struct Inbound<'a> {
    pub contact: Uuid,
    /// The stored message's id.
    pub message: Uuid,
    /// The contact's WhatsApp id (where replies go).
    pub from: &'a str,
    pub text: &'a str,
    pub reply_id: &'a str,
}

/// An agent's answer to one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentReply {
    /// Content's conversation of this agent and contact.
    pub conversation_id: String,
    pub text: String,
}

/// The AI agents bots fall back to, called as the service acting for the workspace.
#[async_trait::async_trait]
pub trait BotAgent: Send + Sync + 'static {
    /// One turn of the contact's conversation with `agent_id` (history kept per agent and
    /// contact); `key` makes a retried turn the same turn.
    async fn reply(
        &self,
        workspace: TenantId,
        agent_id: &str,
        contact: Uuid,
        text: &str,
        key: &str,
    ) -> Result<AgentReply, Error>;

    /// Runs `call` (e.g. a credits hold) as the service acting for `workspace`.
    async fn as_service(
        &self,
        workspace: TenantId,
        call: futures::future::BoxFuture<'_, Result<Hold, Error>>,
    ) -> Result<Hold, Error>;

    /// Content writes a WhatsApp template body for `ask` (charged to `workspace` by content);
    /// `key` makes a retried ask the same ask.
    async fn write_template(&self, workspace: TenantId, ask: &TextAsk<'_>, key: &str) -> Result<Written, Error>;
}

/// What a template's body is asked to say.
#[derive(Debug, Clone, Copy)]
pub struct TextAsk<'a> {
    pub purpose: &'a str,
    /// marketing, utility or authentication.
    pub category: &'a str,
    /// en, es, pt, he or ar.
    pub language: &'a str,
}

/// Content's text and what it charged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    pub text: String,
    pub generation_id: String,
    pub credits: i64,
    pub provider: String,
}

/// [`BotAgent`] over content's `Chat`, with the service's own tokens.
pub struct ContentAgents {
    pub channel: nexus_platform::grpc::ContextChannel,
    pub tokens: std::sync::Arc<ServiceTokens>,
}

#[async_trait::async_trait]
impl BotAgent for ContentAgents {
    async fn reply(
        &self,
        workspace: TenantId,
        agent_id: &str,
        contact: Uuid,
        text: &str,
        key: &str,
    ) -> Result<AgentReply, Error> {
        use nexus_proto::nexus::content::v1 as cpb;
        let req = cpb::ChatRequest {
            agent_id: agent_id.to_owned(),
            contact_id: contact.to_string(),
            message: text.to_owned(),
            idempotency_key: key.to_owned(),
        };
        let mut client = cpb::content_client::ContentClient::new(self.channel.clone());
        let ctx = self.tokens.context(Some(workspace)).await?;
        let r = ctx.scope(client.chat(req)).await.map_err(|s| nexus_platform::grpc::upstream_error(&s))?.into_inner();
        Ok(AgentReply { conversation_id: r.conversation_id, text: r.reply.map(|m| m.content).unwrap_or_default() })
    }

    async fn as_service(
        &self,
        workspace: TenantId,
        call: futures::future::BoxFuture<'_, Result<Hold, Error>>,
    ) -> Result<Hold, Error> {
        self.tokens.context(Some(workspace)).await?.scope(call).await
    }

    async fn write_template(&self, workspace: TenantId, ask: &TextAsk<'_>, key: &str) -> Result<Written, Error> {
        use nexus_proto::nexus::content::v1 as cpb;
        // Content's brief names a product (120 characters at most): the purpose's first line.
        let product: String = ask.purpose.lines().next().unwrap_or_default().chars().take(120).collect();
        let tone = if ask.category == "marketing" { "friendly" } else { "professional" };
        let req = cpb::GenerateRequest {
            kind: "whatsapp_template".into(),
            language: ask.language.to_owned(),
            tone: tone.into(),
            product: product.trim().to_owned(),
            description: ask.purpose.to_owned(),
            variants: 1,
            idempotency_key: key.to_owned(),
            ..Default::default()
        };
        let mut client = cpb::content_client::ContentClient::new(self.channel.clone());
        let ctx = self.tokens.context(Some(workspace)).await?;
        let g =
            ctx.scope(client.generate(req)).await.map_err(|s| nexus_platform::grpc::upstream_error(&s))?.into_inner();
        Ok(Written {
            text: g.variants.into_iter().next().map(|v| v.body).unwrap_or_default(),
            generation_id: g.id,
            credits: g.credits,
            provider: g.provider,
        })
    }
}
