//! Localizing products: the title and description translated by the content service into the
//! store's languages (its `Translate` call, made with the caller's token so the workspace's
//! credits pay for it), stored per language with the product and returned with it. A product
//! already in a store is pushed again at once, and every push registers its translations with
//! Shopify (`translationsRegister`) for the languages the shop has enabled.

use chrono::Utc;
use nexus_kernel::{Error, ErrorKind, Locale};
use nexus_platform::db;
use nexus_platform::grpc::upstream_error;
use nexus_platform::identity::{Action, Principal};
use nexus_proto::nexus::content::v1 as cpb;
use nexus_proto::nexus::content::v1::content_client::ContentClient;

use super::{App, require};
use crate::domain::ProductId;
use crate::domain::catalogue::{Product, ProductText, languages};
use crate::repo;

impl App {
    pub async fn localize_product(
        &self,
        p: &Principal,
        raw_id: &str,
        requested: &[String],
        source: &str,
    ) -> Result<Product, Error> {
        require(p, Action::Write)?;
        let bad_language = |field: &str| {
            Error::invalid("commerce.language_invalid")
                .with_param("languages", "en, es, pt, he, ar")
                .with_violation(field, "invalid")
        };
        let source: Locale = if source.trim().is_empty() {
            Locale::En
        } else {
            source.trim().parse().map_err(|_| bad_language("source_language"))?
        };
        let mut targets = languages(requested)?;
        let id = super::id_of::<ProductId>(raw_id, "commerce.product_not_found", ProductId::as_uuid)?;
        let mut tx = db::tenant(&self.pool, p.workspace_id).await?;
        let product =
            repo::products::get(&mut tx, id).await?.ok_or_else(|| Error::not_found("commerce.product_not_found"))?;
        if targets.is_empty() {
            targets = languages(&repo::connections::store_languages(&mut tx).await?)?;
        }
        db::commit(tx).await?;
        // The source language is the product's own text: nothing to translate into it.
        targets.retain(|l| *l != source);
        if targets.is_empty() {
            return Err(bad_language("languages"));
        }
        let channel = self
            .content
            .clone()
            .ok_or_else(|| Error::new(ErrorKind::Unavailable, "commerce.localization_unavailable"))?;
        let req = cpb::TranslateRequest {
            texts: vec![product.title.clone(), product.description.clone()],
            source_language: source.code().to_owned(),
            target_languages: targets.iter().map(|l| l.code().to_owned()).collect(),
        };
        let answer = nexus_platform::sized!(ContentClient::new(channel))
            .translate(req)
            .await
            .map_err(|s| upstream_error(&s))?
            .into_inner();
        let now = Utc::now();
        let mut texts = Vec::with_capacity(targets.len());
        for t in answer.translations {
            let language: Locale =
                t.language.parse().map_err(|_| Error::internal(format!("content answered language {}", t.language)))?;
            let [title, description]: [String; 2] = t
                .texts
                .try_into()
                .map_err(|_| Error::internal("content answered another number of texts than asked"))?;
            texts.push(ProductText {
                language,
                title: title.chars().take(500).collect(),
                description: description.chars().take(20_000).collect(),
                provider: answer.provider.clone(),
                model: answer.model.clone(),
                updated_at: now,
            });
        }
        if texts.iter().map(|t| t.language).collect::<Vec<_>>() != targets {
            return Err(Error::internal("content answered other languages than asked"));
        }
        let mut tx = db::tenant(&self.pool, p.workspace_id).await?;
        // Deleted while content translated: nothing to store.
        if repo::products::get(&mut tx, id).await?.is_none() {
            return Err(Error::not_found("commerce.product_not_found"));
        }
        repo::products::put_translations(&mut tx, p.workspace_id, id, &texts).await?;
        let product =
            repo::products::get(&mut tx, id).await?.ok_or_else(|| Error::not_found("commerce.product_not_found"))?;
        let stores = repo::products::stores_of(&mut tx, &[id]).await?;
        db::commit(tx).await?;
        // In a store already: its translations go there now (a failed push is logged, and made
        // again with the next change).
        self.push_changed(p.workspace_id, &stores).await;
        Ok(product)
    }
}
