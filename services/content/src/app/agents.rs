//! AI agents: custom assistants with instructions, a language and knowledge snippets, holding
//! one conversation per contact. A reply sees the last turns and the snippets that share most
//! words with the message, costs `content.agent_reply`, and is announced as `agent.replied`.

use nexus_kernel::{Error, PageRequest, TenantId};
use nexus_platform::db::{self, Keyset};
use nexus_platform::identity::{Action, Principal};
use sqlx::PgConnection;
use uuid::Uuid;

use super::{App, Hold, Outcome, check_key, fresh, joined, settle_in, spawn_in_context, within_limit};
use crate::domain::agents::{Agent, AgentSpec, MAX_MESSAGE_CHARS, Message, relevant_snippets};
use crate::domain::generation::Usage;
use crate::domain::{AgentId, ConversationId, parse_id, text_field};
use crate::repo::Limited;
use crate::repo::agents::{self as repo, NewTurn};

#[derive(Debug, Clone)]
pub struct Reply {
    pub conversation_id: Uuid,
    pub message: Message,
    pub credits: i64,
    pub usage: Usage,
    pub language: String,
}

fn contact(id: &str) -> Result<String, Error> {
    let id = id.trim();
    // Counted in characters, as every text limit of the API is.
    if id.is_empty() || id.chars().count() > 128 || id.chars().any(char::is_control) {
        return Err(Error::invalid("content.invalid_contact").with_violation("contact_id", "invalid"));
    }
    Ok(id.to_owned())
}

impl App {
    async fn agent_row(conn: &mut PgConnection, id: Uuid) -> Result<Agent, Error> {
        repo::get(conn, id).await?.ok_or_else(|| Error::not_found("content.agent_not_found"))
    }

    /// Agents count against the plan's `ai_agents` limit (agents that exist, not a monthly use).
    #[tracing::instrument(skip_all)]
    pub async fn create_agent(&self, p: &Principal, spec: AgentSpec) -> Result<Agent, Error> {
        p.require(Action::Write)?;
        let limit = self.credits.limit("ai_agents").await?;
        let mut tx = db::tenant(&self.pool, p.workspace_id).await?;
        within_limit(&mut tx, p.workspace_id, Limited::Agents, "ai_agents", limit).await?;
        let row = repo::insert(&mut tx, AgentId::new().as_uuid(), p.workspace_id, &spec).await?;
        db::commit(tx).await?;
        Ok(row)
    }

    #[tracing::instrument(skip_all, fields(agent = %id))]
    pub async fn get_agent(&self, p: &Principal, id: &str) -> Result<Agent, Error> {
        p.require(Action::Read)?;
        let id = parse_id(id, AgentId::parse, "content.agent_not_found")?;
        let mut tx = db::tenant(&self.pool, p.workspace_id).await?;
        let row = Self::agent_row(&mut tx, id.as_uuid()).await?;
        db::commit(tx).await?;
        Ok(row)
    }

    #[tracing::instrument(skip_all)]
    pub async fn list_agents(&self, p: &Principal, page: &PageRequest) -> Result<nexus_kernel::Page<Agent>, Error> {
        p.require(Action::Read)?;
        let keyset = Keyset::new(page)?;
        let mut tx = db::tenant(&self.pool, p.workspace_id).await?;
        let rows = repo::list(&mut tx, &keyset).await?;
        db::commit(tx).await?;
        Ok(rows)
    }

    #[tracing::instrument(skip_all, fields(agent = %id))]
    pub async fn update_agent(&self, p: &Principal, id: &str, spec: AgentSpec) -> Result<Agent, Error> {
        p.require(Action::Write)?;
        let id = parse_id(id, AgentId::parse, "content.agent_not_found")?;
        let mut tx = db::tenant(&self.pool, p.workspace_id).await?;
        let row = repo::update(&mut tx, id.as_uuid(), &spec).await?;
        db::commit(tx).await?;
        row.ok_or_else(|| Error::not_found("content.agent_not_found"))
    }

    #[tracing::instrument(skip_all, fields(agent = %id))]
    pub async fn delete_agent(&self, p: &Principal, id: &str) -> Result<(), Error> {
        p.require(Action::Write)?;
        let id = parse_id(id, AgentId::parse, "content.agent_not_found")?;
        let mut tx = db::tenant(&self.pool, p.workspace_id).await?;
        let deleted = repo::delete(&mut tx, id.as_uuid()).await?;
        db::commit(tx).await?;
        if deleted { Ok(()) } else { Err(Error::not_found("content.agent_not_found")) }
    }

    /// One turn: the contact's message in, the agent's reply out, both kept in the history.
    #[tracing::instrument(skip_all, fields(agent = %agent_id))]
    pub async fn chat(
        &self,
        p: &Principal,
        agent_id: &str,
        contact_id: &str,
        message: &str,
        key: &str,
    ) -> Result<Reply, Error> {
        p.require(Action::Write)?;
        check_key(key)?;
        let agent_id = parse_id(agent_id, AgentId::parse, "content.agent_not_found")?;
        let contact_id = contact(contact_id)?;
        let message = text_field("message", message, MAX_MESSAGE_CHARS, true)?;
        let tenant = p.workspace_id;
        let mut tx = db::tenant(&self.pool, tenant).await?;
        let agent = Self::agent_row(&mut tx, agent_id.as_uuid()).await?;
        if !key.is_empty()
            && let Some(reply) = Self::earlier_reply(&mut tx, key, &agent.language).await?
        {
            return Ok(reply);
        }
        let conversation =
            repo::open_conversation(&mut tx, ConversationId::new().as_uuid(), tenant, agent.id, &contact_id).await?;
        let turns = i64::from(self.cfg.agents.history_turns) * 2;
        let history = repo::history(&mut tx, conversation, turns).await?;
        db::commit(tx).await?;

        let idem = if key.is_empty() { Uuid::now_v7().to_string() } else { key.to_owned() };
        let hold = self
            .credits
            .reserve(
                "content.agent_reply",
                1,
                0,
                &format!("content.agent_reply:{idem}"),
                self.cfg.generation.reservation_ttl,
            )
            .await?;
        fresh(&hold)?;
        let spec = agent.spec.clone();
        let text = self.text.clone();
        let n = self.cfg.agents.snippets;
        let msg = message.clone();
        let generated = joined(
            spawn_in_context(async move {
                let snippets = relevant_snippets(&spec.knowledge, &msg, n);
                text.reply(&spec, &history, &snippets, &msg).await
            })
            .await,
        );
        let job = format!("content.agent_reply:{}:{idem}", AgentId::from_uuid(agent.id));
        let (reply, usage, _model) = match generated {
            Ok(r) => r,
            Err(e) => {
                self.give_back(tenant, &hold, &job).await;
                return Err(e);
            }
        };
        let stored = self
            .store_turn(
                tenant,
                &agent,
                conversation,
                &contact_id,
                &message,
                &reply,
                (!key.is_empty()).then_some(key),
                (&hold, &job),
            )
            .await;
        if stored.is_err() {
            self.give_back(tenant, &hold, &job).await;
        }
        let message = stored?;
        Ok(Reply { conversation_id: conversation, message, credits: hold.amount, usage, language: agent.language })
    }

    async fn earlier_reply(conn: &mut PgConnection, key: &str, language: &str) -> Result<Option<Reply>, Error> {
        let found = repo::earlier_reply(conn, key).await?;
        Ok(found.map(|(conversation_id, message, credits)| Reply {
            conversation_id,
            message,
            credits,
            usage: Usage::default(),
            language: language.to_owned(),
        }))
    }

    #[allow(clippy::too_many_arguments)] // one turn's facts
    async fn store_turn(
        &self,
        tenant: TenantId,
        agent: &Agent,
        conversation: Uuid,
        contact_id: &str,
        message: &str,
        reply: &str,
        key: Option<&str>,
        (hold, job): (&Hold, &str),
    ) -> Result<Message, Error> {
        let credits = hold.amount;
        let mut tx = db::tenant(&self.pool, tenant).await?;
        let turn = NewTurn { tenant, conversation, message, reply, key, credits };
        let row = repo::insert_turn(&mut tx, &turn).await?;
        let provider = self.text.provider();
        crate::events::agent_replied(&mut tx, tenant, (agent.id, conversation), contact_id, provider, credits).await?;
        // The reply and its charge commit together.
        settle_in(&mut tx, tenant, hold, job, Outcome::Charge(credits)).await?;
        db::commit(tx).await?;
        Ok(row)
    }

    /// The most recent messages with a contact, oldest first.
    #[tracing::instrument(skip_all, fields(agent = %agent_id))]
    pub async fn messages(
        &self,
        p: &Principal,
        agent_id: &str,
        contact_id: &str,
        limit: u32,
    ) -> Result<Vec<Message>, Error> {
        p.require(Action::Read)?;
        let agent_id = parse_id(agent_id, AgentId::parse, "content.agent_not_found")?;
        let contact_id = contact(contact_id)?;
        let limit = if limit == 0 { 50 } else { limit.min(200) };
        let mut tx = db::tenant(&self.pool, p.workspace_id).await?;
        Self::agent_row(&mut tx, agent_id.as_uuid()).await?;
        let rows = repo::messages(&mut tx, agent_id.as_uuid(), &contact_id, i64::from(limit)).await?;
        db::commit(tx).await?;
        Ok(rows)
    }
}

#[cfg(test)]
mod tests {
    use super::contact;

    #[test]
    fn contact_ids_are_counted_in_characters() {
        assert_eq!(contact("  crm_42 ").unwrap(), "crm_42");
        // 128 Hebrew letters are 256 bytes: still within the limit the API documents.
        assert!(contact(&"ש".repeat(128)).is_ok());
        assert!(contact(&"ש".repeat(129)).is_err());
        for bad in ["", "   ", "tab\tinside", "nul\u{0}"] {
            assert!(contact(bad).is_err(), "{bad:?}");
        }
    }
}
