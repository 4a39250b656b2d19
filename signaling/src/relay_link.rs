//! A relay link as the upstream's staff hand it over (`https://host[:port]/join?t=<token>`,
//! the link of a relay seat), parsed and checked before anything is stored or dialled. The
//! token is a secret: [`RelayLink`]'s `Debug` and [`RelayLink::redacted`] never show it.

use std::fmt;

/// The longest link accepted (a relay seat's link is a few hundred bytes).
pub const MAX_LINK_BYTES: usize = 4_096;
/// The longest host name (RFC 1035).
const MAX_HOST: usize = 253;

/// Why a link was refused; the message names the problem, never the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    #[error("the link is longer than {MAX_LINK_BYTES} bytes")]
    TooLong,
    #[error("the link must start with https:// (or http:// for a server without TLS)")]
    Scheme,
    #[error("the link has no valid host")]
    Host,
    #[error("the link's port is not a number from 1 to 65535")]
    Port,
    #[error("the link is not a join link (…/join?t=…)")]
    NotJoin,
    #[error("the link's token has characters a join token never has")]
    Token,
    #[error(
        "the certificate fingerprint must be 32 bytes of SHA-256 in hex (AB:CD:… as the \
         upstream prints it)"
    )]
    Fingerprint,
}

/// A certificate's SHA-256 fingerprint as `hoinghi serve` prints it (`AB:CD:…`, colons and case
/// free).
pub fn parse_fingerprint(text: &str) -> Result<[u8; 32], LinkError> {
    let hex: Vec<u8> = text.trim().bytes().filter(|b| *b != b':').collect();
    if hex.len() != 64 {
        return Err(LinkError::Fingerprint);
    }
    let mut out = [0u8; 32];
    for (i, pair) in hex.chunks(2).enumerate() {
        let pair = std::str::from_utf8(pair).map_err(|_| LinkError::Fingerprint)?;
        out[i] = u8::from_str_radix(pair, 16).map_err(|_| LinkError::Fingerprint)?;
    }
    Ok(out)
}

/// An upstream relay seat's link.
#[derive(Clone, PartialEq, Eq)]
pub struct RelayLink {
    tls: bool,
    /// `host` or `host:port`, as written (IPv6 in brackets).
    authority: String,
    token: String,
}

impl RelayLink {
    /// Parses `https://host[:port]/join?t=<token>` (other query parameters are ignored).
    pub fn parse(link: &str) -> Result<RelayLink, LinkError> {
        let link = link.trim();
        if link.len() > MAX_LINK_BYTES {
            return Err(LinkError::TooLong);
        }
        let (tls, rest) = if let Some(r) = strip_prefix_ci(link, "https://") {
            (true, r)
        } else if let Some(r) = strip_prefix_ci(link, "http://") {
            (false, r)
        } else {
            return Err(LinkError::Scheme);
        };
        let (authority, path) = rest.split_at(rest.find(['/', '?', '#']).unwrap_or(rest.len()));
        check_authority(authority)?;
        let (path, query) = path.split_once('?').unwrap_or((path, ""));
        if path.trim_end_matches('/') != "/join" {
            return Err(LinkError::NotJoin);
        }
        let query = query.split('#').next().unwrap_or_default();
        let token = query
            .split('&')
            .find_map(|kv| kv.strip_prefix("t="))
            .ok_or(LinkError::NotJoin)?;
        let token_chars = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_');
        if token.is_empty() || !token.chars().all(token_chars) {
            return Err(LinkError::Token);
        }
        Ok(RelayLink {
            tls,
            authority: authority.to_ascii_lowercase(),
            token: token.to_owned(),
        })
    }

    /// The upstream's `/ws` URL.
    pub fn ws_url(&self) -> String {
        let scheme = if self.tls { "wss" } else { "ws" };
        format!("{scheme}://{}/ws", self.authority)
    }

    pub fn token(&self) -> &str {
        &self.token
    }

    /// Whether the upstream is reached over TLS.
    pub fn tls(&self) -> bool {
        self.tls
    }

    /// The host (an IPv6 address without its brackets).
    pub fn host(&self) -> &str {
        match self.authority.strip_prefix('[') {
            Some(rest) => rest.split(']').next().unwrap_or_default(),
            None => self
                .authority
                .rsplit_once(':')
                .map_or(&self.authority, |(h, _)| h),
        }
    }

    /// The port, given or the scheme's.
    pub fn port(&self) -> u16 {
        let after_host = match self.authority.strip_prefix('[') {
            Some(rest) => rest.split_once("]:").map(|(_, p)| p),
            None => self.authority.rsplit_once(':').map(|(_, p)| p),
        };
        after_host
            .and_then(|p| p.parse().ok())
            .unwrap_or(if self.tls { 443 } else { 80 })
    }

    /// The link with the token cut to its first 6 characters, for listings and logs.
    pub fn redacted(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        let shown: String = self.token.chars().take(6).collect();
        format!("{scheme}://{}/join?t={shown}…", self.authority)
    }

    /// The link as it was given (to store it).
    pub fn to_link(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}/join?t={}", self.authority, self.token)
    }
}

impl fmt::Debug for RelayLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

/// `host[:port]`: a DNS name, an IPv4 address or a bracketed IPv6 address; no user info.
fn check_authority(authority: &str) -> Result<(), LinkError> {
    if authority.contains('@') {
        return Err(LinkError::Host);
    }
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let (v6, after) = rest.split_once(']').ok_or(LinkError::Host)?;
        v6.parse::<std::net::Ipv6Addr>()
            .map_err(|_| LinkError::Host)?;
        (None, after.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (Some(h), Some(p)),
            None => (Some(authority), None),
        }
    };
    if let Some(host) = host {
        let label_ok = |l: &str| {
            !l.is_empty()
                && l.len() <= 63
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        };
        if host.is_empty() || host.len() > MAX_HOST || !host.split('.').all(label_ok) {
            return Err(LinkError::Host);
        }
    }
    if let Some(port) = port {
        match port.parse::<u16>() {
            Ok(p) if p > 0 => {}
            _ => return Err(LinkError::Port),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_join_link_gives_the_upstream_ws_url_and_token() {
        let l = RelayLink::parse("https://hop.gov.vn:8443/join?t=eyJ.abc-_9").unwrap();
        assert_eq!(l.ws_url(), "wss://hop.gov.vn:8443/ws");
        assert_eq!(l.token(), "eyJ.abc-_9");
        let l = RelayLink::parse(" http://127.0.0.1:9/join/?x=1&t=tok#frag ").unwrap();
        assert_eq!(l.ws_url(), "ws://127.0.0.1:9/ws");
        assert_eq!(l.token(), "tok");
        let l = RelayLink::parse("HTTPS://[::1]:443/join?t=a").unwrap();
        assert_eq!(l.ws_url(), "wss://[::1]:443/ws");
    }

    #[test]
    fn bad_links_are_refused_with_their_reason() {
        let cases = [
            ("ftp://h/join?t=a", LinkError::Scheme),
            ("javascript:alert(1)", LinkError::Scheme),
            ("https:///join?t=a", LinkError::Host),
            ("https://user@h/join?t=a", LinkError::Host),
            ("https://h_x/join?t=a", LinkError::Host),
            ("https://[zz]/join?t=a", LinkError::Host),
            ("https://h:0/join?t=a", LinkError::Port),
            ("https://h:99999/join?t=a", LinkError::Port),
            ("https://h/admin?t=a", LinkError::NotJoin),
            ("https://h/join", LinkError::NotJoin),
            ("https://h/join?t=", LinkError::Token),
            ("https://h/join?t=a%20b", LinkError::Token),
        ];
        for (link, want) in cases {
            assert_eq!(RelayLink::parse(link), Err(want), "{link}");
        }
        let long = format!("https://h/join?t={}", "a".repeat(MAX_LINK_BYTES));
        assert_eq!(RelayLink::parse(&long), Err(LinkError::TooLong));
    }

    #[test]
    fn host_and_port_come_from_the_link_or_the_scheme() {
        let at = |l: &str| {
            let l = RelayLink::parse(l).unwrap();
            (l.host().to_owned(), l.port())
        };
        assert_eq!(at("https://h.vn/join?t=a"), ("h.vn".into(), 443));
        assert_eq!(at("http://h.vn/join?t=a"), ("h.vn".into(), 80));
        assert_eq!(
            at("https://10.1.2.3:8443/join?t=a"),
            ("10.1.2.3".into(), 8443)
        );
        assert_eq!(at("https://[::1]:9/join?t=a"), ("::1".into(), 9));
        assert_eq!(at("https://[::1]/join?t=a"), ("::1".into(), 443));
    }

    #[test]
    fn fingerprints_read_as_the_server_prints_them() {
        let printed = (0..32)
            .map(|i| format!("{i:02X}"))
            .collect::<Vec<_>>()
            .join(":");
        let want: Vec<u8> = (0..32).collect();
        assert_eq!(parse_fingerprint(&printed).unwrap().to_vec(), want);
        assert_eq!(
            parse_fingerprint(&printed.replace(':', "").to_lowercase())
                .unwrap()
                .to_vec(),
            want
        );
        for bad in [
            "",
            "AB:CD",
            &printed[3..],
            &printed.replace("1F", "ZZ"),
            "é".repeat(32).as_str(),
        ] {
            assert_eq!(parse_fingerprint(bad), Err(LinkError::Fingerprint), "{bad}");
        }
    }

    #[test]
    fn the_token_never_shows_in_debug_or_listings() {
        let l = RelayLink::parse("https://h/join?t=secrettoken123").unwrap();
        assert_eq!(l.redacted(), "https://h/join?t=secret…");
        assert!(!format!("{l:?}").contains("token123"));
        assert_eq!(l.to_link(), "https://h/join?t=secrettoken123");
    }
}
