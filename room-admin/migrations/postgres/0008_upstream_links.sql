-- hoinghi control plane schema, version 8: meetings linked to an upstream relay seat (the
-- cascade, issue 13, downstream side).
--
-- A local meeting may be linked to a seat of role `relay` in another hoinghi server's meeting:
-- `link` is that seat's join link (`https://host/join?t=<token>`), a secret the API never
-- returns in full; `name` is what the local meeting's roster calls the upstream program;
-- `fingerprint` (an `https` link's upstream certificate, SHA-256 as `AB:CD:…`) is the only
-- certificate the relay trusts there, NULL to trust the system's authorities. While the meeting
-- is open or live, this server runs the relay client with it.
CREATE TABLE upstream_links (
    meeting_id  TEXT PRIMARY KEY REFERENCES meetings (id),
    link        TEXT NOT NULL,
    name        TEXT NOT NULL,
    fingerprint TEXT,
    updated_at  BIGINT NOT NULL,
    updated_by  TEXT NOT NULL
);
