-- The social media scheduler: posts, each published on one or more accounts (a target per
-- account, in its platform's variant), claimed when due across replicas (SKIP LOCKED with a
-- lease) and published exactly once: a target whose publish call may have happened is in
-- 'publishing' with what is known of the call in `progress`, and is looked up on the platform
-- before anything is repeated.

CREATE TABLE social_posts (
    id           uuid PRIMARY KEY,
    tenant_id    uuid        NOT NULL,
    campaign_id  uuid        REFERENCES campaigns (id),
    -- The member who wrote it, and the admin who approved it.
    author       uuid        NOT NULL,
    approved_by  uuid,
    status       text        NOT NULL
                 CHECK (status IN ('draft', 'pending_approval', 'scheduled', 'cancelled')),
    scheduled_at timestamptz,
    -- The calendar's time zone for this post (IANA).
    time_zone    text        NOT NULL DEFAULT 'UTC',
    -- The shared text, link and media the variants start from, as sent.
    body         jsonb       NOT NULL,
    -- The client's key for this request: the same key returns the same post.
    request_key  text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, request_key)
);
CREATE INDEX social_posts_calendar ON social_posts (tenant_id, scheduled_at, id);
SELECT enable_tenant_table('social_posts');

CREATE TABLE social_post_targets (
    id            uuid PRIMARY KEY,
    tenant_id     uuid        NOT NULL,
    post_id       uuid        NOT NULL REFERENCES social_posts (id) ON DELETE CASCADE,
    connection_id uuid        NOT NULL REFERENCES connections (id),
    provider      text        NOT NULL,
    platform      text        NOT NULL CHECK (platform IN ('instagram', 'facebook', 'tiktok', 'youtube')),
    account       text        NOT NULL,
    variant       jsonb       NOT NULL,
    status        text        NOT NULL DEFAULT 'scheduled'
                  CHECK (status IN ('scheduled', 'publishing', 'published', 'failed', 'cancelled')),
    -- Null while the post is a draft or waits for approval.
    due_at        timestamptz,
    next_at       timestamptz,
    claimed_until timestamptz,
    -- Raised at every claim: a replica whose lease ran out cannot record over the next one.
    claims        integer     NOT NULL DEFAULT 0,
    attempts      integer     NOT NULL DEFAULT 0,
    -- What is known of the publish so far (container ids, publish id, upload session, whether
    -- the publish call was sent), so a retry continues or reconciles instead of repeating.
    progress      jsonb       NOT NULL DEFAULT '{}',
    platform_post_id text,
    permalink     text        NOT NULL DEFAULT '',
    published_at  timestamptz,
    error_code    text        NOT NULL DEFAULT '',
    error         text        NOT NULL DEFAULT '',
    likes         bigint      NOT NULL DEFAULT 0,
    comments      bigint      NOT NULL DEFAULT 0,
    shares        bigint      NOT NULL DEFAULT 0,
    views         bigint      NOT NULL DEFAULT 0,
    engagement_at timestamptz,
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX social_post_targets_post ON social_post_targets (post_id);
-- The scheduler reads due targets across workspaces.
CREATE INDEX social_post_targets_due ON social_post_targets (next_at)
    WHERE status IN ('scheduled', 'publishing');
CREATE INDEX social_post_targets_engagement ON social_post_targets (engagement_at NULLS FIRST)
    WHERE status = 'published';
SELECT enable_tenant_table('social_post_targets');

-- A connection whose token the platform refused while publishing: its queue waits (posts stay
-- scheduled) until the workspace connects again, which clears this.
ALTER TABLE connections ADD COLUMN posting_paused_at timestamptz;

-- Read-only iCal feeds of a workspace's post calendar: the token is in the feed's address (for
-- calendar apps, which send no headers), stored only as its SHA-256; revoking one stops it.
CREATE TABLE calendar_feeds (
    id          uuid PRIMARY KEY,
    tenant_id   uuid        NOT NULL,
    token_hash  bytea       NOT NULL UNIQUE,
    name        text        NOT NULL DEFAULT '',
    created_by  uuid        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz
);
SELECT enable_tenant_table('calendar_feeds');

-- The posting queue: recurring slots (a weekday and a time in a time zone) that a post "added
-- to the queue" takes, the earliest one no other post holds.
CREATE TABLE post_queue_slots (
    id          uuid PRIMARY KEY,
    tenant_id   uuid     NOT NULL,
    -- ISO weekday: 1 Monday … 7 Sunday.
    weekday     smallint NOT NULL CHECK (weekday BETWEEN 1 AND 7),
    time_of_day time     NOT NULL,
    time_zone   text     NOT NULL,
    UNIQUE (tenant_id, weekday, time_of_day, time_zone)
);
SELECT enable_tenant_table('post_queue_slots');
