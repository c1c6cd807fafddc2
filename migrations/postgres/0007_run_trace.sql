-- The W3C trace id of a run (32 hex digits): the `traceparent` its requests carried and the
-- trace it was exported as, so the run page and alerts can link to the trace. Runs stored
-- before this version carry none.
-- Kept in step with ../sqlite/0007_run_trace.sql. Adding a nullable column without a default
-- is a catalog change only: no table rewrite on a large runs table.
ALTER TABLE runs ADD COLUMN trace_id TEXT;
