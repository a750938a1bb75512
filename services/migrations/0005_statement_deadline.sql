-- A statement that must not run later than its caller waits for it. An autocommitted
-- statement sent to a server that then stops answering (stopped, partitioned, hung) still
-- runs, and commits, when the server resumes: long after its caller was told it failed.
-- The caller names the latest time the statement may start; started later, the statement
-- fails as a statement timeout does (57014) and writes nothing. NULL means no deadline.
CREATE FUNCTION require_started_before(deadline timestamptz) RETURNS boolean LANGUAGE plpgsql VOLATILE AS $$
BEGIN
  IF deadline IS NOT NULL AND statement_timestamp() >= deadline THEN
    RAISE EXCEPTION 'the statement started % after the time its caller allowed', statement_timestamp() - deadline
      USING ERRCODE = 'query_canceled';
  END IF;
  RETURN true;
END
$$;
