-- A number's lifecycle: its quality rating and messaging tier refreshed from Meta, and
-- disconnection.
--
-- Disconnect is a soft delete (`disconnected_at`): messages, conversations, templates and
-- broadcasts reference the number, and history must stay readable, so the row stays; its token is
-- wiped. Meta's phone number id is then unique among connected numbers only, so the number can be
-- connected again (here or in another workspace) as a new row.

ALTER TABLE wa_numbers
    ADD COLUMN disconnected_at    timestamptz,
    -- When the rating and tier were last read from Meta (NULL: due now).
    ADD COLUMN quality_checked_at timestamptz;

CREATE UNIQUE INDEX wa_numbers_connected_phone ON wa_numbers (phone_number_id) WHERE disconnected_at IS NULL;
-- The table-wide constraint would refuse a reconnect; the partial index above replaces it. A
-- replica of the previous release connecting a number during the rollout gets an error (its
-- ON CONFLICT names the old constraint) and the caller retries.
ALTER TABLE wa_numbers DROP CONSTRAINT wa_numbers_phone_number_id_key;
-- The refresh sweep's claim: connected Meta numbers, least recently checked first.
CREATE INDEX wa_numbers_quality_due ON wa_numbers (quality_checked_at NULLS FIRST) WHERE disconnected_at IS NULL;
