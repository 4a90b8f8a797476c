-- Steps that wait. A waiting step's wait ({"kind", "since", "until", "callback_id",
-- "heartbeat_at", "completed_by", "completed_at"}), kept after it ends; NULL for other kinds.
ALTER TABLE step_runs ADD COLUMN waiting JSON NULL;

-- One row per callback: an attempt of a callback step that waits to be completed through the
-- API. The id is opaque and unguessable; the per-callback secret is kept only as its SHA-256;
-- the engine's task token never leaves this table. A row is completed once (state leaves
-- 'open' under its row lock), and a new attempt of the step supersedes its older rows.
CREATE TABLE step_callbacks (
    id            VARCHAR(64)   CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    secret_sha256 CHAR(64)      CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    execution_id  VARCHAR(100)  CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    step_id       VARCHAR(100)  CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    attempt       INT           NOT NULL,
    task_token    TEXT          NOT NULL,
    heartbeat_s   INT           NULL,
    created_at    DATETIME(6)   NOT NULL,
    expires_at    DATETIME(6)   NOT NULL,
    state         VARCHAR(16)   NOT NULL DEFAULT 'open',
    closed_at     DATETIME(6)   NULL,
    closed_by     VARCHAR(200)  NULL,
    PRIMARY KEY (id),
    KEY callbacks_by_step (execution_id, step_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
