use std::process::ExitCode;

fn main() -> ExitCode {
    nexus_platform::app::main(
        nexus_auth::DEF,
        nexus_auth::DEFAULTS,
        |config: nexus_auth::Config, shutdown| async move {
            let listeners = nexus_platform::Listeners::bind(&config.common).await?;
            nexus_auth::run(config, listeners, shutdown).await
        },
    )
}
