//! # hoinghi room-admin
//!
//! The control plane: who may join which meeting. Today: the data dir's token secret, signed join
//! tokens, the permanent test room, and the [`JoinAuthorizer`] the signaling layer asks at every
//! join. Later: meetings and points stored in SQLite, the admin REST API, attendance.
//!
//! # Layout
//! - [`files`]: atomic, permission-aware writes into the data dir (secret, TLS key).
//! - [`secret`]: [`Secret`], the 32-byte signing key in `<data-dir>/secret.key`.
//! - [`tokens`]: [`JoinTokens`] signs and verifies join tokens (HS256 JWT) into [`JoinClaims`].
//! - [`test_room`]: the always-present meeting `test-room` and its join links.
//! - [`authorizer`]: [`JoinAuthorizer`], the `signaling::auth::Authorizer` implementation.

pub mod authorizer;
pub mod files;
pub mod secret;
pub mod test_room;
pub mod tokens;

pub use authorizer::JoinAuthorizer;
pub use secret::{Secret, SecretError};
pub use test_room::TestRoomLinks;
pub use tokens::{JoinClaims, JoinTokens, SignError, VerifyError};
