-- Child sagas: an execution a parent's child step started names that execution and step,
-- and how deep it nests (0: started through the API); the parent's step names its child.
ALTER TABLE executions
    ADD COLUMN parent_execution_id VARCHAR(100) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL,
    ADD COLUMN parent_step_id VARCHAR(100) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL,
    ADD COLUMN depth INT NOT NULL DEFAULT 0;
ALTER TABLE step_runs
    ADD COLUMN child_execution_id VARCHAR(100) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL;
