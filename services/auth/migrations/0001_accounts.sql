-- Accounts, sessions (refresh-token families), one-time tokens and the admin
-- audit of the auth service. The outbox comes from cityevents-messaging.

CREATE TABLE users (
    id             uuid PRIMARY KEY,
    -- Normalised (trimmed, lowercased) at the edge of the service.
    email          text NOT NULL UNIQUE,
    display_name   text NOT NULL,
    password_hash  text NOT NULL,
    role           text NOT NULL DEFAULT 'user' CHECK (role IN ('user', 'moderator', 'admin')),
    email_verified boolean NOT NULL DEFAULT false,
    banned_at      timestamptz,
    ban_reason     text,
    -- Bumped by logout-everywhere, bans and password resets: every access
    -- token carrying a lower version is dead.
    token_version  bigint NOT NULL DEFAULT 0,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);

-- A session is one login: a family of refresh tokens, each replacing the last.
CREATE TABLE sessions (
    id            uuid PRIMARY KEY,
    user_id       uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at    timestamptz NOT NULL DEFAULT now(),
    revoked_at    timestamptz,
    revoke_reason text
);
CREATE INDEX sessions_user ON sessions (user_id) WHERE revoked_at IS NULL;

CREATE TABLE refresh_tokens (
    -- SHA-256 of the opaque token; the token itself is never stored.
    token_hash bytea PRIMARY KEY,
    session_id uuid NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    issued_at  timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    used_at    timestamptz
);
CREATE INDEX refresh_tokens_session ON refresh_tokens (session_id);

CREATE TABLE one_time_tokens (
    token_hash bytea PRIMARY KEY,
    user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    purpose    text NOT NULL CHECK (purpose IN ('verify_email', 'reset_password')),
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    used_at    timestamptz
);
CREATE INDEX one_time_tokens_user ON one_time_tokens (user_id, purpose);

CREATE TABLE admin_audit (
    id         bigserial PRIMARY KEY,
    admin_id   uuid NOT NULL,
    user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    action     text NOT NULL,
    detail     text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now()
);
