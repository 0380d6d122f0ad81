-- The relay finds new rows by probing the partial index `outbox_pending` every few milliseconds
-- instead of being woken by a NOTIFY at commit: Postgres serializes the commits of transactions
-- that notify (one global queue lock, held through the commit), so every transaction writing an
-- event or an audit record waited for the others' commits — the largest cost of hot rows such as
-- a busy workspace's credit balance.
DROP TRIGGER outbox_notify ON outbox;
DROP FUNCTION outbox_notify();
