//! # hoinghi loadtest
//!
//! Simulated conference points that speak the real `/ws` protocol with async `webrtc` peers: a
//! second, independent WebRTC stack facing our server. Used by the integration tests and by the
//! `hoinghi-loadtest` tool.
//!
//! # Layout
//! - [`point`]: one simulated point: signaling, publish and subscribe connections, statistics.
//! - [`layers`]: simulcast ladders, layer detection from VP8 keyframes, per-layer accounting.
//! - [`inprocess`]: a server in this process with fixed tokens, and CPU accounting from `/proc`.
//! - [`media`]: synthetic VP8 and Opus RTP (real keyframe headers, configurable rate).
//! - [`share`]: a participant sharing a screen only (started and stopped by renegotiation).
//! - [`red`]: redundant audio (RFC 2198): wrapping, unwrapping, recovery accounting.
//! - [`targets`]: issue 11's line targets: layer per second, return after a dip, steadiness.
//! - [`stall`]: the generator's own runtime lateness (its stalls), to tell them from the server's.
//! - `rtcp_tap`: an interceptor that lets RTCP reach the application (keyframe requests).

pub mod http;
pub mod inprocess;
pub mod janus;
pub mod layers;
pub mod limit;
pub mod link;
pub mod media;
pub mod mediafile;
pub mod point;
pub mod prom;
pub mod red;
pub mod relay;
mod rtcp_tap;
pub mod scenario;
pub mod share;
pub mod stall;
pub mod stats;
pub mod targets;
