-- Pages are looked up by the message that delivered them (`ref`): a bundle's "… all" button,
-- the edits after an ack (a bundle still paging for another incident), a provider's report
-- that a message never arrived.
CREATE INDEX pages_ref ON pages (ref) WHERE ref IS NOT NULL;
