-- hoinghi control plane schema, version 6: who ended a meeting.
--
-- `ended_at` (version 1) says when a meeting ended; this says who: `chair:<point code>` when the
-- chair point ended it from its page, `staff:<user name>` from the admin panel, `schedule` when
-- it reached its planned end. NULL while it has not ended (and for meetings ended before this
-- version).
ALTER TABLE meetings ADD COLUMN ended_by TEXT;
