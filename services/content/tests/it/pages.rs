use nexus_kernel::WorkspaceId;
use nexus_proto::nexus::content::v1 as pb;
use nexus_testkit::identity::authed;
use scraper::{Html, Selector};

use crate::support::*;

pub fn brief(language: &str) -> pb::CreatePageRequest {
    pb::CreatePageRequest {
        title: "Trail Runner X".into(),
        language: language.into(),
        product: "Trail Runner X".into(),
        audience: "weekend hikers".into(),
        facts: vec!["breathable mesh upper".into(), "weighs only 220 g".into(), "free returns for 30 days".into()],
        ..Default::default()
    }
}

/// Checks a served page the way a browser and an auditor would: parses with no HTML5 errors,
/// the right language and direction, nothing loaded from another host, every field labelled.
pub fn check_page(html: &str, lang: &str, dir: &str) {
    let doc = Html::parse_document(html);
    assert!(doc.errors.is_empty(), "HTML parse errors: {:?}", doc.errors);
    assert!(html.starts_with("<!DOCTYPE html>"));
    let root = doc.select(&Selector::parse("html").unwrap()).next().unwrap();
    assert_eq!(root.value().attr("lang"), Some(lang));
    assert_eq!(root.value().attr("dir"), Some(dir));
    assert!(doc.select(&Selector::parse("meta[name=viewport]").unwrap()).next().is_some());
    assert_eq!(doc.select(&Selector::parse("h1").unwrap()).count(), 1);
    for landmark in ["header", "main", "footer", "form"] {
        assert!(doc.select(&Selector::parse(landmark).unwrap()).next().is_some(), "{landmark}");
    }
    let lower = html.to_ascii_lowercase();
    assert!(!lower.contains("http://") && !lower.contains("https://"), "absolute URL in page");
    assert!(!lower.contains("url("), "CSS must not load anything");
    assert!(doc.select(&Selector::parse("script, link, iframe, object, embed").unwrap()).next().is_none());
    for el in doc.select(&Selector::parse("[src], [href], [action]").unwrap()) {
        for a in ["src", "href", "action"] {
            if let Some(v) = el.value().attr(a) {
                assert!(v.starts_with('#') || (v.starts_with('/') && !v.starts_with("//")), "{a}={v}");
            }
        }
    }
    let labels: Vec<String> = doc
        .select(&Selector::parse("label[for]").unwrap())
        .map(|l| l.value().attr("for").unwrap().to_owned())
        .collect();
    let mut fields = 0;
    for input in doc.select(&Selector::parse("input, textarea, select").unwrap()) {
        let id = input.value().attr("id").expect("every field has an id");
        assert!(labels.iter().any(|l| l == id), "field {id} has no label");
        fields += 1;
    }
    assert!(fields >= 3);
}

async fn published(s: &Stack, slug: &str, count: bool) -> Result<pb::PublishedPage, tonic::Status> {
    s.client()
        .get_published_page(pb::GetPublishedPageRequest { slug: slug.into(), count_view: count, thanks: false })
        .await
        .map(|r| r.into_inner())
}

#[tokio::test]
async fn a_page_is_generated_versioned_edited_and_regenerated() {
    let s = start().await;
    let ws = WorkspaceId::new();
    let token = s.owner(ws);
    let mut c = s.client();
    let before = s.balance(&token).await.available;
    let page = c.create_page(authed(brief("es"), &token)).await.unwrap().into_inner();
    assert_eq!((page.status.as_str(), page.current_version, page.provider.as_str()), ("draft", 1, "local"));
    assert_eq!(s.settled(&token).await.available, before - 5, "content.page costs 5");
    let sections: serde_json::Value = serde_json::from_str(&page.sections_json).unwrap();
    for k in ["hero", "benefits", "social_proof", "faq", "cta", "lead_form"] {
        assert!(!sections[k].is_null(), "{k}");
    }

    let edit = |section: &str, json: &str, base: u32| pb::UpdateSectionRequest {
        page_id: page.id.clone(),
        section: section.into(),
        content_json: json.into(),
        base_version: base,
    };
    let v2 = c
        .update_section(authed(edit("faq", r#"[{"q":"¿Envío?","a":"Gratis."}]"#, 1), &token))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(v2.current_version, 2);
    let stale = c.update_section(authed(edit("faq", "[]", 1), &token)).await.unwrap_err();
    assert_eq!(code_of(&stale), "content.version_conflict");
    for (section, json, code) in [
        ("hero", r#"{"headline":"x"}"#, "content.invalid_section"),
        ("footer", "{}", "content.unknown_section"),
        ("benefits", "[]", "content.invalid_section"),
        ("hero", "not json", "content.invalid_section"),
        (
            "hero",
            r#"{"headline":"x","subheadline":"y","cta_label":"z","image_id":"img_0192f0c5c2b87c31a1f1e4f2b1a0c9d7"}"#,
            "content.image_not_found",
        ),
    ] {
        let e = c.update_section(authed(edit(section, json, 0), &token)).await.unwrap_err();
        assert_eq!(code_of(&e), code, "{section} {json}");
    }
    let v3 = c
        .regenerate_section(authed(
            pb::RegenerateSectionRequest {
                page_id: page.id.clone(),
                section: "hero".into(),
                idempotency_key: String::new(),
            },
            &token,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(v3.current_version, 3);
    let s3: serde_json::Value = serde_json::from_str(&v3.sections_json).unwrap();
    assert_eq!(s3["faq"][0]["q"], "¿Envío?", "other sections are kept");
    let versions =
        c.list_page_versions(authed(pb::GetByIdRequest { id: page.id.clone() }, &token)).await.unwrap().into_inner();
    let changes: Vec<_> = versions.items.iter().map(|v| (v.version, v.change.as_str())).collect();
    assert_eq!(changes, vec![(3, "regenerate:hero"), (2, "edit:faq"), (1, "created")]);
}

#[tokio::test]
async fn a_published_arabic_page_is_valid_rtl_html_and_unpublished_is_gone() {
    let s = start().await;
    let ws = WorkspaceId::new();
    let token = s.owner(ws);
    let mut c = s.client();
    let page = c.create_page(authed(brief("ar"), &token)).await.unwrap().into_inner();
    // Hostile text in every kind of field is shown as text, never as markup.
    let hero = r#"{"headline":"<script>alert('x')</script> عرض","subheadline":"\"><img src=x onerror=alert(1)>","cta_label":"اطلب الآن"}"#;
    c.update_section(authed(
        pb::UpdateSectionRequest {
            page_id: page.id.clone(),
            section: "hero".into(),
            content_json: hero.into(),
            base_version: 0,
        },
        &token,
    ))
    .await
    .unwrap();
    assert_eq!(code_of(&published(&s, "ar-sale", true).await.unwrap_err()), "content.page_not_found");
    let p = c
        .publish_page(authed(pb::PublishPageRequest { id: page.id.clone(), slug: "AR-Sale".into() }, &token))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((p.status.as_str(), p.slug.as_str(), p.published_version), ("published", "ar-sale", 2));

    let served = published(&s, "ar-sale", true).await.unwrap();
    assert_eq!(served.language, "ar");
    check_page(&served.html, "ar", "rtl");
    assert!(!served.html.contains("<script>") && !served.html.contains("<img src=x"));
    assert!(served.html.contains("&lt;script&gt;"));
    assert!(served.html.contains("تواصل معنا"), "chrome in Arabic");

    // Later edits do not change what is published until it is published again.
    c.update_section(authed(
        pb::UpdateSectionRequest {
            page_id: page.id.clone(),
            section: "cta".into(),
            content_json: r#"{"headline":"جديد","button":"انضم"}"#.into(),
            base_version: 0,
        },
        &token,
    ))
    .await
    .unwrap();
    assert_eq!(published(&s, "ar-sale", true).await.unwrap().html, served.html);

    let other = s.owner(WorkspaceId::new());
    let id = pb::GetByIdRequest { id: page.id.clone() };
    assert_eq!(code_of(&c.get_page(authed(id.clone(), &other)).await.unwrap_err()), "content.page_not_found");
    assert_eq!(code_of(&c.unpublish_page(authed(id.clone(), &other)).await.unwrap_err()), "content.page_not_found");
    let e = c
        .update_section(authed(
            pb::UpdateSectionRequest {
                page_id: page.id.clone(),
                section: "faq".into(),
                content_json: "[]".into(),
                base_version: 0,
            },
            &other,
        ))
        .await
        .unwrap_err();
    assert_eq!(code_of(&e), "content.page_not_found");

    let after = c.get_page(authed(id.clone(), &token)).await.unwrap().into_inner();
    assert_eq!(after.views, 2, "each GET counted");
    published(&s, "ar-sale", false).await.unwrap();
    assert_eq!(c.get_page(authed(id.clone(), &token)).await.unwrap().into_inner().views, 2, "HEAD is not counted");

    c.unpublish_page(authed(id.clone(), &token)).await.unwrap();
    assert_eq!(code_of(&published(&s, "ar-sale", true).await.unwrap_err()), "content.page_not_found");
    let events = "SELECT count(*) FROM content.outbox WHERE tenant_id = $1 AND subject IN ('nexus.content.page.published', 'nexus.content.page.unpublished')";
    assert_eq!(s.count(events, ws).await, 2);
    // Re-publishing keeps the slug.
    let again = c
        .publish_page(authed(pb::PublishPageRequest { id: page.id.clone(), slug: String::new() }, &token))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((again.slug.as_str(), again.published_version), ("ar-sale", 3));
}

#[tokio::test]
async fn every_language_renders_valid_html_with_its_direction() {
    let s = start().await;
    let ws = WorkspaceId::new();
    let token = s.owner(ws);
    let mut c = s.client();
    for (lang, dir) in [("en", "ltr"), ("he", "rtl")] {
        let page = c.create_page(authed(brief(lang), &token)).await.unwrap().into_inner();
        let slug = format!("trail-{lang}");
        c.publish_page(authed(pb::PublishPageRequest { id: page.id, slug: slug.clone() }, &token)).await.unwrap();
        let html = s
            .client()
            .get_published_page(pb::GetPublishedPageRequest { slug, count_view: false, thanks: true })
            .await
            .unwrap()
            .into_inner()
            .html;
        check_page(&html, lang, dir);
        assert!(html.contains("role=\"status\""), "thank-you notice");
    }
}

#[tokio::test]
async fn slugs_are_unique_and_checked_and_plan_limits_apply() {
    let s = start().await;
    let (a, b) = (WorkspaceId::new(), WorkspaceId::new());
    let (ta, tb) = (s.owner(a), s.owner(b));
    let mut c = s.client();
    let pa = c.create_page(authed(brief("en"), &ta)).await.unwrap().into_inner();
    let pb_ = c.create_page(authed(brief("pt"), &tb)).await.unwrap().into_inner();
    c.publish_page(authed(pb::PublishPageRequest { id: pa.id.clone(), slug: "spring-sale".into() }, &ta))
        .await
        .unwrap();
    let e = c
        .publish_page(authed(pb::PublishPageRequest { id: pb_.id.clone(), slug: "spring-sale".into() }, &tb))
        .await
        .unwrap_err();
    assert_eq!((e.code(), code_of(&e).as_str()), (tonic::Code::AlreadyExists, "content.slug_taken"));
    for (slug, code) in [
        ("admin", "content.slug_reserved"),
        ("a", "content.invalid_slug"),
        ("bad slug", "content.invalid_slug"),
        ("", "content.slug_required"),
    ] {
        let e = c
            .publish_page(authed(pb::PublishPageRequest { id: pb_.id.clone(), slug: slug.into() }, &tb))
            .await
            .unwrap_err();
        assert_eq!(code_of(&e), code, "{slug}");
    }
    // FREE keeps three pages; the fourth is refused and charged nothing.
    c.create_page(authed(brief("en"), &ta)).await.unwrap();
    c.create_page(authed(brief("en"), &ta)).await.unwrap();
    let before = s.balance(&ta).await.available;
    let e = c.create_page(authed(brief("en"), &ta)).await.unwrap_err();
    assert_eq!(code_of(&e), "subscriptions.limit_reached");
    assert_eq!(s.settled(&ta).await.available, before);
    // Deleting one makes room again.
    c.delete_page(authed(pb::GetByIdRequest { id: pa.id.clone() }, &ta)).await.unwrap();
    c.create_page(authed(brief("en"), &ta)).await.unwrap();
}

fn lead(slug: &str, email: &str) -> pb::CaptureLeadRequest {
    pb::CaptureLeadRequest {
        slug: slug.into(),
        name: "Ana <b>".into(),
        email: email.into(),
        message: "Quiero saber más".into(),
        consent: true,
        client_ip: "203.0.113.7".into(),
        ..Default::default()
    }
}

#[tokio::test]
async fn leads_are_validated_rate_limited_and_the_honeypot_stores_nothing() {
    let s = start_with(&[("NEXUS_PAGES__LEAD_RATE_LIMIT", "3".into())]).await;
    let ws = WorkspaceId::new();
    let token = s.owner(ws);
    let mut c = s.client();
    let page = c.create_page(authed(brief("es"), &token)).await.unwrap().into_inner();
    assert_eq!(
        code_of(&c.capture_lead(lead("promo-es", "ana@example.com")).await.unwrap_err()),
        "content.page_not_found"
    );
    c.publish_page(authed(pb::PublishPageRequest { id: page.id.clone(), slug: "promo-es".into() }, &token))
        .await
        .unwrap();

    let ok = c.capture_lead(lead("promo-es", "Ana@Example.com")).await.unwrap().into_inner();
    assert!(ok.accepted);
    let stored: (String, String) = sqlx::query_as("SELECT email, name FROM content.page_leads WHERE tenant_id = $1")
        .bind(ws.as_uuid())
        .fetch_one(&s.admin().await)
        .await
        .unwrap();
    assert_eq!(stored, ("ana@example.com".to_owned(), "Ana <b>".to_owned()));
    let audit: String = sqlx::query_scalar(
        "SELECT audit::text FROM content.outbox WHERE tenant_id = $1 AND audit->>'table' = 'page_leads'",
    )
    .bind(ws.as_uuid())
    .fetch_one(&s.admin().await)
    .await
    .unwrap();
    assert!(
        !audit.contains("ana@example.com") && !audit.contains("Ana <b>"),
        "PII stays out of the audit trail: {audit}"
    );
    let events =
        "SELECT count(*) FROM content.outbox WHERE tenant_id = $1 AND subject = 'nexus.content.page.lead_captured'";
    assert_eq!(s.count(events, ws).await, 1);

    let bot = pb::CaptureLeadRequest { website: "http://spam.example".into(), ..lead("promo-es", "bot@example.com") };
    assert!(c.capture_lead(bot).await.unwrap().into_inner().accepted, "bots see success");
    for (req, code) in [
        (lead("promo-es", "not-an-email"), "content.invalid_email"),
        (lead("promo-es", ""), "content.lead_contact_required"),
        (pb::CaptureLeadRequest { message: "x".repeat(3000), ..lead("promo-es", "a@b.co") }, "content.field_too_long"),
    ] {
        assert_eq!(code_of(&c.capture_lead(req).await.unwrap_err()), code);
    }
    assert_eq!(s.count("SELECT count(*) FROM content.page_leads WHERE tenant_id = $1", ws).await, 1);

    c.capture_lead(lead("promo-es", "b@example.com")).await.unwrap();
    c.capture_lead(lead("promo-es", "c@example.com")).await.unwrap();
    let limited = c.capture_lead(lead("promo-es", "d@example.com")).await.unwrap_err();
    let e = nexus_kernel::Error::from_status(&limited);
    assert_eq!((e.code(), e.kind()), ("request.rate_limited", nexus_kernel::ErrorKind::RateLimited));
    assert!(e.param("retry_after").is_some_and(|s| s.parse::<u64>().unwrap() > 0));
    // Another address is not limited.
    c.capture_lead(pb::CaptureLeadRequest { client_ip: "198.51.100.1".into(), ..lead("promo-es", "e@example.com") })
        .await
        .unwrap();
    let p = c.get_page(authed(pb::GetByIdRequest { id: page.id }, &token)).await.unwrap().into_inner();
    assert_eq!(p.leads, 4);
}

#[test]
fn the_html_checker_catches_broken_markup() {
    let broken = Html::parse_document("<!DOCTYPE html><html lang=\"en\"><body><p>a</div><b><i>x</b></i></body></html>");
    assert!(!broken.errors.is_empty());
    let result = std::panic::catch_unwind(|| {
        check_page(
            "<!DOCTYPE html><html lang=\"en\" dir=\"ltr\"><head><title>x</title></head><body><img src=\"https://cdn.example/x.png\" alt=\"\"></body></html>",
            "en",
            "ltr",
        )
    });
    assert!(result.is_err(), "an external image is refused");
}
