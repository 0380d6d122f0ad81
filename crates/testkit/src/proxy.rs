//! A TCP proxy that a test controls: put it between a service and Postgres (or NATS) and cut the
//! link on demand — open connections are dropped and new ones refused — then restore it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub struct TcpProxy {
    pub addr: SocketAddr,
    pub upstream: SocketAddr,
    cut: Arc<AtomicBool>,
    /// Bumped on every cut; connection tasks end when it changes.
    generation: watch::Sender<u64>,
    accepted: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl TcpProxy {
    /// Listens on 127.0.0.1:0 and forwards every connection to `upstream`.
    pub async fn start(upstream: SocketAddr) -> TcpProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("proxy addr");
        let cut = Arc::new(AtomicBool::new(false));
        let (generation, _) = watch::channel(0u64);
        let accepted = Arc::new(AtomicUsize::new(0));
        let task = tokio::spawn(accept_loop(listener, upstream, cut.clone(), generation.clone(), accepted.clone()));
        TcpProxy { addr, upstream, cut, generation, accepted, task }
    }

    /// Drops every open connection and refuses new ones until [`TcpProxy::restore`].
    pub fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        self.generation.send_modify(|g| *g += 1);
    }

    pub fn restore(&self) {
        self.cut.store(false, Ordering::SeqCst);
    }

    pub fn is_cut(&self) -> bool {
        self.cut.load(Ordering::SeqCst)
    }

    /// Connections accepted and forwarded so far.
    pub fn connections(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    /// `url` (`postgres://user@127.0.0.1:5432/db`) with its host and port replaced by the proxy's.
    pub fn rewrite_url(&self, url: &str) -> String {
        let mut u = url::Url::parse(url).expect("a URL");
        u.set_host(Some(&self.addr.ip().to_string())).expect("host");
        u.set_port(Some(self.addr.port())).expect("port");
        u.to_string()
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.task.abort();
        self.generation.send_modify(|g| *g += 1);
    }
}

async fn accept_loop(
    listener: TcpListener,
    upstream: SocketAddr,
    cut: Arc<AtomicBool>,
    generation: watch::Sender<u64>,
    accepted: Arc<AtomicUsize>,
) {
    loop {
        let Ok((mut client, _)) = listener.accept().await else { continue };
        if cut.load(Ordering::SeqCst) {
            drop(client); // refused: closed at once
            continue;
        }
        accepted.fetch_add(1, Ordering::SeqCst);
        let mut gen_rx = generation.subscribe();
        gen_rx.mark_unchanged();
        tokio::spawn(async move {
            let Ok(mut server) = TcpStream::connect(upstream).await else { return };
            let _ = client.set_nodelay(true);
            let _ = server.set_nodelay(true);
            tokio::select! {
                _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                _ = gen_rx.changed() => {} // cut: both sockets close when dropped
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn echo_server() -> SocketAddr {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let (mut s, _) = l.accept().await.unwrap();
                tokio::spawn(async move {
                    let (mut r, mut w) = s.split();
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                });
            }
        });
        addr
    }

    async fn roundtrip(s: &mut TcpStream) -> std::io::Result<[u8; 4]> {
        s.write_all(b"ping").await?;
        let mut buf = [0u8; 4];
        s.read_exact(&mut buf).await?;
        Ok(buf)
    }

    #[tokio::test]
    async fn forwards_cuts_refuses_and_restores() {
        let proxy = TcpProxy::start(echo_server().await).await;
        let mut open = TcpStream::connect(proxy.addr).await.unwrap();
        assert_eq!(&roundtrip(&mut open).await.unwrap(), b"ping");

        proxy.cut();
        assert!(roundtrip(&mut open).await.is_err(), "an open connection is dropped");
        let mut refused = TcpStream::connect(proxy.addr).await.unwrap();
        assert!(roundtrip(&mut refused).await.is_err(), "a new one is closed at once");

        proxy.restore();
        let mut again = TcpStream::connect(proxy.addr).await.unwrap();
        assert_eq!(&roundtrip(&mut again).await.unwrap(), b"ping");
        assert_eq!(proxy.connections(), 2);
        assert!(proxy.rewrite_url("postgres://u@127.0.0.1:5432/db").contains(&proxy.addr.to_string()));
    }
}
