use std::process::ExitCode;

fn main() -> ExitCode {
    nexus_platform::app::main(
        nexus_video::DEF,
        nexus_video::DEFAULTS,
        |config: nexus_video::Config, shutdown| async move {
            let listeners = nexus_platform::Listeners::bind(&config.common).await?;
            nexus_video::run(config, listeners, shutdown).await
        },
    )
}
