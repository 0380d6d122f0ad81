use std::process::ExitCode;

use nexus_gateway::config::{DEFAULTS, GatewayConfig};

fn main() -> ExitCode {
    let openapi = || nexus_gateway::openapi::to_pretty_json(&nexus_gateway::openapi());
    nexus_platform::app::http_main("gateway", DEFAULTS, openapi, |config: GatewayConfig, shutdown| async move {
        let listeners =
            nexus_gateway::Listeners::bind(&config).await.map_err(|e| anyhow::anyhow!("cannot bind: {e}"))?;
        nexus_gateway::run(config, listeners, shutdown).await
    })
}
