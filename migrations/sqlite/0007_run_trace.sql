-- The W3C trace id of a run (32 hex digits): the `traceparent` its requests carried and the
-- trace it was exported as, so the run page and alerts can link to the trace. Runs stored
-- before this version carry none.
-- Kept in step with ../postgres/0007_run_trace.sql.
ALTER TABLE runs ADD COLUMN trace_id TEXT;
