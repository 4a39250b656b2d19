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
    if r.config.red {
        let red = &r.audio.red;
        s += &format!(
            "audio recovered by RED: {} of {} lost ({}% → {}% mean) · gaps >60 ms after recovery {} \
             · RED from the chair {} · points receiving RED {}\n",
            red.recovered,
            red.lost_before_recovery,
            f(red.loss_before_recovery_pct.mean),
            f(red.loss_after_recovery_pct.mean),
            red.gaps_over_60ms_total,
            if red.publisher_red { "yes" } else { "NO" },
            red.points_receiving_red,
        );
    }
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
    s += &layers_table(r);
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

fn opt(x: Option<f64>) -> String {
    x.map_or("-".into(), f)
}

/// Per-layer lines (with --simulcast), the floor holder, and the server's adaptation series.
fn layers_table(r: &Report) -> String {
    let mut s = String::new();
    if r.config.simulcast_layers.is_some() {
        let v = &r.video;
        s += &format!(
            "layers (chair video at the points): switches {} up / {} down · points told video paused {} ({} at the end)\n",
            v.layer_switches.up,
            v.layer_switches.down,
            v.points_told_paused,
            v.points_paused_at_end
        );
        for l in &v.layers {
            s += &format!(
                "  {} {}x{}: sent {} kbit/s · received p50 {} kbit/s · {} s p50 · reached {} · at end {} · first keyframe p50 {} s\n",
                l.rid,
                l.width,
                l.height,
                f(l.sent_kbps),
                f(l.kbps.p50),
                f(l.seconds.p50),
                l.points_reached,
                l.points_at_end,
                f(l.first_keyframe_s.p50),
            );
        }
    }
    if let Some(fl) = &r.floor {
        s += &format!(
            "floor: {} {} · {}/{} points receive its camera (first keyframe p50 {} s, {} kbit/s p50) · \
             per layer at end {:?} · chair: {} thumbnails, {} on the lowest layer, holder on {}\n",
            fl.holder,
            if fl.granted { "granted" } else { "NOT granted" },
            fl.points_receiving,
            fl.points_expected,
            f(fl.first_keyframe_s.p50),
            f(fl.kbps.p50),
            fl.points_per_layer,
            fl.chair_thumbnails,
            fl.chair_thumbnails_on_lowest,
            fl.chair_holder_layer.as_deref().unwrap_or("-"),
        );
    }
    let sv = &r.server;
    if sv.link_estimate_bps.is_some()
        || sv.layer_switches.is_some()
        || sv.video_paused_downtracks.is_some()
    {
        let est = sv.link_estimate_bps.clone().unwrap_or_default();
        s += &format!(
            "server links: estimate p10/p50/p90 {}/{}/{} kbit/s (n={}) · loss after NACK p50 {} · \
             switches {} up / {} down · paused videos {} (max {}) · NACKed packets {} ({} refused)\n",
            opt(est.p10.map(|b| b / 1e3)),
            opt(est.p50.map(|b| b / 1e3)),
            opt(est.p90.map(|b| b / 1e3)),
            est.count,
            opt(sv.link_loss_ratio.as_ref().and_then(|h| h.p50)),
            opt(sv.layer_switches.map(|x| x.up)),
            opt(sv.layer_switches.map(|x| x.down)),
            opt(sv.video_paused_downtracks.map(|p| p.end)),
            opt(sv.video_paused_downtracks.map(|p| p.max)),
            opt(sv.nack_requested_packets),
            opt(sv.nack_refused_packets),
        );
    }
    s += &targets_lines(r);
    s
}

/// Issue 11's targets: audio gaps over 100 ms, steadiness, the return after a dip, and the
/// points per layer each second.
fn targets_lines(r: &Report) -> String {
    let t = &r.targets;
    if r.points.media == 0 {
        return String::new();
    }
    let mut s = format!(
        "targets: audio gaps >100 ms after RED {} ({} from loss bursts, {} after the chair's own, {} at most points at once, {} after a keyframe) at {} points (longest p50/max {}/{} ms; chair's own \
         send gaps >100 ms {}, longest {} ms) · freeze ratio p95 {} · steady seconds on the lowest \
         layer or paused p50 {} · notice changes {} · video loss after NACK without probe \
         padding {}\n",
        t.audio_gaps_over_100ms_total,
        t.audio_gaps_over_100ms_from_loss,
        t.audio_gaps_over_100ms_after_chair_gap,
        t.audio_gaps_over_100ms_common,
        t.audio_gaps_over_100ms_after_keyframe,
        t.points_with_audio_gap_over_100ms,
        f(t.audio_longest_gap_ms.p50),
        f(t.audio_longest_gap_ms.max),
        t.chair_audio_send_gaps_over_100ms,
        f(t.chair_audio_send_longest_gap_ms),
        f(r.video.freeze_ratio.p95),
        f(t.lowest_or_paused_share.p50),
        t.video_paused_changes_total,
        t.video_loss_after_nack_without_padding_pct
            .map_or("-".to_owned(), |p| format!("{}%", f(p))),
    );
    if let Some([down, up]) = t.dip_s {
        s += &format!(
            "dip {down:.0}–{up:.0} s: top layer after recovery p50/max {}/{} s ({} of {} points) · \
             audio delay back to floor (p50 {} ms) p50/max {}/{} s ({} of {} points)\n",
            f(t.top_layer_after_recovery_s.p50),
            f(t.top_layer_after_recovery_s.max),
            t.points_back_on_top,
            t.points_with_recovery,
            f(t.audio_delay_floor_ms.p50),
            f(t.audio_delay_back_to_floor_s.p50),
            f(t.audio_delay_back_to_floor_s.max),
            t.points_audio_delay_back,
            t.points_with_recovery,
        );
    }
    if r.config.simulcast_layers.is_some() && !t.points_per_layer_series.is_empty() {
        let labels: Vec<String> = r
            .video
            .layers
            .iter()
            .map(|l| l.rid.clone())
            .chain(std::iter::once("none".into()))
            .collect();
        for (i, label) in labels.iter().enumerate() {
            let row: Vec<String> = t
                .points_per_layer_series
                .iter()
                .map(|c| c.get(i).copied().unwrap_or(0).to_string())
                .collect();
            s += &format!("points on {label} per second: {}\n", row.join(" "));
        }
    }
    s
}
