-- Fan-out: a parent job whose work is split into child tasks. Children are ordinary jobs
-- (their own queue entries, retries, dead-lettering, timeouts) that name their parent.
-- A parent waits in `waiting` while its children run; the counts per child status live on
-- job_fanouts and move in the same statement as the children's own rows, one aggregated
-- update per parent per write batch.

ALTER TABLE jobs DROP CONSTRAINT IF EXISTS jobs_status_check;
ALTER TABLE jobs ADD CONSTRAINT jobs_status_check
  CHECK (status IN ('queued', 'running', 'waiting', 'succeeded', 'failed', 'cancelled'));

-- No foreign key: a child is inserted by the statement that inserts its parent, and the
-- check would be paid once per child on the write that matters most (10,000 rows).
ALTER TABLE jobs ADD COLUMN parent_id uuid;
-- A parent's tasks in creation order (the tasks route's keyset); cancel and retry of a
-- parent find the children to move through it too.
CREATE INDEX jobs_parent_created_idx ON jobs (parent_id, created_at, id) WHERE parent_id IS NOT NULL;

CREATE TABLE job_fanouts (
  job_id     uuid PRIMARY KEY REFERENCES jobs (id) ON DELETE CASCADE,
  child_type text NOT NULL,
  -- Failed or cancelled tasks the parent tolerates; one more fails it (0: fail fast).
  max_failed integer NOT NULL CHECK (max_failed >= 0),
  total      integer NOT NULL CHECK (total > 0),
  queued     integer NOT NULL CHECK (queued >= 0),
  running    integer NOT NULL CHECK (running >= 0),
  succeeded  integer NOT NULL CHECK (succeeded >= 0),
  failed     integer NOT NULL CHECK (failed >= 0),
  cancelled  integer NOT NULL CHECK (cancelled >= 0),
  -- A task counted twice or lost by a write would break this, and that write with it.
  CONSTRAINT job_fanouts_counts_total CHECK (queued + running + succeeded + failed + cancelled = total)
);

-- Live status: every statement that writes audit rows tells the API processes listening on
-- `pk_job_events` which rows it wrote (its transaction and the range of their ids), once
-- per statement however many rows: a batch of 2,000 transitions is one notification. The
-- listeners read the rows themselves, so the payload stays a few dozen bytes.
CREATE FUNCTION notify_job_events() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('pk_job_events', json_build_array(pg_current_xact_id()::xid::text, min(id), max(id))::text)
  FROM written HAVING count(*) > 0;
  RETURN NULL;
END
$$;
CREATE TRIGGER job_events_notify AFTER INSERT ON job_events
  REFERENCING NEW TABLE AS written FOR EACH STATEMENT EXECUTE FUNCTION notify_job_events();
