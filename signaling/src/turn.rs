//! TURN credentials for the `ice_servers` of `joined`, in the "TURN REST API" scheme coturn
//! implements with `use-auth-secret` + `static-auth-secret`: the server and coturn share one
//! secret, and each participant gets
//!
//! - username `<unix expiry>:<participant id>`,
//! - credential `base64(HMAC-SHA1(secret, username))`.
//!
//! coturn recomputes the credential from the username alone and refuses it once the expiry has
//! passed, so no per-user state is shared between the two servers and a leaked credential dies on
//! its own. Everything here is pure: the caller passes the clock.

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use hmac::{Hmac, Mac};
use sha1::Sha1;

use crate::protocol::IceServer;

/// How long credentials stay valid unless configured: a whole day, so that even the longest
/// meeting does not outlive them (coturn checks the expiry again on every allocation refresh,
/// so a relayed connection breaks, not just new ones, when they expire).
pub const DEFAULT_TTL: Duration = Duration::from_secs(86_400);
/// Shortest accepted lifetime: below a minute, a slow join could get credentials that expire
/// before its ICE checks finish.
pub const MIN_TTL: Duration = Duration::from_secs(60);
/// Longest accepted lifetime (a week): longer-lived credentials are close to a static password.
pub const MAX_TTL: Duration = Duration::from_secs(604_800);

/// A configuration value that cannot be used, with a message fit for an operator.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TurnError {
    #[error("bad TURN URL {url:?}: {reason}")]
    BadUrl { url: String, reason: String },
    #[error("the TURN secret is empty")]
    EmptySecret,
    #[error("no TURN URL given")]
    NoUrls,
    #[error(
        "TURN credential lifetime {0} s is out of range ({min}..={max} s)",
        min = MIN_TTL.as_secs(),
        max = MAX_TTL.as_secs()
    )]
    TtlOutOfRange(u64),
}

/// A `turn:` or `turns:` URL as browsers take it in `RTCIceServer.urls` (RFC 7065):
/// `turn[s]:<host>[:<port>][?transport=udp|tcp]`, host a DNS name, an IPv4 address or an IPv6
/// address in brackets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TurnUrl(String);

impl TurnUrl {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TurnUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for TurnUrl {
    type Err = TurnError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |reason: &str| TurnError::BadUrl {
            url: s.to_owned(),
            reason: reason.to_owned(),
        };
        if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad("spaces and control characters are not allowed"));
        }
        let rest = s
            .strip_prefix("turn:")
            .or_else(|| s.strip_prefix("turns:"))
            .ok_or_else(|| bad("must start with turn: or turns:"))?;
        if rest.starts_with("//") {
            return Err(bad("write turn:host:port, without // (RFC 7065)"));
        }
        let (hostport, query) = match rest.split_once('?') {
            Some((hp, q)) => (hp, Some(q)),
            None => (rest, None),
        };
        let port = if let Some(v6) = hostport.strip_prefix('[') {
            let (addr, after) = v6
                .split_once(']')
                .ok_or_else(|| bad("missing ] after an IPv6 address"))?;
            addr.parse::<std::net::Ipv6Addr>()
                .map_err(|_| bad("not an IPv6 address between [ and ]"))?;
            match after {
                "" => None,
                p => Some(
                    p.strip_prefix(':')
                        .ok_or_else(|| bad("expected :port after the IPv6 address"))?,
                ),
            }
        } else {
            let (host, port) = match hostport.split_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (hostport, None),
            };
            if port.is_some_and(|p| p.contains(':')) {
                return Err(bad(
                    "put an IPv6 address in brackets: turn:[2001:db8::1]:3478",
                ));
            }
            check_host(host).map_err(bad)?;
            port
        };
        if let Some(p) = port {
            match p.parse::<u16>() {
                Ok(n) if n >= 1 && p.bytes().all(|b| b.is_ascii_digit()) => {}
                _ => return Err(bad("the port must be a number from 1 to 65535")),
            }
        }
        match query {
            None | Some("transport=udp" | "transport=tcp") => {}
            Some(_) => {
                return Err(bad(
                    "the only query allowed is ?transport=udp or ?transport=tcp",
                ));
            }
        }
        Ok(TurnUrl(s.to_owned()))
    }
}

/// A DNS name or an IPv4 address.
fn check_host(host: &str) -> Result<(), &'static str> {
    if host.is_empty() {
        return Err("no host");
    }
    if host.parse::<std::net::Ipv4Addr>().is_ok() {
        return Ok(());
    }
    if host.len() > 253 {
        return Err("the host name is longer than 253 characters");
    }
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    // A trailing dot (fully qualified name) is allowed.
    if host.trim_end_matches('.').split('.').all(label_ok) {
        Ok(())
    } else {
        Err("the host must be a DNS name (letters, digits, '-', '.') or an IP address")
    }
}

/// The secret shared with coturn (`static-auth-secret`). It never appears in `Debug` output and
/// has no `Display`, so it cannot end up in a log line by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct TurnSecret(Vec<u8>);

impl TurnSecret {
    /// From the text of a secret file or variable: surrounding whitespace (the newline an editor
    /// adds) is not part of the secret, as coturn does not see it in its config either.
    pub fn new(text: &str) -> Result<Self, TurnError> {
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Err(TurnError::EmptySecret);
        }
        Ok(TurnSecret(trimmed.as_bytes().to_vec()))
    }
}

impl fmt::Debug for TurnSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TurnSecret(<redacted>)")
    }
}

/// Where the TURN servers are and how credentials for them are made.
#[derive(Debug, Clone)]
pub struct TurnConfig {
    urls: Vec<TurnUrl>,
    secret: TurnSecret,
    ttl: Duration,
}

impl TurnConfig {
    pub fn new(urls: Vec<TurnUrl>, secret: TurnSecret, ttl: Duration) -> Result<Self, TurnError> {
        if urls.is_empty() {
            return Err(TurnError::NoUrls);
        }
        if ttl < MIN_TTL || ttl > MAX_TTL {
            return Err(TurnError::TtlOutOfRange(ttl.as_secs()));
        }
        Ok(TurnConfig { urls, secret, ttl })
    }

    pub fn urls(&self) -> &[TurnUrl] {
        &self.urls
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Fresh credentials for `participant`, valid until `now` + the configured lifetime.
    pub fn ice_server(&self, participant: &str, now: SystemTime) -> IceServer {
        // A clock before 1970 is broken, not an attack: credentials then expire early, which
        // coturn reports as a plain authentication failure.
        let since_epoch = now.duration_since(UNIX_EPOCH).unwrap_or_default();
        let expiry = (since_epoch + self.ttl).as_secs();
        let username = format!("{expiry}:{participant}");
        IceServer {
            urls: self.urls.iter().map(|u| u.0.clone()).collect(),
            credential: Some(credential(&self.secret, &username)),
            username: Some(username),
        }
    }
}

/// `base64(HMAC-SHA1(secret, username))`, what coturn computes to check a REST API username.
pub fn credential(secret: &TurnSecret, username: &str) -> String {
    // HMAC takes keys of any length; this cannot fail.
    let mut mac = <Hmac<Sha1> as Mac>::new_from_slice(&secret.0).expect("HMAC accepts any key");
    mac.update(username.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> TurnUrl {
        s.parse().unwrap()
    }

    #[test]
    fn credential_matches_an_independent_hmac() {
        // python3 -c 'import hmac,hashlib,base64;print(base64.b64encode(hmac.new(
        //   b"north-wind-7421",b"1718000000:p42",hashlib.sha1).digest()).decode())'
        let secret = TurnSecret::new("north-wind-7421\n").unwrap();
        assert_eq!(
            credential(&secret, "1718000000:p42"),
            "USE1SAGEYdLi5kGt6Ytt1eait2E="
        );
    }

    #[test]
    fn ice_server_expires_ttl_after_now_and_names_the_participant() {
        let secret = TurnSecret::new("north-wind-7421").unwrap();
        let config = TurnConfig::new(
            vec![
                url("turn:127.0.0.1:3478?transport=tcp"),
                url("turns:turn.example.vn"),
            ],
            secret.clone(),
            Duration::from_secs(3_600),
        )
        .unwrap();
        let now = UNIX_EPOCH + Duration::from_secs(1_717_996_400);
        let ice = config.ice_server("p42", now);
        assert_eq!(
            ice.urls,
            ["turn:127.0.0.1:3478?transport=tcp", "turns:turn.example.vn"]
        );
        assert_eq!(ice.username.as_deref(), Some("1718000000:p42"));
        assert_eq!(
            ice.credential.as_deref(),
            Some("USE1SAGEYdLi5kGt6Ytt1eait2E=")
        );
        // Another participant, another credential.
        assert_ne!(config.ice_server("p43", now).credential, ice.credential);
    }

    #[test]
    fn the_secret_never_shows_in_debug_output() {
        let config = TurnConfig::new(
            vec![url("turn:turn.example.vn:443?transport=tcp")],
            TurnSecret::new("north-wind-7421").unwrap(),
            DEFAULT_TTL,
        )
        .unwrap();
        let shown = format!("{config:?} {config:#?}");
        assert!(!shown.contains("north-wind"), "{shown}");
        assert!(shown.contains("turn.example.vn"), "{shown}");
        assert!(shown.contains("redacted"), "{shown}");
    }

    #[test]
    fn good_urls_are_accepted() {
        for s in [
            "turn:turn.example.gov.vn:443?transport=tcp",
            "turns:turn.example.gov.vn:443?transport=tcp",
            "turn:127.0.0.1",
            "turn:127.0.0.1:3478?transport=udp",
            "turn:[2001:db8::1]:3478",
            "turn:[::1]",
            "turn:turn-1.example.vn.",
            "turn:localhost:65535",
        ] {
            assert_eq!(url(s).as_str(), s);
        }
    }

    #[test]
    fn bad_urls_are_refused_with_a_reason() {
        for (s, why) in [
            ("stun:turn.example.vn", "must start with"),
            ("http://turn.example.vn", "must start with"),
            ("turn://turn.example.vn:443", "without //"),
            ("turn:", "no host"),
            ("turn::443", "no host"),
            ("turn:turn.example.vn:0", "1 to 65535"),
            ("turn:turn.example.vn:65536", "1 to 65535"),
            ("turn:turn.example.vn:+443", "1 to 65535"),
            ("turn:turn.example.vn:", "1 to 65535"),
            ("turn:2001:db8::1", "brackets"),
            ("turn:[2001:db8::zz]", "IPv6"),
            ("turn:[::1", "missing ]"),
            ("turn:[::1]443", "expected :port"),
            ("turn:turn.example.vn?transport=sctp", "transport=udp"),
            ("turn:turn.example.vn?transport=tcp&x=1", "transport=udp"),
            ("turn:user@turn.example.vn", "DNS name"),
            ("turn:-bad.example.vn", "DNS name"),
            ("turn:a..b", "DNS name"),
            ("turn:turn.example.vn 443", "spaces"),
        ] {
            let err = s.parse::<TurnUrl>().unwrap_err().to_string();
            assert!(err.contains(why), "{s}: {err}");
        }
    }

    #[test]
    fn empty_secret_no_urls_and_ttl_out_of_range_are_refused() {
        assert_eq!(
            TurnSecret::new(" \n\t").unwrap_err(),
            TurnError::EmptySecret
        );
        let secret = TurnSecret::new("s").unwrap();
        assert_eq!(
            TurnConfig::new(vec![], secret.clone(), DEFAULT_TTL).unwrap_err(),
            TurnError::NoUrls
        );
        let urls = vec![url("turn:127.0.0.1")];
        for secs in [0, 59, 604_801] {
            assert_eq!(
                TurnConfig::new(urls.clone(), secret.clone(), Duration::from_secs(secs))
                    .unwrap_err(),
                TurnError::TtlOutOfRange(secs)
            );
        }
        for secs in [60, 604_800] {
            assert!(
                TurnConfig::new(urls.clone(), secret.clone(), Duration::from_secs(secs)).is_ok()
            );
        }
    }
}
