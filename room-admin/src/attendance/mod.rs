//! Attendance: every join and leave, roll-call answers, link summaries, chat and the room's
//! control actions, and the per-meeting report.
//!
//! [`AttendanceRecorder`] is the signaling layer's `RoomObserver`. Signaling calls it from the
//! session task, which must not wait on a disk: each event is stamped with the time it happened
//! and put on a bounded queue; one task writes the queue to the database in order. If the queue
//! is full (the disk stalled during a join storm of thousands), the event is dropped and counted
//! in a log line rather than slowing the meeting.
//!
//! # Layout
//! - `recorder`: [`AttendanceRecorder`], stamping each event and queueing it;
//! - `writer`: the queued events and the task that writes them in order;
//! - `report`: [`report`], a meeting's [`AttendanceReport`] built from what was written.

mod recorder;
mod report;
mod writer;

pub use recorder::{AttendanceRecorder, QUEUE};
pub use report::{AttendanceReport, AttendanceRow, LATE_AFTER_SECS, LinkStats, report};
pub use writer::ROOM_ACTION_PREFIX;
