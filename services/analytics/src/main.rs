use std::process::ExitCode;

fn main() -> ExitCode {
    nexus_platform::app::main(
        nexus_analytics::DEF,
        nexus_analytics::DEFAULTS,
        |config: nexus_analytics::Config, shutdown| async move {
            let listeners = nexus_platform::Listeners::bind(&config.common).await?;
            nexus_analytics::run(config, listeners, shutdown).await
        },
    )
}
