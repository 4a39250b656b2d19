//! What arrives before media: the client's SDP and candidates, datagrams on the shared UDP port,
//! and the RFC 4571 stream of an ICE-TCP connection.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use sfu::demux::{Demux, make_ufrag, ufrag_worker};
use sfu::framing::{FrameReader, FrameWriter, MAX_FRAME};
use sfu::packet::{DatagramKind, classify, stun_local_ufrag};

/// What separates the offer from the trickled candidate lines in an input.
const CANDIDATES: &str = "\n--candidates--\n";

/// The ICE credentials `answer_publish_offer` gives its connection.
const UFRAG: &str = "fuzzw0n1";
const PWD: &str = "00000000000000000000000000000007";

/// What an answer of ours may carry: `a=` attributes `rtc` writes for a publish connection.
/// Anything else (a second `a=ice-ufrag` is caught by the counts) came from the offer.
const OUR_ATTRIBUTES: &[&str] = &[
    "group",
    "extmap-allow-mixed",
    "msid-semantic",
    "ice-lite",
    "ice-ufrag",
    "ice-pwd",
    "ice-options",
    "fingerprint",
    "setup",
    "mid",
    "extmap",
    "sendrecv",
    "sendonly",
    "recvonly",
    "inactive",
    "rtcp",
    "rtcp-mux",
    "rtcp-rsize",
    "rtpmap",
    "fmtp",
    "rtcp-fb",
    "rid",
    "simulcast",
    "ssrc",
    "ssrc-group",
    "msid",
    "candidate",
    "end-of-candidates",
];

/// A publish offer (as `publish_offer` carries it, at most its `MAX_SDP_BYTES`), then optionally trickled
/// candidates, one per line. An answer, when there is one, is ours: it carries our ICE
/// credentials and DTLS fingerprint and nobody else's, never more m-lines than the offer, no line
/// the offer smuggled in, and stays small.
pub fn sdp_offer(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if text.len() > signaling::protocol::MAX_SDP_BYTES {
        return;
    }
    let (offer, candidates) = text.split_once(CANDIDATES).unwrap_or((text, ""));
    let candidates: Vec<&str> = candidates.lines().collect();
    let Ok(answer) = sfu::fuzzing::answer_publish_offer(offer, &candidates) else {
        return;
    };
    check_answer(offer, &answer);
}

/// The lines a lenient reader sees: a browser or a middlebox may split on CR or on LF alone.
fn sdp_lines(sdp: &str) -> impl Iterator<Item = &str> {
    sdp.split(['\r', '\n']).filter(|l| !l.is_empty())
}

fn check_answer(offer: &str, answer: &str) {
    assert!(
        answer.len() <= 16 * 1024 + 2 * offer.len(),
        "answer of {} bytes to an offer of {}",
        answer.len(),
        offer.len()
    );
    // Every line ends in CRLF and none carries CR, LF or NUL inside (an offer's value echoed
    // with its control characters would read as extra lines to a lenient reader).
    let body = answer
        .strip_suffix("\r\n")
        .unwrap_or_else(|| panic!("{answer:?}"));
    for line in body.split("\r\n") {
        assert!(
            !line.contains(['\r', '\n', '\0']),
            "line {line:?} in {answer:?}"
        );
    }
    assert!(answer.starts_with("v=0\r\n"), "{answer:?}");
    let mut sections: Vec<Vec<&str>> = vec![Vec::new()];
    for line in sdp_lines(answer) {
        let (kind, value) = line
            .split_at_checked(2)
            .unwrap_or_else(|| panic!("{line:?}"));
        match kind {
            "m=" => sections.push(vec![line]),
            "a=" => {
                let name = value.split_once(':').map_or(value, |(n, _)| n);
                assert!(OUR_ATTRIBUTES.contains(&name), "a={name} in {answer:?}");
                sections.last_mut().expect("a section").push(line);
            }
            "v=" | "o=" | "s=" | "t=" | "c=" => sections.last_mut().expect("a section").push(line),
            _ => panic!("line {line:?} in {answer:?}"),
        }
    }
    let session = &sections[0];
    assert!(session.contains(&"a=ice-lite"), "{answer:?}");
    let m_lines = |s: &str| sdp_lines(s).filter(|l| l.starts_with("m=")).count();
    assert!(sections.len() - 1 <= m_lines(offer), "{answer:?}");
    let values = |lines: &[&'_ str], name: &str| -> Vec<String> {
        let prefix = format!("a={name}:");
        lines
            .iter()
            .filter_map(|l| l.strip_prefix(&prefix).map(str::to_owned))
            .collect()
    };
    // One DTLS certificate: every fingerprint line is the same, at most one per section.
    let fingerprints = values(&sdp_lines(answer).collect::<Vec<_>>(), "fingerprint");
    assert!(fingerprints.windows(2).all(|w| w[0] == w[1]), "{answer:?}");
    for section in &sections {
        let accepted = section
            .first()
            .and_then(|m| m.split(' ').nth(1))
            .is_some_and(|port| port != "0");
        let ufrags = values(section, "ice-ufrag");
        let pwds = values(section, "ice-pwd");
        assert!(values(section, "fingerprint").len() <= 1, "{answer:?}");
        if accepted {
            // An accepted (port != 0) media section carries our credentials and no other.
            assert_eq!(ufrags, [UFRAG], "{answer:?}");
            assert_eq!(pwds, [PWD], "{answer:?}");
        } else {
            // The session part and a rejected section may go without; never with another's.
            assert!(
                ufrags.len() <= 1 && ufrags.iter().all(|u| u == UFRAG),
                "{answer:?}"
            );
            assert!(
                pwds.len() <= 1 && pwds.iter().all(|p| p == PWD),
                "{answer:?}"
            );
        }
    }
}

/// The shared UDP port: STUN USERNAME extraction stays inside the message, a ufrag names its
/// worker, and routing agrees with a model of what the demux was told.
///
/// Input: a run of records `[op, addr, len, bytes...]`.
pub fn stun_demux(data: &[u8]) {
    check_stun(data);
    for w in [0usize, 3, 1023] {
        let u = make_ufrag(w, u64::from(data.first().copied().unwrap_or(0)));
        assert_eq!(ufrag_worker(&u), Some(w));
    }
    if let Ok(s) = std::str::from_utf8(data)
        && let Some(w) = ufrag_worker(s)
    {
        assert!(w <= 9999);
    }

    let ufrags = ["aaaa", "bbbb", "cccc"];
    let mut demux: Demux<u8> = Demux::default();
    for (key, u) in ufrags.iter().enumerate() {
        demux.add_ufrag((*u).to_owned(), key as u8);
    }
    let mut model: HashMap<SocketAddr, u8> = HashMap::new();
    let mut rest = data;
    while let [op, addr, len, tail @ ..] = rest {
        let n = usize::from(*len).min(tail.len());
        let (datagram, next) = tail.split_at(n);
        rest = next;
        let from = SocketAddr::from(([127, 0, 0, 1], u16::from(*addr % 8)));
        match op % 4 {
            0 => {
                let got = demux.route(from, datagram);
                let by_stun = (classify(datagram) == DatagramKind::Stun)
                    .then(|| stun_local_ufrag(datagram))
                    .flatten()
                    .and_then(|u| ufrags.iter().position(|x| *x == u))
                    .map(|k| k as u8);
                let want = match by_stun {
                    Some(k) => {
                        let new = model.insert(from, k) != Some(k);
                        Some((k, new))
                    }
                    None => model.get(&from).map(|&k| (k, false)),
                };
                assert_eq!(got.map(|r| (r.key, r.new_addr)), want);
            }
            1 => {
                // A crafted binding request for one of the ufrags, from this address.
                let key = op / 4 % 3;
                let msg = binding_request(&format!("{}:x", ufrags[usize::from(key)]), datagram);
                assert_eq!(stun_local_ufrag(&msg), Some(ufrags[usize::from(key)]));
                let r = demux.route(from, &msg).expect("a known ufrag routes");
                assert_eq!(r.key, key);
                model.insert(from, key);
            }
            2 => {
                let key = op / 4 % 3;
                demux.learn(from, key);
                model.entry(from).or_insert(key);
            }
            _ => {
                let key = op / 4 % 3;
                let addrs: Vec<SocketAddr> = model
                    .iter()
                    .filter(|(_, k)| **k == key)
                    .map(|(a, _)| *a)
                    .collect();
                demux.remove("none", &addrs, key);
                model.retain(|_, k| *k != key);
            }
        }
        assert_eq!(demux.len().1, model.len());
    }
}

fn check_stun(data: &[u8]) {
    if let Some(u) = stun_local_ufrag(data) {
        assert_eq!(classify(data), DatagramKind::Stun);
        assert!(!u.is_empty());
        assert!(!u.contains(':'));
        // The ufrag lies inside the message as its header declares it.
        let body_len = usize::from(u16::from_be_bytes([data[2], data[3]]));
        let (start, end) = (
            data.as_ptr() as usize,
            data.as_ptr() as usize + 20 + body_len,
        );
        let at = u.as_ptr() as usize;
        assert!(at >= start + 24 && at + u.len() <= end);
    }
}

/// A binding request carrying `username`, then `extra` as an unknown attribute.
fn binding_request(username: &str, extra: &[u8]) -> Vec<u8> {
    let mut attrs = Vec::new();
    let mut put = |typ: u16, value: &[u8]| {
        attrs.extend_from_slice(&typ.to_be_bytes());
        attrs.extend_from_slice(&(value.len() as u16).to_be_bytes());
        attrs.extend_from_slice(value);
        while attrs.len() % 4 != 0 {
            attrs.push(0);
        }
    };
    put(0x0006, username.as_bytes());
    put(0x8022, extra);
    let mut msg = vec![0x00, 0x01];
    msg.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
    msg.extend_from_slice(&[0x21, 0x12, 0xA4, 0x42]);
    msg.extend_from_slice(&[9; 12]);
    msg.extend_from_slice(&attrs);
    msg
}

/// RFC 4571 both ways. Reading: any split of a stream gives the frames a plain reading of it
/// gives, and stops at the first bad length. Writing: whatever is pushed (to the back or, urgent,
/// ahead of queued video), consumed and dropped for age, the pending bytes are the frames a model
/// of the writer holds, and the bytes the socket took plus those pending read back as whole
/// frames, in order, within the cap.
pub fn tcp_framing(data: &[u8]) {
    let Some((&split, stream)) = data.split_first() else {
        return;
    };
    // Reference reading.
    let mut expected = Vec::new();
    let mut at = 0;
    let mut bad = None;
    while at + 2 <= stream.len() {
        let len = usize::from(u16::from_be_bytes([stream[at], stream[at + 1]]));
        if len == 0 || len > MAX_FRAME {
            bad = Some(len);
            break;
        }
        let Some(f) = stream.get(at + 2..at + 2 + len) else {
            break;
        };
        expected.push(f);
        at += 2 + len;
    }
    let mut r = FrameReader::default();
    let mut got = Vec::new();
    let mut err = None;
    'feed: for piece in stream.chunks(usize::from(split).max(1)) {
        r.extend(piece);
        loop {
            let peeked = r.peek_frame().map(|p| p.map(<[u8]>::to_vec));
            match r.next_frame() {
                Ok(Some(f)) => {
                    assert_eq!(peeked, Ok(Some(f.to_vec())));
                    got.push(f);
                }
                Ok(None) => break,
                Err(e) => {
                    err = Some(e);
                    break 'feed;
                }
            }
        }
    }
    assert_eq!(got.len(), expected.len());
    for (g, e) in got.iter().zip(&expected) {
        assert_eq!(&g[..], *e);
    }
    assert_eq!(err.is_some(), bad.is_some());
    if err.is_none() {
        assert_eq!(r.buffered(), stream.len() - at);
    }
    writer_keeps_framing(stream);
}

/// The writer against a model of its contract. Each pair of bytes is one step: the high nibble of
/// the first advances the clock (ms), its low two bits pick `push`, `consume`, `drop_queued_before`
/// or `push_urgent`, the second is the argument. The model: frames in stream order (when queued,
/// bytes, urgent), the first of them `half_written` bytes out. `push` queues at the back;
/// `push_urgent` after the frame being written and after the urgent frames before it; a drop
/// takes every frame queued before the bound except one partly written. At every step the pending
/// bytes are exactly the model's frames (the first without what went out), within the cap.
fn writer_keeps_framing(ops: &[u8]) {
    let t0 = Instant::now();
    let cap = 64 + usize::from(ops.first().copied().unwrap_or(0)) * 8;
    let mut w = FrameWriter::new(cap);
    let mut queued: std::collections::VecDeque<(u64, Vec<u8>, bool)> = Default::default();
    let mut sent: Vec<u8> = Vec::new();
    let mut clock = 0u64;
    let mut half_written = 0usize;
    for (i, pair) in ops.chunks_exact(2).enumerate() {
        let (op, arg) = (pair[0], pair[1]);
        clock += u64::from(op >> 4);
        let now = t0 + Duration::from_millis(clock);
        match op & 3 {
            kind @ (0 | 3) => {
                let urgent = kind == 3;
                let frame = vec![i as u8; usize::from(arg) % 200];
                let fits = !frame.is_empty() && w.pending().len() + 2 + frame.len() <= cap;
                let pushed = if urgent {
                    w.push_urgent(now, &frame)
                } else {
                    w.push(now, &frame)
                };
                assert_eq!(pushed, fits);
                if fits {
                    let mut at = queued.len();
                    if urgent {
                        at = usize::from(half_written > 0);
                        while queued.get(at).is_some_and(|f| f.2) {
                            at += 1;
                        }
                    }
                    queued.insert(at, (clock, frame, urgent));
                }
            }
            1 => {
                let n = usize::from(arg).min(w.pending().len());
                sent.extend_from_slice(&w.pending()[..n]);
                w.consume(n);
                // Whole frames the socket took leave the model.
                half_written += n;
                while let Some((_, f, _)) = queued.front() {
                    if half_written < 2 + f.len() {
                        break;
                    }
                    half_written -= 2 + f.len();
                    queued.pop_front();
                }
            }
            _ => {
                let before = clock.saturating_sub(u64::from(arg));
                let dropped = w.drop_queued_before(t0 + Duration::from_millis(before));
                let kept_first = usize::from(half_written > 0);
                let len = queued.len();
                let mut index = 0;
                queued.retain(|(at, _, _)| {
                    index += 1;
                    index <= kept_first || *at >= before
                });
                assert_eq!(dropped, len - queued.len());
            }
        }
        assert!(w.pending().len() <= cap);
        let mut want = Vec::new();
        for (_, f, _) in &queued {
            want.extend_from_slice(&(f.len() as u16).to_be_bytes());
            want.extend_from_slice(f);
        }
        assert_eq!(w.pending(), &want[half_written..]);
    }
    // Everything the socket took, then everything pending, is a sequence of whole frames.
    sent.extend_from_slice(w.pending());
    let mut r = FrameReader::default();
    r.extend(&sent);
    while let Some(f) = r
        .next_frame()
        .expect("the writer's stream keeps its framing")
    {
        assert!(!f.is_empty());
    }
    assert_eq!(r.buffered(), 0);
}
