-- hoinghi control plane schema, version 7: relay seats (the cascade, issue 13).
--
-- A seat may have the role `relay`: a downstream hoinghi server (a province) seated in the
-- meeting, its link issued and revoked like any seat's. The role's CHECK cannot be altered in
-- place on SQLite, so the table is rebuilt with the same columns, key and index, and the rows
-- copied. Nothing references `seats`, so the rebuild touches no other table.
CREATE TABLE seats_v7 (
    meeting_id TEXT NOT NULL REFERENCES meetings (id),
    seat       TEXT NOT NULL,
    point_code TEXT REFERENCES points (code),
    name       TEXT NOT NULL,
    role       TEXT NOT NULL,
    jti        TEXT NOT NULL,
    issued_at  BIGINT NOT NULL,
    PRIMARY KEY (meeting_id, seat),
    CHECK (role IN ('chair', 'point', 'observer', 'relay'))
);
INSERT INTO seats_v7 (meeting_id, seat, point_code, name, role, jti, issued_at)
    SELECT meeting_id, seat, point_code, name, role, jti, issued_at FROM seats;
DROP TABLE seats;
ALTER TABLE seats_v7 RENAME TO seats;
CREATE INDEX seats_point_code ON seats (point_code);
