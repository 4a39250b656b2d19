//! The two ways the relay speaks the `/ws` protocol: a WebSocket to the upstream server, and an
//! in-process connection to this server's signaling (`signaling::local`). A session does not
//! know which it has, except that only the WebSocket can be opened again after it is [`Lost`]
//! (to resume the seat: the in-process connection is never lost that way).

use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use futures_util::{SinkExt, StreamExt};
use rustls::pki_types::ServerName;
use signaling::local::LocalConnection;
use signaling::protocol::{ClientMessage, ServerMessage};
use signaling::relay_link::RelayLink;
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

/// Server messages above this are refused (the protocol's own limit is 192 KiB).
const MAX_MESSAGE: usize = 256 * 1024;

/// The connection to the server is gone without a `bye` (closed, failed, silent, or not
/// reopened): the server keeps such a seat for a while, so the session may resume it. Carried
/// in an `anyhow::Error`; every other error ends the session.
#[derive(Debug)]
pub struct Lost(pub String);

impl std::fmt::Display for Lost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "connection lost: {}", self.0)
    }
}

impl std::error::Error for Lost {}

/// A [`Lost`] error.
pub fn lost(what: impl std::fmt::Display) -> anyhow::Error {
    anyhow::Error::new(Lost(what.to_string()))
}

#[async_trait::async_trait]
pub trait Channel: Send {
    async fn send(&mut self, m: &ClientMessage) -> anyhow::Result<()>;
    /// The next server message; `None` for a frame that is not one (a ping, a message of a
    /// newer server this one cannot read); an error once the connection is gone.
    async fn recv(&mut self) -> anyhow::Result<Option<ServerMessage>>;
    /// Opens a new connection to the same server in place of this one, within `wait` (a
    /// failure is [`Lost`]). Only a WebSocket can.
    async fn reconnect(&mut self, _wait: Duration) -> anyhow::Result<()> {
        bail!("this connection cannot be opened again")
    }
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

/// What a WebSocket runs over: TCP, or TLS over TCP.
trait Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}

impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Io for T {}

/// A WebSocket to the upstream server, and what it takes to open it again.
pub struct WsChannel {
    ws: WebSocketStream<Box<dyn Io>>,
    link: RelayLink,
    pin: Option<[u8; 32]>,
}

impl WsChannel {
    /// Connects to the upstream of `link` within `wait`: over TLS for an `https` link, trusting
    /// the certificate whose SHA-256 is `pin`, or the system's authorities without one.
    pub async fn connect(
        link: &RelayLink,
        pin: Option<[u8; 32]>,
        wait: Duration,
    ) -> anyhow::Result<WsChannel> {
        let connect = async {
            let tcp = TcpStream::connect((link.host(), link.port()))
                .await
                .context("connect to the upstream")?;
            let _ = tcp.set_nodelay(true);
            let io: Box<dyn Io> = if link.tls() {
                let config = crate::tls::client_config(pin)?;
                let name = ServerName::try_from(link.host().to_owned())
                    .map_err(|e| anyhow!("the upstream's host name: {e}"))?;
                let tls = tokio_rustls::TlsConnector::from(config)
                    .connect(name, tcp)
                    .await
                    .context("TLS with the upstream")?;
                Box::new(tls)
            } else {
                Box::new(tcp)
            };
            let config = WebSocketConfig::default()
                .max_message_size(Some(MAX_MESSAGE))
                .max_frame_size(Some(MAX_MESSAGE));
            let (ws, _) =
                tokio_tungstenite::client_async_with_config(link.ws_url(), io, Some(config))
                    .await
                    .context("the upstream's WebSocket")?;
            Ok::<_, anyhow::Error>(WsChannel {
                ws,
                link: link.clone(),
                pin,
            })
        };
        tokio::time::timeout(wait, connect)
            .await
            .map_err(|_| anyhow!("the upstream did not answer within {wait:?}"))?
    }
}

#[async_trait::async_trait]
impl Channel for WsChannel {
    async fn send(&mut self, m: &ClientMessage) -> anyhow::Result<()> {
        let text = encode(m)?;
        self.ws
            .send(Message::Text(text.into()))
            .await
            .map_err(|e| lost(format_args!("send to the upstream: {e}")))
    }

    async fn recv(&mut self) -> anyhow::Result<Option<ServerMessage>> {
        match self.ws.next().await {
            Some(Ok(Message::Text(t))) => Ok(decode(&t)),
            Some(Ok(Message::Close(_))) | None => Err(lost("the upstream closed the connection")),
            Some(Ok(_)) => Ok(None),
            Some(Err(e)) => Err(lost(format_args!("the upstream connection failed: {e}"))),
        }
    }

    async fn reconnect(&mut self, wait: Duration) -> anyhow::Result<()> {
        let new = WsChannel::connect(&self.link, self.pin, wait)
            .await
            .map_err(|e| lost(format_args!("{e:#}")))?;
        *self = new;
        Ok(())
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
    use sha2::{Digest, Sha256};
    use tokio::net::TcpListener;

    use super::*;

    /// A `wss://` server on loopback with a self-signed certificate, as `hoinghi serve` makes
    /// one: it sends one server message to whoever connects. Returns its port and the
    /// certificate's SHA-256.
    async fn upstream() -> (u16, [u8; 32]) {
        let made = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
        let cert = CertificateDer::from(made.cert.der().to_vec());
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(made.signing_key.serialize_der()));
        let pin: [u8; 32] = Sha256::digest(cert.as_ref()).into();
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let Ok(mut ws) = tokio_tungstenite::accept_async(tls).await else {
                        return;
                    };
                    let hello = r#"{"v": 1, "type": "participant_left", "participant": "p1"}"#;
                    let _ = ws.send(Message::Text(hello.into())).await;
                    let _ = ws.next().await;
                });
            }
        });
        (port, pin)
    }

    fn link(port: u16) -> RelayLink {
        RelayLink::parse(&format!("https://127.0.0.1:{port}/join?t=tok")).unwrap()
    }

    const WAIT: Duration = Duration::from_secs(20);

    #[tokio::test]
    async fn a_wss_upstream_with_the_pinned_certificate_is_reached() {
        let (port, pin) = upstream().await;
        let mut chan = WsChannel::connect(&link(port), Some(pin), WAIT)
            .await
            .expect("connects with the right fingerprint");
        let m = chan.recv().await.unwrap();
        assert!(
            matches!(m, Some(ServerMessage::ParticipantLeft { .. })),
            "{m:?}"
        );
    }

    #[tokio::test]
    async fn another_certificate_or_no_pin_for_a_self_signed_one_is_refused() {
        let (port, mut pin) = upstream().await;
        pin[0] ^= 1;
        let wrong = WsChannel::connect(&link(port), Some(pin), WAIT).await;
        assert!(wrong.is_err(), "a certificate other than the pinned one");
        let unpinned = WsChannel::connect(&link(port), None, WAIT).await;
        assert!(
            unpinned.is_err(),
            "a self-signed certificate no authority vouches for"
        );
    }
}
