-- The audit of delivery outcomes, written by one INSERT per statement instead of one trigger call
-- per row: the worker records hundreds of outcomes in one UPDATE, and the per-row trigger (a
-- PL/pgSQL call, two row-to-jsonb conversions and a single-row INSERT each) made a claim and its
-- outcome cost about 1.4 times what they cost with this one. The records are the ones
-- `audit_row` writes: an update is audited when it changes the status or the attempt count, the
-- lease columns left out; a claim (leases only) still records nothing, at the price of keeping
-- its rows' old and new versions for the statement.
CREATE FUNCTION audit_webhook_deliveries_updated() RETURNS trigger LANGUAGE plpgsql
SET search_path FROM CURRENT AS $$
DECLARE
  redact text[] := coalesce(TG_ARGV::text[], '{}');
  -- The transaction's context, read once for the whole statement.
  ip text := coalesce(current_setting('nexus.client_ip', true), '');
  actor text := coalesce(current_setting('nexus.actor_id', true), '');
  request text := coalesce(current_setting('nexus.request_id', true), '');
  parent text := coalesce(current_setting('nexus.traceparent', true), '');
  state text := coalesce(current_setting('nexus.tracestate', true), '');
BEGIN
  INSERT INTO outbox (id, tenant_id, subject, event_type, audit, actor_id, request_id, traceparent, tracestate)
  SELECT uuid_v7(), n.tenant_id, 'nexus.' || TG_TABLE_SCHEMA || '.audit.recorded', 'nexus.events.v1.AuditRecorded',
         jsonb_build_object('schema', TG_TABLE_SCHEMA, 'table', TG_TABLE_NAME, 'operation', TG_OP,
                            'row_id', n.id::text, 'client_ip', ip,
                            'before', to_jsonb(o) - redact, 'after', to_jsonb(n) - redact),
         actor, request, parent, state
  FROM old_rows o JOIN new_rows n ON n.id = o.id
  WHERE o.status IS DISTINCT FROM n.status OR o.attempts IS DISTINCT FROM n.attempts;
  RETURN NULL;
END
$$;

DROP TRIGGER audit_row_update ON webhook_deliveries;
CREATE TRIGGER audit_row_update AFTER UPDATE ON webhook_deliveries
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
  FOR EACH STATEMENT
  EXECUTE FUNCTION audit_webhook_deliveries_updated('leased_until', 'lease_token', 'next_attempt_at', 'updated_at');
