-- A refund on one of the contact's store orders (commerce's `order.refunded`) is an activity.
ALTER TABLE activities DROP CONSTRAINT activities_kind_check;
ALTER TABLE activities ADD CONSTRAINT activities_kind_check CHECK (kind IN ('note', 'task', 'call', 'message', 'lead',
    'purchase', 'refund', 'stage_change', 'consent', 'merge', 'import', 'deal'));
