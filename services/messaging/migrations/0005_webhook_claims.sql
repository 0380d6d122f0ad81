-- Claiming due webhook deliveries in one autocommitted statement instead of a transaction of
-- five round trips (begin, settings, synchronous_commit, claim, commit): the worker claims ahead
-- while deliveries are on the wire, and an idle worker polls with this same call.
-- Same rules as before: oldest due first, rows another worker is claiming are skipped, a lease
-- and a fresh token per row; only unindexed columns change (a heap-only update, no audit).
CREATE FUNCTION claim_webhook_deliveries(p_now timestamptz, p_lease_until timestamptz, p_limit integer)
RETURNS TABLE (id uuid, tenant_id uuid, endpoint_id uuid, message_id uuid, attempts integer, lease_token uuid,
               url text, endpoint_status text, rate_limit integer, secret_sealed text,
               previous_secret_sealed text, previous_expires_at timestamptz, event_type text, payload text,
               message_created_at timestamptz)
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
#variable_conflict use_column
BEGIN
  -- Across workspaces, as the worker works. A claim lost to a database crash only makes its
  -- deliveries claimable again, which at-least-once delivery allows: its commit need not wait
  -- for the disk (records of outcomes do).
  PERFORM set_config('nexus.system', 'on', true), set_config('nexus.tenant_id', '', true),
          set_config('synchronous_commit', 'off', true);
  RETURN QUERY
    WITH due AS (
      SELECT d.id FROM webhook_deliveries d
      WHERE d.status = 'pending' AND d.next_attempt_at <= p_now
        AND (d.leased_until IS NULL OR d.leased_until <= p_now)
      ORDER BY d.next_attempt_at LIMIT p_limit FOR UPDATE SKIP LOCKED)
    UPDATE webhook_deliveries d SET leased_until = p_lease_until, lease_token = gen_random_uuid()
    FROM due, webhook_endpoints e, webhook_messages m
    WHERE d.id = due.id AND e.id = d.endpoint_id AND m.id = d.message_id
    RETURNING d.id, d.tenant_id, d.endpoint_id, d.message_id, d.attempts, d.lease_token, e.url, e.status,
              e.rate_limit, e.secret_sealed, e.previous_secret_sealed, e.previous_expires_at, m.event_type,
              m.payload::text, m.created_at;
END
$$;
