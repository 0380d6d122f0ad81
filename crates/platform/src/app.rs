//! How a NexusOne binary runs: `serve` (default), `migrate`, `config`, `openapi` and `reseal`
//! subcommands, config, telemetry and signals ([`main`] for services, [`http_main`] for the
//! HTTP gateway, one start for both), and [`serve`], which wires Postgres, NATS, the outbox
//! relay, health, reflection, the dead-letter RPCs, the admin server and graceful shutdown
//! around a service's own gRPC services.

use std::future::Future;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};
use serde::de::DeserializeOwned;
use sqlx::PgPool;
use sqlx::migrate::Migrator;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

use crate::admin::{self, Readiness};
use crate::bus::Bus;
use crate::config::{CommonConfig, DevelopmentDefaults, TelemetryConfig};
use crate::db::{self, SchemaSpec};
use crate::dlq::DeadLetterOps;
use crate::grpc::{ContextLayer, reflection_v1, reflection_v1alpha};
use crate::identity::{GrpcKeySource, KeySource, Verifier, follow_revocations};
use crate::outbox::OutboxRelay;

/// What a service tells the platform about itself.
#[derive(Debug, Clone, Copy)]
pub struct ServiceDef {
    /// `auth`, `subscriptions`, …: schema, role, stream and metric label.
    pub name: &'static str,
    pub migrations: Option<&'static Migrator>,
    /// Fully qualified gRPC service names reported by the health service.
    pub grpc_services: &'static [&'static str],
    /// Every column the service seals, for `reseal` (empty: it keeps no secrets).
    pub sealed: &'static [crate::reseal::SealedColumn],
}

#[derive(Debug, Parser)]
#[command(version, about = "A NexusOne binary")]
pub struct Cli {
    /// TOML file layered over the built-in defaults (environment variables still win).
    #[arg(long, env = "NEXUS_CONFIG", global = true)]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Serve requests (the default).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Print the effective configuration (secrets redacted) and exit.
    Config,
    /// Print the OpenAPI document (gateway only) and exit.
    Openapi,
    /// Wait until every migration this binary embeds is applied (the Kubernetes init container:
    /// a new version's pods start only after its migration Job ran), up to `--timeout`.
    AwaitMigrations {
        /// How long to wait, e.g. `10m`.
        #[arg(long, default_value = "10m", value_parser = humantime_secs)]
        timeout: Duration,
    },
    /// Re-seal every secret the service stores under its newest sealing key (online, in batches;
    /// a rerun continues). Exits non-zero if any value opens with no configured key.
    Reseal {
        /// Rows per transaction.
        #[arg(long, default_value_t = 500)]
        batch_size: u32,
        /// Stop after this many batches per column (a rerun continues).
        #[arg(long)]
        max_batches: Option<u64>,
    },
    /// Ask the running binary's admin `/readyz` and exit 0 when it is ready (container health
    /// checks: the images carry no HTTP client).
    Ready,
}

/// `90s`, `10m`, `1h` (seconds when there is no unit).
fn humantime_secs(s: &str) -> Result<Duration, String> {
    let (n, unit) = s.trim().split_at(s.trim().find(|c: char| !c.is_ascii_digit()).unwrap_or(s.trim().len()));
    let n: u64 = n.parse().map_err(|_| format!("not a duration: {s}"))?;
    let secs = match unit {
        "" | "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        _ => return Err(format!("not a duration: {s} (use s, m or h)")),
    };
    Ok(Duration::from_secs(secs))
}

/// `GET /readyz` on the admin listener at `addr` (an unspecified address means this host);
/// `Ok` on a 200 within two seconds.
pub async fn probe_ready(addr: std::net::SocketAddr) -> anyhow::Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut addr = addr;
    if addr.ip().is_unspecified() {
        addr.set_ip(if addr.is_ipv4() {
            std::net::Ipv4Addr::LOCALHOST.into()
        } else {
            std::net::Ipv6Addr::LOCALHOST.into()
        });
    }
    let probe = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await?;
        stream.write_all(format!("GET /readyz HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes()).await?;
        let mut head = [0u8; 16];
        let n = stream.read(&mut head).await?;
        Ok::<_, std::io::Error>(String::from_utf8_lossy(&head[..n]).into_owned())
    };
    let head = tokio::time::timeout(Duration::from_secs(2), probe)
        .await
        .map_err(|_| anyhow::anyhow!("{addr}/readyz did not answer within 2 s"))??;
    let status = head.split_whitespace().nth(1).unwrap_or("");
    anyhow::ensure!(status == "200", "{addr}/readyz answered {status:?}");
    Ok(())
}

/// Everything a service's code gets from the platform.
#[derive(Clone)]
pub struct Infra {
    pub service: &'static str,
    pub config: CommonConfig,
    pub db: PgPool,
    pub bus: Bus,
    /// Cancelled after the gRPC server has drained: background work (consumers) stops then.
    pub work: CancellationToken,
    /// Cancelled when shutdown begins, before the server drains: long-lived streams end on it
    /// so the drain does not wait for their clients to hang up.
    pub stopping: CancellationToken,
    pub tasks: TaskTracker,
    /// Verifies bearer tokens; every RPC's principal comes from it.
    pub verifier: Arc<Verifier>,
    /// The client for URLs that users or providers chose (`[outbound]`).
    pub outbound: crate::outbound::OutboundClient,
    /// This service's own tokens, for calls on its own behalf or a workspace's.
    pub service_tokens: Arc<crate::identity::ServiceTokens>,
}

impl Infra {
    /// Runs a background task that the shutdown sequence waits for.
    pub fn spawn<F>(&self, fut: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.tasks.spawn(fut);
    }
}

/// The two sockets a service serves on, bound before [`serve`] so tests can use port 0.
pub struct Listeners {
    pub grpc: TcpListener,
    pub admin: TcpListener,
}

impl Listeners {
    pub async fn bind(cfg: &CommonConfig) -> std::io::Result<Self> {
        Ok(Self { grpc: TcpListener::bind(cfg.grpc.addr).await?, admin: TcpListener::bind(cfg.admin.addr).await? })
    }

    pub async fn ephemeral() -> std::io::Result<Self> {
        Ok(Self { grpc: TcpListener::bind("127.0.0.1:0").await?, admin: TcpListener::bind("127.0.0.1:0").await? })
    }
}

/// Serves a service until `shutdown`, then: stops accepting, lets in-flight RPCs finish (up to the
/// configured grace), stops background work, publishes what is left in the outbox, and returns.
pub async fn serve<F>(
    def: ServiceDef,
    config: CommonConfig,
    listeners: Listeners,
    shutdown: CancellationToken,
    build: F,
) -> anyhow::Result<()>
where
    F: FnOnce(&Infra) -> anyhow::Result<tonic::service::Routes>,
{
    serve_with_keys(def, config, listeners, shutdown, None, build).await
}

/// [`serve`] with the source of token-verification keys given (the auth service reads its own
/// keys; every other service fetches the JWKS from auth).
pub async fn serve_with_keys<F>(
    def: ServiceDef,
    config: CommonConfig,
    listeners: Listeners,
    shutdown: CancellationToken,
    keys: Option<Arc<dyn KeySource>>,
    build: F,
) -> anyhow::Result<()>
where
    F: FnOnce(&Infra) -> anyhow::Result<tonic::service::Routes>,
{
    let name = def.name;
    let outbound = crate::outbound::OutboundClient::new(&config.outbound)?;
    let db = db::connect(name, &config.database).await?;
    let bus = Bus::connect(name, &config.nats).await?;
    let schema = SchemaSpec::for_service(name, &config.database).schema;
    let (reporter, health_service) = tonic_health::server::health_reporter();
    report(&reporter, def.grpc_services, ServingStatus::NotServing).await;

    let keys: Arc<dyn KeySource> = match keys {
        Some(k) => k,
        None => Arc::new(GrpcKeySource::new(&config.identity.auth_url)?),
    };
    let verifier = Arc::new(Verifier::new(keys));
    let infra = Infra {
        service: name,
        config: config.clone(),
        db: db.clone(),
        bus: bus.clone(),
        work: CancellationToken::new(),
        stopping: shutdown.clone(),
        tasks: TaskTracker::new(),
        verifier: verifier.clone(),
        outbound,
        service_tokens: Arc::new(crate::identity::ServiceTokens::from_config(name, &config)?),
    };
    let routes = build(&infra)?
        .add_service(crate::sized!(health_service))
        .add_service(crate::sized!(reflection_v1(def.grpc_services)))
        .add_service(crate::sized!(reflection_v1alpha(def.grpc_services)))
        .add_service(crate::sized!(DeadLetterOps::server(bus.clone())));

    let readiness = Readiness::default();
    infra.spawn(monitor(
        db.clone(),
        bus.clone(),
        reporter,
        def.grpc_services,
        readiness.clone(),
        shutdown.clone(),
        infra.work.clone(),
    ));
    infra.spawn(provision_stream(bus.clone(), name, infra.work.clone()));
    infra.spawn(follow_revocations(
        bus.clone(),
        verifier.clone(),
        config.identity.revocation_window,
        infra.work.clone(),
    ));

    let relay_stop = CancellationToken::new();
    let relay = tokio::spawn(OutboxRelay::new(db.clone(), bus.clone(), name, &schema).run(relay_stop.clone()));

    let admin_stop = CancellationToken::new();
    let pool_for_metrics = db.clone();
    let admin_router = admin::router(
        readiness.clone(),
        vec![std::sync::Arc::new(move || db::record_pool_metrics(name, &pool_for_metrics))],
    );
    let admin = tokio::spawn(admin::serve(listeners.admin, admin_router, admin_stop.clone()));

    tracing::info!(service = name, grpc = %listeners.grpc.local_addr()?, "serving");
    // No Nagle: a response's frames go out in separate writes, and holding the last one back
    // until the peer's delayed ACK adds tens of milliseconds to every call.
    let incoming = tokio_stream::StreamExt::map(tokio_stream::wrappers::TcpListenerStream::new(listeners.grpc), |s| {
        s.inspect(|s| {
            if let Err(e) = s.set_nodelay(true) {
                tracing::debug!(error = %e, "TCP_NODELAY not set");
            }
        })
    });
    let server = tokio::spawn(
        tonic::transport::Server::builder()
            .layer(ContextLayer::new(name, Some(verifier.clone())).with_timeout(config.grpc.request_timeout))
            .add_routes(routes)
            .serve_with_incoming_shutdown(incoming, shutdown.clone().cancelled_owned()),
    );

    let served = crate::shutdown::drain(server, &shutdown, config.shutdown.grace, &readiness, name).await;

    infra.work.cancel();
    infra.tasks.close();
    let _ = tokio::time::timeout(Duration::from_secs(10), infra.tasks.wait()).await;
    relay_stop.cancel();
    let _ = relay.await;
    admin_stop.cancel();
    let _ = admin.await;
    db.close().await;
    tracing::info!(service = name, "stopped");
    served??;
    Ok(())
}

async fn report(reporter: &HealthReporter, services: &[&str], status: ServingStatus) {
    reporter.set_service_status("", status).await;
    for s in services {
        reporter.set_service_status(*s, status).await;
    }
}

/// Keeps gRPC health and `/readyz` in line with whether Postgres and NATS answer.
async fn monitor(
    db: PgPool,
    bus: Bus,
    reporter: HealthReporter,
    services: &'static [&'static str],
    readiness: Readiness,
    shutdown: CancellationToken,
    stop: CancellationToken,
) {
    let mut last: Option<bool> = None;
    loop {
        let db_ok = matches!(
            tokio::time::timeout(Duration::from_secs(1), sqlx::query("SELECT 1").execute(&db)).await,
            Ok(Ok(_))
        );
        let nats_ok = bus.is_connected();
        let ready = db_ok && nats_ok && !shutdown.is_cancelled();
        if last != Some(ready) {
            if ready {
                tracing::info!("dependencies reachable; serving");
            } else {
                tracing::warn!(postgres = db_ok, nats = nats_ok, "not ready");
            }
            report(&reporter, services, if ready { ServingStatus::Serving } else { ServingStatus::NotServing }).await;
            readiness.set(ready);
            last = Some(ready);
        }
        metrics::gauge!("nexus_ready").set(if ready { 1.0 } else { 0.0 });
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
    }
}

/// Creates the service's own stream once NATS answers (it may start later than we do).
async fn provision_stream(bus: Bus, service: &'static str, stop: CancellationToken) {
    loop {
        match bus.ensure_service_stream(service).await {
            Ok(_) => return,
            Err(e) => tracing::debug!(error = %e, "stream not provisioned yet"),
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

/// Entry point of a service binary. `C` is the service's config (with the common sections
/// flattened in); `run` serves it until the token is cancelled.
pub fn main<C, F, Fut>(def: ServiceDef, service_defaults: &str, run: F) -> ExitCode
where
    C: DeserializeOwned + AsRef<CommonConfig> + DevelopmentDefaults + crate::crypto::SealingConfig,
    F: FnOnce(C, CancellationToken) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let other = move |command: Command, config: C| async move {
        match command {
            Command::Migrate => {
                db::migrate(def.name, &config.as_ref().database, def.migrations).await.map_err(Into::into)
            }
            #[allow(clippy::print_stdout)] // the subcommand's whole purpose
            Command::Config => {
                // Secret's Serialize is transparent, so redact through Debug instead.
                println!("{:#?}", config.as_ref());
                Ok(())
            }
            Command::Openapi => Err(anyhow::anyhow!("only the gateway has an OpenAPI document")),
            Command::Ready => probe_ready(config.as_ref().admin.addr).await,
            Command::Reseal { batch_size, max_batches } => {
                reseal(def, &config, crate::reseal::ResealOptions { batch_size, max_batches }).await
            }
            Command::AwaitMigrations { timeout } => {
                let deadline = tokio::time::Instant::now() + timeout;
                loop {
                    match db::pending_migrations(def.name, &config.as_ref().database, def.migrations).await {
                        Ok(p) if p.is_empty() => break Ok(()),
                        Ok(p) => tracing::info!(pending = ?p, "waiting for the migration Job"),
                        Err(e) => tracing::info!(error = %e, "waiting for the database"),
                    }
                    if tokio::time::Instant::now() > deadline {
                        break Err(anyhow::anyhow!("migrations still pending after {timeout:?}"));
                    }
                    tokio::time::sleep(Duration::from_secs(2)).await;
                }
            }
            // `start` serves itself; it never passes `serve` on.
            Command::Serve => Ok(()),
        }
    };
    start(
        def.name,
        service_defaults,
        Cli::parse(),
        |c: &C| c.as_ref().validate().map_err(|e| e.to_string()),
        |c: &C| &c.as_ref().telemetry,
        run,
        other,
    )
}

/// `reseal`: every column `def` declares, under the newest of the configured keys, through the
/// service's own pool (its role, so RLS still applies; the runner's system transactions are the
/// sweepers' way across workspaces).
#[allow(clippy::print_stdout)] // the summary is the subcommand's output
async fn reseal<C>(def: ServiceDef, config: &C, options: crate::reseal::ResealOptions) -> anyhow::Result<()>
where
    C: AsRef<CommonConfig> + crate::crypto::SealingConfig,
{
    let keys = config.sealing_keys().filter(|_| !def.sealed.is_empty());
    let Some(keys) = keys else {
        println!("nexus-{}: no sealed secrets to re-seal", def.name);
        return Ok(());
    };
    let sealer = crate::crypto::Sealer::from_config(keys.expose())
        .map_err(|e| anyhow::anyhow!("{}.sealing_keys: {e}", def.name))?;
    let pool = db::connect(def.name, &config.as_ref().database).await?;
    let report = crate::reseal::reseal(&pool, &sealer, def.sealed, options).await;
    pool.close().await;
    let report = report?;
    for c in &report.columns {
        println!(
            "{}.{}: {} pending, {} re-sealed under v{}, {} failed{}{}",
            c.table,
            c.column,
            c.pending,
            c.resealed,
            sealer.current_version(),
            c.failed.len(),
            if c.failed.is_empty() { String::new() } else { format!(" (rows {})", c.failed.join(", ")) },
            if c.interrupted { "; stopped at --max-batches, run again to continue" } else { "" },
        );
    }
    anyhow::ensure!(
        report.failed() == 0,
        "{} sealed value(s) open with no configured key (listed above); the rest were re-sealed",
        report.failed()
    );
    Ok(())
}

/// What [`http_main`] needs of an HTTP binary's configuration.
pub trait HttpBinaryConfig: DeserializeOwned + DevelopmentDefaults + std::fmt::Debug {
    /// Checks what deserializing cannot; the message names the key.
    fn validate(&self) -> Result<(), String>;
    fn telemetry(&self) -> &TelemetryConfig;
    /// Where the admin listener (`/livez`, `/readyz`, `/metrics`) is.
    fn admin_addr(&self) -> std::net::SocketAddr;
}

/// Entry point of an HTTP binary without a database (the gateway): the same start as [`main`]
/// (config, telemetry, environment check, signals). `openapi` prints the binary's document for
/// the `openapi` subcommand, without loading any configuration; `migrate` has nothing to do.
#[allow(clippy::print_stdout)] // `openapi` and `config` print to stdout by design
pub fn http_main<C, F, Fut>(name: &'static str, defaults: &str, openapi: fn() -> String, run: F) -> ExitCode
where
    C: HttpBinaryConfig,
    F: FnOnce(C, CancellationToken) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let cli = Cli::parse();
    if let Some(Command::Openapi) = cli.command {
        print!("{}", openapi());
        return ExitCode::SUCCESS;
    }
    let other = |command: Command, config: C| async move {
        match command {
            Command::Config => println!("{config:#?}"),
            Command::Reseal { .. } => println!("nexus-{name}: no sealed secrets to re-seal"),
            Command::Ready => probe_ready(config.admin_addr()).await?,
            _ => {}
        }
        Ok::<(), anyhow::Error>(())
    };
    start(name, defaults, cli, |c: &C| c.validate(), |c: &C| c.telemetry(), run, other)
}

/// The start every binary shares: TLS provider, config (built-in defaults, file, environment)
/// and its validation, runtime, telemetry. `serve` then checks the environment and cancels the
/// token on SIGTERM/SIGINT before handing over to `serve`; other subcommands go to `other`.
fn start<C, S, SFut, O, OFut>(
    name: &str,
    defaults: &str,
    cli: Cli,
    validate: fn(&C) -> Result<(), String>,
    telemetry: fn(&C) -> &TelemetryConfig,
    serve: S,
    other: O,
) -> ExitCode
where
    C: DeserializeOwned + DevelopmentDefaults,
    S: FnOnce(C, CancellationToken) -> SFut,
    SFut: Future<Output = anyhow::Result<()>>,
    O: FnOnce(Command, C) -> OFut,
    OFut: Future<Output = anyhow::Result<()>>,
{
    crate::install_crypto_provider();
    let config: C = match crate::config::load(name, defaults, cli.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("nexus-{name}: {e}");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = validate(&config) {
        eprintln!("nexus-{name}: {e}");
        return ExitCode::from(2);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("nexus-{name}: cannot start runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let _guard = match crate::telemetry::init(name, telemetry(&config)) {
            Ok(g) => g,
            Err(e) => {
                eprintln!("nexus-{name}: telemetry: {e}");
                return ExitCode::from(2);
            }
        };
        let result = match cli.command.unwrap_or(Command::Serve) {
            Command::Serve => {
                if let Err(e) = config.check_environment() {
                    eprintln!("nexus-{name}: {e}");
                    return ExitCode::from(2);
                }
                let shutdown = CancellationToken::new();
                crate::shutdown::cancel_on_signal(shutdown.clone());
                serve(config, shutdown).await
            }
            command => other(command, config).await,
        };
        match result {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                tracing::error!(error = format!("{e:#}"), "exiting with error");
                eprintln!("nexus-{name}: {e:#}");
                ExitCode::FAILURE
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::{Cli, Command};

    #[test]
    fn reseal_takes_a_batch_size_and_an_optional_batch_limit() {
        let parse = |args: &[&str]| Cli::try_parse_from(["nexus-x"].iter().chain(args)).map(|c| c.command);
        assert!(matches!(parse(&["reseal"]), Ok(Some(Command::Reseal { batch_size: 500, max_batches: None }))));
        assert!(matches!(
            parse(&["reseal", "--batch-size", "50", "--max-batches", "3"]),
            Ok(Some(Command::Reseal { batch_size: 50, max_batches: Some(3) }))
        ));
        assert!(parse(&["reseal", "--batch-size", "lots"]).is_err());
        assert!(parse(&["reseal", "--max-batches", "-1"]).is_err());
    }
}
