-- Requests per caller per fixed window, shared by every API Lambda (rate limiting).
CREATE TABLE api_rate_windows (
    caller        VARCHAR(255)  NOT NULL,
    window_start  BIGINT        NOT NULL,
    requests      INT           NOT NULL,
    PRIMARY KEY (caller, window_start),
    KEY by_window (window_start)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
