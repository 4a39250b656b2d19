//! Media-plane metrics. Workers count in plain integers on the hot path and add them to the
//! shared Prometheus counters once per loop pass, so forwarding a packet costs no atomic op.

use prometheus::{
    Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
};

#[derive(Clone)]
pub struct SfuMetrics {
    packets_in: IntCounterVec,
    packets_out: IntCounterVec,
    datagrams_in: IntCounterVec,
    datagrams_out: IntCounterVec,
    bytes_in: IntCounterVec,
    bytes_out: IntCounterVec,
    unroutable: IntCounterVec,
    bad_datagrams: IntCounterVec,
    send_dropped: IntCounterVec,
    write_errors: IntCounterVec,
    keyframe_requests_in: IntCounterVec,
    nacked_packets: IntCounterVec,
    nack_refused: IntCounterVec,
    cpu_seconds: prometheus::CounterVec,
    plis_sent: IntCounterVec,
    tracks: IntGaugeVec,
    connections: IntGaugeVec,
    link_rtt: Histogram,
    link_loss: Histogram,
    link_loss_before_nack: Histogram,
    link_estimate: Histogram,
    forward_latency: Histogram,
    layer_switches: IntCounterVec,
    probes: IntCounterVec,
    video_paused: IntGaugeVec,
    tcp_accepted: IntCounter,
    tcp_refused: IntCounterVec,
    tcp_links: IntGaugeVec,
    tcp_dropped: IntCounterVec,
    tcp_bytes_in: IntCounterVec,
    tcp_bytes_out: IntCounterVec,
}

fn histogram(
    registry: &Registry,
    name: &str,
    help: &str,
    buckets: &[f64],
) -> prometheus::Result<Histogram> {
    let h = Histogram::with_opts(HistogramOpts::new(name, help).buckets(buckets.to_vec()))?;
    registry.register(Box::new(h.clone()))?;
    Ok(h)
}

fn counter(registry: &Registry, name: &str, help: &str) -> prometheus::Result<IntCounterVec> {
    let c = IntCounterVec::new(Opts::new(name, help), &["worker"])?;
    registry.register(Box::new(c.clone()))?;
    Ok(c)
}

fn gauge(registry: &Registry, name: &str, help: &str) -> prometheus::Result<IntGaugeVec> {
    let g = IntGaugeVec::new(Opts::new(name, help), &["worker"])?;
    registry.register(Box::new(g.clone()))?;
    Ok(g)
}

impl SfuMetrics {
    pub fn new(registry: &Registry) -> prometheus::Result<Self> {
        Ok(Self {
            packets_in: counter(
                registry,
                "hoinghi_rtp_packets_in_total",
                "RTP packets received from publishers",
            )?,
            packets_out: counter(
                registry,
                "hoinghi_rtp_packets_out_total",
                "RTP packets forwarded to subscribers",
            )?,
            datagrams_in: counter(
                registry,
                "hoinghi_udp_datagrams_in_total",
                "UDP datagrams received on media ports",
            )?,
            datagrams_out: counter(
                registry,
                "hoinghi_udp_datagrams_out_total",
                "UDP datagrams sent from media ports",
            )?,
            bytes_in: counter(
                registry,
                "hoinghi_udp_bytes_in_total",
                "UDP payload bytes received on media ports",
            )?,
            bytes_out: counter(
                registry,
                "hoinghi_udp_bytes_out_total",
                "UDP payload bytes sent from media ports",
            )?,
            unroutable: counter(
                registry,
                "hoinghi_udp_unroutable_total",
                "Datagrams from unknown addresses without a known ICE ufrag",
            )?,
            bad_datagrams: counter(
                registry,
                "hoinghi_udp_rejected_total",
                "Datagrams a connection refused (bad STUN, DTLS or SRTP)",
            )?,
            send_dropped: counter(
                registry,
                "hoinghi_udp_send_dropped_total",
                "Datagrams dropped because the socket send failed",
            )?,
            write_errors: counter(
                registry,
                "hoinghi_rtp_write_errors_total",
                "RTP packets the subscriber connection refused",
            )?,
            keyframe_requests_in: counter(
                registry,
                "hoinghi_keyframe_requests_received_total",
                "PLI/FIR received from subscribers",
            )?,
            plis_sent: counter(
                registry,
                "hoinghi_plis_sent_total",
                "PLIs sent to publishers after coalescing",
            )?,
            nacked_packets: counter(
                registry,
                "hoinghi_nack_requested_packets_total",
                "Packets subscribers asked to be retransmitted (NACK)",
            )?,
            nack_refused: counter(
                registry,
                "hoinghi_nack_refused_packets_total",
                "NACKed packets not resent: asked again too soon, resent twice already, or over the link's repair budget",
            )?,
            cpu_seconds: {
                let c = prometheus::CounterVec::new(
                    Opts::new(
                        "hoinghi_worker_cpu_seconds_total",
                        "CPU time of each media worker thread",
                    ),
                    &["worker"],
                )?;
                registry.register(Box::new(c.clone()))?;
                c
            },
            tracks: gauge(registry, "hoinghi_tracks", "Published tracks")?,
            connections: gauge(registry, "hoinghi_peer_connections", "Peer connections")?,
            link_rtt: histogram(
                registry,
                "hoinghi_link_rtt_seconds",
                "Participants' round-trip time from receiver reports, sampled every 2 s",
                &[0.01, 0.025, 0.05, 0.1, 0.2, 0.4, 0.8, 1.6],
            )?,
            link_loss: histogram(
                registry,
                "hoinghi_link_loss_ratio",
                "Loss subscribers report in receiver reports of streams not repaired on RTX (audio, video without RTX): what stayed lost after retransmission, sampled every 2 s",
                &[0.001, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5],
            )?,
            link_loss_before_nack: histogram(
                registry,
                "hoinghi_link_loss_before_nack_ratio",
                "Share of packets sent to a subscriber that its transport-wide feedback reports missing (before retransmission), per 2 s",
                &[0.001, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5],
            )?,
            link_estimate: histogram(
                registry,
                "hoinghi_link_estimate_bps",
                "Bandwidth estimate of each subscriber link (loss and queuing delay from transport-wide feedback), sampled every 2 s",
                &[
                    50e3, 100e3, 200e3, 300e3, 500e3, 750e3, 1e6, 1.5e6, 2e6, 3e6, 5e6, 10e6,
                ],
            )?,
            forward_latency: histogram(
                registry,
                "hoinghi_forward_latency_seconds",
                "Time the server adds to media: from the start of a worker pass that read RTP to the end of that pass's sends, observed once per RTP packet read (an upper bound for each: the pass reads up to 64 datagrams, then forwards and sends all)",
                &[
                    50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2e-3, 5e-3, 10e-3, 25e-3, 50e-3, 0.1,
                ],
            )?,
            layer_switches: {
                let c = IntCounterVec::new(
                    Opts::new(
                        "hoinghi_layer_switches_total",
                        "Simulcast layer switches made for subscribers (at keyframes)",
                    ),
                    &["worker", "direction"],
                )?;
                registry.register(Box::new(c.clone()))?;
                c
            },
            probes: {
                let c = IntCounterVec::new(
                    Opts::new(
                        "hoinghi_probes_total",
                        "Padding probe clusters before a step up: started, and how they ended",
                    ),
                    &["worker", "outcome"],
                )?;
                registry.register(Box::new(c.clone()))?;
                c
            },
            video_paused: gauge(
                registry,
                "hoinghi_video_paused_downtracks",
                "Videos not sent because the subscriber's link cannot carry even their lowest layer",
            )?,
            tcp_accepted: {
                let c = IntCounter::new(
                    "hoinghi_ice_tcp_accepted_total",
                    "ICE-TCP connections handed to a media worker (their first frame named one of our connections)",
                )?;
                registry.register(Box::new(c.clone()))?;
                c
            },
            tcp_refused: {
                let c = IntCounterVec::new(
                    Opts::new(
                        "hoinghi_ice_tcp_refused_total",
                        "ICE-TCP connections closed before reaching a worker, by reason",
                    ),
                    &["reason"],
                )?;
                registry.register(Box::new(c.clone()))?;
                c
            },
            tcp_links: gauge(
                registry,
                "hoinghi_ice_tcp_connections",
                "Open ICE-TCP connections (points that reach us over TCP)",
            )?,
            tcp_dropped: counter(
                registry,
                "hoinghi_ice_tcp_send_dropped_total",
                "Packets not queued on an ICE-TCP connection whose peer reads slower than we send",
            )?,
            tcp_bytes_in: counter(
                registry,
                "hoinghi_ice_tcp_bytes_in_total",
                "Payload bytes received over ICE-TCP",
            )?,
            tcp_bytes_out: counter(
                registry,
                "hoinghi_ice_tcp_bytes_out_total",
                "Payload bytes sent over ICE-TCP",
            )?,
        })
    }

    pub(crate) fn ice_tcp(&self) -> IceTcpMetrics {
        IceTcpMetrics {
            accepted: self.tcp_accepted.clone(),
            refused: self.tcp_refused.clone(),
        }
    }

    pub(crate) fn for_worker(&self, index: usize) -> WorkerMetrics {
        let w = index.to_string();
        let l = [w.as_str()];
        WorkerMetrics {
            sink: WorkerSink {
                packets_in: self.packets_in.with_label_values(&l),
                packets_out: self.packets_out.with_label_values(&l),
                datagrams_in: self.datagrams_in.with_label_values(&l),
                datagrams_out: self.datagrams_out.with_label_values(&l),
                bytes_in: self.bytes_in.with_label_values(&l),
                bytes_out: self.bytes_out.with_label_values(&l),
                unroutable: self.unroutable.with_label_values(&l),
                bad_datagrams: self.bad_datagrams.with_label_values(&l),
                send_dropped: self.send_dropped.with_label_values(&l),
                write_errors: self.write_errors.with_label_values(&l),
                keyframe_requests_in: self.keyframe_requests_in.with_label_values(&l),
                nacked_packets: self.nacked_packets.with_label_values(&l),
                nack_refused: self.nack_refused.with_label_values(&l),
                tcp_dropped: self.tcp_dropped.with_label_values(&l),
                tcp_bytes_in: self.tcp_bytes_in.with_label_values(&l),
                tcp_bytes_out: self.tcp_bytes_out.with_label_values(&l),
            },
            tcp_links: self.tcp_links.with_label_values(&l),
            tcp_dropped: 0,
            tcp_bytes_in: 0,
            tcp_bytes_out: 0,
            plis_sent: self.plis_sent.with_label_values(&l),
            tracks: self.tracks.with_label_values(&l),
            connections: self.connections.with_label_values(&l),
            link_rtt: self.link_rtt.clone(),
            link_loss: self.link_loss.clone(),
            link_loss_before_nack: self.link_loss_before_nack.clone(),
            link_estimate: self.link_estimate.clone(),
            forward_latency: self.forward_latency.local(),
            switches_up: self.layer_switches.with_label_values(&[w.as_str(), "up"]),
            switches_down: self.layer_switches.with_label_values(&[w.as_str(), "down"]),
            video_paused: self.video_paused.with_label_values(&l),
            probes_started: self.probes.with_label_values(&[w.as_str(), "started"]),
            probes_proved: self.probes.with_label_values(&[w.as_str(), "proved"]),
            probes_failed: self.probes.with_label_values(&[w.as_str(), "failed"]),
            layer_switches_up: 0,
            layer_switches_down: 0,
            packets_in: 0,
            packets_out: 0,
            datagrams_in: 0,
            datagrams_out: 0,
            bytes_in: 0,
            bytes_out: 0,
            unroutable: 0,
            bad_datagrams: 0,
            send_dropped: 0,
            write_errors: 0,
            keyframe_requests_in: 0,
            nacked_packets: 0,
            nack_refused: 0,
            cpu_seconds: self.cpu_seconds.with_label_values(&l),
            cpu_seen: 0.0,
        }
    }
}

struct WorkerSink {
    packets_in: IntCounter,
    packets_out: IntCounter,
    datagrams_in: IntCounter,
    datagrams_out: IntCounter,
    bytes_in: IntCounter,
    bytes_out: IntCounter,
    unroutable: IntCounter,
    bad_datagrams: IntCounter,
    send_dropped: IntCounter,
    write_errors: IntCounter,
    keyframe_requests_in: IntCounter,
    nacked_packets: IntCounter,
    nack_refused: IntCounter,
    tcp_dropped: IntCounter,
    tcp_bytes_in: IntCounter,
    tcp_bytes_out: IntCounter,
}

/// The ICE-TCP acceptor's counters.
pub(crate) struct IceTcpMetrics {
    pub accepted: IntCounter,
    refused: IntCounterVec,
}

impl IceTcpMetrics {
    pub fn refused(&self, reason: &str) {
        self.refused.with_label_values(&[reason]).inc();
    }
}

/// A worker's own counters; see the module comment.
pub(crate) struct WorkerMetrics {
    pub packets_in: u64,
    pub packets_out: u64,
    pub datagrams_in: u64,
    pub datagrams_out: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub unroutable: u64,
    pub bad_datagrams: u64,
    pub send_dropped: u64,
    pub write_errors: u64,
    pub keyframe_requests_in: u64,
    pub nacked_packets: u64,
    pub nack_refused: u64,
    pub tcp_links: IntGauge,
    pub tcp_dropped: u64,
    pub tcp_bytes_in: u64,
    pub tcp_bytes_out: u64,
    cpu_seconds: prometheus::Counter,
    /// Thread CPU seconds already added to `cpu_seconds`.
    cpu_seen: f64,
    pub plis_sent: IntCounter,
    pub tracks: IntGauge,
    pub connections: IntGauge,
    pub link_rtt: Histogram,
    pub link_loss: Histogram,
    pub link_loss_before_nack: Histogram,
    pub link_estimate: Histogram,
    /// See `hoinghi_forward_latency_seconds`; buffered, flushed with the counters.
    pub forward_latency: prometheus::local::LocalHistogram,
    pub video_paused: IntGauge,
    /// Probe clusters (see `probe.rs`): rare, counted directly.
    pub probes_started: IntCounter,
    pub probes_proved: IntCounter,
    pub probes_failed: IntCounter,
    pub layer_switches_up: u64,
    pub layer_switches_down: u64,
    switches_up: IntCounter,
    switches_down: IntCounter,
    sink: WorkerSink,
}

impl WorkerMetrics {
    /// Adds the calling thread's CPU time since the last call (call it from the worker).
    pub fn sample_thread_cpu(&mut self) {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: clock_gettime writes one timespec we own.
        if unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) } != 0 {
            return;
        }
        let now = ts.tv_sec as f64 + ts.tv_nsec as f64 / 1e9;
        if now > self.cpu_seen {
            self.cpu_seconds.inc_by(now - self.cpu_seen);
            self.cpu_seen = now;
        }
    }

    pub fn flush(&mut self) {
        self.forward_latency.flush();
        let s = &self.sink;
        for (local, shared) in [
            (&mut self.packets_in, &s.packets_in),
            (&mut self.packets_out, &s.packets_out),
            (&mut self.datagrams_in, &s.datagrams_in),
            (&mut self.datagrams_out, &s.datagrams_out),
            (&mut self.bytes_in, &s.bytes_in),
            (&mut self.bytes_out, &s.bytes_out),
            (&mut self.unroutable, &s.unroutable),
            (&mut self.bad_datagrams, &s.bad_datagrams),
            (&mut self.send_dropped, &s.send_dropped),
            (&mut self.write_errors, &s.write_errors),
            (&mut self.keyframe_requests_in, &s.keyframe_requests_in),
            (&mut self.nacked_packets, &s.nacked_packets),
            (&mut self.nack_refused, &s.nack_refused),
            (&mut self.tcp_dropped, &s.tcp_dropped),
            (&mut self.tcp_bytes_in, &s.tcp_bytes_in),
            (&mut self.tcp_bytes_out, &s.tcp_bytes_out),
            (&mut self.layer_switches_up, &self.switches_up),
            (&mut self.layer_switches_down, &self.switches_down),
        ] {
            if *local > 0 {
                shared.inc_by(*local);
                *local = 0;
            }
        }
    }
}
