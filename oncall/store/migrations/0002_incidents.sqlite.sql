-- Incidents (SPEC §5). The incident itself (timeline, escalation position, …) is a JSON
-- document written by the escalation core, its events another (rewritten only when events
-- join); the columns beside them are what queries need. `version` counts writes, so a copy
-- read ahead of a timer (to fire it sooner) is used only if nothing changed it since.
-- `wake_at` is the incident's durable timer: the scheduler sleeps until the smallest one.
-- `open_key` (rule + group) is set while the incident is open, so that two routers can never
-- open two incidents for one group.
CREATE TABLE incidents (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    rule TEXT NOT NULL,
    group_key TEXT NOT NULL,
    state TEXT NOT NULL,
    open_key TEXT UNIQUE,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    wake_at TIMESTAMP,
    data TEXT NOT NULL,
    events TEXT NOT NULL DEFAULT '[]',
    version INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX incidents_wake ON incidents (wake_at) WHERE wake_at IS NOT NULL;
CREATE INDEX incidents_state ON incidents (state, id);

-- What a later event may be about: "order:ID", "email:…", "phone:DIGITS", "ticket:ID", so a
-- cancelling success or a ticket update finds its incident without scanning them all.
CREATE TABLE incident_keys (
    key TEXT NOT NULL,
    incident_id INTEGER NOT NULL,
    PRIMARY KEY (key, incident_id)
);

-- Every page, written as `pending` in the same transaction that decided it, before it is
-- sent: the primary key (incident, round, step, person, channel) makes a second send of the
-- same page impossible. `queued`: taken by the instance `claimed_by` (at `sent_at`), waiting
-- for its bundle or rate limit; `sending`: the channel is being called; then `sent`/`failed`.
CREATE TABLE pages (
    key TEXT PRIMARY KEY,
    incident_id INTEGER NOT NULL,
    person TEXT NOT NULL,
    channel TEXT NOT NULL,
    sent_via TEXT,
    step INTEGER NOT NULL,
    round INTEGER NOT NULL,
    state TEXT NOT NULL,
    claimed_by TEXT,
    created_at TIMESTAMP NOT NULL,
    sent_at TIMESTAMP,
    ref TEXT,
    error TEXT
);
CREATE INDEX pages_open ON pages (state) WHERE state IN ('pending', 'queued', 'sending');
CREATE INDEX pages_incident ON pages (incident_id);

-- What routing did with each event (rule, action), including events stored during a
-- maintenance window, which are listed but page nobody.
CREATE TABLE event_routes (
    event_id INTEGER NOT NULL,
    rule TEXT NOT NULL,
    action TEXT NOT NULL,
    incident_id INTEGER,
    note TEXT,
    routed_at TIMESTAMP NOT NULL,
    PRIMARY KEY (event_id, rule)
);

-- Named one-off timers: "digest" = when business hours next open and deferred incidents are
-- released into one post.
CREATE TABLE timers (
    name TEXT PRIMARY KEY,
    due TIMESTAMP NOT NULL
);
