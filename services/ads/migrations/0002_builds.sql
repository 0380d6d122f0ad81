-- Ad campaign builds: one request creating a campaign on a platform step by step (a saga). Each
-- step is recorded before its call (status started) and after (the platform's id), so a build
-- interrupted at any point resumes without creating anything twice, and a failed one deletes
-- what it created, in reverse.

CREATE TABLE ad_builds (
    id            uuid PRIMARY KEY,
    tenant_id     uuid        NOT NULL,
    -- The client's key for this request: the same key resumes the same build.
    request_key   text        NOT NULL,
    connection_id uuid        NOT NULL REFERENCES connections (id),
    campaign_id   uuid        REFERENCES campaigns (id),
    provider      text        NOT NULL,
    ad_account    text        NOT NULL,
    currency      text        NOT NULL,
    -- The checked request, replayed on resume.
    spec          jsonb       NOT NULL,
    status        text        NOT NULL DEFAULT 'building'
                  CHECK (status IN ('building', 'built', 'failed')),
    error         text        NOT NULL DEFAULT '',
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, request_key)
);
SELECT enable_tenant_table('ad_builds');

CREATE TABLE ad_build_steps (
    build_id    uuid NOT NULL REFERENCES ad_builds (id) ON DELETE CASCADE,
    tenant_id   uuid NOT NULL,
    step        text NOT NULL,
    -- The object's name on the platform, carrying the build's id.
    tag         text NOT NULL,
    platform_id text,
    -- started: the call may have happened (look it up before repeating); created; deleted.
    status      text NOT NULL CHECK (status IN ('started', 'created', 'deleted')),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (build_id, step)
);
SELECT enable_tenant_table('ad_build_steps');
