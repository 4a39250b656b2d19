//! The simulcast publisher against an independent receiver (a plain async `webrtc` peer that
//! answers its offer, no server in between): the offer declares the layers in order, and what
//! arrives is three SSRCs, each packet carrying the negotiated rid extension, each layer's
//! keyframes at its own resolution. `write_rtp` returns Ok even when the driver drops a packet,
//! so only what arrives proves the layers are really sent.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::{
    PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler, RTCConfigurationBuilder,
    RTCSessionDescription, register_default_interceptors,
};

use super::peer::media_engine;
use super::publish::{SDES_RTP_STREAM_ID_URI, SimulcastIds, build_publisher, spawn_media};
use super::{PointConfig, PointStats, SharedStats, negotiated_red, wait_gathered};
use crate::layers::{Ladder, vp8_keyframe_dims};

/// What the receiver saw per SSRC: the rid from OnOpen, the rid extension values in packets,
/// packets, and keyframe dimensions.
#[derive(Debug, Default, Clone)]
struct Seen {
    open_rid: Option<String>,
    ext_rids: Vec<String>,
    packets: u64,
    key_dims: Vec<(u16, u16)>,
}

struct Receiver {
    seen: Arc<Mutex<HashMap<u32, Seen>>>,
    rid_ext: Arc<Mutex<Option<u8>>>,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Receiver {
    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        let seen = self.seen.clone();
        let rid_ext = self.rid_ext.clone();
        tokio::spawn(async move {
            while let Some(evt) = track.poll().await {
                let mut seen = seen.lock().unwrap();
                match evt {
                    TrackRemoteEvent::OnOpen(init) => {
                        seen.entry(init.ssrc).or_default().open_rid = init.rid.clone();
                    }
                    TrackRemoteEvent::OnRtpPacket(p) => {
                        let s = seen.entry(p.header.ssrc).or_default();
                        s.packets += 1;
                        if let Some(id) = *rid_ext.lock().unwrap()
                            && let Some(v) = p.header.get_extension(id)
                        {
                            let rid = String::from_utf8_lossy(&v).into_owned();
                            if !s.ext_rids.contains(&rid) {
                                s.ext_rids.push(rid);
                            }
                        }
                        if let Some(d) = vp8_keyframe_dims(&p.payload) {
                            s.key_dims.push(d);
                        }
                    }
                    _ => {}
                }
            }
        });
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_layers_arrive_with_their_rids_and_resolutions() {
    let ladder = Ladder::parse("100,300,600").unwrap();
    let cfg = PointConfig {
        publish: true,
        video_fps: 15,
        publish_layers: Some(ladder.clone()),
        periodic_keyframes: Some(Duration::from_millis(500)),
        ..PointConfig::default()
    };
    let stats: SharedStats = Arc::new(Mutex::new(PointStats::default()));
    let (control, _keep) = mpsc::channel(1);
    let (publisher, video, audio) = build_publisher(&cfg, stats.clone(), control).await.unwrap();
    let offer = publisher.create_offer(None).await.unwrap();
    publisher.set_local_description(offer).await.unwrap();
    wait_gathered(&publisher).await;
    let offer = publisher.local_description().await.unwrap().sdp;
    for line in [
        "a=rid:q send",
        "a=rid:h send",
        "a=rid:f send",
        "a=simulcast:send q;h;f",
    ] {
        assert!(offer.contains(line), "offer lacks {line:?}:\n{offer}");
    }

    let seen = Arc::new(Mutex::new(HashMap::new()));
    let rid_ext = Arc::new(Mutex::new(None));
    let mut media = media_engine(false).unwrap();
    let registry = register_default_interceptors(Default::default(), &mut media).unwrap();
    let receiver: Arc<dyn PeerConnection> = Arc::new(
        PeerConnectionBuilder::new()
            .with_configuration(RTCConfigurationBuilder::new().build())
            .with_media_engine(media)
            .with_interceptor_registry(registry)
            .with_handler(Arc::new(Receiver {
                seen: seen.clone(),
                rid_ext: rid_ext.clone(),
            }))
            .with_udp_addrs(vec!["127.0.0.1:0".to_owned()])
            .build()
            .await
            .unwrap(),
    );
    receiver
        .set_remote_description(RTCSessionDescription::offer(offer).unwrap())
        .await
        .unwrap();
    let answer = receiver.create_answer(None).await.unwrap();
    receiver.set_local_description(answer).await.unwrap();
    wait_gathered(&receiver).await;
    let answer = receiver.local_description().await.unwrap().sdp;
    let ids = SimulcastIds::from_sdp(&answer).unwrap();
    assert!(answer.contains(&format!(
        "a=extmap:{} {SDES_RTP_STREAM_ID_URI}",
        ids.rid_ext
    )));
    *rid_ext.lock().unwrap() = Some(ids.rid_ext);
    publisher
        .set_remote_description(RTCSessionDescription::answer(answer).unwrap())
        .await
        .unwrap();
    let (stop, stopped) = watch::channel(false);
    spawn_media(cfg, video, audio, stats.clone(), Some(ids), None, stopped);

    // Until every layer delivered two keyframes (the first and a periodic one), or 20 s.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let done = {
            let seen = seen.lock().unwrap();
            seen.values().filter(|s| s.key_dims.len() >= 2).count() >= 3
        };
        if done || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = stop.send(true);
    let seen = seen.lock().unwrap().clone();
    let video: Vec<&Seen> = seen.values().filter(|s| !s.key_dims.is_empty()).collect();
    assert_eq!(
        video.len(),
        3,
        "three video SSRCs with keyframes: {seen:#?}"
    );
    let mut by_rid: Vec<(String, (u16, u16))> = video
        .iter()
        .map(|s| {
            assert_eq!(s.ext_rids.len(), 1, "one rid per SSRC: {s:?}");
            assert_eq!(s.open_rid.as_ref(), Some(&s.ext_rids[0]), "{s:?}");
            assert!(
                s.key_dims.iter().all(|d| *d == s.key_dims[0]),
                "one resolution per layer: {s:?}"
            );
            (s.ext_rids[0].clone(), s.key_dims[0])
        })
        .collect();
    by_rid.sort();
    assert_eq!(
        by_rid,
        vec![
            ("f".to_owned(), (1280, 720)),
            ("h".to_owned(), (640, 360)),
            ("q".to_owned(), (320, 180)),
        ]
    );
    // What the publisher counted as sent per layer increases with the layer's bitrate.
    let sent = stats.lock().unwrap().layers_sent;
    assert!(
        sent[0].bytes < sent[1].bytes && sent[1].bytes < sent[2].bytes,
        "{sent:?}"
    );
    let _ = publisher.close().await;
    let _ = receiver.close().await;
}

/// With `red`, the publish offer lists RED first for audio, and the payload types the publisher
/// wraps with come from the answer: RED when the answerer accepted it, nothing when it did not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_red_publisher_offers_red_first_and_reads_the_answer() {
    for accept_red in [true, false] {
        let cfg = PointConfig {
            publish: true,
            red: true,
            ..PointConfig::default()
        };
        let stats: SharedStats = Arc::new(Mutex::new(PointStats::default()));
        let (control, _keep) = mpsc::channel(1);
        let (publisher, _video, _audio) = build_publisher(&cfg, stats, control).await.unwrap();
        let offer = publisher.create_offer(None).await.unwrap();
        publisher.set_local_description(offer).await.unwrap();
        wait_gathered(&publisher).await;
        let offer = publisher.local_description().await.unwrap().sdp;
        let m_audio = offer
            .lines()
            .find(|l| l.starts_with("m=audio"))
            .expect("an audio section");
        assert!(
            m_audio.trim_end().ends_with(" 63 111"),
            "RED first: {m_audio}"
        );
        assert!(offer.contains("a=rtpmap:63 red/48000/2"), "{offer}");
        assert!(offer.contains("a=fmtp:63 111/111"), "{offer}");

        let mut media = media_engine(accept_red).unwrap();
        let registry = register_default_interceptors(Default::default(), &mut media).unwrap();
        let receiver: Arc<dyn PeerConnection> = Arc::new(
            PeerConnectionBuilder::new()
                .with_configuration(RTCConfigurationBuilder::new().build())
                .with_media_engine(media)
                .with_interceptor_registry(registry)
                .with_handler(Arc::new(Receiver {
                    seen: Default::default(),
                    rid_ext: Default::default(),
                }))
                .with_udp_addrs(vec!["127.0.0.1:0".to_owned()])
                .build()
                .await
                .unwrap(),
        );
        receiver
            .set_remote_description(RTCSessionDescription::offer(offer).unwrap())
            .await
            .unwrap();
        let answer = receiver.create_answer(None).await.unwrap();
        receiver.set_local_description(answer).await.unwrap();
        let answer = receiver.local_description().await.unwrap().sdp;
        publisher
            .set_remote_description(RTCSessionDescription::answer(answer.clone()).unwrap())
            .await
            .unwrap();
        let red = negotiated_red(&publisher).await;
        if accept_red {
            assert_eq!(
                red,
                Some(super::RedFormat { red: 63, opus: 111 }),
                "{answer}"
            );
        } else {
            assert_eq!(red, None, "{answer}");
        }
        let _ = publisher.close().await;
        let _ = receiver.close().await;
    }
}
