-- What each owner keeps in the jobs table, for the per-user job quotas (QUOTA_JOBS,
-- QUOTA_JOB_BYTES): jobs kept, and the bytes of their inputs and results as JSON text.
-- Summing an owner's jobs on the submit path would read every row they keep; instead every
-- statement that inserts or deletes jobs, or stores a result, adds its change here in the
-- same statement. An owner's usage is the sum of their rows. Each statement adds to one of
-- a few rows per owner (`shard`, chosen by the writing process), so two statements in
-- flight for the same owners rarely wait for each other's row lock until commit.
CREATE TABLE job_usage (
  owner_id uuid     NOT NULL,
  shard    smallint NOT NULL,
  jobs     bigint   NOT NULL DEFAULT 0,
  bytes    bigint   NOT NULL DEFAULT 0,
  PRIMARY KEY (owner_id, shard)
) WITH (fillfactor = 50);

-- A result's size as compact JSON text, in bytes, written with the result, so that deleting
-- the job takes exactly as much off its owner's usage as storing it added.
ALTER TABLE jobs ADD COLUMN result_bytes integer;

-- Jobs already kept count with the sizes they were written with. Inputs written before
-- migration 0009 have no recorded size and results before this one have none either: they
-- count as jobs but not as bytes (measuring them would read every stored payload), and
-- leave with JOB_RETENTION_DAYS.
INSERT INTO job_usage (owner_id, shard, jobs, bytes)
SELECT owner_id, 0, count(*), COALESCE(sum(COALESCE(input_bytes, 0)), 0)
FROM jobs GROUP BY owner_id;
