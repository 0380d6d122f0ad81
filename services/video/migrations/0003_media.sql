-- What ffprobe found in a finished video's file, and the thumbnail stored beside it.
ALTER TABLE videos
    ADD COLUMN width         integer NOT NULL DEFAULT 0,
    ADD COLUMN height        integer NOT NULL DEFAULT 0,
    ADD COLUMN thumbnail_key text;
