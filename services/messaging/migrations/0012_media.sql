-- Inbound WhatsApp media copied into object storage at once (Meta's media ids expire): a media
-- message is stored `pending`, a durable job downloads it, checks Meta's SHA-256 and size, and
-- marks it `stored` (with its key) or `failed` (with a reason code).
ALTER TABLE wa_messages
    ADD COLUMN media_status   text CHECK (media_status IN ('pending', 'stored', 'failed')),
    -- Meta's media id (or the sandbox's), as the webhook named it.
    ADD COLUMN media_id       text,
    ADD COLUMN media_mime     text,
    -- Lowercase hex SHA-256 Meta reported and the bytes matched.
    ADD COLUMN media_sha256   text,
    ADD COLUMN media_size     bigint CHECK (media_size >= 0),
    -- Object key, built from ids only: whatsapp/<tenant>/<message>.
    ADD COLUMN media_key      text,
    -- Why it failed: sha256_mismatch, too_large, media_gone, download_failed.
    ADD COLUMN media_error    text,
    -- Download attempts so far (the job gives up after the consumer's delivery bound).
    ADD COLUMN media_attempts integer NOT NULL DEFAULT 0;
