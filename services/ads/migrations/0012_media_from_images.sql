-- Posts may name a finished image of the content service (`"image_id": "img_…"`): when the post
-- is written the image's bytes are imported into the workspace's media library, once per image,
-- and the post then names that item. `source_image` is the content image an item was imported
-- from (NULL for uploads); a live item per image and workspace, so concurrent imports of one
-- image end with one item (the loser's insert does nothing). A deleted item frees the image for
-- a new import.
ALTER TABLE post_media ADD COLUMN source_image text;
CREATE UNIQUE INDEX post_media_source_image ON post_media (tenant_id, source_image)
    WHERE source_image IS NOT NULL AND deleted_at IS NULL;
