-- The contact book: contacts, their channel identities, consent, custom fields, the CRM timeline
-- (activities and tasks), deals on a pipeline, saved segments, merges and imports.

-- Trigram indexes serve contact search by any part of a name, email or phone.
CREATE EXTENSION IF NOT EXISTS pg_trgm;

-- Per-workspace settings of the contact book.
CREATE TABLE book_settings (
    tenant_id      uuid PRIMARY KEY,
    -- ISO 3166 alpha-2: national numbers without a country code are read in this region.
    default_region text        NOT NULL DEFAULT '' CHECK (default_region ~ '^([A-Z]{2})?$'),
    updated_at     timestamptz NOT NULL DEFAULT now()
);
SELECT enable_tenant_table('book_settings');

CREATE TABLE contacts (
    id            uuid PRIMARY KEY,
    tenant_id     uuid        NOT NULL,
    name          text        NOT NULL DEFAULT '',
    -- E.164, normalized before it is stored.
    phone         text CHECK (phone ~ '^\+[1-9][0-9]{6,14}$'),
    email         text CHECK (email = lower(email)),
    language      text CHECK (language IN ('en', 'es', 'pt', 'he', 'ar')),
    tags          text[]      NOT NULL DEFAULT '{}',
    -- Custom field values by field key (numbers as exact decimal strings).
    fields        jsonb       NOT NULL DEFAULT '{}',
    owner_id      uuid,
    stage         text        NOT NULL DEFAULT 'lead'
                  CHECK (stage IN ('subscriber', 'lead', 'qualified', 'opportunity', 'customer', 'evangelist', 'other')),
    source        text        NOT NULL DEFAULT '',
    -- What text search looks in.
    search        text GENERATED ALWAYS AS (lower(name || ' ' || coalesce(email, '') || ' ' || coalesce(phone, ''))) STORED,
    -- Set when this contact was merged into another: it is kept for the record, hidden from lists.
    merged_into   uuid REFERENCES contacts (id),
    anonymized_at timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
-- One live contact per phone and per email in a workspace: the dedupe key of imports and events.
CREATE UNIQUE INDEX contacts_phone ON contacts (tenant_id, phone) WHERE phone IS NOT NULL AND merged_into IS NULL;
CREATE UNIQUE INDEX contacts_email ON contacts (tenant_id, email) WHERE email IS NOT NULL AND merged_into IS NULL;
CREATE INDEX contacts_recent ON contacts (tenant_id, created_at DESC, id DESC) WHERE merged_into IS NULL;
CREATE INDEX contacts_tags ON contacts USING gin (tags);
CREATE INDEX contacts_search ON contacts USING gin (search gin_trgm_ops);
CREATE INDEX contacts_fields ON contacts USING gin (fields jsonb_path_ops);
SELECT enable_tenant_table('contacts');

-- How channels know a person (WhatsApp wa_id, a lead's email, a shop customer id): one identity
-- belongs to one contact of a workspace.
CREATE TABLE contact_identities (
    tenant_id  uuid        NOT NULL,
    kind       text        NOT NULL CHECK (kind IN ('whatsapp', 'email', 'shop_customer')),
    value      text        NOT NULL,
    contact_id uuid        NOT NULL REFERENCES contacts (id),
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, kind, value)
);
CREATE INDEX contact_identities_contact ON contact_identities (contact_id);
SELECT enable_tenant_table('contact_identities');

CREATE TABLE field_definitions (
    tenant_id  uuid        NOT NULL,
    key        text        NOT NULL CHECK (key ~ '^[a-z][a-z0-9_]{0,39}$'),
    label      text        NOT NULL,
    kind       text        NOT NULL CHECK (kind IN ('text', 'number', 'date', 'choice')),
    options    text[]      NOT NULL DEFAULT '{}',
    position   integer     NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, key)
);
SELECT enable_tenant_table('field_definitions');

-- The current consent per contact, channel and purpose; every change is also an activity.
CREATE TABLE consents (
    tenant_id  uuid        NOT NULL,
    contact_id uuid        NOT NULL REFERENCES contacts (id),
    channel    text        NOT NULL CHECK (channel IN ('whatsapp', 'email', 'sms')),
    purpose    text        NOT NULL CHECK (purpose IN ('marketing', 'transactional')),
    status     text        NOT NULL CHECK (status IN ('granted', 'withdrawn')),
    -- form, import, keyword, api, …
    source     text        NOT NULL,
    -- The wording agreed to, or the reply that withdrew consent.
    proof      text        NOT NULL DEFAULT '' CHECK (length(proof) <= 2000),
    changed_by text        NOT NULL DEFAULT '',
    changed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, contact_id, channel, purpose)
);
SELECT enable_tenant_table('consents');

-- The timeline of a contact. Tasks are activities with a due date and an assignee.
CREATE TABLE activities (
    id          uuid PRIMARY KEY,
    tenant_id   uuid        NOT NULL,
    contact_id  uuid        NOT NULL REFERENCES contacts (id),
    -- note, task and call are written by people; the others by the platform.
    kind        text        NOT NULL CHECK (kind IN ('note', 'task', 'call', 'message', 'lead', 'purchase',
                                                     'stage_change', 'consent', 'merge', 'import', 'deal')),
    body        text        NOT NULL DEFAULT '' CHECK (length(body) <= 10000),
    -- Kind-specific details (the lead's page, the purchase's amount, the old and new stage …).
    data        jsonb       NOT NULL DEFAULT '{}',
    -- user:<id>, service:<name> or system.
    actor       text        NOT NULL,
    due_at      timestamptz,
    assignee_id uuid,
    done_at     timestamptz,
    -- The source event, so an event delivered twice adds one activity.
    source_key  text,
    occurred_at timestamptz NOT NULL DEFAULT now(),
    created_at  timestamptz NOT NULL DEFAULT now(),
    CHECK (kind = 'task' OR (due_at IS NULL AND assignee_id IS NULL AND done_at IS NULL)),
    -- A task is someone's to do by a date.
    CHECK (kind <> 'task' OR (due_at IS NOT NULL AND assignee_id IS NOT NULL))
);
CREATE INDEX activities_timeline ON activities (tenant_id, contact_id, occurred_at DESC, id DESC);
-- A member's task list: open tasks first, each group by due date.
CREATE INDEX activities_tasks ON activities (tenant_id, assignee_id, (done_at IS NOT NULL), due_at, id) WHERE kind = 'task';
CREATE UNIQUE INDEX activities_source ON activities (tenant_id, source_key) WHERE source_key IS NOT NULL;
SELECT enable_tenant_table('activities');

CREATE TABLE pipeline_stages (
    id         uuid PRIMARY KEY,
    tenant_id  uuid        NOT NULL,
    name       text        NOT NULL,
    position   integer     NOT NULL,
    -- open stages move on; won and lost close a deal.
    outcome    text        NOT NULL DEFAULT 'open' CHECK (outcome IN ('open', 'won', 'lost')),
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, name) DEFERRABLE INITIALLY DEFERRED
);
SELECT enable_tenant_table('pipeline_stages');

CREATE TABLE deals (
    id             uuid PRIMARY KEY,
    tenant_id      uuid        NOT NULL,
    contact_id     uuid        NOT NULL REFERENCES contacts (id),
    title          text        NOT NULL,
    stage_id       uuid        NOT NULL REFERENCES pipeline_stages (id),
    -- Exact money: integer minor units of an ISO 4217 currency.
    amount_minor   bigint      NOT NULL DEFAULT 0 CHECK (amount_minor >= 0),
    currency       text        NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    expected_close date,
    owner_id       uuid,
    closed_at      timestamptz,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX deals_recent ON deals (tenant_id, created_at DESC, id DESC);
CREATE INDEX deals_by_stage ON deals (tenant_id, stage_id, created_at DESC, id DESC);
CREATE INDEX deals_by_contact ON deals (tenant_id, contact_id, created_at DESC, id DESC);
SELECT enable_tenant_table('deals');

-- A saved filter (re-evaluated on use); broadcasts and ad audiences select contacts by it.
CREATE TABLE segments (
    id         uuid PRIMARY KEY,
    tenant_id  uuid        NOT NULL,
    name       text        NOT NULL,
    -- The checked filter in its canonical form (see domain::segment); counted live on read.
    filter     jsonb       NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, name)
);
CREATE INDEX segments_recent ON segments (tenant_id, created_at DESC, id DESC);
SELECT enable_tenant_table('segments');

-- The record of a merge: what the merged contact was, so the merge can be explained.
CREATE TABLE merges (
    id         uuid PRIMARY KEY,
    tenant_id  uuid        NOT NULL,
    kept_id    uuid        NOT NULL REFERENCES contacts (id),
    merged_id  uuid        NOT NULL REFERENCES contacts (id),
    snapshot   jsonb       NOT NULL,
    actor      text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
SELECT enable_tenant_table('merges');

-- A CSV import: its options, its progress (counts move per batch while it runs) and its outcome.
-- A failed import wrote no contacts; a dry run never does.
CREATE TABLE imports (
    id          uuid PRIMARY KEY,
    tenant_id   uuid        NOT NULL,
    status      text        NOT NULL CHECK (status IN ('running', 'succeeded', 'failed')),
    dry_run     boolean     NOT NULL,
    -- CSV header → contact attribute or field key.
    mapping     jsonb       NOT NULL,
    -- Tags and consent applied to every imported contact.
    options     jsonb       NOT NULL DEFAULT '{}',
    total_rows  bigint      NOT NULL DEFAULT 0,
    created     bigint      NOT NULL DEFAULT 0,
    updated     bigint      NOT NULL DEFAULT 0,
    failed      bigint      NOT NULL DEFAULT 0,
    bytes       bigint      NOT NULL DEFAULT 0,
    -- Why a failed import stopped (an error code and its message parameters).
    error_code  text        NOT NULL DEFAULT '',
    error_params jsonb      NOT NULL DEFAULT '{}',
    created_by  text        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    CHECK ((status = 'running') = (finished_at IS NULL))
);
CREATE INDEX imports_recent ON imports (tenant_id, created_at DESC, id DESC);
SELECT enable_tenant_table('imports');

-- Rows an import could not take, by line, field and error code (localized when shown, with the
-- parameters of the message).
CREATE TABLE import_errors (
    tenant_id uuid    NOT NULL,
    import_id uuid    NOT NULL REFERENCES imports (id),
    line      bigint  NOT NULL CHECK (line > 1),
    field     text    NOT NULL DEFAULT '',
    code      text    NOT NULL,
    params    jsonb   NOT NULL DEFAULT '{}',
    PRIMARY KEY (import_id, line, field)
);
SELECT enable_tenant_table('import_errors');
