//! In-process connections: the `/ws` protocol spoken over two queues instead of a socket, for
//! clients inside the server itself (the relay client of a linked meeting, issue 13). The
//! session is the same task a WebSocket gets, admitted and bounded like one (it holds an
//! admission slot with no address), so such a client is checked, rate-limited and timed out as
//! any other.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::ws::Message;
use tokio::sync::mpsc;

use crate::Inner;
use crate::session;

/// Messages queued towards the session (its rate limit answers a flood long before this).
const TO_SERVER: usize = 64;
/// Messages queued towards the client; a client that stops reading stalls its own session only.
const TO_CLIENT: usize = 256;

/// The client's end of an in-process connection: JSON text each way, as on a WebSocket.
/// Dropping it closes the connection (the session sees its client gone).
pub struct LocalConnection {
    tx: mpsc::Sender<Message>,
    rx: mpsc::Receiver<String>,
}

/// Why an in-process connection was not opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no in-process connection: {0}")]
pub struct LocalRefused(pub &'static str);

impl LocalConnection {
    /// Sends one client message (JSON). Fails once the session has ended.
    pub async fn send(&self, text: String) -> Result<(), LocalRefused> {
        self.tx
            .send(Message::Text(text.into()))
            .await
            .map_err(|_| LocalRefused("the session has ended"))
    }

    /// The next server message (JSON), or `None` once the session has ended.
    pub async fn recv(&mut self) -> Option<String> {
        self.rx.recv().await
    }
}

/// Opens a session served by `inner` for an in-process client.
pub(crate) fn connect(inner: &Arc<Inner>) -> Result<LocalConnection, LocalRefused> {
    let admitted = inner
        .admission
        .admit(None, Instant::now())
        .map_err(|r| LocalRefused(r.reason()))?;
    inner.metrics.ws_counts(&inner.admission);
    let (client_tx, server_rx) = mpsc::channel::<Message>(TO_SERVER);
    let (server_tx, client_rx) = mpsc::channel::<String>(TO_CLIENT);
    // The session pings to learn that its client is alive: the queue answers for the client,
    // without keeping the connection open once the client has dropped its end.
    let pong = client_tx.downgrade();
    let stream = futures_util::stream::unfold(server_rx, |mut rx| async move {
        rx.recv().await.map(|m| (Ok(m), rx))
    });
    let sink = futures_util::sink::unfold((server_tx, pong), |(tx, pong), m: Message| async move {
        match m {
            Message::Text(t) => tx.send(t.to_string()).await.map_err(|_| ())?,
            Message::Ping(p) => {
                if let Some(client) = pong.upgrade() {
                    let _ = client.try_send(Message::Pong(p));
                }
            }
            // The close frame: the session ends right after; the queue closes with it.
            _ => {}
        }
        Ok::<_, ()>((tx, pong))
    });
    let inner = inner.clone();
    let ticket = admitted.ticket;
    tokio::spawn(async move {
        session::run(inner.clone(), Box::pin(stream), Box::pin(sink), ticket).await;
        inner.metrics.ws_counts(&inner.admission);
    });
    Ok(LocalConnection {
        tx: client_tx,
        rx: client_rx,
    })
}
