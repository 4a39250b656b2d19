-- PostgreSQL: the same as ../0001_init.sql (a test holds them equal) but for the log tables' ids,
-- identity columns here where SQLite has its rowid alias `INTEGER PRIMARY KEY`.
-- hoinghi control plane schema, version 1.
--
-- Portable to PostgreSQL on purpose: TEXT keys made by the application, times as BIGINT Unix
-- seconds (UTC), BOOLEAN with TRUE/FALSE. The two `INTEGER PRIMARY KEY` log tables become
-- `BIGINT GENERATED ALWAYS AS IDENTITY` there; the domain code never reads a rowid.

-- The directory of points (điểm cầu). Never deleted once used: `disabled` hides a point.
-- `code` is the official code (text: leading zeros matter) and does not change.
CREATE TABLE points (
    code          TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    kind          TEXT NOT NULL,
    unit          TEXT NOT NULL DEFAULT '',
    district      TEXT NOT NULL DEFAULT '',
    contact_name  TEXT NOT NULL DEFAULT '',
    contact_phone TEXT NOT NULL DEFAULT '',
    expected_link TEXT NOT NULL DEFAULT '',
    notes         TEXT NOT NULL DEFAULT '',
    disabled      BOOLEAN NOT NULL DEFAULT FALSE,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    CHECK (kind IN ('province_hall', 'department', 'district', 'commune', 'other'))
);
CREATE INDEX points_kind ON points (kind);

-- A meeting. `status` is what staff decided (scheduled, cancelled, ended early); the state a
-- point sees (open, live, ended) also depends on the clock, see `meetings::MeetingState`.
CREATE TABLE meetings (
    id           TEXT PRIMARY KEY,
    title        TEXT NOT NULL,
    agenda       TEXT NOT NULL DEFAULT '',
    starts_at    BIGINT NOT NULL,
    ends_at      BIGINT NOT NULL,
    open_minutes INTEGER NOT NULL,
    capacity     INTEGER NOT NULL,
    status       TEXT NOT NULL,
    ended_at     BIGINT,
    created_by   TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL,
    CHECK (ends_at > starts_at),
    CHECK (status IN ('scheduled', 'cancelled', 'ended'))
);
CREATE INDEX meetings_starts_at ON meetings (starts_at);

-- Who may join a meeting: one row per seat (the chair point, each invited point, each
-- observer). `jti` is the id of the only join token accepted for the seat: re-issuing a link
-- replaces it, which revokes the old link.
CREATE TABLE seats (
    meeting_id TEXT NOT NULL REFERENCES meetings (id),
    seat       TEXT NOT NULL,
    point_code TEXT REFERENCES points (code),
    name       TEXT NOT NULL,
    role       TEXT NOT NULL,
    jti        TEXT NOT NULL,
    issued_at  BIGINT NOT NULL,
    PRIMARY KEY (meeting_id, seat),
    CHECK (role IN ('chair', 'point', 'observer'))
);
CREATE INDEX seats_point_code ON seats (point_code);

CREATE TABLE accounts (
    username      TEXT PRIMARY KEY,
    password_hash TEXT NOT NULL,
    role          TEXT NOT NULL,
    disabled      BOOLEAN NOT NULL DEFAULT FALSE,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    CHECK (role IN ('admin', 'operator'))
);

-- Admin sessions. Only the SHA-256 of the cookie value is stored.
CREATE TABLE sessions (
    id_hash    TEXT PRIMARY KEY,
    username   TEXT NOT NULL REFERENCES accounts (username),
    csrf       TEXT NOT NULL,
    ip         TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX sessions_username ON sessions (username);

-- Every join and leave, written by the attendance recorder. No foreign key to meetings: the
-- test room is not a stored meeting, and the log outlives any edit of a meeting's seats.
CREATE TABLE attendance (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    meeting_id  TEXT NOT NULL,
    seat        TEXT NOT NULL,
    name        TEXT NOT NULL,
    role        TEXT NOT NULL,
    participant TEXT NOT NULL,
    joined_at   BIGINT NOT NULL,
    left_at     BIGINT,
    seconds     DOUBLE PRECISION
);
CREATE INDEX attendance_meeting ON attendance (meeting_id, seat);
CREATE INDEX attendance_open ON attendance (meeting_id, participant, left_at);

-- Who did what, when, from where.
CREATE TABLE audit_log (
    id     BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at     BIGINT NOT NULL,
    actor  TEXT NOT NULL,
    ip     TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    detail TEXT NOT NULL
);
CREATE INDEX audit_log_at ON audit_log (at);
