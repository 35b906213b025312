-- Redis holds a copy of the revocation state (token versions, ended
-- sessions) that verifiers check; the copier reads what changed since its
-- last round by these.
CREATE INDEX users_updated ON users (updated_at) WHERE token_version > 0;
CREATE INDEX sessions_revoked ON sessions (revoked_at) WHERE revoked_at IS NOT NULL;
