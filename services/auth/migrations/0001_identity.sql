-- Identity. Users, sessions and MFA belong to a person (who may be in several workspaces);
-- workspaces, memberships, invitations and API keys belong to a tenant and carry RLS.

CREATE TABLE users (
    id                      uuid PRIMARY KEY,
    email                   text        NOT NULL UNIQUE,
    email_verified_at       timestamptz,
    name                    text        NOT NULL,
    avatar_url              text,
    password_hash           text,
    failed_logins           integer     NOT NULL DEFAULT 0,
    locked_until            timestamptz,
    mfa_secret_sealed       text,
    mfa_pending_sealed      text,
    mfa_enabled_at          timestamptz,
    mfa_failed              integer     NOT NULL DEFAULT 0,
    mfa_locked_until        timestamptz,
    mfa_last_step           bigint      NOT NULL DEFAULT 0,
    deletion_requested_at   timestamptz,
    created_at              timestamptz NOT NULL DEFAULT now(),
    updated_at              timestamptz NOT NULL DEFAULT now()
);
SELECT enable_audit('users', ARRAY['password_hash', 'mfa_secret_sealed', 'mfa_pending_sealed']);

CREATE TABLE user_settings (
    user_id       uuid PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    locale        text  NOT NULL DEFAULT 'en' CHECK (locale IN ('en', 'es', 'pt', 'he', 'ar')),
    timezone      text  NOT NULL DEFAULT 'UTC',
    notifications jsonb NOT NULL DEFAULT '{"product_updates": true, "billing": true, "security": true, "weekly_report": true}',
    updated_at    timestamptz NOT NULL DEFAULT now()
);
SELECT enable_audit('user_settings');

CREATE TABLE workspaces (
    id         uuid PRIMARY KEY,
    -- A workspace is its own tenant; the column lets the standard policy apply.
    tenant_id  uuid GENERATED ALWAYS AS (id) STORED,
    name       text        NOT NULL,
    owner_id   uuid        NOT NULL REFERENCES users (id),
    created_at timestamptz NOT NULL DEFAULT now()
);
SELECT enable_tenant_table('workspaces');

CREATE TABLE memberships (
    id         uuid PRIMARY KEY DEFAULT uuid_v7(),
    tenant_id  uuid        NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    user_id    uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role       text        NOT NULL CHECK (role IN ('owner', 'admin', 'member', 'viewer')),
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, user_id)
);
CREATE INDEX memberships_user ON memberships (user_id);
SELECT enable_tenant_table('memberships');

CREATE TABLE invitations (
    id          uuid PRIMARY KEY,
    tenant_id   uuid        NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    email       text        NOT NULL,
    role        text        NOT NULL CHECK (role IN ('admin', 'member', 'viewer')),
    token_hash  bytea       NOT NULL UNIQUE,
    invited_by  uuid        NOT NULL REFERENCES users (id),
    expires_at  timestamptz NOT NULL,
    accepted_at timestamptz,
    revoked_at  timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now()
);
SELECT enable_tenant_table('invitations', ARRAY['token_hash']);

-- One row per refresh token. A family is one sign-in; every refresh adds a row and marks the
-- previous one replaced. Presenting a replaced or revoked token revokes the whole family.
CREATE TABLE sessions (
    id           uuid PRIMARY KEY,
    family_id    uuid        NOT NULL,
    user_id      uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    workspace_id uuid        NOT NULL,
    refresh_hash bytea       NOT NULL UNIQUE,
    amr          text[]      NOT NULL DEFAULT '{}',
    ip           text        NOT NULL DEFAULT '',
    user_agent   text        NOT NULL DEFAULT '',
    device       text        NOT NULL DEFAULT '',
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    replaced_at  timestamptz,
    revoked_at   timestamptz
);
CREATE INDEX sessions_family ON sessions (family_id);
CREATE INDEX sessions_user ON sessions (user_id) WHERE revoked_at IS NULL;
SELECT enable_audit('sessions', ARRAY['refresh_hash']);

-- Single-use links (email verification, password reset); only the hash is kept.
CREATE TABLE email_tokens (
    id         uuid PRIMARY KEY DEFAULT uuid_v7(),
    user_id    uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    purpose    text        NOT NULL CHECK (purpose IN ('verify_email', 'reset_password')),
    token_hash bytea       NOT NULL UNIQUE,
    expires_at timestamptz NOT NULL,
    used_at    timestamptz,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE recovery_codes (
    id        uuid PRIMARY KEY DEFAULT uuid_v7(),
    user_id   uuid  NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash bytea NOT NULL,
    used_at   timestamptz
);
CREATE INDEX recovery_codes_user ON recovery_codes (user_id);

CREATE TABLE api_keys (
    id           uuid PRIMARY KEY,
    tenant_id    uuid        NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    created_by   uuid        NOT NULL REFERENCES users (id),
    name         text        NOT NULL,
    prefix       text        NOT NULL UNIQUE,
    secret_hash  bytea       NOT NULL,
    scopes       text[]      NOT NULL,
    expires_at   timestamptz,
    last_used_at timestamptz,
    revoked_at   timestamptz,
    created_at   timestamptz NOT NULL DEFAULT now()
);
SELECT enable_tenant_table('api_keys', ARRAY['secret_hash']);

-- Token-signing keys. Private halves sealed (AES-256-GCM); retired keys stay published until
-- every token they signed has expired.
CREATE TABLE signing_keys (
    kid                text PRIMARY KEY,
    public_key         bytea       NOT NULL,
    private_key_sealed text        NOT NULL,
    created_at         timestamptz NOT NULL DEFAULT now(),
    retired_at         timestamptz
);

CREATE TABLE oauth_states (
    state_hash      bytea PRIMARY KEY,
    provider        text        NOT NULL,
    nonce           text        NOT NULL,
    verifier_sealed text        NOT NULL,
    redirect_uri    text        NOT NULL,
    link_user_id    uuid,
    expires_at      timestamptz NOT NULL
);

CREATE TABLE oauth_identities (
    id         uuid PRIMARY KEY DEFAULT uuid_v7(),
    user_id    uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    provider   text        NOT NULL,
    subject    text        NOT NULL,
    email      text,
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (provider, subject)
);
SELECT enable_audit('oauth_identities');

-- Failure counters for brute-force protection, keyed by purpose and subject
-- (e.g. "login:email:<sha256>", "login:ip:203.0.113.9").
CREATE TABLE throttles (
    key          text PRIMARY KEY,
    window_start timestamptz NOT NULL,
    failures     integer     NOT NULL,
    locked_until timestamptz
);

-- Mail waiting to be sent (SMTP mode) or to be read through the API (local mode).
CREATE TABLE mail_outbox (
    id         uuid PRIMARY KEY DEFAULT uuid_v7(),
    to_email   text        NOT NULL,
    locale     text        NOT NULL,
    kind       text        NOT NULL,
    subject    text        NOT NULL,
    body       text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    sent_at    timestamptz,
    attempts   integer     NOT NULL DEFAULT 0,
    last_error text
);
CREATE INDEX mail_outbox_pending ON mail_outbox (created_at) WHERE sent_at IS NULL;
