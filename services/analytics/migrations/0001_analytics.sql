-- Analytics: per-workspace settings and write keys, the partitioned event store, the audit trail
-- (system_logs) and what the reports need to know about plans.

-- Report defaults and retention per workspace. The salt hashes personal data before it is
-- stored; it is sealed (AES-GCM under the service's keys) and never leaves the service.
CREATE TABLE workspace_settings (
    tenant_id      uuid PRIMARY KEY,
    time_zone      text        NOT NULL DEFAULT 'UTC',
    retention_days integer     NOT NULL CHECK (retention_days BETWEEN 1 AND 3650),
    salt_sealed    text        NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);
SELECT enable_tenant_table('workspace_settings', ARRAY['salt_sealed']);

-- Browser write keys: only the SHA-256 of the key is matched; the sealed copy lets an admin see
-- the key again. At most one active key per workspace.
CREATE TABLE write_keys (
    id              uuid PRIMARY KEY,
    tenant_id       uuid        NOT NULL,
    key_hash        bytea       NOT NULL UNIQUE,
    key_sealed      text        NOT NULL,
    allowed_origins text[]      NOT NULL DEFAULT '{}',
    created_at      timestamptz NOT NULL DEFAULT now(),
    revoked_at      timestamptz
);
CREATE UNIQUE INDEX write_keys_one_active ON write_keys (tenant_id) WHERE revoked_at IS NULL;
SELECT enable_tenant_table('write_keys', ARRAY['key_hash', 'key_sealed']);

-- The plan each workspace is on (from subscriptions events), so usage can be told per plan.
CREATE TABLE workspace_plans (
    tenant_id  uuid PRIMARY KEY,
    plan_code  text        NOT NULL,
    updated_at timestamptz NOT NULL
);
SELECT enable_tenant_table('workspace_plans');

-- Every tracked and domain event. Partitioned by month on occurred_at; the unique key includes
-- the partition key, and an event's time is part of the event, so a replay lands on the same
-- row and is dropped. No raw personal data: IPs truncated, emails and phones hashed.
CREATE TABLE analytics_events (
    tenant_id       uuid        NOT NULL,
    client_event_id text        NOT NULL,
    name            text        NOT NULL,
    -- "track" (tracking API) or the producing service of a domain event.
    source          text        NOT NULL,
    occurred_at     timestamptz NOT NULL,
    received_at     timestamptz NOT NULL,
    anonymous_id    text,
    user_id         text,
    properties      jsonb       NOT NULL DEFAULT '{}',
    revenue_minor   bigint,
    currency        text,
    utm_source      text,
    utm_medium      text,
    utm_campaign    text,
    utm_term        text,
    utm_content     text,
    page_url        text,
    referrer        text,
    ip              inet,
    CHECK ((revenue_minor IS NULL) = (currency IS NULL)),
    UNIQUE (tenant_id, client_event_id, occurred_at)
) PARTITION BY RANGE (occurred_at);
CREATE INDEX analytics_events_time ON analytics_events (tenant_id, occurred_at);
CREATE INDEX analytics_events_name_time ON analytics_events (tenant_id, name, occurred_at);
-- Events outside every monthly partition still have a home; creating their month moves them.
CREATE TABLE analytics_events_default PARTITION OF analytics_events DEFAULT;
SELECT enable_tenant_table('analytics_events');
-- Events are facts, not edits: inserting one is not audited (the row is its own record; there
-- are millions). Any later change to a stored event is.
DROP TRIGGER audit_row ON analytics_events;
CREATE TRIGGER audit_row AFTER UPDATE ON analytics_events FOR EACH ROW EXECUTE FUNCTION audit_row();

-- Tracked client event ids already stored, whatever time their event carried: an event retried
-- by a client that sent no timestamp gets another time of receipt, and must still be recognised.
CREATE TABLE analytics_event_ids (
    tenant_id       uuid        NOT NULL,
    client_event_id text        NOT NULL,
    occurred_at     timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, client_event_id)
);
CREATE INDEX analytics_event_ids_time ON analytics_event_ids (tenant_id, occurred_at);
SELECT enable_tenant_table('analytics_event_ids');
DROP TRIGGER audit_row ON analytics_event_ids;
CREATE TRIGGER audit_row AFTER UPDATE ON analytics_event_ids FOR EACH ROW EXECUTE FUNCTION audit_row();

-- The audit trail: one row per AuditRecorded event of any service (id = the event id).
CREATE TABLE system_logs (
    id            uuid PRIMARY KEY,
    tenant_id     uuid,
    at            timestamptz NOT NULL,
    actor         text        NOT NULL DEFAULT '',
    action        text        NOT NULL,
    service       text        NOT NULL,
    resource_type text        NOT NULL,
    resource_id   text        NOT NULL DEFAULT '',
    before        jsonb,
    after         jsonb,
    ip            inet,
    request_id    text        NOT NULL DEFAULT ''
);
CREATE INDEX system_logs_tenant_time ON system_logs (tenant_id, at DESC, id DESC);
CREATE INDEX system_logs_actor ON system_logs (tenant_id, actor, at DESC);
CREATE INDEX system_logs_resource ON system_logs (tenant_id, resource_type, resource_id, at DESC);
SELECT enable_tenant_table('system_logs');
DROP TRIGGER audit_row ON system_logs;
CREATE TRIGGER audit_row AFTER UPDATE ON system_logs FOR EACH ROW EXECUTE FUNCTION audit_row();

-- The trail is append-only: entries are never edited (retention may delete old ones).
CREATE FUNCTION system_logs_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'system_logs is append-only' USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER system_logs_append_only BEFORE UPDATE ON system_logs
  FOR EACH ROW EXECUTE FUNCTION system_logs_append_only();

-- Row Level Security on one partition, the same policy as the parent's: the parent's policy does
-- not apply to a partition addressed directly.
CREATE FUNCTION analytics_protect_partition(part regclass) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
  predicate text := $p$(tenant_id = nullif(current_setting('nexus.tenant_id', true), '')::uuid
                        OR coalesce(current_setting('nexus.system', true), '') = 'on')$p$;
BEGIN
  EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', part);
  EXECUTE format('ALTER TABLE %s FORCE ROW LEVEL SECURITY', part);
  EXECUTE format('DROP POLICY IF EXISTS tenant_isolation ON %s', part);
  EXECUTE format('CREATE POLICY tenant_isolation ON %s USING %s WITH CHECK %s', part, predicate, predicate);
  EXECUTE format('REVOKE ALL ON %s FROM PUBLIC', part);
END
$$;
SELECT analytics_protect_partition('analytics_events_default');

-- Creates the partition of the month starting at `month_start` (UTC) if missing, moving any of
-- its rows out of the default partition first. Runs as the schema owner: the service role may
-- not create or attach tables. Returns the partition's name.
CREATE FUNCTION analytics_ensure_partition(month_start date) RETURNS text
LANGUAGE plpgsql SECURITY DEFINER AS $$
DECLARE
  first date := date_trunc('month', month_start)::date;
  part text := 'analytics_events_' || to_char(first, 'YYYYMM');
  lo timestamptz := first::timestamp AT TIME ZONE 'UTC';
  hi timestamptz := (first + interval '1 month')::timestamp AT TIME ZONE 'UTC';
  was_system text := coalesce(current_setting('nexus.system', true), '');
BEGIN
  IF to_regclass(part) IS NOT NULL THEN
    RETURN part;
  END IF;
  PERFORM pg_advisory_xact_lock(hashtext('nexus.analytics.partitions'));
  IF to_regclass(part) IS NOT NULL THEN
    RETURN part;
  END IF;
  -- The owner is bound by forced RLS too; moving rows of every tenant is a system action.
  PERFORM set_config('nexus.system', 'on', true);
  EXECUTE format('CREATE TABLE %I (LIKE analytics_events INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', part);
  EXECUTE format(
    'WITH moved AS (DELETE FROM analytics_events_default WHERE occurred_at >= %L AND occurred_at < %L RETURNING *)
     INSERT INTO %I SELECT * FROM moved', lo, hi, part);
  EXECUTE format('ALTER TABLE analytics_events ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)', part, lo, hi);
  PERFORM analytics_protect_partition(part::regclass);
  PERFORM set_config('nexus.system', was_system, true);
  RETURN part;
END
$$;

-- Drops monthly partitions that end at or before `cutoff`; returns how many. No retention is
-- shorter than a day, so a cutoff later than that is refused rather than obeyed.
CREATE FUNCTION analytics_drop_partitions_before(cutoff timestamptz) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER AS $$
DECLARE
  child record;
  ends timestamptz;
  dropped integer := 0;
BEGIN
  IF cutoff > now() - interval '1 day' THEN
    RAISE EXCEPTION 'refusing to drop partitions newer than a day (cutoff %)', cutoff;
  END IF;
  FOR child IN
    SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
    WHERE i.inhparent = 'analytics_events'::regclass AND c.relname ~ '^analytics_events_[0-9]{6}$'
  LOOP
    ends := (to_date(right(child.relname, 6), 'YYYYMM') + interval '1 month')::timestamp AT TIME ZONE 'UTC';
    IF ends <= cutoff THEN
      EXECUTE format('DROP TABLE %I', child.relname);
      dropped := dropped + 1;
    END IF;
  END LOOP;
  RETURN dropped;
END
$$;

-- Owner-privileged functions resolve names in this schema only, never a caller's temp schema.
DO $$
BEGIN
  EXECUTE format('ALTER FUNCTION analytics_ensure_partition(date) SET search_path = %I, pg_temp', current_schema());
  EXECUTE format('ALTER FUNCTION analytics_drop_partitions_before(timestamptz) SET search_path = %I, pg_temp', current_schema());
  EXECUTE format('ALTER FUNCTION analytics_protect_partition(regclass) SET search_path = %I, pg_temp', current_schema());
END
$$;
