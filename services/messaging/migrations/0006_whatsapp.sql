-- WhatsApp Business: connected numbers, the customer-service window per contact and number, and
-- every message in and out (stored once per Meta message id, whatever Meta redelivers).

CREATE TABLE wa_numbers (
    id                   uuid PRIMARY KEY,
    tenant_id            uuid        NOT NULL,
    waba_id              text        NOT NULL CHECK (waba_id ~ '^[0-9]{1,64}$'),
    -- Meta's id of the number: webhooks name it, so it belongs to one workspace only.
    phone_number_id      text        NOT NULL UNIQUE CHECK (phone_number_id ~ '^[0-9]{1,64}$'),
    display_phone_number text        NOT NULL,
    provider             text        NOT NULL CHECK (provider IN ('meta', 'local')),
    -- Sealed with the service's versioned keys; empty for the local sandbox.
    token_sealed         text        NOT NULL DEFAULT '',
    quality_rating       text        NOT NULL DEFAULT 'UNKNOWN',
    messaging_tier       text        NOT NULL DEFAULT 'TIER_250',
    created_at           timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX wa_numbers_tenant ON wa_numbers (tenant_id, created_at);
SELECT enable_tenant_table('wa_numbers');

-- The 24-hour window: opened and refreshed by each inbound message.
CREATE TABLE wa_conversations (
    tenant_id       uuid        NOT NULL,
    number_id       uuid        NOT NULL REFERENCES wa_numbers (id),
    contact_id      uuid        NOT NULL REFERENCES contacts (id),
    last_inbound_at timestamptz NOT NULL,
    unread          integer     NOT NULL DEFAULT 0,
    PRIMARY KEY (number_id, contact_id)
);
SELECT enable_tenant_table('wa_conversations');

CREATE TABLE wa_messages (
    id           uuid PRIMARY KEY,
    tenant_id    uuid        NOT NULL,
    number_id    uuid        NOT NULL REFERENCES wa_numbers (id),
    contact_id   uuid        NOT NULL REFERENCES contacts (id),
    direction    text        NOT NULL CHECK (direction IN ('in', 'out')),
    kind         text        NOT NULL,
    content      jsonb       NOT NULL DEFAULT '{}',
    -- Status moves forward only (rank: pending 0, sending 1, sent 2, delivered 3, read 4);
    -- failed is final and beats sent and delivered but never read.
    status       text        NOT NULL CHECK (status IN ('received', 'pending', 'sending', 'sent', 'delivered', 'read', 'failed')),
    wamid        text,
    error_code   bigint,
    provider     text        NOT NULL,
    reservation  text        NOT NULL DEFAULT '',
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);
-- Idempotent intake and status matching: one row per Meta message id and number.
CREATE UNIQUE INDEX wa_messages_wamid ON wa_messages (number_id, wamid) WHERE wamid IS NOT NULL;
CREATE INDEX wa_messages_contact ON wa_messages (tenant_id, contact_id, created_at DESC, id DESC);
SELECT enable_tenant_table('wa_messages');

-- Message templates of a business account (Meta approves them; only approved ones are sent).
CREATE TABLE wa_templates (
    id          uuid PRIMARY KEY,
    tenant_id   uuid        NOT NULL,
    number_id   uuid        NOT NULL REFERENCES wa_numbers (id),
    name        text        NOT NULL CHECK (name ~ '^[a-z0-9_]+$' AND length(name) <= 512),
    language    text        NOT NULL,
    category    text        NOT NULL CHECK (category IN ('marketing', 'utility', 'authentication')),
    status      text        NOT NULL CHECK (status IN ('draft', 'pending', 'approved', 'rejected', 'paused', 'disabled')),
    reason      text        NOT NULL DEFAULT '',
    -- header, body, footer, buttons as Meta takes them.
    components  jsonb       NOT NULL DEFAULT '[]',
    -- How many {{n}} parameters the body takes.
    body_params integer     NOT NULL DEFAULT 0,
    meta_id     text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (number_id, name, language)
);
CREATE INDEX wa_templates_tenant ON wa_templates (tenant_id, created_at DESC, id DESC);
SELECT enable_tenant_table('wa_templates');
