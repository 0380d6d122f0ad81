-- TikTok creators connect through Login Kit (their user token posts organically); their
-- accounts are creators.
ALTER TABLE connections DROP CONSTRAINT connections_provider_check;
ALTER TABLE connections ADD CONSTRAINT connections_provider_check
    CHECK (provider IN ('meta', 'tiktok', 'tiktok_creator', 'google', 'local'));
ALTER TABLE connection_accounts DROP CONSTRAINT connection_accounts_kind_check;
ALTER TABLE connection_accounts ADD CONSTRAINT connection_accounts_kind_check
    CHECK (kind IN ('ad_account', 'page', 'instagram', 'advertiser', 'channel', 'creator'));
