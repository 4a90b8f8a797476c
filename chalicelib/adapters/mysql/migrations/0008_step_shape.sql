-- A step run's place in its saga's shape: the parallel group it runs in (the order its steps
-- share) and its kind (compensatable, pivot, retriable). retry_base: the action attempts
-- recorded before the current round; an operator's retry forward starts a new round, and a
-- retriable step's attempts are counted against saga.retriable_max_attempts from there.
ALTER TABLE step_runs
    ADD COLUMN step_group INT NULL,
    ADD COLUMN kind VARCHAR(20) NULL,
    ADD COLUMN retry_base INT NOT NULL DEFAULT 0
