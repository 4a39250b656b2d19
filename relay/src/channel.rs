//! The two ways the relay speaks the `/ws` protocol: a WebSocket to the upstream server, and an
//! in-process connection to this server's signaling (`signaling::local`). A session does not
//! know which it has.

use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use futures_util::{SinkExt, StreamExt};
use signaling::local::LocalConnection;
use signaling::protocol::{ClientMessage, ServerMessage};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// Server messages above this are refused (the protocol's own limit is 192 KiB).
const MAX_MESSAGE: usize = 256 * 1024;

#[async_trait::async_trait]
pub trait Channel: Send {
    async fn send(&mut self, m: &ClientMessage) -> anyhow::Result<()>;
    /// The next server message; `None` for a frame that is not one (a ping, a message of a
    /// newer server this one cannot read); an error once the connection is gone.
    async fn recv(&mut self) -> anyhow::Result<Option<ServerMessage>>;
}

fn encode(m: &ClientMessage) -> anyhow::Result<String> {
    serde_json::to_string(m).context("encode a client message")
}

fn decode(text: &str) -> Option<ServerMessage> {
    match serde_json::from_str(text) {
        Ok(m) => Some(m),
        Err(e) => {
            tracing::debug!("relay: a server message not understood: {e}");
            None
        }
    }
}

/// A WebSocket to the upstream server.
pub struct WsChannel(WebSocketStream<MaybeTlsStream<TcpStream>>);

impl WsChannel {
    /// Connects to `url` within `wait`.
    pub async fn connect(url: &str, wait: Duration) -> anyhow::Result<WsChannel> {
        let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
            .max_message_size(Some(MAX_MESSAGE))
            .max_frame_size(Some(MAX_MESSAGE));
        let connect = tokio_tungstenite::connect_async_with_config(url, Some(config), false);
        let (ws, _) = tokio::time::timeout(wait, connect)
            .await
            .map_err(|_| anyhow!("the upstream did not answer within {wait:?}"))?
            .context("connect to the upstream")?;
        Ok(WsChannel(ws))
    }
}

#[async_trait::async_trait]
impl Channel for WsChannel {
    async fn send(&mut self, m: &ClientMessage) -> anyhow::Result<()> {
        let text = encode(m)?;
        self.0
            .send(Message::Text(text.into()))
            .await
            .context("send to the upstream")
    }

    async fn recv(&mut self) -> anyhow::Result<Option<ServerMessage>> {
        match self.0.next().await {
            Some(Ok(Message::Text(t))) => Ok(decode(&t)),
            Some(Ok(Message::Close(_))) | None => bail!("the upstream closed the connection"),
            Some(Ok(_)) => Ok(None),
            Some(Err(e)) => bail!("the upstream connection failed: {e}"),
        }
    }
}

/// An in-process connection to this server's signaling.
pub struct LocalChannel(pub LocalConnection);

#[async_trait::async_trait]
impl Channel for LocalChannel {
    async fn send(&mut self, m: &ClientMessage) -> anyhow::Result<()> {
        self.0.send(encode(m)?).await.map_err(|e| anyhow!("{e}"))
    }

    async fn recv(&mut self) -> anyhow::Result<Option<ServerMessage>> {
        match self.0.recv().await {
            Some(text) => Ok(decode(&text)),
            None => bail!("the local session ended"),
        }
    }
}
