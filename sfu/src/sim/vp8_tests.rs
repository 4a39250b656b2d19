use super::*;

#[test]
fn a_keyframe_is_what_the_server_calls_one_with_its_size() {
    let t = Temporal {
        tid: 0,
        layer_sync: true,
        tl0_pic_idx: 42,
    };
    let packets = packetise(300, t, &encoded_frame(true, 3_000, 640, 360));
    assert_eq!(packets.len(), 3);
    assert!(packets.iter().all(|p| p.len() <= MAX_PAYLOAD));
    assert_eq!(&packets[0][..6], &[0x90, 0xE0, 0x81, 0x2C, 42, 0x20]);
    assert!(crate::keyframe::vp8_is_keyframe_start(&packets[0]));
    assert!(!crate::keyframe::vp8_is_keyframe_start(&packets[1]));
    assert_eq!(
        parse(&packets[0]),
        Some(Parsed {
            tid: Some(0),
            keyframe: Some((640, 360))
        })
    );
    let d = crate::vp8::parse(&packets[0]).unwrap();
    assert_eq!(d.picture_id, Some((300, 2, true)));
    assert_eq!(d.tl0, Some((42, 4)));
    let delta = packetise(301, t, &encoded_frame(false, 500, 640, 360));
    assert!(!crate::keyframe::vp8_is_keyframe_start(&delta[0]));
    assert_eq!(parse(&delta[0]).unwrap().keyframe, None);
}

#[test]
fn a_source_sends_its_rate_in_chromiums_temporal_pattern() {
    let start = Instant::now();
    let mut src = VideoSource::new(LayerSpec::new(640, 360, 500), start, 3);
    let mut frames = Vec::new();
    let mut bytes = 0;
    // Ten seconds at 20 fps, polled every millisecond.
    for ms in 0..10_000 {
        if let Some(f) = src.poll_frame(start + Duration::from_millis(ms)) {
            bytes += f.iter().map(|p| p.payload.len()).sum::<usize>();
            frames.push(f);
        }
    }
    assert_eq!(frames.len(), 200);
    assert_eq!(src.keyframes, 1, "one keyframe, first");
    assert_eq!(
        parse(&frames[0][0].payload).unwrap().keyframe,
        Some((640, 360))
    );
    let tids: Vec<u8> = frames[1..9]
        .iter()
        .map(|f| parse(&f[0].payload).unwrap().tid.unwrap())
        .collect();
    assert_eq!(tids, [2, 1, 2, 0, 2, 1, 2, 0]);
    let rate = bytes as f64 * 8.0 / 10.0;
    assert!((rate - 500_000.0).abs() < 40_000.0, "{rate}");
    for pair in frames.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        // Sequence numbers run on across frames; timestamps step 90 kHz / 20.
        assert_eq!(
            a.last().unwrap().sequence_number.wrapping_add(1),
            b[0].sequence_number
        );
        assert_eq!(b[0].timestamp.wrapping_sub(a[0].timestamp), 4_500);
        assert!(a.last().unwrap().marker && a[..a.len() - 1].iter().all(|p| !p.marker));
    }
}

#[test]
fn a_requested_keyframe_comes_next() {
    let start = Instant::now();
    let mut src = VideoSource::new(LayerSpec::new(320, 180, 150), start, 1);
    src.poll_frame(start).unwrap();
    src.request_keyframe();
    assert_eq!(src.next_due(), start + Duration::from_millis(50));
    assert!(src.poll_frame(start + Duration::from_millis(49)).is_none());
    let f = src.poll_frame(start + Duration::from_millis(50)).unwrap();
    assert_eq!(parse(&f[0].payload).unwrap().keyframe, Some((320, 180)));
    assert_eq!(src.keyframes, 2);
}
