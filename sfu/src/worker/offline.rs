//! The publish side of negotiation with no worker, socket or thread of its own: a client's offer
//! and trickled candidates go through exactly what [`WorkerCore::publish_offer`] and
//! `add_candidate` do to them (a connection built by the same [`PcFactory`], the offer parsed and
//! applied, an answer created and applied). Fuzz targets (`fuzz/`) and the replay test of their
//! corpora call it; the server itself never does.
//!
//! [`WorkerCore::publish_offer`]: super::WorkerCore::publish_offer

use std::cell::RefCell;
use std::net::SocketAddr;
use std::time::Instant;

use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::peer_connection::transport::RTCIceCandidateInit;

use super::conn::{PcFactory, internal, rtc_sdp_error};
use crate::api::SfuError;

thread_local! {
    /// One factory per thread: its DTLS certificate costs a key generation, as on a worker.
    static FACTORY: RefCell<Option<PcFactory>> = const { RefCell::new(None) };
}

/// Answers `offer` as a publish connection would, then adds each of `candidates` (the
/// `candidate:` lines a client trickles). Returns our answer's SDP.
pub fn answer_publish_offer(offer: &str, candidates: &[&str]) -> Result<String, SfuError> {
    crate::sdp_text::check(offer)?;
    FACTORY.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.is_none() {
            let udp = SocketAddr::from(([192, 0, 2, 1], 10_000));
            let tcp = SocketAddr::from(([192, 0, 2, 1], 10_443));
            *slot = Some(PcFactory::new(udp, Some(tcp))?);
        }
        let factory = slot.as_ref().ok_or_else(|| internal("no factory"))?;
        let now = Instant::now();
        let mut pc = factory.build(now, "fuzzw0n1", &format!("{:032x}", 7u128), None)?;
        let offer = RTCSessionDescription::offer(offer.to_owned()).map_err(rtc_sdp_error)?;
        pc.set_remote_description(now, offer)
            .map_err(rtc_sdp_error)?;
        let answer = pc.create_answer(None).map_err(rtc_sdp_error)?;
        pc.set_local_description(now, answer).map_err(internal)?;
        let sdp = pc
            .local_description()
            .map(|d| d.sdp)
            .ok_or_else(|| internal("no local description after answering"))?;
        for c in candidates.iter().filter(|c| !c.is_empty()) {
            pc.add_remote_candidate(RTCIceCandidateInit {
                candidate: (*c).to_owned(),
                sdp_mid: Some("0".to_owned()),
                sdp_mline_index: Some(0),
                ..Default::default()
            })
            .map_err(|e| SfuError::BadCandidate(e.to_string()))?;
        }
        Ok(sdp)
    })
}
