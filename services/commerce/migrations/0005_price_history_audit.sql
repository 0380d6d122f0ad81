-- A price-history row is written only with the variant change it records, and that variant's own
-- audit images carry the same figures (old and new cost, price and stock): auditing the insert
-- too wrote every monitored change to the audit trail twice. Inserts are left out; a change to
-- or deletion of history is still audited.
DROP TRIGGER IF EXISTS audit_row ON price_history;
CREATE TRIGGER audit_row AFTER UPDATE OR DELETE ON price_history FOR EACH ROW EXECUTE FUNCTION audit_row();
