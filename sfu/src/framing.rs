//! RFC 4571 framing for ICE-TCP: every STUN, DTLS, RTP or RTCP packet on a TCP connection is
//! preceded by its length as a 16-bit big-endian number.
//!
//! Both directions are bounded. Inbound, a frame longer than [`MAX_FRAME`] (what a UDP datagram
//! may be here) or of length zero ends the connection: no client of ours sends one, and a bad
//! length desynchronises the stream for good. Outbound, a connection whose peer does not read
//! keeps at most a fixed number of bytes queued; what does not fit is dropped whole, as a full
//! router queue would drop a datagram, so NACK and the bandwidth estimate see a loss rather than
//! a latency that grows without end.

use bytes::{Buf, BufMut, BytesMut};

/// The largest frame accepted: the size of the largest datagram the UDP path reads.
pub const MAX_FRAME: usize = 1500;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("frame of {0} bytes (limit {MAX_FRAME}, zero not allowed)")]
    BadLength(usize),
}

/// Splits a byte stream into frames. Frames share the buffer's storage (no copy per frame).
#[derive(Debug, Default)]
pub struct FrameReader {
    buf: BytesMut,
}

impl FrameReader {
    pub fn extend(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// The next complete frame, `None` when more bytes are needed.
    pub fn next_frame(&mut self) -> Result<Option<BytesMut>, FrameError> {
        if self.buf.len() < 2 {
            return Ok(None);
        }
        let len = usize::from(u16::from_be_bytes([self.buf[0], self.buf[1]]));
        if len == 0 || len > MAX_FRAME {
            return Err(FrameError::BadLength(len));
        }
        if self.buf.len() < 2 + len {
            // Room for the rest of this frame, so the stream is read into one allocation.
            self.buf.reserve(2 + len - self.buf.len());
            return Ok(None);
        }
        self.buf.advance(2);
        Ok(Some(self.buf.split_to(len)))
    }

    /// The next complete frame without taking it.
    pub fn peek_frame(&self) -> Result<Option<&[u8]>, FrameError> {
        if self.buf.len() < 2 {
            return Ok(None);
        }
        let len = usize::from(u16::from_be_bytes([self.buf[0], self.buf[1]]));
        if len == 0 || len > MAX_FRAME {
            return Err(FrameError::BadLength(len));
        }
        Ok(self.buf.get(2..2 + len))
    }

    /// Bytes received but not yet returned as a frame.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Takes the unread bytes (to hand the stream to another reader).
    pub fn into_inner(self) -> BytesMut {
        self.buf
    }

    pub fn from_bytes(buf: BytesMut) -> Self {
        Self { buf }
    }
}

/// Bytes queued for one TCP connection, written as the socket accepts them. Bounded twice: in
/// bytes (a peer that stops reading), and in time: frames that waited longer than the caller
/// allows are dropped, so a line slower than what we send costs loss (which NACK and the
/// estimate handle) rather than seconds of delay for audio and video alike.
///
/// Small frames go first ([`push_urgent`](Self::push_urgent)): audio, RTCP and ICE checks
/// never wait behind queued video (issue 11). They are queued after the frame being written
/// (never inside it: the stream would lose its framing) and after the small frames before them.
#[derive(Debug)]
pub struct FrameWriter {
    buf: BytesMut,
    cap: usize,
    /// Per queued frame, in stream order: when it was queued, its length with header, and
    /// whether it went in the urgent lane. The first may be partly written (`written` bytes).
    frames: std::collections::VecDeque<(std::time::Instant, usize, bool)>,
    written: usize,
}

impl FrameWriter {
    pub fn new(cap: usize) -> Self {
        Self {
            buf: BytesMut::new(),
            cap,
            frames: std::collections::VecDeque::new(),
            written: 0,
        }
    }

    fn fits(&self, payload: &[u8]) -> bool {
        !payload.is_empty()
            && payload.len() <= usize::from(u16::MAX)
            && self.buf.len() + 2 + payload.len() <= self.cap
    }

    /// Queues `payload` as one frame at the back. Returns false (and queues nothing) when it
    /// does not fit in what is left of the cap, or is not a valid frame.
    pub fn push(&mut self, now: std::time::Instant, payload: &[u8]) -> bool {
        if !self.fits(payload) {
            return false;
        }
        self.buf.put_u16(payload.len() as u16);
        self.buf.extend_from_slice(payload);
        self.frames.push_back((now, 2 + payload.len(), false));
        true
    }

    /// Queues `payload` ahead of every frame queued with [`push`](Self::push) that has not
    /// started going out. Same bounds as `push`.
    pub fn push_urgent(&mut self, now: std::time::Instant, payload: &[u8]) -> bool {
        if !self.fits(payload) {
            return false;
        }
        // After the frame being written, then after the urgent frames already waiting.
        let mut index = usize::from(self.written > 0);
        let mut offset = self.frames.front().map_or(0, |f| f.1) * index - self.written;
        while let Some(&(_, len, true)) = self.frames.get(index) {
            offset += len;
            index += 1;
        }
        let tail = self.buf.split_off(offset);
        self.buf.put_u16(payload.len() as u16);
        self.buf.extend_from_slice(payload);
        self.buf.unsplit(tail);
        self.frames.insert(index, (now, 2 + payload.len(), true));
        true
    }

    /// Drops the whole frames queued before `before`, wherever they are in the queue, except
    /// one partly written (the stream would lose its framing). Returns how many.
    pub fn drop_queued_before(&mut self, before: std::time::Instant) -> usize {
        let skip = usize::from(self.written > 0);
        let stale = |f: &(std::time::Instant, usize, bool)| f.0 < before;
        if !self.frames.iter().skip(skip).any(stale) {
            return 0;
        }
        let mut kept = BytesMut::with_capacity(self.buf.len());
        let mut frames = std::collections::VecDeque::with_capacity(self.frames.len());
        let mut at = 0;
        let mut dropped = 0;
        for (i, f) in self.frames.iter().enumerate() {
            let len = if i == 0 { f.1 - self.written } else { f.1 };
            if i < skip || !stale(f) {
                kept.extend_from_slice(&self.buf[at..at + len]);
                frames.push_back(*f);
            } else {
                dropped += 1;
            }
            at += len;
        }
        self.buf = kept;
        self.frames = frames;
        dropped
    }

    pub fn pending(&self) -> &[u8] {
        &self.buf
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Forgets the first `n` bytes, which the socket took. A frame may be half written: the
    /// rest of it stays first in line, so the stream never loses its framing.
    pub fn consume(&mut self, n: usize) {
        let n = n.min(self.buf.len());
        self.buf.advance(n);
        let mut left = self.written + n;
        while let Some(&(_, len, _)) = self.frames.front() {
            if left < len {
                break;
            }
            left -= len;
            self.frames.pop_front();
        }
        self.written = left;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn framed(payloads: &[&[u8]]) -> Vec<u8> {
        let mut w = FrameWriter::new(1 << 20);
        for p in payloads {
            assert!(w.push(std::time::Instant::now(), p));
        }
        w.pending().to_vec()
    }

    #[test]
    fn frames_survive_any_split_of_the_stream() {
        let a = vec![1u8; 1];
        let b = vec![2u8; 300];
        let c = vec![3u8; MAX_FRAME];
        let stream = framed(&[&a, &b, &c]);
        for chunk in [1, 2, 3, 7, 301, 1000, stream.len()] {
            let mut r = FrameReader::default();
            let mut got = Vec::new();
            for piece in stream.chunks(chunk) {
                r.extend(piece);
                while let Some(f) = r.next_frame().unwrap() {
                    got.push(f.to_vec());
                }
            }
            assert_eq!(got, vec![a.clone(), b.clone(), c.clone()], "chunk {chunk}");
            assert_eq!(r.buffered(), 0);
        }
    }

    fn parse_all(stream: &[u8]) -> Vec<Vec<u8>> {
        let mut r = FrameReader::default();
        r.extend(stream);
        let mut got = Vec::new();
        while let Some(f) = r.next_frame().unwrap() {
            got.push(f.to_vec());
        }
        assert_eq!(r.buffered(), 0);
        got
    }

    #[test]
    fn small_frames_go_ahead_of_queued_video_but_never_into_a_frame_being_written() {
        let t0 = std::time::Instant::now();
        let mut w = FrameWriter::new(1 << 20);
        let video = |n: u8| vec![n; 1200];
        let mut out = Vec::new();
        assert!(w.push(t0, &video(1)));
        assert!(w.push(t0, &video(2)));
        // The socket took half of the first video frame.
        out.extend_from_slice(&w.pending()[..600]);
        w.consume(600);
        // Two audio packets: after the half-written frame, before the second, in their order.
        assert!(w.push_urgent(t0, &[7; 200]));
        assert!(w.push_urgent(t0, &[8; 200]));
        assert!(w.push(t0, &video(3)));
        assert!(w.push_urgent(t0, &[9; 200]));
        out.extend_from_slice(w.pending());
        w.consume(w.pending().len());
        assert!(w.is_empty());
        let got = parse_all(&out);
        let firsts: Vec<u8> = got.iter().map(|f| f[0]).collect();
        assert_eq!(firsts, vec![1, 7, 8, 9, 2, 3]);
        assert_eq!(got[0].len(), 1200, "the frame being written stayed whole");
        // Nothing partly written: an urgent frame goes first of all.
        assert!(w.push(t0, &video(4)));
        assert!(w.push_urgent(t0, &[5; 100]));
        let firsts: Vec<u8> = parse_all(w.pending()).iter().map(|f| f[0]).collect();
        assert_eq!(firsts, vec![5, 4]);
    }

    #[test]
    fn old_video_behind_young_audio_is_still_dropped() {
        let t0 = std::time::Instant::now();
        let later = t0 + std::time::Duration::from_millis(400);
        let mut w = FrameWriter::new(1 << 20);
        assert!(w.push(t0, &[1; 1200]));
        assert!(w.push(t0, &[2; 1200]));
        w.consume(10);
        assert!(w.push_urgent(later, &[7; 200]));
        assert!(w.push(later, &[3; 1200]));
        // The frame being written stays; the old second one goes although audio is ahead of it.
        assert_eq!(w.drop_queued_before(later), 1);
        let mut stream = vec![0u8; 0];
        stream.extend_from_slice(&[0x04, 0xB0]);
        stream.extend_from_slice(&[1; 10 - 2]);
        stream.extend_from_slice(w.pending());
        let firsts: Vec<u8> = parse_all(&stream).iter().map(|f| f[0]).collect();
        assert_eq!(firsts, vec![1, 7, 3]);
        assert_eq!(w.drop_queued_before(later), 0);
    }

    #[test]
    fn a_bad_length_is_an_error_not_a_wait() {
        let mut r = FrameReader::default();
        r.extend(&[0, 0, 9]);
        assert_eq!(r.next_frame(), Err(FrameError::BadLength(0)));
        let mut r = FrameReader::default();
        let too_long = (MAX_FRAME as u16 + 1).to_be_bytes();
        r.extend(&too_long);
        assert_eq!(r.next_frame(), Err(FrameError::BadLength(MAX_FRAME + 1)));
        // A partial header is just a wait.
        let mut r = FrameReader::default();
        r.extend(&[5]);
        assert_eq!(r.next_frame(), Ok(None));
        // Peeking a whole frame leaves it in place.
        let mut r = FrameReader::default();
        r.extend(&[0, 2, 7]);
        assert_eq!(r.peek_frame(), Ok(None));
        r.extend(&[8, 0]);
        assert_eq!(r.peek_frame(), Ok(Some(&[7u8, 8][..])));
        assert_eq!(r.next_frame().unwrap().unwrap().as_ref(), &[7, 8]);
        assert_eq!(r.buffered(), 1);
    }

    #[test]
    fn the_writer_drops_whole_frames_beyond_its_cap() {
        let now = std::time::Instant::now();
        let mut w = FrameWriter::new(10);
        assert!(w.push(now, &[1, 2, 3]));
        assert_eq!(w.pending(), &[0, 3, 1, 2, 3]);
        // 5 queued + 2 + 4 = 11 > 10: refused whole.
        assert!(!w.push(now, &[4, 5, 6, 7]));
        assert!(w.push(now, &[4, 5, 6]));
        assert_eq!(w.pending().len(), 10);
        assert!(!w.push(now, &[]));
        // Half of the first frame written: the rest stays first, in order.
        w.consume(3);
        assert_eq!(w.pending(), &[2, 3, 0, 3, 4, 5, 6]);
        let mut r = FrameReader::default();
        r.extend(&[0, 3, 1]);
        r.extend(w.pending());
        assert_eq!(r.next_frame().unwrap().unwrap().as_ref(), &[1, 2, 3]);
        assert_eq!(r.next_frame().unwrap().unwrap().as_ref(), &[4, 5, 6]);
    }

    #[test]
    fn frames_that_waited_too_long_are_dropped_whole() {
        use std::time::Duration;
        let t0 = std::time::Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let mut w = FrameWriter::new(1 << 16);
        assert!(w.push(ms(0), &[1; 4]));
        assert!(w.push(ms(10), &[2; 4]));
        assert!(w.push(ms(20), &[3; 4]));
        // Nothing queued before 0 ms.
        assert_eq!(w.drop_queued_before(ms(0)), 0);
        // The first is partly written: it stays; the one behind it, too old, goes.
        w.consume(3);
        assert_eq!(w.drop_queued_before(ms(15)), 1);
        assert_eq!(w.pending(), &[1, 1, 1, 0, 4, 3, 3, 3, 3]);
        w.consume(3);
        assert_eq!(w.drop_queued_before(ms(15)), 0);
        assert_eq!(w.pending(), &[0, 4, 3, 3, 3, 3]);
        // Writing a frame exactly to its end, then dropping the rest.
        w.consume(6);
        assert!(w.is_empty());
        assert!(w.push(ms(30), &[4; 2]));
        assert_eq!(w.drop_queued_before(ms(31)), 1);
        assert!(w.is_empty());
        assert!(w.push(ms(40), &[5; 2]));
        assert_eq!(w.pending(), &[0, 2, 5, 5]);
    }
}
