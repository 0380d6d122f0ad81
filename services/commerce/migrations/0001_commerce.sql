-- Supplier and store connections, the imported catalogue (dropshipping_products and their
-- variants) with pricing rules, price history and alerts, store orders and their fulfilment,
-- sales (dropshipping_sales) with commission rules and commissions, and daily exchange rates.
-- Money is numeric with its currency beside it: exact decimals, never floats.

-- Daily exchange rates, per euro as the ECB publishes them. Not tenant data: every workspace
-- converts at the same published rate.
CREATE TABLE exchange_rates (
    day        date          NOT NULL,
    currency   text          NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    -- Units of `currency` for one euro.
    per_euro   numeric(24,10) NOT NULL CHECK (per_euro > 0),
    source     text          NOT NULL,
    fetched_at timestamptz   NOT NULL DEFAULT now(),
    PRIMARY KEY (day, currency)
);

CREATE TABLE connections (
    id           uuid PRIMARY KEY,
    tenant_id    uuid        NOT NULL,
    provider     text        NOT NULL CHECK (provider IN ('cj', 'aliexpress', 'shopify', 'local')),
    role         text        NOT NULL CHECK (role IN ('supplier', 'store')),
    -- Shop domain, CJ account, AliExpress app key, or "local".
    account      text        NOT NULL,
    -- Sealed JSON (tokens, keys): never stored or audited in clear.
    credentials  text        NOT NULL,
    -- When the access token expires (CJ, AliExpress session), for refreshing ahead of it.
    token_expires_at timestamptz,
    status       text        NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'failing', 'disconnected')),
    last_error   text        NOT NULL DEFAULT '',
    checked_at   timestamptz,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, provider, account)
);
CREATE INDEX connections_recent ON connections (tenant_id, created_at DESC, id DESC);
-- A webhook names its shop: find its connection (the only lookup across workspaces).
CREATE UNIQUE INDEX connections_shop ON connections (account) WHERE provider = 'shopify' AND status <> 'disconnected';
SELECT enable_tenant_table('connections', ARRAY['credentials']);

CREATE TABLE pricing_rules (
    id                 uuid PRIMARY KEY,
    tenant_id          uuid          NOT NULL,
    scope              text          NOT NULL CHECK (scope IN ('default', 'category', 'product')),
    -- Category name or product id; empty for the default rule.
    scope_ref          text          NOT NULL DEFAULT '',
    markup_percent     numeric(12,4) NOT NULL DEFAULT 0,
    markup_fixed       numeric(20,4) NOT NULL DEFAULT 0,
    compare_at_percent numeric(12,4),
    rounding           text          NOT NULL DEFAULT 'none' CHECK (rounding IN ('none', 'cents99', 'cents95')),
    currency           text          NOT NULL,
    -- Margin below which a cost rise raises an alert, and how far the price may follow by itself.
    min_margin_percent numeric(12,4) NOT NULL DEFAULT 0,
    max_auto_increase_percent numeric(12,4) NOT NULL DEFAULT 0,
    created_at         timestamptz   NOT NULL DEFAULT now(),
    updated_at         timestamptz   NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, scope, scope_ref)
);
SELECT enable_tenant_table('pricing_rules');

CREATE TABLE dropshipping_products (
    id                  uuid PRIMARY KEY,
    tenant_id           uuid        NOT NULL,
    connection_id       uuid        NOT NULL REFERENCES connections (id),
    supplier            text        NOT NULL,
    supplier_product_id text        NOT NULL,
    title               text        NOT NULL,
    description         text        NOT NULL DEFAULT '',
    category            text        NOT NULL DEFAULT '',
    images              jsonb       NOT NULL DEFAULT '[]',
    shipping            jsonb       NOT NULL DEFAULT '[]',
    status              text        NOT NULL DEFAULT 'draft' CHECK (status IN ('draft', 'published', 'out_of_stock', 'archived')),
    -- The store it was pushed to, and the product's id there.
    store_connection_id uuid REFERENCES connections (id),
    store_product_id    text,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, supplier, supplier_product_id)
);
CREATE INDEX dropshipping_products_recent ON dropshipping_products (tenant_id, created_at DESC, id DESC);
SELECT enable_tenant_table('dropshipping_products');

CREATE TABLE product_variants (
    id                  uuid PRIMARY KEY,
    tenant_id           uuid          NOT NULL,
    product_id          uuid          NOT NULL REFERENCES dropshipping_products (id) ON DELETE CASCADE,
    supplier_variant_id text          NOT NULL,
    sku                 text          NOT NULL,
    options             jsonb         NOT NULL DEFAULT '{}',
    cost                numeric(20,4) NOT NULL CHECK (cost >= 0),
    cost_currency       text          NOT NULL,
    price               numeric(20,4) NOT NULL CHECK (price >= 0),
    compare_at          numeric(20,4),
    price_currency      text          NOT NULL,
    -- The conversion behind `price` (cost currency → price currency), recorded on every price.
    rate                numeric(24,10) NOT NULL,
    rate_day            date          NOT NULL,
    rate_source         text          NOT NULL,
    stock               integer       NOT NULL DEFAULT 0,
    store_variant_id    text,
    updated_at          timestamptz   NOT NULL DEFAULT now(),
    UNIQUE (product_id, supplier_variant_id)
);
SELECT enable_tenant_table('product_variants');

CREATE TABLE price_history (
    id          uuid PRIMARY KEY,
    tenant_id   uuid          NOT NULL,
    variant_id  uuid          NOT NULL REFERENCES product_variants (id) ON DELETE CASCADE,
    old_cost    numeric(20,4) NOT NULL,
    new_cost    numeric(20,4) NOT NULL,
    old_price   numeric(20,4) NOT NULL,
    new_price   numeric(20,4) NOT NULL,
    old_stock   integer       NOT NULL,
    new_stock   integer       NOT NULL,
    currency    text          NOT NULL,
    rate        numeric(24,10) NOT NULL,
    rate_day    date          NOT NULL,
    reason      text          NOT NULL,
    created_at  timestamptz   NOT NULL DEFAULT now()
);
CREATE INDEX price_history_variant ON price_history (tenant_id, variant_id, created_at DESC);
SELECT enable_tenant_table('price_history');

CREATE TABLE alerts (
    id          uuid PRIMARY KEY,
    tenant_id   uuid        NOT NULL,
    kind        text        NOT NULL CHECK (kind IN ('margin_below_threshold', 'out_of_stock', 'fulfilment_failed', 'price_limit_reached')),
    -- The product, variant or order the alert is about.
    subject_id  uuid        NOT NULL,
    detail      jsonb       NOT NULL DEFAULT '{}',
    created_at  timestamptz NOT NULL DEFAULT now(),
    resolved_at timestamptz
);
-- One open alert per subject and kind: a sweep that sees the same problem again raises nothing.
CREATE UNIQUE INDEX alerts_open ON alerts (tenant_id, kind, subject_id) WHERE resolved_at IS NULL;
CREATE INDEX alerts_recent ON alerts (tenant_id, created_at DESC, id DESC);
SELECT enable_tenant_table('alerts');

CREATE TABLE orders (
    id                  uuid PRIMARY KEY,
    tenant_id           uuid          NOT NULL,
    connection_id       uuid REFERENCES connections (id),
    source              text          NOT NULL CHECK (source IN ('shopify', 'local', 'manual')),
    -- The store's order id (manual orders: the client's idempotency key).
    external_id         text          NOT NULL,
    number              text          NOT NULL DEFAULT '',
    status              text          NOT NULL CHECK (status IN ('pending', 'paid', 'fulfilling', 'fulfilled', 'fulfilment_failed', 'cancelled', 'refunded')),
    currency            text          NOT NULL,
    subtotal            numeric(20,4) NOT NULL DEFAULT 0,
    shipping            numeric(20,4) NOT NULL DEFAULT 0,
    taxes               numeric(20,4) NOT NULL DEFAULT 0,
    total               numeric(20,4) NOT NULL DEFAULT 0,
    customer            jsonb         NOT NULL DEFAULT '{}',
    lines               jsonb         NOT NULL DEFAULT '[]',
    -- The store's updated_at of the version applied: an older delivery never overwrites a newer.
    external_updated_at timestamptz   NOT NULL,
    supplier_order_id   text,
    supplier_pay_url    text,
    tracking            jsonb         NOT NULL DEFAULT '[]',
    failure             text          NOT NULL DEFAULT '',
    -- Set when a fulfilment failure after payment asked for the buyer to be refunded.
    refund_requested_at timestamptz,
    affiliate           text,
    paid_at             timestamptz,
    created_at          timestamptz   NOT NULL DEFAULT now(),
    updated_at          timestamptz   NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, source, external_id)
);
CREATE INDEX orders_recent ON orders (tenant_id, created_at DESC, id DESC);
SELECT enable_tenant_table('orders');

-- Store webhook deliveries already applied (X-Shopify-Webhook-Id).
CREATE TABLE webhook_receipts (
    tenant_id   uuid        NOT NULL,
    webhook_id  text        NOT NULL,
    topic       text        NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, webhook_id)
);
SELECT enable_tenant_table('webhook_receipts');

CREATE TABLE dropshipping_sales (
    id                 uuid PRIMARY KEY,
    tenant_id          uuid          NOT NULL,
    order_id           uuid          NOT NULL UNIQUE REFERENCES orders (id),
    currency           text          NOT NULL,
    revenue            numeric(20,4) NOT NULL,
    product_cost       numeric(20,4) NOT NULL,
    shipping_cost      numeric(20,4) NOT NULL,
    platform_fee       numeric(20,4) NOT NULL,
    payment_fee        numeric(20,4) NOT NULL,
    taxes              numeric(20,4) NOT NULL,
    profit             numeric(20,4) NOT NULL,
    reporting_currency text          NOT NULL,
    -- order currency → reporting currency at the rate of the order's day.
    rate               numeric(24,10) NOT NULL,
    rate_day           date          NOT NULL,
    reporting_revenue  numeric(20,4) NOT NULL,
    reporting_profit   numeric(20,4) NOT NULL,
    status             text          NOT NULL DEFAULT 'recorded' CHECK (status IN ('recorded', 'reversed')),
    paid_at            timestamptz   NOT NULL,
    reversed_at        timestamptz,
    created_at         timestamptz   NOT NULL DEFAULT now()
);
CREATE INDEX dropshipping_sales_paid ON dropshipping_sales (tenant_id, paid_at DESC, id DESC);
SELECT enable_tenant_table('dropshipping_sales');

CREATE TABLE commission_rules (
    id          uuid PRIMARY KEY,
    tenant_id   uuid          NOT NULL,
    scope       text          NOT NULL CHECK (scope IN ('workspace', 'product', 'vendor', 'affiliate')),
    scope_ref   text          NOT NULL DEFAULT '',
    beneficiary text          NOT NULL,
    kind        text          NOT NULL CHECK (kind IN ('percentage', 'fixed')),
    -- Percent of revenue, or a fixed amount per order in `currency`.
    value       numeric(20,4) NOT NULL CHECK (value >= 0),
    -- [{"from_orders": n, "value": v}]: a higher value once the period's volume reaches n.
    tiers       jsonb         NOT NULL DEFAULT '[]',
    cap         numeric(20,4),
    currency    text          NOT NULL,
    created_at  timestamptz   NOT NULL DEFAULT now()
);
SELECT enable_tenant_table('commission_rules');

CREATE TABLE commissions (
    id          uuid PRIMARY KEY,
    tenant_id   uuid          NOT NULL,
    sale_id     uuid          NOT NULL REFERENCES dropshipping_sales (id),
    rule_id     uuid          NOT NULL REFERENCES commission_rules (id),
    beneficiary text          NOT NULL,
    amount      numeric(20,4) NOT NULL,
    currency    text          NOT NULL,
    status      text          NOT NULL DEFAULT 'earned' CHECK (status IN ('earned', 'reversed')),
    earned_at   timestamptz   NOT NULL,
    reversed_at timestamptz,
    UNIQUE (sale_id, rule_id)
);
CREATE INDEX commissions_beneficiary ON commissions (tenant_id, beneficiary, earned_at);
SELECT enable_tenant_table('commissions');
