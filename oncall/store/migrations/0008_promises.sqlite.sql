-- Promises (SPEC §2.1): each reassurance sent promised its customer contact within
-- shop.response_time. One row per incident and customer (as `reassurances`), made in the
-- transaction that recorded the message as sent. `wake_at` is the promise's durable timer
-- (its reminder, its escalation, its deadline): the scheduler sleeps until the smallest one,
-- and one instance takes a due promise (row lock) and writes what it decided in the same
-- transaction, so a reminder, a broken promise and its `_late` message happen once.
-- `contact` is the customer as reassurance reached them (JSON), for `_late` / `_resolved`.
-- `late` / `resolved`: NULL, then claimed ("sending") before the message is sent, then
-- its outcome (sent, failed, unreachable): at most once, like the first message.
CREATE TABLE promises (
    incident_id INTEGER NOT NULL,
    customer TEXT NOT NULL,
    name TEXT NOT NULL,
    message TEXT NOT NULL,
    contact TEXT NOT NULL,
    ticket TEXT,
    made_at TIMESTAMP NOT NULL,
    deadline TIMESTAMP NOT NULL,
    state TEXT NOT NULL,
    settled_at TIMESTAMP,
    settled_by TEXT,
    contacted_at TIMESTAMP,
    reminded_at TIMESTAMP,
    escalated_at TIMESTAMP,
    wake_at TIMESTAMP,
    late TEXT,
    resolved TEXT,
    PRIMARY KEY (incident_id, customer)
);
CREATE INDEX promises_wake ON promises (wake_at) WHERE wake_at IS NOT NULL;
CREATE INDEX promises_made ON promises (made_at);
CREATE INDEX promises_ticket ON promises (ticket) WHERE state = 'open';
-- The closed-hours report reads incidents by when they opened.
CREATE INDEX incidents_created ON incidents (created_at);
