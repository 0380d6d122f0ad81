use std::process::ExitCode;

fn main() -> ExitCode {
    nexus_platform::app::main(nexus_ads::DEF, nexus_ads::DEFAULTS, |config: nexus_ads::Config, shutdown| async move {
        let listeners = nexus_platform::Listeners::bind(&config.common).await?;
        nexus_ads::run(config, listeners, shutdown).await
    })
}
