-- Per-account publishing limits shared by every scheduler replica: when a target's publish call
-- (a TikTok init, an Instagram media_publish) was last sent. Counting an account's targets sent
-- within a platform's window, under a per-account lock, keeps the whole fleet below the limit
-- without discovering it through the platform's refusals.
ALTER TABLE social_post_targets ADD COLUMN sent_at timestamptz;
CREATE INDEX social_post_targets_sent ON social_post_targets (platform, account, sent_at)
    WHERE sent_at IS NOT NULL;

-- A publish found again by caption on the account's listing is told from its twins (another
-- target with the same caption) by the platform ids other targets already hold.
CREATE INDEX social_post_targets_platform_id ON social_post_targets (platform, account, platform_post_id)
    WHERE platform_post_id IS NOT NULL;
