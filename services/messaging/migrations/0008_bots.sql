-- A chatbot per WhatsApp number, and per conversation whether a person took over.

CREATE TABLE wa_bots (
    number_id  uuid PRIMARY KEY REFERENCES wa_numbers (id),
    tenant_id  uuid        NOT NULL,
    config     jsonb       NOT NULL,
    enabled    boolean     NOT NULL DEFAULT true,
    updated_at timestamptz NOT NULL DEFAULT now()
);
SELECT enable_tenant_table('wa_bots');

ALTER TABLE wa_conversations ADD COLUMN bot_paused boolean NOT NULL DEFAULT false;
