-- The media library of social posts: pictures and videos a workspace uploads, measured from
-- their own bytes (kind, type, size, sides, duration) and kept in object storage under
-- `storage_key`. Posts name an item by id (`"media_id"` in a media object of their JSON); the
-- platforms fetch it through a signed, expiring link. Deleting an item keeps its row (posts
-- already published still name it) and drops the file.

CREATE TABLE post_media (
    id            uuid PRIMARY KEY,
    tenant_id     uuid        NOT NULL,
    name          text        NOT NULL,
    kind          text        NOT NULL CHECK (kind IN ('image', 'video')),
    content_type  text        NOT NULL,
    bytes         bigint      NOT NULL CHECK (bytes >= 0),
    width         integer     NOT NULL DEFAULT 0,
    height        integer     NOT NULL DEFAULT 0,
    duration_secs double precision NOT NULL DEFAULT 0,
    storage_key   text        NOT NULL,
    -- Hex SHA-256 of the stored bytes.
    sha256        text        NOT NULL,
    created_by    uuid        NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    deleted_at    timestamptz
);
-- The library lists the live items newest first.
CREATE INDEX post_media_library ON post_media (tenant_id, created_at DESC, id DESC) WHERE deleted_at IS NULL;
SELECT enable_tenant_table('post_media');
