-- Paging channels (SPEC §4–5).
-- Secrets oncall makes for itself, once, shared by every instance: the ack-link signing key.
CREATE TABLE paging_secrets (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);
-- Inbound deliveries already handled: Telegram update_id, Twilio MessageSid. The primary key
-- makes a redelivery (the platform retrying after a slow answer) a no-op, across instances.
CREATE TABLE paging_inbound (
    source TEXT NOT NULL,
    delivery_id TEXT NOT NULL,
    seen_at TIMESTAMP NOT NULL,
    PRIMARY KEY (source, delivery_id)
);
-- Help texts sent to SMS numbers whose reply was not understood: a few per hour per number.
CREATE TABLE paging_help (
    number TEXT NOT NULL,
    sent_at TIMESTAMP NOT NULL
);
CREATE INDEX paging_help_number ON paging_help (number, sent_at);
