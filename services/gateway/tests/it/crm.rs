//! The CRM through the gateway: timelines and tasks, the pipeline and deals with exact decimal
//! amounts, saved segments with their filter as a JSON object. Bad input is refused with the
//! error code and writes nothing; another workspace's ids are 404; read-only keys cannot write.

use reqwest::Method as M;
use serde_json::{Value, json};

use crate::auth::{Stack, email, stack_messaging};
use crate::support::client;

/// A JSON call as `token`: (status, body or null).
pub(crate) async fn call(s: &Stack, method: M, path: &str, token: &str, body: Option<Value>) -> (u16, Value) {
    let mut r = client().request(method, format!("{}{path}", s.base)).bearer_auth(token);
    if let Some(b) = body {
        r = r.json(&b);
    }
    let resp = r.send().await.unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (status, if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(Value::String(text)) })
}

pub(crate) fn code(v: &Value) -> Option<&str> {
    v["error"]["code"].as_str()
}

fn ids(list: &Value) -> Vec<&str> {
    list["items"].as_array().unwrap().iter().map(|i| i["id"].as_str().unwrap()).collect()
}

/// A new workspace's owner: (access token, user id).
async fn owner(s: &Stack, tag: &str) -> (String, String) {
    let signed = s.sign_up(&email(tag)).await;
    (signed["access_token"].as_str().unwrap().to_owned(), signed["user"]["id"].as_str().unwrap().to_owned())
}

async fn contact(s: &Stack, token: &str, body: Value) -> String {
    let (status, c) = call(s, M::POST, "/v1/contacts", token, Some(body)).await;
    assert_eq!(status, 201, "{c}");
    c["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn timelines_tasks_pipeline_and_deals() {
    let s = stack_messaging().await;
    let (token, user_id) = owner(&s, "crm-a").await;
    let (other, _) = owner(&s, "crm-b").await;
    let (status, key) =
        call(&s, M::POST, "/v1/api-keys", &token, Some(json!({"name": "dashboard", "scopes": ["read"]}))).await;
    assert_eq!(status, 201, "{key}");
    let read_only = key["secret"].as_str().unwrap().to_owned();
    let ana = contact(&s, &token, json!({"name": "Ana", "email": "ana@example.com"})).await;
    let timeline = format!("/v1/contacts/{ana}/activities");

    // A note, a task (assigned to the caller by default) and a call from two days ago.
    let (status, note) =
        call(&s, M::POST, &timeline, &token, Some(json!({"kind": "note", "body": "Asked for a quote"}))).await;
    assert_eq!((status, note["kind"].as_str(), note["actor"].as_str()), (201, Some("note"), Some(user_id.as_str())));
    let (status, task) = call(
        &s,
        M::POST,
        &timeline,
        &token,
        Some(json!({"kind": "task", "body": "Send the quote", "due_at": "2030-01-10T15:00:00Z"})),
    )
    .await;
    assert_eq!(status, 201, "{task}");
    assert_eq!((task["assignee_id"].as_str(), task["done_at"].as_str()), (Some(user_id.as_str()), None));
    assert!(task["due_at"].as_str().unwrap().starts_with("2030-01-10T15:00:00"), "{task}");
    let earlier = (chrono::Utc::now() - chrono::Duration::days(2)).to_rfc3339();
    let (status, called) =
        call(&s, M::POST, &timeline, &token, Some(json!({"kind": "call", "occurred_at": earlier}))).await;
    assert_eq!(status, 201, "{called}");

    // Bad input: the service's codes, or 422 for the wrong shape; nothing written.
    for (body, want, want_code) in [
        (json!({"kind": "task", "body": "No date"}), 400, Some("messaging.task_due_required")),
        (json!({"kind": "deal", "body": "Won it"}), 400, Some("messaging.activity_kind_not_writable")),
        (
            json!({"kind": "note", "body": "x", "due_at": "2030-01-01T00:00:00Z"}),
            400,
            Some("messaging.task_fields_on_activity"),
        ),
        (
            json!({"kind": "task", "due_at": "2030-01-01T00:00:00Z", "assignee_id": "bob"}),
            400,
            Some("messaging.invalid_member_id"),
        ),
        (json!({"kind": "note", "body": "x", "colour": "red"}), 422, Some("request.invalid_body")),
        (json!({"kind": "call", "occurred_at": "yesterday"}), 422, Some("request.invalid_body")),
    ] {
        let (status, e) = call(&s, M::POST, &timeline, &token, Some(body.clone())).await;
        assert_eq!((status, code(&e)), (want, want_code), "{body}: {e}");
    }
    let (status, denied) =
        call(&s, M::POST, &timeline, &read_only, Some(json!({"kind": "note", "body": "From a read key"}))).await;
    assert_eq!(status, 403, "{denied}");

    // The timeline, newest first and paged: the call happened two days ago, so it comes last.
    let (status, first) = call(&s, M::GET, &format!("{timeline}?limit=2"), &read_only, None).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(ids(&first), vec![task["id"].as_str().unwrap(), note["id"].as_str().unwrap()]);
    let cursor = first["next_cursor"].as_str().expect("a second page");
    let (_, second) = call(&s, M::GET, &format!("{timeline}?limit=2&cursor={cursor}"), &token, None).await;
    assert_eq!(ids(&second), vec![called["id"].as_str().unwrap()]);
    assert!(second["next_cursor"].is_null(), "{second}");

    // Tasks: the caller's, completed once.
    let (_, tasks) = call(&s, M::GET, "/v1/tasks", &token, None).await;
    assert_eq!(ids(&tasks), vec![task["id"].as_str().unwrap()]);
    let (_, tasks) = call(&s, M::GET, &format!("/v1/tasks?assignee_id={user_id}"), &token, None).await;
    assert_eq!(ids(&tasks).len(), 1);
    let (status, e) = call(&s, M::GET, "/v1/tasks?assignee_id=bob", &token, None).await;
    assert_eq!((status, code(&e)), (400, Some("messaging.invalid_member_id")));
    let task_id = task["id"].as_str().unwrap();
    let (status, _) = call(&s, M::POST, &format!("/v1/tasks/{task_id}/complete"), &other, None).await;
    assert_eq!(status, 404, "another workspace's task");
    let (status, done) = call(&s, M::POST, &format!("/v1/tasks/{task_id}/complete"), &token, None).await;
    assert_eq!(status, 200, "{done}");
    assert!(done["done_at"].is_string(), "{done}");
    let note_id = note["id"].as_str().unwrap();
    let (status, e) = call(&s, M::POST, &format!("/v1/tasks/{note_id}/complete"), &token, None).await;
    assert_eq!((status, code(&e)), (404, Some("messaging.task_not_found")), "a note is not a task");

    // Another workspace sees none of it.
    let (status, _) = call(&s, M::GET, &timeline, &other, None).await;
    assert_eq!(status, 404);
    let (status, _) = call(&s, M::POST, &timeline, &other, Some(json!({"kind": "note", "body": "Hi"}))).await;
    assert_eq!(status, 404);
    let (_, theirs) = call(&s, M::GET, "/v1/tasks", &other, None).await;
    assert!(ids(&theirs).is_empty());

    // The pipeline: the default one, then the workspace's own (keeping "New" by its id).
    let (status, stages) = call(&s, M::GET, "/v1/pipeline/stages", &token, None).await;
    assert_eq!(status, 200, "{stages}");
    let names: Vec<&str> = stages["items"].as_array().unwrap().iter().map(|x| x["name"].as_str().unwrap()).collect();
    assert_eq!(names, vec!["New", "Qualified", "Proposal", "Negotiation", "Won", "Lost"]);
    let new_id = stages["items"][0]["id"].as_str().unwrap().to_owned();
    let pipeline = json!({"items": [{"id": new_id, "name": "New"}, {"name": "Demo  booked"},
        {"name": "Won", "outcome": "won"}, {"name": "Lost", "outcome": "lost"}]});
    let (status, saved) = call(&s, M::PUT, "/v1/pipeline/stages", &token, Some(pipeline)).await;
    assert_eq!(status, 200, "{saved}");
    let outline: Vec<(&str, &str)> = saved["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| (x["name"].as_str().unwrap(), x["outcome"].as_str().unwrap()))
        .collect();
    assert_eq!(outline, vec![("New", "open"), ("Demo booked", "open"), ("Won", "won"), ("Lost", "lost")]);
    assert_eq!(saved["items"][0]["id"], new_id.as_str());
    for (body, want_code) in [
        (json!({"items": [{"name": "Won", "outcome": "won"}]}), "messaging.pipeline_needs_open_stage"),
        (json!({"items": [{"name": "New"}, {"name": "new"}]}), "messaging.duplicate_stage_name"),
        (json!({"items": [{"name": "New", "outcome": "maybe"}]}), "messaging.invalid_outcome"),
    ] {
        let (status, e) = call(&s, M::PUT, "/v1/pipeline/stages", &token, Some(body.clone())).await;
        assert_eq!((status, code(&e)), (400, Some(want_code)), "{body}: {e}");
    }
    let (_, unchanged) = call(&s, M::GET, "/v1/pipeline/stages", &token, None).await;
    assert_eq!(unchanged, saved, "refused pipelines change nothing");
    let (_, theirs) = call(&s, M::GET, "/v1/pipeline/stages", &other, None).await;
    assert_eq!(theirs["items"].as_array().unwrap().len(), 6, "another workspace keeps its own pipeline");

    // Deals: amounts are exact decimal strings in the currency's units.
    let (status, deal) = call(
        &s,
        M::POST,
        "/v1/deals",
        &token,
        Some(json!({"contact_id": ana, "title": "Annual plan", "amount": {"amount": "1999.9", "currency": "BRL"},
            "expected_close": "2026-12-31"})),
    )
    .await;
    assert_eq!(status, 201, "{deal}");
    assert_eq!(deal["amount"], json!({"amount": "1999.90", "currency": "BRL"}));
    assert_eq!((deal["stage_id"].as_str(), deal["closed_at"].as_str()), (Some(new_id.as_str()), None));
    let deal_id = deal["id"].as_str().unwrap().to_owned();
    let (status, yen) = call(
        &s,
        M::POST,
        "/v1/deals",
        &token,
        Some(json!({"contact_id": ana, "title": "Tokyo", "amount": {"amount": "1500", "currency": "JPY"}})),
    )
    .await;
    assert_eq!((status, yen["amount"]["amount"].as_str()), (201, Some("1500")), "{yen}");
    for (amount, want, want_code) in [
        (json!({"amount": "19.999", "currency": "USD"}), 400, Some("messaging.invalid_amount")),
        (json!({"amount": "19.5", "currency": "JPY"}), 400, Some("messaging.invalid_amount")),
        (json!({"amount": "-1", "currency": "USD"}), 400, Some("messaging.invalid_amount")),
        (json!({"amount": "1", "currency": "XYZ"}), 400, Some("money.unsupported_currency")),
        (json!({"amount": 19.99, "currency": "USD"}), 422, Some("request.invalid_body")),
    ] {
        let body = json!({"contact_id": ana, "title": "Bad", "amount": amount.clone()});
        let (status, e) = call(&s, M::POST, "/v1/deals", &token, Some(body)).await;
        assert_eq!((status, code(&e)), (want, want_code), "{amount}: {e}");
    }
    let (status, e) =
        call(&s, M::POST, "/v1/deals", &token, Some(json!({"contact_id": ana, "title": "No amount"}))).await;
    assert_eq!((status, code(&e)), (400, Some("messaging.invalid_amount")), "{e}");
    let foreign = json!({"contact_id": ana, "title": "Theirs", "amount": {"amount": "1", "currency": "USD"}});
    let (status, _) = call(&s, M::POST, "/v1/deals", &other, Some(foreign)).await;
    assert_eq!(status, 404, "another workspace's contact");
    let (_, deals) = call(&s, M::GET, "/v1/deals", &token, None).await;
    assert_eq!(ids(&deals).len(), 2, "refused deals were not written: {deals}");
    let (_, theirs) = call(&s, M::GET, "/v1/deals", &other, None).await;
    assert!(ids(&theirs).is_empty());

    // Winning the deal closes it and lands on the contact's timeline.
    let won_id = saved["items"][2]["id"].as_str().unwrap();
    let (status, won) = call(
        &s,
        M::PATCH,
        &format!("/v1/deals/{deal_id}"),
        &token,
        Some(json!({"stage_id": won_id, "amount": {"amount": "2100", "currency": "BRL"}})),
    )
    .await;
    assert_eq!(status, 200, "{won}");
    assert_eq!((won["amount"]["amount"].as_str(), won["title"].as_str()), (Some("2100.00"), Some("Annual plan")));
    assert!(won["closed_at"].is_string(), "{won}");
    let (_, in_won) = call(&s, M::GET, &format!("/v1/deals?stage_id={won_id}"), &token, None).await;
    assert_eq!(ids(&in_won), vec![deal_id.as_str()]);
    let (_, entries) = call(&s, M::GET, &timeline, &token, None).await;
    let moved = entries["items"].as_array().unwrap().iter().find(|a| a["kind"] == "deal" && a["data"]["to"] == "Won");
    assert_eq!(moved.expect("the stage move on the timeline")["data"]["from"], "New");
    let (status, e) = call(&s, M::PATCH, &format!("/v1/deals/{deal_id}"), &token, Some(json!({}))).await;
    assert_eq!((status, code(&e)), (400, Some("messaging.update_mask_required")));
    let (status, _) =
        call(&s, M::PATCH, &format!("/v1/deals/{deal_id}"), &other, Some(json!({"title": "Hijacked"}))).await;
    assert_eq!(status, 404);
    let (status, _) = call(&s, M::PATCH, "/v1/deals/not-an-id", &token, Some(json!({"title": "X"}))).await;
    assert_eq!(status, 404);

    // A stage holding a deal cannot be left out of the pipeline.
    let without_won = json!({"items": [{"id": new_id, "name": "New"}, {"name": "Lost", "outcome": "lost"}]});
    let (status, e) = call(&s, M::PUT, "/v1/pipeline/stages", &token, Some(without_won)).await;
    assert_eq!((status, code(&e)), (409, Some("messaging.stage_has_deals")), "{e}");
}

#[tokio::test]
async fn segments_are_saved_counted_and_private() {
    let s = stack_messaging().await;
    let (token, _) = owner(&s, "seg-a").await;
    let (other, _) = owner(&s, "seg-b").await;
    let (status, _) = call(
        &s,
        M::PUT,
        "/v1/contact-fields/tier",
        &token,
        Some(json!({"label": "Tier", "kind": "choice", "options": ["Silver", "Gold"]})),
    )
    .await;
    assert_eq!(status, 200);
    let ana = contact(&s, &token, json!({"name": "Ana", "stage": "customer", "fields": {"tier": "Gold"}})).await;
    contact(&s, &token, json!({"name": "Bruno", "stage": "lead"})).await;

    let gold = json!({"all": [{"stage": "customer"}, {"field": "tier", "op": "eq", "value": "Gold"}]});
    let (status, seg) =
        call(&s, M::POST, "/v1/segments", &token, Some(json!({"name": "Gold  customers", "filter": gold}))).await;
    assert_eq!(status, 201, "{seg}");
    assert_eq!((seg["name"].as_str(), seg["count"].as_i64()), (Some("Gold customers"), Some(1)));
    assert_eq!(seg["filter"], gold, "the filter comes back as a JSON object");
    let id = seg["id"].as_str().unwrap().to_owned();
    let (_, found) = call(&s, M::GET, &format!("/v1/contacts?segment_id={id}"), &token, None).await;
    assert_eq!(ids(&found), vec![ana.as_str()]);

    // Bad filters and names: refused with the service's code, or 422 for a filter that is not an
    // object; nothing is saved.
    for (body, want, want_code) in [
        (json!({"name": "S", "filter": gold.to_string()}), 422, "request.invalid_body"),
        (json!({"name": "S", "filter": [gold]}), 422, "request.invalid_body"),
        (json!({"name": "S", "filter": {"bogus": 1}}), 400, "messaging.invalid_segment_filter"),
        (
            json!({"name": "S", "filter": {"field": "colour", "op": "eq", "value": "red"}}),
            400,
            "messaging.segment_unknown_field",
        ),
        (
            json!({"name": "S", "filter": {"field": "tier", "op": "eq", "value": "Bronze"}}),
            400,
            "messaging.segment_invalid_value",
        ),
        (json!({"name": "  ", "filter": {"stage": "lead"}}), 400, "messaging.invalid_segment_name"),
        (json!({"name": "S", "filter": {"stage": "lead"}, "extra": true}), 422, "request.invalid_body"),
        (json!({"name": "Gold customers", "filter": {"stage": "lead"}}), 409, "messaging.segment_name_taken"),
    ] {
        let (status, e) = call(&s, M::POST, "/v1/segments", &token, Some(body.clone())).await;
        assert_eq!((status, code(&e)), (want, Some(want_code)), "{body}: {e}");
    }
    let (_, e) = call(&s, M::POST, "/v1/segments", &token, Some(json!({"name": "S", "filter": {"tag": 5}}))).await;
    assert_eq!(e["error"]["fields"], json!([{"field": "filter", "code": "invalid_value"}]), "the body's name: {e}");
    let (status, list) = call(&s, M::GET, "/v1/segments", &token, None).await;
    assert_eq!((status, ids(&list)), (200, vec![id.as_str()]), "{list}");

    // Replaced whole: the new name and filter, counted again.
    let leads = json!({"any": [{"stage": "lead"}, {"not": {"tag": "vip"}}]});
    let (status, replaced) =
        call(&s, M::PUT, &format!("/v1/segments/{id}"), &token, Some(json!({"name": "Not VIP", "filter": leads})))
            .await;
    assert_eq!(status, 200, "{replaced}");
    assert_eq!((replaced["name"].as_str(), replaced["count"].as_i64()), (Some("Not VIP"), Some(2)));
    assert_eq!(replaced["filter"], leads);
    let (status, e) =
        call(&s, M::PUT, &format!("/v1/segments/{id}"), &token, Some(json!({"name": "X", "filter": {"any": 1}}))).await;
    assert_eq!((status, code(&e)), (400, Some("messaging.invalid_segment_filter")));
    let (_, got) = call(&s, M::GET, &format!("/v1/segments/{id}"), &token, None).await;
    assert_eq!((got["name"].as_str(), got["count"].as_i64()), (Some("Not VIP"), Some(2)), "{got}");

    // Another workspace can neither see, change nor delete it.
    let path = format!("/v1/segments/{id}");
    let (status, _) = call(&s, M::GET, &path, &other, None).await;
    assert_eq!(status, 404);
    let (status, _) = call(&s, M::PUT, &path, &other, Some(json!({"name": "Mine", "filter": {"all": []}}))).await;
    assert_eq!(status, 404);
    let (status, _) = call(&s, M::DELETE, &path, &other, None).await;
    assert_eq!(status, 404);
    let (_, theirs) = call(&s, M::GET, "/v1/segments", &other, None).await;
    assert!(ids(&theirs).is_empty());
    let (status, _) = call(&s, M::GET, &format!("/v1/contacts?segment_id={id}"), &other, None).await;
    assert_eq!(status, 404);

    let (status, _) = call(&s, M::DELETE, &path, &token, None).await;
    assert_eq!(status, 204);
    let (status, e) = call(&s, M::GET, &path, &token, None).await;
    assert_eq!((status, code(&e)), (404, Some("messaging.segment_not_found")));
}
