-- Events the pipeline gave up on after a few attempts (the relay could not publish them, or
-- the projector could not apply them), kept with the reason so an operator can replay them.
CREATE TABLE dead_letters (
    id             BIGINT        NOT NULL AUTO_INCREMENT,
    stage          VARCHAR(20)   NOT NULL,
    outbox_id      BIGINT        NULL,
    event_id       VARCHAR(64)   NULL,
    event_key      VARCHAR(100)  NULL,
    sequence       INT           NULL,
    type           VARCHAR(60)   NULL,
    envelope       LONGTEXT      NOT NULL,
    reason         VARCHAR(2000) NOT NULL,
    attempts       INT           NOT NULL,
    created_at     DATETIME(6)   NOT NULL,
    replayed_at    DATETIME(6)   NULL,
    PRIMARY KEY (id),
    KEY dead_letters_open (replayed_at, id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
