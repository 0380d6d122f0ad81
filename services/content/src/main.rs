use std::process::ExitCode;

fn main() -> ExitCode {
    nexus_platform::app::main(
        nexus_content::DEF,
        nexus_content::DEFAULTS,
        |config: nexus_content::Config, shutdown| async move {
            let listeners = nexus_platform::Listeners::bind(&config.common).await?;
            nexus_content::run(config, listeners, shutdown).await
        },
    )
}
