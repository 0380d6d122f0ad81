use std::collections::HashSet;
use std::time::Duration;

use nexus_kernel::WorkspaceId;
use nexus_platform::identity::{PrincipalKind, Role, Scope};
use nexus_proto::nexus::subscriptions::v1 as pb;
use nexus_testkit::eventually;
use nexus_testkit::identity::authed;

use crate::support::*;

#[tokio::test]
async fn a_thousand_concurrent_reservations_never_overspend() {
    let svc = start().await;
    let ws = WorkspaceId::new();
    let token = svc.owner(ws);
    // FREE gives 50; bring the balance to exactly 500.
    svc.add_credits(ws, 450).await;
    assert_eq!(svc.balance(&token).await.available, 500);

    let channels: Vec<_> = (0..8).map(|_| svc.client()).collect();
    let mut tasks = Vec::new();
    for i in 0..1000 {
        let mut c = channels[i % channels.len()].clone();
        let token = token.clone();
        tasks.push(tokio::spawn(async move { (i, c.reserve(authed(reserve(1, &format!("job-{i}")), &token)).await) }));
    }
    let mut ok = Vec::new();
    for t in tasks {
        let (i, r) = t.await.unwrap();
        match r {
            Ok(res) => ok.push((i, res.into_inner())),
            Err(e) => assert_eq!(code_of(&e), "subscriptions.insufficient_credits", "{e:?}"),
        }
    }
    assert_eq!(ok.len(), 500, "exactly the balance is reserved");
    let b = svc.balance(&token).await;
    assert_eq!((b.available, b.reserved), (0, 500));
    assert_eq!(ledger_sum(&svc, ws).await, b.available, "the ledger sums to the balance");

    // Re-sending any successful key returns the same reservation and charges nothing.
    let mut c = svc.client();
    for (i, first) in ok.iter().take(20) {
        let again = c.reserve(authed(reserve(1, &format!("job-{i}")), &token)).await.unwrap().into_inner();
        assert_eq!(again.id, first.id);
    }
    let b = svc.balance(&token).await;
    assert_eq!((b.available, b.reserved), (0, 500));
    let ids: HashSet<_> = ok.iter().map(|(_, r)| r.id.clone()).collect();
    assert_eq!(ids.len(), 500);
}

#[tokio::test]
async fn commit_charges_what_was_used_and_release_gives_everything_back() {
    let svc = start().await;
    let ws = WorkspaceId::new();
    let token = svc.owner(ws);
    let mut c = svc.client();
    assert_eq!(svc.balance(&token).await.available, 50, "a new workspace starts on FREE with 50 credits");

    let r = c.reserve(authed(reserve(10, "gen-1"), &token)).await.unwrap().into_inner();
    assert_eq!(r.available, 40);
    // The reservation's audit trail names who made it, like every other change.
    let audited: Vec<(String, String)> = sqlx::query_as(
        "SELECT actor_id, audit->>'table' FROM subscriptions.outbox WHERE tenant_id = $1 \
         AND audit->>'table' = 'reservations' AND audit->>'operation' = 'INSERT'",
    )
    .bind(ws.as_uuid())
    .fetch_all(&svc.admin().await)
    .await
    .unwrap();
    assert_eq!(audited.len(), 1, "{audited:?}");
    assert!(!audited[0].0.is_empty(), "actor recorded: {audited:?}");
    let done = c
        .commit(authed(pb::CommitRequest { reservation_id: r.id.clone(), credits: Some(7) }, &token))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((done.status.as_str(), done.committed_amount, done.available), ("committed", 7, 43));
    let again = c
        .commit(authed(pb::CommitRequest { reservation_id: r.id.clone(), credits: Some(7) }, &token))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again.available, 43, "committing twice charges once");
    let closed = c.release(authed(pb::ReleaseRequest { reservation_id: r.id.clone() }, &token)).await.unwrap_err();
    assert_eq!(code_of(&closed), "subscriptions.reservation_closed");

    let r2 = c
        .reserve(authed(
            pb::ReserveRequest {
                action: "content.image".into(),
                quantity: 3,
                idempotency_key: "img-1".into(),
                ..Default::default()
            },
            &token,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r2.amount, 6, "priced from the table: 2 credits x 3 images");
    let over = c
        .commit(authed(pb::CommitRequest { reservation_id: r2.id.clone(), credits: Some(7) }, &token))
        .await
        .unwrap_err();
    assert_eq!(code_of(&over), "subscriptions.commit_exceeds_reservation");
    let back =
        c.release(authed(pb::ReleaseRequest { reservation_id: r2.id.clone() }, &token)).await.unwrap().into_inner();
    assert_eq!((back.status.as_str(), back.available), ("released", 43));
    assert_eq!(ledger_sum(&svc, ws).await, 43);

    let usage = c.get_usage(authed(pb::Empty {}, &token)).await.unwrap().into_inner();
    assert_eq!(usage.credits_used, 7);
    assert_eq!(usage.credits_by_action.get("content.generation"), Some(&7));
    let ledger = c
        .list_ledger(authed(
            pb::ListLedgerRequest {
                page: Some(nexus_proto::common::PageRequest { page_size: 2, cursor: String::new() }),
            },
            &token,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ledger.items.len(), 2);
    assert!(!ledger.page.unwrap().next_cursor.is_empty());
}

#[tokio::test]
async fn an_abandoned_reservation_comes_back_after_its_ttl() {
    let svc = start().await;
    let ws = WorkspaceId::new();
    let token = svc.owner(ws);
    let mut c = svc.client();
    let r = c
        .reserve(authed(
            pb::ReserveRequest {
                action: "content.generation".into(),
                credits: 30,
                idempotency_key: "crashy".into(),
                ttl_seconds: 1,
                ..Default::default()
            },
            &token,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.available, 20);
    // The caller "dies": no commit, no release.
    let back = eventually(Duration::from_secs(10), || {
        let (svc, token) = (&svc, token.clone());
        async move { svc.balance(&token).await.available == 50 }
    })
    .await;
    assert!(back, "credits returned after the TTL");
    let late = c.commit(authed(pb::CommitRequest { reservation_id: r.id, credits: None }, &token)).await.unwrap_err();
    assert_eq!(code_of(&late), "subscriptions.reservation_closed");
    assert_eq!(ledger_sum(&svc, ws).await, 50);
}

#[tokio::test]
async fn at_zero_metered_actions_are_refused_and_nothing_goes_negative() {
    let svc = start().await;
    let ws = WorkspaceId::new();
    let token = svc.owner(ws);
    let mut c = svc.client();
    let r = c.reserve(authed(reserve(50, "all"), &token)).await.unwrap().into_inner();
    c.commit(authed(pb::CommitRequest { reservation_id: r.id, credits: None }, &token)).await.unwrap();
    let refused = c.reserve(authed(reserve(1, "one-more"), &token)).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::FailedPrecondition);
    let e = nexus_kernel::Error::from_status(&refused);
    assert_eq!(e.code(), "subscriptions.insufficient_credits");
    assert_eq!(e.kind().http_status(), 402);
    assert_eq!(e.param("available"), Some("0"));
    let b = svc.balance(&token).await;
    assert_eq!((b.available, b.reserved), (0, 0));
    // 80% and 100% were announced once each.
    let admin = svc.admin().await;
    let subjects: Vec<String> = sqlx::query_scalar("SELECT subject FROM subscriptions.outbox WHERE tenant_id = $1 AND subject LIKE 'nexus.subscriptions.credits.%' ORDER BY seq")
        .bind(ws.as_uuid())
        .fetch_all(&admin)
        .await
        .unwrap();
    assert_eq!(
        subjects,
        vec![
            "nexus.subscriptions.credits.charged",
            "nexus.subscriptions.credits.low",
            "nexus.subscriptions.credits.exhausted"
        ]
    );
    // …and shown in the app, in the caller's language and direction.
    let mut req = authed(pb::Empty {}, &token);
    req.metadata_mut().insert("x-nexus-locale", "ar".parse().unwrap());
    let notices = c.list_notices(req).await.unwrap().into_inner().items;
    assert_eq!(notices.iter().map(|n| n.percent).collect::<Vec<_>>(), vec![100, 80]);
    assert!(notices.iter().all(|n| n.dir == "rtl" && !n.title.is_empty() && !n.body.is_empty()));
    assert!(notices[0].title.contains("نفدت"), "{:?}", notices[0]);
}

#[tokio::test]
async fn free_allows_two_videos_a_month() {
    let svc = start().await;
    let ws = WorkspaceId::new();
    let token = svc.owner(ws);
    let mut c = svc.client();
    let use_video =
        |key: &str| pb::UseEntitlementRequest { feature: "videos_per_month".into(), idempotency_key: key.into() };
    assert_eq!(c.use_entitlement(authed(use_video("v1"), &token)).await.unwrap().into_inner().used, 1);
    assert_eq!(
        c.use_entitlement(authed(use_video("v1"), &token)).await.unwrap().into_inner().used,
        1,
        "same key counts once"
    );
    let second = c.use_entitlement(authed(use_video("v2"), &token)).await.unwrap().into_inner();
    assert_eq!((second.used, second.limit, second.allowed), (2, 2, false));
    let third = c.use_entitlement(authed(use_video("v3"), &token)).await.unwrap_err();
    assert_eq!(code_of(&third), "subscriptions.limit_reached");
    let check = c
        .check_entitlement(authed(pb::EntitlementRequest { feature: "videos_per_month".into() }, &token))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((check.allowed, check.used), (false, 2));
    let unknown =
        c.check_entitlement(authed(pb::EntitlementRequest { feature: "teleports".into() }, &token)).await.unwrap_err();
    assert_eq!(code_of(&unknown), "subscriptions.unknown_feature");
}

#[tokio::test]
async fn other_workspaces_bad_input_and_scopes() {
    let svc = start().await;
    let (a, b) = (WorkspaceId::new(), WorkspaceId::new());
    let (ta, tb) = (svc.owner(a), svc.owner(b));
    let mut c = svc.client();
    let rb = c.reserve(authed(reserve(5, "b-job"), &tb)).await.unwrap().into_inner();
    for e in [
        c.commit(authed(pb::CommitRequest { reservation_id: rb.id.clone(), credits: None }, &ta)).await.unwrap_err(),
        c.release(authed(pb::ReleaseRequest { reservation_id: rb.id.clone() }, &ta)).await.unwrap_err(),
    ] {
        assert_eq!(e.code(), tonic::Code::NotFound);
        assert_eq!(code_of(&e), "subscriptions.reservation_not_found");
    }
    assert_eq!(svc.balance(&tb).await.reserved, 5, "B's reservation untouched");
    // Same key in two workspaces: two reservations.
    let ra = c.reserve(authed(reserve(5, "b-job"), &ta)).await.unwrap().into_inner();
    assert_ne!(ra.id, rb.id);

    for (req, code) in [
        (reserve(1, ""), "subscriptions.invalid_idempotency_key"),
        (reserve(-3, "neg"), "subscriptions.invalid_amount"),
        (
            pb::ReserveRequest { action: "teleport".into(), idempotency_key: "t".into(), ..Default::default() },
            "subscriptions.unknown_action",
        ),
        (
            pb::ReserveRequest {
                credits: 1,
                idempotency_key: "ttl".into(),
                ttl_seconds: 999_999,
                ..Default::default()
            },
            "subscriptions.invalid_ttl",
        ),
    ] {
        assert_eq!(code_of(&c.reserve(authed(req, &ta)).await.unwrap_err()), code);
    }
    // A viewer or a read-only key cannot spend; no token at all is unauthenticated.
    let viewer = svc.issuer.user_token(a, Role::Viewer);
    assert_eq!(code_of(&c.reserve(authed(reserve(1, "v"), &viewer)).await.unwrap_err()), "auth.role_insufficient");
    let read_key = svc.issuer.key_token(a, vec![Scope::Read]);
    assert_eq!(code_of(&c.reserve(authed(reserve(1, "k"), &read_key)).await.unwrap_err()), "auth.scope_missing");
    assert!(c.get_balance(authed(pb::Empty {}, &read_key)).await.is_ok());
    assert_eq!(c.get_balance(pb::Empty {}).await.unwrap_err().code(), tonic::Code::Unauthenticated);

    let admin = svc.admin().await;
    let tables = nexus_testkit::db::assert_tenant_tables_protected(&admin, "subscriptions").await;
    assert!(tables.contains(&"credit_ledger".to_owned()) && tables.contains(&"reservations".to_owned()));
    let svc_pool = nexus_platform::db::connect("subscriptions", &svc.db.config("subscriptions")).await.unwrap();
    let mut tx = nexus_platform::db::begin_tenant(&svc_pool, a).await.unwrap();
    let tamper = sqlx::query("UPDATE credit_ledger SET amount = amount + 1000").execute(&mut *tx).await.unwrap_err();
    assert!(tamper.to_string().contains("append-only"), "{tamper}");
}

#[tokio::test]
async fn a_new_workspace_is_provisioned_once_from_the_signup_event() {
    use prost::Message;
    let svc = start().await;
    let bus = svc.nats.bus().await;
    bus.ensure_service_stream("auth").await.unwrap();
    let ws = WorkspaceId::new();
    let env = nexus_proto::events::Envelope {
        event_id: uuid::Uuid::now_v7().to_string(),
        tenant_id: ws.to_string(),
        event_type: "nexus.events.v1.UserSignedUp".into(),
        payload: nexus_proto::events::UserSignedUp { workspace_id: ws.to_string(), ..Default::default() }
            .encode_to_vec(),
        ..Default::default()
    };
    for copy in ["a", "b"] {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", copy);
        bus.js
            .publish_with_headers(bus.subject("nexus.auth.user.signed_up"), headers, env.encode_to_vec().into())
            .await
            .unwrap()
            .await
            .unwrap();
    }
    let admin = svc.admin().await;
    let provisioned = eventually(Duration::from_secs(15), || {
        let admin = admin.clone();
        async move {
            sqlx::query_scalar::<_, i64>("SELECT count(*) FROM subscriptions.subscriptions WHERE tenant_id = $1")
                .bind(ws.as_uuid())
                .fetch_one(&admin)
                .await
                .unwrap()
                == 1
        }
    })
    .await;
    assert!(provisioned);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let grants: i64 =
        sqlx::query_scalar("SELECT count(*) FROM subscriptions.credit_ledger WHERE tenant_id = $1 AND kind = 'grant'")
            .bind(ws.as_uuid())
            .fetch_one(&admin)
            .await
            .unwrap();
    assert_eq!(grants, 1, "the duplicate event granted nothing more");
    let sub = svc.client().get_subscription(authed(pb::Empty {}, &svc.owner(ws))).await.unwrap().into_inner();
    assert_eq!((sub.plan_code.as_str(), sub.status.as_str(), sub.access), ("free", "active", true));
}

#[tokio::test]
async fn plans_are_listed_in_the_caller_s_language_and_currency() {
    let svc = start().await;
    let mut c = svc.client();
    let mut req = tonic::Request::new(pb::ListPlansRequest { currency: "BRL".into() });
    req.metadata_mut().insert("x-nexus-locale", "ar".parse().unwrap());
    let plans = c.list_plans(req).await.unwrap().into_inner().items;
    let codes: Vec<_> = plans.iter().map(|p| p.code.as_str()).collect();
    assert_eq!(codes, vec!["free", "pro", "premium"]);
    let pro = &plans[1];
    assert_eq!(pro.name, "احترافي");
    assert_eq!(pro.monthly_credits, 500);
    assert_eq!(pro.price.as_ref().unwrap().currency, "BRL");
    assert_eq!(pro.entitlements["videos_per_month"], 20);
    assert_eq!(plans[2].entitlements["whatsapp_numbers"], 20);
    assert!(pro.prices.iter().any(|m| m.currency == "USD" && m.amount_minor == 9700));
    let bad = c.list_plans(pb::ListPlansRequest { currency: "XYZ".into() }).await.unwrap_err();
    assert_eq!(code_of(&bad), "money.unsupported_currency");
}

/// The race behind "402 right after sign-up": the sign-up consumer is provisioning the workspace
/// (its transaction holds the new subscription, not yet committed) when the first reservation
/// arrives. The reservation waits for that provisioning and succeeds; one grant only.
#[tokio::test]
async fn a_reservation_racing_the_signup_provisioning_waits_for_it_and_succeeds() {
    let svc = start().await;
    let pool = nexus_platform::db::connect("subscriptions", &svc.db.config("subscriptions")).await.unwrap();
    for round in 0..10 {
        let ws = WorkspaceId::new();
        let token = svc.owner(ws);
        // What `provision::Provisioner` does for `user.signed_up`, held open for a moment.
        let mut tx = nexus_platform::db::begin_tenant(&pool, ws).await.unwrap();
        assert!(nexus_subscriptions::app::Billing::ensure_subscription(&mut tx, ws).await.unwrap());
        let mut client = svc.client();
        let key = format!("first-{round}");
        let first = tokio::spawn(async move { client.reserve(authed(reserve(0, &key), &token)).await });
        tokio::time::sleep(Duration::from_millis(150 + 20 * round)).await;
        tx.commit().await.unwrap();
        let held = first.await.unwrap().expect("the first reservation of a new workspace is granted");
        assert_eq!(held.into_inner().status, "held");
        let grants: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM subscriptions.credit_ledger WHERE tenant_id = $1 AND kind = 'grant'",
        )
        .bind(ws.as_uuid())
        .fetch_one(&svc.admin().await)
        .await
        .unwrap();
        assert_eq!(grants, 1, "provisioned once");
        let b = svc.balance(&svc.owner(ws)).await;
        assert_eq!((b.available, b.reserved), (49, 1));
        assert_eq!(ledger_sum(&svc, ws).await, b.available);
    }
}

/// Sign-up provisioning and first uses arriving together, many workspaces at once: every
/// reservation succeeds and every workspace is granted exactly once.
#[tokio::test]
async fn concurrent_provisioning_and_first_reservations_never_refuse() {
    let svc = start().await;
    let pool = nexus_platform::db::connect("subscriptions", &svc.db.config("subscriptions")).await.unwrap();
    let mut tasks = Vec::new();
    let workspaces: Vec<WorkspaceId> = (0..40).map(|_| WorkspaceId::new()).collect();
    for ws in workspaces.clone() {
        let pool = pool.clone();
        tasks.push(tokio::spawn(async move {
            let mut tx = nexus_platform::db::begin_tenant(&pool, ws).await.unwrap();
            nexus_subscriptions::app::Billing::ensure_subscription(&mut tx, ws).await.unwrap();
            tx.commit().await.unwrap();
            Ok::<(), tonic::Status>(())
        }));
        let (mut client, token) = (svc.client(), svc.owner(ws));
        tasks.push(tokio::spawn(async move { client.reserve(authed(reserve(0, "first"), &token)).await.map(|_| ()) }));
    }
    for t in tasks {
        t.await.unwrap().expect("no refusal");
    }
    for ws in workspaces {
        let b = svc.balance(&svc.owner(ws)).await;
        assert_eq!((b.available, b.reserved), (49, 1), "granted once, one credit held");
    }
}

/// Publishes what content's outbox relay would for a finished job.
async fn job_finished(svc: &Svc, ws: WorkspaceId, reservation: &str, credits: i64, copy: &str) {
    use prost::Message;
    let bus = svc.nats.bus().await;
    bus.ensure_service_stream("content").await.unwrap();
    let job = nexus_proto::events::MeteredJobFinished {
        workspace_id: ws.to_string(),
        reservation_id: reservation.to_owned(),
        succeeded: true,
        credits,
        job: "content.generation:gen_test".into(),
        ..Default::default()
    };
    let env = nexus_proto::events::Envelope {
        event_id: uuid::Uuid::now_v7().to_string(),
        tenant_id: ws.to_string(),
        event_type: <nexus_proto::events::MeteredJobFinished as prost::Name>::full_name(),
        payload: job.encode_to_vec(),
        ..Default::default()
    };
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Nats-Msg-Id", copy);
    bus.js
        .publish_with_headers(bus.subject("nexus.content.job.finished"), headers, env.encode_to_vec().into())
        .await
        .unwrap()
        .await
        .unwrap();
}

/// Subscriptions was down longer than a hold's TTL: on its return the sweeper gives the hold
/// back before the job's settlement (waiting in NATS) is read. The stored job is still charged,
/// once, and never below zero.
#[tokio::test]
async fn a_job_settled_after_its_hold_expired_is_still_charged_once() {
    let svc = start().await;
    let ws = WorkspaceId::new();
    let token = svc.owner(ws);
    let mut c = svc.client();
    let mut req = reserve(5, "slow-job");
    req.ttl_seconds = 1;
    let r = c.reserve(authed(req, &token)).await.unwrap().into_inner();
    let expired = eventually(Duration::from_secs(10), || async { svc.balance(&token).await.available == 50 }).await;
    assert!(expired, "the hold expired and came back");

    job_finished(&svc, ws, &r.id, 3, "late-1").await;
    let charged = eventually(Duration::from_secs(15), || async { svc.balance(&token).await.available == 47 }).await;
    assert!(charged, "charged late: {:?}", svc.balance(&token).await);
    // The same settlement again (a redelivery under a new id) charges nothing more.
    job_finished(&svc, ws, &r.id, 3, "late-2").await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let b = svc.balance(&token).await;
    assert_eq!((b.available, b.reserved), (47, 0));
    assert_eq!(ledger_sum(&svc, ws).await, 47, "the ledger sums to the balance");

    // With fewer credits left than the job used, the late charge stops at zero.
    let mut drain = reserve(0, "short");
    drain.credits = 10;
    drain.ttl_seconds = 1;
    let r2 = c.reserve(authed(drain, &token)).await.unwrap().into_inner();
    eventually(Duration::from_secs(10), || async { svc.balance(&token).await.available == 47 }).await;
    let mut spend = reserve(45, "spend");
    spend.action = "video.render_minute".into();
    c.reserve(authed(spend, &token)).await.unwrap();
    assert_eq!(svc.balance(&token).await.available, 2);
    job_finished(&svc, ws, &r2.id, 10, "late-3").await;
    let capped = eventually(Duration::from_secs(15), || async { svc.balance(&token).await.available == 0 }).await;
    assert!(capped, "{:?}", svc.balance(&token).await);
    assert_eq!(ledger_sum(&svc, ws).await, 0);
}

/// Callers of one busy workspace share statements (`reserve_credits_many`): each still gets its
/// own answer, exactly the balance is reserved, a repeated key is one reservation, and each
/// reservation is audited with the identity of the caller that made it. Another workspace
/// reserving at the same time is untouched.
#[tokio::test]
async fn concurrent_callers_of_one_workspace_each_get_their_own_answer_and_audit() {
    let svc = start().await;
    let (ws, other) = (WorkspaceId::new(), WorkspaceId::new());
    svc.add_credits(ws, 10).await;
    assert_eq!(svc.balance(&svc.owner(other)).await.available, 50);
    let key_token = |ws: WorkspaceId, i: usize| {
        svc.issuer.token(ws, Role::Owner, PrincipalKind::ApiKey, vec![Scope::Write], &format!("caller-{i}"))
    };
    let channels: Vec<_> = (0..4).map(|_| svc.client()).collect();
    let mut tasks = Vec::new();
    // 80 one-credit callers, 10 more repeating caller 0's key, 5 asking for more than there is,
    // and 20 callers of the other workspace.
    for i in 0..115 {
        let mut c = channels[i % channels.len()].clone();
        let (target, who, key, credits) = match i {
            0..80 => (ws, i, format!("job-{i}"), 1),
            80..90 => (ws, 0, "job-0".to_owned(), 1),
            90..95 => (ws, i, format!("big-{i}"), 1000),
            _ => (other, i, format!("job-{i}"), 1),
        };
        let token = key_token(target, who);
        tasks.push(tokio::spawn(async move {
            let r = c.reserve(authed(reserve(credits, &key), &token)).await;
            (target, key, r)
        }));
    }
    let mut held: std::collections::HashMap<String, Vec<String>> = std::collections::HashMap::new();
    for t in tasks {
        let (target, key, r) = t.await.unwrap();
        match r {
            Ok(res) => held.entry(format!("{target}/{key}")).or_default().push(res.into_inner().id),
            Err(e) => {
                assert_eq!(code_of(&e), "subscriptions.insufficient_credits", "{key}: {e:?}");
                assert_eq!(target, ws, "only the busy workspace runs short");
            }
        }
    }
    // Every caller of job-0 that was answered with a hold got the same one.
    if let Some(zero) = held.get(&format!("{ws}/job-0")) {
        assert!(zero.iter().all(|id| id == &zero[0]), "{zero:?}");
    }
    let mine: usize = held.keys().filter(|k| k.starts_with(&ws.to_string())).count();
    assert_eq!(mine, 60, "exactly the balance is reserved");
    assert!(held.keys().all(|k| !k.contains("/big-")), "a hold larger than the balance is refused");
    let b = svc.balance(&svc.owner(ws)).await;
    assert_eq!((b.available, b.reserved), (0, 60));
    assert_eq!(ledger_sum(&svc, ws).await, 0);
    let o = svc.balance(&svc.owner(other)).await;
    assert_eq!((o.available, o.reserved), (30, 20), "the other workspace reserved its own");
    assert_eq!(ledger_sum(&svc, other).await, 30);

    // One audit record per reservation, naming the caller that asked for it.
    let audited: Vec<(String, String)> = sqlx::query_as(
        "SELECT audit->'after'->>'idempotency_key', actor_id FROM subscriptions.outbox \
         WHERE tenant_id = $1 AND audit->>'table' = 'reservations'",
    )
    .bind(ws.as_uuid())
    .fetch_all(&svc.admin().await)
    .await
    .unwrap();
    assert_eq!(audited.len(), 60);
    for (key, actor) in audited {
        let i: usize = key.strip_prefix("job-").and_then(|n| n.parse().ok()).expect("only job-N are held");
        assert_eq!(actor, format!("key:caller-{i}"), "{key}");
    }
}

/// `reserve_credits_many` (migration 0007) answers each item as `reserve_credits` would: held;
/// refused for too few credits (no row, nothing of it kept, the others go on); or, for a key seen
/// before, the same reservation charged once. Each item is audited with its own actor and request.
#[tokio::test]
async fn a_batch_of_reservations_answers_each_item_on_its_own() {
    let svc = start().await;
    let ws = WorkspaceId::new();
    assert_eq!(svc.balance(&svc.owner(ws)).await.available, 50);
    let pool = nexus_platform::db::connect("subscriptions", &svc.db.config("subscriptions")).await.unwrap();
    let ids: Vec<uuid::Uuid> = (0..4).map(|_| uuid::Uuid::now_v7()).collect();
    let ctx: Vec<String> = (0..4)
        .flat_map(|i| [format!("usr-{i}"), format!("req-{i}"), String::new(), String::new(), String::new()])
        .collect();
    let rows: Vec<(i32, uuid::Uuid, i64)> =
        sqlx::query_as("SELECT r_item, r_id, r_available FROM reserve_credits_many($1, $2, $3, $4, $5, $6, $7)")
            .bind(ws.as_uuid())
            .bind(&ids)
            .bind(vec!["a", "b", "a", "c"])
            .bind(vec!["content.generation"; 4])
            .bind(vec![10_i64, 100, 10, 5])
            .bind(vec![600.0_f64; 4])
            .bind(&ctx)
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(rows, vec![(1, ids[0], 40), (3, ids[0], 40), (4, ids[3], 35)]);
    let b = svc.balance(&svc.owner(ws)).await;
    assert_eq!((b.available, b.reserved), (35, 15));
    assert_eq!(ledger_sum(&svc, ws).await, 35);
    let admin = svc.admin().await;
    let kept: Vec<String> = sqlx::query_scalar(
        "SELECT idempotency_key FROM subscriptions.reservations WHERE tenant_id = $1 ORDER BY idempotency_key",
    )
    .bind(ws.as_uuid())
    .fetch_all(&admin)
    .await
    .unwrap();
    assert_eq!(kept, ["a", "c"], "the refused item left nothing");
    let audited: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT audit->'after'->>'idempotency_key', actor_id, request_id FROM subscriptions.outbox \
         WHERE tenant_id = $1 AND audit->>'table' = 'reservations' ORDER BY seq",
    )
    .bind(ws.as_uuid())
    .fetch_all(&admin)
    .await
    .unwrap();
    let want = |k: &str, i: usize| (k.to_owned(), format!("usr-{i}"), format!("req-{i}"));
    assert_eq!(audited, [want("a", 0), want("c", 3)]);
}

/// A video job that failed gives back its hold and the month's video it counted, once: the
/// settlement names the feature use (`feature`, `feature_use_key`) next to the reservation.
#[tokio::test]
async fn a_failed_video_gives_back_its_credits_and_its_monthly_count_once() {
    use prost::Message;
    let svc = start().await;
    let ws = WorkspaceId::new();
    let token = svc.owner(ws);
    let mut c = svc.client();
    let r = c.reserve(authed(reserve(10, "video:v1"), &token)).await.unwrap().into_inner();
    let use_video =
        pb::UseEntitlementRequest { feature: "videos_per_month".into(), idempotency_key: "video:v1".into() };
    assert_eq!(c.use_entitlement(authed(use_video, &token)).await.unwrap().into_inner().used, 1);
    let used = || {
        let req = authed(pb::EntitlementRequest { feature: "videos_per_month".into() }, &token);
        let mut c = svc.client();
        async move { c.check_entitlement(req).await.unwrap().into_inner().used }
    };
    let bus = svc.nats.bus().await;
    bus.ensure_service_stream("video").await.unwrap();
    let publish = |copy: &'static str| {
        let job = nexus_proto::events::MeteredJobFinished {
            workspace_id: ws.to_string(),
            reservation_id: r.id.clone(),
            succeeded: false,
            credits: 0,
            job: "video.render:vid_test".into(),
            feature: "videos_per_month".into(),
            feature_use_key: "video:v1".into(),
        };
        let env = nexus_proto::events::Envelope {
            event_id: uuid::Uuid::now_v7().to_string(),
            tenant_id: ws.to_string(),
            event_type: <nexus_proto::events::MeteredJobFinished as prost::Name>::full_name(),
            payload: job.encode_to_vec(),
            ..Default::default()
        };
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", copy);
        let (js, subject) = (bus.js.clone(), bus.subject("nexus.video.job.finished"));
        async move { js.publish_with_headers(subject, headers, env.encode_to_vec().into()).await.unwrap().await.unwrap() }
    };
    publish("fail-1").await;
    assert!(eventually(Duration::from_secs(15), || async { used().await == 0 }).await, "the month's video given back");
    let b = svc.balance(&token).await;
    assert_eq!((b.available, b.reserved), (50, 0), "the hold given back");
    // Another video counts; the same settlement delivered again (another event id) must not
    // give back that one.
    let again = pb::UseEntitlementRequest { feature: "videos_per_month".into(), idempotency_key: "video:v2".into() };
    assert_eq!(c.use_entitlement(authed(again, &token)).await.unwrap().into_inner().used, 1);
    publish("fail-2").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(used().await, 1, "given back once only");
}
