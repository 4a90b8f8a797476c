-- What a completed execution produced: its saga's output mapping resolved against its input and
-- its steps' results when it completed (NULL while it runs, or when the saga declares none).
ALTER TABLE executions ADD COLUMN output JSON NULL AFTER error;
