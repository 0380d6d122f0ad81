//! Targeting help for building ads: interests searched on the platform an ad account belongs to.

use nexus_kernel::Error;
use nexus_platform::identity::{Action, Principal};
use nexus_providers::marketing::Interest;

use super::ad_platform::ad_account_kind;
use super::platforms::platform_error;
use super::{App, require};

/// The longest search text taken.
const MAX_QUERY_CHARS: usize = 100;

impl App {
    /// Interests whose name matches `query`, as the platform of `connection`'s ad account knows
    /// them (ids to put in a build's `interests`). At most `limit` (1–100, default 25).
    #[tracing::instrument(skip_all)]
    pub async fn search_interests(
        &self,
        p: &Principal,
        connection: &str,
        ad_account: &str,
        query: &str,
        limit: u32,
    ) -> Result<Vec<Interest>, Error> {
        require(p, Action::Read)?;
        let query = query.trim();
        if query.is_empty() || query.chars().count() > MAX_QUERY_CHARS || query.chars().any(char::is_control) {
            return Err(Error::invalid("ads.interest_query_invalid")
                .with_param("max", MAX_QUERY_CHARS.to_string())
                .with_violation("q", "invalid"));
        }
        if limit > 100 {
            return Err(Error::invalid("ads.interest_query_invalid")
                .with_param("max", MAX_QUERY_CHARS.to_string())
                .with_violation("limit", "too_large"));
        }
        let limit = if limit == 0 { 25 } else { limit };
        let stored = self.stored_connection(p, connection).await?;
        let c = &stored.record;
        let platform = self.ad_platform(c.provider)?;
        let kind = ad_account_kind(c.provider);
        if !c.accounts.iter().any(|a| a.kind == kind && a.external_id == ad_account.trim()) {
            return Err(Error::invalid("ads.account_unknown")
                .with_param("account", ad_account.chars().take(60).collect::<String>())
                .with_violation("ad_account", "unknown"));
        }
        let token = self.open_tokens(c.id, &stored.credentials)?.access_token;
        platform
            .search_interests(&token, ad_account.trim(), query, limit)
            .await
            .map_err(|e| platform_error(c.provider, e))
    }
}
