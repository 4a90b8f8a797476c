-- Executions, their steps and every attempt; the transactional outbox; idempotency records.
CREATE TABLE executions (
    id                VARCHAR(100)  NOT NULL,
    saga_id           VARCHAR(100)  NOT NULL,
    revision          INT           NOT NULL,
    version           VARCHAR(100)  NOT NULL,
    status            VARCHAR(30)   NOT NULL,
    input             JSON          NOT NULL,
    faults            JSON          NULL,
    error             JSON          NULL,
    state_machine_arn VARCHAR(300)  NULL,
    sfn_execution_arn VARCHAR(400)  NULL,
    last_sequence     INT           NOT NULL DEFAULT 0,
    started_at        DATETIME(6)   NOT NULL,
    updated_at        DATETIME(6)   NOT NULL,
    ended_at          DATETIME(6)   NULL,
    resolved_by       VARCHAR(200)  NULL,
    resolution        VARCHAR(500)  NULL,
    PRIMARY KEY (id),
    KEY executions_by_saga (saga_id, started_at),
    KEY executions_by_status (status, updated_at),
    KEY executions_by_version (saga_id, revision)
) ENGINE=InnoDB;

CREATE TABLE step_runs (
    execution_id           VARCHAR(100)  NOT NULL,
    step_id                VARCHAR(100)  NOT NULL,
    position               INT           NOT NULL,
    status                 VARCHAR(30)   NOT NULL,
    result                 JSON          NULL,
    error                  JSON          NULL,
    action_attempts        INT           NOT NULL DEFAULT 0,
    compensation_attempts  INT           NOT NULL DEFAULT 0,
    started_at             DATETIME(6)   NULL,
    ended_at               DATETIME(6)   NULL,
    compensated_at         DATETIME(6)   NULL,
    PRIMARY KEY (execution_id, step_id)
) ENGINE=InnoDB;

CREATE TABLE step_attempts (
    id            BIGINT        NOT NULL AUTO_INCREMENT,
    execution_id  VARCHAR(100)  NOT NULL,
    step_id       VARCHAR(100)  NOT NULL,
    phase         VARCHAR(20)   NOT NULL,
    attempt       INT           NOT NULL,
    outcome       VARCHAR(20)   NOT NULL,
    error_type    VARCHAR(200)  NULL,
    error_message VARCHAR(2000) NULL,
    started_at    DATETIME(6)   NOT NULL,
    ended_at      DATETIME(6)   NOT NULL,
    duration_ms   INT           NOT NULL,
    PRIMARY KEY (id),
    KEY attempts_by_step (execution_id, step_id, id)
) ENGINE=InnoDB;

-- Every state change writes its event here in the same transaction; a relay publishes them.
CREATE TABLE outbox (
    id            BIGINT        NOT NULL AUTO_INCREMENT,
    event_id      CHAR(36)      NOT NULL,
    partition_key VARCHAR(100)  NOT NULL,
    sequence      INT           NOT NULL,
    type          VARCHAR(60)   NOT NULL,
    envelope      JSON          NOT NULL,
    created_at    DATETIME(6)   NOT NULL,
    published_at  DATETIME(6)   NULL,
    PRIMARY KEY (id),
    UNIQUE KEY outbox_by_event (event_id),
    KEY outbox_unpublished (published_at, id)
) ENGINE=InnoDB;

-- Powertools idempotency records (see chalicelib/steps/idempotency.py).
CREATE TABLE idempotency_records (
    id                  VARCHAR(255)  NOT NULL,
    status              VARCHAR(20)   NOT NULL,
    expiry_timestamp    BIGINT        NOT NULL,
    in_progress_expiry  BIGINT        NULL,
    response_data       MEDIUMTEXT    NULL,
    payload_hash        VARCHAR(128)  NULL,
    PRIMARY KEY (id)
) ENGINE=InnoDB;
