-- When each execution is next expected to move (chalicelib/domain/expected_by.py): set as it
-- starts, as an attempt of one of its steps is admitted, and as a step starts waiting; NULL
-- once it ended. The reconciler describes only active executions past it, so one that waits
-- (a callback, a timer) costs no call to the engine until its wait should have ended.
ALTER TABLE executions
    ADD COLUMN expected_by DATETIME(6) NULL AFTER updated_at,
    ADD KEY executions_expected (status, expected_by);

-- Executions still going when this ran are due by their last change, as before.
UPDATE executions SET expected_by = updated_at WHERE status IN ('RUNNING', 'COMPENSATING');
