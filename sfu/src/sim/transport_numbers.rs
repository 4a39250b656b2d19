//! The transport-wide sequence numbers (TWCC, draft-holmer-rmcat-transport-wide-cc-extensions)
//! a client receives, counted as they come off the wire: media and padding take one number each
//! from the sender's one counter, and the sender's estimate of the link is only as good as that
//! numbering (a hole reads as a loss, a repeat confuses the feedback). Repairs (RTX) should take
//! one too; today they carry none (`unnumbered_repairs`).

use std::sync::Mutex;

use rtc::interceptor::{Packet, TaggedPacket};

/// The header extension's URI in SDP (`a=extmap:N <uri>`).
const URI: &str = "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01";

#[derive(Debug, Default, Clone)]
pub struct TransportNumbers {
    /// The extension id the remote description gave the numbers.
    id: Option<u8>,
    last: Option<u16>,
    /// Packets that carried a number.
    pub numbered: u64,
    /// Of the numbered, padding-only packets (bandwidth probes, fills).
    pub padding: u64,
    /// Repairs (on an RTX stream, before they are unwrapped), numbered or not.
    pub repairs: u64,
    /// Numbers skipped between consecutive packets.
    pub skipped: u64,
    /// Packets whose number was not past the previous one (repeated or out of order).
    pub not_ahead: u64,
    /// Media or padding packets without a number although one was negotiated.
    pub unnumbered: u64,
    /// Repairs without a number: `rtc`'s TWCC sender numbers only the media SSRCs it bound,
    /// not their RTX streams, so the estimator never sees repairs.
    pub unnumbered_repairs: u64,
}

impl TransportNumbers {
    /// Takes the extension id from a remote description (an offer from the server).
    pub fn learn(&mut self, sdp: &str) {
        let id = sdp.lines().find_map(|l| {
            let (id, uri) = l.trim_end().strip_prefix("a=extmap:")?.split_once(' ')?;
            if uri != URI {
                return None;
            }
            // `N` or `N/direction`.
            id.split('/').next()?.parse().ok()
        });
        if id.is_some() {
            self.id = id;
        }
    }

    fn observe(&mut self, packet: &rtc::rtp::Packet, repair: bool) {
        let Some(id) = self.id else {
            return;
        };
        let padding = packet.payload.is_empty();
        if repair && !padding {
            self.repairs += 1;
        }
        let Some(ext) = packet.header.get_extension(id) else {
            if repair && !padding {
                self.unnumbered_repairs += 1;
            } else {
                self.unnumbered += 1;
            }
            return;
        };
        let [hi, lo] = ext[..] else {
            return;
        };
        let number = u16::from_be_bytes([hi, lo]);
        self.numbered += 1;
        if padding {
            self.padding += 1;
        }
        if let Some(last) = self.last {
            let step = number.wrapping_sub(last);
            if step == 0 || step >= 0x8000 {
                self.not_ahead += 1;
                return;
            }
            self.skipped += u64::from(step - 1);
        }
        self.last = Some(number);
    }
}

/// The read hook: counts the number of every RTP packet as it arrives, before anything in the
/// chain rewrites it (RTX is unwrapped above this).
pub(crate) fn log_transport_numbers(
    log: &Mutex<TransportNumbers>,
    rtx: &Mutex<super::engine::RtxMap>,
    msg: &mut TaggedPacket,
) {
    let Packet::Rtp(p) = &msg.message.packet else {
        return;
    };
    let repair = rtx
        .lock()
        .is_ok_and(|m| m.primary.contains_key(&p.header.ssrc));
    if let Ok(mut log) = log.lock() {
        log.observe(p, repair);
    }
}
