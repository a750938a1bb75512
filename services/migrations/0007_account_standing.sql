-- Disabled accounts, and a lasting record of what operators did to an account.

-- Set while the account is disabled: it cannot sign in, refresh or reset its password.
-- Nullable without a default, so adding it rewrites no row.
ALTER TABLE users ADD COLUMN disabled_at timestamptz;

-- The last-admin guard locks the enabled admins on every demotion and disable.
CREATE INDEX users_enabled_admins_idx ON users (id) WHERE role = 'admin' AND disabled_at IS NULL;

-- Who disabled, enabled, promoted or demoted an account (or cleared its password), when and why. The CLI's own log
-- goes to the operator's terminal, never to the log store, so this table is the audit
-- trail of operator actions.
CREATE TABLE account_events (
  id         bigserial PRIMARY KEY,
  user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  action     text NOT NULL CHECK (action IN ('disabled', 'enabled', 'password_cleared', 'role_changed', 'admin_created')),
  -- The new role, for role_changed and admin_created.
  role       text CHECK (role IN ('user', 'admin')),
  actor      text NOT NULL,
  reason     text,
  created_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX account_events_user_idx ON account_events (user_id, id DESC);
