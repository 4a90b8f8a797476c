-- Steps that branch and fan out. step_condition: a conditional step's `when` as evaluated when
-- it was false ({"when", "value", "operands"}; the step is SKIPPED). fanout: a fan-out step's
-- items as they started ({"items", "max_concurrency", "tolerated"}). An item of a fan-out has
-- a run of its own, "<step id>[<index>]", with item_of and item_index set; it shares its
-- step's position, and is never one of the execution's results (item_of IS NULL).
ALTER TABLE step_runs
    ADD COLUMN step_condition JSON NULL,
    ADD COLUMN fanout JSON NULL,
    ADD COLUMN item_of VARCHAR(100) NULL,
    ADD COLUMN item_index INT NULL;
