//! The tracking path: exactly-once storage through a crashing writer, per-event validation,
//! write keys.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use chrono::Utc;
use nexus_analytics::app::ingest::IngestWriter;
use nexus_kernel::WorkspaceId;
use nexus_platform::identity::Role;
use nexus_proto::nexus::analytics::v1 as pb;
use nexus_testkit::identity::authed;
use prost::Message;
use tokio_util::sync::CancellationToken;

use crate::support::*;

const TOTAL: usize = 100_000;
const BATCH: usize = 500;
const SENDERS: usize = 4;

#[tokio::test]
async fn a_hundred_thousand_events_through_a_crashing_writer_are_stored_exactly_once() {
    let started = Instant::now();
    let svc = start_with(Options { ingest: false, ..Options::default() }).await;
    let ws = WorkspaceId::new();
    let key = svc.write_key(ws).await;
    let app = svc.app().await;
    let bus = svc.bus().await;
    let writer = Arc::new(IngestWriter { app, bus: bus.clone(), cfg: svc.config.ingest.clone() });
    let spawn_writers = |w: &Arc<IngestWriter>| -> Vec<tokio::task::JoinHandle<()>> {
        (0..2).map(|_| tokio::spawn(w.clone().run(CancellationToken::new()))).collect()
    };
    let mut writers = spawn_writers(&writer);

    let base = Utc::now() - chrono::Duration::hours(1);
    let next = Arc::new(AtomicUsize::new(0));
    let sent = Arc::new(AtomicUsize::new(0));
    let mut senders = Vec::new();
    for _ in 0..SENDERS {
        let (next, sent, key, mut client) = (next.clone(), sent.clone(), key.clone(), svc.client());
        senders.push(tokio::spawn(async move {
            loop {
                let b = next.fetch_add(1, Ordering::Relaxed);
                if b * BATCH >= TOTAL {
                    return;
                }
                let events: Vec<pb::TrackEvent> = (b * BATCH..(b + 1) * BATCH)
                    .map(|i| {
                        let at = base + chrono::Duration::milliseconds(i as i64 * 17);
                        event("page.viewed", &format!("ev-{i}"), at, &format!("anon-{}", i % 5000))
                    })
                    .collect();
                // A sender retries a batch until it is acknowledged, as an SDK would.
                let mut tries = 0;
                loop {
                    match client.track_batch(batch(&key, events.clone())).await {
                        Ok(r) => {
                            let r = r.into_inner();
                            assert_eq!(r.rejected, 0, "{:?}", r.results.iter().find(|x| x.status == "rejected"));
                            break;
                        }
                        Err(e) => {
                            tries += 1;
                            assert!(tries < 50, "batch {b} keeps failing: {e:?}");
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                    }
                }
                sent.fetch_add(BATCH, Ordering::Relaxed);
            }
        }));
    }

    // Crash the writer twice while senders are still sending, restarting it each time.
    let mut crashes = Vec::new();
    for (crash_at, restart_at) in [(TOTAL / 5, TOTAL / 3), (TOTAL / 2, 2 * TOTAL / 3)] {
        while sent.load(Ordering::Relaxed) < crash_at {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        for w in writers.drain(..) {
            w.abort();
            let _ = w.await;
        }
        crashes.push(sent.load(Ordering::Relaxed));
        while sent.load(Ordering::Relaxed) < restart_at {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        writers = spawn_writers(&writer);
    }
    for s in senders {
        s.await.unwrap();
    }
    assert!(crashes.iter().all(|&c| c < TOTAL), "the writer crashed while events were still arriving: {crashes:?}");

    svc.wait_for_events(ws, TOTAL as i64, 90).await;
    let admin = svc.admin().await;
    let distinct: i64 = sqlx::query_scalar(
        "SELECT count(DISTINCT client_event_id) FROM analytics.analytics_events WHERE tenant_id = $1",
    )
    .bind(ws.as_uuid())
    .fetch_one(&admin)
    .await
    .unwrap();
    assert_eq!(distinct, TOTAL as i64, "no duplicates");
    let expected: Vec<String> = (0..TOTAL).map(|i| format!("ev-{i}")).collect();
    let missing: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM unnest($1::text[]) AS want(id) WHERE NOT EXISTS \
           (SELECT 1 FROM analytics.analytics_events e WHERE e.tenant_id = $2 AND e.client_event_id = want.id)",
    )
    .bind(&expected)
    .bind(ws.as_uuid())
    .fetch_one(&admin)
    .await
    .unwrap();
    assert_eq!(missing, 0, "none lost");

    // A client replaying a batch gets "duplicate" and nothing is stored twice.
    let replay: Vec<pb::TrackEvent> = (0..BATCH)
        .map(|i| {
            let at = base + chrono::Duration::milliseconds(i as i64 * 17);
            event("page.viewed", &format!("ev-{i}"), at, &format!("anon-{}", i % 5000))
        })
        .collect();
    let r = svc.client().track_batch(batch(&key, replay)).await.unwrap().into_inner();
    assert!(r.results.iter().all(|x| x.status == "duplicate"), "{:?}", &r.results[..2]);

    // A replay past JetStream's duplicate window (another message id, same event) reaches the
    // writer and is dropped by the table's unique key.
    let again = pb::IngestedEvent {
        tenant_id: ws.as_uuid().to_string(),
        client_event_id: "ev-7".into(),
        name: "page.viewed".into(),
        occurred_at: Some(prost_types_ts(base + chrono::Duration::milliseconds(7 * 17))),
        received_at: Some(prost_types_ts(Utc::now())),
        anonymous_id: "anon-7".into(),
        properties_json: "{}".into(),
        ..Default::default()
    };
    let subject = bus.subject(&format!("nexus.ingest.analytics.{}", ws.as_uuid().simple()));
    bus.js
        .publish(subject, pb::IngestBatch { events: vec![again] }.encode_to_vec().into())
        .await
        .unwrap()
        .await
        .unwrap();
    // And a client that re-sends an event without its timestamp (so it gets a new time of
    // receipt) is recognised by the id alone.
    let mut no_time = event("page.viewed", "ev-8", Utc::now(), "anon-8");
    no_time.timestamp = String::new();
    let r = svc.client().track_batch(batch(&key, vec![no_time])).await.unwrap().into_inner();
    assert_eq!(r.accepted, 1);
    let stream = nexus_analytics::app::ingest::ingest_stream(&bus).await.unwrap();
    let drained = nexus_testkit::eventually(Duration::from_secs(20), || {
        let mut s = stream.clone();
        async move { s.info().await.is_ok_and(|i| i.state.messages == 0) }
    })
    .await;
    assert!(drained, "the writer consumed the replay");
    assert_eq!(svc.count_events(ws).await, TOTAL as i64);
    for w in writers {
        w.abort();
    }
    eprintln!("100k exactly-once test took {:?}", started.elapsed());
}

fn prost_types_ts(t: chrono::DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp { seconds: t.timestamp(), nanos: t.timestamp_subsec_nanos() as i32 }
}

#[tokio::test]
async fn a_partly_invalid_batch_keeps_the_valid_events_and_names_each_invalid_one() {
    let svc = start().await;
    let ws = WorkspaceId::new();
    let key = svc.write_key(ws).await;
    let now = Utc::now();
    let mut no_name = event("", "b-2", now, "a");
    no_name.name = "  ".into();
    let mut bad_time = event("x", "b-3", now, "a");
    bad_time.timestamp = "31/12/2025".into();
    let mut no_identity = event("x", "b-5", now, "");
    no_identity.user_id = String::new();
    let mut bad_money = event("order.paid", "b-6", now, "a");
    bad_money.revenue = Some(nexus_proto::common::Money { amount_minor: 100, currency: "XXX".into() });
    let mut future = event("x", "b-7", now + chrono::Duration::days(2), "a");
    future.user_id = "usr_1".into();
    let mut bad_props = event("x", "b-8", now, "a");
    bad_props.properties_json = "[1,2]".into();
    let events = vec![
        event("signup.started", "b-1", now, "a"),
        no_name,
        bad_time,
        event("signup.finished", "b-4", now, "a"),
        no_identity,
        bad_money,
        future,
        bad_props,
    ];
    let r = svc.client().track_batch(batch(&key, events)).await.unwrap().into_inner();
    assert_eq!((r.accepted, r.rejected), (2, 6));
    let got: Vec<(u32, &str, &str, &str)> =
        r.results.iter().map(|x| (x.index, x.status.as_str(), x.code.as_str(), x.field.as_str())).collect();
    assert_eq!(
        got,
        vec![
            (0, "accepted", "", ""),
            (1, "rejected", "analytics.event_name_required", "name"),
            (2, "rejected", "analytics.invalid_timestamp", "timestamp"),
            (3, "accepted", "", ""),
            (4, "rejected", "analytics.identity_required", "anonymous_id"),
            (5, "rejected", "money.unsupported_currency", "revenue.currency"),
            (6, "rejected", "analytics.timestamp_out_of_range", "timestamp"),
            (7, "rejected", "analytics.invalid_properties", "properties"),
        ]
    );
    assert_eq!(r.results[5].params.get("currency").map(String::as_str), Some("XXX"));
    svc.wait_for_events(ws, 2, 20).await;
}

#[tokio::test]
async fn write_keys_are_checked_rotated_and_bound_to_origins() {
    let svc = start().await;
    let ws = WorkspaceId::new();
    let key = svc.write_key(ws).await;
    assert!(key.starts_with("wk_"));
    assert_eq!(svc.write_key(ws).await, key, "the same key until rotated");
    let ok = || vec![event("x", &uuid::Uuid::now_v7().to_string(), Utc::now(), "a")];
    let mut c = svc.client();

    for (k, code) in [
        ("", "analytics.write_key_required"),
        ("wk_nope", "analytics.invalid_write_key"),
        ("Bearer x", "analytics.invalid_write_key"),
    ] {
        let e = c.track_batch(batch(k, ok())).await.unwrap_err();
        assert_eq!((e.code(), code_of(&e).as_str()), (tonic::Code::Unauthenticated, code));
    }
    // A user token is not a write key.
    let token = svc.owner(ws);
    let e = c.track_batch(batch(&token, ok())).await.unwrap_err();
    assert_eq!(code_of(&e), "analytics.invalid_write_key");

    let too_many: Vec<_> = (0..501).map(|i| event("x", &format!("big-{i}"), Utc::now(), "a")).collect();
    let e = c.track_batch(batch(&key, too_many)).await.unwrap_err();
    assert_eq!(code_of(&e), "analytics.batch_too_large");
    let e = c.track_batch(batch(&key, vec![])).await.unwrap_err();
    assert_eq!(code_of(&e), "analytics.batch_empty");

    // Only admins rotate; viewers cannot even read the key.
    let member = svc.token(ws, Role::Member);
    let e = c.rotate_write_key(authed(pb::RotateWriteKeyRequest::default(), &member)).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::PermissionDenied);
    let e = c.get_write_key(authed(pb::Empty {}, &svc.token(ws, Role::Viewer))).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::PermissionDenied);
    let e = c
        .rotate_write_key(authed(pb::RotateWriteKeyRequest { allowed_origins: vec!["not an origin".into()] }, &token))
        .await
        .unwrap_err();
    assert_eq!(code_of(&e), "analytics.invalid_origin");

    let rotated = c
        .rotate_write_key(authed(
            pb::RotateWriteKeyRequest { allowed_origins: vec!["https://shop.example.com".into()] },
            &token,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_ne!(rotated.key, key);
    let e = c.track_batch(batch(&key, ok())).await.unwrap_err();
    assert_eq!(code_of(&e), "analytics.invalid_write_key", "the old key is dead");
    let from =
        |origin: &str| pb::TrackBatchRequest { write_key: rotated.key.clone(), origin: origin.into(), events: ok() };
    let e = c.track_batch(from("https://evil.example")).await.unwrap_err();
    assert_eq!((e.code(), code_of(&e).as_str()), (tonic::Code::PermissionDenied, "analytics.origin_not_allowed"));
    assert_eq!(c.track_batch(from("https://shop.example.com")).await.unwrap().into_inner().accepted, 1);
    // Server-side senders have no Origin: allowed.
    assert_eq!(c.track_batch(from("")).await.unwrap().into_inner().accepted, 1);
    let single = c
        .track(pb::TrackRequest { write_key: rotated.key.clone(), origin: String::new(), event: Some(ok().remove(0)) })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(single.status, "accepted");
    svc.wait_for_events(ws, 3, 20).await;
}

#[tokio::test]
async fn a_message_the_database_refuses_is_dead_lettered_and_its_batch_still_stored() {
    let svc = start().await;
    let ws = WorkspaceId::new();
    // The key creates the workspace's settings; the ingest stream exists once the writer runs.
    let key = svc.write_key(ws).await;
    svc.client().track_batch(batch(&key, vec![event("first", "first", Utc::now(), "a")])).await.unwrap();
    svc.wait_for_events(ws, 1, 20).await;
    let bus = svc.bus().await;
    let subject = bus.subject(&format!("nexus.ingest.analytics.{}", ws.as_uuid().simple()));
    let mut batch_of_eleven = Vec::new();
    for i in 0..11 {
        let e = pb::IngestedEvent {
            tenant_id: ws.as_uuid().to_string(),
            client_event_id: format!("direct-{i}"),
            name: "direct".into(),
            occurred_at: Some(prost_types_ts(Utc::now())),
            received_at: Some(prost_types_ts(Utc::now())),
            anonymous_id: "a".into(),
            properties_json: "{}".into(),
            // Postgres refuses this one for good.
            ip: if i == 5 { "not-an-address".into() } else { String::new() },
            ..Default::default()
        };
        batch_of_eleven.push(e);
    }
    // Ten good events and a bad one in one message, as one request's events travel.
    let msg = pb::IngestBatch { events: batch_of_eleven }.encode_to_vec();
    bus.js.publish(subject.clone(), msg.into()).await.unwrap().await.unwrap();
    svc.wait_for_events(ws, 11, 30).await;
    let dlq = bus.js.get_stream(bus.stream_name("dlq")).await.unwrap();
    let parked = dlq.get_last_raw_message_by_subject(&bus.dlq_subject("analytics-ingest")).await.unwrap();
    let parked = pb::IngestBatch::decode(parked.payload.as_ref()).unwrap();
    assert_eq!(parked.events.len(), 1);
    assert_eq!(parked.events[0].client_event_id, "direct-5");
}
