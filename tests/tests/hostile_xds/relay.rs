//! A TCP relay whose server-to-client direction can be frozen.

use super::Error;

/// A TCP relay to `target` whose server-to-client direction can be frozen:
/// then it stops reading from the server's socket, as a client that stopped
/// reading its own would.
pub struct Relay {
    pub port: u16,
    pub freeze: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub async fn relay(target: u16) -> Result<Relay, Error> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let (freeze, frozen) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(async move {
        let Ok((client, _)) = listener.accept().await else {
            return;
        };
        let Ok(server) = tokio::net::TcpStream::connect(("127.0.0.1", target)).await else {
            return;
        };
        let (mut cr, mut cw) = client.into_split();
        let (mut sr, mut sw) = server.into_split();
        let up = tokio::spawn(async move {
            let _ = tokio::io::copy(&mut cr, &mut sw).await;
            // Keep the write half open (no FIN) while frozen.
            std::future::pending::<()>().await;
        });
        let mut frozen = frozen;
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            if *frozen.borrow() {
                // Never read again; hold the sockets open.
                std::future::pending::<()>().await;
            }
            tokio::select! {
                n = sr.read(&mut buf) => match n {
                    Ok(0) | Err(_) => break,
                    Ok(n) => if cw.write_all(&buf[..n]).await.is_err() { break },
                },
                _ = frozen.changed() => {}
            }
        }
        up.abort();
    });
    Ok(Relay { port, freeze, task })
}
