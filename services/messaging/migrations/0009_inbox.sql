-- The shared inbox: each conversation (number and contact) gets an id for paging, who it is
-- assigned to (a member of the workspace), whether it is resolved, and when its last message
-- came in (the inbox's order); and the content conversation of the bot's AI agent with the
-- contact (one per contact). `unread` exists since 0006.

ALTER TABLE wa_conversations
    ADD COLUMN id              uuid        NOT NULL DEFAULT gen_random_uuid(),
    ADD COLUMN assigned_to     uuid,
    ADD COLUMN resolved        boolean     NOT NULL DEFAULT false,
    ADD COLUMN last_message_at timestamptz NOT NULL DEFAULT now(),
    ADD COLUMN agent_conversation_id text;
UPDATE wa_conversations SET last_message_at = last_inbound_at;
CREATE UNIQUE INDEX wa_conversations_id ON wa_conversations (id);
CREATE INDEX wa_conversations_inbox ON wa_conversations (tenant_id, last_message_at DESC, id DESC);
