//! WhatsApp through the gateway, on a local sandbox number: numbers (and the FREE plan's limit),
//! the simulator, the shared inbox and its live event stream, sending, templates, broadcasts and
//! bots. Bad input, other workspaces' ids and viewers are refused with localized errors and
//! change nothing.

use std::time::Duration;

use reqwest::Method as M;
use serde_json::{Value, json};

use crate::auth::{Stack, email, stack_messaging};
use crate::crm::{call, code};
use crate::support::client;

/// A new workspace's owner whose language is `locale`: (access token, user id).
async fn owner(s: &Stack, tag: &str, locale: &str) -> (String, String) {
    let body = json!({"email": email(tag), "password": crate::auth::PASSWORD, "name": "Ana Silva", "locale": locale});
    let (status, signed) = s.post("/v1/auth/signup", None, body).await;
    assert_eq!(status, 201, "{signed}");
    (signed["access_token"].as_str().unwrap().to_owned(), signed["user"]["id"].as_str().unwrap().to_owned())
}

/// Connects a local sandbox number.
async fn number(s: &Stack, token: &str, phone_number_id: &str) -> String {
    let body = json!({"waba_id": "102290129340398", "phone_number_id": phone_number_id, "display_phone_number": "+1 555 078 3881"});
    let (status, n) = call(s, M::POST, "/v1/whatsapp/numbers", token, Some(body)).await;
    assert_eq!(status, 201, "{n}");
    assert_eq!(n["provider"], "local");
    n["id"].as_str().unwrap().to_owned()
}

async fn inbound(s: &Stack, token: &str, number: &str, from: &str, text: &str) -> Value {
    let body = json!({"inbound": {"from": from, "name": "Bea", "text": text}});
    let (status, r) = call(s, M::POST, &format!("/v1/whatsapp/numbers/{number}/simulate"), token, Some(body)).await;
    assert_eq!((status, r["http_status"].as_u64()), (200, Some(200)), "{r}");
    r
}

/// An open event stream, read chunk by chunk.
struct Events {
    resp: reqwest::Response,
    seen: String,
}

impl Events {
    async fn open(s: &Stack, token: &str) -> Events {
        let resp =
            client().get(format!("{}/v1/whatsapp/inbox/events", s.base)).bearer_auth(token).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        assert!(resp.headers()["content-type"].to_str().unwrap().starts_with("text/event-stream"));
        let mut events = Events { resp, seen: String::new() };
        assert!(events.until("event: open", Duration::from_secs(10)).await, "the stream opens");
        events
    }

    /// Reads until `needle` was seen (true) or `wait` passed (false).
    async fn until(&mut self, needle: &str, wait: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + wait;
        while !self.seen.contains(needle) {
            match tokio::time::timeout_at(deadline, self.resp.chunk()).await {
                Ok(Ok(Some(chunk))) => self.seen.push_str(&String::from_utf8_lossy(&chunk)),
                _ => return false,
            }
        }
        true
    }
}

#[tokio::test]
async fn numbers_the_simulator_the_inbox_and_its_live_stream() {
    let s = stack_messaging().await;
    let (token, me) = owner(&s, "wa-a", "es").await;
    let (other, _) = owner(&s, "wa-b", "en").await;
    let n = number(&s, &token, "5550400").await;

    // FREE allows one number: the second is refused in the caller's language.
    let body =
        json!({"waba_id": "102290129340398", "phone_number_id": "5550401", "display_phone_number": "+1 555 0401"});
    let (status, e) = call(&s, M::POST, "/v1/whatsapp/numbers", &token, Some(body)).await;
    assert_eq!((status, code(&e)), (409, Some("messaging.whatsapp_number_limit")), "{e}");
    assert!(e["error"]["message"].as_str().unwrap().contains("Tu plan"), "{e}");
    let (status, list) = call(&s, M::GET, "/v1/whatsapp/numbers", &token, None).await;
    assert_eq!((status, list["items"].as_array().unwrap().len()), (200, 1));
    let (status, got) = call(&s, M::GET, &format!("/v1/whatsapp/numbers/{n}"), &token, None).await;
    assert_eq!((status, got["id"].as_str(), got["quality_rating"].as_str()), (200, Some(n.as_str()), Some("GREEN")));
    for (path, t) in [(format!("/v1/whatsapp/numbers/{n}"), &other), ("/v1/whatsapp/numbers/nope".to_owned(), &token)] {
        let (status, e) = call(&s, M::GET, &path, t, None).await;
        assert_eq!((status, code(&e)), (404, Some("messaging.whatsapp_number_not_found")), "{path}");
    }
    // Malformed and mistyped bodies.
    for body in [
        json!({"waba_id": 102290129340398_u64, "phone_number_id": "1", "display_phone_number": "x"}),
        json!({"waba_id": "1", "phone_number_id": "1", "display_phone_number": "x", "extra": true}),
        json!("a string"),
    ] {
        let (status, e) = call(&s, M::POST, "/v1/whatsapp/numbers", &other, Some(body)).await;
        assert_eq!(status, 422, "{e}");
    }
    let resp = client()
        .post(format!("{}/v1/whatsapp/numbers", s.base))
        .bearer_auth(&other)
        .header("content-type", "application/json")
        .body("{\"waba_id\":")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let (status, e) = call(
        &s,
        M::POST,
        "/v1/whatsapp/numbers",
        &other,
        Some(json!({"waba_id": "12a", "phone_number_id": "1", "display_phone_number": "x"})),
    )
    .await;
    assert_eq!((status, code(&e)), (400, Some("messaging.whatsapp_invalid_id")));
    let (_, none) = call(&s, M::GET, "/v1/whatsapp/numbers", &other, None).await;
    assert!(none["items"].as_array().unwrap().is_empty(), "nothing was connected");

    // The stream is open before the message comes; the other workspace's stream stays quiet.
    let mut mine = Events::open(&s, &token).await;
    let mut theirs = Events::open(&s, &other).await;
    let sim = inbound(&s, &token, &n, "5511999990005", "¿Tienen la azul?").await;
    assert!(mine.until("event: message", Duration::from_secs(10)).await, "{}", mine.seen);
    assert!(mine.until("\"status\":\"received\"", Duration::from_secs(5)).await, "{}", mine.seen);
    assert!(mine.seen.contains(&n));
    assert!(!theirs.until("event: message", Duration::from_millis(500)).await, "{}", theirs.seen);
    let (status, e) = call(&s, M::POST, &format!("/v1/whatsapp/numbers/{n}/simulate"), &token, Some(json!({}))).await;
    assert_eq!((status, code(&e)), (400, Some("messaging.whatsapp_content_required")));
    let (status, e) = call(
        &s,
        M::POST,
        &format!("/v1/whatsapp/numbers/{n}/simulate"),
        &other,
        Some(json!({"inbound": {"from": "1"}})),
    )
    .await;
    assert_eq!((status, code(&e)), (404, Some("messaging.whatsapp_number_not_found")));

    // The inbox: unread, assigned (members only), read, resolved.
    let (status, inbox) = call(&s, M::GET, "/v1/whatsapp/conversations", &token, None).await;
    assert_eq!(status, 200, "{inbox}");
    let conv = &inbox["items"][0];
    assert_eq!((conv["unread"].as_i64(), conv["last_message_text"].as_str()), (Some(1), Some("¿Tienen la azul?")));
    let contact = conv["contact_id"].as_str().unwrap().to_owned();
    assert!(sim["message_id"].as_str().unwrap().starts_with("wamid."));
    let base = format!("/v1/whatsapp/numbers/{n}/conversations/{contact}");
    let (status, e) = call(
        &s,
        M::POST,
        &format!("{base}/assign"),
        &token,
        Some(json!({"user_id": "usr_0192f0c5c2b87c31a1f1e4f2b1a0c9aa"})),
    )
    .await;
    assert_eq!((status, code(&e)), (400, Some("messaging.not_a_member")), "{e}");
    let (status, c) = call(&s, M::POST, &format!("{base}/assign"), &token, Some(json!({"user_id": me}))).await;
    assert_eq!((status, c["assigned_to"].as_str()), (200, Some(me.as_str())), "{c}");
    assert!(mine.until("\"status\":\"assigned\"", Duration::from_secs(10)).await, "{}", mine.seen);
    let (_, mine_list) = call(&s, M::GET, "/v1/whatsapp/conversations?filter=mine", &token, None).await;
    assert_eq!(mine_list["items"].as_array().unwrap().len(), 1);
    let (status, c) = call(&s, M::POST, &format!("{base}/read"), &token, None).await;
    assert_eq!((status, c["unread"].as_i64()), (200, Some(0)));
    let (status, c) = call(&s, M::POST, &format!("{base}/resolve"), &token, None).await;
    assert_eq!((status, c["resolved"].as_bool()), (200, Some(true)));
    let (_, open) = call(&s, M::GET, "/v1/whatsapp/conversations", &token, None).await;
    assert!(open["items"].as_array().unwrap().is_empty());
    let (status, c) = call(&s, M::POST, &format!("{base}/reopen"), &token, None).await;
    assert_eq!((status, c["resolved"].as_bool()), (200, Some(false)));
    let (status, e) = call(&s, M::GET, "/v1/whatsapp/conversations?filter=everything", &token, None).await;
    assert_eq!((status, code(&e)), (400, Some("messaging.whatsapp_inbox_filter_invalid")));
    for path in [format!("{base}/resolve"), format!("{base}/read")] {
        let (status, e) = call(&s, M::POST, &path, &other, None).await;
        assert_eq!((status, code(&e)), (404, Some("messaging.whatsapp_conversation_not_found")), "{path}");
    }

    // A viewer reads the inbox but changes nothing.
    let viewer = s.join_as(&token, "viewer").await["access_token"].as_str().unwrap().to_owned();
    let (status, list) = call(&s, M::GET, "/v1/whatsapp/conversations", &viewer, None).await;
    assert_eq!((status, list["items"].as_array().unwrap().len()), (200, 1));
    let (status, e) = call(&s, M::POST, &format!("{base}/resolve"), &viewer, None).await;
    assert_eq!((status, code(&e)), (403, Some("auth.role_insufficient")));
    let (status, e) = call(
        &s,
        M::POST,
        "/v1/whatsapp/messages",
        &viewer,
        Some(json!({"number_id": n, "contact_id": contact, "text": "x"})),
    )
    .await;
    assert_eq!((status, code(&e)), (403, Some("auth.role_insufficient")));
    let (_, again) = call(&s, M::GET, "/v1/whatsapp/conversations", &token, None).await;
    assert_eq!(again["items"][0]["resolved"], false, "the viewer changed nothing");
}

#[tokio::test]
async fn messages_templates_broadcasts_and_bots() {
    let s = stack_messaging().await;
    let (token, _) = owner(&s, "wa-c", "en").await;
    let (other, _) = owner(&s, "wa-d", "pt").await;
    let n = number(&s, &token, "5550500").await;
    inbound(&s, &token, &n, "5511999990006", "Hi").await;
    let (_, inbox) = call(&s, M::GET, "/v1/whatsapp/conversations", &token, None).await;
    let contact = inbox["items"][0]["contact_id"].as_str().unwrap().to_owned();

    // Sending: exactly one kind of content; the window is open after the inbound message.
    let send = |body: Value| call(&s, M::POST, "/v1/whatsapp/messages", &token, Some(body));
    let (status, m) = send(json!({"number_id": n, "contact_id": contact, "text": "Hello Bea!"})).await;
    assert_eq!(status, 201, "{m}");
    assert_eq!(
        (m["status"].as_str(), m["direction"].as_str(), m["type"].as_str()),
        (Some("sent"), Some("out"), Some("text"))
    );
    let (status, m) = send(json!({"number_id": n, "contact_id": contact,
        "interactive": {"body": "Pick one", "buttons": [{"id": "a", "title": "A"}, {"id": "b", "title": "B"}]}}))
    .await;
    assert_eq!((status, m["type"].as_str()), (201, Some("interactive")), "{m}");
    let (status, e) = send(json!({"number_id": n, "contact_id": contact, "text": "x", "media": {"kind": "image", "link": "https://x.example.com/a.png"}})).await;
    assert_eq!((status, code(&e)), (400, Some("messaging.whatsapp_content_required")));
    let (status, e) = send(json!({"number_id": n, "contact_id": contact,
        "interactive": {"body": "Too many", "buttons": [{"id": "a", "title": "A"}, {"id": "b", "title": "B"}, {"id": "c", "title": "C"}, {"id": "d", "title": "D"}]}}))
    .await;
    assert_eq!((status, code(&e)), (400, Some("messaging.whatsapp_buttons_invalid")), "{e}");
    let (status, _) = send(json!({"number_id": n, "contact_id": contact, "text": 5})).await;
    assert_eq!(status, 422);
    let (status, e) = call(
        &s,
        M::POST,
        "/v1/whatsapp/messages",
        &other,
        Some(json!({"number_id": n, "contact_id": contact, "text": "x"})),
    )
    .await;
    assert_eq!(status, 404, "{e}");
    let (status, list) = call(&s, M::GET, &format!("/v1/whatsapp/contacts/{contact}/messages"), &token, None).await;
    assert_eq!((status, list["items"].as_array().unwrap().len()), (200, 3), "{list}");
    let (status, e) = call(&s, M::GET, &format!("/v1/whatsapp/contacts/{contact}/messages"), &other, None).await;
    assert_eq!((status, code(&e)), (404, Some("messaging.contact_not_found")));
    let (status, e) =
        call(&s, M::GET, &format!("/v1/whatsapp/contacts/{contact}/messages?limit=1000"), &token, None).await;
    assert_eq!(status, 400, "{e}");

    // Templates: a draft, submitted (the sandbox approves at once), read, listed, synced, deleted.
    let tpl = json!({"name": "order_update", "language": "en_US", "category": "utility", "body": "Hi {{1}}, your order shipped.",
        "body_examples": ["Ana"]});
    let (status, t) =
        call(&s, M::POST, &format!("/v1/whatsapp/numbers/{n}/templates"), &token, Some(tpl.clone())).await;
    assert_eq!((status, t["status"].as_str(), t["body_params"].as_i64()), (201, Some("draft"), Some(1)), "{t}");
    let tid = t["id"].as_str().unwrap().to_owned();
    let (status, e) =
        call(&s, M::POST, &format!("/v1/whatsapp/numbers/{n}/templates"), &token, Some(tpl.clone())).await;
    assert_eq!((status, code(&e)), (409, Some("messaging.whatsapp_template_exists")));
    let mut bad = tpl.clone();
    bad["category"] = json!("spam");
    let (status, e) = call(&s, M::POST, &format!("/v1/whatsapp/numbers/{n}/templates"), &other, Some(bad)).await;
    assert_eq!(status, 400, "{e}");
    let (status, t) = call(&s, M::POST, &format!("/v1/whatsapp/templates/{tid}/submit"), &token, None).await;
    assert_eq!((status, t["status"].as_str()), (200, Some("approved")), "{t}");
    let (status, t) = call(&s, M::GET, &format!("/v1/whatsapp/templates/{tid}"), &token, None).await;
    assert_eq!((status, t["name"].as_str()), (200, Some("order_update")));
    let (status, e) = call(&s, M::GET, &format!("/v1/whatsapp/templates/{tid}"), &other, None).await;
    assert_eq!((status, code(&e)), (404, Some("messaging.whatsapp_template_not_found")));
    let (status, ts) = call(&s, M::POST, &format!("/v1/whatsapp/numbers/{n}/templates/sync"), &token, None).await;
    assert_eq!((status, ts["items"].as_array().unwrap().len()), (200, 1), "{ts}");
    let template = json!({"number_id": n, "contact_id": contact,
        "template": {"name": "order_update", "language": "en_US", "body_params": ["Bea"]}});
    let (status, e) = send(template.clone()).await;
    assert_eq!((status, code(&e)), (409, Some("messaging.whatsapp_no_consent")), "templates need consent");
    let consent = json!({"channel": "whatsapp", "purpose": "transactional", "status": "granted", "source": "form"});
    let (status, _) = call(&s, M::PUT, &format!("/v1/contacts/{contact}/consents"), &token, Some(consent)).await;
    assert_eq!(status, 200);
    let (status, m) = send(template).await;
    assert_eq!((status, m["type"].as_str()), (201, Some("template")), "{m}");

    // Broadcasts: unknown segment, another workspace's ids, listing.
    let (status, e) = call(&s, M::POST, "/v1/whatsapp/broadcasts", &token, Some(json!({"number_id": n,
        "segment_id": uuid::Uuid::now_v7().to_string(), "template_name": "order_update", "language": "en_US", "params": ["name"]}))).await;
    assert_eq!(status, 404, "{e}");
    let (status, e) = call(
        &s,
        M::POST,
        "/v1/whatsapp/broadcasts",
        &token,
        Some(json!({"number_id": n,
        "segment_id": "x", "template_name": "order_update", "language": "en_US", "scheduled_at": "tomorrow"})),
    )
    .await;
    assert_eq!(status, 422, "{e}");
    let (status, seg) = call(
        &s,
        M::POST,
        "/v1/segments",
        &token,
        Some(json!({"name": "Opted in", "filter": {"consent": {"channel": "whatsapp", "purpose": "marketing"}}})),
    )
    .await;
    assert_eq!(status, 201, "{seg}");
    let seg = seg["id"].as_str().unwrap().to_owned();
    let (status, e) = call(
        &s,
        M::POST,
        "/v1/whatsapp/broadcasts",
        &token,
        Some(json!({"number_id": n, "segment_id": seg,
        "template_name": "order_update", "language": "en_US", "params": ["name"]})),
    )
    .await;
    assert_eq!((status, code(&e)), (409, Some("messaging.whatsapp_broadcast_empty")), "no one consented: {e}");
    let (status, list) = call(&s, M::GET, "/v1/whatsapp/broadcasts", &token, None).await;
    assert_eq!((status, list["items"].as_array().unwrap().len()), (200, 0));
    let ghost = uuid::Uuid::now_v7();
    for (m, path) in [
        (M::GET, format!("/v1/whatsapp/broadcasts/{ghost}")),
        (M::POST, format!("/v1/whatsapp/broadcasts/{ghost}/pause")),
        (M::POST, format!("/v1/whatsapp/broadcasts/{ghost}/resume")),
        (M::POST, format!("/v1/whatsapp/broadcasts/{ghost}/cancel")),
        (M::GET, format!("/v1/whatsapp/broadcasts/{ghost}/recipients")),
    ] {
        let (status, e) = call(&s, m, &path, &token, None).await;
        assert_eq!((status, code(&e)), (404, Some("messaging.whatsapp_broadcast_not_found")), "{path}");
    }

    // Bots: set, read, refused when invalid (the field named), handed back.
    let bot = json!({"config": {"rules": [{"kind": "keyword", "pattern": "price", "reply": "From 10 €"}],
        "time_zone": "Europe/Madrid", "handoff_keyword": "agent", "handoff_reply": "A person will answer soon."}});
    let (status, e) = call(&s, M::GET, &format!("/v1/whatsapp/numbers/{n}/bot"), &token, None).await;
    assert_eq!((status, code(&e)), (404, Some("messaging.whatsapp_bot_not_found")));
    let (status, b) = call(&s, M::PUT, &format!("/v1/whatsapp/numbers/{n}/bot"), &token, Some(bot.clone())).await;
    assert_eq!((status, b["enabled"].as_bool()), (200, Some(true)), "{b}");
    let mut broken = bot.clone();
    broken["config"]["time_zone"] = json!("Mars/Olympus");
    let (status, e) = call(&s, M::PUT, &format!("/v1/whatsapp/numbers/{n}/bot"), &token, Some(broken)).await;
    assert_eq!((status, code(&e)), (400, Some("messaging.whatsapp_bot_invalid")), "{e}");
    let (status, e) = call(&s, M::PUT, &format!("/v1/whatsapp/numbers/{n}/bot"), &other, Some(bot.clone())).await;
    assert_eq!((status, code(&e)), (404, Some("messaging.whatsapp_number_not_found")));
    let (_, b) = call(&s, M::GET, &format!("/v1/whatsapp/numbers/{n}/bot"), &token, None).await;
    assert_eq!(b["config"]["time_zone"], "Europe/Madrid", "the broken config was not saved");
    inbound(&s, &token, &n, "5511999990006", "agent").await;
    let (_, inbox) = call(&s, M::GET, "/v1/whatsapp/conversations", &token, None).await;
    assert_eq!(inbox["items"][0]["bot_paused"], true, "{inbox}");
    let back = format!("/v1/whatsapp/numbers/{n}/conversations/{contact}/hand-back");
    let (status, _) = call(&s, M::POST, &back, &other, None).await;
    assert_eq!(status, 404);
    let (status, _) = call(&s, M::POST, &back, &token, None).await;
    assert_eq!(status, 204);
    let (_, inbox) = call(&s, M::GET, "/v1/whatsapp/conversations", &token, None).await;
    assert_eq!(inbox["items"][0]["bot_paused"], false);

    // Deleting the template: gone for good; another workspace cannot.
    let (status, _) = call(&s, M::DELETE, &format!("/v1/whatsapp/templates/{tid}"), &other, None).await;
    assert_eq!(status, 404);
    let (status, _) = call(&s, M::DELETE, &format!("/v1/whatsapp/templates/{tid}"), &token, None).await;
    assert_eq!(status, 204);
    let (_, list) = call(&s, M::GET, &format!("/v1/whatsapp/numbers/{n}/templates"), &token, None).await;
    assert!(list["items"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn a_bot_with_rules_a_menu_and_an_ai_agent_answers_and_goes_quiet_after_agent() {
    let s = stack_messaging().await;
    let (token, _) = owner(&s, "wa-bot", "en").await;
    let n = number(&s, &token, "5550600").await;
    let agent = json!({"name": "Nova", "instructions": "Answer briefly about our shoes.", "language": "en",
        "knowledge": ["We ship to every city in Brazil in 3 days."]});
    let (status, agent) = call(&s, M::POST, "/v1/agents", &token, Some(agent)).await;
    assert_eq!(status, 201, "{agent}");
    let agent_id = agent["id"].as_str().unwrap();
    let bot = json!({"config": {
        "rules": [{"kind": "keyword", "pattern": "price", "reply": "From 10 €"},
                  {"kind": "keyword", "pattern": "menu", "menu": true}],
        "menu_text": "How can we help?", "menu": [{"id": "hours", "title": "Opening hours", "reply": "9 to 6"}],
        "time_zone": "Europe/Madrid", "handoff_keyword": "agent", "handoff_reply": "A person will answer soon.",
        "agent_id": agent_id}});
    let (status, b) = call(&s, M::PUT, &format!("/v1/whatsapp/numbers/{n}/bot"), &token, Some(bot)).await;
    assert_eq!((status, b["config"]["agent_id"].as_str()), (200, Some(agent_id)), "{b}");
    let (_, before) = call(&s, M::GET, "/v1/credits/balance", &token, None).await;

    let from = "5511999990007";
    let outs = |n: usize| {
        let s = &s;
        let token = token.clone();
        async move {
            // Replies are sent after the webhook is answered; wait for the n-th.
            for _ in 0..200 {
                let (_, inbox) = call(s, M::GET, "/v1/whatsapp/conversations", &token, None).await;
                if let Some(contact) = inbox["items"][0]["contact_id"].as_str() {
                    let (_, list) =
                        call(s, M::GET, &format!("/v1/whatsapp/contacts/{contact}/messages?limit=100"), &token, None)
                            .await;
                    let out: Vec<Value> =
                        list["items"].as_array().unwrap().iter().filter(|m| m["direction"] == "out").cloned().collect();
                    if out.len() >= n {
                        return out;
                    }
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            panic!("no {n} replies");
        }
    };
    inbound(&s, &token, &n, from, "price").await;
    assert_eq!(outs(1).await[0]["text"], "From 10 €");
    inbound(&s, &token, &n, from, "menu").await;
    assert_eq!(outs(2).await[0]["type"], "interactive");
    inbound(&s, &token, &n, from, "Do you ship to Recife?").await;
    let ai = outs(3).await;
    let reply = ai[0]["text"].as_str().unwrap();
    assert!(!reply.is_empty() && reply != "From 10 €", "the agent answered: {reply}");
    assert_eq!(ai[0]["status"], "sent");
    // The agent's turn is in content's history of this contact; the mapping is kept here.
    let contact = ai[0]["contact_id"].as_str().unwrap();
    let (status, history) =
        call(&s, M::GET, &format!("/v1/agents/{agent_id}/messages?contact_id={contact}"), &token, None).await;
    assert_eq!(status, 200, "{history}");
    assert!(history.to_string().contains("Do you ship to Recife?"), "{history}");
    let mapped: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM messaging.wa_conversations WHERE agent_conversation_id IS NOT NULL AND agent_conversation_id <> ''",
    )
    .fetch_one(&s.db.admin_pool().await)
    .await
    .unwrap();
    assert_eq!(mapped, 1);
    // The AI reply cost credits (the agent's turn and the message); rule replies did not.
    let mut spent = false;
    for _ in 0..100 {
        let (_, now) = call(&s, M::GET, "/v1/credits/balance", &token, None).await;
        if now["available"].as_i64() < before["available"].as_i64() {
            spent = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(spent, "credits were charged for the AI reply");

    inbound(&s, &token, &n, from, "agent").await;
    assert_eq!(outs(4).await[0]["text"], "A person will answer soon.");
    inbound(&s, &token, &n, from, "price").await;
    inbound(&s, &token, &n, from, "Do you ship to Recife?").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(outs(4).await.len(), 4, "the bot stays silent after the handoff");
}

#[tokio::test]
async fn a_simulated_image_is_stored_and_served_with_its_type_to_its_workspace_only() {
    use base64::Engine as _;
    let s = stack_messaging().await;
    let (token, _) = owner(&s, "wa-media-a", "pt").await;
    let (other, _) = owner(&s, "wa-media-b", "en").await;
    let n = number(&s, &token, "5550500").await;
    let png = b"\x89PNG\r\n\x1a\n a picture from a customer".to_vec();
    let data = base64::engine::general_purpose::STANDARD.encode(&png);
    let path = format!("/v1/whatsapp/numbers/{n}/simulate");

    // Bad attachments: not base64, an unknown kind, a type that is not type/subtype.
    for media in [
        json!({"kind": "image", "mime_type": "image/png", "data_base64": "%%%%"}),
        json!({"kind": "gif", "mime_type": "image/png", "data_base64": data}),
        json!({"kind": "image", "mime_type": "png", "data_base64": data}),
    ] {
        let body = json!({"inbound": {"from": "5511999990007", "text": "look", "media": media}});
        let (status, e) = call(&s, M::POST, &path, &token, Some(body)).await;
        assert_eq!((status, code(&e)), (400, Some("messaging.whatsapp_simulated_media_invalid")), "{e}");
        assert!(e["error"]["message"].as_str().unwrap().contains("base64"), "{e}");
    }
    let body = json!({"inbound": {"from": "5511999990007", "name": "Bea", "text": "look",
                                  "media": {"kind": "image", "mime_type": "image/png", "data_base64": data}}});
    let (status, r) = call(&s, M::POST, &path, &token, Some(body)).await;
    assert_eq!((status, r["http_status"].as_u64()), (200, Some(200)), "{r}");
    let (status, convs) = call(&s, M::GET, "/v1/whatsapp/conversations?filter=all", &token, None).await;
    assert_eq!(status, 200, "{convs}");
    let contact = convs["items"][0]["contact_id"].as_str().unwrap().to_owned();
    let messages = format!("/v1/whatsapp/contacts/{contact}/messages");
    let mut id = String::new();
    for _ in 0..200 {
        let (_, list) = call(&s, M::GET, &messages, &token, None).await;
        let m = &list["items"][0];
        if m["media"]["status"] == "stored" {
            assert_eq!(
                (m["type"].as_str(), m["media"]["mime_type"].as_str()),
                (Some("image"), Some("image/png")),
                "{m}"
            );
            assert_eq!(m["media"]["size"].as_u64(), Some(png.len() as u64));
            id = m["id"].as_str().unwrap().to_owned();
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!id.is_empty(), "the media was not stored");
    let resp =
        client().get(format!("{}/v1/whatsapp/messages/{id}/media", s.base)).bearer_auth(&token).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "image/png");
    assert_eq!(resp.headers()["x-content-type-options"], "nosniff");
    assert_eq!(resp.bytes().await.unwrap().to_vec(), png);
    // Another workspace, an unknown id: 404 in the caller's language.
    for (t, i) in [(&other, id.as_str()), (&token, "0192f0c5-c2b8-7c31-a1f1-e4f2b1a0c9e1")] {
        let (status, e) = call(&s, M::GET, &format!("/v1/whatsapp/messages/{i}/media"), t, None).await;
        assert_eq!((status, code(&e)), (404, Some("messaging.whatsapp_message_not_found")), "{e}");
    }
    // A text message has no file.
    inbound(&s, &token, &n, "5511999990007", "and the price?").await;
    let (_, list) = call(&s, M::GET, &messages, &token, None).await;
    let text = list["items"].as_array().unwrap().iter().find(|m| m["type"] == "text").unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, e) = call(&s, M::GET, &format!("/v1/whatsapp/messages/{text}/media"), &token, None).await;
    assert_eq!((status, code(&e)), (404, Some("messaging.whatsapp_media_not_found")), "{e}");
}

#[tokio::test]
async fn a_number_is_refreshed_its_bot_deleted_template_text_written_and_the_number_disconnected() {
    let s = stack_messaging().await;
    let (token, me) = owner(&s, "wa-life", "pt").await;
    let (other, _) = owner(&s, "wa-life-b", "en").await;
    let n = number(&s, &token, "5550700").await;

    // Refresh: the sandbox's own standing, read now.
    let (status, r) = call(&s, M::POST, &format!("/v1/whatsapp/numbers/{n}/refresh"), &token, None).await;
    assert_eq!(
        (status, r["quality_rating"].as_str(), r["messaging_tier"].as_str()),
        (200, Some("GREEN"), Some("TIER_1K"))
    );
    assert!(r["quality_checked_at"].is_string(), "{r}");
    let (status, e) = call(&s, M::POST, &format!("/v1/whatsapp/numbers/{n}/refresh"), &other, None).await;
    assert_eq!((status, code(&e)), (404, Some("messaging.whatsapp_number_not_found")));

    // The bot names who takes handed-over conversations: a current member only.
    let bot = |assignee: &str| {
        json!({"config": {"rules": [], "time_zone": "UTC", "handoff_keyword": "agent",
        "handoff_reply": "Um atendente responde já.", "handoff_assignee": assignee}})
    };
    let path = format!("/v1/whatsapp/numbers/{n}/bot");
    let stranger = "usr_0192f0c5c2b87c31a1f1e4f2b1a0c9aa";
    let (status, e) = call(&s, M::PUT, &path, &token, Some(bot(stranger))).await;
    assert_eq!((status, code(&e)), (400, Some("messaging.not_a_member")), "{e}");
    let (status, e) = call(&s, M::PUT, &path, &token, Some(bot("someone"))).await;
    assert_eq!((status, code(&e)), (400, Some("messaging.whatsapp_bot_invalid")), "{e}");
    let (status, b) = call(&s, M::PUT, &path, &token, Some(bot(&me))).await;
    assert_eq!((status, b["config"]["handoff_assignee"].as_str()), (200, Some(me.as_str())), "{b}");
    let (status, _) = call(&s, M::DELETE, &path, &other, None).await;
    assert_eq!(status, 404);
    let (status, _) = call(&s, M::DELETE, &path, &token, None).await;
    assert_eq!(status, 204);
    let (status, e) = call(&s, M::DELETE, &path, &token, None).await;
    assert_eq!((status, code(&e)), (404, Some("messaging.whatsapp_bot_not_found")));

    // Template text from content, in the template's language, ready for a draft.
    let text_path = format!("/v1/whatsapp/numbers/{n}/templates/draft-text");
    let ask = json!({"purpose": "Avisar que a liquidação de inverno começa sexta com 20% em botas.",
        "category": "marketing", "language": "pt_BR"});
    let (status, t) = call(&s, M::POST, &text_path, &token, Some(ask.clone())).await;
    assert_eq!(status, 200, "{t}");
    let body = t["body"].as_str().unwrap();
    let examples = t["body_examples"].as_array().unwrap();
    assert_eq!(examples.len(), body.matches("{{").count(), "{t}");
    let draft = json!({"name": "winter_sale", "language": "pt_BR", "category": "marketing", "body": body,
        "body_examples": examples});
    let (status, d) = call(&s, M::POST, &format!("/v1/whatsapp/numbers/{n}/templates"), &token, Some(draft)).await;
    assert_eq!(status, 201, "the written text passes the template rules: {d}");
    // The same ask again: the same text, charged once.
    let (_, again) = call(&s, M::POST, &text_path, &token, Some(ask.clone())).await;
    assert_eq!(again["generation_id"], t["generation_id"]);
    for (bad, want) in [
        (
            json!({"purpose": "x", "category": "marketing", "language": "fr"}),
            "messaging.whatsapp_template_language_unwritten",
        ),
        (
            json!({"purpose": "   ", "category": "marketing", "language": "en"}),
            "messaging.whatsapp_template_purpose_invalid",
        ),
        (
            json!({"purpose": "x", "category": "promo", "language": "en"}),
            "messaging.whatsapp_template_category_invalid",
        ),
    ] {
        let (status, e) = call(&s, M::POST, &text_path, &token, Some(bad)).await;
        assert_eq!((status, code(&e)), (400, Some(want)), "{e}");
    }
    let (status, e) =
        call(&s, M::POST, &text_path, &token, Some(json!({"purpose": "x", "category": "marketing", "language": "fr"})))
            .await;
    assert!(e["error"]["message"].as_str().unwrap().contains("português"), "in the caller's language: {status} {e}");
    let (status, _) = call(&s, M::POST, &text_path, &other, Some(ask)).await;
    assert_eq!(status, 404);

    // Disconnected: gone from the list, free again, its history still readable.
    let (status, _) = call(&s, M::DELETE, &format!("/v1/whatsapp/numbers/{n}"), &other, None).await;
    assert_eq!(status, 404);
    inbound(&s, &token, &n, "5511999990070", "Oi").await;
    let (status, _) = call(&s, M::DELETE, &format!("/v1/whatsapp/numbers/{n}"), &token, None).await;
    assert_eq!(status, 204);
    let (_, list) = call(&s, M::GET, "/v1/whatsapp/numbers", &token, None).await;
    assert!(list["items"].as_array().unwrap().is_empty());
    let (status, e) = call(
        &s,
        M::POST,
        &format!("/v1/whatsapp/numbers/{n}/simulate"),
        &token,
        Some(json!({"inbound": {"from": "5511999990070", "text": "Oi"}})),
    )
    .await;
    assert_eq!((status, code(&e)), (404, Some("messaging.whatsapp_number_not_found")));
    let (_, inbox) = call(&s, M::GET, "/v1/whatsapp/conversations?filter=all", &token, None).await;
    assert_eq!(inbox["items"].as_array().unwrap().len(), 1, "{inbox}");
    number(&s, &token, "5550700").await;
}
