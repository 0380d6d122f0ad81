-- Reserving credits in one autocommitted statement. The balance row of a busy workspace is locked
-- from its UPDATE until the commit; doing the whole reservation server-side keeps the client's
-- round trips out of that window. Same rules as before: the same idempotency key returns the same
-- reservation and charges nothing; too few credits raise NX402 and leave nothing behind.
-- `ctx` = actor id, request id, client IP, traceparent, tracestate (for the audit trail).
CREATE FUNCTION reserve_credits(p_tenant uuid, p_id uuid, p_key text, p_action text, p_amount bigint,
                                p_ttl_secs double precision, ctx text[])
RETURNS TABLE (r_id uuid, r_action text, r_amount bigint, r_status text, r_committed bigint,
               r_expires_at timestamptz, r_available bigint)
LANGUAGE plpgsql AS $$
DECLARE
  res reservations%ROWTYPE;
  avail bigint;
BEGIN
  PERFORM set_config('nexus.tenant_id', p_tenant::text, true), set_config('nexus.system', '', true),
          set_config('nexus.actor_id', coalesce(ctx[1], ''), true), set_config('nexus.request_id', coalesce(ctx[2], ''), true),
          set_config('nexus.client_ip', coalesce(ctx[3], ''), true), set_config('nexus.traceparent', coalesce(ctx[4], ''), true),
          set_config('nexus.tracestate', coalesce(ctx[5], ''), true);
  INSERT INTO reservations AS x (id, tenant_id, idempotency_key, action, amount, status, expires_at)
    VALUES (p_id, p_tenant, p_key, p_action, p_amount, 'held', now() + make_interval(secs => p_ttl_secs))
    ON CONFLICT (tenant_id, idempotency_key) DO NOTHING
    RETURNING x.* INTO res;
  IF NOT FOUND THEN
    -- Seen this key before: the same reservation, nothing charged again.
    SELECT x.* INTO res FROM reservations x WHERE x.tenant_id = p_tenant AND x.idempotency_key = p_key;
    SELECT b.available INTO avail FROM credit_balances b WHERE b.tenant_id = p_tenant;
  ELSE
    UPDATE credit_balances b SET available = b.available - p_amount, reserved = b.reserved + p_amount, updated_at = now()
      WHERE b.tenant_id = p_tenant AND b.available >= p_amount
      RETURNING b.available INTO avail;
    IF NOT FOUND THEN
      RAISE EXCEPTION 'insufficient credits' USING ERRCODE = 'NX402';
    END IF;
    INSERT INTO credit_ledger (tenant_id, kind, amount, balance_after, action, reservation_id)
      VALUES (p_tenant, 'reserve', -p_amount, avail, p_action, p_id);
  END IF;
  RETURN QUERY SELECT res.id, res.action, res.amount, res.status, res.committed_amount, res.expires_at, avail;
END
$$;
