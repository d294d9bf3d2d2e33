-- Customer reassurance (SPEC §5). One row per customer of an incident: its primary key is the
-- "at most one message per incident and customer" guarantee, across restarts and instances,
-- and the row says what became of it. `customer` is "email:…", "phone:…" or "ticket:SOURCE:ID".
CREATE TABLE reassurances (
    incident_id BIGINT NOT NULL,
    customer TEXT NOT NULL,
    message TEXT NOT NULL,
    channel TEXT,
    language TEXT,
    state TEXT NOT NULL,
    detail TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (incident_id, customer)
);
-- The last send of each message to each customer: "not the same message twice within 12
-- hours", claimed with one conditional upsert so two incidents never both win.
CREATE TABLE reassurance_window (
    customer TEXT NOT NULL,
    message TEXT NOT NULL,
    incident_id BIGINT NOT NULL,
    sent_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (customer, message)
);
