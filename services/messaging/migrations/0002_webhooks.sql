-- Outbound webhooks: endpoints of the workspace's own systems, the messages for them, and a
-- durable delivery schedule (a row per endpoint and message) with every attempt recorded.

CREATE TABLE webhook_endpoints (
    id                      uuid PRIMARY KEY,
    tenant_id               uuid        NOT NULL,
    url                     text        NOT NULL CHECK (length(url) <= 2048),
    description             text        NOT NULL DEFAULT '',
    -- Event types or `prefix.*`; empty receives every type.
    event_types             text[]      NOT NULL DEFAULT '{}',
    status                  text        NOT NULL DEFAULT 'enabled' CHECK (status IN ('enabled', 'disabled')),
    disabled_reason         text        NOT NULL DEFAULT '',
    -- Deliveries per second to this endpoint at most.
    rate_limit              integer     NOT NULL DEFAULT 10 CHECK (rate_limit BETWEEN 1 AND 1000),
    -- whsec_ secrets, sealed with the platform's versioned keys. The previous one keeps signing
    -- until it expires (24 h after a rotation).
    secret_sealed           text        NOT NULL,
    previous_secret_sealed  text,
    previous_expires_at     timestamptz,
    -- Since when every attempt has failed (cleared by a success); five days of it disables.
    failing_since           timestamptz,
    created_at              timestamptz NOT NULL DEFAULT now(),
    updated_at              timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhook_endpoints_recent ON webhook_endpoints (tenant_id, created_at DESC, id DESC);
SELECT enable_tenant_table('webhook_endpoints', ARRAY['secret_sealed', 'previous_secret_sealed']);

-- One message per platform event (or test-send / replay), the same `webhook-id` on every attempt.
CREATE TABLE webhook_messages (
    id         uuid PRIMARY KEY,
    tenant_id  uuid        NOT NULL,
    event_type text        NOT NULL,
    -- The source event's id: an event consumed twice makes one message.
    event_key  text        NOT NULL,
    payload    jsonb       NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, event_key)
);
CREATE INDEX webhook_messages_recent ON webhook_messages (tenant_id, created_at DESC, id DESC);
SELECT enable_tenant_table('webhook_messages');

CREATE TABLE webhook_deliveries (
    id              uuid PRIMARY KEY,
    tenant_id       uuid        NOT NULL,
    endpoint_id     uuid        NOT NULL REFERENCES webhook_endpoints (id),
    message_id      uuid        NOT NULL REFERENCES webhook_messages (id),
    status          text        NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'succeeded', 'failed', 'cancelled')),
    attempts        integer     NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    -- A worker holds the delivery until then; a crash lets the lease run out and another retry.
    leased_until    timestamptz,
    succeeded_at    timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (endpoint_id, message_id)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_message ON webhook_deliveries (tenant_id, message_id);
SELECT enable_tenant_table('webhook_deliveries');

CREATE TABLE webhook_attempts (
    id            uuid PRIMARY KEY,
    tenant_id     uuid        NOT NULL,
    delivery_id   uuid        NOT NULL REFERENCES webhook_deliveries (id),
    endpoint_id   uuid        NOT NULL,
    message_id    uuid        NOT NULL,
    attempt       integer     NOT NULL,
    -- delivered, status, redirect, timeout, network, refused
    outcome       text        NOT NULL,
    status_code   integer,
    duration_ms   integer     NOT NULL,
    request_url   text        NOT NULL,
    response_body text        NOT NULL DEFAULT '' CHECK (length(response_body) <= 1024),
    started_at    timestamptz NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhook_attempts_endpoint ON webhook_attempts (tenant_id, endpoint_id, created_at DESC, id DESC);
CREATE INDEX webhook_attempts_delivery ON webhook_attempts (delivery_id, attempt);
-- Kept 30 days: the sweep deletes by age.
CREATE INDEX webhook_attempts_age ON webhook_attempts (created_at);
SELECT enable_tenant_table('webhook_attempts');
