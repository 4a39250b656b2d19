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
    fn the_token_never_shows_in_debug_or_listings() {
        let l = RelayLink::parse("https://h/join?t=secrettoken123").unwrap();
        assert_eq!(l.redacted(), "https://h/join?t=secret…");
        assert!(!format!("{l:?}").contains("token123"));
        assert_eq!(l.to_link(), "https://h/join?t=secrettoken123");
    }
}
