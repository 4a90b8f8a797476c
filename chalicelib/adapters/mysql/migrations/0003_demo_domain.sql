-- Demo domain tables for the built-in step actions (chalicelib/demo).
-- Every effect row carries (execution_id, step_id) so a compensation undoes exactly what its
-- own action did. No foreign keys across families: each family stands for a separate service.

-- payment: balances and an append-only, double-entry ledger (a charge or a refund writes one
-- row per side, so the ledger's net per account always equals that account's balance change).
CREATE TABLE demo_accounts (
    account_id  VARCHAR(100)   NOT NULL,
    balance     DECIMAL(18,2)  NOT NULL,
    currency    CHAR(3)        NOT NULL,
    created_at  DATETIME(6)    NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    PRIMARY KEY (account_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE demo_payment_ledger (
    id            BIGINT         NOT NULL AUTO_INCREMENT,
    execution_id  VARCHAR(100)   NOT NULL,
    step_id       VARCHAR(100)   NOT NULL,
    account_id    VARCHAR(100)   NOT NULL,
    counterparty  VARCHAR(100)   NOT NULL,
    amount        DECIMAL(18,2)  NOT NULL,
    currency      CHAR(3)        NOT NULL,
    kind          VARCHAR(10)    NOT NULL,
    created_at    DATETIME(6)    NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    PRIMARY KEY (id),
    KEY ledger_by_step (execution_id, step_id, id),
    KEY ledger_by_account (account_id, id),
    CONSTRAINT ledger_kind CHECK (kind IN ('charge', 'refund'))
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- inventory: available + reserved per sku only ever moves between the two columns.
CREATE TABLE demo_stock (
    sku         VARCHAR(100)  NOT NULL,
    available   INT           NOT NULL,
    reserved    INT           NOT NULL DEFAULT 0,
    updated_at  DATETIME(6)   NOT NULL DEFAULT CURRENT_TIMESTAMP(6)
                              ON UPDATE CURRENT_TIMESTAMP(6),
    PRIMARY KEY (sku),
    CONSTRAINT stock_not_negative CHECK (available >= 0 AND reserved >= 0)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE demo_reservations (
    execution_id  VARCHAR(100)  NOT NULL,
    step_id       VARCHAR(100)  NOT NULL,
    sku           VARCHAR(100)  NOT NULL,
    quantity      INT           NOT NULL,
    created_at    DATETIME(6)   NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    PRIMARY KEY (execution_id, step_id, sku),
    KEY reservations_by_sku (sku),
    CONSTRAINT reservation_positive CHECK (quantity > 0)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- order, shipping, user: one row per (execution, step), which the compensation deletes.
CREATE TABLE demo_orders (
    order_id      VARCHAR(120)   NOT NULL,
    execution_id  VARCHAR(100)   NOT NULL,
    step_id       VARCHAR(100)   NOT NULL,
    customer_id   VARCHAR(100)   NOT NULL,
    amount        DECIMAL(18,2)  NULL,
    currency      CHAR(3)        NULL,
    created_at    DATETIME(6)    NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    PRIMARY KEY (order_id),
    UNIQUE KEY orders_by_step (execution_id, step_id),
    KEY orders_by_customer (customer_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE demo_shipments (
    shipment_id   VARCHAR(120)  NOT NULL,
    execution_id  VARCHAR(100)  NOT NULL,
    step_id       VARCHAR(100)  NOT NULL,
    order_id      VARCHAR(120)  NOT NULL,
    address       VARCHAR(500)  NOT NULL,
    carrier       VARCHAR(50)   NOT NULL,
    created_at    DATETIME(6)   NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    PRIMARY KEY (shipment_id),
    UNIQUE KEY shipments_by_step (execution_id, step_id),
    KEY shipments_by_order (order_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE demo_users (
    user_id       VARCHAR(120)  NOT NULL,
    execution_id  VARCHAR(100)  NOT NULL,
    step_id       VARCHAR(100)  NOT NULL,
    email         VARCHAR(254)  NOT NULL,
    name          VARCHAR(200)  NULL,
    created_at    DATETIME(6)   NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    PRIMARY KEY (user_id),
    UNIQUE KEY users_by_email (email),
    UNIQUE KEY users_by_step (execution_id, step_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- notification: append-only. A sent message cannot be unsent, so the compensation adds a
-- 'retraction' row. At most one of each kind per (execution, step).
CREATE TABLE demo_notifications (
    id            BIGINT         NOT NULL AUTO_INCREMENT,
    execution_id  VARCHAR(100)   NOT NULL,
    step_id       VARCHAR(100)   NOT NULL,
    recipient     VARCHAR(254)   NOT NULL,
    channel       VARCHAR(20)    NOT NULL,
    message       VARCHAR(1000)  NOT NULL,
    kind          VARCHAR(12)    NOT NULL,
    created_at    DATETIME(6)    NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    PRIMARY KEY (id),
    UNIQUE KEY notifications_by_step (execution_id, step_id, kind),
    CONSTRAINT notification_kind CHECK (kind IN ('sent', 'retraction'))
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4
