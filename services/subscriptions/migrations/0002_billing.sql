-- Checkout, credit packs, invoices and the Stripe webhook log.

ALTER TABLE subscriptions ADD COLUMN currency text NOT NULL DEFAULT 'USD';

-- Credit top-ups sold on top of the plan; names come from the billing Fluent bundle.
CREATE TABLE credit_packs (
    code    text PRIMARY KEY,
    credits bigint NOT NULL CHECK (credits > 0),
    rank    integer NOT NULL
);

CREATE TABLE credit_pack_prices (
    pack_code    text   NOT NULL REFERENCES credit_packs (code),
    currency     text   NOT NULL,
    amount_minor bigint NOT NULL CHECK (amount_minor > 0),
    PRIMARY KEY (pack_code, currency)
);

INSERT INTO credit_packs (code, credits, rank) VALUES ('credits_100', 100, 0), ('credits_500', 500, 1), ('credits_2000', 2000, 2);
INSERT INTO credit_pack_prices (pack_code, currency, amount_minor) VALUES
  ('credits_100', 'USD', 1900),  ('credits_100', 'EUR', 1700),  ('credits_100', 'BRL', 9900),  ('credits_100', 'ILS', 6900),  ('credits_100', 'AED', 6900),  ('credits_100', 'MXN', 32900),
  ('credits_500', 'USD', 7900),  ('credits_500', 'EUR', 7300),  ('credits_500', 'BRL', 39900), ('credits_500', 'ILS', 28900), ('credits_500', 'AED', 28900), ('credits_500', 'MXN', 134900),
  ('credits_2000', 'USD', 24900), ('credits_2000', 'EUR', 22900), ('credits_2000', 'BRL', 124900), ('credits_2000', 'ILS', 89900), ('credits_2000', 'AED', 89900), ('credits_2000', 'MXN', 429900);

-- A purchase in progress: Stripe Checkout or a local session.
CREATE TABLE checkout_sessions (
    id           text PRIMARY KEY,
    tenant_id    uuid        NOT NULL,
    provider     text        NOT NULL CHECK (provider IN ('stripe', 'local')),
    kind         text        NOT NULL CHECK (kind IN ('plan', 'credits')),
    plan_code    text REFERENCES plans (code),
    pack_code    text REFERENCES credit_packs (code),
    currency     text        NOT NULL,
    amount_minor bigint      NOT NULL,
    url          text        NOT NULL DEFAULT '',
    status       text        NOT NULL CHECK (status IN ('open', 'complete', 'expired')),
    idempotency_key text     NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    completed_at timestamptz,
    UNIQUE (tenant_id, idempotency_key),
    CHECK ((kind = 'plan') = (plan_code IS NOT NULL) AND (kind = 'credits') = (pack_code IS NOT NULL))
);
SELECT enable_tenant_table('checkout_sessions', ARRAY['url']);

-- Invoices and receipts: copied from Stripe's invoice events, or written for local billing.
CREATE TABLE invoices (
    id           uuid PRIMARY KEY DEFAULT uuid_v7(),
    tenant_id    uuid        NOT NULL,
    provider     text        NOT NULL CHECK (provider IN ('stripe', 'local')),
    external_id  text        NOT NULL UNIQUE,
    number       text        NOT NULL DEFAULT '',
    status       text        NOT NULL,
    amount_due   bigint      NOT NULL,
    amount_paid  bigint      NOT NULL,
    currency     text        NOT NULL,
    reason       text        NOT NULL DEFAULT '',
    period_start timestamptz,
    period_end   timestamptz,
    hosted_url   text        NOT NULL DEFAULT '',
    pdf_url      text        NOT NULL DEFAULT '',
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX invoices_tenant ON invoices (tenant_id, created_at DESC, id DESC);
SELECT enable_tenant_table('invoices');

-- Each Stripe event applied once: its id is inserted in the transaction that applies it.
CREATE TABLE stripe_events (
    id          text PRIMARY KEY,
    type        text        NOT NULL,
    workspace   uuid,
    received_at timestamptz NOT NULL DEFAULT now()
);

-- In-app notices are listed newest first.
ALTER TABLE credit_notices ADD COLUMN created_at timestamptz NOT NULL DEFAULT now();
