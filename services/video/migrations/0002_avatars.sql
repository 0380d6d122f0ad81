-- Avatar images a workspace uploaded (the bytes are in object storage under storage_key).
CREATE TABLE avatars (
    id           uuid PRIMARY KEY,
    tenant_id    uuid        NOT NULL,
    name         text        NOT NULL DEFAULT '',
    content_type text        NOT NULL CHECK (content_type IN ('image/png', 'image/jpeg')),
    width        integer     NOT NULL,
    height       integer     NOT NULL,
    size_bytes   bigint      NOT NULL,
    storage_key  text        NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX avatars_recent ON avatars (tenant_id, created_at DESC, id DESC);
SELECT enable_tenant_table('avatars');
