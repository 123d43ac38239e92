-- The outbox trigger live scoring needs on the tracker's coin_metrics table (PostgreSQL).
--
-- Every inserted row's (mint, timestamp) is copied into coin_metrics_outbox (created by schema.sql);
-- the coin_metrics_sensor batches those rows into prediction runs, so no new row is skipped, even one
-- whose transaction commits late or whose timestamp is older than rows already scored. Apply after
-- schema.sql, with a role allowed to create triggers on coin_metrics:
--
--     psql "$DB_DSN" -v ON_ERROR_STOP=1 -f sql/schema.sql -f sql/coin_metrics_outbox.sql
--
-- Idempotent. Cost: one small insert per coin_metrics row, in the tracker's own transaction. Without
-- this trigger nothing reaches the outbox; the sensor then skips with a message saying so.
-- Keep equal to pump_orchestration/warehouse/outbox.py:POSTGRES_TRIGGER_SQL (a test checks).

CREATE OR REPLACE FUNCTION coin_metrics_to_outbox() RETURNS trigger AS $$
BEGIN
    INSERT INTO coin_metrics_outbox (mint, "timestamp") VALUES (NEW.mint, NEW."timestamp");
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

DROP TRIGGER IF EXISTS trg_coin_metrics_outbox ON coin_metrics;
CREATE TRIGGER trg_coin_metrics_outbox
    AFTER INSERT ON coin_metrics
    FOR EACH ROW EXECUTE FUNCTION coin_metrics_to_outbox();
