//! Backups through `deploy/backup/nexus-backup.sh`, as the nightly CronJob runs it: a database
//! the real binaries populated is dumped, encrypted, restored into a fresh database and compared
//! table by table (rows and a checksum of their contents, RLS flags and policies); a backup with
//! one modified byte, or read with another key, restores nothing.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use nexus_testkit::{TestDb, TestNats};
use sqlx::PgPool;

use crate::credits::{Fleet, token};
use crate::support::{free_port, migrate, service_env};

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/backup/nexus-backup.sh")
}

fn admin_url(db: &TestDb) -> String {
    db.config("auth").admin_url.expose().to_owned()
}

/// Runs the script with the backup environment; returns (success, stdout + stderr).
fn run(dest: &Path, key: &Path, source: &str, args: &[&str]) -> (bool, String) {
    let out = Command::new("bash")
        .arg(script())
        .args(args)
        .env("NEXUS_BACKUP_DATABASE_URL", source)
        .env("NEXUS_BACKUP_KEY_FILE", key)
        .env("NEXUS_BACKUP_DEST", dest)
        .output()
        .expect("run nexus-backup.sh");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

/// Every table of the services' schemas: its row count and an MD5 of its rows in a fixed order;
/// then each table's RLS flags and its policies.
async fn fingerprint(pool: &PgPool) -> BTreeMap<String, String> {
    let tables: Vec<(String, String, bool, bool)> = sqlx::query_as(
        "SELECT n.nspname::text, c.relname::text, c.relrowsecurity, c.relforcerowsecurity
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
         ORDER BY 1, 2",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    let mut out = BTreeMap::new();
    for (schema, table, rls, forced) in tables {
        let q = format!(
            "SELECT count(*)::text || ':' || coalesce(md5(string_agg(t::text, E'\\n' ORDER BY t::text)), '-')
             FROM \"{schema}\".\"{table}\" t"
        );
        let rows: String = sqlx::query_scalar(sqlx::AssertSqlSafe(q)).fetch_one(pool).await.unwrap();
        out.insert(format!("{schema}.{table}"), format!("{rows} rls={rls} forced={forced}"));
    }
    let policies: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT schemaname || '.' || tablename, policyname::text, coalesce(qual, '') || '|' || coalesce(with_check, '')
         FROM pg_policies ORDER BY 1, 2",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    for (table, name, rule) in policies {
        out.insert(format!("policy {table} {name}"), rule);
    }
    out
}

async fn user_tables(pool: &PgPool) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')",
    )
    .fetch_one(pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn a_backup_restores_every_table_exactly_and_a_damaged_one_restores_nothing() {
    // A database as the product leaves it: users signed up, copy generated and charged, events in
    // the outbox, the audit trail; and every other service's schema migrated.
    let fleet = Fleet::start(Vec::new()).await;
    for _ in 0..3 {
        let session = fleet.signup().await;
        let t = token(&session);
        for i in 0..2 {
            let r = fleet.generate(&t, &format!("backup-{i}-{}", uuid::Uuid::new_v4())).await;
            assert_eq!(r.status(), 201, "generation");
        }
        fleet.settled(&t).await;
    }
    let db = fleet.stop();
    let nats = TestNats::new();
    for svc in ["video", "messaging", "ads", "commerce", "analytics"] {
        migrate(&format!("nexus-{svc}"), &service_env(&db, &nats, svc, free_port(), free_port()));
    }
    let source = db.admin_pool().await;
    let before = fingerprint(&source).await;
    let filled = before.iter().filter(|(k, v)| !k.starts_with("policy") && !v.starts_with("0:")).count();
    assert!(before.len() > 100 && filled >= 10, "a populated database: {} tables, {filled} with rows", before.len());

    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("backups");
    let key = dir.path().join("key");
    std::fs::write(&key, "a backup passphrase of more than 32 characters").unwrap();
    let (ok, log) = run(&dest, &key, &admin_url(&db), &["backup"]);
    assert!(ok, "backup: {log}");
    let (ok, names) = run(&dest, &key, &admin_url(&db), &["list"]);
    assert!(ok, "list: {names}");
    let name = names.lines().next().expect("one backup listed").to_owned();
    let dump = dest.join(format!("nexus-{name}.dump.gpg"));
    let raw = std::fs::read(&dump).unwrap();
    assert!(
        !raw.windows(9).any(|w| w == b"nexus_aut") && !raw.windows(5).any(|w| w == b"users"),
        "the stored file is encrypted"
    );
    let (ok, log) = run(&dest, &key, &admin_url(&db), &["verify", &name]);
    assert!(ok, "verify: {log}");

    // Restored into a fresh database: every table, row and policy as it was.
    let target = TestDb::new().await;
    let (ok, log) = run(&dest, &key, &admin_url(&db), &["restore", &name, &admin_url(&target)]);
    assert!(ok, "restore: {log}");
    let restored = target.admin_pool().await;
    let after = fingerprint(&restored).await;
    let differing: Vec<_> = before.iter().filter(|(k, v)| after.get(*k) != Some(*v)).map(|(k, _)| k.clone()).collect();
    assert!(differing.is_empty(), "tables that differ after the restore: {differing:?}");
    assert_eq!(before.len(), after.len(), "the restore has exactly the source's tables");

    // The wrong key: nothing restored.
    let other_key = dir.path().join("other");
    std::fs::write(&other_key, "another passphrase, also long enough to pass").unwrap();
    let empty = TestDb::new().await;
    let (ok, log) = run(&dest, &other_key, &admin_url(&db), &["restore", &name, &admin_url(&empty)]);
    assert!(!ok, "a restore with another key must fail: {log}");
    assert_eq!(user_tables(&empty.admin_pool().await).await, 0, "nothing restored");

    // One byte changed in the middle of the file: the integrity check refuses it, and nothing
    // reaches the target.
    let mut damaged = raw.clone();
    let at = damaged.len() / 2;
    damaged[at] ^= 0x01;
    std::fs::write(&dump, &damaged).unwrap();
    let (ok, log) = run(&dest, &key, &admin_url(&db), &["verify", &name]);
    assert!(!ok, "verify of a damaged backup must fail: {log}");
    let (ok, log) = run(&dest, &key, &admin_url(&db), &["restore", &name, &admin_url(&empty)]);
    assert!(!ok && log.contains("nothing restored"), "restore of a damaged backup must fail: {log}");
    assert_eq!(user_tables(&empty.admin_pool().await).await, 0, "nothing restored");
}

#[tokio::test]
async fn backups_past_retention_are_pruned_and_a_short_key_is_refused() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("b");
    std::fs::create_dir_all(&dest).unwrap();
    // Two old backups (by the stamp in their names) and one recent.
    for stamp in ["20200101T000000Z", "20200102T000000Z"] {
        for suffix in ["dump.gpg", "roles.sql.gpg"] {
            std::fs::write(dest.join(format!("nexus-{stamp}.{suffix}")), b"old").unwrap();
        }
    }
    let short = dir.path().join("short");
    std::fs::write(&short, "too short").unwrap();
    let (ok, log) = run(&dest, &short, &admin_url(&db), &["backup"]);
    assert!(!ok && log.contains("at least 32"), "{log}");

    let key = dir.path().join("key");
    std::fs::write(&key, "a backup passphrase of more than 32 characters").unwrap();
    let (ok, log) = run(&dest, &key, &admin_url(&db), &["backup"]);
    assert!(ok, "{log}");
    assert!(log.contains("pruned: nexus-20200101T000000Z") && log.contains("pruned: nexus-20200102T000000Z"), "{log}");
    let left: Vec<String> =
        std::fs::read_dir(&dest).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    assert_eq!(left.len(), 2, "only the new backup's two objects remain: {left:?}");
    assert!(left.iter().all(|n| !n.contains("2020")), "{left:?}");
}
