//! Round-trip time from RTCP receiver reports (RFC 3550 §6.4.1): the report echoes the middle 32
//! bits of our last sender report's NTP time (LSR) and how long the receiver held it (DLSR);
//! RTT = now − LSR − DLSR, all in 1/65536 s.

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds from 1900 (NTP epoch) to 1970 (Unix epoch).
const NTP_UNIX_OFFSET: u64 = 2_208_988_800;

/// The middle 32 bits of the current NTP time. Our sender reports are stamped from the same
/// wall clock (`rtc` pairs a `SystemTime` with the `Instant` it was given).
pub fn ntp_middle_now() -> u32 {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    ntp_middle(d.as_secs() + NTP_UNIX_OFFSET, d.subsec_nanos())
}

pub fn ntp_middle(ntp_secs: u64, nanos: u32) -> u32 {
    let frac = ((u64::from(nanos) << 32) / 1_000_000_000) as u32;
    (((ntp_secs & 0xFFFF) as u32) << 16) | (frac >> 16)
}

/// RTT in seconds from one report block, if it refers to a sender report and is plausible.
pub fn from_report(ntp_middle_now: u32, lsr: u32, dlsr: u32) -> Option<f64> {
    if lsr == 0 {
        return None;
    }
    let rtt = ntp_middle_now.wrapping_sub(lsr).wrapping_sub(dlsr);
    // A "negative" result wraps to a huge value: clock trouble, not a 18-hour RTT.
    let secs = f64::from(rtt) / 65_536.0;
    (secs < 60.0).then_some(secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rtt_from_lsr_and_dlsr() {
        // SR sent at t=100.0 s, held 0.25 s by the receiver, report arrives at t=100.30 s.
        let lsr = ntp_middle(100, 0);
        let dlsr = (0.25 * 65_536.0) as u32;
        let now = ntp_middle(100, 300_000_000);
        let rtt = from_report(now, lsr, dlsr).unwrap();
        assert!((rtt - 0.05).abs() < 0.001, "{rtt}");
    }

    #[test]
    fn no_sender_report_or_clock_trouble_gives_nothing() {
        assert_eq!(from_report(12345, 0, 0), None);
        let lsr = ntp_middle(100, 0);
        assert_eq!(
            from_report(lsr, lsr, 65_536),
            None,
            "report claims to come from the future"
        );
    }

    #[test]
    fn wraps_across_the_16_bit_seconds_boundary() {
        let lsr = ntp_middle(0xFFFF, 900_000_000);
        let now = ntp_middle(0x1_0000, 0);
        let rtt = from_report(now, lsr, 0).unwrap();
        assert!((rtt - 0.1).abs() < 0.001, "{rtt}");
    }
}
