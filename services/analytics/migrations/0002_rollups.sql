-- Rollups: hourly and daily (UTC) aggregates of each workspace's events (see
-- src/domain/rollup.rs). The ingest writer appends partial rows for the events it stored, in the
-- same transaction; compaction later folds the partial rows of a key into one. There is no
-- unique key on purpose: appending never waits on another writer's row, and rows of a key add
-- up (counts, money, credits) and merge (the HyperLogLog sketch of users in `users`).
CREATE TABLE analytics_rollups (
    tenant_id     uuid        NOT NULL,
    grain         text        NOT NULL CHECK (grain IN ('hour', 'day')),
    bucket        timestamptz NOT NULL,
    -- Blank: every event of the bucket.
    name          text        NOT NULL,
    -- Blank: events without revenue.
    currency      text        NOT NULL DEFAULT '',
    -- Non-blank only on rows of metered actions per plan and feature.
    plan          text        NOT NULL DEFAULT '',
    feature       text        NOT NULL DEFAULT '',
    events        bigint      NOT NULL,
    revenue_minor bigint      NOT NULL DEFAULT 0,
    credits       numeric     NOT NULL DEFAULT 0,
    users         bytea       NOT NULL
);
CREATE INDEX analytics_rollups_key
    ON analytics_rollups (tenant_id, grain, bucket, name, currency, plan, feature);
SELECT enable_tenant_table('analytics_rollups');
-- Derived figures that compaction folds (delete + insert of the same sums), as the events they
-- come from are facts: appending is not audited; an edit of a stored row is.
DROP TRIGGER audit_row ON analytics_rollups;
CREATE TRIGGER audit_row AFTER UPDATE ON analytics_rollups FOR EACH ROW EXECUTE FUNCTION audit_row();
