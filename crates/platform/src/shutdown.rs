//! One cancellation token per process, cancelled by SIGTERM or SIGINT, and the drain every
//! server (gRPC services, the HTTP gateway) goes through when it fires.

use std::time::Duration;

use tokio::task::{JoinError, JoinHandle};
use tokio_util::sync::CancellationToken;

use crate::admin::Readiness;

/// Cancels `token` on the first SIGTERM/SIGINT.
pub fn cancel_on_signal(token: CancellationToken) {
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        let term = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        #[cfg(not(unix))]
        let term = std::future::pending::<()>();
        tokio::select! {
            _ = ctrl_c => tracing::info!("SIGINT received; shutting down"),
            () = term => tracing::info!("SIGTERM received; shutting down"),
            () = token.cancelled() => return,
        }
        token.cancel();
    });
}

/// Waits for a server task. Once `shutdown` fires the process reports not ready and in-flight
/// requests get up to `grace` to finish; whatever is still running then is aborted.
pub async fn drain<E>(
    mut server: JoinHandle<Result<(), E>>,
    shutdown: &CancellationToken,
    grace: Duration,
    readiness: &Readiness,
    service: &str,
) -> Result<Result<(), E>, JoinError> {
    tokio::select! {
        r = &mut server => r,
        () = shutdown.cancelled() => {
            readiness.set(false);
            match tokio::time::timeout(grace, &mut server).await {
                Ok(r) => r,
                Err(_) => {
                    tracing::warn!(service, "in-flight requests outlived the grace period");
                    server.abort();
                    Ok(Ok(()))
                }
            }
        }
    }
}
