-- Why a completed execution has no output: the first reference of its saga's output mapping
-- whose value was absent when it completed ({"field", "reference", "message"}); NULL otherwise.
ALTER TABLE executions ADD COLUMN output_error JSON NULL AFTER output;
