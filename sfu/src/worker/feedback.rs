//! RTCP in both directions: what subscribers report (keyframe requests, receiver reports) and
//! the keyframe requests we send publishers, coalesced per simulcast layer.

use std::cmp::Reverse;
use std::time::Instant;

use rtc::rtcp;
use rtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;

use super::{Timer, WorkerCore};
use crate::api::TrackKind;

impl WorkerCore {
    /// RTCP the application sees: keyframe requests and receiver reports (see `conn.rs`).
    pub(super) fn on_rtcp(&mut self, now: Instant, key: usize, packets: &[Box<dyn rtcp::Packet>]) {
        for p in packets {
            let any = p.as_any();
            if let Some(rr) = any.downcast_ref::<rtc::rtcp::receiver_report::ReceiverReport>() {
                if let Some(c) = self.conns.get_mut(key) {
                    let ntp_now = crate::rtt::ntp_middle_now();
                    for r in &rr.reports {
                        // Loss as the subscriber lives it, after repair: a video stream repaired
                        // on RTX reports its loss before repair (recovered packets do not count
                        // as received in libwebrtc), and an RTX stream's own report means
                        // nothing here; audio, and video without RTX, report what stayed lost.
                        let after_repair = match self.track_by_down_ssrc.get(&(key, r.ssrc)) {
                            Some(&t) => {
                                c.rtx_refused
                                    || self
                                        .tracks
                                        .get(t)
                                        .is_none_or(|t| t.kind == TrackKind::Audio)
                            }
                            None => false,
                        };
                        if after_repair {
                            c.reported_loss =
                                c.reported_loss.max(f64::from(r.fraction_lost) / 256.0);
                        }
                        if let Some(sample) =
                            crate::rtt::from_report(ntp_now, r.last_sender_report, r.delay)
                        {
                            // Smoothed like TCP's SRTT, so one late report does not flip the icon.
                            c.rtt = Some(c.rtt.map_or(sample, |old| old * 0.75 + sample * 0.25));
                        }
                    }
                }
                continue;
            }
            let media_ssrc = if let Some(pli) = any.downcast_ref::<PictureLossIndication>() {
                pli.media_ssrc
            } else if let Some(fir) = any.downcast_ref::<FullIntraRequest>() {
                fir.fir.first().map(|e| e.ssrc).unwrap_or(fir.media_ssrc)
            } else {
                continue;
            };
            if let Some(&track) = self.track_by_down_ssrc.get(&(key, media_ssrc)) {
                self.metrics.keyframe_requests_in += 1;
                // The keyframe the subscriber lacks is of the layer it is on (or going to), on
                // the downtrack the request names (a relay has one per layer of the track).
                let rank = self.tracks.get(track).and_then(|t| {
                    t.downtracks
                        .iter()
                        .find(|d| d.conn == key && d.ssrc == media_ssrc)
                        .and_then(|d| d.target.or(d.current))
                });
                if let Some(rank) = rank {
                    self.request_keyframe(now, track, rank);
                }
            }
        }
    }

    pub(super) fn request_keyframe(&mut self, now: Instant, track: usize, rank: u8) {
        let Some(t) = self.tracks.get_mut(track) else {
            return;
        };
        if t.kind != TrackKind::Video {
            return;
        }
        let Some(layer) = t.layer_mut(rank) else {
            return;
        };
        if layer.keyframes.request(now) {
            self.send_pli(now, track, rank);
        } else if let Some(at) = layer.keyframes.poll_timeout() {
            self.timers
                .push(Reverse((at, Timer::Keyframe(track, rank))));
        }
    }

    pub(super) fn keyframe_timer(&mut self, now: Instant, track: usize, rank: u8) {
        if let Some(l) = self.tracks.get_mut(track).and_then(|t| t.layer_mut(rank))
            && l.keyframes.handle_timeout(now)
        {
            self.send_pli(now, track, rank);
        }
    }

    fn send_pli(&mut self, now: Instant, track: usize, rank: u8) {
        let Some(t) = self.tracks.get_mut(track) else {
            return;
        };
        let Some(media_ssrc) = t
            .layer_mut(rank)
            .map(|l| l.ssrc)
            .filter(|s| *s != super::track::UNKNOWN_SSRC)
        else {
            return;
        };
        let (key, receiver_id) = (t.conn, t.receiver_id);
        let Some(c) = self.conns.get_mut(key) else {
            return;
        };
        let Some(mut receiver) = c.pc.rtp_receiver(receiver_id) else {
            return;
        };
        let pli = PictureLossIndication {
            sender_ssrc: 0,
            media_ssrc,
        };
        if let Err(e) = receiver.write_rtcp(now, vec![Box::new(pli)]) {
            tracing::debug!("write PLI: {e}");
            return;
        }
        self.metrics.plis_sent.inc();
        self.mark_dirty(key);
    }

    /// A subscriber (re)connected: every video it receives needs a keyframe on its layer.
    pub(super) fn request_keyframes_for_subscriber(&mut self, now: Instant, sub_key: usize) {
        let wanted: Vec<(usize, u8)> = self
            .tracks
            .iter()
            .filter(|(_, t)| t.kind == TrackKind::Video)
            .flat_map(|(k, t)| {
                t.downtracks
                    .iter()
                    .filter(|d| d.conn == sub_key)
                    .filter_map(move |d| d.target.map(|rank| (k, rank)))
            })
            .collect();
        for (t, rank) in wanted {
            self.request_keyframe(now, t, rank);
        }
    }
}
