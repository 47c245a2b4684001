-- Trail delivery: a checkpoint per trail and destination, and leases so that one node delivers
-- each trail at a time (see model/delivery.py and delivery/engine.py).
CREATE TABLE trail_delivery (
    account_id       text NOT NULL,
    trail_name       text NOT NULL,
    sink             text NOT NULL,
    run              text NOT NULL,
    delivered_seq    bigint NOT NULL,
    window_end_seq   bigint NOT NULL,
    window_ms        bigint NOT NULL,
    last_delivery_ms bigint,
    last_error       text NOT NULL,
    last_error_ms    bigint,
    delivered_events bigint NOT NULL,
    updated_ms       bigint NOT NULL,
    PRIMARY KEY (account_id, trail_name, sink)
);

CREATE TABLE delivery_leases (
    name       text PRIMARY KEY,
    owner      text NOT NULL,
    expires_ms bigint NOT NULL
);
