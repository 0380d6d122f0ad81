use std::process::ExitCode;

fn main() -> ExitCode {
    nexus_platform::app::main(
        nexus_messaging::DEF,
        nexus_messaging::DEFAULTS,
        |config: nexus_messaging::Config, shutdown| async move {
            let listeners = nexus_platform::Listeners::bind(&config.common).await?;
            nexus_messaging::run(config, listeners, shutdown).await
        },
    )
}
