-- The merchant service's records on PostgreSQL.
--
-- Money is bigint fen (never numeric or float). Times are timestamptz
-- (microseconds, UTC); NULL is the zero time.Time. Numbers that we or
-- WeChat issue are text with the "C" collation: byte order, as in SQLite.

-- +goose Up
CREATE TABLE orders (
    out_trade_no      text COLLATE "C" NOT NULL PRIMARY KEY,
    open_id           text        NOT NULL,
    app_id            text        NOT NULL,
    mch_id            text        NOT NULL,
    trade_type        text        NOT NULL,
    items             text        NOT NULL,          -- JSON array of merchant.Item
    total_fee         bigint      NOT NULL CHECK (total_fee > 0),
    body              text        NOT NULL,
    client_ip         text        NOT NULL,
    status            text        NOT NULL CHECK (status IN ('NOTPAY', 'PAID', 'REFUND', 'CLOSED', 'PAYERROR')),
    prepay_state      text        NOT NULL CHECK (prepay_state IN ('PENDING', 'OK', 'FAILED')),
    prepay_id         text        NOT NULL DEFAULT '',
    code_url          text        NOT NULL DEFAULT '',
    prepay_expires_at timestamptz,
    expires_at        timestamptz,
    transaction_id    text COLLATE "C" NOT NULL DEFAULT '',
    paid_at           timestamptz,
    refunded_fee      bigint      NOT NULL DEFAULT 0,
    refund_count      integer     NOT NULL DEFAULT 0,
    idempotency_key   text        NOT NULL DEFAULT '',
    created_at        timestamptz NOT NULL,
    updated_at        timestamptz NOT NULL,
    last_queried_at   timestamptz,
    -- Σ refunds that hold ≤ the total, and only a paid order has refunds.
    CHECK (refunded_fee >= 0 AND refunded_fee <= total_fee),
    CHECK (refunded_fee = 0 OR status IN ('PAID', 'REFUND')),
    CHECK (refund_count >= 0 AND refund_count <= 50),
    -- A paid order knows its transaction and when it was paid.
    CHECK (status NOT IN ('PAID', 'REFUND') OR (transaction_id <> '' AND paid_at IS NOT NULL))
);

CREATE UNIQUE INDEX orders_idempotency_key ON orders (open_id, idempotency_key) WHERE idempotency_key <> '';
CREATE UNIQUE INDEX orders_transaction_id ON orders (transaction_id) WHERE transaction_id <> '';
CREATE INDEX orders_created ON orders (created_at, out_trade_no);
CREATE INDEX orders_open_id ON orders (open_id, created_at, out_trade_no);
CREATE INDEX orders_pending ON orders (last_queried_at NULLS FIRST, created_at) WHERE status = 'NOTPAY';
CREATE INDEX orders_paid_at ON orders (paid_at) WHERE paid_at IS NOT NULL;

CREATE TABLE refunds (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, -- insertion order
    out_refund_no text COLLATE "C" NOT NULL UNIQUE,
    out_trade_no  text COLLATE "C" NOT NULL REFERENCES orders (out_trade_no),
    refund_fee    bigint      NOT NULL CHECK (refund_fee > 0),
    total_fee     bigint      NOT NULL,
    reason        text        NOT NULL DEFAULT '',
    status        text        NOT NULL CHECK (status IN ('RESERVED', 'PROCESSING', 'SUCCESS', 'CLOSED', 'CHANGE', 'FAILED')),
    refund_id     text        NOT NULL DEFAULT '',
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL,
    success_at    timestamptz,
    attempts      integer     NOT NULL DEFAULT 0
);

CREATE INDEX refunds_order ON refunds (out_trade_no, id);
CREATE INDEX refunds_status ON refunds (status, updated_at, id);
CREATE INDEX refunds_created ON refunds (created_at, id);

-- Every transition of an order (reliability.md I4). Append-only.
CREATE TABLE order_events (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    out_trade_no text COLLATE "C" NOT NULL REFERENCES orders (out_trade_no),
    from_status  text        NOT NULL,
    to_status    text        NOT NULL,
    source       text        NOT NULL,
    at           timestamptz NOT NULL
);

CREATE INDEX order_events_order ON order_events (out_trade_no, id);

-- +goose StatementBegin
CREATE FUNCTION order_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'order_events is append-only';
END;
$$;
-- +goose StatementEnd

CREATE TRIGGER order_events_no_change BEFORE UPDATE OR DELETE ON order_events
    FOR EACH ROW EXECUTE FUNCTION order_events_append_only();
CREATE TRIGGER order_events_no_truncate BEFORE TRUNCATE ON order_events
    FOR EACH STATEMENT EXECUTE FUNCTION order_events_append_only();

-- Disagreements with WeChat, once per (order, kind, ref) (reliability.md A2,
-- I6). out_trade_no may name an order we never issued: no foreign key.
CREATE TABLE anomalies (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    out_trade_no text COLLATE "C" NOT NULL,
    kind         text        NOT NULL,
    ref          text        NOT NULL,
    detail       text        NOT NULL,
    created_at   timestamptz NOT NULL,
    UNIQUE (out_trade_no, kind, ref)
);

CREATE INDEX anomalies_created ON anomalies (created_at, id);

-- The transactional outbox (reliability.md I5): one row per (type, ref).
CREATE TABLE outbox (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    type         text        NOT NULL,
    out_trade_no text COLLATE "C" NOT NULL,
    ref          text COLLATE "C" NOT NULL,
    payload      text        NOT NULL,
    created_at   timestamptz NOT NULL,
    next_at      timestamptz NOT NULL,
    attempts     integer     NOT NULL DEFAULT 0,
    delivered_at timestamptz,
    last_error   text        NOT NULL DEFAULT '',
    UNIQUE (type, ref)
);

CREATE INDEX outbox_pending ON outbox (next_at, id) WHERE delivered_at IS NULL;
CREATE INDEX outbox_order ON outbox (out_trade_no, id);

CREATE TABLE sessions (
    token_hash text        NOT NULL PRIMARY KEY,
    open_id    text        NOT NULL,
    app_id     text        NOT NULL,
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL
);

CREATE INDEX sessions_expires ON sessions (expires_at);

CREATE TABLE recon_reports (
    date         text        NOT NULL PRIMARY KEY,   -- yyyy-mm-dd, China Standard Time
    bill_rows    integer     NOT NULL,
    matched      integer     NOT NULL,
    exceptions   integer     NOT NULL,
    healed       integer     NOT NULL,
    bill_total   bigint      NOT NULL,
    local_total  bigint      NOT NULL,
    bill_refunds bigint      NOT NULL,
    ran_at       timestamptz NOT NULL
);

CREATE TABLE recon_exceptions (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    date          text        NOT NULL,
    kind          text        NOT NULL,
    out_trade_no  text COLLATE "C" NOT NULL,
    out_refund_no text COLLATE "C" NOT NULL,
    detail        text        NOT NULL,
    healed        boolean     NOT NULL,
    created_at    timestamptz NOT NULL,
    UNIQUE (date, kind, out_trade_no, out_refund_no)
);

CREATE INDEX recon_exceptions_open ON recon_exceptions (id) WHERE NOT healed;

-- +goose Down
DROP TABLE recon_exceptions;
DROP TABLE recon_reports;
DROP TABLE sessions;
DROP TABLE outbox;
DROP TABLE anomalies;
DROP TABLE order_events;
DROP FUNCTION order_events_append_only();
DROP TABLE refunds;
DROP TABLE orders;
