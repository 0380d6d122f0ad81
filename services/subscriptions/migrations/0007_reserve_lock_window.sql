-- A busy workspace's reservations queue on its balance row: each holds the row lock from its
-- UPDATE to its commit, so everything done inside that window is paid once per reservation by
-- every reservation behind it. This migration makes the window hold as little as possible.
-- (Committing without waiting for the WAL flush would shorten it most, but a reservation is money:
-- synchronous_commit stays on, so a confirmed hold survives a crash.)
--
-- 1. Ledger rows without an idempotency key (reserve, commit, release, expire: all but grants and
--    purchases) can never conflict, so the one writer inserts them plainly instead of through
--    ON CONFLICT's speculative insertion (which also writes a second WAL record per row).
-- 2. The key's unique index covers only rows that have a key: the keyless rows were entries of
--    that index that no lookup could ever find.
-- 3. The reservation's ledger row id is made before the balance row is locked.

CREATE UNIQUE INDEX credit_ledger_key ON credit_ledger (tenant_id, idempotency_key) WHERE idempotency_key IS NOT NULL;
ALTER TABLE credit_ledger DROP CONSTRAINT credit_ledger_tenant_id_idempotency_key_key;

DROP FUNCTION credit_ledger_write(uuid, text, bigint, bigint, text, uuid, text);

-- The one writer of ledger rows. With a key, the row is written once per key (grants and
-- purchases); `false` when the key was seen before. `p_id`: the row's id (a new one when NULL).
CREATE FUNCTION credit_ledger_write(p_tenant uuid, p_kind text, p_amount bigint, p_after bigint,
                                    p_action text, p_reservation uuid, p_key text, p_id uuid DEFAULT NULL)
RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
  IF p_key IS NULL THEN
    INSERT INTO credit_ledger (id, tenant_id, kind, amount, balance_after, action, reservation_id)
      VALUES (coalesce(p_id, uuid_v7()), p_tenant, p_kind, p_amount, p_after, p_action, p_reservation);
    RETURN true;
  END IF;
  INSERT INTO credit_ledger (id, tenant_id, kind, amount, balance_after, action, reservation_id, idempotency_key)
    VALUES (coalesce(p_id, uuid_v7()), p_tenant, p_kind, p_amount, p_after, p_action, p_reservation, p_key)
    ON CONFLICT (tenant_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING;
  RETURN FOUND;
END
$$;

-- Same contract as in 0005. Everything that does not need the balance happens before its UPDATE:
-- the context, the reservation row (and its audit record), the ledger row's id.
CREATE OR REPLACE FUNCTION reserve_credits(p_tenant uuid, p_id uuid, p_key text, p_action text, p_amount bigint,
                                           p_ttl_secs double precision, ctx text[])
RETURNS TABLE (r_id uuid, r_action text, r_amount bigint, r_status text, r_committed bigint,
               r_expires_at timestamptz, r_available bigint)
LANGUAGE plpgsql AS $$
DECLARE
  res reservations%ROWTYPE;
  avail bigint;
  entry uuid;
BEGIN
  PERFORM enter_credit_context(p_tenant, ctx);
  INSERT INTO reservations AS x (id, tenant_id, idempotency_key, action, amount, status, expires_at)
    VALUES (p_id, p_tenant, p_key, p_action, p_amount, 'held', now() + make_interval(secs => p_ttl_secs))
    ON CONFLICT (tenant_id, idempotency_key) DO NOTHING
    RETURNING x.* INTO res;
  IF FOUND THEN
    entry := uuid_v7();
    -- From here to the commit the balance row is locked.
    UPDATE credit_balances b SET available = b.available - p_amount, reserved = b.reserved + p_amount, updated_at = now()
      WHERE b.tenant_id = p_tenant AND b.available >= p_amount
      RETURNING b.available INTO avail;
    IF NOT FOUND THEN
      RAISE EXCEPTION 'insufficient credits' USING ERRCODE = 'NX402';
    END IF;
    PERFORM credit_ledger_write(p_tenant, 'reserve', -p_amount, avail, p_action, p_id, NULL, entry);
  ELSE
    -- Seen this key before: the same reservation, nothing charged again.
    SELECT x.* INTO res FROM reservations x WHERE x.tenant_id = p_tenant AND x.idempotency_key = p_key;
    SELECT b.available INTO avail FROM credit_balances b WHERE b.tenant_id = p_tenant;
  END IF;
  RETURN QUERY SELECT res.id, res.action, res.amount, res.status, res.committed_amount, res.expires_at, avail;
END
$$;

-- Reservations of several callers of one workspace in one statement (the service gathers the
-- callers that arrive while the workspace's previous statement runs): each item is exactly
-- `reserve_credits` (same key, same reservation; too few credits keep nothing of that item),
-- but the batch shares one round trip, one commit and one wait for the balance row. An item
-- refused for too few credits gives no row; the others go on. `ctxs` holds the five audit
-- settings of each item in turn (see enter_credit_context), so every reservation's audit record
-- names its own actor and request.
CREATE FUNCTION reserve_credits_many(p_tenant uuid, p_ids uuid[], p_keys text[], p_actions text[], p_amounts bigint[],
                                     p_ttl_secs double precision[], ctxs text[])
RETURNS TABLE (r_item integer, r_id uuid, r_action text, r_amount bigint, r_status text, r_committed bigint,
               r_expires_at timestamptz, r_available bigint)
LANGUAGE plpgsql AS $$
DECLARE
  i integer;
BEGIN
  FOR i IN 1 .. coalesce(array_length(p_ids, 1), 0) LOOP
    BEGIN
      r_item := i;
      SELECT x.r_id, x.r_action, x.r_amount, x.r_status, x.r_committed, x.r_expires_at, x.r_available
        INTO r_id, r_action, r_amount, r_status, r_committed, r_expires_at, r_available
        FROM reserve_credits(p_tenant, p_ids[i], p_keys[i], p_actions[i], p_amounts[i], p_ttl_secs[i],
                             ctxs[5 * i - 4 : 5 * i]) x;
      RETURN NEXT;
    EXCEPTION WHEN SQLSTATE 'NX402' THEN
      NULL; -- this item only: nothing of it is kept
    END;
  END LOOP;
END
$$;
