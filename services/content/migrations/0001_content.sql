-- Generations, magic pages (with versions, leads and view counts), image assets and AI agents.

CREATE TABLE generations (
    id                uuid PRIMARY KEY,
    tenant_id         uuid        NOT NULL,
    kind              text        NOT NULL,
    platform          text,
    language          text        NOT NULL CHECK (language IN ('en', 'es', 'pt', 'he', 'ar')),
    tone              text        NOT NULL,
    -- succeeded, or incomplete when a stream was cut (what was produced is kept and charged).
    status            text        NOT NULL CHECK (status IN ('succeeded', 'incomplete')),
    provider          text        NOT NULL,
    model             text        NOT NULL,
    prompt_version    text        NOT NULL,
    input             jsonb       NOT NULL,
    variants          jsonb       NOT NULL,
    title_limit       integer     NOT NULL DEFAULT 0,
    body_limit        integer     NOT NULL DEFAULT 0,
    prompt_tokens     bigint      NOT NULL DEFAULT 0,
    completion_tokens bigint      NOT NULL DEFAULT 0,
    total_tokens      bigint      NOT NULL DEFAULT 0,
    credits           bigint      NOT NULL DEFAULT 0,
    reservation_id    text        NOT NULL DEFAULT '',
    idempotency_key   text        NOT NULL,
    created_by        text        NOT NULL DEFAULT '',
    created_at        timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, idempotency_key)
);
CREATE INDEX generations_recent ON generations (tenant_id, created_at DESC, id DESC);
SELECT enable_tenant_table('generations');

CREATE TABLE image_assets (
    id              uuid PRIMARY KEY,
    tenant_id       uuid        NOT NULL,
    purpose         text        NOT NULL CHECK (purpose IN ('hero', 'ad')),
    provider        text        NOT NULL,
    status          text        NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed')),
    prompt          text        NOT NULL DEFAULT '',
    caption         text        NOT NULL DEFAULT '',
    language        text        NOT NULL DEFAULT 'en',
    content_type    text        NOT NULL DEFAULT '',
    data            bytea,
    size_bytes      bigint      NOT NULL DEFAULT 0,
    width           integer     NOT NULL,
    height          integer     NOT NULL,
    -- Replicate prediction id / Runware task UUID while the provider works on it.
    external_id     text,
    reservation_id  text        NOT NULL DEFAULT '',
    error           text        NOT NULL DEFAULT '',
    idempotency_key text        NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, idempotency_key)
);
CREATE UNIQUE INDEX image_assets_external ON image_assets (provider, external_id) WHERE external_id IS NOT NULL;
CREATE INDEX image_assets_pending ON image_assets (updated_at) WHERE status = 'pending';
-- Image bytes stay out of the audit trail.
SELECT enable_tenant_table('image_assets', ARRAY['data']);

CREATE TABLE magic_pages (
    id                uuid PRIMARY KEY,
    tenant_id         uuid        NOT NULL,
    title             text        NOT NULL,
    language          text        NOT NULL CHECK (language IN ('en', 'es', 'pt', 'he', 'ar')),
    -- The brief the page was generated from (regenerating a section reuses it).
    brief             jsonb       NOT NULL,
    status            text        NOT NULL DEFAULT 'draft' CHECK (status IN ('draft', 'published')),
    -- Unique across all workspaces: it is the public address /p/<slug>. Kept when unpublished.
    slug              text UNIQUE,
    current_version   integer     NOT NULL DEFAULT 1,
    published_version integer,
    provider          text        NOT NULL,
    idempotency_key   text        NOT NULL,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    published_at      timestamptz,
    UNIQUE (tenant_id, idempotency_key),
    CHECK (status = 'draft' OR (slug IS NOT NULL AND published_version IS NOT NULL))
);
CREATE INDEX magic_pages_recent ON magic_pages (tenant_id, created_at DESC, id DESC);
SELECT enable_tenant_table('magic_pages');

-- Every change of a page is a new complete version; nothing is edited in place.
CREATE TABLE page_versions (
    id         uuid PRIMARY KEY DEFAULT uuid_v7(),
    tenant_id  uuid        NOT NULL,
    page_id    uuid        NOT NULL REFERENCES magic_pages (id) ON DELETE CASCADE,
    version    integer     NOT NULL CHECK (version > 0),
    -- created, edit:<section>, regenerate:<section>.
    change     text        NOT NULL,
    sections   jsonb       NOT NULL,
    created_by text        NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (page_id, version)
);
SELECT enable_tenant_table('page_versions');

-- View counts are bumped on every public request; kept apart (no tenant data, no audit row per
-- view). Reads join magic_pages, whose RLS decides who sees them.
CREATE TABLE page_views (
    page_id uuid PRIMARY KEY REFERENCES magic_pages (id) ON DELETE CASCADE,
    views   bigint NOT NULL DEFAULT 0
);

CREATE TABLE page_leads (
    id         uuid PRIMARY KEY,
    tenant_id  uuid        NOT NULL,
    page_id    uuid        NOT NULL REFERENCES magic_pages (id) ON DELETE CASCADE,
    version    integer     NOT NULL,
    name       text        NOT NULL DEFAULT '',
    email      text        NOT NULL DEFAULT '',
    phone      text        NOT NULL DEFAULT '',
    message    text        NOT NULL DEFAULT '',
    consent    boolean     NOT NULL DEFAULT false,
    language   text        NOT NULL,
    -- SHA-256 of page id + client address: enough to rate limit, useless to identify.
    ip_hash    text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX page_leads_by_ip ON page_leads (page_id, ip_hash, created_at);
-- Contact details are personal data: they stay out of the audit trail.
SELECT enable_tenant_table('page_leads', ARRAY['name', 'email', 'phone', 'message', 'ip_hash']);

CREATE TABLE ai_agents (
    id           uuid PRIMARY KEY,
    tenant_id    uuid        NOT NULL,
    name         text        NOT NULL,
    instructions text        NOT NULL DEFAULT '',
    language     text        NOT NULL CHECK (language IN ('en', 'es', 'pt', 'he', 'ar')),
    knowledge    jsonb       NOT NULL DEFAULT '[]',
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ai_agents_recent ON ai_agents (tenant_id, created_at DESC, id DESC);
SELECT enable_tenant_table('ai_agents');

CREATE TABLE agent_conversations (
    id         uuid PRIMARY KEY,
    tenant_id  uuid        NOT NULL,
    agent_id   uuid        NOT NULL REFERENCES ai_agents (id) ON DELETE CASCADE,
    contact_id text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (agent_id, contact_id)
);
SELECT enable_tenant_table('agent_conversations');

CREATE TABLE agent_messages (
    id              uuid PRIMARY KEY DEFAULT uuid_v7(),
    tenant_id       uuid        NOT NULL,
    conversation_id uuid        NOT NULL REFERENCES agent_conversations (id) ON DELETE CASCADE,
    role            text        NOT NULL CHECK (role IN ('user', 'assistant')),
    content         text        NOT NULL,
    -- On the user's message: a retried Chat call returns the stored reply instead of answering twice.
    idempotency_key text,
    reply_to        uuid,
    credits         bigint      NOT NULL DEFAULT 0,
    created_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    UNIQUE (tenant_id, idempotency_key)
);
CREATE INDEX agent_messages_history ON agent_messages (conversation_id, created_at DESC);
-- What people write to an assistant is personal data.
SELECT enable_tenant_table('agent_messages', ARRAY['content']);
