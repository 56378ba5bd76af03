-- The merchant service's records on SQLite.
--
-- Money is INTEGER fen (never REAL). Times are INTEGER microseconds since the
-- Unix epoch, UTC (PostgreSQL's precision, so that both stores keep the same
-- values); NULL is the zero time.Time. Tables are STRICT: a value of the wrong
-- type is refused, not converted.

-- +goose Up
CREATE TABLE orders (
    out_trade_no      TEXT    NOT NULL PRIMARY KEY,
    open_id           TEXT    NOT NULL,
    app_id            TEXT    NOT NULL,
    mch_id            TEXT    NOT NULL,
    trade_type        TEXT    NOT NULL,
    items             TEXT    NOT NULL,              -- JSON array of merchant.Item
    total_fee         INTEGER NOT NULL CHECK (total_fee > 0),
    body              TEXT    NOT NULL,
    client_ip         TEXT    NOT NULL,
    status            TEXT    NOT NULL CHECK (status IN ('NOTPAY', 'PAID', 'REFUND', 'CLOSED', 'PAYERROR')),
    prepay_state      TEXT    NOT NULL CHECK (prepay_state IN ('PENDING', 'OK', 'FAILED')),
    prepay_id         TEXT    NOT NULL DEFAULT '',
    code_url          TEXT    NOT NULL DEFAULT '',
    prepay_expires_at INTEGER,
    expires_at        INTEGER,
    transaction_id    TEXT    NOT NULL DEFAULT '',
    paid_at           INTEGER,
    refunded_fee      INTEGER NOT NULL DEFAULT 0,
    refund_count      INTEGER NOT NULL DEFAULT 0,
    idempotency_key   TEXT    NOT NULL DEFAULT '',
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL,
    last_queried_at   INTEGER,
    -- Σ refunds that hold ≤ the total, and only a paid order has refunds.
    CHECK (refunded_fee >= 0 AND refunded_fee <= total_fee),
    CHECK (refunded_fee = 0 OR status IN ('PAID', 'REFUND')),
    CHECK (refund_count >= 0 AND refund_count <= 50),
    -- A paid order knows its transaction and when it was paid.
    CHECK (status NOT IN ('PAID', 'REFUND') OR (transaction_id <> '' AND paid_at IS NOT NULL))
) STRICT;

CREATE UNIQUE INDEX orders_idempotency_key ON orders (open_id, idempotency_key) WHERE idempotency_key <> '';
CREATE UNIQUE INDEX orders_transaction_id ON orders (transaction_id) WHERE transaction_id <> '';
CREATE INDEX orders_created ON orders (created_at, out_trade_no);
CREATE INDEX orders_open_id ON orders (open_id, created_at, out_trade_no);
CREATE INDEX orders_pending ON orders (last_queried_at, created_at) WHERE status = 'NOTPAY';
CREATE INDEX orders_paid_at ON orders (paid_at) WHERE paid_at IS NOT NULL;

CREATE TABLE refunds (
    id            INTEGER NOT NULL PRIMARY KEY,      -- insertion order
    out_refund_no TEXT    NOT NULL UNIQUE,
    out_trade_no  TEXT    NOT NULL REFERENCES orders (out_trade_no),
    refund_fee    INTEGER NOT NULL CHECK (refund_fee > 0),
    total_fee     INTEGER NOT NULL,
    reason        TEXT    NOT NULL DEFAULT '',
    status        TEXT    NOT NULL CHECK (status IN ('RESERVED', 'PROCESSING', 'SUCCESS', 'CLOSED', 'CHANGE', 'FAILED')),
    refund_id     TEXT    NOT NULL DEFAULT '',
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    success_at    INTEGER,
    attempts      INTEGER NOT NULL DEFAULT 0
) STRICT;

CREATE INDEX refunds_order ON refunds (out_trade_no, id);
CREATE INDEX refunds_status ON refunds (status, updated_at, id);
CREATE INDEX refunds_created ON refunds (created_at, id);

-- Every transition of an order (reliability.md I4). Append-only.
CREATE TABLE order_events (
    id           INTEGER NOT NULL PRIMARY KEY,
    out_trade_no TEXT    NOT NULL REFERENCES orders (out_trade_no),
    from_status  TEXT    NOT NULL,
    to_status    TEXT    NOT NULL,
    source       TEXT    NOT NULL,
    at           INTEGER NOT NULL
) STRICT;

CREATE INDEX order_events_order ON order_events (out_trade_no, id);

-- +goose StatementBegin
CREATE TRIGGER order_events_no_update BEFORE UPDATE ON order_events
BEGIN
    SELECT RAISE(ABORT, 'order_events is append-only');
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER order_events_no_delete BEFORE DELETE ON order_events
BEGIN
    SELECT RAISE(ABORT, 'order_events is append-only');
END;
-- +goose StatementEnd

-- Disagreements with WeChat, once per (order, kind, ref) (reliability.md A2,
-- I6). out_trade_no may name an order we never issued: no foreign key.
CREATE TABLE anomalies (
    id           INTEGER NOT NULL PRIMARY KEY,
    out_trade_no TEXT    NOT NULL,
    kind         TEXT    NOT NULL,
    ref          TEXT    NOT NULL,
    detail       TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    UNIQUE (out_trade_no, kind, ref)
) STRICT;

CREATE INDEX anomalies_created ON anomalies (created_at, id);

-- The transactional outbox (reliability.md I5): one row per (type, ref).
CREATE TABLE outbox (
    id           INTEGER NOT NULL PRIMARY KEY,
    type         TEXT    NOT NULL,
    out_trade_no TEXT    NOT NULL,
    ref          TEXT    NOT NULL,
    payload      TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    next_at      INTEGER NOT NULL,
    attempts     INTEGER NOT NULL DEFAULT 0,
    delivered_at INTEGER,
    last_error   TEXT    NOT NULL DEFAULT '',
    UNIQUE (type, ref)
) STRICT;

CREATE INDEX outbox_pending ON outbox (next_at, id) WHERE delivered_at IS NULL;
CREATE INDEX outbox_order ON outbox (out_trade_no, id);

CREATE TABLE sessions (
    token_hash TEXT    NOT NULL PRIMARY KEY,
    open_id    TEXT    NOT NULL,
    app_id     TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
) STRICT;

CREATE INDEX sessions_expires ON sessions (expires_at);

CREATE TABLE recon_reports (
    date         TEXT    NOT NULL PRIMARY KEY,       -- yyyy-mm-dd, China Standard Time
    bill_rows    INTEGER NOT NULL,
    matched      INTEGER NOT NULL,
    exceptions   INTEGER NOT NULL,
    healed       INTEGER NOT NULL,
    bill_total   INTEGER NOT NULL,
    local_total  INTEGER NOT NULL,
    bill_refunds INTEGER NOT NULL,
    ran_at       INTEGER NOT NULL
) STRICT;

CREATE TABLE recon_exceptions (
    id            INTEGER NOT NULL PRIMARY KEY,
    date          TEXT    NOT NULL,
    kind          TEXT    NOT NULL,
    out_trade_no  TEXT    NOT NULL,
    out_refund_no TEXT    NOT NULL,
    detail        TEXT    NOT NULL,
    healed        INTEGER NOT NULL CHECK (healed IN (0, 1)),
    created_at    INTEGER NOT NULL,
    UNIQUE (date, kind, out_trade_no, out_refund_no)
) STRICT;

CREATE INDEX recon_exceptions_open ON recon_exceptions (id) WHERE healed = 0;

-- +goose Down
DROP TABLE recon_exceptions;
DROP TABLE recon_reports;
DROP TABLE sessions;
DROP TABLE outbox;
DROP TABLE anomalies;
DROP TABLE order_events;
DROP TABLE refunds;
DROP TABLE orders;
