-- hoinghi control plane schema, version 3: calendar feed keys.
--
-- A calendar program subscribes to a feed URL without logging in: the URL carries a random
-- key (256 bits, hex). One row per feed: `all` (every meeting, no join links, for IT staff) or
-- `point:<code>` (that point's meetings with its own join links). Re-issuing replaces the key,
-- which invalidates the old URL at once. Created when the panel first shows the feed. The key
-- is stored as is (the panel shows it again, like a seat's join link is rebuilt).
CREATE TABLE calendar_feeds (
    scope     TEXT PRIMARY KEY,
    feed_key  TEXT NOT NULL,
    issued_at BIGINT NOT NULL
);
