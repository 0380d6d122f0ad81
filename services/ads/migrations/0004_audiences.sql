-- Custom audiences uploaded to an ad account (members are sent hashed and never stored).
CREATE TABLE audiences (
    id            uuid PRIMARY KEY,
    tenant_id     uuid        NOT NULL,
    connection_id uuid        NOT NULL REFERENCES connections (id),
    ad_account    text        NOT NULL,
    name          text        NOT NULL,
    platform_id   text        NOT NULL,
    -- Hashed members sent (after normalization and deduplication), and inputs dropped.
    members       integer     NOT NULL,
    dropped       integer     NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX audiences_recent ON audiences (tenant_id, created_at DESC, id DESC);
SELECT enable_tenant_table('audiences');
