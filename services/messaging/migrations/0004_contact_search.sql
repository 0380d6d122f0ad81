-- Contact search served by the trigram (`contacts_search`) and tag (`contacts_tags`) indexes.
--
-- Under row-level security Postgres applies the tenant policy before any condition whose
-- operator is not leakproof; LIKE and array or jsonb containment are not, so as the service role
-- they never become index conditions and a rare word is found by walking the workspace's rows.
-- This function runs as the schema owner, which RLS does not bind (the migrating superuser, or a
-- role with BYPASSRLS; any other owner still gets correct but slow answers, since the tables
-- force RLS), and applies the workspace itself from the very setting the policy reads: it shows
-- a caller nothing the policy would not. It never takes a workspace as a parameter, and returns
-- ids only, which the caller turns into rows through the protected table, where RLS applies again.
CREATE FUNCTION search_contact_ids(
    -- Lower-cased part of a name, email or phone, matched literally; NULL matches any.
    p_text     text,
    -- Tags the contact has every one of; NULL or empty matches any.
    p_tags     text[],
    p_stage    text,
    -- An object the contact's custom fields contain (equality per key); NULL matches any.
    p_fields   jsonb,
    -- Keyset: only contacts strictly before (p_after_at, p_after_id), newest first.
    p_after_at timestamptz,
    p_after_id uuid,
    p_limit    integer
) RETURNS SETOF uuid
LANGUAGE plpgsql STABLE SECURITY DEFINER
-- Each call is planned for its values: a generic plan cannot tell a rare word from a common one,
-- and the `… IS NULL OR …` conditions fold away only when the values are known.
SET plan_cache_mode = force_custom_plan
AS $$
DECLARE
  tenant uuid := nullif(current_setting('nexus.tenant_id', true), '')::uuid;
BEGIN
  -- No workspace, no rows: a system transaction must not search every workspace at once.
  IF tenant IS NULL THEN
    RAISE EXCEPTION 'contact search needs a workspace (nexus.tenant_id)' USING ERRCODE = 'insufficient_privilege';
  END IF;
  IF p_limit IS NULL OR p_limit < 1 OR p_limit > 1001 THEN
    RAISE EXCEPTION 'contact search limit must be 1 to 1001' USING ERRCODE = 'invalid_parameter_value';
  END IF;
  RETURN QUERY
    SELECT c.id FROM contacts c
    WHERE c.tenant_id = tenant
      AND c.merged_into IS NULL
      AND (p_text IS NULL
           OR c.search LIKE '%' || replace(replace(replace(p_text, '\', '\\'), '%', '\%'), '_', '\_') || '%')
      AND (p_tags IS NULL OR cardinality(p_tags) = 0 OR c.tags @> p_tags)
      AND (p_stage IS NULL OR c.stage = p_stage)
      AND (p_fields IS NULL OR c.fields @> p_fields)
      AND (p_after_at IS NULL OR (c.created_at, c.id) < (p_after_at, p_after_id))
    ORDER BY c.created_at DESC, c.id DESC
    LIMIT p_limit;
END
$$;

-- Pinned to this schema (whatever the service's schema is named) with pg_temp last, so a
-- caller's temporary objects cannot stand in for the contacts table; owned by the schema owner.
DO $$
DECLARE
  owner regrole := (SELECT nspowner::regrole FROM pg_namespace WHERE nspname = current_schema());
BEGIN
  EXECUTE format('ALTER FUNCTION search_contact_ids(text, text[], text, jsonb, timestamptz, uuid, integer) '
                 'SET search_path = %I, pg_temp', current_schema());
  EXECUTE format('ALTER FUNCTION search_contact_ids(text, text[], text, jsonb, timestamptz, uuid, integer) '
                 'OWNER TO %s', owner);
END
$$;

-- Functions are executable by everyone by default; only the service role (granted by the
-- migrator after every migration) may call this one.
REVOKE ALL ON FUNCTION search_contact_ids(text, text[], text, jsonb, timestamptz, uuid, integer) FROM PUBLIC;
