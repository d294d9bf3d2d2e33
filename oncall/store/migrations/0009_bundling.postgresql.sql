-- Pages are looked up by the message that delivered them (`ref`): a bundle's "… all" button,
-- the edits after an ack (a bundle still paging for another incident), a provider's report
-- that a message never arrived.
CREATE INDEX pages_ref ON pages (ref) WHERE ref IS NOT NULL;

-- The next free send slot of each per-chat rate limit (a Telegram chat, a Slack DM, the SMS
-- sender), shared by every instance: two instances paging one person never send to the chat
-- faster than the provider's limit together (`oncall.store.slots`). Seconds of the wall clock.
CREATE TABLE send_slots (
    key TEXT PRIMARY KEY,
    next_at DOUBLE PRECISION NOT NULL
);
