-- A reservation is audited once: the INSERT of its `reservations` row, in the same transaction as
-- its `reserve` ledger row, records the change (id, action, amount) with actor, request and trace.
-- Auditing the ledger row as well added a second audit record (and outbox row) to every
-- reservation, the hottest path. Every other ledger row (grants, commits, releases, expiries)
-- stays audited; the ledger is append-only (UPDATE and DELETE raise), so its INSERTs are all
-- there is to audit.
DROP TRIGGER audit_row ON credit_ledger;
CREATE TRIGGER audit_row AFTER INSERT ON credit_ledger FOR EACH ROW WHEN (NEW.kind <> 'reserve')
  EXECUTE FUNCTION audit_row();
