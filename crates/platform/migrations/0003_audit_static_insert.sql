-- The audit trigger without dynamic SQL: `EXECUTE format(...)` parsed and planned the outbox
-- INSERT on every audited row change, which made it the largest cost of hot paths such as credit
-- reservations. The function now pins its search_path to the service schema it was created in
-- (migrations run with search_path = that schema), so the INSERT is planned once per session and
-- still never depends on the caller's search_path.
CREATE OR REPLACE FUNCTION audit_row() RETURNS trigger LANGUAGE plpgsql
SET search_path FROM CURRENT AS $$
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
  INSERT INTO outbox (id, tenant_id, subject, event_type, audit, actor_id, request_id, traceparent, tracestate)
  VALUES (uuid_v7(),
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
    coalesce(current_setting('nexus.tracestate', true), ''));
  RETURN NULL;
END
$$;
