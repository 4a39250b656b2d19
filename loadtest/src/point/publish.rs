//! The publish side: a video track of one stream or up to three simulcast layers (rids `q`, `h`,
//! `f`, lowest first, each its own SSRC, bitrate and keyframe resolution) and an audio track,
//! and the task that sends synthetic or file media on them.

use std::sync::Arc;
use std::time::Duration;

use anyhow::anyhow;
use bytes::Bytes;
use rtc::media_stream::MediaStreamTrack;
use rtc::rtcp;
use rtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtp;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodecParameters, RTCRtpEncodingParameters, RtpCodecKind,
};
use serde::Serialize;
use tokio::sync::{mpsc, watch};
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_local::{TrackLocal, TrackLocalEvent};
use webrtc::peer_connection::PeerConnection;

use super::peer::{Handler, new_pc, opus, red_codec, vp8};
use super::{Control, PointConfig, SharedStats, lock};
use crate::layers::{Ladder, MAX_LAYERS};
use crate::media::{OPUS_SILENCE, TemporalPattern, vp8_frame_in_layer, vp8_packetise};
use crate::mediafile::opus_packet_duration;
use crate::red::{RED_PAYLOAD_TYPE, RedEncoder};

pub use relay::peer::{SDES_MID_URI, SDES_RTP_STREAM_ID_URI, SimulcastIds};

/// Resolution of the single (non-simulcast) synthetic stream.
pub const SINGLE_DIMS: (u16, u16) = (640, 360);

/// Payload types for redundant audio, as negotiated on the audio sender: RED, and Opus (the
/// blocks inside).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RedFormat {
    pub red: u8,
    pub opus: u8,
}

/// The publish connection and its tracks.
pub(crate) async fn build_publisher(
    cfg: &PointConfig,
    stats: SharedStats,
    _control: mpsc::Sender<Control>,
) -> anyhow::Result<(
    Arc<dyn PeerConnection>,
    Arc<TrackLocalStaticRTP>,
    Arc<TrackLocalStaticRTP>,
)> {
    let (gathered, _) = watch::channel(false);
    let pc = new_pc(
        cfg,
        Arc::new(Handler {
            stats,
            epoch: cfg.epoch,
            gathered,
            publish: true,
            ladder: Arc::new(cfg.receive_ladder.clone()),
            failed: None,
        }),
        true,
    )
    .await?;
    let coding = relay::peer::encoding;
    let track = |kind: RtpCodecKind, name: &str, codings: Vec<RTCRtpEncodingParameters>| {
        Arc::new(TrackLocalStaticRTP::new(MediaStreamTrack::new(
            "sim".into(),
            format!("sim-{name}"),
            format!("sim-{name}"),
            kind,
            codings,
        )))
    };
    // One encoding per layer, lowest first: the offer's a=rid and a=simulcast:send lines follow
    // this order, and the server ranks layers by it.
    let video_codings = match &cfg.publish_layers {
        Some(ladder) => ladder.0.iter().map(|l| coding(vp8(), &l.rid)).collect(),
        None => vec![coding(vp8(), "")],
    };
    let video = track(RtpCodecKind::Video, "video", video_codings);
    let audio = track(RtpCodecKind::Audio, "audio", vec![coding(opus(), "")]);
    pc.add_track(video.clone() as Arc<dyn TrackLocal>)
        .await
        .map_err(|e| anyhow!("add video: {e}"))?;
    let audio_sender = pc
        .add_track(audio.clone() as Arc<dyn TrackLocal>)
        .await
        .map_err(|e| anyhow!("add audio: {e}"))?;
    if cfg.red {
        // RED first, as a browser's `setCodecPreferences` puts it: the track's own codec (Opus)
        // would otherwise lead the offer, and the server's answer keeps the offer's order.
        let prefs = vec![
            RTCRtpCodecParameters {
                rtp_codec: red_codec(),
                payload_type: RED_PAYLOAD_TYPE,
            },
            RTCRtpCodecParameters {
                rtp_codec: opus(),
                payload_type: 111,
            },
        ];
        for t in pc.get_transceivers().await {
            if let Ok(Some(sender)) = t.sender().await
                && sender.id() == audio_sender.id()
            {
                t.set_codec_preferences(prefs.clone())
                    .await
                    .map_err(|e| anyhow!("RED first: {e}"))?;
            }
        }
    }
    Ok((pc, video, audio))
}

/// The layers a keyframe request asks for: a PLI names one SSRC, a FIR lists SSRCs. A request
/// for an SSRC we do not send (0, or a stale one) asks for every layer, as an encoder would
/// answer it.
pub fn requested_layers(packets: &[Box<dyn rtcp::Packet>], ssrcs: &[u32]) -> [bool; MAX_LAYERS] {
    let mut want = [false; MAX_LAYERS];
    let mut ask = |ssrc: u32| match ssrcs.iter().position(|s| *s == ssrc) {
        Some(i) if i < MAX_LAYERS => want[i] = true,
        _ => want = [true; MAX_LAYERS],
    };
    for p in packets {
        if let Some(pli) = p.as_any().downcast_ref::<PictureLossIndication>() {
            ask(pli.media_ssrc);
        } else if let Some(fir) = p.as_any().downcast_ref::<FullIntraRequest>() {
            for e in &fir.fir {
                ask(e.ssrc);
            }
        }
    }
    want
}

/// One video stream being sent: its SSRC, sequence, picture id and keyframe wish.
struct Encoding {
    ssrc: u32,
    rid: Bytes,
    seq: u16,
    picture_id: u16,
    frame_bytes: usize,
    dims: (u16, u16),
    want_key: bool,
    temporal: TemporalPattern,
}

/// Sends media until shutdown: Opus every 20 ms, VP8 at `video_fps` with a keyframe at start,
/// periodically if configured, and whenever a keyframe request arrives. With simulcast
/// ([`PointConfig::publish_layers`] and `ids` from the answer), each layer sends its own frame
/// size and resolution on its own SSRC, with the capture timestamp shared across layers as
/// browsers do, and a keyframe request for one layer's SSRC makes a keyframe on that layer only.
///
/// With clips ([`PointConfig::files`]): the IVF's frames in order at `video_fps`, looping, with
/// the file's own keyframes (a keyframe request skips ahead to the next one, as an encoder would
/// make one now; `periodic_keyframes` does not apply); the Ogg's Opus packets in order, looping,
/// each sent after the previous packet's duration (from its TOC byte).
///
/// With `red` (RED negotiated), each audio packet is RED with the payload type the answer gave
/// it: the frame, and the previous frame as one redundant block (RFC 2198).
pub(crate) fn spawn_media(
    cfg: PointConfig,
    video: Arc<TrackLocalStaticRTP>,
    audio: Arc<TrackLocalStaticRTP>,
    stats: SharedStats,
    ids: Option<SimulcastIds>,
    red: Option<RedFormat>,
    mut shutdown: watch::Receiver<bool>,
) {
    let (key_tx, mut key_rx) = mpsc::channel::<[bool; MAX_LAYERS]>(8);
    let video_rtcp = video.clone();
    let stats_rtcp = stats.clone();
    tokio::spawn(async move {
        let ssrcs: Vec<u32> = video_rtcp.track().await.ssrcs().collect();
        while let Some(evt) = video_rtcp.poll().await {
            if let TrackLocalEvent::OnRtcpPacket(packets) = evt {
                let want = requested_layers(&packets, &ssrcs);
                if want.iter().any(|w| *w) {
                    {
                        let mut s = lock(&stats_rtcp);
                        s.plis_received += 1;
                        for (i, w) in want.iter().enumerate() {
                            s.layers_sent[i].keyframe_requests += u64::from(*w);
                        }
                    }
                    let _ = key_tx.try_send(want);
                }
            }
        }
    });
    tokio::spawn(async move {
        let fps = cfg.video_fps.max(1);
        let codings = video.track().await.codings().to_vec();
        let ladder = cfg
            .publish_layers
            .clone()
            .unwrap_or_else(|| Ladder::single(0, SINGLE_DIMS.0, SINGLE_DIMS.1));
        let mut encodings: Vec<Encoding> = codings
            .iter()
            .zip(&ladder.0)
            .map(|(c, l)| Encoding {
                ssrc: c.rtp_coding_parameters.ssrc.unwrap_or(1),
                rid: Bytes::copy_from_slice(l.rid.as_bytes()),
                seq: rand::random(),
                picture_id: rand::random::<u16>() & 0x7FFF,
                frame_bytes: if cfg.publish_layers.is_some() {
                    crate::scenario::frame_bytes(l.kbps, fps)
                } else {
                    cfg.video_frame_bytes
                },
                dims: (l.width, l.height),
                want_key: true,
                temporal: TemporalPattern::new(cfg.temporal_layers, rand::random()),
            })
            .collect();
        let audio_ssrc = audio.track().await.ssrcs().next().unwrap_or(2);
        let mut video_tick = tokio::time::interval(Duration::from_secs(1) / fps);
        let mut next_audio = tokio::time::Instant::now();
        let (mut audio_at, mut video_at) = (0usize, 0usize);
        let mut aseq = rand::random::<u16>();
        let (mut vts, mut ats) = (rand::random::<u32>(), rand::random::<u32>());
        let mut frames: u64 = 0;
        let mut red_encoder = red.map(|r| (r.red, RedEncoder::new(r.opus, 1)));
        let every_frames = cfg
            .periodic_keyframes
            .map(|every| (every.as_secs_f64() * f64::from(fps)).max(1.0) as u64);
        loop {
            tokio::select! {
                _ = shutdown.changed() => break,
                Some(want) = key_rx.recv() => {
                    for (e, w) in encodings.iter_mut().zip(want) {
                        e.want_key |= w;
                    }
                }
                _ = tokio::time::sleep_until(next_audio) => {
                    let (payload, duration) = match &cfg.files.audio {
                        Some(clip) => {
                            let p = clip.packets[audio_at % clip.packets.len()].clone();
                            audio_at = audio_at.wrapping_add(1);
                            let d = opus_packet_duration(&p).unwrap_or(Duration::from_millis(20));
                            (p, d)
                        }
                        None => (Bytes::from_static(&OPUS_SILENCE), Duration::from_millis(20)),
                    };
                    next_audio += duration;
                    let (payload_type, payload) = match &mut red_encoder {
                        Some((pt, enc)) => (*pt, enc.wrap(ats, payload)),
                        None => (111, payload),
                    };
                    let p = rtp::Packet {
                        header: rtp::header::Header {
                            version: 2,
                            payload_type,
                            sequence_number: aseq,
                            timestamp: ats,
                            ssrc: audio_ssrc,
                            marker: false,
                            ..Default::default()
                        },
                        payload,
                    };
                    aseq = aseq.wrapping_add(1);
                    // 48 kHz RTP clock.
                    ats = ats.wrapping_add((duration.as_micros() * 48 / 1_000) as u32);
                    if audio.write_rtp(p).await.is_ok() {
                        let mut s = lock(&stats);
                        s.packets_sent += 1;
                        s.audio_send_gaps.on_packet(std::time::Instant::now());
                    }
                }
                _ = video_tick.tick() => {
                    let periodic = every_frames.is_some_and(|n| frames > 0 && frames.is_multiple_of(n));
                    for (layer, e) in encodings.iter_mut().enumerate() {
                        let (key, payloads) = match &cfg.files.video {
                            Some(clip) => {
                                if e.want_key {
                                    video_at = clip.next_keyframe(video_at);
                                }
                                let frame = &clip.frames[video_at];
                                video_at = (video_at + 1) % clip.frames.len();
                                (frame.keyframe, vp8_packetise(e.picture_id, &frame.data))
                            }
                            None => {
                                let key = e.want_key || periodic;
                                let (temporal, weight) = e.temporal.next(key);
                                let size = if key {
                                    e.frame_bytes * 4
                                } else {
                                    (e.frame_bytes as f64 * weight).round() as usize
                                };
                                let frame = vp8_frame_in_layer(
                                    e.picture_id, key, size, e.dims.0, e.dims.1, temporal,
                                );
                                (key, frame)
                            }
                        };
                        e.want_key = false;
                        let n = payloads.len();
                        let (mut sent, mut bytes) = (0u64, 0u64);
                        for (i, payload) in payloads.into_iter().enumerate() {
                            let mut header = rtp::header::Header {
                                version: 2,
                                payload_type: 96,
                                sequence_number: e.seq,
                                timestamp: vts,
                                ssrc: e.ssrc,
                                marker: i + 1 == n,
                                ..Default::default()
                            };
                            if let Some(ids) = &ids {
                                // Bytes clones share the buffer: no copy per packet.
                                let _ = header.set_extension(ids.mid_ext, ids.mid.clone());
                                let _ = header.set_extension(ids.rid_ext, e.rid.clone());
                            }
                            e.seq = e.seq.wrapping_add(1);
                            let len = payload.len() as u64;
                            if video.write_rtp(rtp::Packet { header, payload }).await.is_ok() {
                                sent += 1;
                                bytes += len;
                            }
                        }
                        {
                            let mut s = lock(&stats);
                            s.packets_sent += sent;
                            let l = &mut s.layers_sent[layer.min(MAX_LAYERS - 1)];
                            l.packets += sent;
                            l.bytes += bytes;
                            if key {
                                s.keyframes_sent += 1;
                                s.layers_sent[layer.min(MAX_LAYERS - 1)].keyframes += 1;
                            }
                        }
                        let padded = send_probe_padding(&video, e, vts, ids.as_ref(), cfg.probe_padding).await;
                        lock(&stats).padding_sent += padded;
                        e.picture_id = e.picture_id.wrapping_add(1) & 0x7FFF;
                    }
                    vts = vts.wrapping_add(90_000 / fps);
                    frames += 1;
                }
            }
        }
    });
}

/// `count` padding-only packets after a frame on `e`'s SSRC, numbered in its sequence (a
/// packet with the padding bit and no payload: `rtc` writes four bytes of padding). Returns how
/// many were written.
async fn send_probe_padding(
    video: &TrackLocalStaticRTP,
    e: &mut Encoding,
    timestamp: u32,
    ids: Option<&SimulcastIds>,
    count: usize,
) -> u64 {
    let mut sent = 0;
    for _ in 0..count {
        let mut header = rtp::header::Header {
            version: 2,
            padding: true,
            payload_type: 96,
            sequence_number: e.seq,
            timestamp,
            ssrc: e.ssrc,
            ..Default::default()
        };
        if let Some(ids) = ids {
            let _ = header.set_extension(ids.mid_ext, ids.mid.clone());
            let _ = header.set_extension(ids.rid_ext, e.rid.clone());
        }
        e.seq = e.seq.wrapping_add(1);
        let packet = rtp::Packet {
            header,
            payload: Bytes::new(),
        };
        if video.write_rtp(packet).await.is_ok() {
            sent += 1;
        }
    }
    sent
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyframe_requests_name_their_layer() {
        let ssrcs = [11, 22, 33];
        let pli = |s| -> Box<dyn rtcp::Packet> {
            Box::new(PictureLossIndication {
                sender_ssrc: 0,
                media_ssrc: s,
            })
        };
        assert_eq!(requested_layers(&[pli(22)], &ssrcs), [false, true, false]);
        let fir: Box<dyn rtcp::Packet> = Box::new(FullIntraRequest {
            sender_ssrc: 0,
            media_ssrc: 0,
            fir: vec![
                rtcp::payload_feedbacks::full_intra_request::FirEntry {
                    ssrc: 33,
                    sequence_number: 1,
                },
                rtcp::payload_feedbacks::full_intra_request::FirEntry {
                    ssrc: 11,
                    sequence_number: 1,
                },
            ],
        });
        assert_eq!(requested_layers(&[fir], &ssrcs), [true, false, true]);
        assert_eq!(requested_layers(&[pli(99)], &ssrcs), [true; 3]);
        assert_eq!(requested_layers(&[], &ssrcs), [false; 3]);
    }
}
