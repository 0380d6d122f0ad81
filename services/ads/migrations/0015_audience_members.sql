-- What a TikTok audience was last given: TikTok's segment API adds and removes members but
-- cannot replace them, so a refresh sends the difference between the segment now and these.
-- Only the SHA-256 hashes the platform received are kept (kind 1: email, 2: phone). Rows are
-- keyed by the audience's id without a reference: they are written while the audience is first
-- uploaded, before its row exists; deleting the audience deletes them.
CREATE TABLE audience_members (
    tenant_id   uuid     NOT NULL,
    audience_id uuid     NOT NULL,
    kind        smallint NOT NULL CHECK (kind IN (1, 2)),
    hash        bytea    NOT NULL CHECK (length(hash) = 32),
    -- The refresh that last found it in the segment; older ones are removed at its end.
    generation  bigint   NOT NULL,
    -- Whether the platform is known to hold it: false until an add succeeds, and set false again
    -- before a removal is sent, so a crash in between is repaired by the next refresh.
    held        boolean  NOT NULL DEFAULT false,
    PRIMARY KEY (audience_id, kind, hash)
);
SELECT enable_tenant_table('audience_members', ARRAY['hash']);
-- Audited only if a key is rewritten (no code does): every refresh restamps every row, and a
-- trail of a million hashed emails per refresh would copy personal data, not record a decision.
-- The refresh itself is recorded on `audiences` and by its event.
DROP TRIGGER audit_row ON audience_members;
CREATE TRIGGER audit_row AFTER UPDATE OF tenant_id, audience_id, kind, hash ON audience_members
    FOR EACH ROW EXECUTE FUNCTION audit_row('hash');

ALTER TABLE audiences ADD COLUMN member_generation bigint NOT NULL DEFAULT 0;

-- TikTok segment audiences made before refreshes could diff were never scheduled: due now. Their
-- first refresh adds every member again (TikTok ignores a repeat) and can remove nobody. Every
-- workspace's rows: as the sweepers do (RLS is forced, even for the migrating role).
SELECT set_config('nexus.system', 'on', true);
UPDATE audiences SET next_refresh_at = now()
 WHERE segment_id <> '' AND next_refresh_at IS NULL AND kind = 'custom';
