-- Outbound webhooks: endpoints of the workspace's own systems, the messages for them, and a
-- durable delivery schedule (a row per endpoint and message) with every attempt recorded.

CREATE TABLE webhook_endpoints (
    id                      uuid PRIMARY KEY,
    tenant_id               uuid        NOT NULL,
    url                     text        NOT NULL CHECK (length(url) <= 2048),
    description             text        NOT NULL DEFAULT '' CHECK (length(description) <= 500),
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
    updated_at              timestamptz NOT NULL DEFAULT now(),
    CHECK ((previous_secret_sealed IS NULL) = (previous_expires_at IS NULL))
);
CREATE INDEX webhook_endpoints_recent ON webhook_endpoints (tenant_id, created_at DESC, id DESC);
SELECT enable_tenant_table('webhook_endpoints', ARRAY['secret_sealed', 'previous_secret_sealed']);

-- One message per platform event (or test-send), the same `webhook-id` on every attempt.
CREATE TABLE webhook_messages (
    id         uuid PRIMARY KEY,
    tenant_id  uuid        NOT NULL,
    event_type text        NOT NULL,
    -- The source event's id: an event consumed twice makes one message.
    event_key  text        NOT NULL CHECK (length(event_key) BETWEEN 1 AND 200),
    payload    jsonb       NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, event_key)
);
CREATE INDEX webhook_messages_recent ON webhook_messages (tenant_id, created_at DESC, id DESC);
CREATE INDEX webhook_messages_type ON webhook_messages (tenant_id, event_type, created_at DESC, id DESC);
-- Messages are kept 30 days (as far back as a replay reaches): the sweep deletes by age.
CREATE INDEX webhook_messages_age ON webhook_messages (created_at);
SELECT enable_tenant_table('webhook_messages');

-- Deleting an endpoint deletes its schedule and attempts log with it.
CREATE TABLE webhook_deliveries (
    id              uuid PRIMARY KEY,
    tenant_id       uuid        NOT NULL,
    endpoint_id     uuid        NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    message_id      uuid        NOT NULL REFERENCES webhook_messages (id),
    status          text        NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'succeeded', 'failed', 'cancelled')),
    -- Attempts made since the delivery was (re)scheduled.
    attempts        integer     NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    -- A worker holds the delivery until then (longer than one attempt can take); a crash lets
    -- the lease run out and another worker retry. The token tells a late worker that its claim
    -- was taken over, so it records nothing. Neither column is indexed: a claim is a HOT update.
    leased_until    timestamptz,
    lease_token     uuid,
    succeeded_at    timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (endpoint_id, message_id)
) WITH (fillfactor = 80); -- room on each page for the claims' heap-only updates
-- What the worker scans: pending rows by due time (a succeeded row is never claimed again).
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_message ON webhook_deliveries (tenant_id, message_id);
CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries (endpoint_id) WHERE status = 'pending';
SELECT enable_tenant_table('webhook_deliveries', ARRAY['leased_until', 'lease_token', 'next_attempt_at', 'updated_at']);
-- Leases are bookkeeping of the worker, not changes of the delivery: an update is audited when
-- it changes the status or the attempt count (each attempt's outcome), so a claim costs no
-- trigger call at all on the hot path.
DROP TRIGGER audit_row ON webhook_deliveries;
CREATE TRIGGER audit_row AFTER INSERT OR DELETE ON webhook_deliveries FOR EACH ROW
  EXECUTE FUNCTION audit_row('leased_until', 'lease_token', 'next_attempt_at', 'updated_at');
CREATE TRIGGER audit_row_update AFTER UPDATE ON webhook_deliveries FOR EACH ROW
  WHEN (OLD.status IS DISTINCT FROM NEW.status OR OLD.attempts IS DISTINCT FROM NEW.attempts)
  EXECUTE FUNCTION audit_row('leased_until', 'lease_token', 'next_attempt_at', 'updated_at');

CREATE TABLE webhook_attempts (
    id              uuid PRIMARY KEY,
    tenant_id       uuid        NOT NULL,
    delivery_id     uuid        NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
    endpoint_id     uuid        NOT NULL,
    message_id      uuid        NOT NULL,
    attempt         integer     NOT NULL,
    -- delivered, status, redirect, timeout, network, refused
    outcome         text        NOT NULL
                    CHECK (outcome IN ('delivered', 'status', 'redirect', 'timeout', 'network', 'refused')),
    status_code     integer,
    duration_ms     integer     NOT NULL,
    request_url     text        NOT NULL,
    -- The headers sent (the signature is a MAC of this body, not a secret) and the body's digest.
    request_headers jsonb       NOT NULL DEFAULT '{}',
    request_sha256  text        NOT NULL DEFAULT '',
    response_body   text        NOT NULL DEFAULT '' CHECK (length(response_body) <= 1024),
    -- The worker's clock: the schedule and the 30-day sweep read it.
    started_at      timestamptz NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhook_attempts_endpoint ON webhook_attempts (tenant_id, endpoint_id, started_at DESC, id DESC);
CREATE INDEX webhook_attempts_delivery ON webhook_attempts (delivery_id, attempt);
-- Kept 30 days: the sweep deletes by age.
CREATE INDEX webhook_attempts_age ON webhook_attempts (started_at);
SELECT enable_tenant_table('webhook_attempts', ARRAY['request_headers', 'response_body']);
-- The attempts log is itself the record of what the worker did, and each attempt's effect is
-- audited once, by its delivery's update in the same transaction (status, attempt count) — as a
-- reservation is audited once by its reservations row (subscriptions 0006). Attempts are never
-- updated; the trigger stays for any update, and the 30-day sweep's deletes are retention.
DROP TRIGGER audit_row ON webhook_attempts;
CREATE TRIGGER audit_row AFTER UPDATE ON webhook_attempts FOR EACH ROW
  EXECUTE FUNCTION audit_row('request_headers', 'response_body');
