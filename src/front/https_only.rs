//! What a plain-HTTP request on the HTTPS port gets: a short plain-HTTP answer saying to use
//! `https://`, instead of TLS alert bytes that a browser shows as a broken download.
//!
//! A TLS connection starts with a handshake record, whose first byte is 0x16; anything else is
//! not TLS, and a request line (`GET / HTTP/1.1`) is by far the likeliest.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The first byte of a TLS handshake record.
pub const TLS_HANDSHAKE: u8 = 0x16;

/// How long the answer may take to write and the request to drain: the client is the one who
/// asked, a slow one is not waited for.
const ANSWER_TIME: Duration = Duration::from_secs(2);
/// Request bytes read and dropped before closing, so the close is a FIN the client reads the
/// answer before, not a reset that discards it.
const DRAIN_BYTES: usize = 16 * 1024;

const BODY: &str = "Cổng này chỉ dùng HTTPS: hãy mở địa chỉ bắt đầu bằng https://\n\
                    This port speaks HTTPS only: open the address with https://\n";

/// The whole answer: status, headers and the two-language body.
pub fn answer() -> String {
    format!(
        "HTTP/1.1 400 Bad Request\r\ncontent-type: text/plain; charset=utf-8\r\n\
         content-length: {}\r\ncache-control: no-store\r\nconnection: close\r\n\r\n{BODY}",
        BODY.len()
    )
}

/// Writes [`answer`] and closes, within [`ANSWER_TIME`] whatever the client does.
pub async fn refuse(stream: &mut TcpStream) {
    let _ = tokio::time::timeout(ANSWER_TIME, async {
        stream.write_all(answer().as_bytes()).await?;
        stream.shutdown().await?;
        let mut sink = [0u8; 4096];
        let mut drained = 0;
        while drained < DRAIN_BYTES {
            match stream.read(&mut sink).await? {
                0 => break,
                n => drained += n,
            }
        }
        std::io::Result::Ok(())
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_answer_is_a_complete_http_response() {
        let text = answer();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 400 "));
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length: "))
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(body.len(), length);
        assert!(body.contains("https://"));
    }
}
