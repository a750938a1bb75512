-- The size of a job's input as compact JSON text, in bytes, written with the job. A worker's
-- delivery read decides by it whether the input comes along or is read alone once the worker
-- has room for it; measuring a stored jsonb instead means turning it into text, a tenth of a
-- second of PostgreSQL's time for a MiB of small values, on every delivery. Jobs written
-- before this column are measured as before. Adding a nullable column rewrites no row.
ALTER TABLE jobs ADD COLUMN input_bytes integer;
