-- Platform objects every service schema gets before its own migrations: the transactional outbox,
-- the consumer inbox, the audit trigger and the helper that makes a table a tenant table.
-- Runs with search_path set to the service schema; functions resolve the schema at run time
-- (TG_TABLE_SCHEMA) so nothing depends on the caller's search_path.

-- Time-ordered UUIDs (RFC 9562 v7) for rows created inside the database.
CREATE FUNCTION uuid_v7() RETURNS uuid LANGUAGE sql VOLATILE AS $$
  SELECT encode(
    set_bit(set_bit(
      overlay(uuid_send(gen_random_uuid())
              placing substring(int8send((extract(epoch FROM clock_timestamp()) * 1000)::bigint) FROM 3)
              FROM 1 FOR 6),
      52, 1), 53, 1),
    'hex')::uuid
$$;

-- Events waiting to be published. A row commits together with the state change it describes;
-- the relay publishes it with Nats-Msg-Id = id and sets published_at only after the ack.
CREATE TABLE outbox (
    seq            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id             uuid        NOT NULL UNIQUE,
    tenant_id      uuid,
    subject        text        NOT NULL,
    event_type     text        NOT NULL,
    schema_version integer     NOT NULL DEFAULT 1,
    payload        bytea,
    audit          jsonb,
    actor_id       text        NOT NULL DEFAULT '',
    request_id     text        NOT NULL DEFAULT '',
    traceparent    text        NOT NULL DEFAULT '',
    tracestate     text        NOT NULL DEFAULT '',
    occurred_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
    published_at   timestamptz,
    CHECK (payload IS NOT NULL OR audit IS NOT NULL)
);
CREATE INDEX outbox_pending ON outbox (seq) WHERE published_at IS NULL;
CREATE INDEX outbox_published ON outbox (published_at) WHERE published_at IS NOT NULL;

-- Wake the relay at commit instead of waiting for its next poll.
CREATE FUNCTION outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('nexus_outbox_' || TG_TABLE_SCHEMA, '');
  RETURN NULL;
END
$$;
CREATE TRIGGER outbox_notify AFTER INSERT ON outbox FOR EACH STATEMENT EXECUTE FUNCTION outbox_notify();

-- Events a consumer has applied, recorded in the same transaction as the effect.
CREATE TABLE inbox (
    consumer   text        NOT NULL,
    event_id   uuid        NOT NULL,
    handled_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_id)
);

-- Audit: every change of a tenant row becomes an AuditRecorded event in the same transaction.
-- Actor, request id, client IP and trace context come from transaction settings the platform sets.
-- Trigger arguments name columns to leave out (password hashes, ciphertexts).
CREATE FUNCTION audit_row() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  redact text[] := coalesce(TG_ARGV::text[], '{}');
  before jsonb;
  after  jsonb;
BEGIN
  IF TG_OP <> 'INSERT' THEN before := to_jsonb(OLD) - redact; END IF;
  IF TG_OP <> 'DELETE' THEN after := to_jsonb(NEW) - redact; END IF;
  IF TG_OP = 'UPDATE' AND before = after THEN
    RETURN NULL;
  END IF;
  EXECUTE format(
    'INSERT INTO %I.outbox (id, tenant_id, subject, event_type, audit, actor_id, request_id, traceparent, tracestate)
     VALUES (%I.uuid_v7(), $1, $2, $3, $4, $5, $6, $7, $8)',
    TG_TABLE_SCHEMA, TG_TABLE_SCHEMA)
  USING
    coalesce(after ->> 'tenant_id', before ->> 'tenant_id')::uuid,
    'nexus.' || TG_TABLE_SCHEMA || '.audit.recorded',
    'nexus.events.v1.AuditRecorded',
    jsonb_build_object(
      'schema', TG_TABLE_SCHEMA,
      'table', TG_TABLE_NAME,
      'operation', TG_OP,
      'row_id', coalesce(after ->> 'id', before ->> 'id', ''),
      'client_ip', coalesce(current_setting('nexus.client_ip', true), ''),
      'before', before,
      'after', after),
    coalesce(current_setting('nexus.actor_id', true), ''),
    coalesce(current_setting('nexus.request_id', true), ''),
    coalesce(current_setting('nexus.traceparent', true), ''),
    coalesce(current_setting('nexus.tracestate', true), '');
  RETURN NULL;
END
$$;

-- The one helper that makes a table a tenant table: Row Level Security forced (so it binds the
-- service role and the owner alike) with the standard policy, plus the audit trigger.
-- `nexus.system = on` is set only by the platform's explicit system transactions (sweepers that
-- must see every tenant, such as reservation expiry).
CREATE FUNCTION enable_tenant_table(tbl regclass, redact text[] DEFAULT '{}') RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
  tbl_schema text;
  args text;
  predicate text := $p$(tenant_id = nullif(current_setting('nexus.tenant_id', true), '')::uuid
                        OR coalesce(current_setting('nexus.system', true), '') = 'on')$p$;
BEGIN
  SELECT n.nspname INTO tbl_schema
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = tbl;
  SELECT coalesce(string_agg(quote_literal(x), ', '), '') INTO args FROM unnest(redact) AS x;
  EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', tbl);
  EXECUTE format('ALTER TABLE %s FORCE ROW LEVEL SECURITY', tbl);
  EXECUTE format('DROP POLICY IF EXISTS tenant_isolation ON %s', tbl);
  EXECUTE format('CREATE POLICY tenant_isolation ON %s USING %s WITH CHECK %s', tbl, predicate, predicate);
  EXECUTE format('DROP TRIGGER IF EXISTS audit_row ON %s', tbl);
  EXECUTE format('CREATE TRIGGER audit_row AFTER INSERT OR UPDATE OR DELETE ON %s FOR EACH ROW EXECUTE FUNCTION %I.audit_row(%s)',
                 tbl, tbl_schema, args);
END
$$;
