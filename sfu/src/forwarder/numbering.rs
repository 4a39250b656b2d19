//! Output sequence numbers for one source of one downtrack: every input packet either gets a
//! number and is sent, or is dropped *before* numbering and gets none, so the subscriber sees a
//! hole only where the publisher's own stream had one.
//!
//! A plain offset (`out = in + k`) is not enough: the publisher numbers packets the subscriber
//! must not get (Chromium's padding-only bandwidth probes, sent on the media SSRC when RTX is
//! not negotiated; RED packets without a primary for a subscriber without RED; a packet whose
//! send failed), and with a fixed offset each of them became a hole at every subscriber: a NACK,
//! a refused resend and a false loss signal (issue 14). Here each dropped input lowers the
//! offset of every later input by one. Late inputs (reordered, or repaired by the publisher
//! after our NACK) need the offset that held at their position: the drops are remembered as a
//! short ring of runs, so a late packet maps to the number reserved for it. The server's own
//! packets (padding probes, see `probe.rs`) go the other way: each inserted after the newest
//! input raises the offset of every later input by one, remembered in a ring like the drops.
//! Sequence numbers are
//! unwrapped to 64 bits so that every comparison is a plain one. Pure, fixed size, no
//! allocation.

/// Runs of consecutive dropped inputs remembered for late packets. Chromium pads in bursts
/// after a frame, so one run per frame at most: 32 frames (over a second at 30 fps) of
/// reordering or repair.
const RUNS: usize = 32;
/// A late packet further behind the newest input than this is refused (its number may have been
/// reused by a previous source or long forgotten by the subscriber's jitter buffer).
const MAX_LATE: u64 = 0x2000;

#[derive(Debug, Clone, Copy, Default)]
struct Run {
    /// First dropped input (unwrapped).
    first: u64,
    count: u64,
}

/// What a packet that is not sent does to the numbering.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skipped {
    /// It was the newest: no number was used, the next packet takes the one it would have had.
    Closed,
    /// It came late and its number was reserved (later packets already went out): send a
    /// padding-only packet with this number so the subscriber sees no hole.
    Fill(u16),
    /// Too old, unknown or already handled: nothing to do.
    Ignored,
}

/// Packets of our own inserted after an input.
#[derive(Debug, Clone, Copy, Default)]
struct Insert {
    /// The input they follow (unwrapped).
    after: u64,
    count: u64,
}

#[derive(Debug, Clone)]
pub struct Numbering {
    /// Output number of the first input, and that input (unwrapped).
    base_out: u16,
    first: u64,
    /// Newest input seen, and whether it was dropped.
    highest: u64,
    highest_dropped: bool,
    /// Inputs dropped up to `highest`.
    dropped: u64,
    /// The newest runs, oldest first, as a ring starting at `head`.
    runs: [Run; RUNS],
    head: usize,
    len: usize,
    /// Inputs at or before this were covered by a run now forgotten: refused when late.
    forgotten_through: Option<u64>,
    /// Packets inserted up to `highest`, and the newest insertion points, oldest first.
    inserted: u64,
    inserts: [Insert; RUNS],
    insert_head: usize,
    insert_len: usize,
}

impl Numbering {
    /// Starts a source whose input `seq` is numbered `out`.
    pub fn new(seq: u16, out: u16) -> Self {
        let first = u64::from(seq) + (1 << 16);
        Self {
            base_out: out,
            first,
            highest: first,
            highest_dropped: false,
            dropped: 0,
            runs: [Run::default(); RUNS],
            head: 0,
            len: 0,
            forgotten_through: None,
            inserted: 0,
            inserts: [Insert::default(); RUNS],
            insert_head: 0,
            insert_len: 0,
        }
    }

    /// The output number of an input that is sent. `None`: a late packet that cannot be
    /// numbered without reusing a number (before the source started, too old, or dropped).
    pub fn number(&mut self, seq: u16) -> Option<u16> {
        let ext = self.unwrap(seq);
        if ext > self.highest {
            self.highest = ext;
            self.highest_dropped = false;
            return Some(self.out(ext, self.dropped, self.inserted));
        }
        if ext == self.highest && self.highest_dropped {
            return None;
        }
        self.late(ext)
            .map(|(dropped, inserted)| self.out(ext, dropped, inserted))
    }

    /// A packet of our own (a padding probe) after the newest input: returns its number, the
    /// one the next input would have had; every later input moves up by one.
    pub fn insert(&mut self) -> u16 {
        let out = self.out(self.highest + 1, self.dropped, self.inserted);
        self.inserted += 1;
        if self.insert_len > 0 {
            let newest = &mut self.inserts[(self.insert_head + self.insert_len - 1) % RUNS];
            if newest.after == self.highest {
                newest.count += 1;
                return out;
            }
        }
        if self.insert_len == RUNS {
            let oldest = self.inserts[self.insert_head];
            self.forgotten_through = Some(
                self.forgotten_through
                    .map_or(oldest.after, |f| f.max(oldest.after)),
            );
            self.insert_head = (self.insert_head + 1) % RUNS;
            self.insert_len -= 1;
        }
        self.inserts[(self.insert_head + self.insert_len) % RUNS] = Insert {
            after: self.highest,
            count: 1,
        };
        self.insert_len += 1;
        out
    }

    /// An input of this source that will not be sent.
    pub fn skip(&mut self, seq: u16) -> Skipped {
        let ext = self.unwrap(seq);
        if ext > self.highest {
            self.highest = ext;
            self.highest_dropped = true;
            self.record_drop(ext);
            return Skipped::Closed;
        }
        if ext == self.highest && self.highest_dropped {
            return Skipped::Ignored;
        }
        match self.late(ext) {
            Some((dropped, inserted)) => Skipped::Fill(self.out(ext, dropped, inserted)),
            None => Skipped::Ignored,
        }
    }

    /// The packet just numbered by [`number`](Self::number) could not be sent. If it was the
    /// newest, its number is freed for the next packet (returns true); a late one keeps its
    /// hole.
    pub fn unsend(&mut self, seq: u16) -> bool {
        let ext = self.unwrap(seq);
        if ext != self.highest || self.highest_dropped {
            return false;
        }
        // A packet of ours already took the number after it.
        if self.insert_len > 0
            && self.inserts[(self.insert_head + self.insert_len - 1) % RUNS].after == ext
        {
            return false;
        }
        self.highest_dropped = true;
        self.record_drop(ext);
        true
    }

    /// The input nearest to `highest` with these low 16 bits.
    fn unwrap(&self, seq: u16) -> u64 {
        let candidate = (self.highest & !0xFFFF) | u64::from(seq);
        if candidate + 0x8000 <= self.highest {
            candidate + (1 << 16)
        } else if candidate > self.highest + 0x8000 && candidate >= 1 << 16 {
            candidate - (1 << 16)
        } else {
            candidate
        }
    }

    fn out(&self, ext: u64, dropped_before: u64, inserted_before: u64) -> u16 {
        let sent_before = ext - self.first - dropped_before + inserted_before;
        self.base_out.wrapping_add(sent_before as u16)
    }

    /// How many inputs before the late `ext` were dropped, and how many packets of ours were
    /// inserted before it; `None` if it cannot be numbered.
    fn late(&self, ext: u64) -> Option<(u64, u64)> {
        if ext < self.first || ext + MAX_LATE < self.highest {
            return None;
        }
        if self.forgotten_through.is_some_and(|f| ext <= f) {
            return None;
        }
        let mut dropped = self.dropped;
        for i in (0..self.len).rev() {
            let run = self.runs[(self.head + i) % RUNS];
            if ext >= run.first + run.count {
                break;
            }
            if ext >= run.first {
                // A dropped input seen again.
                return None;
            }
            dropped -= run.count;
        }
        let mut inserted = self.inserted;
        for i in (0..self.insert_len).rev() {
            let insert = self.inserts[(self.insert_head + i) % RUNS];
            if insert.after < ext {
                break;
            }
            inserted -= insert.count;
        }
        Some((dropped, inserted))
    }

    fn record_drop(&mut self, ext: u64) {
        self.dropped += 1;
        if self.len > 0 {
            let newest = &mut self.runs[(self.head + self.len - 1) % RUNS];
            if newest.first + newest.count == ext {
                newest.count += 1;
                return;
            }
        }
        if self.len == RUNS {
            let oldest = self.runs[self.head];
            let through = oldest.first + oldest.count - 1;
            self.forgotten_through =
                Some(self.forgotten_through.map_or(through, |f| f.max(through)));
            self.head = (self.head + 1) % RUNS;
            self.len -= 1;
        }
        self.runs[(self.head + self.len) % RUNS] = Run {
            first: ext,
            count: 1,
        };
        self.len += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_order_packets_keep_their_distance() {
        let mut n = Numbering::new(100, 7);
        assert_eq!(n.number(100), Some(7));
        assert_eq!(n.number(101), Some(8));
        // A real loss upstream stays a hole (the subscriber's NACK can still repair it).
        assert_eq!(n.number(103), Some(10));
    }

    #[test]
    fn dropped_packets_consume_no_number() {
        let mut n = Numbering::new(100, 0);
        n.number(100);
        assert_eq!(n.skip(101), Skipped::Closed);
        assert_eq!(n.skip(102), Skipped::Closed);
        assert_eq!(n.number(103), Some(1));
        assert_eq!(n.skip(104), Skipped::Closed);
        assert_eq!(n.number(105), Some(2));
        // Seen again: still dropped, still no number.
        assert_eq!(n.number(102), None);
        assert_eq!(n.skip(104), Skipped::Ignored);
    }

    #[test]
    fn a_late_packet_takes_the_number_reserved_at_its_position() {
        let mut n = Numbering::new(10, 500);
        n.number(10);
        // 11 is lost upstream for now; 12 goes out as 502, leaving 501 for it.
        assert_eq!(n.number(12), Some(502));
        assert_eq!(n.skip(13), Skipped::Closed);
        assert_eq!(n.skip(14), Skipped::Closed);
        assert_eq!(n.number(15), Some(503));
        // The publisher's repair of 11 arrives after the drops.
        assert_eq!(n.number(11), Some(501));
        assert_eq!(n.number(15), Some(503), "a duplicate keeps its number");
    }

    #[test]
    fn a_late_padding_packet_fills_its_reserved_number() {
        let mut n = Numbering::new(10, 0);
        n.number(10);
        n.number(12);
        assert_eq!(n.skip(11), Skipped::Fill(1));
    }

    #[test]
    fn packets_from_before_the_source_started_are_refused() {
        let mut n = Numbering::new(1000, 0);
        n.number(1000);
        n.number(1001);
        assert_eq!(
            n.number(999),
            None,
            "its number belongs to the previous source"
        );
        assert_eq!(n.skip(999), Skipped::Ignored);
    }

    #[test]
    fn numbering_wraps_with_the_input() {
        let mut n = Numbering::new(65_534, 65_535);
        assert_eq!(n.number(65_534), Some(65_535));
        assert_eq!(n.skip(65_535), Skipped::Closed);
        assert_eq!(n.number(0), Some(0));
        assert_eq!(n.number(1), Some(1));
        // 70,000 packets later, with a drop every 7: never a hole.
        let mut last = 1u16;
        for i in 2..70_000u32 {
            let seq = i as u16;
            if i % 7 == 0 {
                assert_eq!(n.skip(seq), Skipped::Closed);
            } else {
                let out = n.number(seq).unwrap();
                assert_eq!(out, last.wrapping_add(1), "at input {i}");
                last = out;
            }
        }
    }

    #[test]
    fn a_failed_send_frees_its_number() {
        let mut n = Numbering::new(1, 10);
        assert_eq!(n.number(1), Some(10));
        assert_eq!(n.number(2), Some(11));
        assert!(n.unsend(2));
        assert!(!n.unsend(2), "only once");
        assert_eq!(n.number(3), Some(11));
        // A late packet's failure keeps its hole: later numbers are already out.
        n.number(5);
        assert_eq!(n.number(4), Some(12));
        assert!(!n.unsend(4));
    }

    #[test]
    fn inserted_packets_take_the_next_number_and_late_inputs_keep_theirs() {
        let mut n = Numbering::new(100, 0);
        assert_eq!(n.number(100), Some(0));
        // 101 is late; 102 ends a frame, then two probes of ours.
        assert_eq!(n.number(102), Some(2));
        assert_eq!(n.insert(), 3);
        assert_eq!(n.insert(), 4);
        assert!(!n.unsend(102), "its successor is out already");
        assert_eq!(n.number(103), Some(5));
        // The late one still gets the number reserved before the probes.
        assert_eq!(n.number(101), Some(1));
        // A drop, then a probe: the probe takes the dropped packet's number.
        assert_eq!(n.skip(104), Skipped::Closed);
        assert_eq!(n.insert(), 6);
        assert_eq!(n.number(105), Some(7));
        assert_eq!(n.skip(104), Skipped::Ignored);
        assert_eq!(n.number(103), Some(5), "a duplicate keeps its number");
    }

    #[test]
    fn late_packets_behind_forgotten_insertions_are_refused() {
        let mut n = Numbering::new(0, 0);
        n.number(0);
        let mut seq = 2u16;
        for _ in 0..RUNS + 2 {
            n.number(seq);
            n.insert();
            seq += 2;
        }
        assert_eq!(n.number(1), None, "its offset is forgotten");
        let out = n.number(seq - 3).expect("behind remembered insertions");
        assert_eq!(n.number(seq - 2), Some(out.wrapping_add(1)));
    }

    #[test]
    fn late_packets_beyond_the_remembered_drops_are_refused() {
        let mut n = Numbering::new(0, 0);
        n.number(0);
        let mut seq = 1u16;
        // More runs than the ring holds: each a sent packet then a dropped one.
        for _ in 0..RUNS + 4 {
            n.number(seq);
            n.skip(seq + 1);
            seq += 2;
        }
        assert_eq!(n.number(1), None, "its offset is forgotten");
        // Behind only remembered runs: numbered.
        let recent = seq - 4;
        assert!(n.number(recent).is_some());
        // Far behind (beyond MAX_LATE) is refused too.
        let mut m = Numbering::new(0, 0);
        m.number(0);
        m.number(0x3000);
        assert_eq!(m.number(5), None);
    }
}
