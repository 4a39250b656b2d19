//! The server under test: started in this process or reached remotely, its resource use and
//! Prometheus series sampled, and its join tokens.

use std::time::{Duration, SystemTime};

use anyhow::{Context, bail};

use super::{Target, Tokens};
use crate::http;
use crate::inprocess::{InProcessServer, process_cpu_seconds, thread_cpu_seconds};
use crate::prom::{self, Histogram};

/// Samples of the server's resource use and adaptation series.
#[derive(Debug, Clone, Default)]
pub(super) struct ServerSample {
    pub cpu: Option<f64>,
    pub rss: Option<u64>,
    pub packets_in: Option<f64>,
    pub packets_out: Option<f64>,
    pub plis: Option<f64>,
    /// Per-subscriber-link bandwidth estimates, bit/s.
    pub link_estimate: Option<Histogram>,
    /// Loss subscribers report in RTCP receiver reports (after NACK).
    pub link_loss: Option<Histogram>,
    pub switches_up: Option<f64>,
    pub switches_down: Option<f64>,
    /// Video downtracks paused because their link cannot carry the lowest layer.
    pub paused_downtracks: Option<f64>,
    /// Packets subscribers asked to be resent, and those the server refused to resend.
    pub nack_requested: Option<f64>,
    pub nack_refused: Option<f64>,
}

pub(super) struct Server {
    pub inprocess: Option<InProcessServer>,
    pub ws_url: String,
    pub pid: Option<u32>,
    pub metrics_url: Option<String>,
    pub tokens: Tokens,
    pub label: String,
}

impl Server {
    pub async fn start(target: Target) -> anyhow::Result<Server> {
        Ok(match target {
            Target::InProcess { workers } => {
                let s = InProcessServer::start(workers).await?;
                Server {
                    ws_url: s.ws_url(),
                    inprocess: Some(s),
                    pid: None,
                    metrics_url: None,
                    tokens: Tokens::Fixed,
                    label: format!("in-process ({workers} media worker(s))"),
                }
            }
            Target::Remote {
                ws_url,
                pid,
                metrics_url,
                tokens,
            } => Server {
                label: format!("remote {ws_url}"),
                ws_url,
                inprocess: None,
                pid,
                metrics_url,
                tokens,
            },
        })
    }

    /// The Prometheus text of the server, when it can be had.
    async fn metrics_text(&self) -> Option<String> {
        if let Some(s) = &self.inprocess {
            return prometheus::TextEncoder::new()
                .encode_to_string(&s.registry.gather())
                .ok();
        }
        let url = self.metrics_url.as_ref()?;
        match http::request("GET", url, None, Duration::from_secs(5)).await {
            Ok((200, text)) => Some(text),
            _ => None,
        }
    }

    pub async fn sample(&self) -> ServerSample {
        let mut out = ServerSample::default();
        if let Some(text) = self.metrics_text().await {
            out.cpu = http::metric_sum(&text, "process_cpu_seconds_total");
            out.rss = http::metric_sum(&text, "process_resident_memory_bytes").map(|v| v as u64);
            out.packets_in = http::metric_sum(&text, "hoinghi_rtp_packets_in_total");
            out.packets_out = http::metric_sum(&text, "hoinghi_rtp_packets_out_total");
            out.plis = http::metric_sum(&text, "hoinghi_plis_sent_total");
            out.link_estimate = Histogram::parse(&text, "hoinghi_link_estimate_bps");
            out.link_loss = Histogram::parse(&text, "hoinghi_link_loss_ratio");
            let switches = "hoinghi_layer_switches_total";
            out.switches_up = prom::sum_with_label(&text, switches, "direction", "up");
            out.switches_down = prom::sum_with_label(&text, switches, "direction", "down");
            out.paused_downtracks = http::metric_sum(&text, "hoinghi_video_paused_downtracks");
            out.nack_requested = http::metric_sum(&text, "hoinghi_nack_requested_packets_total");
            out.nack_refused = http::metric_sum(&text, "hoinghi_nack_refused_packets_total");
        }
        if self.inprocess.is_some() {
            // The process is the load generator too: only the media threads are the server.
            out.cpu = Some(thread_cpu_seconds("media-"));
            out.rss = None;
        }
        if let Some(pid) = self.pid {
            if let Some(c) = process_cpu_seconds(pid) {
                out.cpu = Some(c);
            }
            if let Some(r) = rss_bytes(pid) {
                out.rss = Some(r);
            }
        }
        out
    }

    /// The point code the server knows point `i` by (what `grant_floor` names).
    pub fn point_code(&self, i: usize) -> String {
        match &self.tokens {
            Tokens::Fixed => format!("point-{i}"),
            Tokens::DataDir(_) => room_admin::test_room::point_code(test_room_slot(i) + 1),
            Tokens::List(_) => format!("point-{i}"),
        }
    }

    pub fn cpu_source(&self) -> &'static str {
        if self.inprocess.is_some() {
            "media-threads"
        } else if self.pid.is_some() {
            "proc"
        } else if self.metrics_url.is_some() {
            "metrics"
        } else {
            "none"
        }
    }

    pub fn token(&self, chair: bool, i: usize) -> anyhow::Result<String> {
        match &self.tokens {
            Tokens::Fixed => Ok(if chair {
                "chair".into()
            } else {
                format!("point-{i}")
            }),
            Tokens::DataDir(dir) => mint_test_room_token(dir, chair, test_room_slot(i)),
            Tokens::List(list) => list
                .get(if chair { 0 } else { i + 1 })
                .cloned()
                .ok_or_else(|| anyhow::anyhow!("no token for point {i} in the list")),
        }
    }
}

/// Point `i` of a run as a test-room point (0-based): the room has only
/// [`room_admin::test_room::MAX_POINTS`] codes, so a soak's churn, whose joiners get ever higher
/// numbers, comes round to the first codes again. The points live at once are consecutive numbers
/// (the oldest leaves as the next joins) and fewer than the codes, so a code is used again only
/// after its last holder left.
pub fn test_room_slot(i: usize) -> usize {
    i % room_admin::test_room::MAX_POINTS
}

/// A test-room token signed with the data dir's secret: the chair, or point `i` (0-based) as
/// `test-point-{i + 1}`. The test room accepts points 1 ..= [`room_admin::test_room::MAX_POINTS`].
pub fn mint_test_room_token(
    dir: &std::path::Path,
    chair: bool,
    i: usize,
) -> anyhow::Result<String> {
    use room_admin::test_room;
    if !dir.join("secret.key").exists() {
        bail!(
            "{}: no secret.key (start the server once first)",
            dir.display()
        );
    }
    let secret = room_admin::Secret::load_or_create(dir).context("read secret.key")?;
    let tokens = room_admin::JoinTokens::new(&secret);
    let (code, name, role) = if chair {
        let c = test_room::CHAIR;
        (c.code.to_owned(), c.name.to_owned(), c.role)
    } else {
        let n = i + 1;
        if n > test_room::MAX_POINTS {
            bail!(
                "the test room accepts {} points; a data-dir token source cannot make point {n}",
                test_room::MAX_POINTS
            );
        }
        (
            test_room::point_code(n),
            test_room::point_name(n),
            signaling::protocol::Role::Point,
        )
    };
    let claims = room_admin::JoinClaims::new(
        test_room::MEETING_ID,
        &code,
        role,
        &name,
        SystemTime::now(),
        Duration::from_secs(3_600),
    );
    Ok(tokens.sign(&claims)?)
}

/// Resident set size of a process, bytes.
pub fn rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1_024)
}

/// The 1-minute load average.
pub fn load_average() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split(' ').next().and_then(|v| v.parse().ok()))
        .unwrap_or(0.0)
}

pub(super) fn self_cpu() -> f64 {
    process_cpu_seconds(std::process::id()).unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use super::test_room_slot;

    #[test]
    fn churn_joiners_come_round_to_the_first_test_room_codes() {
        let max = room_admin::test_room::MAX_POINTS;
        assert_eq!(test_room_slot(0), 0);
        assert_eq!(test_room_slot(max - 1), max - 1);
        assert_eq!(test_room_slot(max), 0);
        assert_eq!(test_room_slot(max + 7), 7);
    }
}
