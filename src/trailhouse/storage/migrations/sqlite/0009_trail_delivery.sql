-- Trail delivery: a checkpoint per trail and destination, and leases so that one node delivers
-- each trail at a time (see model/delivery.py and delivery/engine.py).
CREATE TABLE trail_delivery (
    account_id       TEXT NOT NULL,
    trail_name       TEXT NOT NULL,
    sink             TEXT NOT NULL,
    run              TEXT NOT NULL,
    delivered_seq    INTEGER NOT NULL,
    window_end_seq   INTEGER NOT NULL,
    window_ms        INTEGER NOT NULL,
    last_delivery_ms INTEGER,
    last_error       TEXT NOT NULL,
    last_error_ms    INTEGER,
    delivered_events INTEGER NOT NULL,
    updated_ms       INTEGER NOT NULL,
    PRIMARY KEY (account_id, trail_name, sink)
);

CREATE TABLE delivery_leases (
    name       TEXT PRIMARY KEY,
    owner      TEXT NOT NULL,
    expires_ms INTEGER NOT NULL
);
