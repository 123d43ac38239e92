-- ============================================================================
-- coin_metrics for a demo or test database.
--
-- In production the tracker owns this table: do NOT run this file there. It
-- mirrors pump_orchestration/warehouse/schema.py (coin_metrics) and the column
-- catalogue in pump_orchestration/ml/columns.py. Idempotent.
--
--   psql "$DB_DSN" -v ON_ERROR_STOP=1 -f sql/coin_metrics.sql
-- ============================================================================

CREATE TABLE IF NOT EXISTS coin_metrics (
    mint                   TEXT NOT NULL,
    "timestamp"            TIMESTAMP WITH TIME ZONE NOT NULL,
    phase_id_at_time       INTEGER,           -- see ref_coin_phases
    price_open             DOUBLE PRECISION,  -- SOL per token
    price_high             DOUBLE PRECISION,
    price_low              DOUBLE PRECISION,
    price_close            DOUBLE PRECISION,
    volume_sol             DOUBLE PRECISION,
    market_cap_close       DOUBLE PRECISION,
    buy_volume_sol         DOUBLE PRECISION,
    sell_volume_sol        DOUBLE PRECISION,
    num_buys               INTEGER,
    num_sells              INTEGER,
    bonding_curve_pct      DOUBLE PRECISION,  -- 0-100 %
    virtual_sol_reserves   DOUBLE PRECISION,
    unique_wallets         INTEGER,
    is_koth                BOOLEAN,           -- king of the hill
    whale_buy_volume_sol   DOUBLE PRECISION,  -- optional extra: trades >= 1 SOL
    whale_sell_volume_sol  DOUBLE PRECISION,  -- optional extra: trades >= 1 SOL
    PRIMARY KEY (mint, "timestamp")
);

CREATE INDEX IF NOT EXISTS idx_coin_metrics_timestamp ON coin_metrics ("timestamp");

-- ----------------------------------------------------------------------------
-- For the DBA of a production (tracker-owned) coin_metrics table. Optional.
--
-- 1. Time-window loads (training, testing, live scoring) filter on "timestamp";
--    without this index each load scans the whole table:
--
-- CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_coin_metrics_timestamp
--     ON coin_metrics ("timestamp");
--
-- 2. Live scoring may later ask for a notification on every insert (lower
--    latency than polling the table). Only install it when asked to:
--
-- CREATE OR REPLACE FUNCTION notify_coin_metrics_insert() RETURNS trigger AS $$
-- BEGIN
--     PERFORM pg_notify('coin_metrics_insert',
--         json_build_object('mint', NEW.mint, 'timestamp', NEW."timestamp",
--                           'phase_id', NEW.phase_id_at_time)::text);
--     RETURN NEW;
-- END;
-- $$ LANGUAGE plpgsql;
--
-- DROP TRIGGER IF EXISTS coin_metrics_insert_trigger ON coin_metrics;
-- CREATE TRIGGER coin_metrics_insert_trigger
--     AFTER INSERT ON coin_metrics
--     FOR EACH ROW EXECUTE FUNCTION notify_coin_metrics_insert();
-- ----------------------------------------------------------------------------
