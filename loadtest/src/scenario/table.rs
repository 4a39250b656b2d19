//! The short human table printed after a run.

use super::report::Report;

fn f(x: f64) -> String {
    if x.abs() >= 100.0 {
        format!("{x:.0}")
    } else if x.abs() >= 10.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.2}")
    }
}

/// The short human table.
pub fn table(r: &Report) -> String {
    let mut s = String::new();
    let link = r
        .config
        .link
        .as_ref()
        .map_or("direct".to_owned(), |l| l.name.clone());
    s += &format!(
        "{:?} · {} · {} points · link {} · window {:.1}s\n",
        r.scenario, r.target, r.points.requested, link, r.window_s
    );
    s += &format!(
        "points: joined {} · media {} · decodable {} · failed {}{}\n",
        r.points.joined,
        r.points.media,
        r.points.decodable,
        r.points.failed,
        if r.points.churn_joins > 0 {
            format!(
                " · churn {} joins / {} leaves",
                r.points.churn_joins, r.points.churn_leaves
            )
        } else {
            String::new()
        }
    );
    let j = &r.join_latency_s;
    s += &format!(
        "join → first keyframe (s): p50 {} · p95 {} · max {} (n={})\n",
        f(j.p50),
        f(j.p95),
        f(j.max),
        j.count
    );
    let v = &r.video;
    s += &format!(
        "video: {} kbit/s p50 · {} fps p50 · loss {}% → {}% after NACK (p95 {}%) · freezes {} · \
         freeze ratio p95 {}\n",
        f(v.kbps.p50),
        f(v.fps.p50),
        f(v.loss_before_nack_pct.mean),
        f(v.loss_after_nack_pct.mean),
        f(v.loss_after_nack_pct.p95),
        v.freezes_total,
        f(v.freeze_ratio.p95)
    );
    s += &format!(
        "audio: {} kbit/s p50 · gaps >60 ms {} · gap ratio p95 {}\n",
        f(r.audio.kbps.p50),
        r.audio.gaps_over_60ms_total,
        f(r.audio.gap_ratio.p95)
    );
    if r.rtt_ms.count > 0 {
        s += &format!(
            "rtt (ms): p50 {} · p95 {}\n",
            f(r.rtt_ms.p50),
            f(r.rtt_ms.p95)
        );
    }
    s += &format!(
        "delivered/expected: {}/{} = {:.4}\n",
        r.delivery.packets_delivered, r.delivery.packets_expected, r.delivery.ratio
    );
    let sv = &r.server;
    s += &format!(
        "server ({}): cpu {} s ({} cores) · {} µs per forwarded packet · rss {} · packets out {}\n",
        sv.cpu_source,
        sv.cpu_seconds.map_or("-".into(), f),
        sv.cpu_cores.map_or("-".into(), f),
        sv.cpu_us_per_forwarded_packet.map_or("-".into(), f),
        sv.rss_bytes
            .map_or("-".into(), |b| format!("{:.1} MB", b as f64 / 1e6)),
        sv.packets_out.map_or("-".into(), |p| format!("{p:.0}")),
    );
    s += &format!(
        "generator: cpu {} s ({} cores)\n",
        f(r.generator.cpu_seconds),
        f(r.generator.cpu_cores)
    );
    if let Some(c) = &r.chair {
        s += &format!(
            "chair receives: {} video + {} audio streams · {} kbit/s video total · fps p50 {}\n",
            c.video_streams,
            c.audio_streams,
            f(c.video_kbps_total),
            f(c.video_fps.p50)
        );
    }
    for fl in r.failures.iter().take(5) {
        s += &format!("failure: {} [{}] {}\n", fl.point, fl.stage, fl.error);
    }
    if r.failures.len() > 5 {
        s += &format!(
            "… {} more failures in the JSON report\n",
            r.failures.len() - 5
        );
    }
    s
}
