-- Status-page sign-ins (a browser that gave the admin token on the sign-in form). Only a hash
-- of the cookie is kept, so a copy of the database signs nobody in; `bound` is an HMAC of the
-- admin token keyed by the cookie, so changing ONCALL_ADMIN_TOKEN ends every session.
-- `form_token` goes into the page's forms: a POST without it is refused (another site cannot
-- read it).
CREATE TABLE status_sessions (
    id_hash TEXT PRIMARY KEY,
    bound TEXT NOT NULL,
    form_token TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX status_sessions_expiry ON status_sessions (expires_at);
