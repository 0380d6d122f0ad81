use std::process::ExitCode;

fn main() -> ExitCode {
    nexus_platform::app::main(
        nexus_subscriptions::DEF,
        nexus_subscriptions::DEFAULTS,
        |config: nexus_subscriptions::Config, shutdown| async move {
            let listeners = nexus_platform::Listeners::bind(&config.common).await?;
            nexus_subscriptions::run(config, listeners, shutdown).await
        },
    )
}
