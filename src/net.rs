//! Which addresses the server announces: the public IP for ICE candidates, the base URL of join
//! links, and where media sockets bind. Pure functions, plus one interface lookup.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// The IP to announce in ICE candidates and links when `--public-ip` was not given.
///
/// A specific `--listen` address is what the operator chose, so it is announced as is (this also
/// keeps a loopback-only server from announcing a LAN address its media sockets do not listen
/// on). Listening on every address (0.0.0.0 or ::), we guess the machine's main address.
pub fn effective_public_ip(
    listen: SocketAddr,
    explicit: Option<IpAddr>,
    detect: impl FnOnce() -> IpAddr,
) -> IpAddr {
    match explicit {
        Some(ip) => ip,
        None if !listen.ip().is_unspecified() => listen.ip(),
        None => detect(),
    }
}

/// The first usable IPv4 address of this machine's interfaces, loopback when there is none.
pub fn detect_public_ip() -> IpAddr {
    let addrs = if_addrs::get_if_addrs()
        .map(|list| list.into_iter().map(|i| i.ip()).collect::<Vec<_>>())
        .unwrap_or_default();
    pick_public_ip(addrs)
}

/// The first IPv4 address that is neither loopback nor link-local (169.254/16 is what a machine
/// gives itself when DHCP failed: nobody else can reach it), else loopback.
pub fn pick_public_ip(addrs: impl IntoIterator<Item = IpAddr>) -> IpAddr {
    addrs
        .into_iter()
        .find(|ip| {
            matches!(ip, IpAddr::V4(v4)
                if !v4.is_loopback() && !v4.is_link_local() && !v4.is_unspecified())
        })
        .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST))
}

/// Where media sockets bind: the listen address when it is loopback (a local-only server stays
/// local), every IPv4 address otherwise (the public IP may be a NAT address that is not on any
/// interface).
pub fn media_bind_ip(listen: SocketAddr) -> IpAddr {
    if listen.ip().is_loopback() {
        listen.ip()
    } else {
        IpAddr::V4(Ipv4Addr::UNSPECIFIED)
    }
}

/// `scheme://host[:port]` of join links for a server bound to `bound`.
///
/// The host is `localhost` when the address points at this machine's loopback: browsers treat
/// `localhost` as a secure context (camera and microphone allowed) even over plain HTTP, but not
/// `127.0.0.1` in every browser. Listening on 0.0.0.0, the public IP is the address others use.
/// The port is left out when it is the scheme's default.
pub fn base_url(tls: bool, bound: SocketAddr, public_ip: IpAddr) -> String {
    let scheme = if tls { "https" } else { "http" };
    let ip = if bound.ip().is_unspecified() {
        public_ip
    } else {
        bound.ip()
    };
    let host = match ip {
        ip if ip.is_loopback() => "localhost".to_owned(),
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("[{v6}]"),
    };
    let default_port = if tls { 443 } else { 80 };
    if bound.port() == default_port {
        format!("{scheme}://{host}")
    } else {
        format!("{scheme}://{host}:{}", bound.port())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }
    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn base_url_uses_localhost_for_loopback() {
        assert_eq!(
            base_url(false, sa("127.0.0.1:9999"), ip("10.0.0.5")),
            "http://localhost:9999"
        );
        assert_eq!(
            base_url(true, sa("[::1]:8443"), ip("10.0.0.5")),
            "https://localhost:8443"
        );
        // Listening everywhere on a machine with no network: still localhost.
        assert_eq!(
            base_url(true, sa("0.0.0.0:8443"), ip("127.0.0.1")),
            "https://localhost:8443"
        );
    }

    #[test]
    fn base_url_uses_public_ip_when_listening_everywhere() {
        assert_eq!(
            base_url(true, sa("0.0.0.0:8443"), ip("203.0.113.7")),
            "https://203.0.113.7:8443"
        );
        assert_eq!(
            base_url(true, sa("[::]:8443"), ip("2001:db8::1")),
            "https://[2001:db8::1]:8443"
        );
    }

    #[test]
    fn base_url_uses_specific_listen_ip_over_public_ip() {
        assert_eq!(
            base_url(true, sa("192.168.1.10:8443"), ip("203.0.113.7")),
            "https://192.168.1.10:8443"
        );
    }

    #[test]
    fn base_url_omits_default_ports() {
        assert_eq!(
            base_url(true, sa("0.0.0.0:443"), ip("203.0.113.7")),
            "https://203.0.113.7"
        );
        assert_eq!(
            base_url(false, sa("127.0.0.1:80"), ip("127.0.0.1")),
            "http://localhost"
        );
        assert_eq!(
            base_url(false, sa("127.0.0.1:443"), ip("127.0.0.1")),
            "http://localhost:443"
        );
    }

    #[test]
    fn public_ip_is_first_routable_ipv4() {
        let addrs = [
            ip("127.0.0.1"),
            ip("::1"),
            ip("fe80::1"),
            ip("169.254.3.4"),
            ip("10.1.2.3"),
            ip("192.168.0.2"),
        ];
        assert_eq!(pick_public_ip(addrs), ip("10.1.2.3"));
    }

    #[test]
    fn public_ip_falls_back_to_loopback() {
        assert_eq!(pick_public_ip([]), ip("127.0.0.1"));
        assert_eq!(
            pick_public_ip([ip("127.0.0.1"), ip("2001:db8::2")]),
            ip("127.0.0.1")
        );
    }

    #[test]
    fn detected_public_ip_is_ipv4_and_not_link_local() {
        // Whatever this machine has, the answer obeys the rule.
        match detect_public_ip() {
            IpAddr::V4(v4) => assert!(!v4.is_link_local() && !v4.is_unspecified()),
            IpAddr::V6(v6) => panic!("expected IPv4, got {v6}"),
        }
    }

    #[test]
    fn explicit_public_ip_wins_then_specific_listen_ip_then_detection() {
        let detect = || ip("10.9.9.9");
        assert_eq!(
            effective_public_ip(sa("0.0.0.0:8443"), Some(ip("203.0.113.7")), detect),
            ip("203.0.113.7")
        );
        assert_eq!(
            effective_public_ip(sa("127.0.0.1:8443"), None, detect),
            ip("127.0.0.1")
        );
        assert_eq!(
            effective_public_ip(sa("0.0.0.0:8443"), None, detect),
            ip("10.9.9.9")
        );
    }

    #[test]
    fn media_binds_loopback_only_for_loopback_listen() {
        assert_eq!(media_bind_ip(sa("127.0.0.1:1")), ip("127.0.0.1"));
        assert_eq!(media_bind_ip(sa("0.0.0.0:1")), ip("0.0.0.0"));
        assert_eq!(media_bind_ip(sa("192.168.1.10:1")), ip("0.0.0.0"));
    }
}
