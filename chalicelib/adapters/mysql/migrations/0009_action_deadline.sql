-- The late-action rule: the latest deadline any admitted attempt of a step's action was given
-- (its participant's call is cut there). A compensation is sent no sooner than this plus
-- saga.task_timeout_margin, so it never overtakes an action still in flight.
ALTER TABLE step_runs
    ADD COLUMN action_deadline DATETIME(6) NULL
