-- Runs of a job that a live worker stopped because its queue lock lapsed while Redis was
-- away (paused, restarting, partitioned from it) past the lock's duration. BullMQ counts
-- such a run as one that ended with its worker, as it counts a crash, and dead-letters a job
-- past maxStalledCount of them as a crash loop; a long job could be dead-lettered for three
-- Redis outages it had no part in. The worker that stopped the run records it here, and the
-- runs that count against a job are BullMQ's count less these (services/worker/lock-watch.ts).
-- A constant default adds the column without rewriting a row.
ALTER TABLE jobs ADD COLUMN lock_lapses integer NOT NULL DEFAULT 0;
