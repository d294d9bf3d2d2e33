-- Every genuine webhook, exactly once per (source, dedup_key). `raw` keeps the body as received
-- so that a later fix to normalisation can be replayed; `routed_at` is NULL until the
-- escalation service has routed the event (unrouted events are routed at the next start).
CREATE TABLE events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    source TEXT NOT NULL,
    dedup_key TEXT NOT NULL,
    kind TEXT NOT NULL,
    external_type TEXT,
    received_at TIMESTAMP NOT NULL,
    occurred_at TIMESTAMP,
    summary TEXT NOT NULL DEFAULT '',
    severity TEXT,
    customer_name TEXT,
    customer_email TEXT,
    customer_phone TEXT,
    customer_language TEXT,
    order_id TEXT,
    order_number TEXT,
    order_amount REAL,
    order_currency TEXT,
    ticket_id TEXT,
    ticket_priority TEXT,
    ticket_status TEXT,
    ticket_subject TEXT,
    tags TEXT NOT NULL DEFAULT '[]',
    raw BLOB NOT NULL,
    routed_at TIMESTAMP,
    UNIQUE (source, dedup_key)
);
CREATE INDEX events_unrouted ON events (id) WHERE routed_at IS NULL;
