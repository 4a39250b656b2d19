//! # hoinghi room-admin
//!
//! The control plane: who may join which meeting, and the IT staff's tools to decide it.
//! Storage is SQLite (one file in the data dir, WAL) or PostgreSQL (`--database-url`), through
//! sqlx's `Any` driver with one query set; migrations embedded ([`db`]).
//!
//! # Layout
//! - [`files`]: atomic, permission-aware writes into the data dir (secret, TLS key).
//! - [`secret`]: [`Secret`], the 32-byte signing key in `<data-dir>/secret.key`.
//! - [`tokens`]: [`JoinTokens`] signs and verifies join tokens (HS256 JWT) into [`JoinClaims`].
//! - [`test_room`]: the always-present meeting `test-room` and its join links.
//! - [`db`]: opening the database (SQLite or PostgreSQL), migrations, time and id helpers.
//! - [`error`]: [`StoreError`], field-level validation errors.
//! - [`timefmt`]: UTC storage, Vietnam (UTC+7) display.
//! - [`points`]: the directory of points; [`import`]: CSV import, all or nothing.
//! - [`meetings`]: meetings, seats, the lifecycle; [`links`]: join links of seats.
//! - [`closer`]: the task that closes meetings when their planned end passes.
//! - [`directory`]: the in-memory copy of meetings the authorizer reads.
//! - [`authorizer`]: [`JoinAuthorizer`], the `signaling::auth::Authorizer` implementation.
//! - [`accounts`]: staff accounts (argon2id) and sessions; [`throttle`]: login throttling.
//! - [`attendance`]: the `RoomObserver` that records joins and leaves, roll-call answers, link
//!   summaries, chat and room actions (into the audit log), and the report;
//!   [`attendance_csv`]: the report as a CSV file, in Vietnamese or English.
//! - [`chat`]: a meeting's stored chat.
//! - [`room_controls`]: the signaling layer's `ControlsStore`: each meeting's floor, hands,
//!   microphones and roll call kept across restarts.
//! - [`upstream`]: meetings linked to an upstream relay seat (the cascade, downstream side).
//! - [`audit`]: the audit log. [`ics`]: iCalendar export; [`feeds`]: calendar feed keys.
//! - [`api`]: the REST API under `/api/v1` and its OpenAPI document.

pub mod accounts;
pub mod api;
pub mod attendance;
pub mod attendance_csv;
pub mod audit;
pub mod authorizer;
pub mod chat;
pub mod closer;
pub mod db;
pub mod directory;
pub mod error;
pub mod feeds;
pub mod files;
pub mod ics;
pub mod import;
pub mod links;
pub mod meetings;
pub mod points;
pub mod room_controls;
pub mod secret;
pub mod test_room;
pub mod throttle;
pub mod timefmt;
pub mod tokens;
pub mod upstream;

pub use authorizer::JoinAuthorizer;
pub use db::Db;
pub use directory::Directory;
pub use error::StoreError;
pub use secret::{Secret, SecretError};
pub use test_room::TestRoomLinks;
pub use tokens::{JoinClaims, JoinTokens, SignError, VerifyError};
