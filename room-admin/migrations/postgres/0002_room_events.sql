-- PostgreSQL: the same as ../0002_room_events.sql (a test holds them equal) but for the log tables' ids,
-- identity columns here where SQLite has its rowid alias `INTEGER PRIMARY KEY`.
-- hoinghi control plane schema, version 2: what happens inside a meeting.
--
-- Same portability rules as version 1. Times from the signaling layer are Unix milliseconds
-- (`*_ms`, BIGINT); the `INTEGER PRIMARY KEY` log tables become identity columns on PostgreSQL.

-- Link summary of each connection, written when it ends (from the media plane's 2-second
-- samples). NULL: the connection ended before a summary (or is still open).
ALTER TABLE attendance ADD COLUMN link_samples INTEGER;
ALTER TABLE attendance ADD COLUMN rtt_ms_mean DOUBLE PRECISION;
ALTER TABLE attendance ADD COLUMN loss_mean DOUBLE PRECISION;
ALTER TABLE attendance ADD COLUMN loss_max DOUBLE PRECISION;

-- Roll-call answers ("có mặt"), one row per answer: a meeting may hold several roll calls.
-- No foreign key to meetings, like `attendance` (the test room is not stored).
CREATE TABLE roll_call_answers (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    meeting_id  TEXT NOT NULL,
    seat        TEXT NOT NULL,
    answered_ms BIGINT NOT NULL
);
CREATE INDEX roll_call_answers_meeting ON roll_call_answers (meeting_id, seat);

-- Chat of a meeting, kept with it. `text` is stored as sent (the signaling layer caps it at
-- 2,000 characters); it is text, shown with textContent.
CREATE TABLE chat_messages (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    meeting_id TEXT NOT NULL,
    seat       TEXT NOT NULL,
    to_chair   BOOLEAN NOT NULL,
    text       TEXT NOT NULL,
    sent_ms    BIGINT NOT NULL
);
CREATE INDEX chat_messages_meeting ON chat_messages (meeting_id, sent_ms);
