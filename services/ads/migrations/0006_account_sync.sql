-- The scheduled insights sync of every chosen ad account (Meta) and advertiser (TikTok). A row is
-- written in the transaction that chooses the account, so the 28-day backfill is owed from that
-- commit on and done by the sweep, never inline in the request. Replicas claim due rows with
-- SKIP LOCKED and a lease: one syncs an account at a time, and a replica that dies mid-sync
-- leaves a lease that runs out.
CREATE TABLE account_syncs (
    tenant_id     uuid        NOT NULL,
    connection_id uuid        NOT NULL REFERENCES connections (id) ON DELETE CASCADE,
    provider      text        NOT NULL,
    ad_account    text        NOT NULL,
    currency      text        NOT NULL,
    time_zone     text        NOT NULL,
    -- NULL until the backfill succeeded.
    backfilled_at timestamptz,
    next_at       timestamptz NOT NULL DEFAULT now(),
    claimed_until timestamptz,
    last_error    text        NOT NULL DEFAULT '',
    synced_rows   bigint      NOT NULL DEFAULT 0,
    PRIMARY KEY (connection_id, ad_account)
);
CREATE INDEX account_syncs_due ON account_syncs (next_at);
SELECT enable_tenant_table('account_syncs');

-- Daily ad-level insights of whole accounts (campaigns made here or elsewhere): the figures of
-- ad_insights, owned by an account of a connection instead of a build.
CREATE TABLE account_insights (
    connection_id uuid NOT NULL REFERENCES connections (id) ON DELETE CASCADE,
    ad_account    text NOT NULL,
    LIKE ad_insights INCLUDING DEFAULTS
);
ALTER TABLE account_insights DROP COLUMN build_id;
ALTER TABLE account_insights ADD PRIMARY KEY (connection_id, ad_account, ad_id, day);
SELECT enable_tenant_table('account_insights');
