//! Postgres: the pool (as the service's own login role), migrations (as the admin role) and
//! tenant transactions that set `nexus.tenant_id` so Row Level Security confines every query to
//! one workspace.

use std::str::FromStr;

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, PgConnection, PgPool, Postgres, Transaction};

use nexus_kernel::TenantId;

use crate::config::{DatabaseConfig, redact_url};
use crate::context::RequestContext;

/// Platform migrations (outbox, inbox, audit, tenant-table helper), applied to every schema.
static PLATFORM_MIGRATIONS: Migrator = sqlx::migrate!("./migrations");

/// Where a service lives in Postgres.
#[derive(Debug, Clone)]
pub struct SchemaSpec {
    pub schema: String,
    pub role: String,
}

impl SchemaSpec {
    pub fn for_service(service: &str, cfg: &DatabaseConfig) -> Self {
        let schema = if cfg.schema.is_empty() { service.to_owned() } else { cfg.schema.clone() };
        let role = if cfg.role.is_empty() { format!("nexus_{service}") } else { cfg.role.clone() };
        Self { schema, role }
    }
}

fn check_ident(name: &str) -> Result<(), sqlx::Error> {
    let ok = !name.is_empty()
        && name.len() < 63
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        && !name.as_bytes()[0].is_ascii_digit();
    if ok { Ok(()) } else { Err(sqlx::Error::Configuration(format!("invalid identifier {name:?}").into())) }
}

/// Opens the runtime pool: the service role, `search_path` = the service schema.
pub async fn connect(service: &str, cfg: &DatabaseConfig) -> Result<PgPool, sqlx::Error> {
    let spec = SchemaSpec::for_service(service, cfg);
    check_ident(&spec.schema)?;
    let opts = PgConnectOptions::from_str(cfg.url.expose())?
        .application_name(&format!("nexus-{service}"))
        .options([
            ("search_path", spec.schema.as_str()),
            ("statement_timeout", &format!("{}", cfg.statement_timeout.as_millis())),
        ])
        .log_statements(tracing::log::LevelFilter::Debug);
    tracing::info!(url = %redact_url(cfg.url.expose()), schema = %spec.schema, "connecting to postgres");
    // Lazy: the process starts (and reports not-ready) while Postgres is still coming up.
    Ok(PgPoolOptions::new()
        .max_connections(cfg.max_connections)
        .min_connections(cfg.min_connections)
        .acquire_timeout(cfg.acquire_timeout)
        // sqlx pings every connection it hands out by default: one more round trip per
        // transaction, a fifth of a short read's. Only a connection that sat idle may have been
        // dropped by Postgres or a proxy meanwhile, so only such a one is checked first.
        .test_before_acquire(false)
        .before_acquire(|conn, meta| {
            Box::pin(async move {
                if meta.idle_for > IDLE_BEFORE_PING {
                    conn.ping().await?;
                }
                Ok(true)
            })
        })
        .connect_lazy_with(opts))
}

/// A pooled connection idle for longer than this is pinged before it is handed out.
const IDLE_BEFORE_PING: std::time::Duration = std::time::Duration::from_secs(10);

/// Creates the database if missing, then the schema and login role, applies the platform
/// migrations and the service's own, and grants the role what it needs (but never ownership, so
/// RLS binds it). Safe to run concurrently and repeatedly.
pub async fn migrate(
    service: &str,
    cfg: &DatabaseConfig,
    service_migrations: Option<&Migrator>,
) -> Result<(), sqlx::Error> {
    let spec = SchemaSpec::for_service(service, cfg);
    check_ident(&spec.schema)?;
    check_ident(&spec.role)?;
    let admin = PgConnectOptions::from_str(cfg.admin_url.expose())?;
    let database = admin.get_database().unwrap_or("postgres").to_owned();
    ensure_database(&admin, &database).await?;

    let mut conn = admin.clone().connect().await?;
    let (schema, role) = (&spec.schema, &spec.role);
    exec(&mut conn, format!("CREATE SCHEMA IF NOT EXISTS {schema}")).await?;
    // Roles are cluster-wide; parallel migrations (tests) may race to create the same one.
    exec(
        &mut conn,
        format!(
            "DO $$ BEGIN CREATE ROLE {role} LOGIN; \
             EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$"
        ),
    )
    .await?;
    if !cfg.role_password.is_empty() {
        sqlx::query("SELECT set_config('nexus.tmp_password', $1, false)")
            .bind(cfg.role_password.expose())
            .execute(&mut conn)
            .await?;
        exec(
            &mut conn,
            format!("DO $$ BEGIN EXECUTE format('ALTER ROLE {role} PASSWORD %L', current_setting('nexus.tmp_password')); END $$"),
        )
        .await?;
        exec(&mut conn, "RESET nexus.tmp_password".to_owned()).await?;
    }
    exec(&mut conn, format!("GRANT CONNECT ON DATABASE \"{database}\" TO {role}")).await?;
    exec(&mut conn, format!("GRANT USAGE ON SCHEMA {schema} TO {role}")).await?;
    exec(&mut conn, format!("SET search_path TO {schema}")).await?;

    let mut platform = clone_migrator(&PLATFORM_MIGRATIONS);
    platform.dangerous_set_table_name(format!("{schema}._platform_migrations"));
    platform.run(&mut conn).await.map_err(|e| sqlx::Error::Migrate(Box::new(e)))?;
    if let Some(m) = service_migrations {
        let mut own = clone_migrator(m);
        own.dangerous_set_table_name(format!("{schema}._service_migrations"));
        own.run(&mut conn).await.map_err(|e| sqlx::Error::Migrate(Box::new(e)))?;
    }

    for grant in [
        format!("GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {schema} TO {role}"),
        format!("GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {schema} TO {role}"),
        format!("GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA {schema} TO {role}"),
        // Migration bookkeeping: readable (a new pod waits until its migrations are applied),
        // never writable.
        format!("REVOKE ALL ON {schema}._platform_migrations FROM {role}"),
        format!("GRANT SELECT ON {schema}._platform_migrations TO {role}"),
    ] {
        exec(&mut conn, grant).await?;
    }
    if service_migrations.is_some() {
        exec(&mut conn, format!("REVOKE ALL ON {schema}._service_migrations FROM {role}")).await?;
        exec(&mut conn, format!("GRANT SELECT ON {schema}._service_migrations TO {role}")).await?;
    }
    conn.close().await?;
    tracing::info!(%schema, %role, "migrations applied");
    Ok(())
}

/// The migrations this binary embeds (the platform's and the service's) that its database does
/// not have yet, read as the service role. Empty: the schema is the one this binary expects.
pub async fn pending_migrations(
    service: &str,
    cfg: &DatabaseConfig,
    service_migrations: Option<&Migrator>,
) -> Result<Vec<String>, sqlx::Error> {
    let spec = SchemaSpec::for_service(service, cfg);
    check_ident(&spec.schema)?;
    let mut conn = PgConnectOptions::from_str(cfg.url.expose())?.connect().await?;
    let mut pending = Vec::new();
    let tables = [("_platform_migrations", Some(&PLATFORM_MIGRATIONS)), ("_service_migrations", service_migrations)];
    for (table, migrator) in tables {
        let Some(m) = migrator else { continue };
        let q = format!("SELECT version FROM {}.{table} WHERE success", spec.schema);
        let applied: Vec<i64> = match sqlx::query_scalar(sqlx::AssertSqlSafe(q)).fetch_all(&mut conn).await {
            Ok(v) => v,
            // No schema or table yet: nothing is applied.
            Err(sqlx::Error::Database(e)) if matches!(e.code().as_deref(), Some("42P01" | "3F000")) => Vec::new(),
            Err(e) => return Err(e),
        };
        pending.extend(
            m.iter()
                .filter(|x| x.migration_type.is_up_migration() && !applied.contains(&x.version))
                .map(|x| format!("{table} {} {}", x.version, x.description)),
        );
    }
    conn.close().await?;
    Ok(pending)
}

/// Runs DDL built from checked identifiers (schema and role names pass `check_ident`).
async fn exec(conn: &mut PgConnection, sql: String) -> Result<(), sqlx::Error> {
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(conn).await.map(|_| ())
}

fn clone_migrator(m: &Migrator) -> Migrator {
    Migrator {
        migrations: m.migrations.clone(),
        ignore_missing: m.ignore_missing,
        locking: m.locking,
        no_tx: m.no_tx,
        table_name: m.table_name.clone(),
        create_schemas: m.create_schemas.clone(),
    }
}

async fn ensure_database(admin: &PgConnectOptions, database: &str) -> Result<(), sqlx::Error> {
    let mut conn = admin.clone().database("postgres").connect().await?;
    let exists: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
        .bind(database)
        .fetch_one(&mut conn)
        .await?;
    if !exists {
        let create = format!("CREATE DATABASE \"{}\"", database.replace('"', "\"\""));
        let created = exec(&mut conn, create).await;
        if let Err(e) = created {
            // Lost a race with another migrator: fine.
            let raced = e.as_database_error().and_then(|d| d.code()).is_some_and(|c| c == "42P04" || c == "23505");
            if !raced {
                return Err(e);
            }
        }
    }
    conn.close().await
}

/// Sets the transaction-local settings RLS policies and the audit trigger read.
async fn apply_settings(
    conn: &mut PgConnection,
    tenant: Option<TenantId>,
    system: bool,
    ctx: &RequestContext,
) -> Result<(), sqlx::Error> {
    let (traceparent, tracestate) = crate::telemetry::current_traceparent();
    sqlx::query(
        "SELECT set_config('nexus.tenant_id', $1, true), set_config('nexus.system', $2, true), \
                set_config('nexus.actor_id', $3, true), set_config('nexus.request_id', $4, true), \
                set_config('nexus.client_ip', $5, true), set_config('nexus.traceparent', $6, true), \
                set_config('nexus.tracestate', $7, true)",
    )
    .bind(tenant.map(|t| t.as_uuid().to_string()).unwrap_or_default())
    .bind(if system { "on" } else { "" })
    .bind(ctx.actor_id.clone().unwrap_or_default())
    .bind(ctx.request_id_str())
    .bind(ctx.client_ip.map(|ip| ip.to_string()).unwrap_or_default())
    .bind(traceparent)
    .bind(tracestate)
    .execute(conn)
    .await?;
    Ok(())
}

/// Confines an open transaction to one tenant (e.g. a consumer's transaction, which starts as a
/// system transaction, once it knows the event's workspace).
pub async fn enter_tenant(conn: &mut PgConnection, tenant: TenantId) -> Result<(), sqlx::Error> {
    apply_settings(conn, Some(tenant), false, &RequestContext::current()).await
}

/// What [`begin_tenant`] records for the audit trail of the current request, in the order
/// actor id, request id, client IP, traceparent, tracestate — for SQL functions that set the
/// tenant themselves inside a single autocommitted statement (one round trip on hot paths).
pub fn audit_settings() -> [String; 5] {
    let ctx = RequestContext::current();
    let (traceparent, tracestate) = crate::telemetry::current_traceparent();
    [
        ctx.actor_id.clone().unwrap_or_default(),
        ctx.request_id_str().to_owned(),
        ctx.client_ip.map(|ip| ip.to_string()).unwrap_or_default(),
        traceparent,
        tracestate,
    ]
}

/// A transaction confined to one tenant by RLS, carrying the current request's actor and ids for
/// the audit trail.
pub async fn begin_tenant(pool: &PgPool, tenant: TenantId) -> Result<Transaction<'static, Postgres>, sqlx::Error> {
    pool.begin_with(sqlx::AssertSqlSafe(begin_statement(Some(tenant), false, &RequestContext::current()))).await
}

/// A transaction that sees every tenant. Only for platform sweeps (expiry, relays, consumers of
/// fleet-wide events); request handlers use [`begin_tenant`].
pub async fn begin_system(pool: &PgPool) -> Result<Transaction<'static, Postgres>, sqlx::Error> {
    pool.begin_with(sqlx::AssertSqlSafe(begin_statement(None, true, &RequestContext::current()))).await
}

/// `BEGIN` and the settings of [`apply_settings`] as one simple-protocol message, so opening a
/// tenant transaction costs one round trip to Postgres instead of two (the profile of
/// `make bench`'s reads showed every round trip paid twice over: in Postgres and in the socket
/// work of both sides). The simple protocol takes no parameters, so the values are written as
/// literals by [`push_literal`]; a failing setting leaves the transaction aborted and sqlx
/// reports the error (or `BeginFailed`), never a half-configured transaction.
fn begin_statement(tenant: Option<TenantId>, system: bool, ctx: &RequestContext) -> String {
    let (traceparent, tracestate) = crate::telemetry::current_traceparent();
    let tenant = tenant.map(|t| t.as_uuid().to_string()).unwrap_or_default();
    let actor = ctx.actor_id.clone().unwrap_or_default();
    let client_ip = ctx.client_ip.map(|ip| ip.to_string()).unwrap_or_default();
    let values: [(&str, &str); 7] = [
        ("nexus.tenant_id", &tenant),
        ("nexus.system", if system { "on" } else { "" }),
        ("nexus.actor_id", &actor),
        ("nexus.request_id", ctx.request_id_str()),
        ("nexus.client_ip", &client_ip),
        ("nexus.traceparent", &traceparent),
        ("nexus.tracestate", &tracestate),
    ];
    let mut sql = String::with_capacity(320);
    sql.push_str("BEGIN; SELECT ");
    for (i, (name, value)) in values.into_iter().enumerate() {
        if i > 0 {
            sql.push_str(", ");
        }
        sql.push_str("set_config('");
        sql.push_str(name);
        sql.push_str("', ");
        push_literal(&mut sql, value);
        sql.push_str(", true)");
    }
    sql
}

/// Appends `value` as an escape-string literal (`E'…'`), whose meaning does not depend on
/// `standard_conforming_strings`: every backslash and quote is escaped, so nothing in the value
/// can end the literal. NUL, which Postgres text cannot hold, is dropped. The values are the
/// request's ids and trace headers (partly chosen by clients), hence the care.
fn push_literal(sql: &mut String, value: &str) {
    sql.push_str("E'");
    for c in value.chars() {
        match c {
            '\\' => sql.push_str("\\\\"),
            '\'' => sql.push_str("\\'"),
            '\0' => {}
            c => sql.push(c),
        }
    }
    sql.push('\'');
}

/// The one mapping of database failures to error kinds: an exhausted pool, a lost connection or
/// a serialization conflict is a transient `service.unavailable` (callers may retry); anything
/// else is our bug (`internal`), its cause kept for the log.
pub fn error(e: sqlx::Error) -> nexus_kernel::Error {
    let transient = match &e {
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => true,
        sqlx::Error::Database(d) => matches!(d.code().as_deref(), Some("40001" | "40P01" | "57014" | "53300")),
        _ => false,
    };
    if transient {
        nexus_kernel::Error::unavailable("service.unavailable").with_source(e)
    } else {
        nexus_kernel::Error::internal(e)
    }
}

/// Maps a database result into the platform's error vocabulary: `query.fetch_one(&mut *tx).await.db()?`.
pub trait DbResultExt<T> {
    fn db(self) -> Result<T, nexus_kernel::Error>;
}

impl<T> DbResultExt<T> for Result<T, sqlx::Error> {
    fn db(self) -> Result<T, nexus_kernel::Error> {
        self.map_err(error)
    }
}

/// A transaction held by a use case: opened by [`tenant`] or [`system`], handed to `repo`
/// functions as `&mut tx`, finished with [`commit`].
pub type Tx = Transaction<'static, Postgres>;

/// [`begin_tenant`] with errors already mapped: the way use cases open a request's transaction.
pub async fn tenant(pool: &PgPool, tenant: TenantId) -> Result<Tx, nexus_kernel::Error> {
    begin_tenant(pool, tenant).await.db()
}

/// [`begin_system`] with errors already mapped (sweeps, consumers before they know the tenant).
pub async fn system(pool: &PgPool) -> Result<Tx, nexus_kernel::Error> {
    begin_system(pool).await.db()
}

/// Commits with errors mapped; dropping a [`Tx`] without it rolls back.
pub async fn commit(tx: Tx) -> Result<(), nexus_kernel::Error> {
    tx.commit().await.db()
}

/// A keyset position for newest-first listings ordered by `(created_at, id)`: decoded from the
/// client's opaque cursor, bound into the query by [`Keyset::bind`], and turned back into a cursor
/// by [`Keyset::page`]. One shape for every listing, so every listing pages the same way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Keyset {
    /// The last row the client saw, if any.
    pub after: Option<nexus_kernel::paging::TimeKey>,
    /// Rows to fetch: the page size plus one, to learn whether another page follows.
    pub fetch: i64,
    pub limit: u32,
}

impl Keyset {
    pub fn new(page: &nexus_kernel::PageRequest) -> Result<Self, nexus_kernel::Error> {
        // A request built without `PageRequest::new` (limit 0) gets the default page, not none.
        let limit = if page.limit == 0 { nexus_kernel::PageRequest::DEFAULT_LIMIT } else { page.limit };
        Ok(Self { after: page.decode_cursor()?, fetch: i64::from(limit) + 1, limit })
    }

    /// The keyset condition and order for a table whose columns are `created_at` and `id`, with
    /// its three parameters numbered from `first` (after-time, after-id, limit):
    /// `format!("SELECT … FROM t WHERE kind = $1 AND {}", Keyset::newest_first(2))`.
    pub fn newest_first(first: usize) -> String {
        Self::newest_first_by("created_at", "id", first)
    }

    /// [`Keyset::newest_first`] over other column names (`occurred_at`, an alias …).
    pub fn newest_first_by(at: &str, id: &str, first: usize) -> String {
        let (a, b, n) = (first, first + 1, first + 2);
        format!(
            "(${a}::timestamptz IS NULL OR ({at}, {id}) < (${a}, ${b}::uuid)) ORDER BY {at} DESC, {id} DESC LIMIT ${n}"
        )
    }

    /// Binds the three parameters of [`Keyset::newest_first`], in order.
    pub fn bind<'q, O>(
        &self,
        q: sqlx::query::QueryAs<'q, Postgres, O, sqlx::postgres::PgArguments>,
    ) -> sqlx::query::QueryAs<'q, Postgres, O, sqlx::postgres::PgArguments> {
        q.bind(self.after.map(|k| k.at)).bind(self.after.map(|k| k.id)).bind(self.fetch)
    }

    /// The page of `rows` (fetched with [`Keyset::bind`]), its cursor made from each row's key.
    pub fn page<T>(
        &self,
        rows: Vec<T>,
        key: impl Fn(&T) -> (chrono::DateTime<chrono::Utc>, uuid::Uuid),
    ) -> nexus_kernel::Page<T> {
        nexus_kernel::Page::from_overfetch(rows, self.limit, |r| {
            let (at, id) = key(r);
            nexus_kernel::paging::TimeKey { at, id }
        })
    }
}

/// Pool usage for `/metrics`.
pub fn record_pool_metrics(service: &str, pool: &PgPool) {
    let size = pool.size();
    let idle = u32::try_from(pool.num_idle()).unwrap_or(u32::MAX);
    metrics::gauge!("nexus_db_pool_connections", "service" => service.to_owned(), "state" => "idle")
        .set(f64::from(idle));
    metrics::gauge!("nexus_db_pool_connections", "service" => service.to_owned(), "state" => "in_use")
        .set(f64::from(size.saturating_sub(idle)));
    metrics::gauge!("nexus_db_pool_max_connections", "service" => service.to_owned())
        .set(f64::from(pool.options().get_max_connections()));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyset_sql_numbers_its_parameters_from_the_first_given() {
        assert_eq!(
            Keyset::newest_first(2),
            "($2::timestamptz IS NULL OR (created_at, id) < ($2, $3::uuid)) ORDER BY created_at DESC, id DESC LIMIT $4"
        );
        let page = nexus_kernel::PageRequest::new(Some(5), None).unwrap();
        let k = Keyset::new(&page).unwrap();
        assert_eq!((k.after, k.fetch), (None, 6));
        let at = chrono::Utc::now();
        let rows: Vec<(chrono::DateTime<chrono::Utc>, uuid::Uuid)> =
            (0..6).map(|_| (at, uuid::Uuid::new_v4())).collect();
        let last = rows[4];
        let out = k.page(rows, |r| *r);
        assert_eq!(out.items.len(), 5);
        let next = nexus_kernel::PageRequest::new(Some(5), out.next_cursor).unwrap();
        let k2 = Keyset::new(&next).unwrap();
        assert_eq!(k2.after, Some(nexus_kernel::paging::TimeKey { at: last.0, id: last.1 }));
    }

    #[test]
    fn identifiers_are_checked_before_they_reach_sql() {
        assert!(check_ident("auth").is_ok());
        assert!(check_ident("nexus_auth2").is_ok());
        for bad in ["", "Auth", "a;drop", "1abc", "a-b", "a\"b"] {
            assert!(check_ident(bad).is_err(), "{bad}");
        }
    }
}

/// A stored record with its sealed credentials beside it, never inside it: views built from the
/// record cannot carry the secret by mistake.
pub struct WithSealed<T> {
    pub record: T,
    /// Sealed with [`crate::crypto::Sealer`]; open only where a provider call needs it.
    pub credentials: String,
}

/// A row with a `credentials` column next to the columns of `T`.
#[derive(sqlx::FromRow)]
pub struct SealedRow<T> {
    #[sqlx(flatten)]
    pub row: T,
    pub credentials: String,
}
