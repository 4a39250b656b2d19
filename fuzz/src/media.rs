//! RTP payload and header paths of the forwarding hot path.

use bytes::Bytes;
use sfu::audio_level::{self as level, AudioActivity};
use sfu::fuzzing::rtp::header::Header;
use sfu::fuzzing::{Marshal, Unmarshal};
use sfu::keyframe::{VideoCodec, h264_is_keyframe, vp8_is_keyframe_start};
use sfu::vp8::{self, Munger, Offsets, Rewrites};

/// VP8 descriptor: positions in bounds, rewriting touches only the two counters (and keeps a
/// keyframe a keyframe), and a switch continues the counters after the last ones sent.
///
/// Input: 3 bytes of offsets, then a payload; the same bytes are also read as a run of
/// `(switched, 15-bit PictureID, TL0PICIDX)` packets for the munger.
pub fn vp8_descriptor(data: &[u8]) {
    let Some((head, payload)) = data.split_first_chunk::<3>() else {
        return;
    };
    let payload = Bytes::copy_from_slice(payload);
    if let Some(d) = vp8::parse(&payload) {
        let offsets = Offsets {
            picture_id: u16::from_be_bytes([head[0], head[1]]),
            tl0: head[2],
        };
        if let Some((pid, at, long)) = d.picture_id {
            assert!(at + if long { 2 } else { 1 } <= payload.len());
            assert!(pid <= if long { 0x7fff } else { 0x7f });
        }
        if let Some((_, at)) = d.tl0 {
            assert!(at < payload.len());
        }
        let out = vp8::rewrite(&payload, &d, offsets);
        assert_eq!(out.len(), payload.len());
        let again = vp8::parse(&out).expect("a rewritten descriptor parses");
        let mut touched = Vec::new();
        match (d.picture_id, again.picture_id) {
            (Some((pid, at, long)), Some((new, at2, long2))) => {
                assert_eq!((at, long), (at2, long2));
                let mask = if long { 0x7fff } else { 0x7f };
                assert_eq!(new, pid.wrapping_add(offsets.picture_id) & mask);
                touched.extend(at..at + if long { 2 } else { 1 });
            }
            (None, None) => {}
            other => panic!("PictureID presence changed: {other:?}"),
        }
        match (d.tl0, again.tl0) {
            (Some((tl0, at)), Some((new, at2))) => {
                assert_eq!(at, at2);
                assert_eq!(new, tl0.wrapping_add(offsets.tl0));
                touched.push(at);
            }
            (None, None) => {}
            other => panic!("TL0PICIDX presence changed: {other:?}"),
        }
        for (i, (a, b)) in payload.iter().zip(out.iter()).enumerate() {
            if !touched.contains(&i) {
                assert_eq!(a, b, "byte {i} changed");
            }
        }
        assert_eq!(
            vp8_is_keyframe_start(&payload),
            vp8_is_keyframe_start(&out),
            "rewriting changed the keyframe verdict"
        );
        let mut rw = Rewrites::default();
        assert_eq!(rw.get(&payload, &d, offsets), out);
        assert_eq!(rw.get(&payload, &d, offsets), out);
    }
    munger_continues(data);
}

fn munger_continues(data: &[u8]) {
    let mut m = Munger::default();
    let mut last: Option<(u16, u8)> = None;
    for chunk in data.chunks_exact(4) {
        let switched = chunk[0] & 1 != 0;
        let pid = u16::from_be_bytes([chunk[1], chunk[2]]) & 0x7fff;
        let tl0 = chunk[3];
        let payload = [0x90, 0xC0, 0x80 | (pid >> 8) as u8, pid as u8, tl0, 0x00];
        let d = vp8::parse(&payload).expect("a built descriptor parses");
        let o = m.offsets(&d, switched);
        let sent = (
            pid.wrapping_add(o.picture_id) & 0x7fff,
            tl0.wrapping_add(o.tl0),
        );
        if switched && let Some((lp, lt)) = last {
            assert_eq!(sent, ((lp + 1) & 0x7fff, lt.wrapping_add(1)), "switch");
        }
        let newer = last.is_none_or(|(lp, _)| (sent.0.wrapping_sub(lp) & 0x7fff) < 0x4000);
        if newer {
            last = Some(sent);
        }
    }
}

/// RED: the primary is the packet's tail after the headers and redundant blocks, as a simple
/// reading of RFC 2198 finds it, and shares the packet's storage.
pub fn red_primary(data: &[u8]) {
    let payload = Bytes::copy_from_slice(data);
    let got = sfu::red::primary(&payload);
    // Reference: headers are 4 bytes while F is set, then one; data follows in order.
    let mut at = 0usize;
    let mut blocks = 0usize;
    let expected = loop {
        match data.get(at) {
            None => break None,
            Some(b) if b & 0x80 == 0 => {
                let start = at + 1 + blocks;
                break (start < data.len()).then_some(start);
            }
            Some(_) if at + 4 > data.len() => break None,
            Some(_) => {
                blocks += usize::from(data[at + 2] & 0x03) << 8 | usize::from(data[at + 3]);
                at += 4;
            }
        }
    };
    match (got, expected) {
        (Some(p), Some(start)) => {
            assert!(!p.is_empty());
            assert_eq!(&p[..], &data[start..]);
            assert_eq!(
                p.as_ptr(),
                payload[start..].as_ptr(),
                "the primary is a slice"
            );
        }
        (None, None) => {}
        (got, expected) => panic!("primary {got:?}, expected from {expected:?}"),
    }
}

/// Keyframe detection: a "yes" only where the format allows one, for both codecs.
pub fn keyframe(data: &[u8]) {
    let vp8 = vp8_is_keyframe_start(data);
    assert_eq!(VideoCodec::Vp8.is_keyframe_start(data), vp8);
    if vp8 {
        // Start of partition 0, and a frame header with P = 0 after the descriptor.
        assert_eq!(data[0] & 0x17, 0x10);
        let header_at = match vp8::parse(data) {
            Some(d) => {
                let after_pid = d.picture_id.map(|(_, at, long)| at + 1 + usize::from(long));
                let after_tl0 = d.tl0.map(|(_, at)| at + 1);
                after_pid.max(after_tl0).unwrap_or(1)
            }
            None => panic!("a keyframe whose descriptor does not parse"),
        };
        assert!(header_at < data.len());
    }
    let h264 = h264_is_keyframe(data);
    assert_eq!(VideoCodec::H264.is_keyframe_start(data), h264);
    if h264 {
        assert!(
            h264_reference(data),
            "h264 says keyframe, the reference does not"
        );
    }
}

/// Independent reading: IDR/SPS, one in a STAP-A, or an FU-A starting one.
fn h264_reference(data: &[u8]) -> bool {
    let key = |nal: u8| matches!(nal & 0x1f, 5 | 7);
    match data.first().map(|b| b & 0x1f) {
        Some(5 | 7) => true,
        Some(24) => {
            let mut rest = &data[1..];
            while rest.len() > 2 {
                if key(rest[2]) {
                    return true;
                }
                let size = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
                rest = rest.get(2 + size..).unwrap_or(&[]);
            }
            false
        }
        Some(28) => data.get(1).is_some_and(|&fu| fu & 0x80 != 0 && key(fu)),
        _ => false,
    }
}

/// Header extensions: a publisher's RTP packet parsed as `rtc` parses it, its audio level found
/// and judged, and put on the packet for a subscriber as the forwarder does; that packet must
/// marshal and read back with the same level.
///
/// Input: publisher's extension id, subscriber's id, then the RTP packet.
pub fn audio_level(data: &[u8]) {
    let Some(([publisher_id, subscriber_id], mut raw)) = data.split_first_chunk::<2>() else {
        return;
    };
    let Ok(header) = Header::unmarshal(&mut raw) else {
        return;
    };
    let found = level::find(&header, *publisher_id);
    let mut activity = AudioActivity::default();
    for _ in 0..25 {
        let _ = activity.observe(found.as_ref().and_then(|l| l.first().copied()));
    }
    // Subscriber ids are what our offer negotiated: one-byte form, 1 to 14.
    let id = subscriber_id % 14 + 1;
    let mut out = Header {
        version: 2,
        ssrc: 1,
        ..Default::default()
    };
    level::set_forwarded(&mut out, found.as_ref(), Some(id));
    let bytes = out.marshal().expect("a forwarded header marshals");
    let back = Header::unmarshal(&mut &bytes[..]).expect("a forwarded header parses");
    // The level byte travels alone; an element without one travels not at all.
    let sent = level::find(&back, id);
    assert_eq!(
        sent.as_deref(),
        found.as_ref().and_then(|f| f.get(..1)),
        "publisher's element {found:?}"
    );
}
