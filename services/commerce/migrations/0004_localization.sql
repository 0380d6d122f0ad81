-- The languages a store sells in (of en, es, pt, he, ar): products are localized into them.
ALTER TABLE connections ADD COLUMN languages text[] NOT NULL DEFAULT '{}';

-- A product's title and description in another language, as the content service gave them.
CREATE TABLE product_translations (
    id          uuid PRIMARY KEY,
    tenant_id   uuid        NOT NULL,
    product_id  uuid        NOT NULL REFERENCES dropshipping_products (id) ON DELETE CASCADE,
    language    text        NOT NULL CHECK (language IN ('en', 'es', 'pt', 'he', 'ar')),
    title       text        NOT NULL,
    description text        NOT NULL,
    -- Who wrote it: a model ("openai"), or "local" (labelled copies of the source, no translation).
    provider    text        NOT NULL,
    model       text        NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (product_id, language)
);
SELECT enable_tenant_table('product_translations');
