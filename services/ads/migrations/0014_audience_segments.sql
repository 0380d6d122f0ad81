-- Audiences made from a contact-book segment (messaging): the segment they are read from, the
-- contacts left out for want of marketing consent, and the state of their scheduled refresh.
-- Lookalikes of an audience: their source, countries and ratio.
ALTER TABLE audiences
    ADD COLUMN segment_id      text        NOT NULL DEFAULT '',
    ADD COLUMN excluded        integer     NOT NULL DEFAULT 0,
    ADD COLUMN refresh_status  text        NOT NULL DEFAULT 'ready',
    ADD COLUMN refresh_error   text        NOT NULL DEFAULT '',
    ADD COLUMN refreshed_at    timestamptz,
    -- When the scheduled refresh is due (segment audiences only), and until when a replica holds it.
    ADD COLUMN next_refresh_at timestamptz,
    ADD COLUMN lease_until     timestamptz,
    ADD COLUMN kind            text        NOT NULL DEFAULT 'custom' CHECK (kind IN ('custom', 'lookalike')),
    -- A lookalike outlives its source's row (the platform keeps it).
    ADD COLUMN origin_id       uuid        REFERENCES audiences (id) ON DELETE SET NULL,
    ADD COLUMN countries       text[]      NOT NULL DEFAULT '{}',
    ADD COLUMN ratio_percent   integer     NOT NULL DEFAULT 0;
CREATE INDEX audiences_refresh_due ON audiences (next_refresh_at) WHERE next_refresh_at IS NOT NULL;
