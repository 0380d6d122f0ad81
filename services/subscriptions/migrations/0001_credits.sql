-- Plans, subscriptions and the credit ledger. Plans, prices, entitlements and the price table are
-- data: changing an offer is an UPDATE, not a release.

CREATE TABLE plans (
    code            text PRIMARY KEY,
    rank            integer NOT NULL UNIQUE,
    monthly_credits bigint  NOT NULL CHECK (monthly_credits >= 0),
    -- Unused credits carry into the next period (true) or expire at renewal (false).
    rollover        boolean NOT NULL DEFAULT false,
    entitlements    jsonb   NOT NULL,
    active          boolean NOT NULL DEFAULT true
);

CREATE TABLE plan_prices (
    plan_code       text   NOT NULL REFERENCES plans (code),
    currency        text   NOT NULL,
    amount_minor    bigint NOT NULL CHECK (amount_minor >= 0),
    interval        text   NOT NULL DEFAULT 'month',
    stripe_price_id text,
    PRIMARY KEY (plan_code, currency)
);

CREATE TABLE plan_texts (
    plan_code   text NOT NULL REFERENCES plans (code),
    locale      text NOT NULL CHECK (locale IN ('en', 'es', 'pt', 'he', 'ar')),
    name        text NOT NULL,
    description text NOT NULL,
    PRIMARY KEY (plan_code, locale)
);

-- Credits per unit of each metered action.
CREATE TABLE price_table (
    action  text PRIMARY KEY,
    credits bigint NOT NULL CHECK (credits > 0),
    unit    text   NOT NULL
);

INSERT INTO plans (code, rank, monthly_credits, rollover, entitlements) VALUES
  ('free',    0,   50, false, '{"videos_per_month": 2,   "whatsapp_numbers": 1,  "pages": 3,   "ai_agents": 1,  "ad_accounts": 1,  "stores": 1,  "seats": 1}'),
  ('pro',     1,  500, true,  '{"videos_per_month": 20,  "whatsapp_numbers": 5,  "pages": 25,  "ai_agents": 5,  "ad_accounts": 5,  "stores": 3,  "seats": 5}'),
  ('premium', 2, 2000, true,  '{"videos_per_month": 100, "whatsapp_numbers": 20, "pages": 200, "ai_agents": 25, "ad_accounts": 20, "stores": 10, "seats": 20}');

INSERT INTO plan_prices (plan_code, currency, amount_minor) VALUES
  ('free', 'USD', 0), ('free', 'EUR', 0), ('free', 'BRL', 0), ('free', 'ILS', 0), ('free', 'AED', 0), ('free', 'MXN', 0),
  ('pro', 'USD', 9700), ('pro', 'EUR', 8900), ('pro', 'BRL', 49700), ('pro', 'ILS', 35900), ('pro', 'AED', 35900), ('pro', 'MXN', 169900),
  ('premium', 'USD', 29700), ('premium', 'EUR', 27900), ('premium', 'BRL', 149700), ('premium', 'ILS', 109900), ('premium', 'AED', 109900), ('premium', 'MXN', 519900);

INSERT INTO plan_texts (plan_code, locale, name, description) VALUES
  ('free', 'en', 'Free', 'Try NexusOne: 50 credits a month, 2 videos, 1 WhatsApp number.'),
  ('free', 'es', 'Gratis', 'Prueba NexusOne: 50 créditos al mes, 2 vídeos, 1 número de WhatsApp.'),
  ('free', 'pt', 'Grátis', 'Experimente a NexusOne: 50 créditos por mês, 2 vídeos, 1 número de WhatsApp.'),
  ('free', 'he', 'חינם', 'התנסו ב-NexusOne: ‏50 קרדיטים בחודש, 2 סרטונים, מספר WhatsApp אחד.'),
  ('free', 'ar', 'مجاني', 'جرّب NexusOne: ‏50 رصيدًا شهريًا، وفيديوهان، ورقم واتساب واحد.'),
  ('pro', 'en', 'Pro', 'For growing businesses: 500 credits a month, 20 videos, 5 WhatsApp numbers.'),
  ('pro', 'es', 'Pro', 'Para negocios en crecimiento: 500 créditos al mes, 20 vídeos, 5 números de WhatsApp.'),
  ('pro', 'pt', 'Pro', 'Para negócios em crescimento: 500 créditos por mês, 20 vídeos, 5 números de WhatsApp.'),
  ('pro', 'he', 'Pro', 'לעסקים בצמיחה: ‏500 קרדיטים בחודש, 20 סרטונים, 5 מספרי WhatsApp.'),
  ('pro', 'ar', 'احترافي', 'للأعمال النامية: ‏500 رصيد شهريًا، و20 فيديو، و5 أرقام واتساب.'),
  ('premium', 'en', 'Premium', 'For agencies and teams: 2,000 credits a month, 100 videos, 20 WhatsApp numbers.'),
  ('premium', 'es', 'Premium', 'Para agencias y equipos: 2.000 créditos al mes, 100 vídeos, 20 números de WhatsApp.'),
  ('premium', 'pt', 'Premium', 'Para agências e equipes: 2.000 créditos por mês, 100 vídeos, 20 números de WhatsApp.'),
  ('premium', 'he', 'Premium', 'לסוכנויות ולצוותים: ‏2,000 קרדיטים בחודש, 100 סרטונים, 20 מספרי WhatsApp.'),
  ('premium', 'ar', 'مميّز', 'للوكالات والفرق: ‏2000 رصيد شهريًا، و100 فيديو، و20 رقم واتساب.');

INSERT INTO price_table (action, credits, unit) VALUES
  ('content.generation', 1, 'generation'),
  ('content.page', 5, 'page'),
  ('content.image', 2, 'image'),
  ('content.agent_reply', 1, 'reply'),
  ('video.render_minute', 10, 'minute'),
  ('video.voice_clone', 20, 'voice'),
  ('messaging.whatsapp_send', 1, 'message'),
  ('messaging.broadcast_recipient', 1, 'recipient'),
  ('ads.campaign_sync', 1, 'sync'),
  ('commerce.product_import', 1, 'product');

-- One per workspace.
CREATE TABLE subscriptions (
    id                     uuid PRIMARY KEY DEFAULT uuid_v7(),
    tenant_id              uuid        NOT NULL UNIQUE,
    plan_code              text        NOT NULL REFERENCES plans (code),
    status                 text        NOT NULL CHECK (status IN ('trialing', 'active', 'past_due', 'canceled', 'unpaid', 'paused', 'incomplete')),
    billing                text        NOT NULL DEFAULT 'local' CHECK (billing IN ('local', 'stripe')),
    stripe_customer_id     text,
    stripe_subscription_id text UNIQUE,
    current_period_start   timestamptz NOT NULL,
    current_period_end     timestamptz NOT NULL,
    cancel_at_period_end   boolean     NOT NULL DEFAULT false,
    pending_plan_code      text REFERENCES plans (code),
    updated_at             timestamptz NOT NULL DEFAULT now()
);
SELECT enable_tenant_table('subscriptions');

-- available + sum(held reservations) is what the workspace owns; neither can go negative.
CREATE TABLE credit_balances (
    tenant_id    uuid PRIMARY KEY,
    available    bigint NOT NULL CHECK (available >= 0),
    reserved     bigint NOT NULL DEFAULT 0 CHECK (reserved >= 0),
    period_grant bigint NOT NULL DEFAULT 0,
    period_used  bigint NOT NULL DEFAULT 0,
    updated_at   timestamptz NOT NULL DEFAULT now()
);
SELECT enable_tenant_table('credit_balances');

CREATE TABLE reservations (
    id               uuid PRIMARY KEY,
    tenant_id        uuid        NOT NULL,
    idempotency_key  text        NOT NULL,
    action           text        NOT NULL,
    amount           bigint      NOT NULL CHECK (amount > 0),
    status           text        NOT NULL CHECK (status IN ('held', 'committed', 'released', 'expired')),
    committed_amount bigint      NOT NULL DEFAULT 0,
    expires_at       timestamptz NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    settled_at       timestamptz,
    UNIQUE (tenant_id, idempotency_key)
);
CREATE INDEX reservations_expiring ON reservations (expires_at) WHERE status = 'held';
SELECT enable_tenant_table('reservations');

-- Append-only: every change to available credits, with the balance after it.
CREATE TABLE credit_ledger (
    id              uuid PRIMARY KEY DEFAULT uuid_v7(),
    tenant_id       uuid        NOT NULL,
    kind            text        NOT NULL CHECK (kind IN ('grant', 'purchase', 'reserve', 'commit', 'release', 'expire', 'adjust')),
    amount          bigint      NOT NULL,
    balance_after   bigint      NOT NULL CHECK (balance_after >= 0),
    action          text        NOT NULL DEFAULT '',
    reservation_id  uuid,
    -- Grants and purchases are applied once per key (e.g. "invoice:in_123", "period:2026-11").
    idempotency_key text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, idempotency_key)
);
CREATE INDEX credit_ledger_tenant ON credit_ledger (tenant_id, created_at DESC, id DESC);
SELECT enable_tenant_table('credit_ledger');

CREATE FUNCTION ledger_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'credit_ledger is append-only';
END
$$;
CREATE TRIGGER ledger_append_only BEFORE UPDATE OR DELETE ON credit_ledger FOR EACH ROW EXECUTE FUNCTION ledger_append_only();

-- Uses of limited features per period (videos this month, …).
CREATE TABLE feature_usage (
    tenant_id    uuid        NOT NULL,
    feature      text        NOT NULL,
    period_start timestamptz NOT NULL,
    used         bigint      NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, feature, period_start)
);
SELECT enable_tenant_table('feature_usage');

CREATE TABLE feature_uses (
    tenant_id       uuid NOT NULL,
    idempotency_key text NOT NULL,
    feature         text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, idempotency_key)
);
SELECT enable_tenant_table('feature_uses');

-- 80% / 100% notices, once per period.
CREATE TABLE credit_notices (
    tenant_id    uuid        NOT NULL,
    percent      integer     NOT NULL,
    period_start timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, percent, period_start)
);
SELECT enable_tenant_table('credit_notices');
