-- Orders imported from a DSers order export (keyed by the export's order number).
ALTER TABLE orders DROP CONSTRAINT orders_source_check;
ALTER TABLE orders ADD CONSTRAINT orders_source_check CHECK (source IN ('shopify', 'local', 'manual', 'dsers'));
