"""coin_metrics: chunked loading, filters, time zones, idempotent and atomic bulk writes."""
from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from pump_orchestration.vocabulary import BASE_COLUMNS
from pump_orchestration.warehouse.coin_metrics import (
    available_columns,
    coin_metrics_time_range,
    load_coin_metrics,
    write_coin_metrics,
)

T0 = pd.Timestamp("2025-09-01 12:00:00", tz="UTC")
NUMERIC = [c for c in BASE_COLUMNS if c != "is_koth"]
INTEGER = ["num_buys", "num_sells", "unique_wallets"]  # INTEGER in the table: whole numbers only


def make_rows(n_mints: int = 4, per_mint: int = 12, seed: int = 0) -> pd.DataFrame:
    """Irregularly sampled rows for a few coins, with some NULLs and fractional seconds."""
    rng = np.random.default_rng(seed)
    frames = []
    for m in range(n_mints):
        offsets = np.cumsum(rng.integers(1, 90, size=per_mint)) + rng.random(per_mint).round(3)
        frame = pd.DataFrame({
            "mint": f"Mint{m}pump",
            "timestamp": T0 + pd.to_timedelta(offsets, unit="s"),
        })
        for col in NUMERIC:
            frame[col] = rng.random(per_mint) * 100
        frame["phase_id_at_time"] = rng.integers(1, 4, size=per_mint).astype(float)
        for col in INTEGER:
            frame[col] = rng.integers(0, 50, size=per_mint).astype(float)
        frame["is_koth"] = rng.random(per_mint) < 0.2
        frame.loc[frame.index[::5], "volume_sol"] = np.nan
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def _count(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.text("SELECT count(*) FROM coin_metrics")).scalar_one()


@pytest.fixture
def loaded(warehouse_engine):
    rows = make_rows()
    assert write_coin_metrics(warehouse_engine, rows) == len(rows)
    return warehouse_engine, rows


def test_round_trip_and_chunking(loaded):
    engine, rows = loaded
    start, end = T0, T0 + pd.Timedelta(days=1)
    whole = load_coin_metrics(engine, start, end, chunk_rows=10_000)
    chunked = load_coin_metrics(engine, start, end, chunk_rows=7)
    pd.testing.assert_frame_equal(whole, chunked)
    assert whole.attrs == {"rows_loaded": len(rows), "chunks": 1}
    if engine.dialect.name == "sqlite":
        assert chunked.attrs == {"rows_loaded": len(rows), "chunks": math.ceil(len(rows) / 7)}
    else:  # ADBC sizes its record batches in bytes, from chunk_rows
        assert chunked.attrs["rows_loaded"] == len(rows) and 1 < chunked.attrs["chunks"] < len(rows)

    expected = rows.sort_values(["timestamp", "mint"], ignore_index=True)
    assert list(whole.columns) == available_columns(engine)
    assert str(whole["timestamp"].dtype) == "datetime64[ns, UTC]"
    assert whole["is_koth"].dtype == bool
    assert all(whole[c].dtype == np.float64 for c in NUMERIC)
    pd.testing.assert_frame_equal(whole[expected.columns], expected, check_dtype=False)


def test_half_open_window_and_tz_inputs(loaded):
    engine, rows = loaded
    ordered = rows.sort_values("timestamp", ignore_index=True)
    start, end = ordered["timestamp"].iloc[5], ordered["timestamp"].iloc[20]
    # The same instants, expressed in another zone: the window must not move.
    df = load_coin_metrics(engine, start.tz_convert("Europe/Berlin"), end.tz_convert("America/New_York"))
    assert df["timestamp"].min() == start
    assert df["timestamp"].max() < end
    assert len(df) == ((rows["timestamp"] >= start) & (rows["timestamp"] < end)).sum()
    naive = load_coin_metrics(engine, start.tz_localize(None), end.tz_localize(None))
    pd.testing.assert_frame_equal(df, naive)


def test_filters_and_column_selection(loaded):
    engine, rows = loaded
    end = T0 + pd.Timedelta(days=1)
    df = load_coin_metrics(engine, T0, end, columns=["price_close", "phase_id_at_time"],
                           phases=[1, 3], mints=["Mint1pump", "Mint2pump"], chunk_rows=3)
    assert list(df.columns) == ["mint", "timestamp", "price_close", "phase_id_at_time"]
    expected = rows[rows["phase_id_at_time"].isin([1, 3]) & rows["mint"].isin(["Mint1pump", "Mint2pump"])]
    assert len(df) == len(expected) > 0
    assert set(df["phase_id_at_time"]) <= {1.0, 3.0}
    assert df.equals(df.sort_values(["timestamp", "mint"]))


def test_unknown_column_is_named(loaded):
    engine, _ = loaded
    with pytest.raises(ValueError) as err:
        load_coin_metrics(engine, T0, T0 + pd.Timedelta(hours=1), columns=["price_close", "orderbook_imbalance"])
    message = str(err.value)
    assert "orderbook_imbalance" in message and "available" in message and "price_close" in message


def test_empty_window_has_typed_columns(loaded):
    engine, _ = loaded
    df = load_coin_metrics(engine, T0 - pd.Timedelta(days=2), T0 - pd.Timedelta(days=1))
    assert df.empty and df.attrs["rows_loaded"] == 0
    assert str(df["timestamp"].dtype) == "datetime64[ns, UTC]"


def test_rewrite_is_idempotent(loaded):
    engine, rows = loaded
    assert write_coin_metrics(engine, rows, chunk_rows=5) == 0
    extra = make_rows(n_mints=1, per_mint=3, seed=9).assign(mint="NewMint")
    assert write_coin_metrics(engine, pd.concat([rows, extra])) == 3
    assert _count(engine) == len(rows) + 3


def test_failing_write_leaves_table_unchanged(loaded):
    engine, rows = loaded
    new = make_rows(n_mints=2, per_mint=10, seed=5).assign(mint=lambda d: "X" + d["mint"])
    new.loc[15, "mint"] = None  # NOT NULL violation in the second chunk
    with pytest.raises(sa.exc.IntegrityError):
        write_coin_metrics(engine, new, chunk_rows=10)
    assert _count(engine) == len(rows)

    bad = new.assign(mint="Y").astype({"price_close": object})
    bad.loc[3, "price_close"] = "not a number"
    with pytest.raises(ValueError):
        write_coin_metrics(engine, bad)
    assert _count(engine) == len(rows)


def test_write_rejects_unknown_columns(loaded):
    engine, rows = loaded
    with pytest.raises(ValueError, match="bogus"):
        write_coin_metrics(engine, rows.assign(bogus=1.0))


def test_time_range(warehouse_engine):
    assert coin_metrics_time_range(warehouse_engine) is None
    rows = make_rows()
    write_coin_metrics(warehouse_engine, rows)
    lo, hi = coin_metrics_time_range(warehouse_engine)
    assert lo == rows["timestamp"].min() and hi == rows["timestamp"].max()
    assert lo.tzinfo is not None and lo.utcoffset() == dt.timedelta(0)


def test_inserts_are_queued_for_scoring_and_a_historical_import_is_not(warehouse_engine):
    import sqlalchemy as sa

    from pump_orchestration.data.synthetic import generate_coin_metrics
    from pump_orchestration.warehouse.coin_metrics import write_coin_metrics

    metrics, _ = generate_coin_metrics(n_coins=5, start="2025-09-01T00:00:00Z", hours=1, seed=1)
    history, news = metrics.iloc[:200], metrics.iloc[200:260]
    assert write_coin_metrics(warehouse_engine, history, queue_for_scoring=False) == 200
    assert write_coin_metrics(warehouse_engine, news) == 60
    assert write_coin_metrics(warehouse_engine, news) == 0  # a repeated insert inserts, and queues, nothing
    with warehouse_engine.connect() as conn:
        queued = conn.execute(sa.text("select mint, timestamp from coin_metrics_outbox order by id")).all()
    assert len(queued) == 60
    assert {m for m, _ in queued} <= set(news["mint"])


def test_first_timestamps_date_each_coin_by_its_first_row(warehouse_engine):
    import pandas as pd

    from pump_orchestration.data.synthetic import generate_coin_metrics
    from pump_orchestration.warehouse.coin_metrics import first_timestamps, write_coin_metrics

    metrics, _ = generate_coin_metrics(n_coins=6, start="2025-09-01T00:00:00Z", hours=1, seed=4)
    write_coin_metrics(warehouse_engine, metrics)
    mints = sorted(metrics["mint"].unique())[:4]
    found = first_timestamps(warehouse_engine, [*mints, "no-such-coin"], chunk=3)
    expected = metrics.groupby("mint")["timestamp"].min().loc[mints]
    assert sorted(found.index) == mints
    assert (found.loc[mints] == pd.to_datetime(expected, utc=True)).all()


# --- PostgreSQL columnar (ADBC) loader vs a plain psycopg2 query, cell for cell ------------------------------

_TRACKER_TABLE = """
CREATE TABLE coin_metrics (
    mint TEXT NOT NULL, "timestamp" {ts_type} NOT NULL, price_close DOUBLE PRECISION, volume_sol NUMERIC,
    num_buys INTEGER, phase_id_at_time SMALLINT, is_koth BOOLEAN, PRIMARY KEY (mint, "timestamp"))
"""
#: Values whose text form is awkward: extremes, signed zero, float specials, shortest round-trip digits.
_AWKWARD = [1e-300, 1e300, 0.1 + 0.2, -0.0, float("inf"), float("-inf"), float("nan"), 2.0**53 + 2, 5e-324]


def _tracker_rows(n: int = 60, seed: int = 3) -> list[tuple]:
    """Rows of a tracker-owned table: odd mints (CSV quoting), NULLs everywhere, fractional seconds."""
    rng = np.random.default_rng(seed)
    mints = ["", 'quo"te', "com,ma", "Ümlaut", "plainpump"]
    rows = []
    for i in range(n):
        ts = dt.datetime(2025, 9, 1, 23, 58, tzinfo=dt.timezone.utc) + dt.timedelta(seconds=int(i * 7),
                                                                                  microseconds=int(rng.integers(0, 10**6)))
        price = _AWKWARD[i % len(_AWKWARD)] if i % 3 else float(rng.random())
        rows.append((mints[i % len(mints)], ts, None if i % 11 == 0 else price,
                     None if i % 7 == 0 else str(round(float(rng.random()) * 1e6, 9)),
                     None if i % 5 == 0 else int(rng.integers(0, 2**31 - 1)), int(i % 3) + 1,
                     None if i % 4 == 0 else bool(i % 2)))
    return rows


def _psycopg2_frame(dsn: str, start, end, options: str) -> pd.DataFrame:
    """The oracle: one plain psycopg2 query, each value converted by hand."""
    import psycopg2

    url = sa.make_url(dsn)
    conn = psycopg2.connect(dbname=url.database, user=url.username, password=url.password, host=url.host,
                            port=url.port, options=options, **url.query)
    try:
        with conn.cursor() as cur:
            cur.execute('SELECT mint, "timestamp", price_close, volume_sol, num_buys, phase_id_at_time, is_koth '
                        'FROM coin_metrics WHERE "timestamp" >= %s AND "timestamp" < %s '
                        'ORDER BY "timestamp", mint COLLATE "C"', (start, end))
            rows = cur.fetchall()
    finally:
        conn.close()
    as_utc = [pd.Timestamp(r[1]).tz_localize("UTC") if r[1].tzinfo is None else pd.Timestamp(r[1]).tz_convert("UTC")
              for r in rows]
    return pd.DataFrame({
        "mint": pd.Series([r[0] for r in rows], dtype=object),
        "timestamp": pd.DatetimeIndex(as_utc, dtype="datetime64[ns, UTC]"),
        **{name: np.array([np.nan if r[k] is None else float(r[k]) for r in rows], dtype=np.float64)
           for k, name in ((2, "price_close"), (3, "volume_sol"), (4, "num_buys"), (5, "phase_id_at_time"))},
        "is_koth": pd.array([r[6] for r in rows], dtype="boolean"),
    })


# A zone-less column is read as UTC only in UTC sessions, which make_engine opens; a zoned one in any session.
@pytest.mark.parametrize("ts_type, session_zone", [("TIMESTAMPTZ", "UTC"), ("TIMESTAMPTZ", "America/New_York"),
                                                   ("TIMESTAMP", "UTC")])
def test_columnar_loader_matches_a_plain_query_cell_for_cell(pg_dsn, ts_type, session_zone):
    rows = _tracker_rows()
    setup = sa.create_engine(pg_dsn)
    with setup.begin() as conn:
        conn.exec_driver_sql(_TRACKER_TABLE.format(ts_type=ts_type))
        naive = ts_type == "TIMESTAMP"  # a zone-less column stores UTC wall-clock time
        conn.exec_driver_sql("INSERT INTO coin_metrics VALUES (%s, %s, %s, %s, %s, %s, %s)",
                             [(r[0], r[1].replace(tzinfo=None) if naive else r[1], *r[2:]) for r in rows])
    setup.dispose()
    options = f"-c timezone={session_zone}"
    engine = sa.create_engine(pg_dsn, connect_args={"options": options})
    start, end = T0.floor("D") + pd.Timedelta(hours=23, minutes=59), T0.floor("D") + pd.Timedelta(days=1, minutes=4)
    try:
        loaded = load_coin_metrics(engine, start, end, chunk_rows=7)
    finally:
        engine.dispose()
    expected = _psycopg2_frame(pg_dsn, start.to_pydatetime().replace(tzinfo=None) if naive else start.to_pydatetime(),
                               end.to_pydatetime().replace(tzinfo=None) if naive else end.to_pydatetime(), options)
    assert 0 < len(expected) < len(rows)  # the window cuts both ends
    assert loaded.attrs["rows_loaded"] == len(expected) and loaded.attrs["chunks"] > 1
    pd.testing.assert_frame_equal(loaded, expected, check_exact=True)
    # NaN and NULL both load as NaN; -0.0 keeps its sign.
    signs = np.signbit(loaded["price_close"].to_numpy()) == np.signbit(expected["price_close"].to_numpy())
    assert signs.all()
