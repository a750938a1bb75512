-- Times a job's attempts failed on the platform's own infrastructure (a data store away,
-- the object store answering 5xx) and were queued again without being charged (the
-- lifecycle's `defer`). Bounded by MAX_DEFERRALS, after which the job is dead-lettered; a
-- retry or replay starts it over with its attempts. A constant default: no table rewrite.
ALTER TABLE jobs ADD COLUMN deferrals integer NOT NULL DEFAULT 0 CHECK (deferrals >= 0);
