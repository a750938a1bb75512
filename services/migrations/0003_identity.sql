-- Identity: signing keys, sessions (refresh-token families), password-reset tokens, and
-- the platform's own account that owns internal jobs (e-mails).

-- Access-token signing keys. The private key is sealed (AES-256-GCM) under
-- KEY_ENCRYPTION_SECRET, so a database dump alone cannot mint tokens. The newest key
-- signs; it and the one before it verify, so a rotation logs nobody out.
CREATE TABLE signing_keys (
  kid            text PRIMARY KEY,
  algorithm      text NOT NULL CHECK (algorithm IN ('EdDSA')),
  public_jwk     jsonb NOT NULL,
  sealed_private text NOT NULL,
  created_at     timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX signing_keys_created_idx ON signing_keys (created_at DESC);

-- A login starts a session family; each refresh rotates the family's refresh token.
-- access_expires_at is when the last access token issued for the family expires: a
-- revoked family stays on the API's denylist until then.
CREATE TABLE sessions (
  id                uuid PRIMARY KEY,
  user_id           uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  created_at        timestamptz NOT NULL DEFAULT now(),
  access_expires_at timestamptz NOT NULL,
  revoked_at        timestamptz,
  revoked_reason    text
);
CREATE INDEX sessions_user_idx ON sessions (user_id) WHERE revoked_at IS NULL;
CREATE INDEX sessions_revoked_idx ON sessions (access_expires_at) WHERE revoked_at IS NOT NULL;

-- Refresh tokens are stored only as their SHA-256 (they are 256 random bits, so a slow
-- hash would add nothing). rotated_at set = already exchanged: presenting it again is reuse.
CREATE TABLE refresh_tokens (
  token_hash bytea PRIMARY KEY,
  session_id uuid NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
  expires_at timestamptz NOT NULL,
  rotated_at timestamptz,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX refresh_tokens_session_idx ON refresh_tokens (session_id);

CREATE TABLE password_reset_tokens (
  token_hash bytea PRIMARY KEY,
  user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  expires_at timestamptz NOT NULL,
  used_at    timestamptz,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX password_reset_tokens_user_idx ON password_reset_tokens (user_id) WHERE used_at IS NULL;

-- The platform's own account: it owns internal jobs (email.send), so a user's job list
-- never shows a mail, and a reset token in a mail job is never readable through the API.
-- Its email is not an address and its hash no password, so nobody can sign in as it.
INSERT INTO users (id, email, password_hash, role)
VALUES ('00000000-0000-0000-0000-000000000000', 'platform', '!', 'user')
ON CONFLICT DO NOTHING;
