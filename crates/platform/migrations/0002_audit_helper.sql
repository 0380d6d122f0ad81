-- Audit for tables that are not per tenant (users, sessions): the same trigger, no RLS policy.
CREATE FUNCTION enable_audit(tbl regclass, redact text[] DEFAULT '{}') RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
  tbl_schema text;
  args text;
BEGIN
  SELECT n.nspname INTO tbl_schema
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = tbl;
  SELECT coalesce(string_agg(quote_literal(x), ', '), '') INTO args FROM unnest(redact) AS x;
  EXECUTE format('DROP TRIGGER IF EXISTS audit_row ON %s', tbl);
  EXECUTE format('CREATE TRIGGER audit_row AFTER INSERT OR UPDATE OR DELETE ON %s FOR EACH ROW EXECUTE FUNCTION %I.audit_row(%s)',
                 tbl, tbl_schema, args);
END
$$;
