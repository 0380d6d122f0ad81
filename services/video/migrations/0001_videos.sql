-- Videos and their render jobs: the job's state lives on the video row (claimed by workers with
-- FOR UPDATE SKIP LOCKED), every state change is kept in video_transitions.

CREATE TABLE videos (
    id                uuid PRIMARY KEY,
    tenant_id         uuid             NOT NULL,
    title             text             NOT NULL DEFAULT '',
    script            text             NOT NULL,
    avatar_url        text             NOT NULL,
    voice_id          text             NOT NULL,
    voice_provider    text             NOT NULL,
    provider          text             NOT NULL,
    language          text             NOT NULL CHECK (language IN ('en', 'es', 'pt', 'he', 'ar')),
    aspect_ratio      text             NOT NULL CHECK (aspect_ratio IN ('16:9', '9:16', '1:1')),
    captions          boolean          NOT NULL DEFAULT false,
    status            text             NOT NULL DEFAULT 'queued' CHECK (status IN
                        ('queued', 'synthesizing_voice', 'rendering', 'storing', 'done', 'failed', 'canceled')),
    characters        bigint           NOT NULL,
    characters_billed bigint           NOT NULL DEFAULT 0,
    minutes           bigint           NOT NULL,
    estimated_credits bigint           NOT NULL,
    credits_charged   bigint           NOT NULL DEFAULT 0,
    -- The credit hold and the videos_per_month use, settled through the outbox at the end.
    reservation_id    text             NOT NULL,
    feature_use_key   text             NOT NULL,
    -- The speech as the renderer fetches it.
    audio_url         text,
    -- none → creating (written before POST /talks) → created (talk_id known). See app/pipeline.rs.
    talk_state        text             NOT NULL DEFAULT 'none' CHECK (talk_state IN ('none', 'creating', 'created')),
    talk_id           text,
    talk_created_at   timestamptz,
    result_url        text,
    -- Secret of this job's webhook URL (D-ID does not sign webhooks).
    webhook_token     text             NOT NULL,
    storage_key       text,
    size_bytes        bigint           NOT NULL DEFAULT 0,
    duration_seconds  double precision NOT NULL DEFAULT 0,
    error_code        text             NOT NULL DEFAULT '',
    error_detail      text             NOT NULL DEFAULT '',
    -- Job mechanics: failed attempts of the current step, when it is next due, who holds it.
    attempts          integer          NOT NULL DEFAULT 0,
    next_attempt_at   timestamptz      NOT NULL DEFAULT now(),
    lease_token       uuid,
    lease_until       timestamptz,
    idempotency_key   text             NOT NULL,
    created_by        text             NOT NULL DEFAULT '',
    created_at        timestamptz      NOT NULL DEFAULT now(),
    updated_at        timestamptz      NOT NULL DEFAULT now(),
    finished_at       timestamptz,
    UNIQUE (tenant_id, idempotency_key)
);
CREATE INDEX videos_recent ON videos (tenant_id, created_at DESC, id DESC);
CREATE INDEX videos_due ON videos (next_attempt_at)
    WHERE status IN ('queued', 'synthesizing_voice', 'rendering', 'storing');
CREATE UNIQUE INDEX videos_talk ON videos (talk_id) WHERE talk_id IS NOT NULL;
-- Scripts stay out of the audit trail (they can be long); the webhook token is a secret; leases
-- and due times are job mechanics (a claim or a poll that changes nothing else is not audited).
SELECT enable_tenant_table('videos',
    ARRAY['script', 'webhook_token', 'lease_token', 'lease_until', 'next_attempt_at', 'updated_at']);

CREATE TABLE video_transitions (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id   uuid        NOT NULL,
    video_id    uuid        NOT NULL REFERENCES videos (id) ON DELETE CASCADE,
    from_status text        NOT NULL,
    to_status   text        NOT NULL,
    reason      text        NOT NULL DEFAULT '',
    at          timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX video_transitions_video ON video_transitions (video_id, id);
SELECT enable_tenant_table('video_transitions');
