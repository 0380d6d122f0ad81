-- Session families get an authentication time (for re-authentication checks) and an absolute
-- end; a rotated refresh token keeps its successor, sealed, for the reuse grace period.
ALTER TABLE sessions
    ADD COLUMN auth_time         timestamptz,
    ADD COLUMN family_expires_at timestamptz,
    ADD COLUMN successor_id      uuid,
    ADD COLUMN successor_sealed  text;

UPDATE sessions s SET auth_time = f.started, family_expires_at = f.started + interval '90 days'
FROM (SELECT family_id, min(created_at) AS started FROM sessions GROUP BY family_id) f
WHERE f.family_id = s.family_id;

ALTER TABLE sessions ALTER COLUMN auth_time SET NOT NULL, ALTER COLUMN family_expires_at SET NOT NULL;

-- An OAuth sign-in waiting for the user's second factor: the state stays (bound to the code the
-- provider returned) with the resolved user and the identity to link once the factor passes.
ALTER TABLE oauth_states
    ADD COLUMN code_hash     bytea,
    ADD COLUMN mfa_user_id   uuid,
    ADD COLUMN pending_subject text,
    ADD COLUMN pending_email   text;

-- Bodies of old mail are blanked (they hold single-use links); when is kept.
ALTER TABLE mail_outbox ADD COLUMN body_purged_at timestamptz;
CREATE INDEX mail_outbox_purge ON mail_outbox (created_at) WHERE body_purged_at IS NULL;

-- The sealed successor never reaches the audit trail.
SELECT enable_audit('sessions', ARRAY['refresh_hash', 'successor_sealed']);
