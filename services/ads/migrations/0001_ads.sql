-- Platform connections (Meta, TikTok, Google, the local sandbox) with their ad accounts, pages
-- and channels, pending OAuth authorizations, and marketing campaigns. Money is an integer in
-- minor units with its currency beside it.

-- A connection being authorized: the state is stored hashed, the PKCE verifier sealed; each is
-- taken once, within ten minutes, by the workspace that started it.
CREATE TABLE oauth_states (
    state_hash      bytea PRIMARY KEY,
    tenant_id       uuid        NOT NULL,
    provider        text        NOT NULL,
    verifier_sealed text        NOT NULL,
    redirect_uri    text        NOT NULL,
    expires_at      timestamptz NOT NULL
);
SELECT enable_tenant_table('oauth_states', ARRAY['verifier_sealed']);

CREATE TABLE connections (
    id              uuid PRIMARY KEY,
    tenant_id       uuid        NOT NULL,
    provider        text        NOT NULL CHECK (provider IN ('meta', 'tiktok', 'google', 'local')),
    -- The platform's user id (Meta app-scoped user, TikTok app user, Google subject).
    external_user   text        NOT NULL,
    display_name    text        NOT NULL DEFAULT '',
    -- Sealed JSON (access and refresh tokens): never stored or audited in clear.
    credentials     text        NOT NULL,
    scopes          text[]      NOT NULL DEFAULT '{}',
    token_expires_at timestamptz,
    status          text        NOT NULL DEFAULT 'active'
                    CHECK (status IN ('active', 'expiring', 'expired', 'disconnected')),
    -- The token the expiring notice was sent for (a reconnect clears it), so it is sent once.
    expiring_notified_at timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, provider, external_user)
);
CREATE INDEX connections_recent ON connections (tenant_id, created_at DESC, id DESC);
-- The expiry watch reads connections by expiry across workspaces.
CREATE INDEX connections_expiry ON connections (token_expires_at) WHERE status IN ('active', 'expiring');
SELECT enable_tenant_table('connections', ARRAY['credentials']);

CREATE TABLE connection_accounts (
    tenant_id     uuid NOT NULL,
    connection_id uuid NOT NULL REFERENCES connections (id) ON DELETE CASCADE,
    kind          text NOT NULL CHECK (kind IN ('ad_account', 'page', 'instagram', 'advertiser', 'channel')),
    external_id   text NOT NULL,
    name          text NOT NULL DEFAULT '',
    currency      text NOT NULL DEFAULT '',
    time_zone     text NOT NULL DEFAULT '',
    chosen        boolean NOT NULL DEFAULT false,
    PRIMARY KEY (connection_id, kind, external_id)
);
SELECT enable_tenant_table('connection_accounts');

-- The campaign umbrella: groups content, pages, ads, posts and videos under a goal and budget.
CREATE TABLE campaigns (
    id           uuid PRIMARY KEY,
    tenant_id    uuid        NOT NULL,
    name         text        NOT NULL,
    goal         text        NOT NULL
                 CHECK (goal IN ('awareness', 'traffic', 'engagement', 'leads', 'sales', 'app_promotion')),
    budget_minor bigint      NOT NULL DEFAULT 0 CHECK (budget_minor >= 0),
    currency     text        NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    start_date   date,
    end_date     date,
    description  text        NOT NULL DEFAULT '',
    status       text        NOT NULL DEFAULT 'draft' CHECK (status IN ('draft', 'active', 'archived')),
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    CHECK (end_date IS NULL OR start_date IS NULL OR end_date >= start_date)
);
CREATE INDEX campaigns_recent ON campaigns (tenant_id, created_at DESC, id DESC);
SELECT enable_tenant_table('campaigns');
