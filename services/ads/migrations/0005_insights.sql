-- Daily insights of built campaigns at ad level, per day in the ad account's time zone and in
-- its currency (minor units, exact). Campaign and ad set figures are sums of these rows.
CREATE TABLE ad_insights (
    tenant_id     uuid   NOT NULL,
    build_id      uuid   NOT NULL REFERENCES ad_builds (id) ON DELETE CASCADE,
    campaign_id   text   NOT NULL,
    adset_id      text   NOT NULL,
    ad_id         text   NOT NULL,
    day           date   NOT NULL,
    currency      text   NOT NULL,
    time_zone     text   NOT NULL,
    spend_minor   bigint NOT NULL,
    impressions   bigint NOT NULL,
    reach         bigint NOT NULL,
    clicks        bigint NOT NULL,
    conversions   bigint NOT NULL,
    revenue_minor bigint NOT NULL,
    synced_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (build_id, ad_id, day)
);
SELECT enable_tenant_table('ad_insights');
