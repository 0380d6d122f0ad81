//! A fresh database per test, dropped afterwards.

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection, PgPool};

use nexus_platform::config::{DatabaseConfig, Secret};

pub struct TestDb {
    pub name: String,
    admin: PgConnectOptions,
}

impl TestDb {
    /// Creates an empty database `nexus_t_<random>`.
    pub async fn new() -> TestDb {
        let admin = PgConnectOptions::from_str(&crate::admin_url()).expect("NEXUS_TEST_DATABASE_URL");
        let name = format!("nexus_t_{}", &uuid::Uuid::new_v4().simple().to_string()[..16]);
        let mut conn =
            admin.clone().database("postgres").connect().await.expect("postgres reachable for tests (run `make test`)");
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .expect("create test database");
        let _ = conn.close().await;
        TestDb { name, admin }
    }

    fn url_for(&self, user: &str) -> String {
        let host = self.admin.get_host();
        let port = self.admin.get_port();
        format!("postgres://{user}@{host}:{port}/{}", self.name)
    }

    /// Config for `service` in this database: runtime as `nexus_<service>`, migrations as admin.
    pub fn config(&self, service: &str) -> DatabaseConfig {
        let admin_user = self.admin.get_username().to_owned();
        DatabaseConfig {
            url: Secret::new(self.url_for(&format!("nexus_{service}"))),
            admin_url: Secret::new(self.url_for(&admin_user)),
            schema: String::new(),
            role: String::new(),
            role_password: Secret::default(),
            max_connections: 8,
            min_connections: 0,
            acquire_timeout: Duration::from_secs(5),
            statement_timeout: Duration::from_secs(30),
        }
    }

    /// `pg_dump` of the whole database (every schema, schema and data, plain SQL): what a backup
    /// or a stolen dump would show.
    pub fn dump(&self) -> String {
        let out = std::process::Command::new("pg_dump")
            .args(["--no-owner", "--no-privileges", "--dbname"])
            .arg(self.url_for(self.admin.get_username()))
            .output()
            .expect("pg_dump (installed with Postgres) on PATH");
        assert!(out.status.success(), "pg_dump: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).expect("pg_dump writes UTF-8")
    }

    /// Fails if a dump of this database shows any of `secrets` in clear, or base64- or
    /// hex-encoded (an encoding is not encryption). Returns the dump's size, so callers can see
    /// it held data at all.
    pub fn assert_dump_hides(&self, secrets: &[&str]) -> usize {
        use base64::Engine as _;
        let dump = self.dump();
        for secret in secrets {
            assert!(secret.len() >= 8, "too short to search for meaningfully: {secret:?}");
            let forms = [
                (*secret).to_owned(),
                base64::engine::general_purpose::STANDARD.encode(secret),
                base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret),
                hex::encode(secret),
            ];
            for form in forms {
                assert!(!dump.contains(&form), "the database dump shows a secret ({} chars) as {form:?}", secret.len());
            }
        }
        dump.len()
    }

    /// A superuser pool on this database, for assertions that must see past RLS.
    pub async fn admin_pool(&self) -> PgPool {
        PgPool::connect(&self.url_for(self.admin.get_username())).await.expect("admin pool")
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let name = self.name.clone();
        let admin = self.admin.clone();
        // Drop runs outside async context; use a short-lived runtime on a plain thread.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
            rt.block_on(async move {
                let mut conn = admin.database("postgres").connect().await.ok()?;
                let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")))
                    .execute(&mut conn)
                    .await;
                let _ = conn.close().await;
                Some(())
            })
        })
        .join();
    }
}

/// Fails unless every table of `schema` with a `tenant_id` column has RLS enabled and forced with
/// the platform's tenant policy and the audit trigger. Each service's tests call this. The
/// platform's own outbox is exempt: the relay reads every tenant's events by design.
pub async fn assert_tenant_tables_protected(pool: &PgPool, schema: &str) -> Vec<String> {
    let rows: Vec<(String, bool, bool, bool, bool)> = sqlx::query_as(
        "SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity, \
                EXISTS (SELECT 1 FROM pg_policy p WHERE p.polrelid = c.oid AND p.polname = 'tenant_isolation'), \
                EXISTS (SELECT 1 FROM pg_trigger t WHERE t.tgrelid = c.oid AND t.tgname = 'audit_row') \
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') \
           AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped) \
           AND NOT c.relispartition \
           AND c.relname NOT IN ('outbox', 'inbox') \
         ORDER BY 1",
    )
    .bind(schema)
    .fetch_all(pool)
    .await
    .expect("catalog query");
    for (table, rls, forced, policy, audit) in &rows {
        assert!(
            *rls && *forced && *policy && *audit,
            "{schema}.{table}: rls={rls} forced={forced} policy={policy} audit={audit}"
        );
    }
    rows.into_iter().map(|r| r.0).collect()
}
