//! Tenancy and storage: RLS on every table and every partition, partitions made ahead,
//! retention by purge and by dropping partitions, and the operators' fleet monitor.

use std::time::Duration;

use chrono::{Datelike, Utc};
use nexus_analytics::app::maintenance::Maintenance;
use nexus_kernel::WorkspaceId;
use nexus_platform::identity::Role;
use nexus_proto::nexus::analytics::v1 as pb;
use nexus_testkit::identity::authed;
use sqlx::Connection;

use crate::support::*;

#[tokio::test]
async fn every_table_and_partition_is_confined_to_its_workspace() {
    let svc = start().await;
    let admin = svc.admin().await;
    let tables = nexus_testkit::db::assert_tenant_tables_protected(&admin, "analytics").await;
    for t in ["analytics_events", "system_logs", "workspace_settings", "write_keys", "workspace_plans"] {
        assert!(tables.contains(&t.to_owned()), "{t} checked: {tables:?}");
    }
    let ws = WorkspaceId::new();
    let key = svc.write_key(ws).await;
    svc.client().track_batch(batch(&key, vec![event("x", "t-1", Utc::now(), "a")])).await.unwrap();
    svc.wait_for_events(ws, 1, 20).await;

    // Every partition has the tenant policy forced, so addressing one directly (bypassing the
    // parent's policy) still shows the service role nothing without a tenant.
    let parts: Vec<(String, bool, bool)> = sqlx::query_as(
        "SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
         WHERE i.inhparent = 'analytics.analytics_events'::regclass ORDER BY 1",
    )
    .fetch_all(&admin)
    .await
    .unwrap();
    assert!(parts.len() >= 5, "default + current month + 3 ahead: {parts:?}");
    assert!(parts.iter().all(|(_, rls, forced)| *rls && *forced), "{parts:?}");
    let mut role = sqlx::PgConnection::connect(svc.config.common.database.url.expose()).await.unwrap();
    for (part, _, _) in &parts {
        let seen: Result<i64, _> =
            sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM analytics.{part}")))
                .fetch_one(&mut role)
                .await;
        // Either no privilege at all (partitions made at run time) or no rows through RLS.
        assert!(seen.as_ref().map_or(true, |n| *n == 0), "{part}: {seen:?}");
    }
    let n: i64 =
        sqlx::query_scalar("SELECT count(*) FROM analytics.analytics_events").fetch_one(&mut role).await.unwrap();
    assert_eq!(n, 0, "the parent without a tenant shows nothing");
    // The service role cannot create or drop partitions itself, only through the owner's function.
    let ddl = sqlx::query("DROP TABLE analytics.analytics_events_default").execute(&mut role).await;
    assert!(ddl.is_err());
    let wipe = sqlx::query("SELECT analytics.analytics_drop_partitions_before(now())").execute(&mut role).await;
    assert!(wipe.is_err(), "the owner's function refuses to drop current data");
    // The audit trail is append-only (even for the table owner).
    sqlx::query(
        "INSERT INTO analytics.system_logs (id, tenant_id, at, action, service, resource_type) VALUES (gen_random_uuid(), $1, now(), 'insert', 't', 't.t')",
    )
    .bind(ws.as_uuid())
    .execute(&admin)
    .await
    .unwrap();
    let upd = sqlx::query("UPDATE analytics.system_logs SET actor = 'forged'").execute(&admin).await;
    assert!(upd.is_err(), "entries cannot be edited");
}

#[tokio::test]
async fn retention_purges_a_workspace_and_drops_partitions_past_every_retention() {
    let svc = start().await;
    let (short, long) = (WorkspaceId::new(), WorkspaceId::new());
    let now = Utc::now();
    for ws in [short, long] {
        let key = svc.write_key(ws).await;
        let events = vec![
            event("old", "o-1", now - chrono::Duration::days(3), "a"),
            event("old", "o-2", now - chrono::Duration::days(2), "a"),
            event("new", "n-1", now - chrono::Duration::hours(1), "a"),
        ];
        assert_eq!(svc.client().track_batch(batch(&key, events)).await.unwrap().into_inner().accepted, 3);
        svc.wait_for_events(ws, 3, 20).await;
    }
    let owner = svc.owner(short);
    svc.client()
        .update_settings(authed(pb::UpdateSettingsRequest { time_zone: String::new(), retention_days: 1 }, &owner))
        .await
        .unwrap();
    // Events older than a workspace's retention are refused at the door, too.
    let key = svc.write_key(short).await;
    let e = svc
        .client()
        .track_batch(batch(&key, vec![event("old", "o-3", now - chrono::Duration::days(2), "a")]))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(e.results[0].code, "analytics.timestamp_out_of_range");

    // A partition for a month older than anyone keeps data.
    let app = svc.app().await;
    let old = now - chrono::Duration::days(800);
    app.ensure_partitions([old]).await.unwrap();
    let old_name = format!("analytics_events_{:04}{:02}", old.year(), old.month());
    let admin = svc.admin().await;
    let exists = |name: String| {
        let admin = admin.clone();
        async move {
            sqlx::query_scalar::<_, bool>("SELECT to_regclass('analytics.' || $1) IS NOT NULL")
                .bind(name)
                .fetch_one(&admin)
                .await
                .unwrap()
        }
    };
    assert!(exists(old_name.clone()).await);

    let m = Maintenance { app, cfg: svc.config.maintenance.clone(), default_retention_days: 395 };
    let report = m.once().await.unwrap();
    assert_eq!(report.rows_purged, 2);
    assert_eq!(report.partitions_dropped, 1);
    assert!(!exists(old_name).await);
    assert_eq!(svc.count_events(short).await, 1);
    assert_eq!(svc.count_events(long).await, 3, "the other workspace keeps its year");
    // The purge is in the workspace's audit trail.
    let trail = svc
        .client()
        .search_audit(authed(pb::AuditSearchRequest { actor: "system".into(), ..Default::default() }, &owner))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(trail.items.len(), 1);
    assert_eq!(trail.items[0].action, "retention.purge");
    assert_eq!(serde_json::from_str::<serde_json::Value>(&trail.items[0].after_json).unwrap()["deleted"], 2);
    // Running again finds nothing more.
    assert_eq!(m.once().await.unwrap(), nexus_analytics::app::maintenance::Report::default());
}

#[tokio::test]
async fn operators_see_each_services_health_rates_and_latency() {
    let operator_ws = WorkspaceId::new();
    let svc = start_with(Options {
        operator: Some(operator_ws),
        fleet: vec![("video", "http://127.0.0.1:1".to_owned())],
        ..Options::default()
    })
    .await;
    let operator = svc.token(operator_ws, Role::Admin);
    let mut c = svc.client();
    // Some traffic for the monitor to measure, including failures of the caller's own making.
    let reader = svc.token(WorkspaceId::new(), Role::Viewer);
    let mut status = None;
    for _ in 0..100 {
        for _ in 0..5 {
            c.get_settings(authed(pb::Empty {}, &reader)).await.unwrap();
        }
        let s = c.fleet_status(authed(pb::Empty {}, &operator)).await.unwrap().into_inner();
        let analytics = s.services.iter().find(|x| x.name == "analytics").unwrap().clone();
        // Readiness pings Postgres with a 1 s limit, so a loaded machine may briefly read
        // "degraded"; the figures are what this test is about.
        if analytics.status == "up"
            && analytics.request_rate.is_some_and(|r| r > 0.0)
            && analytics.p95_latency_ms.is_some()
        {
            status = Some(s);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let s = status.expect("two scrapes of analytics with traffic between them");
    let analytics = s.services.iter().find(|x| x.name == "analytics").unwrap();
    assert!(analytics.error_rate.is_some_and(|e| (0.0..=1.0).contains(&e)), "{analytics:?}");
    assert!(analytics.p95_latency_ms.is_some_and(|p| p > 0.0 && p < 10_000.0), "{analytics:?}");
    let video = s.services.iter().find(|x| x.name == "video").unwrap();
    assert_eq!(video.status, "down", "{video:?}");
    assert!(video.request_rate.is_none() && !video.error.is_empty(), "{video:?}");

    // Only operators: an admin of another workspace, or a viewer of the operators', is refused.
    for token in [svc.owner(WorkspaceId::new()), svc.token(operator_ws, Role::Viewer)] {
        let e = c.fleet_status(authed(pb::Empty {}, &token)).await.unwrap_err();
        assert_eq!((e.code(), code_of(&e).as_str()), (tonic::Code::PermissionDenied, "analytics.operator_required"));
    }
}
