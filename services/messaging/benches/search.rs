//! `make bench`: contact search over 1,000,000 contacts in one workspace (issue #12: p99 of a
//! tag + text query at most 50 ms). Runs the service's own search use case (tenant transaction,
//! RLS, identities and consents of the page) for each kind of query — tag + text over a mix of
//! common and rare words, text, tag, stage, custom field, a second page, no criteria — and prints
//! p50/p99 of each, the goal check of the tag + text mix, the same mix through the plain query
//! under RLS (what segment searches still run) as a baseline of the same run, and the plans of
//! a tag + text search as the service's role (the statement and, inside it, the search function).
//!
//! Needs Postgres (`make bench` starts it). Seeding takes about a minute.
#![allow(clippy::print_stdout)] // a benchmark reports on stdout

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nexus_kernel::{PageRequest, UserId, WorkspaceId};
use nexus_messaging::app::App;
use nexus_messaging::domain::contact::ContactQuery;
use nexus_messaging::domain::segment::Filter;
use nexus_platform::db::Keyset;
use nexus_platform::identity::{Principal, PrincipalKind, Role};
use nexus_testkit::TestDb;
use nexus_testkit::bench::{Goal, Result};
use serde_json::{Map, Value, json};
use tracing_subscriber::Layer as _;
use tracing_subscriber::layer::SubscriberExt as _;

const CONTACTS: i64 = 1_000_000;
const QUERIES: usize = 400;
/// Queries per kind other than the goal's mix.
const PER_KIND: usize = 100;
/// Queries of the baseline (a few hundred milliseconds each).
const BASELINE: usize = 40;
const GOAL: Duration = Duration::from_millis(50);

/// One workspace's book, written straight into the table with its indexes built afterwards (as
/// a restore would), so seeding a million rows takes a minute rather than an hour.
async fn seed(admin: &sqlx::PgPool, ws: WorkspaceId) {
    let indexes: Vec<(String, String)> = sqlx::query_as(
        "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'messaging' AND tablename = 'contacts' \
         AND indexname <> 'contacts_pkey'",
    )
    .fetch_all(admin)
    .await
    .unwrap();
    for (name, _) in &indexes {
        sqlx::query(sqlx::AssertSqlSafe(format!("DROP INDEX messaging.{name}"))).execute(admin).await.unwrap();
    }
    let mut conn = admin.acquire().await.unwrap();
    // The audit trigger would write a million audit rows: a restore does not audit either.
    sqlx::query("SET session_replication_role = replica").execute(&mut *conn).await.unwrap();
    sqlx::query(
        "INSERT INTO messaging.contacts (id, tenant_id, name, phone, email, language, tags, fields, stage, source, created_at) \
         SELECT gen_random_uuid(), $1, \
           (ARRAY['Ana','João','Maria','Pedro','Lucía','Carlos','Noa','Yosef','Fatima','Omar','Sofia','Diego'])[1 + i % 12] \
             || ' ' || (ARRAY['Silva','Santos','Oliveira','García','Martínez','Cohen','Levi','Haddad','Nasser','Souza', \
                              'Pereira','Costa','Rodríguez','López','Mizrahi','Khalil','Ferreira','Almeida'])[1 + (i / 12) % 18] \
             || ' ' || i, \
           '+5511' || lpad((900000000 + i)::text, 9, '0'), \
           'person' || i || '@mail' || (i % 500) || '.example.com', \
           (ARRAY['pt','es','en','he','ar'])[1 + i % 5], \
           CASE WHEN i % 20 = 0 THEN ARRAY['vip'] ELSE '{}' END \
             || CASE WHEN i % 3 = 0 THEN ARRAY['newsletter'] ELSE '{}' END \
             || CASE WHEN i % 1000 = 7 THEN ARRAY['wholesale'] ELSE '{}' END, \
           jsonb_build_object('tier', CASE WHEN i % 100 = 0 THEN 'Gold' ELSE 'Silver' END), \
           (ARRAY['lead','customer','subscriber','qualified'])[1 + i % 4], 'import', \
           now() - make_interval(secs => ($2 - i)) \
         FROM generate_series(1, $2) AS i",
    )
    .bind(ws.as_uuid())
    .bind(CONTACTS)
    .execute(&mut *conn)
    .await
    .unwrap();
    sqlx::query("SET session_replication_role = DEFAULT").execute(&mut *conn).await.unwrap();
    drop(conn);
    for (_, def) in &indexes {
        sqlx::query(sqlx::AssertSqlSafe(def.clone())).execute(admin).await.unwrap();
    }
    sqlx::query("ANALYZE messaging.contacts").execute(admin).await.unwrap();
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// p50 and p99 of `times`, printed as one line of the report.
fn report(kind: &str, mut times: Vec<Duration>, rows: usize) -> Duration {
    times.sort();
    let (p50, p99) = (percentile(&times, 0.5), percentile(&times, 0.99));
    println!("  {kind:<44} p50 {:>7.1} ms   p99 {:>7.1} ms   ({} queries, {rows} rows)", ms(p50), ms(p99), times.len());
    p99
}

/// Postgres notices (auto_explain's plans) as sqlx reports them, kept for printing.
#[derive(Clone, Default)]
struct Notices(Arc<Mutex<Vec<String>>>);

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Notices {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        struct Message(String);
        impl tracing::field::Visit for Message {
            fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
                if field.name() == "message" {
                    value.clone_into(&mut self.0);
                }
            }
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                if field.name() == "message" && self.0.is_empty() {
                    self.0 = format!("{value:?}");
                }
            }
        }
        let mut m = Message(String::new());
        event.record(&mut m);
        self.0.lock().unwrap().push(m.0);
    }
}

const NOTICE_TARGET: &str = "sqlx::postgres::notice";

#[tokio::main]
async fn main() {
    // Only Postgres notices are recorded (nothing else is enabled, so timing is not disturbed).
    let notices = Notices::default();
    let only_notices = tracing_subscriber::filter::filter_fn(|m| m.target() == NOTICE_TARGET);
    tracing::subscriber::set_global_default(
        tracing_subscriber::registry().with(notices.clone().with_filter(only_notices)),
    )
    .unwrap();

    let db = TestDb::new().await;
    let cfg = db.config("messaging");
    nexus_platform::db::migrate("messaging", &cfg, Some(&nexus_messaging::MIGRATIONS)).await.unwrap();
    let pool = nexus_platform::db::connect("messaging", &cfg).await.unwrap();
    let admin = db.admin_pool().await;
    let ws = WorkspaceId::new();
    let started = Instant::now();
    seed(&admin, ws).await;
    println!("seeded {CONTACTS} contacts in {:.1} s", started.elapsed().as_secs_f64());

    let app = App { pool };
    let p = Principal {
        user_id: UserId::new(),
        workspace_id: ws,
        role: Role::Owner,
        scopes: None,
        session_id: "bench".into(),
        kind: PrincipalKind::User,
        token_id: "bench".into(),
        expires_at: i64::MAX,
        locale: None,
        service: None,
    };
    app.define_field(&p, "tier", "Tier", "choice", &["Gold".into(), "Silver".into()]).await.unwrap();
    // Common words (a surname: ~1 in 18), rarer ones (a number's digits), a mailbox domain and
    // a phone fragment; with the 5 % tag `vip` and the 0.1 % tag `wholesale`.
    let words = ["silva", "cohen", "khalil", "ana silva", "12345", "99999", "mail42.ex", "11900123", "garcía"];
    let tags = ["vip", "wholesale"];
    let page = PageRequest::new(Some(20), None).unwrap();
    let q = |text: &str, tags: &[&str], stage: &str| {
        ContactQuery::new(text, &tags.iter().map(|t| (*t).to_owned()).collect::<Vec<_>>(), stage).unwrap()
    };
    let no_fields = Map::new();
    let gold: Map<String, Value> = json!({"tier": "Gold"}).as_object().cloned().unwrap();
    // Warm up the cache as a running service would be.
    for w in words {
        app.search_contacts(&p, q(w, &["vip"], ""), &no_fields, &page).await.unwrap();
    }

    // Every kind of query, each timed through the use case: (kind, query, fields, page).
    type Case = (ContactQuery, Map<String, Value>, PageRequest);
    let mix: Vec<Case> = (0..QUERIES)
        .map(|i| (q(words[i % words.len()], &[tags[i % tags.len()]], ""), no_fields.clone(), page.clone()))
        .collect();
    let second_pages: Vec<Case> = {
        let mut out = Vec::new();
        for (i, w) in words.iter().enumerate() {
            let query = q(w, &[tags[i % tags.len()]], "");
            let first = app.search_contacts(&p, query.clone(), &no_fields, &page).await.unwrap();
            if let Some(cursor) = first.next_cursor {
                out.push((query, no_fields.clone(), PageRequest::new(Some(20), Some(cursor)).unwrap()));
            }
        }
        out
    };
    let kinds: Vec<(&str, Vec<Case>)> = vec![
        ("text", words.iter().map(|w| (q(w, &[], ""), no_fields.clone(), page.clone())).collect()),
        ("tag", tags.iter().map(|t| (q("", &[t], ""), no_fields.clone(), page.clone())).collect()),
        ("two tags", vec![(q("", &["vip", "newsletter"], ""), no_fields.clone(), page.clone())]),
        ("stage", vec![(q("", &[], "customer"), no_fields.clone(), page.clone())]),
        ("stage + tag", vec![(q("", &["wholesale"], "qualified"), no_fields.clone(), page.clone())]),
        ("custom field (1 %)", vec![(q("", &[], ""), gold.clone(), page.clone())]),
        ("custom field + text", vec![(q("silva", &[], ""), gold.clone(), page.clone())]),
        ("tag + text, second page (keyset)", second_pages),
        ("no criteria (newest page)", vec![(q("", &[], ""), no_fields.clone(), page.clone())]),
    ];

    println!("contact search over {CONTACTS} contacts of one workspace, as the service role under RLS:");
    let run = |cases: Vec<Case>, n: usize| {
        let app = &app;
        let p = &p;
        async move {
            let (mut times, mut rows) = (Vec::with_capacity(n), 0usize);
            for i in 0..n {
                let (query, fields, page) = &cases[i % cases.len()];
                let t = Instant::now();
                let r = app.search_contacts(p, query.clone(), fields, page).await.unwrap();
                times.push(t.elapsed());
                rows += r.items.len();
            }
            (times, rows)
        }
    };
    let (times, rows) = run(mix, QUERIES).await;
    // Each pair of the mix alone too (the mix cycles through them), so a slow tail has a name.
    let mut by_pair: Vec<(Duration, String)> = (0..words.len() * tags.len())
        .map(|k| {
            let mut own: Vec<Duration> = times.iter().skip(k).step_by(words.len() * tags.len()).copied().collect();
            own.sort();
            (percentile(&own, 0.99), format!("'{}' + '{}'", words[k % words.len()], tags[k % tags.len()]))
        })
        .collect();
    by_pair.sort();
    let p99 = report("tag + text (mixed words and tags)", times, rows);
    let slowest: Vec<String> =
        by_pair.iter().rev().take(4).map(|(d, pair)| format!("{pair} {:.1} ms", ms(*d))).collect();
    println!("    slowest pairs by their own p99: {}", slowest.join(", "));
    for (kind, cases) in kinds {
        let (times, rows) = run(cases, PER_KIND).await;
        report(kind, times, rows);
    }

    // Baseline of the same run: the tag + text mix as one query under RLS, which is what a
    // search narrowed by a segment still runs (the segment here selects everyone).
    let (mut times, mut rows) = (Vec::with_capacity(BASELINE), 0usize);
    let keyset = Keyset::new(&page).unwrap();
    for i in 0..BASELINE {
        let mut query = q(words[i % words.len()], &[tags[i % tags.len()]], "");
        query.segment = Some(Filter::All(Vec::new()));
        let t = Instant::now();
        let mut tx = nexus_platform::db::tenant(&app.pool, ws).await.unwrap();
        let r = nexus_messaging::repo::contacts::search(&mut tx, ws, &query, &keyset).await.unwrap();
        nexus_platform::db::commit(tx).await.unwrap();
        times.push(t.elapsed());
        rows += r.items.len();
    }
    let baseline = report("baseline: tag + text without the function", times, rows);

    println!("tag + text p99 is {:.0}x faster than the baseline's p99", baseline.as_secs_f64() / p99.as_secs_f64());
    let name = format!("tag + text search p99 over {CONTACTS} contacts, under RLS");
    Result {
        bench: "messaging/search",
        name: &name,
        value: ms(p99),
        unit: "ms",
        baseline: None,
        goal: Goal::AtMost(ms(GOAL)),
    }
    .report();

    // The plans of a tag + text search as the service role runs it: auto_explain (loaded by the
    // superuser, then the session switches to the service role) reports the statement and the
    // function's query nested in it.
    let mut conn = admin.acquire().await.unwrap();
    for set in [
        "LOAD 'auto_explain'",
        "SET auto_explain.log_min_duration = 0",
        "SET auto_explain.log_analyze = on",
        "SET auto_explain.log_nested_statements = on",
        "SET auto_explain.log_level = notice",
        "SET ROLE nexus_messaging",
        "SET search_path = messaging",
    ] {
        sqlx::raw_sql(sqlx::AssertSqlSafe(set)).execute(&mut *conn).await.unwrap();
    }
    let (role, bypass): (String, bool) = sqlx::query_as(
        "SELECT current_user::text, rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user",
    )
    .fetch_one(&mut *conn)
    .await
    .unwrap();
    for (w, t) in [("silva", "vip"), ("12345", "wholesale")] {
        let mut tx = sqlx::Connection::begin(&mut *conn).await.unwrap();
        nexus_platform::db::enter_tenant(&mut tx, ws).await.unwrap();
        notices.0.lock().unwrap().clear();
        let found = nexus_messaging::repo::contacts::search(&mut tx, ws, &q(w, &[t], ""), &keyset).await.unwrap();
        tx.commit().await.unwrap();
        let plans: Vec<String> = notices
            .0
            .lock()
            .unwrap()
            .iter()
            .filter(|n| n.contains("search_contact_ids") || n.contains("c.search"))
            .cloned()
            .collect();
        println!(
            "plan of text '{w}' + tag '{t}' as role {role} (bypasses RLS: {bypass}), {} rows:\n  {}",
            found.items.len(),
            plans.join("\n").replace('\n', "\n  ")
        );
    }
    // The session's settings and role must not return to the pool.
    conn.detach();
}
