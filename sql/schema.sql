-- ============================================================================
-- pump_orchestration: tables this product owns (PostgreSQL).
--
--   psql "$DB_DSN" -v ON_ERROR_STOP=1 -f sql/schema.sql
--
-- Idempotent: safe to run again (CREATE ... IF NOT EXISTS, seeds ON CONFLICT DO
-- NOTHING). It mirrors pump_orchestration/warehouse/schema.py, which the
-- services apply themselves at start-up (init_schema); a test keeps the two equal.
-- coin_metrics belongs to the tracker and is NOT created here (see coin_metrics.sql).
-- ============================================================================

BEGIN;

-- ---------------------------------------------------------------- reference tables

CREATE TABLE IF NOT EXISTS ref_coin_phases (
    phase_id          INTEGER      PRIMARY KEY,
    name              VARCHAR(50)  NOT NULL,
    interval_seconds  INTEGER      NOT NULL,  -- nominal sampling interval of the phase
    CONSTRAINT chk_phases_interval_positive CHECK (interval_seconds > 0)
);

CREATE TABLE IF NOT EXISTS ref_model_types (
    id              INTEGER      PRIMARY KEY,
    name            VARCHAR(50)  NOT NULL UNIQUE,
    description     TEXT,
    default_params  JSONB        NOT NULL   -- default hyper-parameters; request params override
);

-- ---------------------------------------------------------------- training

CREATE TABLE IF NOT EXISTS ml_models (
    id                    BIGSERIAL     PRIMARY KEY,
    name                  VARCHAR(255)  NOT NULL UNIQUE,
    model_type            VARCHAR(50)   NOT NULL,
    status                VARCHAR(50)   NOT NULL DEFAULT 'TRAINING',
    target_variable       VARCHAR(100)  NOT NULL,
    target_operator       VARCHAR(10),            -- classic target only
    target_value          DOUBLE PRECISION,       -- classic target only
    future_minutes        INTEGER,                -- time-based target only
    price_change_percent  DOUBLE PRECISION,       -- time-based target only
    target_direction      VARCHAR(10),            -- time-based target only: up/down
    label_mode            VARCHAR(20),
    train_start           TIMESTAMP WITH TIME ZONE NOT NULL,
    train_end             TIMESTAMP WITH TIME ZONE NOT NULL,
    features              JSONB         NOT NULL, -- final feature list, in training order
    phases                JSONB,
    params                JSONB,
    training_accuracy     DOUBLE PRECISION,
    training_f1           DOUBLE PRECISION,
    training_precision    DOUBLE PRECISION,
    training_recall       DOUBLE PRECISION,
    roc_auc               DOUBLE PRECISION,
    mcc                   DOUBLE PRECISION,
    fpr                   DOUBLE PRECISION,
    fnr                   DOUBLE PRECISION,
    confusion_matrix      JSONB,
    simulated_profit_pct  DOUBLE PRECISION,
    cv_scores             JSONB,
    cv_overfitting_gap    DOUBLE PRECISION,
    feature_importance    JSONB,
    alert_threshold       DOUBLE PRECISION,  -- operating point chosen on out-of-fold predictions; NULL for older models
    model_file_path       TEXT,
    model_sha256          VARCHAR(64),
    error_msg             TEXT,
    description           TEXT,
    is_deleted            BOOLEAN       NOT NULL DEFAULT false,
    deleted_at            TIMESTAMP WITH TIME ZONE,
    created_at            TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(),
    updated_at            TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(),
    CONSTRAINT chk_models_status CHECK (status IN ('TRAINING', 'READY', 'FAILED')),
    CONSTRAINT chk_models_model_type CHECK (model_type IN
        ('random_forest', 'xgboost', 'gradient_boosting', 'logistic_regression', 'neural_network',
         'rule_baseline', 'random_forest_hist')),
    CONSTRAINT chk_models_target_operator CHECK (target_operator IS NULL OR target_operator IN ('>', '<', '>=', '<=', '=')),
    CONSTRAINT chk_models_target_direction CHECK (target_direction IS NULL OR target_direction IN ('up', 'down')),
    CONSTRAINT chk_models_future_minutes CHECK (future_minutes IS NULL OR future_minutes > 0),
    CONSTRAINT chk_models_train_window CHECK (train_start < train_end)
);
ALTER TABLE ml_models ADD COLUMN IF NOT EXISTS alert_threshold DOUBLE PRECISION;  -- databases created before it
-- A database created before rule_baseline or random_forest_hist existed gets the current model_type check (idempotent).
ALTER TABLE ml_models DROP CONSTRAINT IF EXISTS chk_models_model_type;
ALTER TABLE ml_models ADD CONSTRAINT chk_models_model_type CHECK (model_type IN
    ('random_forest', 'xgboost', 'gradient_boosting', 'logistic_regression', 'neural_network', 'rule_baseline',
     'random_forest_hist'));
CREATE INDEX IF NOT EXISTS idx_models_status ON ml_models (status);
CREATE INDEX IF NOT EXISTS idx_models_created ON ml_models (created_at DESC);

CREATE TABLE IF NOT EXISTS ml_test_results (
    id                    BIGSERIAL  PRIMARY KEY,
    model_id              BIGINT     NOT NULL REFERENCES ml_models (id) ON DELETE CASCADE,
    test_start            TIMESTAMP WITH TIME ZONE NOT NULL,
    test_end              TIMESTAMP WITH TIME ZONE NOT NULL,
    accuracy              DOUBLE PRECISION,
    f1_score              DOUBLE PRECISION,
    precision_score       DOUBLE PRECISION,
    recall                DOUBLE PRECISION,
    roc_auc               DOUBLE PRECISION,
    mcc                   DOUBLE PRECISION,
    fpr                   DOUBLE PRECISION,
    fnr                   DOUBLE PRECISION,
    simulated_profit_pct  DOUBLE PRECISION,
    confusion_matrix      JSONB,
    tp                    INTEGER,
    tn                    INTEGER,
    fp                    INTEGER,
    fn                    INTEGER,
    num_samples           INTEGER,
    num_positive          INTEGER,
    num_negative          INTEGER,
    has_overlap           BOOLEAN,
    overlap_note          TEXT,
    train_accuracy        DOUBLE PRECISION,
    train_f1              DOUBLE PRECISION,
    train_precision       DOUBLE PRECISION,
    train_recall          DOUBLE PRECISION,
    accuracy_degradation  DOUBLE PRECISION,
    f1_degradation        DOUBLE PRECISION,
    is_overfitted         BOOLEAN,
    test_duration_days    DOUBLE PRECISION,
    event_metrics         JSONB,  -- pumps detected before the peak, delays, false-alert episodes per coin-day
    alert_threshold       DOUBLE PRECISION,  -- the threshold the class and event figures were computed at
    created_at            TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(),
    CONSTRAINT chk_test_results_window CHECK (test_start < test_end)
);
ALTER TABLE ml_test_results ADD COLUMN IF NOT EXISTS event_metrics JSONB;  -- databases created before it
ALTER TABLE ml_test_results ADD COLUMN IF NOT EXISTS alert_threshold DOUBLE PRECISION;
CREATE INDEX IF NOT EXISTS idx_test_results_model ON ml_test_results (model_id);
CREATE INDEX IF NOT EXISTS idx_test_results_created ON ml_test_results (created_at DESC);

CREATE TABLE IF NOT EXISTS ml_comparisons (
    id                      BIGSERIAL  PRIMARY KEY,
    model_a_id              BIGINT     NOT NULL REFERENCES ml_models (id) ON DELETE CASCADE,
    model_b_id              BIGINT     NOT NULL REFERENCES ml_models (id) ON DELETE CASCADE,
    test_start              TIMESTAMP WITH TIME ZONE NOT NULL,
    test_end                TIMESTAMP WITH TIME ZONE NOT NULL,
    num_samples             INTEGER,
    a_accuracy              DOUBLE PRECISION,
    a_f1                    DOUBLE PRECISION,
    a_precision             DOUBLE PRECISION,
    a_recall                DOUBLE PRECISION,
    a_roc_auc               DOUBLE PRECISION,
    a_mcc                   DOUBLE PRECISION,
    a_fpr                   DOUBLE PRECISION,
    a_fnr                   DOUBLE PRECISION,
    a_simulated_profit_pct  DOUBLE PRECISION,
    b_accuracy              DOUBLE PRECISION,
    b_f1                    DOUBLE PRECISION,
    b_precision             DOUBLE PRECISION,
    b_recall                DOUBLE PRECISION,
    b_roc_auc               DOUBLE PRECISION,
    b_mcc                   DOUBLE PRECISION,
    b_fpr                   DOUBLE PRECISION,
    b_fnr                   DOUBLE PRECISION,
    b_simulated_profit_pct  DOUBLE PRECISION,
    test_a_id               BIGINT     REFERENCES ml_test_results (id) ON DELETE SET NULL,
    test_b_id               BIGINT     REFERENCES ml_test_results (id) ON DELETE SET NULL,
    winner_id               BIGINT     REFERENCES ml_models (id) ON DELETE SET NULL,  -- NULL on a tie
    significance            JSONB,     -- paired significance test of A vs B
    created_at              TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(),
    CONSTRAINT chk_comparisons_distinct_models CHECK (model_a_id <> model_b_id),
    CONSTRAINT chk_comparisons_window CHECK (test_start < test_end)
);
CREATE INDEX IF NOT EXISTS idx_comparisons_models ON ml_comparisons (model_a_id, model_b_id);

-- Known pump events (e.g. Telegram pump signals), imported with `pump-orchestration import-events`; a
-- request with label_source known_events labels the rows inside them. One event per (mint, start_time):
-- re-importing a file replaces its events instead of doubling them.
CREATE TABLE IF NOT EXISTS ml_known_events (
    id          BIGSERIAL  PRIMARY KEY,
    mint        TEXT       NOT NULL,  -- coin_metrics.mint
    symbol      TEXT,
    start_time  TIMESTAMP WITH TIME ZONE NOT NULL,
    end_time    TIMESTAMP WITH TIME ZONE NOT NULL,
    source      TEXT       NOT NULL,  -- where the event comes from, e.g. telegram:channel or the file name
    note        TEXT,
    created_at  TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(),
    CONSTRAINT uq_known_events_mint_start UNIQUE (mint, start_time),
    CONSTRAINT chk_known_events_window CHECK (end_time >= start_time)
);
CREATE INDEX IF NOT EXISTS idx_known_events_start ON ml_known_events (start_time);

-- Mirror of the Dagster runs of the ML jobs (the original service's job queue), kept so existing SQL
-- dashboards keep working. job_type: TRAIN, TEST, COMPARE, or WALK_FORWARD (a run that trains and
-- tests a series of models on consecutive windows).
CREATE TABLE IF NOT EXISTS ml_jobs (
    id                          BIGSERIAL    PRIMARY KEY,
    job_type                    VARCHAR(20)  NOT NULL,
    status                      VARCHAR(20)  NOT NULL DEFAULT 'PENDING',
    priority                    INTEGER      NOT NULL DEFAULT 5,
    progress                    DOUBLE PRECISION NOT NULL DEFAULT 0,
    progress_msg                TEXT,
    error_msg                   TEXT,
    dagster_run_id              VARCHAR(64)  UNIQUE,
    train_model_name            VARCHAR(255),
    train_model_type            VARCHAR(50),
    train_target_var            VARCHAR(100),
    train_operator              VARCHAR(10),
    train_value                 DOUBLE PRECISION,
    train_start                 TIMESTAMP WITH TIME ZONE,
    train_end                   TIMESTAMP WITH TIME ZONE,
    train_features              JSONB,
    train_phases                JSONB,
    train_params                JSONB,
    train_future_minutes        INTEGER,
    train_price_change_percent  DOUBLE PRECISION,
    train_target_direction      VARCHAR(10),
    test_model_id               BIGINT REFERENCES ml_models (id) ON DELETE SET NULL,
    test_start                  TIMESTAMP WITH TIME ZONE,
    test_end                    TIMESTAMP WITH TIME ZONE,
    compare_model_a_id          BIGINT REFERENCES ml_models (id) ON DELETE SET NULL,
    compare_model_b_id          BIGINT REFERENCES ml_models (id) ON DELETE SET NULL,
    compare_start               TIMESTAMP WITH TIME ZONE,
    compare_end                 TIMESTAMP WITH TIME ZONE,
    result_model_id             BIGINT REFERENCES ml_models (id) ON DELETE SET NULL,
    result_test_id              BIGINT REFERENCES ml_test_results (id) ON DELETE SET NULL,
    result_comparison_id        BIGINT REFERENCES ml_comparisons (id) ON DELETE SET NULL,
    created_at                  TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(),
    started_at                  TIMESTAMP WITH TIME ZONE,
    completed_at                TIMESTAMP WITH TIME ZONE,
    updated_at                  TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(),
    CONSTRAINT chk_jobs_job_type CHECK (job_type IN ('TRAIN', 'TEST', 'COMPARE', 'WALK_FORWARD')),
    CONSTRAINT chk_jobs_status CHECK (status IN ('PENDING', 'RUNNING', 'COMPLETED', 'FAILED', 'CANCELLED')),
    CONSTRAINT chk_jobs_progress CHECK (progress >= 0 AND progress <= 1),
    CONSTRAINT chk_jobs_priority CHECK (priority BETWEEN 1 AND 10)
);
CREATE INDEX IF NOT EXISTS idx_jobs_status ON ml_jobs (status, priority, created_at);
-- A database created before WALK_FORWARD existed gets the current job_type check (idempotent).
ALTER TABLE ml_jobs DROP CONSTRAINT IF EXISTS chk_jobs_job_type;
ALTER TABLE ml_jobs ADD CONSTRAINT chk_jobs_job_type
    CHECK (job_type IN ('TRAIN', 'TEST', 'COMPARE', 'WALK_FORWARD'));

-- ---------------------------------------------------------------- live scoring

CREATE TABLE IF NOT EXISTS prediction_active_models (
    id                    BIGSERIAL     PRIMARY KEY,
    model_id              BIGINT        NOT NULL UNIQUE,  -- ml_models.id; no FK: imported models may come from elsewhere
    model_name            VARCHAR(255)  NOT NULL,
    model_type            VARCHAR(50)   NOT NULL,
    target_variable       VARCHAR(100)  NOT NULL,
    target_operator       VARCHAR(10),
    target_value          DOUBLE PRECISION,
    future_minutes        INTEGER,
    price_change_percent  DOUBLE PRECISION,
    target_direction      VARCHAR(10),
    features              JSONB         NOT NULL,
    phases                JSONB,
    params                JSONB,
    local_model_path      TEXT          NOT NULL,
    model_file_url        TEXT,
    is_active             BOOLEAN       NOT NULL DEFAULT true,
    alert_threshold       DOUBLE PRECISION NOT NULL DEFAULT 0.7,
    custom_name           VARCHAR(255),
    last_prediction_at    TIMESTAMP WITH TIME ZONE,
    total_predictions     BIGINT        NOT NULL DEFAULT 0,
    downloaded_at         TIMESTAMP WITH TIME ZONE DEFAULT now(),
    activated_at          TIMESTAMP WITH TIME ZONE,
    created_at            TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(),
    updated_at            TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(),
    CONSTRAINT chk_model_type CHECK (model_type IN
        ('random_forest', 'xgboost', 'gradient_boosting', 'logistic_regression', 'neural_network',
         'rule_baseline', 'random_forest_hist')),
    CONSTRAINT chk_operator CHECK (target_operator IS NULL OR target_operator IN ('>', '<', '>=', '<=', '=')),
    CONSTRAINT chk_direction CHECK (target_direction IS NULL OR target_direction IN ('up', 'down')),
    CONSTRAINT chk_alert_threshold CHECK (alert_threshold >= 0 AND alert_threshold <= 1)
);
ALTER TABLE prediction_active_models DROP CONSTRAINT IF EXISTS chk_model_type;
ALTER TABLE prediction_active_models ADD CONSTRAINT chk_model_type CHECK (model_type IN
    ('random_forest', 'xgboost', 'gradient_boosting', 'logistic_regression', 'neural_network', 'rule_baseline',
     'random_forest_hist'));
CREATE INDEX IF NOT EXISTS idx_active_models_active ON prediction_active_models (is_active) WHERE is_active = true;
CREATE INDEX IF NOT EXISTS idx_active_models_model_id ON prediction_active_models (model_id);
CREATE INDEX IF NOT EXISTS idx_active_models_custom_name ON prediction_active_models (custom_name) WHERE custom_name IS NOT NULL;

-- Every prediction is stored, not only alerts.
CREATE TABLE IF NOT EXISTS predictions (
    id                      BIGSERIAL     PRIMARY KEY,
    coin_id                 VARCHAR(255)  NOT NULL,  -- coin_metrics.mint
    data_timestamp          TIMESTAMP WITH TIME ZONE NOT NULL,
    model_id                BIGINT        NOT NULL,
    active_model_id         BIGINT        REFERENCES prediction_active_models (id) ON DELETE SET NULL,
    prediction              INTEGER       NOT NULL,
    probability             DOUBLE PRECISION NOT NULL,
    phase_id_at_time        INTEGER,
    features                JSONB,                   -- optional, for debugging
    prediction_duration_ms  INTEGER,
    created_at              TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(),
    -- One prediction per model, coin and data timestamp: a repeated run writes nothing twice.
    CONSTRAINT uq_predictions_model_coin_ts UNIQUE (model_id, coin_id, data_timestamp),
    CONSTRAINT predictions_prediction_check CHECK (prediction IN (0, 1)),
    CONSTRAINT predictions_probability_check CHECK (probability >= 0 AND probability <= 1)
);
CREATE INDEX IF NOT EXISTS idx_predictions_coin_timestamp ON predictions (coin_id, data_timestamp DESC);
CREATE INDEX IF NOT EXISTS idx_predictions_model ON predictions (model_id, created_at DESC);
CREATE INDEX IF NOT EXISTS idx_predictions_active_model ON predictions (active_model_id, created_at DESC);
CREATE INDEX IF NOT EXISTS idx_predictions_created ON predictions (created_at DESC);

CREATE TABLE IF NOT EXISTS prediction_webhook_log (
    id               BIGSERIAL     PRIMARY KEY,
    coin_id          VARCHAR(255)  NOT NULL,
    data_timestamp   TIMESTAMP WITH TIME ZONE NOT NULL,
    webhook_url      TEXT          NOT NULL,
    payload          JSONB         NOT NULL,
    response_status  INTEGER,
    response_body    TEXT,
    error_message    TEXT,
    idempotency_key  VARCHAR(64),                 -- the delivery (prediction_webhooks) this attempt belongs to
    attempt          INTEGER,                     -- its number within that delivery
    duration_ms      INTEGER,
    created_at       TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS idx_webhook_log_key ON prediction_webhook_log (idempotency_key);
CREATE INDEX IF NOT EXISTS idx_webhook_log_created ON prediction_webhook_log (created_at DESC);
CREATE INDEX IF NOT EXISTS idx_webhook_log_status ON prediction_webhook_log (response_status) WHERE response_status IS NOT NULL;
-- Databases created before these columns and the unique prediction key existed (idempotent).
ALTER TABLE prediction_webhook_log ADD COLUMN IF NOT EXISTS idempotency_key VARCHAR(64);
ALTER TABLE prediction_webhook_log ADD COLUMN IF NOT EXISTS attempt INTEGER;
ALTER TABLE prediction_webhook_log ADD COLUMN IF NOT EXISTS duration_ms INTEGER;
DO $$ BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = 'uq_predictions_model_coin_ts') THEN
        ALTER TABLE predictions ADD CONSTRAINT uq_predictions_model_coin_ts UNIQUE (model_id, coin_id, data_timestamp);
    END IF;
END $$;

-- One webhook per coin and data timestamp with every model's prediction, delivered at least once and
-- retried until delivered or given up; the key travels as the Idempotency-Key header and a payload field.
CREATE TABLE IF NOT EXISTS prediction_webhooks (
    id               BIGSERIAL     PRIMARY KEY,
    idempotency_key  VARCHAR(64)   NOT NULL UNIQUE,
    coin_id          VARCHAR(255)  NOT NULL,
    data_timestamp   TIMESTAMP WITH TIME ZONE NOT NULL,
    payload          JSONB         NOT NULL,
    status           VARCHAR(20)   NOT NULL DEFAULT 'PENDING',
    attempts         INTEGER       NOT NULL DEFAULT 0,
    last_error       TEXT,
    lease_until      TIMESTAMP WITH TIME ZONE,     -- a delivery round owns the row until then
    delivered_at     TIMESTAMP WITH TIME ZONE,
    created_at       TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(),
    updated_at       TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(),
    CONSTRAINT chk_webhooks_status CHECK (status IN ('PENDING', 'DELIVERED', 'GIVEN_UP'))
);
CREATE INDEX IF NOT EXISTS idx_webhooks_pending ON prediction_webhooks (created_at) WHERE status = 'PENDING';

-- New coin_metrics rows, queued by the trigger of sql/coin_metrics_outbox.sql; the coin_metrics_sensor
-- batches them (batch_key) and the prediction run marks them scored.
CREATE TABLE IF NOT EXISTS coin_metrics_outbox (
    id          BIGSERIAL     PRIMARY KEY,
    mint        TEXT          NOT NULL,
    "timestamp" TIMESTAMP WITH TIME ZONE NOT NULL,
    queued_at   TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(),
    batch_key   VARCHAR(64),
    scored_at   TIMESTAMP WITH TIME ZONE
);
CREATE INDEX IF NOT EXISTS idx_outbox_unbatched ON coin_metrics_outbox (id) WHERE batch_key IS NULL;
CREATE INDEX IF NOT EXISTS idx_outbox_batch ON coin_metrics_outbox (batch_key);

-- ---------------------------------------------------------------- seed rows

INSERT INTO ref_coin_phases (phase_id, name, interval_seconds) VALUES
    (1, 'launch', 5),
    (2, 'active', 30),
    (3, 'established', 60)
ON CONFLICT DO NOTHING;

INSERT INTO ref_model_types (id, name, description, default_params) VALUES
    (1, 'random_forest', 'Random forest: robust, a good first choice',
        '{"n_estimators": 100, "max_depth": 10, "min_samples_split": 2}'),
    (2, 'xgboost', 'XGBoost gradient boosting: strong, benefits from tuning',
        '{"n_estimators": 100, "max_depth": 6, "learning_rate": 0.1}'),
    (3, 'gradient_boosting', 'scikit-learn gradient boosting: similar to XGBoost',
        '{"n_estimators": 100, "max_depth": 3, "learning_rate": 0.1}'),
    (4, 'logistic_regression', 'Logistic regression: simple, fast, interpretable',
        '{"C": 1.0, "max_iter": 100}'),
    (5, 'neural_network', 'Multi-layer perceptron: flexible, needs much data',
        '{"hidden_layers": [100, 50], "activation": "relu", "max_iter": 200}'),
    (6, 'rule_baseline', 'Volume burst and price rise over two thresholds chosen on the training part: the bar to beat',
        '{"volume_feature": null, "price_feature": null}'),
    (7, 'random_forest_hist', 'Histogram random forest (XGBoost): a random forest many times faster on large windows',
        '{"n_estimators": 100, "max_depth": 8, "subsample": 0.8, "colsample_bynode": 0.5}')
ON CONFLICT DO NOTHING;

COMMIT;
