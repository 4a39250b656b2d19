//! What each fuzz target checks, one function per target taking the fuzzer's bytes.
//!
//! Each function drives the same library code the server runs on that input and asserts what
//! must hold for every input (not only "no panic"): round trips, agreement with a simple
//! reference reading of the format, output bounds. The files are self-contained so that the
//! main workspace's `tests/fuzz_regressions.rs` includes them as they are and replays the
//! committed corpora on stable Rust.

mod media;
mod text;
mod transport;

pub use media::{audio_level, keyframe, red_primary, vp8_descriptor};
pub use text::{csv_import, join_token, signaling_message};
pub use transport::{sdp_offer, stun_demux, tcp_framing};
