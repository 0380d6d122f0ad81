-- The credit rules in one place: every change to a workspace's credits is one of the functions
-- below, and `credit_ledger_write` is the only writer of ledger rows. SQL rather than Rust because
-- the hot path (reserve) must be one round trip: the balance row of a busy workspace stays locked
-- from its UPDATE to the commit, and no client round trip may happen in between. The service
-- calls these functions and writes only the events (outbox) around them.
--
-- Invariants kept by every function: available >= 0 and reserved >= 0 (CHECKs), and
-- available = sum(ledger amounts), reserved = sum(held reservations) per workspace.

-- The one writer of ledger rows. With a key, the row is written once per key (grants and
-- purchases); `false` when the key was seen before.
CREATE FUNCTION credit_ledger_write(p_tenant uuid, p_kind text, p_amount bigint, p_after bigint,
                                    p_action text, p_reservation uuid, p_key text)
RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO credit_ledger (tenant_id, kind, amount, balance_after, action, reservation_id, idempotency_key)
    VALUES (p_tenant, p_kind, p_amount, p_after, p_action, p_reservation, p_key)
    ON CONFLICT (tenant_id, idempotency_key) DO NOTHING;
  RETURN FOUND;
END
$$;

-- Adds credits once per key; `p_new_period` resets the period counters. `false`: key seen before
-- (or the workspace has no balance yet).
CREATE FUNCTION grant_credits(p_tenant uuid, p_amount bigint, p_kind text, p_key text, p_new_period boolean)
RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
  avail bigint;
BEGIN
  SELECT b.available INTO avail FROM credit_balances b WHERE b.tenant_id = p_tenant FOR UPDATE;
  IF NOT FOUND OR NOT credit_ledger_write(p_tenant, p_kind, p_amount, avail + p_amount, '', NULL, p_key) THEN
    RETURN false;
  END IF;
  UPDATE credit_balances b SET available = b.available + p_amount,
         period_grant = CASE WHEN p_new_period THEN p_amount ELSE b.period_grant + p_amount END,
         period_used = CASE WHEN p_new_period THEN 0 ELSE b.period_used END, updated_at = now()
   WHERE b.tenant_id = p_tenant;
  RETURN true;
END
$$;

-- The end of a period that does not roll over: what is left expires. Returns how much.
CREATE FUNCTION expire_period_credits(p_tenant uuid)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
  left_over bigint;
BEGIN
  SELECT b.available INTO left_over FROM credit_balances b WHERE b.tenant_id = p_tenant FOR UPDATE;
  IF left_over > 0 THEN
    UPDATE credit_balances b SET available = 0 WHERE b.tenant_id = p_tenant;
    PERFORM credit_ledger_write(p_tenant, 'expire', -left_over, 0, 'period_end', NULL, NULL);
  END IF;
  RETURN coalesce(left_over, 0);
END
$$;

-- The transaction-local settings RLS and the audit trigger read, for functions that run as one
-- autocommitted statement. `ctx` = actor id, request id, client IP, traceparent, tracestate.
CREATE FUNCTION enter_credit_context(p_tenant uuid, ctx text[])
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  PERFORM set_config('nexus.tenant_id', p_tenant::text, true), set_config('nexus.system', '', true),
          set_config('nexus.actor_id', coalesce(ctx[1], ''), true), set_config('nexus.request_id', coalesce(ctx[2], ''), true),
          set_config('nexus.client_ip', coalesce(ctx[3], ''), true), set_config('nexus.traceparent', coalesce(ctx[4], ''), true),
          set_config('nexus.tracestate', coalesce(ctx[5], ''), true);
END
$$;

-- Reserving, same contract as in 0003 (the same key answers with the same reservation and
-- charges nothing; too few credits raise NX402 and keep nothing), its ledger row now written
-- through the one writer.
CREATE OR REPLACE FUNCTION reserve_credits(p_tenant uuid, p_id uuid, p_key text, p_action text, p_amount bigint,
                                           p_ttl_secs double precision, ctx text[])
RETURNS TABLE (r_id uuid, r_action text, r_amount bigint, r_status text, r_committed bigint,
               r_expires_at timestamptz, r_available bigint)
LANGUAGE plpgsql AS $$
DECLARE
  res reservations%ROWTYPE;
  avail bigint;
BEGIN
  PERFORM enter_credit_context(p_tenant, ctx);
  INSERT INTO reservations AS x (id, tenant_id, idempotency_key, action, amount, status, expires_at)
    VALUES (p_id, p_tenant, p_key, p_action, p_amount, 'held', now() + make_interval(secs => p_ttl_secs))
    ON CONFLICT (tenant_id, idempotency_key) DO NOTHING
    RETURNING x.* INTO res;
  IF FOUND THEN
    UPDATE credit_balances b SET available = b.available - p_amount, reserved = b.reserved + p_amount, updated_at = now()
      WHERE b.tenant_id = p_tenant AND b.available >= p_amount
      RETURNING b.available INTO avail;
    IF NOT FOUND THEN
      RAISE EXCEPTION 'insufficient credits' USING ERRCODE = 'NX402';
    END IF;
    PERFORM credit_ledger_write(p_tenant, 'reserve', -p_amount, avail, p_action, p_id, NULL);
  ELSE
    -- Seen this key before: the same reservation, nothing charged again.
    SELECT x.* INTO res FROM reservations x WHERE x.tenant_id = p_tenant AND x.idempotency_key = p_key;
    SELECT b.available INTO avail FROM credit_balances b WHERE b.tenant_id = p_tenant;
  END IF;
  RETURN QUERY SELECT res.id, res.action, res.amount, res.status, res.committed_amount, res.expires_at, avail;
END
$$;

-- Settles reservation `p_id`, locked first:
--   'committed': a held one is charged `p_charge` (NULL = all of it) and the rest comes back;
--   'released' / 'expired': a held one comes back whole;
--   'late': an expired one (its hold already given back) is charged `p_charge` (NULL = all of
--           it) from what is available now, at most all of it.
-- `r_settled` says whether this call changed it; when not, the row is as found (settled before,
-- closed the other way, or — 'committed' only — a charge outside 0..amount) and the caller
-- decides what that means. Never raises for those: a consumer settles inside its own transaction
-- and may try another outcome after this one. No row: no such reservation (in this workspace).
CREATE FUNCTION settle_credits(p_id uuid, p_outcome text, p_charge bigint)
RETURNS TABLE (r_id uuid, r_action text, r_amount bigint, r_status text, r_committed bigint,
               r_expires_at timestamptz, r_available bigint, r_used bigint, r_granted bigint, r_settled boolean)
LANGUAGE plpgsql AS $$
DECLARE
  res reservations%ROWTYPE;
  bal credit_balances%ROWTYPE;
  charge bigint;
  settled boolean := false;
BEGIN
  SELECT x.* INTO res FROM reservations x WHERE x.id = p_id FOR UPDATE;
  IF NOT FOUND THEN
    RETURN;
  END IF;
  charge := coalesce(p_charge, res.amount);
  IF p_outcome = 'committed' AND res.status = 'held' AND charge BETWEEN 0 AND res.amount THEN
    UPDATE credit_balances b SET reserved = b.reserved - res.amount, available = b.available + res.amount - charge,
           period_used = b.period_used + charge, updated_at = now()
     WHERE b.tenant_id = res.tenant_id RETURNING b.* INTO bal;
    PERFORM credit_ledger_write(res.tenant_id, 'commit', res.amount - charge, bal.available, res.action, res.id, NULL);
    settled := true;
  ELSIF p_outcome IN ('released', 'expired') AND res.status = 'held' THEN
    charge := 0;
    UPDATE credit_balances b SET reserved = b.reserved - res.amount, available = b.available + res.amount, updated_at = now()
     WHERE b.tenant_id = res.tenant_id RETURNING b.* INTO bal;
    PERFORM credit_ledger_write(res.tenant_id, 'release', res.amount, bal.available, res.action, res.id, NULL);
    settled := true;
  ELSIF p_outcome = 'late' AND res.status = 'expired' THEN
    SELECT b.* INTO bal FROM credit_balances b WHERE b.tenant_id = res.tenant_id FOR UPDATE;
    charge := least(greatest(charge, 0), res.amount, bal.available);
    UPDATE credit_balances b SET available = b.available - charge, period_used = b.period_used + charge, updated_at = now()
     WHERE b.tenant_id = res.tenant_id RETURNING b.* INTO bal;
    PERFORM credit_ledger_write(res.tenant_id, 'commit', -charge, bal.available, res.action, res.id, NULL);
    settled := true;
  ELSE
    SELECT b.* INTO bal FROM credit_balances b WHERE b.tenant_id = res.tenant_id;
  END IF;
  IF settled THEN
    UPDATE reservations x SET status = CASE WHEN p_outcome = 'late' THEN 'committed' ELSE p_outcome END,
           committed_amount = charge, settled_at = now()
     WHERE x.id = res.id RETURNING x.* INTO res;
  END IF;
  RETURN QUERY SELECT res.id, res.action, res.amount, res.status, res.committed_amount, res.expires_at,
                      bal.available, bal.period_used, bal.period_grant, settled;
END
$$;

-- Gives back up to `p_limit` held reservations past their expiry (a system transaction: every
-- workspace). Returns how many.
CREATE FUNCTION expire_credits(p_limit integer)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
  due uuid;
  n integer := 0;
BEGIN
  FOR due IN SELECT x.id FROM reservations x WHERE x.status = 'held' AND x.expires_at <= now()
             ORDER BY x.expires_at LIMIT p_limit FOR UPDATE SKIP LOCKED LOOP
    PERFORM settle_credits(due, 'expired', NULL);
    n := n + 1;
  END LOOP;
  RETURN n;
END
$$;
