//! Datagram classification (RFC 7983) and the one STUN field the demultiplexer needs.
//!
//! Parsing here is by hand and allocation-free because it runs on every datagram that arrives
//! from an address the worker does not know yet, which includes anything an attacker sends.

/// What a datagram on a shared media port is, by its first byte (RFC 7983 §7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatagramKind {
    Stun,
    Dtls,
    RtpOrRtcp,
    Other,
}

pub fn classify(buf: &[u8]) -> DatagramKind {
    match buf.first() {
        Some(0..=3) => DatagramKind::Stun,
        Some(20..=63) => DatagramKind::Dtls,
        Some(128..=191) => DatagramKind::RtpOrRtcp,
        _ => DatagramKind::Other,
    }
}

const STUN_HEADER: usize = 20;
const MAGIC_COOKIE: [u8; 4] = [0x21, 0x12, 0xA4, 0x42];
const ATTR_USERNAME: u16 = 0x0006;
/// STUN binding request (method 0x001, class request).
const BINDING_REQUEST: u16 = 0x0001;

/// The local ufrag from a STUN binding request's USERNAME (`local:remote`), if the datagram is a
/// well-formed binding request carrying one. The connection still checks MESSAGE-INTEGRITY
/// itself; this only decides which connection gets to check it.
pub fn stun_local_ufrag(buf: &[u8]) -> Option<&str> {
    if buf.len() < STUN_HEADER || buf[4..8] != MAGIC_COOKIE {
        return None;
    }
    let msg_type = u16::from_be_bytes([buf[0], buf[1]]);
    if msg_type != BINDING_REQUEST {
        return None;
    }
    let body_len = usize::from(u16::from_be_bytes([buf[2], buf[3]]));
    let body = buf.get(STUN_HEADER..STUN_HEADER + body_len)?;
    let mut at = 0;
    while at + 4 <= body.len() {
        let typ = u16::from_be_bytes([body[at], body[at + 1]]);
        let len = usize::from(u16::from_be_bytes([body[at + 2], body[at + 3]]));
        let value = body.get(at + 4..at + 4 + len)?;
        if typ == ATTR_USERNAME {
            let username = std::str::from_utf8(value).ok()?;
            let (local, _remote) = username.split_once(':')?;
            return (!local.is_empty()).then_some(local);
        }
        // Attributes are padded to 4 bytes.
        at += 4 + len.div_ceil(4) * 4;
    }
    None
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A binding request with the given USERNAME and a dummy integrity attribute after it.
    pub(crate) fn binding_request(username: &str) -> Vec<u8> {
        let mut attrs = Vec::new();
        attrs.extend_from_slice(&ATTR_USERNAME.to_be_bytes());
        attrs.extend_from_slice(&(username.len() as u16).to_be_bytes());
        attrs.extend_from_slice(username.as_bytes());
        while attrs.len() % 4 != 0 {
            attrs.push(0);
        }
        attrs.extend_from_slice(&0x0008u16.to_be_bytes());
        attrs.extend_from_slice(&20u16.to_be_bytes());
        attrs.extend_from_slice(&[0u8; 20]);
        let mut msg = Vec::new();
        msg.extend_from_slice(&BINDING_REQUEST.to_be_bytes());
        msg.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
        msg.extend_from_slice(&MAGIC_COOKIE);
        msg.extend_from_slice(&[7u8; 12]);
        msg.extend_from_slice(&attrs);
        msg
    }

    #[test]
    fn classifies_by_first_byte() {
        assert_eq!(classify(&[0, 1]), DatagramKind::Stun);
        assert_eq!(classify(&[22, 254]), DatagramKind::Dtls);
        assert_eq!(classify(&[0x80, 96]), DatagramKind::RtpOrRtcp);
        assert_eq!(classify(&[0xff]), DatagramKind::Other);
        assert_eq!(classify(&[]), DatagramKind::Other);
    }

    #[test]
    fn finds_local_ufrag() {
        let msg = binding_request("srvfrag1:cli9");
        assert_eq!(stun_local_ufrag(&msg), Some("srvfrag1"));
        // Odd length exercises padding.
        let msg = binding_request("abc:de");
        assert_eq!(stun_local_ufrag(&msg), Some("abc"));
    }

    #[test]
    fn rejects_malformed_stun() {
        let good = binding_request("a:b");
        // Truncated at every length: never panics, never a false match past the end.
        for n in 0..good.len() {
            let _ = stun_local_ufrag(&good[..n]);
        }
        let mut bad_cookie = good.clone();
        bad_cookie[5] ^= 1;
        assert_eq!(stun_local_ufrag(&bad_cookie), None);
        let mut response = good.clone();
        response[0..2].copy_from_slice(&0x0101u16.to_be_bytes());
        assert_eq!(stun_local_ufrag(&response), None);
        assert_eq!(stun_local_ufrag(&binding_request("nocolon")), None);
        assert_eq!(stun_local_ufrag(&binding_request(":x")), None);
        let mut huge_len = good.clone();
        huge_len[2..4].copy_from_slice(&u16::MAX.to_be_bytes());
        assert_eq!(stun_local_ufrag(&huge_len), None);
    }
}
