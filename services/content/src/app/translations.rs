//! Translating store texts: a credit hold priced as a generation (`content.generation`, flat for
//! the local provider, by tokens for a model), the translation, then the hold settled with what
//! was used (a settlement of its own: a translation is answered, not stored), or given back when
//! the provider failed.

use nexus_kernel::Error;
use nexus_platform::db;
use nexus_platform::identity::{Action, Principal};
use uuid::Uuid;

use super::generator::Metering;
use super::{App, Outcome, joined, settle_in, spawn_in_context};
use crate::domain::generation::{Usage, credits_for_tokens, estimate_tokens};
use crate::domain::translation::{Translated, TranslationInput};

/// A translation as answered.
#[derive(Debug, Clone)]
pub struct TranslationOut {
    pub provider: &'static str,
    pub model: String,
    pub translations: Vec<Translated>,
    pub usage: Usage,
    pub credits: i64,
}

impl App {
    #[tracing::instrument(skip_all, fields(targets = input.targets.len()))]
    pub async fn translate(
        self: &std::sync::Arc<Self>,
        p: &Principal,
        input: TranslationInput,
    ) -> Result<TranslationOut, Error> {
        p.require(Action::Write)?;
        let tenant = p.workspace_id;
        let job = format!("content.translation:{}", Uuid::now_v7());
        let ttl = self.cfg.generation.reservation_ttl;
        let hold = match self.text.metering() {
            Metering::Flat => self.credits.reserve("content.generation", 1, 0, &job, ttl).await?,
            Metering::Tokens => {
                let prompt = estimate_tokens(&serde_json::to_string(&input.texts).unwrap_or_default()) + 300;
                let output = input.output_tokens(self.cfg.generation.default_max_tokens);
                let estimate = credits_for_tokens(prompt + i64::from(output), self.cfg.generation.min_credits);
                self.credits.reserve("content.generation", 0, estimate, &job, ttl).await?
            }
        };
        super::fresh(&hold)?;
        let app = self.clone();
        // On its own task: a caller that hangs up does not leave the hold dangling.
        joined(
            spawn_in_context(async move {
                let (translations, usage, model) = match app.text.translate(&input).await {
                    Ok(done) => done,
                    Err(e) => {
                        app.give_back(tenant, &hold, &job).await;
                        return Err(e);
                    }
                };
                let credits = match app.text.metering() {
                    Metering::Flat => hold.amount,
                    Metering::Tokens => {
                        credits_for_tokens(usage.total_tokens, app.cfg.generation.min_credits).min(hold.amount)
                    }
                };
                let settled = async {
                    let mut tx = db::tenant(&app.pool, tenant).await?;
                    settle_in(&mut tx, tenant, &hold, &job, Outcome::Charge(credits)).await?;
                    db::commit(tx).await
                }
                .await;
                if let Err(e) = settled {
                    app.give_back(tenant, &hold, &job).await;
                    return Err(e);
                }
                metrics::counter!("nexus_content_translations_total", "provider" => app.text.provider()).increment(1);
                Ok(TranslationOut { provider: app.text.provider(), model, translations, usage, credits })
            })
            .await,
        )
    }
}
