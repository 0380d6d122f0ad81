-- Refunds of (part of) an order, and the share of each commission a refund took back. A refund
-- is `pending` from the moment it holds its amount (so concurrent refunds cannot exceed what
-- remains) until the store answered; `failed` releases the amount.
CREATE TABLE refunds (
    id                        uuid PRIMARY KEY,
    tenant_id                 uuid          NOT NULL,
    order_id                  uuid          NOT NULL REFERENCES orders (id),
    -- The client's Idempotency-Key: the same key on the same order refunds once.
    idempotency_key           text          NOT NULL,
    status                    text          NOT NULL CHECK (status IN ('pending', 'completed', 'failed')),
    amount                    numeric(20,4) NOT NULL CHECK (amount > 0),
    currency                  text          NOT NULL,
    -- [{"line": index in the order's lines, "quantity": n}]; [] for an amount only.
    lines                     jsonb         NOT NULL DEFAULT '[]',
    reason                    text          NOT NULL DEFAULT '',
    store_refund_id           text,
    failure                   text          NOT NULL DEFAULT '',
    -- What the refund took back of the sale's profit, in its currency and the reporting one.
    profit_reversed           numeric(20,4) NOT NULL DEFAULT 0,
    reporting_profit_reversed numeric(20,4) NOT NULL DEFAULT 0,
    created_at                timestamptz   NOT NULL DEFAULT now(),
    completed_at              timestamptz,
    UNIQUE (tenant_id, order_id, idempotency_key)
);
CREATE INDEX refunds_order ON refunds (order_id, created_at);
SELECT enable_tenant_table('refunds');

-- Commissions taken back, wholly or in part: the payout statement's reversal lines.
CREATE TABLE commission_reversals (
    id            uuid PRIMARY KEY,
    tenant_id     uuid          NOT NULL,
    commission_id uuid          NOT NULL REFERENCES commissions (id),
    refund_id     uuid REFERENCES refunds (id),
    amount        numeric(20,4) NOT NULL CHECK (amount >= 0),
    reversed_at   timestamptz   NOT NULL,
    UNIQUE (commission_id, refund_id)
);
CREATE INDEX commission_reversals_at ON commission_reversals (tenant_id, reversed_at);
SELECT enable_tenant_table('commission_reversals');

-- Reversals made before partial refunds existed took the whole commission.
INSERT INTO commission_reversals (id, tenant_id, commission_id, refund_id, amount, reversed_at)
SELECT gen_random_uuid(), tenant_id, id, NULL, amount, reversed_at FROM commissions
 WHERE status = 'reversed' AND reversed_at IS NOT NULL;
