-- Background music chosen per video (a track of the built-in library; empty: none).
ALTER TABLE videos
    ADD COLUMN music text NOT NULL DEFAULT '' CHECK (music IN ('', 'calm', 'upbeat', 'bright'));
