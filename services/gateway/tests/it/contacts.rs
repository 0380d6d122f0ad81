//! The contact book through the gateway: a lead captured on a published page becomes a contact;
//! contacts are created, searched, changed, merged, given consent and erased; bad input and other
//! workspaces' ids are refused with localized errors and change nothing.

use serde_json::{Value, json};

use crate::auth::{Stack, email, stack_messaging};
use crate::support::client;

async fn call(
    s: &Stack,
    method: reqwest::Method,
    path: &str,
    token: &str,
    body: Option<Value>,
    lang: &str,
) -> (u16, Value) {
    let mut r =
        client().request(method, format!("{}{path}", s.base)).bearer_auth(token).header("accept-language", lang);
    if let Some(b) = body {
        r = r.json(&b);
    }
    let resp = r.send().await.unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (status, if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(Value::String(text)) })
}

async fn signed_in(s: &Stack, tag: &str) -> String {
    s.sign_up(&email(tag)).await["access_token"].as_str().unwrap().to_owned()
}

/// A new user whose language setting is `locale` (it decides the language of their errors).
async fn signed_in_as(s: &Stack, tag: &str, locale: &str) -> String {
    let body = json!({"email": email(tag), "password": crate::auth::PASSWORD, "name": "Ana Silva", "locale": locale});
    let (status, signed) = s.post("/v1/auth/signup", None, body).await;
    assert_eq!(status, 201, "{signed}");
    signed["access_token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_lead_on_a_published_page_becomes_a_contact_with_a_lead_activity() {
    use reqwest::Method as M;
    let s = stack_messaging().await;
    let token = signed_in(&s, "book").await;
    let (status, page) =
        call(&s, M::POST, "/v1/pages", &token, Some(json!({"language": "pt", "product": "Tênis Trilha"})), "en").await;
    assert_eq!(status, 201, "{page}");
    let id = page["id"].as_str().unwrap();
    let (status, _) =
        call(&s, M::POST, &format!("/v1/pages/{id}/publish"), &token, Some(json!({"slug": "tenis-trilha"})), "en")
            .await;
    assert_eq!(status, 200);
    let resp = client()
        .post(format!("{}/p/tenis-trilha/leads", s.base))
        .json(&json!({"name": "Ana Silva", "email": "Ana.Silva@Example.com", "consent": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);

    let mut found = Value::Null;
    for _ in 0..200 {
        let (status, list) = call(&s, M::GET, "/v1/contacts?q=ana.silva", &token, None, "en").await;
        assert_eq!(status, 200, "{list}");
        if let Some(c) = list["items"].as_array().and_then(|a| a.first()) {
            found = c.clone();
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(found["email"], "ana.silva@example.com", "the lead never arrived");
    assert_eq!((found["name"].as_str(), found["stage"].as_str()), (Some("Ana Silva"), Some("lead")));
    assert_eq!(found["source"], "page:tenis-trilha");
    let statuses: Vec<&str> =
        found["consents"].as_array().unwrap().iter().map(|c| c["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, vec!["granted"], "the form's consent covers the channel given: email");
    let leads: i64 = sqlx::query_scalar("SELECT count(*) FROM messaging.activities WHERE kind = 'lead'")
        .fetch_one(&s.db.admin_pool().await)
        .await
        .unwrap();
    assert_eq!(leads, 1);
}

#[tokio::test]
async fn contacts_are_managed_and_bad_input_changes_nothing() {
    use reqwest::Method as M;
    let s = stack_messaging().await;
    let token = signed_in_as(&s, "crm", "es").await;
    let other = signed_in_as(&s, "other", "ar").await;

    let (status, _) =
        call(&s, M::PUT, "/v1/contacts/settings", &token, Some(json!({"default_region": "BR"})), "en").await;
    assert_eq!(status, 200);
    let (status, ana) = call(
        &s,
        M::POST,
        "/v1/contacts",
        &token,
        Some(json!({"name": "Ana", "phone": "(11) 98765-4321", "tags": ["VIP"], "language": "pt"})),
        "en",
    )
    .await;
    assert_eq!(status, 201, "{ana}");
    assert_eq!((ana["phone"].as_str(), ana["tags"][0].as_str()), (Some("+5511987654321"), Some("vip")));
    let ana_id = ana["id"].as_str().unwrap().to_owned();

    // The same phone in another format is the same person.
    let (status, dup) =
        call(&s, M::POST, "/v1/contacts", &token, Some(json!({"phone": "+55 11 98765 4321"})), "es").await;
    assert_eq!((status, dup["error"]["code"].as_str()), (409, Some("messaging.duplicate_contact")));
    assert!(dup["error"]["message"].as_str().unwrap().contains("Otro contacto"), "{dup}");

    // Every bad field is named, in the caller's language; nothing is written.
    let (status, bad) = call(
        &s,
        M::POST,
        "/v1/contacts",
        &other,
        Some(json!({"name": "X", "phone": "12", "email": "nope", "stage": "king"})),
        "ar",
    )
    .await;
    assert_eq!((status, bad["error"]["code"].as_str()), (400, Some("messaging.invalid_contact")), "{bad}");
    let fields: Vec<&str> =
        bad["error"]["fields"].as_array().unwrap().iter().map(|f| f["field"].as_str().unwrap()).collect();
    assert_eq!(fields, vec!["phone", "email", "stage"]);
    assert!(bad["error"]["message"].as_str().unwrap().contains("جهة الاتصال"), "{bad}");
    for (body, want) in
        [(json!({"name": 5}), 422), (json!({"name": "A", "unknown": 1}), 422), (json!("just a string"), 422)]
    {
        let (status, e) = call(&s, M::POST, "/v1/contacts", &token, Some(body), "en").await;
        assert_eq!(status, want, "{e}");
    }
    let (status, _) = call(&s, M::GET, "/v1/contacts?q=ab", &token, None, "en").await;
    assert_eq!(status, 400, "search text below three characters");
    let (status, list) = call(&s, M::GET, "/v1/contacts", &token, None, "en").await;
    assert_eq!((status, list["items"].as_array().unwrap().len()), (200, 1));

    // Changes: stage and a custom field; the stage change lands on the timeline.
    let (status, _) = call(
        &s,
        M::PUT,
        "/v1/contact-fields/tier",
        &token,
        Some(json!({"label": "Tier", "kind": "choice", "options": ["Silver", "Gold"]})),
        "en",
    )
    .await;
    assert_eq!(status, 200);
    let (status, changed) = call(
        &s,
        M::PATCH,
        &format!("/v1/contacts/{ana_id}"),
        &token,
        Some(json!({"stage": "customer", "fields": {"tier": "Gold"}})),
        "en",
    )
    .await;
    assert_eq!(status, 200, "{changed}");
    assert_eq!((changed["stage"].as_str(), changed["fields"]["tier"].as_str()), (Some("customer"), Some("Gold")));
    let (status, e) = call(
        &s,
        M::PATCH,
        &format!("/v1/contacts/{ana_id}"),
        &token,
        Some(json!({"fields": {"tier": "Platinum"}})),
        "en",
    )
    .await;
    assert_eq!((status, e["error"]["code"].as_str()), (400, Some("messaging.invalid_field_value")), "{e}");
    let (status, e) = call(&s, M::PATCH, &format!("/v1/contacts/{ana_id}"), &token, Some(json!({})), "en").await;
    assert_eq!((status, e["error"]["code"].as_str()), (400, Some("messaging.update_mask_required")));
    let (status, list) =
        call(&s, M::GET, "/v1/contacts?fields=tier:Gold&tags=vip&stage=customer", &token, None, "en").await;
    assert_eq!((status, list["items"].as_array().unwrap().len()), (200, 1), "{list}");

    // Another workspace: not found, and its search is empty.
    let (status, _) = call(&s, M::GET, &format!("/v1/contacts/{ana_id}"), &other, None, "en").await;
    assert_eq!(status, 404);
    let (status, _) =
        call(&s, M::PATCH, &format!("/v1/contacts/{ana_id}"), &other, Some(json!({"name": "Hacked"})), "en").await;
    assert_eq!(status, 404);
    let (_, list) = call(&s, M::GET, "/v1/contacts", &other, None, "en").await;
    assert!(list["items"].as_array().unwrap().is_empty());
    let (status, _) = call(&s, M::GET, "/v1/contacts/not-an-id", &token, None, "en").await;
    assert_eq!(status, 404);

    // Merge a second record of Ana into the first; consent; then erase her.
    let (_, twin) = call(
        &s,
        M::POST,
        "/v1/contacts",
        &token,
        Some(json!({"email": "ana@example.com", "tags": ["newsletter"]})),
        "en",
    )
    .await;
    let twin_id = twin["id"].as_str().unwrap();
    let (status, merged) =
        call(&s, M::POST, &format!("/v1/contacts/{ana_id}/merge"), &token, Some(json!({"merged_id": twin_id})), "en")
            .await;
    assert_eq!(status, 200, "{merged}");
    assert_eq!(merged["email"], "ana@example.com");
    assert_eq!(merged["tags"], json!(["vip", "newsletter"]));
    let (status, _) = call(&s, M::GET, &format!("/v1/contacts/{twin_id}"), &token, None, "en").await;
    assert_eq!(status, 200, "the merged record stays readable");
    let (status, e) =
        call(&s, M::POST, &format!("/v1/contacts/{ana_id}/merge"), &token, Some(json!({"merged_id": ana_id})), "en")
            .await;
    assert_eq!((status, e["error"]["code"].as_str()), (400, Some("messaging.merge_same_contact")));
    let (status, c) = call(
        &s,
        M::PUT,
        &format!("/v1/contacts/{ana_id}/consents"),
        &token,
        Some(json!({"channel": "whatsapp", "purpose": "marketing", "status": "withdrawn", "source": "api", "proof": "STOP"})),
        "en",
    )
    .await;
    assert_eq!((status, c["consents"][0]["status"].as_str()), (200, Some("withdrawn")), "{c}");
    let (status, e) = call(
        &s,
        M::PUT,
        &format!("/v1/contacts/{ana_id}/consents"),
        &token,
        Some(json!({"channel": "pigeon", "purpose": "marketing", "status": "granted", "source": "api"})),
        "en",
    )
    .await;
    assert_eq!((status, e["error"]["code"].as_str()), (400, Some("messaging.invalid_channel")));
    let (status, gone) = call(&s, M::POST, &format!("/v1/contacts/{ana_id}/anonymize"), &token, None, "en").await;
    assert_eq!(status, 200, "{gone}");
    assert_eq!(
        (gone["anonymized"].as_bool(), gone["name"].as_str(), gone["phone"].as_str()),
        (Some(true), Some(""), None)
    );
    assert!(gone["identities"].as_array().unwrap().is_empty() && gone["consents"].as_array().unwrap().is_empty());
    let (status, e) =
        call(&s, M::PATCH, &format!("/v1/contacts/{ana_id}"), &token, Some(json!({"name": "Ana"})), "en").await;
    assert_eq!((status, e["error"]["code"].as_str()), (409, Some("messaging.contact_anonymized")), "{e}");
    // Statistics keep counting: the timeline entries stay, without the person.
    let admin = s.db.admin_pool().await;
    let (n, bodies): (i64, i64) = sqlx::query_as(
        "SELECT count(*), count(*) FILTER (WHERE data ? 'proof' OR body <> '') FROM messaging.activities",
    )
    .fetch_one(&admin)
    .await
    .unwrap();
    assert!(n >= 3 && bodies == 0, "{n} activities, {bodies} with personal details");
}
