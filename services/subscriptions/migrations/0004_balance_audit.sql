-- credit_balances is the running sum of credit_ledger: every change to it is written together with
-- a ledger row (append-only, itself audited with actor and request) in the same transaction.
-- Auditing its updates as well added a third audit record to every reservation, commit and release
-- on the hottest path; creating or deleting a balance row stays audited.
DROP TRIGGER audit_row ON credit_balances;
CREATE TRIGGER audit_row AFTER INSERT OR DELETE ON credit_balances FOR EACH ROW EXECUTE FUNCTION audit_row();
