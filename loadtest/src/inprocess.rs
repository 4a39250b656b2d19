//! A server in this process on loopback (real UDP, real WebSocket) with an authorizer that
//! accepts fixed tokens, for integration tests and for benchmarks that need more points than a
//! configured meeting has. The media plane is the production one; only the token check differs.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use signaling::auth::{AuthError, Authorizer, Grant};
use signaling::protocol::Role;

/// Tokens: `chair`, `point-<anything>`, `observer-<anything>`, `relay-<anything>` (a relay
/// seat of the cascade), `upstream-<anything>` (the upstream seat a relay client takes in a
/// linked meeting); `expired` is refused as expired, anything else as invalid.
pub struct FixedTokens;

impl Authorizer for FixedTokens {
    fn authorize(&self, token: &str) -> Result<Grant, AuthError> {
        let (role, point) = match token {
            "chair" => (Role::Chair, "chair".to_owned()),
            "expired" => return Err(AuthError::Expired("link expired".into())),
            t if t.starts_with("point-") => (Role::Point, t.to_owned()),
            t if t.starts_with("observer-") => (Role::Observer, t.to_owned()),
            t if t.starts_with("relay-") => (Role::Relay, t.to_owned()),
            t if t.starts_with("upstream-") => (Role::Upstream, t.to_owned()),
            _ => return Err(AuthError::Invalid("invalid join link".into())),
        };
        Ok(Grant {
            meeting_id: "bench".into(),
            meeting_title: "Bench".into(),
            name: point.clone(),
            point,
            role,
            capacity: 1_000,
        })
    }
}

pub struct InProcessServer {
    pub http: SocketAddr,
    pub sfu: sfu::Sfu,
    pub signaling: signaling::Signaling,
    pub registry: prometheus::Registry,
}

impl InProcessServer {
    /// Starts the media plane with `workers` threads and serves `/ws` on an ephemeral port.
    pub async fn start(workers: usize) -> anyhow::Result<InProcessServer> {
        Self::start_on(([127, 0, 0, 1], 0).into(), [127, 0, 0, 1].into(), workers).await
    }

    /// Starts the media plane on `media_ip` (bound and announced, ICE-TCP on a free port) and
    /// serves `/ws` and `/metrics` on `listen`.
    pub async fn start_on(
        listen: SocketAddr,
        media_ip: IpAddr,
        workers: usize,
    ) -> anyhow::Result<InProcessServer> {
        Self::start_with(
            listen,
            sfu::SfuConfig {
                public_ip: media_ip,
                bind_ip: media_ip,
                base_port: 0,
                workers,
                ice_tcp_port: Some(0),
            },
        )
        .await
    }

    /// Starts the media plane as `config` says and serves `/ws` and `/metrics` on `listen`.
    pub async fn start_with(
        listen: SocketAddr,
        config: sfu::SfuConfig,
    ) -> anyhow::Result<InProcessServer> {
        let registry = prometheus::Registry::new();
        let sfu = sfu::Sfu::start(config, &registry)?;
        // Every simulated point comes from 127.0.0.1: the per-address limits would hold a load
        // test of hundreds of points back, so this server trusts loopback as a proxy would.
        let signaling = signaling::Signaling::new(sfu.clone(), Arc::new(FixedTokens), &registry)
            .with_admission(signaling::AdmissionLimits {
                exempt_loopback: true,
                ..signaling::AdmissionLimits::default()
            });
        let listener = tokio::net::TcpListener::bind(listen).await?;
        let http = listener.local_addr()?;
        let metrics_registry = registry.clone();
        let app = signaling.router().route(
            "/metrics",
            axum::routing::get(move || {
                let r = metrics_registry.clone();
                async move {
                    prometheus::TextEncoder::new()
                        .encode_to_string(&r.gather())
                        .unwrap_or_default()
                }
            }),
        );
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(InProcessServer {
            http,
            sfu,
            signaling,
            registry,
        })
    }

    pub fn ws_url(&self) -> String {
        format!("ws://{}/ws", self.http)
    }

    /// Sum over labels of a gauge family.
    pub fn gauge(&self, name: &str) -> f64 {
        self.sum(name, |m| m.get_gauge().value())
    }

    /// Sum over labels of a counter family.
    pub fn counter(&self, name: &str) -> f64 {
        self.sum(name, |m| m.get_counter().value())
    }

    /// Samples taken by a histogram family, over labels.
    pub fn histogram_count(&self, name: &str) -> f64 {
        self.sum(name, |m| m.get_histogram().get_sample_count() as f64)
    }

    fn sum(&self, name: &str, value: impl Fn(&prometheus::proto::Metric) -> f64) -> f64 {
        self.registry
            .gather()
            .iter()
            .filter(|f| f.name() == name)
            .flat_map(|f| f.get_metric().iter().map(&value).collect::<Vec<_>>())
            .sum()
    }
}

/// CPU seconds (user + system) used so far by this process's threads whose name starts with
/// `prefix` (the media workers are `media-<i>`), read from `/proc/self/task`.
pub fn thread_cpu_seconds(prefix: &str) -> f64 {
    let ticks = clock_ticks();
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
        return 0.0;
    };
    let mut total = 0u64;
    for entry in dir.flatten() {
        let path = entry.path();
        let Ok(comm) = std::fs::read_to_string(path.join("comm")) else {
            continue;
        };
        if !comm.trim_end().starts_with(prefix) {
            continue;
        }
        if let Ok(stat) = std::fs::read_to_string(path.join("stat")) {
            total += stat_cpu_ticks(&stat).unwrap_or(0);
        }
    }
    total as f64 / ticks
}

/// CPU seconds used by a whole process (`/proc/<pid>/stat`).
pub fn process_cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    Some(stat_cpu_ticks(&stat)? as f64 / clock_ticks())
}

fn clock_ticks() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 { t as f64 } else { 100.0 }
}

/// utime + stime from a `stat` line; the command name may contain spaces, so fields are
/// counted after its closing parenthesis.
fn stat_cpu_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    // After ')' the first field is state (field 3); utime is field 14, stime 15.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_with_spaces_in_the_name() {
        let stat =
            "1234 (media 0) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 1 0 100 0 0";
        assert_eq!(stat_cpu_ticks(stat), Some(325));
        assert_eq!(stat_cpu_ticks("garbage"), None);
    }
}
