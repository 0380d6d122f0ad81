//! The social scheduler through the local sandbox: posts written, checked against the platforms'
//! limits when scheduled (nothing stored when one fails), proposed by members and approved by
//! admins, published once after the sandbox's processing, cancelled, and private to their
//! workspace.

use nexus_platform::identity::Role;
use nexus_proto::nexus::ads::v1 as pb;
use serde_json::{Value, json};

use crate::support::{Caller, Service, code};

/// Rounds are run by the tests; the sandbox processes at once.
pub async fn start() -> Service {
    Service::start_with(&[
        ("NEXUS_POSTS__POLL_INTERVAL", "1h".into()),
        ("NEXUS_POSTS__SANDBOX_PROCESSING", "0s".into()),
    ])
    .await
}

pub fn jpeg(url: &str) -> Value {
    json!({"url": url, "kind": "image", "content_type": "image/jpeg", "bytes": 400_000, "width": 1080, "height": 1080})
}

pub fn mp4(url: &str, secs: f64) -> Value {
    json!({"url": url, "kind": "video", "content_type": "video/mp4", "bytes": 3_000_000, "width": 1080, "height": 1920,
        "duration_secs": secs})
}

pub async fn create(s: &Service, c: &Caller, spec: Value) -> Result<pb::Post, tonic::Status> {
    let req = pb::CreatePostRequest { spec_json: spec.to_string() };
    s.client().await.create_post(c.req(req)).await.map(tonic::Response::into_inner)
}

pub async fn get(s: &Service, c: &Caller, id: &str) -> Result<pb::Post, tonic::Status> {
    s.client().await.get_post(c.req(pb::GetByIdRequest { id: id.into() })).await.map(tonic::Response::into_inner)
}

/// A post of `caption` to the sandbox's Instagram account.
fn instagram(connection: &str, caption: &str) -> Value {
    json!({"text": caption, "media": [jpeg("https://cdn.example.com/a.jpg")],
        "targets": [{"connection_id": connection, "account": "local_ig_1"}]})
}

#[tokio::test]
async fn a_sandbox_post_processes_then_publishes_once_labelled_local() {
    let s = start().await;
    let admin = s.admin();
    let conn = s.connect_local(&admin).await;
    let post = create(&s, &admin, instagram(&conn.id, "Spring sale")).await.unwrap();
    assert_eq!(post.status, "scheduled");
    assert_eq!(post.targets.len(), 1);
    assert_eq!((post.targets[0].platform.as_str(), post.targets[0].provider.as_str()), ("instagram", "local"));
    assert_eq!(s.events("nexus.ads.post.scheduled").await, 1);

    // First round: the sandbox "container" processes; the post is publishing, not published.
    let r = s.app.publish_due().await.unwrap();
    assert_eq!((r.claimed, r.published, r.later), (1, 0, 1));
    let t = &get(&s, &admin, &post.id).await.unwrap().targets[0];
    assert_eq!(t.status, "publishing");

    let r = s.app.publish_due().await.unwrap();
    assert_eq!((r.claimed, r.published), (1, 1));
    let t = get(&s, &admin, &post.id).await.unwrap().targets.remove(0);
    assert_eq!(t.status, "published");
    assert!(t.platform_post_id.starts_with("local_"), "{}", t.platform_post_id);
    assert!(t.permalink.starts_with("https://sandbox.nexus.local/instagram/"));
    assert!(t.published_at.is_some());
    assert_eq!(s.events("nexus.ads.post.published").await, 1);

    // Nothing is due any more: later rounds publish nothing again.
    for _ in 0..3 {
        assert_eq!(s.app.publish_due().await.unwrap().claimed, 0);
    }
    assert_eq!(s.events("nexus.ads.post.published").await, 1);

    // Audited: the target's creation and each change of status. Not audited: the scheduler's
    // leases and checkpoints, nor the engagement figures read back later.
    let audited = "SELECT count(*) FROM ads.outbox WHERE audit->>'table' = 'social_post_targets'";
    let statuses = "SELECT count(*) FROM ads.outbox WHERE audit->>'table' = 'social_post_targets' \
        AND (audit->>'operation' = 'INSERT' OR audit->'before'->>'status' <> audit->'after'->>'status')";
    assert_eq!((s.scalar(audited).await, s.scalar(statuses).await), (3, 3));
    s.exec("UPDATE ads.social_post_targets SET engagement_at = NULL").await;
    s.app.read_engagement().await.unwrap();
    assert!(s.scalar("SELECT count(*) FROM ads.social_post_targets WHERE likes > 0").await == 1);
    assert_eq!(s.scalar(audited).await, 3);
}

#[tokio::test]
async fn limits_are_checked_when_scheduling_and_nothing_is_stored() {
    let s = start().await;
    let admin = s.admin();
    let conn = s.connect_local(&admin).await;
    let long = instagram(&conn.id, &"a".repeat(2_300));
    let e = create(&s, &admin, long).await.unwrap_err();
    assert_eq!((e.code(), code(&e).as_str()), (tonic::Code::InvalidArgument, "ads.text_too_long"));

    let carousel = json!({"targets": [{"connection_id": conn.id, "account": "local_ig_1",
        "variant": {"format": "carousel", "media": vec![jpeg("https://cdn.example.com/c.jpg"); 11]}}]});
    assert_eq!(code(&create(&s, &admin, carousel).await.unwrap_err()), "ads.post_media_count");

    // A 3-minute video as an Instagram story (60 s at most).
    let story = json!({"targets": [{"connection_id": conn.id, "account": "local_ig_1",
        "variant": {"format": "story", "media": [mp4("https://cdn.example.com/v.mp4", 180.0)]}}]});
    assert_eq!(code(&create(&s, &admin, story).await.unwrap_err()), "ads.post_media_duration");

    // One good target and one bad: neither is stored.
    let mixed = json!({"text": "Hi", "targets": [
        {"connection_id": conn.id, "account": "local_page_1"},
        {"connection_id": conn.id, "account": "local_channel_1", "variant": {"media": [mp4("https://cdn.example.com/v.mp4", 30.0)]}}]});
    let e = create(&s, &admin, mixed).await.unwrap_err();
    assert_eq!(code(&e), "ads.post_format_unsupported");

    // Wrong types and unknown accounts are refused too.
    let e =
        s.client().await.create_post(admin.req(pb::CreatePostRequest { spec_json: "{\"targets\": 5}".into() })).await;
    assert_eq!(code(&e.unwrap_err()), "ads.post_invalid");
    let typo =
        json!({"text": "x", "colour": "red", "targets": [{"connection_id": conn.id, "account": "local_page_1"}]});
    assert_eq!(code(&create(&s, &admin, typo).await.unwrap_err()), "ads.post_invalid");
    let unknown = json!({"text": "x", "targets": [{"connection_id": conn.id, "account": "someone_else"}]});
    assert_eq!(code(&create(&s, &admin, unknown).await.unwrap_err()), "ads.account_unknown");
    let past = json!({"text": "x", "scheduled_at": "2020-01-01T00:00:00Z",
        "targets": [{"connection_id": conn.id, "account": "local_page_1"}]});
    assert_eq!(code(&create(&s, &admin, past).await.unwrap_err()), "ads.post_time_past");

    assert_eq!(s.scalar("SELECT count(*) FROM ads.social_posts").await, 0);
    assert_eq!(s.scalar("SELECT count(*) FROM ads.social_post_targets").await, 0);
}

#[tokio::test]
async fn a_members_post_waits_for_an_admins_approval() {
    let s = start().await;
    let admin = s.admin();
    let member = s.as_role(&admin, Role::Member);
    let conn = s.connect_local(&admin).await;
    let post = create(&s, &member, instagram(&conn.id, "Proposed")).await.unwrap();
    assert_eq!(post.status, "pending_approval");
    assert_eq!(s.app.publish_due().await.unwrap().claimed, 0, "not due before approval");
    assert_eq!(s.events("nexus.ads.post.scheduled").await, 0);

    let e = s.client().await.approve_post(member.req(pb::GetByIdRequest { id: post.id.clone() })).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::PermissionDenied);
    let approved = s
        .client()
        .await
        .approve_post(admin.req(pb::GetByIdRequest { id: post.id.clone() }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(approved.status, "scheduled");
    assert!(!approved.approved_by.is_empty());
    s.app.publish_due().await.unwrap();
    assert_eq!(s.app.publish_due().await.unwrap().published, 1);
}

#[tokio::test]
async fn a_cancelled_or_rescheduled_post_does_not_go_out_now() {
    let s = start().await;
    let admin = s.admin();
    let conn = s.connect_local(&admin).await;
    let a = create(&s, &admin, instagram(&conn.id, "Cancelled")).await.unwrap();
    let b = create(&s, &admin, instagram(&conn.id, "Later")).await.unwrap();
    let cancelled =
        s.client().await.cancel_post(admin.req(pb::GetByIdRequest { id: a.id.clone() })).await.unwrap().into_inner();
    assert_eq!((cancelled.status.as_str(), cancelled.targets[0].status.as_str()), ("cancelled", "cancelled"));
    let tomorrow = chrono::Utc::now() + chrono::Duration::days(1);
    let req = pb::ReschedulePostRequest { id: b.id.clone(), scheduled_at: Some(nexus_platform::grpc::ts(tomorrow)) };
    s.client().await.reschedule_post(admin.req(req)).await.unwrap();
    assert_eq!(s.app.publish_due().await.unwrap().claimed, 0);

    // The calendar shows tomorrow's post.
    let now = chrono::Utc::now();
    let req = pb::PostCalendarRequest {
        from: Some(nexus_platform::grpc::ts(now)),
        to: Some(nexus_platform::grpc::ts(now + chrono::Duration::days(7))),
    };
    let cal = s.client().await.post_calendar(admin.req(req)).await.unwrap().into_inner();
    assert_eq!(cal.posts.iter().map(|p| p.id.as_str()).collect::<Vec<_>>(), vec![b.id.as_str()]);
}

#[tokio::test]
async fn another_workspace_cannot_see_or_change_a_post() {
    let s = start().await;
    let admin = s.admin();
    let other = s.admin();
    let conn = s.connect_local(&admin).await;
    let post = create(&s, &admin, instagram(&conn.id, "Mine")).await.unwrap();
    let id = || pb::GetByIdRequest { id: post.id.clone() };
    assert_eq!(code(&get(&s, &other, &post.id).await.unwrap_err()), "ads.post_not_found");
    assert_eq!(code(&s.client().await.cancel_post(other.req(id())).await.unwrap_err()), "ads.post_not_found");
    assert_eq!(code(&s.client().await.approve_post(other.req(id())).await.unwrap_err()), "ads.post_not_found");
    // Nor post through this workspace's connection.
    let e = create(&s, &other, instagram(&conn.id, "Theirs")).await.unwrap_err();
    assert_eq!(code(&e), "ads.connection_not_found");
    let now = chrono::Utc::now();
    let req = pb::PostCalendarRequest {
        from: Some(nexus_platform::grpc::ts(now - chrono::Duration::days(1))),
        to: Some(nexus_platform::grpc::ts(now + chrono::Duration::days(1))),
    };
    assert!(s.client().await.post_calendar(other.req(req)).await.unwrap().into_inner().posts.is_empty());
    assert_eq!(get(&s, &admin, &post.id).await.unwrap().status, "scheduled");
}

#[tokio::test]
async fn an_ical_feed_shows_the_calendar_to_its_token_until_revoked() {
    let s = start().await;
    let admin = s.admin();
    let other = s.admin();
    let conn = s.connect_local(&admin).await;
    let tomorrow = chrono::Utc::now() + chrono::Duration::days(1);
    let mut spec = instagram(&conn.id, "Launch, at last; finally");
    spec["scheduled_at"] = json!(tomorrow.to_rfc3339());
    let post = create(&s, &admin, spec).await.unwrap();
    create(&s, &other, instagram(&s.connect_local(&other).await.id, "Someone else's")).await.unwrap();

    let req = pb::CreateCalendarFeedRequest { name: "Team calendar".into() };
    let made = s.client().await.create_calendar_feed(admin.req(req)).await.unwrap().into_inner();
    let feed = made.feed.unwrap();
    assert!(made.token.len() >= 32, "a long random token");
    // Anonymous: no caller token at all.
    let ics = |token: &str| {
        let (s, token) = (&s, token.to_owned());
        async move {
            let req = tonic::Request::new(pb::CalendarIcsRequest { token });
            s.client().await.calendar_ics(req).await.map(|r| r.into_inner().ics)
        }
    };
    let text = ics(&made.token).await.unwrap();
    assert!(text.starts_with("BEGIN:VCALENDAR\r\n") && text.contains("X-WR-CALNAME:Team calendar"), "{text}");
    assert!(text.contains(&format!("UID:{}@nexusone", post.id)), "{text}");
    assert!(text.contains("SUMMARY:instagram: Launch\\, at last\\; finally"), "{text}");
    assert!(!text.contains("Someone else"), "only this workspace's posts");
    assert_eq!(code(&ics("not-a-token").await.unwrap_err()), "ads.feed_not_found");
    // The token is kept only as a hash.
    assert_eq!(
        s.scalar(&format!("SELECT count(*) FROM ads.calendar_feeds WHERE token_hash::text LIKE '%{}%'", made.token))
            .await,
        0
    );

    // Another workspace cannot revoke it; its owner can, and it stops at once.
    let id = || pb::GetByIdRequest { id: feed.id.clone() };
    assert_eq!(code(&s.client().await.revoke_calendar_feed(other.req(id())).await.unwrap_err()), "ads.feed_not_found");
    assert!(ics(&made.token).await.is_ok());
    let revoked = s.client().await.revoke_calendar_feed(admin.req(id())).await.unwrap().into_inner();
    assert!(revoked.revoked_at.is_some());
    assert_eq!(code(&ics(&made.token).await.unwrap_err()), "ads.feed_not_found");
    let listed = s.client().await.list_calendar_feeds(admin.req(pb::Empty {})).await.unwrap().into_inner();
    assert_eq!(listed.feeds.len(), 1);
}

#[tokio::test]
async fn posts_added_to_the_queue_take_the_earliest_free_slots() {
    let s = start().await;
    let admin = s.admin();
    let conn = s.connect_local(&admin).await;
    let slot =
        |weekday: u32, time: &str| pb::QueueSlot { weekday, time: time.into(), time_zone: "Europe/Madrid".into() };
    let req = pb::QueueSlots { slots: vec![slot(2, "09:30"), slot(4, "18:00")] };
    let set = s.client().await.set_queue_slots(admin.req(req)).await.unwrap().into_inner();
    assert_eq!(set.slots.len(), 2);
    let bad = pb::QueueSlots { slots: vec![slot(9, "09:30")] };
    assert_eq!(code(&s.client().await.set_queue_slots(admin.req(bad)).await.unwrap_err()), "ads.queue_slot_invalid");

    // Three posts queued at once: three different slots, in order.
    let queued = |caption: &str| {
        let mut spec = instagram(&conn.id, caption);
        spec["queue"] = json!(true);
        spec
    };
    let (a, b, c) = tokio::join!(
        create(&s, &admin, queued("q1")),
        create(&s, &admin, queued("q2")),
        create(&s, &admin, queued("q3"))
    );
    let mut times: Vec<chrono::DateTime<chrono::Utc>> = [a, b, c]
        .into_iter()
        .map(|p| nexus_platform::grpc::from_ts(p.unwrap().scheduled_at.as_ref().unwrap()).unwrap())
        .collect();
    times.sort();
    times.dedup();
    assert_eq!(times.len(), 3, "no slot taken twice: {times:?}");
    let madrid: chrono_tz::Tz = "Europe/Madrid".parse().unwrap();
    for t in &times {
        let local = t.with_timezone(&madrid);
        let hm = local.format("%a %H:%M").to_string();
        assert!(hm == "Tue 09:30" || hm == "Thu 18:00", "{hm}");
    }
    // Other workspaces have their own queue.
    let other = s.admin();
    let listed = s.client().await.list_queue_slots(other.req(pb::Empty {})).await.unwrap().into_inner();
    assert!(listed.slots.is_empty());
}

#[tokio::test]
async fn a_csv_import_creates_good_rows_names_bad_ones_and_runs_dry_first() {
    let s = start().await;
    let admin = s.admin();
    let conn = s.connect_local(&admin).await;
    let long = "a".repeat(2_300);
    let csv = format!(
        "connection_id,account,scheduled_at,time_zone,format,caption,title,media_url,media_type,media_bytes,media_width,media_height,media_duration\n\
         {c},local_ig_1,2027-05-01 09:30,Europe/Madrid,feed,Hello,,https://cdn.example.com/a.jpg,image/jpeg,1000,1080,1080,\n\
         {c},local_ig_1,,,feed,{long},,https://cdn.example.com/a.jpg,image/jpeg,1000,1080,1080,\n\
         {c},local_page_1,,,,Page post,,,,,,,\n\
         {c},nobody,,,,Who?,,,,,,,\n\
         {c},local_channel_1,,,video,Desc,Launch,https://cdn.example.com/v.mp4,video/mp4,5000,,,42\n",
        c = conn.id
    );
    let import = |dry_run: bool| {
        let (s, admin, csv) = (&s, &admin, csv.clone());
        async move {
            let mut req = admin.req(pb::ImportPostsRequest { csv, dry_run });
            req.metadata_mut().insert("x-nexus-locale", "es".parse().unwrap());
            s.client().await.import_posts(req).await.unwrap().into_inner()
        }
    };
    let dry = import(true).await;
    assert_eq!((dry.rows, dry.created, dry.errors.len()), (5, 3, 2));
    assert!(dry.post_ids.is_empty());
    assert_eq!(s.scalar("SELECT count(*) FROM ads.social_posts").await, 0, "a dry run stores nothing");
    let lines: Vec<(u64, &str)> = dry.errors.iter().map(|e| (e.line, e.code.as_str())).collect();
    assert_eq!(lines, vec![(3, "ads.text_too_long"), (5, "ads.account_unknown")]);
    assert!(dry.errors[0].message.contains("2200"), "{}", dry.errors[0].message);
    assert!(dry.errors[1].message.contains("no es una cuenta"), "in Spanish: {}", dry.errors[1].message);

    let done = import(false).await;
    assert_eq!((done.created, done.errors.len(), done.post_ids.len()), (3, 2, 3));
    assert_eq!(s.scalar("SELECT count(*) FROM ads.social_posts").await, 3);
    let madrid = get(&s, &admin, &done.post_ids[0]).await.unwrap();
    assert_eq!(
        madrid.scheduled_at.unwrap().seconds,
        "2027-05-01T07:30:00Z".parse::<chrono::DateTime<chrono::Utc>>().unwrap().timestamp()
    );
    // The same file again: nothing twice.
    let again = import(false).await;
    assert_eq!(again.post_ids, done.post_ids);
    assert_eq!(s.scalar("SELECT count(*) FROM ads.social_posts").await, 3);
}

#[tokio::test]
async fn a_post_not_yet_published_can_be_replaced_and_a_members_change_needs_approval_again() {
    let s = start().await;
    let admin = s.admin();
    let member = s.as_role(&admin, Role::Member);
    let other = s.admin();
    let conn = s.connect_local(&admin).await;
    let tomorrow = chrono::Utc::now() + chrono::Duration::days(1);
    let mut spec = instagram(&conn.id, "First draft");
    spec["scheduled_at"] = json!(tomorrow.to_rfc3339());
    let post = create(&s, &admin, spec).await.unwrap();
    let update = |c: &Caller, spec: Value| {
        let req = pb::UpdatePostRequest { id: post.id.clone(), spec_json: spec.to_string() };
        let (s, req) = (&s, c.req(req));
        async move { s.client().await.update_post(req).await.map(tonic::Response::into_inner) }
    };
    let mut both = json!({"text": "Final words", "scheduled_at": tomorrow.to_rfc3339(), "targets": [
        {"connection_id": conn.id, "account": "local_page_1"},
        {"connection_id": conn.id, "account": "local_ig_1", "variant": {"media": [jpeg("https://cdn.example.com/b.jpg")]}}]});
    let changed = update(&admin, both.clone()).await.unwrap();
    assert_eq!((changed.status.as_str(), changed.targets.len()), ("scheduled", 2));
    assert!(changed.targets.iter().all(|t| t.variant_json.contains("Final words")));
    // Checked as a new post: nothing changes when it fails.
    both["targets"][1]["variant"]["caption"] = json!("x".repeat(2_300));
    assert_eq!(code(&update(&admin, both.clone()).await.unwrap_err()), "ads.text_too_long");
    assert_eq!(get(&s, &admin, &post.id).await.unwrap().targets.len(), 2);
    // A member's change waits for an admin again; another workspace cannot change it at all.
    both["targets"][1]["variant"]["caption"] = json!("Member's wording");
    assert_eq!(update(&member, both.clone()).await.unwrap().status, "pending_approval");
    assert_eq!(code(&update(&other, both.clone()).await.unwrap_err()), "ads.post_not_found");
    // Once publishing has started it cannot be replaced.
    s.exec("UPDATE ads.social_post_targets SET status = 'published'").await;
    assert_eq!(code(&update(&admin, both).await.unwrap_err()), "ads.post_not_changeable");
}

/// A claim marks a single-call publication sent in its progress, leaving the status `scheduled`
/// (no audit event for a state that lasts one call): it is shown as publishing and can no longer
/// be cancelled, moved or replaced, as a target in `publishing` cannot.
#[tokio::test]
async fn a_publication_marked_sent_by_its_claim_is_publishing_and_cannot_be_called_back() {
    let s = start().await;
    let admin = s.admin();
    let conn = s.connect_local(&admin).await;
    let tomorrow = chrono::Utc::now() + chrono::Duration::days(1);
    let mut spec = json!({"text": "On its way", "scheduled_at": tomorrow.to_rfc3339(),
        "targets": [{"connection_id": conn.id, "account": "local_page_1"}]});
    let post = create(&s, &admin, spec.clone()).await.unwrap();
    let audits = s.events("nexus.ads.audit.recorded").await;
    // What the claim of a due page post writes, and nothing else.
    s.exec(
        "UPDATE ads.social_post_targets SET claims = claims + 1, claimed_until = now() + interval '10 minutes', \
         progress = progress || jsonb_build_object('sent', true, 'sent_at', to_jsonb(now()))",
    )
    .await;
    assert_eq!(s.events("nexus.ads.audit.recorded").await, audits, "the mark is bookkeeping, not audited");
    assert_eq!(get(&s, &admin, &post.id).await.unwrap().targets[0].status, "publishing");

    let id = || pb::GetByIdRequest { id: post.id.clone() };
    let cancel = s.client().await.cancel_post(admin.req(id())).await.unwrap_err();
    assert_eq!(code(&cancel), "ads.post_not_changeable");
    let later = tomorrow + chrono::Duration::days(1);
    let req = pb::ReschedulePostRequest { id: post.id.clone(), scheduled_at: Some(nexus_platform::grpc::ts(later)) };
    assert_eq!(code(&s.client().await.reschedule_post(admin.req(req)).await.unwrap_err()), "ads.post_not_changeable");
    spec["text"] = json!("Changed words");
    let req = pb::UpdatePostRequest { id: post.id.clone(), spec_json: spec.to_string() };
    assert_eq!(code(&s.client().await.update_post(admin.req(req)).await.unwrap_err()), "ads.post_not_changeable");
    // Nothing changed underneath: still one target, scheduled for tomorrow, marked sent.
    let left = s
        .scalar(
            "SELECT count(*) FROM ads.social_post_targets WHERE status = 'scheduled' AND due_at > now() \
             AND (progress->>'sent')::boolean",
        )
        .await;
    assert_eq!(left, 1);
}
