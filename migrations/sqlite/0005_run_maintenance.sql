-- The maintenance window a run fell in (issue 7), set when the run is stored: the name of the
-- window, NULL outside any. Stored with the run so the gate, the report, the run pages and the
-- metrics replay at start read history as it was recorded; editing a window later does not
-- rewrite it. Runs stored before this version carry no mark.
-- Kept in step with ../postgres/0005_run_maintenance.sql.
ALTER TABLE runs ADD COLUMN maintenance TEXT;
