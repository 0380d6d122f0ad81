-- Managing built ad campaigns: the live daily budget and delivery state of each build, and
-- every budget change (the daily increase guard reads the day's first budget from here).

ALTER TABLE ad_builds
    ADD COLUMN daily_budget bigint NOT NULL DEFAULT 0 CHECK (daily_budget >= 0),
    ADD COLUMN delivery text NOT NULL DEFAULT 'paused' CHECK (delivery IN ('paused', 'active', 'archived'));

CREATE TABLE ad_budget_changes (
    id         uuid PRIMARY KEY,
    tenant_id  uuid        NOT NULL,
    build_id   uuid        NOT NULL REFERENCES ad_builds (id) ON DELETE CASCADE,
    old_budget bigint      NOT NULL,
    new_budget bigint      NOT NULL,
    changed_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ad_budget_changes_recent ON ad_budget_changes (build_id, changed_at);
SELECT enable_tenant_table('ad_budget_changes');
