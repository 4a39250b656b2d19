//! Marks inbound RTCP for the application: without it the interceptor chain consumes every
//! keyframe request and a publisher never learns a subscriber asked for one. The pass-through
//! plumbing is the server's `ReadHook`; only the marking is ours.

use rtc::interceptor::{Attribute, Packet, TaggedPacket};
use sfu::read_hook::ReadHook;

fn mark_rtcp(msg: &mut TaggedPacket) {
    if matches!(msg.message.packet, Packet::Rtcp(_)) {
        msg.message.add(Attribute::DeliverToApplication);
    }
}

/// The interceptor, for slot 14,000 (after every interceptor that acts on RTCP).
pub(crate) fn rtcp_tap() -> ReadHook<fn(&mut TaggedPacket)> {
    ReadHook::new(mark_rtcp as fn(&mut TaggedPacket))
}
