-- hoinghi control plane schema, version 4: a password that must be changed.
--
-- The bootstrap account's password was printed on a terminal (and may sit in a scroll-back or a
-- service log someone copied): its first login may only change it. Set for the account the
-- first start creates, cleared when the account's password is set again.
ALTER TABLE accounts ADD COLUMN must_change_password BOOLEAN NOT NULL DEFAULT FALSE;
