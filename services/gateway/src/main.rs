use std::process::ExitCode;

use clap::Parser;
use nexus_gateway::config::{DEFAULTS, GatewayConfig};
use nexus_platform::app::{Cli, Command};
use tokio_util::sync::CancellationToken;

#[allow(clippy::print_stdout)] // `openapi` and `config` print to stdout by design
fn main() -> ExitCode {
    let cli = Cli::parse();
    nexus_platform::install_crypto_provider();
    let command = cli.command.clone().unwrap_or(Command::Serve);
    if let Command::Openapi = command {
        print!("{}", nexus_gateway::openapi::to_pretty_json(&nexus_gateway::openapi()));
        return ExitCode::SUCCESS;
    }
    let config: GatewayConfig = match nexus_platform::config::load("gateway", DEFAULTS, cli.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("nexus-gateway: {e}");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = config.validate() {
        eprintln!("nexus-gateway: configuration: {e}");
        return ExitCode::from(2);
    }
    match command {
        // The gateway owns no data; `migrate` exists so every binary takes the same subcommands.
        Command::Migrate => return ExitCode::SUCCESS,
        Command::Config => {
            println!("{config:#?}");
            return ExitCode::SUCCESS;
        }
        Command::Serve | Command::Openapi => {}
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("nexus-gateway: cannot start runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let _guard = match nexus_platform::telemetry::init("gateway", &config.telemetry) {
            Ok(g) => g,
            Err(e) => {
                eprintln!("nexus-gateway: telemetry: {e}");
                return ExitCode::from(2);
            }
        };
        if let Err(e) = nexus_platform::config::DevelopmentDefaults::check_environment(&config) {
            eprintln!("nexus-gateway: {e}");
            return ExitCode::from(2);
        }
        let shutdown = CancellationToken::new();
        nexus_platform::shutdown::cancel_on_signal(shutdown.clone());
        let listeners = match nexus_gateway::Listeners::bind(&config).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("nexus-gateway: cannot bind: {e}");
                return ExitCode::FAILURE;
            }
        };
        match nexus_gateway::run(config, listeners, shutdown).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                tracing::error!(error = format!("{e:#}"), "gateway failed");
                ExitCode::FAILURE
            }
        }
    })
}
