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
/// allows are dropped from the head, so a line slower than what we send costs loss (which NACK
/// and the estimate handle) rather than seconds of delay for audio and video alike.
#[derive(Debug)]
pub struct FrameWriter {
    buf: BytesMut,
    cap: usize,
    /// Per queued frame: when it was queued and its length with header; the first may be
    /// partly written already (`written` bytes of it).
    frames: std::collections::VecDeque<(std::time::Instant, usize)>,
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

    /// Queues `payload` as one frame. Returns false (and queues nothing) when it does not fit
    /// in what is left of the cap, or is not a valid frame.
    pub fn push(&mut self, now: std::time::Instant, payload: &[u8]) -> bool {
        if payload.is_empty()
            || payload.len() > usize::from(u16::MAX)
            || self.buf.len() + 2 + payload.len() > self.cap
        {
            return false;
        }
        self.buf.put_u16(payload.len() as u16);
        self.buf.extend_from_slice(payload);
        self.frames.push_back((now, 2 + payload.len()));
        true
    }

    /// Drops whole frames at the head queued before `before` (never one partly written: the
    /// stream would lose its framing). Returns how many.
    pub fn drop_queued_before(&mut self, before: std::time::Instant) -> usize {
        let mut dropped = 0;
        while self.written == 0
            && let Some(&(at, len)) = self.frames.front()
            && at < before
        {
            self.buf.advance(len);
            self.frames.pop_front();
            dropped += 1;
        }
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
        while let Some(&(_, len)) = self.frames.front() {
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
    fn frames_that_waited_too_long_are_dropped_from_the_head_whole() {
        use std::time::Duration;
        let t0 = std::time::Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let mut w = FrameWriter::new(1 << 16);
        assert!(w.push(ms(0), &[1; 4]));
        assert!(w.push(ms(10), &[2; 4]));
        assert!(w.push(ms(20), &[3; 4]));
        // Nothing queued before 0 ms.
        assert_eq!(w.drop_queued_before(ms(0)), 0);
        // The first is partly written: it stays, and so does everything behind it.
        w.consume(3);
        assert_eq!(w.drop_queued_before(ms(15)), 0);
        // Once it is out, the next one that is too old goes.
        w.consume(3);
        assert_eq!(w.drop_queued_before(ms(15)), 1);
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
