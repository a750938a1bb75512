-- Users, files, jobs and the audit trail of every job state transition.
-- PostgreSQL is the source of truth for jobs; Redis (BullMQ) only delivers them.

CREATE TABLE users (
  id            uuid PRIMARY KEY,
  email         text NOT NULL,
  password_hash text NOT NULL,
  role          text NOT NULL DEFAULT 'user' CHECK (role IN ('user', 'admin')),
  created_at    timestamptz NOT NULL DEFAULT now()
);
-- Emails compare case-insensitively: Ada@x and ada@x are one account.
CREATE UNIQUE INDEX users_email_key ON users (lower(email));

CREATE TABLE files (
  id           uuid PRIMARY KEY,
  owner_id     uuid NOT NULL REFERENCES users (id),
  name         text NOT NULL,
  content_type text NOT NULL,
  size         bigint NOT NULL CHECK (size >= 0),
  sha256       text NOT NULL,
  storage_key  text NOT NULL UNIQUE,
  -- Set for files a job produced; unique so a re-run processor cannot register its output twice.
  produced_by_job_id uuid UNIQUE,
  created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX files_owner_created_idx ON files (owner_id, created_at DESC, id DESC);

CREATE TABLE jobs (
  id              uuid PRIMARY KEY,
  owner_id        uuid NOT NULL REFERENCES users (id),
  type            text NOT NULL,
  input           jsonb NOT NULL,
  status          text NOT NULL CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
  attempts        integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
  max_attempts    integer NOT NULL CHECK (max_attempts BETWEEN 1 AND 25),
  priority        integer NOT NULL DEFAULT 0 CHECK (priority BETWEEN 0 AND 1000),
  progress        real NOT NULL DEFAULT 0 CHECK (progress BETWEEN 0 AND 100),
  result          jsonb,
  result_file_id  uuid REFERENCES files (id),
  error           text,
  idempotency_key text,
  -- Hash of the submitted body, so a reused key with another body is told apart (409).
  request_hash    text,
  request_id      text,
  created_at      timestamptz NOT NULL DEFAULT now(),
  updated_at      timestamptz NOT NULL DEFAULT now(),
  started_at      timestamptz,
  finished_at     timestamptz
);
CREATE UNIQUE INDEX jobs_owner_idempotency_key ON jobs (owner_id, idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX jobs_owner_created_idx ON jobs (owner_id, created_at DESC, id DESC);
-- The relay's sweep and the doctor's lag check read only queued jobs. The relay does not
-- record "handed to Redis" on the row (a second write per job on the hot path); the sweep
-- asks Redis instead, for queued rows older than a grace period.
CREATE INDEX jobs_queued_idx ON jobs (updated_at) WHERE status = 'queued';
-- The sweep also looks for running jobs whose worker and Redis job are both gone.
CREATE INDEX jobs_running_idx ON jobs (updated_at) WHERE status = 'running';
-- The dead-letter set: failed jobs, newest first, keyset-paginated.
CREATE INDEX jobs_failed_idx ON jobs (finished_at DESC, id DESC) WHERE status = 'failed';

CREATE TABLE job_events (
  id          bigserial PRIMARY KEY,
  job_id      uuid NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
  from_status text,
  to_status   text NOT NULL,
  attempt     integer NOT NULL DEFAULT 0,
  detail      text,
  at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX job_events_job_idx ON job_events (job_id, id);
