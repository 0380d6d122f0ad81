//! Products localized by the content service into the store's languages: stored per language and
//! returned with the product; only the five product locales; another workspace's product is not
//! found.

use nexus_platform::identity::Role;
use nexus_proto::nexus::commerce::v1 as pb;

use crate::support::{Caller, Service, code, start_with_content};

fn localize(id: &str, languages: &[&str]) -> pb::LocalizeProductRequest {
    pb::LocalizeProductRequest {
        product_id: id.into(),
        languages: languages.iter().map(|l| (*l).to_owned()).collect(),
        source_language: String::new(),
    }
}

/// A local store selling in `languages`, and a product imported from the local supplier.
async fn imported(s: &Service, admin: &Caller, languages: &[&str]) -> pb::Product {
    let store = pb::ConnectRequest {
        provider: "local".into(),
        role: "store".into(),
        languages: languages.iter().map(|l| (*l).to_owned()).collect(),
        ..Default::default()
    };
    s.connect(admin, store).await;
    import_local(s, admin).await
}

/// A product imported from a new local supplier connection.
async fn import_local(s: &Service, admin: &Caller) -> pb::Product {
    let supplier = s.connect_local(admin, "supplier").await;
    s.client()
        .await
        .import_product(admin.req(pb::ImportProductRequest {
            connection_id: supplier.id,
            supplier_product_id: "LOC0001".into(),
            currency: "USD".into(),
        }))
        .await
        .unwrap()
        .into_inner()
}

#[tokio::test]
async fn an_imported_product_is_localized_into_the_stores_languages() {
    let (s, _content) = start_with_content().await;
    let admin = s.admin();
    let product = imported(&s, &admin, &["es", "ar"]).await;
    assert!(product.translations.is_empty());
    let mut c = s.client().await;
    let localized = c.localize_product(admin.req(localize(&product.id, &[]))).await.unwrap().into_inner();
    let got: Vec<(&str, &str, &str)> =
        localized.translations.iter().map(|t| (t.language.as_str(), t.title.as_str(), t.provider.as_str())).collect();
    let (es, ar) = (format!("[es] {}", product.title), format!("[ar] {}", product.title));
    // No model behind the content service here: labelled copies, said to be local.
    assert_eq!(got, vec![("ar", ar.as_str(), "local"), ("es", es.as_str(), "local")]);
    assert!(localized.translations.iter().all(|t| t.model == "local-untranslated-v1"));
    let description =
        if product.description.is_empty() { String::new() } else { format!("[es] {}", product.description) };
    assert_eq!(localized.translations[1].description, description);
    // Stored: read back alone and in the list.
    let read = c.get_product(admin.req(pb::GetByIdRequest { id: product.id.clone() })).await.unwrap().into_inner();
    assert_eq!(read.translations, localized.translations);
    let listed = c.list_products(admin.req(pb::ListRequest::default())).await.unwrap().into_inner();
    assert_eq!(listed.products[0].translations.len(), 2);
    // Asked again for one language: that one replaced, the other kept.
    let again = c.localize_product(admin.req(localize(&product.id, &["es"]))).await.unwrap().into_inner();
    assert_eq!(again.translations.len(), 2);
    assert_eq!(s.scalar("SELECT count(*) FROM commerce.product_translations").await, 2);

    // Only the five product locales, each once, and not the source language alone.
    for (languages, source) in
        [(vec!["fr"], ""), (vec!["es", "es"], ""), (vec!["es-ES"], ""), (vec!["en"], ""), (vec!["es"], "xx")]
    {
        let mut r = localize(&product.id, &languages);
        r.source_language = source.into();
        let e = c.localize_product(admin.req(r)).await.unwrap_err();
        assert_eq!((e.code(), code(&e).as_str()), (tonic::Code::InvalidArgument, "commerce.language_invalid"));
    }
    // Another workspace's product, or none: not found, nothing stored.
    let other = s.admin();
    let e = c.localize_product(other.req(localize(&product.id, &["es"]))).await.unwrap_err();
    assert_eq!((e.code(), code(&e).as_str()), (tonic::Code::NotFound, "commerce.product_not_found"));
    let e = c.localize_product(admin.req(localize("prod_nope", &["es"]))).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::NotFound);
    let viewer = s.as_role(&admin, Role::Viewer);
    let e = c.localize_product(viewer.req(localize(&product.id, &["es"]))).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::PermissionDenied);
    assert_eq!(s.scalar("SELECT count(*) FROM commerce.product_translations").await, 2);
}

#[tokio::test]
async fn store_languages_are_checked_and_localizing_needs_some() {
    let s = Service::start().await;
    let admin = s.admin();
    let bad = pb::ConnectRequest {
        provider: "local".into(),
        role: "store".into(),
        languages: vec!["fr".into()],
        ..Default::default()
    };
    let e = s.client().await.create_connection(admin.req(bad)).await.unwrap_err();
    assert_eq!((e.code(), code(&e).as_str()), (tonic::Code::InvalidArgument, "commerce.language_invalid"));
    // A store with no languages and none asked for: nothing to localize into.
    let product = imported(&s, &admin, &[]).await;
    let e = s.client().await.localize_product(admin.req(localize(&product.id, &[]))).await.unwrap_err();
    assert_eq!(code(&e), "commerce.language_invalid");
    // The content service is not running here: unavailable, nothing stored.
    let e = s.client().await.localize_product(admin.req(localize(&product.id, &["es"]))).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::Unavailable);
    assert_eq!(s.scalar("SELECT count(*) FROM commerce.product_translations").await, 0);
}

/// A Shopify product's translations reach the store: registered for the shop's enabled locales
/// of each language (`pt` → `pt-BR`), against the digests of the texts pushed, again with each
/// push; a language the shop has not enabled (he) is left out without failing the push.
#[tokio::test]
async fn translations_of_a_published_product_are_registered_at_the_shop() {
    let (s, _content) = start_with_content().await;
    let admin = s.admin();
    let mut c = s.client().await;
    let store = s
        .connect(
            &admin,
            pb::ConnectRequest {
                provider: "shopify".into(),
                shop_domain: nexus_testkit::shopify::TEST_SHOP.into(),
                access_token: nexus_testkit::shopify::TEST_ACCESS_TOKEN.into(),
                languages: vec!["es".into(), "pt".into(), "he".into()],
                ..Default::default()
            },
        )
        .await;
    let product = import_local(&s, &admin).await;
    // Published before it is localized: nothing to translate yet, nothing registered.
    c.publish_product(
        admin.req(pb::PublishProductRequest { product_id: product.id.clone(), store_connection_id: store.id.clone() }),
    )
    .await
    .unwrap();
    assert!(s.shopify.translations().is_empty());
    assert!(!s.shopify.log().iter().any(|(op, _)| op == "translatableResource"));

    // Localizing a product already in the store sends its translations at once.
    let localized = c.localize_product(admin.req(localize(&product.id, &[]))).await.unwrap().into_inner();
    assert_eq!(localized.translations.len(), 3);
    let shop_product = s.shopify.products()[0].id.clone();
    let mut got: Vec<(String, String, String)> =
        s.shopify.translations().into_iter().map(|t| (t.locale, t.key, t.value)).collect();
    got.sort();
    let mut want = vec![
        ("es".to_owned(), "title".to_owned(), format!("[es] {}", product.title)),
        ("pt-BR".to_owned(), "title".to_owned(), format!("[pt] {}", product.title)),
    ];
    if !product.description.is_empty() {
        want.push(("es".into(), "body_html".into(), format!("[es] {}", product.description)));
        want.push(("pt-BR".into(), "body_html".into(), format!("[pt] {}", product.description)));
    }
    want.sort();
    assert_eq!(got, want);
    assert!(s.shopify.translations().iter().all(|t| t.product_id == shop_product));
    assert_eq!(s.shopify.products()[0].sets, 2, "the product was pushed again with its translations");

    // Publishing again registers the same translations again: nothing more at the shop.
    c.publish_product(
        admin.req(pb::PublishProductRequest { product_id: product.id.clone(), store_connection_id: store.id.clone() }),
    )
    .await
    .unwrap();
    assert_eq!(s.shopify.translations().len(), want.len());
    let registered =
        s.shopify.log().iter().filter(|(op, status)| op == "translationsRegister" && *status == 200).count();
    assert_eq!(registered, 2);

    // A shop that has enabled none of the languages: the push still succeeds, nothing is sent.
    s.shopify.set_locales(&[("en", true, true)]);
    c.publish_product(
        admin.req(pb::PublishProductRequest { product_id: product.id.clone(), store_connection_id: store.id.clone() }),
    )
    .await
    .unwrap();
    let registered = s.shopify.log().iter().filter(|(op, _)| op == "translationsRegister").count();
    assert_eq!(registered, 2);
}
