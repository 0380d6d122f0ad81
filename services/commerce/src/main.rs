use std::process::ExitCode;

fn main() -> ExitCode {
    nexus_platform::app::main(
        nexus_commerce::DEF,
        nexus_commerce::DEFAULTS,
        |config: nexus_commerce::Config, shutdown| async move {
            let listeners = nexus_platform::Listeners::bind(&config.common).await?;
            nexus_commerce::run(config, listeners, shutdown).await
        },
    )
}
