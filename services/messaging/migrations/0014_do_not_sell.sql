-- "Do not sell or share" (CCPA). For one contact it is a consent on the channel `ads` (the ad
-- platforms: custom audiences) withdrawn, recorded like every consent with its source, proof,
-- time and actor; for the whole workspace it is a contact-book setting that keeps every contact
-- out of the ad platforms.
ALTER TABLE consents DROP CONSTRAINT consents_channel_check;
ALTER TABLE consents ADD CONSTRAINT consents_channel_check CHECK (channel IN ('whatsapp', 'email', 'sms', 'ads'));
ALTER TABLE book_settings
    ADD COLUMN do_not_sell            boolean     NOT NULL DEFAULT false,
    ADD COLUMN do_not_sell_changed_at timestamptz;
