-- hoinghi control plane schema: a meeting's controls survive a restart of the server.
--
-- One row per meeting: the last snapshot of what the meeting decided (floor, raised hands,
-- open microphones, discussion, screen share, roll call and its answers), JSON made by the
-- signaling layer, replaced after every change. No foreign key to meetings (the test room is
-- not stored); a snapshot is discarded once its meeting has ended.
CREATE TABLE room_controls (
    meeting_id TEXT PRIMARY KEY,
    snapshot   TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);
