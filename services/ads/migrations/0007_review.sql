-- What the platforms say of a built campaign, refreshed by the sweep: the campaign's delivery
-- status as the platform words it, and its ad's review (a rejection announced once, with the
-- platform's reason).
ALTER TABLE ad_builds
    ADD COLUMN platform_status text NOT NULL DEFAULT '',
    ADD COLUMN review_status text NOT NULL DEFAULT 'pending'
        CHECK (review_status IN ('pending', 'approved', 'rejected')),
    ADD COLUMN review_reason text NOT NULL DEFAULT '',
    ADD COLUMN status_synced_at timestamptz;
