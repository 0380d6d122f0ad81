-- WhatsApp broadcasts: a template to a segment, one durable row per recipient. A recipient row is
-- claimed under a lease, marked `sending` just before Meta is called and `sent` with Meta's id
-- after; a row found `sending` after its lease ran out is never sent again by itself.

CREATE TABLE wa_broadcasts (
    id            uuid PRIMARY KEY,
    tenant_id     uuid        NOT NULL,
    number_id     uuid        NOT NULL REFERENCES wa_numbers (id),
    template_name text        NOT NULL,
    language      text        NOT NULL,
    -- Per-recipient parameter sources: "name", "phone", "field:<key>" or "text:<literal>".
    params        jsonb       NOT NULL DEFAULT '[]',
    status        text        NOT NULL CHECK (status IN ('scheduled', 'running', 'paused', 'canceled', 'finished')),
    scheduled_at  timestamptz NOT NULL,
    rate          integer     NOT NULL CHECK (rate > 0),
    total         integer     NOT NULL DEFAULT 0,
    -- The credits held for every recipient at creation; settled when the broadcast ends.
    reservation   text        NOT NULL DEFAULT '',
    held          bigint      NOT NULL DEFAULT 0,
    settled       boolean     NOT NULL DEFAULT false,
    created_at    timestamptz NOT NULL DEFAULT now(),
    finished_at   timestamptz
);
CREATE INDEX wa_broadcasts_due ON wa_broadcasts (status, scheduled_at);
SELECT enable_tenant_table('wa_broadcasts');

CREATE TABLE wa_broadcast_recipients (
    broadcast_id uuid        NOT NULL REFERENCES wa_broadcasts (id),
    contact_id   uuid        NOT NULL REFERENCES contacts (id),
    tenant_id    uuid        NOT NULL,
    to_number    text        NOT NULL,
    params       jsonb       NOT NULL DEFAULT '[]',
    state        text        NOT NULL DEFAULT 'queued'
                 CHECK (state IN ('queued', 'claimed', 'sending', 'sent', 'failed', 'unknown', 'canceled')),
    attempts     integer     NOT NULL DEFAULT 0,
    next_at      timestamptz NOT NULL DEFAULT now(),
    lease_until  timestamptz,
    -- Which claim holds the row: a sender whose lease ran out cannot act on a row claimed again.
    claim_id     uuid,
    message_id   uuid,
    error_code   bigint,
    updated_at   timestamptz NOT NULL DEFAULT now(),
    -- One row per contact and broadcast: the basis of never sending a contact a broadcast twice.
    PRIMARY KEY (broadcast_id, contact_id)
);
CREATE INDEX wa_broadcast_recipients_due ON wa_broadcast_recipients (next_at) WHERE state = 'queued';
CREATE INDEX wa_broadcast_recipients_leased ON wa_broadcast_recipients (lease_until) WHERE state IN ('claimed', 'sending');
SELECT enable_tenant_table('wa_broadcast_recipients');

ALTER TABLE wa_messages ADD COLUMN broadcast_id uuid;
