//! hoinghi patch (see vendor/README.md): RTP the application writes takes the shortest way out.
//!
//! The generic write path queues a message at the endpoint and, on the next `poll_write`, walks
//! it through every handler: endpoint → interceptor → SRTP → data channel → SCTP → DTLS → ICE →
//! demuxer, each taking it into its own queue and handing it on. An RTP packet is only passed
//! through by four of them (endpoint, data channel, SCTP and DTLS), yet each such hand-over moves
//! the whole message (a few hundred bytes) twice. An SFU writes every packet once per
//! subscriber, so those moves were a sixth of its CPU.
//!
//! Here the same handlers that do something with RTP (interceptors, SRTP, ICE, demuxer) run
//! at once, in the same order, and the datagram waits in the pipeline's `write_outs`: nothing
//! the interceptors give (NACK history, transport-wide sequence numbers, send history for
//! congestion control, sender reports, stats) is skipped. Before the DTLS handshake is
//! complete there are no SRTP keys and the interceptors are not running: the packet takes the
//! generic path as before.

use super::super::RTCPeerConnection;
use crate::peer_connection::message::internal::{
    RTCMessageInternal, RTPMessage, TaggedRTCMessageInternal,
};
use interceptor::Packet;
use log::warn;
use shared::TaggedBytesMut;
use shared::error::Result;
use std::time::Instant;

impl super::PipelineContext {
    /// Whether any handler holds a message on its way out (checked per packet: a few
    /// `is_empty`s).
    fn writes_pending(&self) -> bool {
        !(self.endpoint_handler_context.write_outs.is_empty()
            && self.interceptor_handler_context.write_outs.is_empty()
            && self.srtp_handler_context.write_outs.is_empty()
            && self.datachannel_handler_context.write_outs.is_empty()
            && self.sctp_handler_context.write_outs.is_empty()
            && self.dtls_handler_context.write_outs.is_empty()
            && self.ice_handler_context.write_outs.is_empty()
            && self.demuxer_handler_context.write_outs.is_empty())
    }
}

impl RTCPeerConnection {
    /// Writes one RTP packet from the application (`RTCRtpSender::write_rtp` checked it) and
    /// leaves its datagram, and whatever the interceptors emitted with it, in `write_outs`.
    pub(crate) fn write_rtp_direct(&mut self, now: Instant, packet: rtp::Packet) -> Result<()> {
        use sansio::Protocol;

        self.pipeline_context.observe(now);
        let msg = TaggedRTCMessageInternal {
            now,
            transport: Default::default(),
            message: RTCMessageInternal::Rtp(RTPMessage::Packet(Packet::Rtp(packet))),
        };
        if !self
            .pipeline_context
            .interceptor_handler_context
            .is_dtls_handshake_complete()
        {
            return self.get_endpoint_handler().handle_write(msg);
        }

        // Whatever a handler still holds goes first, as it would on the generic path: the
        // last flight of the DTLS handshake must reach the peer before the first SRTP packet
        // (which it cannot decrypt without it: a simulcast layer's first keyframe was lost that
        // way), and RTCP queued by `write_rtcp` keeps its place.
        if self.pipeline_context.writes_pending() {
            self.flush_writes();
        }

        // The belt's capacity is kept between packets: a steady stream allocates nothing here.
        let mut belt = std::mem::take(
            &mut self
                .pipeline_context
                .interceptor_handler_context
                .direct_write_belt,
        );
        belt.push_back(msg);
        process_handler_list!(
            call_macro: process_handler!(self, handler, {
                while let Some(msg) = belt.pop_front() {
                    if let Err(err) = handler.handle_write(msg) {
                        warn!("{}.handle_write got error: {}", handler.name(), err);
                    }
                }
                while let Some(msg) = handler.poll_write() {
                    belt.push_back(msg);
                }
            }),
            [
                get_interceptor_handler,
                get_srtp_handler,
                get_ice_handler,
                get_demuxer_handler
            ]
        );
        for msg in belt.drain(..) {
            if let RTCMessageInternal::Raw(message) = msg.message {
                self.pipeline_context.write_outs.push_back(TaggedBytesMut {
                    now: msg.now,
                    transport: msg.transport,
                    message,
                });
            }
        }
        self.pipeline_context
            .interceptor_handler_context
            .direct_write_belt = belt;
        Ok(())
    }
}

#[cfg(test)]
mod direct_write_test {
    //! The path itself (interceptors, SRTP, ICE) needs a connected peer: hoinghi's virtual-time
    //! tests drive it end to end (`sfu/src/sim/write_path_tests.rs`, and every `sim::` test that
    //! forwards media). These pin down what it must leave as it was.
    use crate::peer_connection::RTCPeerConnectionBuilder;
    use bytes::BytesMut;
    use sansio::Protocol;
    use shared::TaggedBytesMut;
    use std::time::Instant;

    #[test]
    fn before_the_dtls_handshake_a_packet_waits_at_the_endpoint_as_before() {
        let now = Instant::now();
        let mut pc = RTCPeerConnectionBuilder::new().build(now).expect("a peer");
        pc.write_rtp_direct(now, rtp::Packet::default())
            .expect("queued");
        assert_eq!(
            pc.pipeline_context
                .endpoint_handler_context
                .write_outs
                .len(),
            1,
            "without SRTP keys the packet takes the generic path"
        );
        assert!(pc.pipeline_context.write_outs.is_empty());
    }

    #[test]
    fn poll_write_hands_out_finished_datagrams_in_order_then_drains_the_pipeline() {
        let now = Instant::now();
        let mut pc = RTCPeerConnectionBuilder::new().build(now).expect("a peer");
        for byte in [1u8, 2] {
            pc.pipeline_context.write_outs.push_back(TaggedBytesMut {
                now,
                transport: Default::default(),
                message: BytesMut::from(&[byte][..]),
            });
        }
        let out: Vec<u8> = std::iter::from_fn(|| pc.poll_write())
            .map(|m| m.message[0])
            .collect();
        assert_eq!(out, [1, 2]);
        assert!(pc.poll_write().is_none());
    }
}
