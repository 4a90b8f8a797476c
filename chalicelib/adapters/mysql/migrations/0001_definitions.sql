-- Saga definitions: a header per saga id and one immutable row per stored version.
CREATE TABLE sagas (
    id              VARCHAR(100)  NOT NULL,
    latest_revision INT           NOT NULL,
    active          BOOLEAN       NOT NULL DEFAULT TRUE,
    type            VARCHAR(100)  NULL,
    step_count      INT           NOT NULL,
    created_at      DATETIME(6)   NOT NULL,
    updated_at      DATETIME(6)   NOT NULL,
    PRIMARY KEY (id),
    KEY sagas_by_type (type, id),
    KEY sagas_by_active (active, id)
) ENGINE=InnoDB;

CREATE TABLE saga_versions (
    saga_id      VARCHAR(100)  NOT NULL,
    revision     INT           NOT NULL,
    version      VARCHAR(100)  NOT NULL,
    name         VARCHAR(100)  NOT NULL,
    description  VARCHAR(500)  NOT NULL,
    type         VARCHAR(100)  NULL,
    definition   JSON          NOT NULL,
    created_at   DATETIME(6)   NOT NULL,
    created_by   VARCHAR(200)  NOT NULL,
    PRIMARY KEY (saga_id, revision),
    UNIQUE KEY saga_versions_by_version (saga_id, version)
) ENGINE=InnoDB;

-- One row per mutation: who did what to which entity, with a before/after summary.
CREATE TABLE audit_log (
    id           BIGINT        NOT NULL AUTO_INCREMENT,
    at           DATETIME(6)   NOT NULL,
    actor        VARCHAR(200)  NOT NULL,
    action       VARCHAR(50)   NOT NULL,
    entity_type  VARCHAR(50)   NOT NULL,
    entity_id    VARCHAR(200)  NOT NULL,
    request_id   VARCHAR(100)  NULL,
    before_state JSON          NULL,
    after_state  JSON          NULL,
    PRIMARY KEY (id),
    KEY audit_by_entity (entity_type, entity_id, id)
) ENGINE=InnoDB;
