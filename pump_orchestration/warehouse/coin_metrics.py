"""Read (streamed, uncapped) and bulk-write the ``coin_metrics`` source table.

Reads build the SELECT from bare column names rather than from ``schema.coin_metrics``: the
tracker's real table may have other types (NUMERIC, timestamp without zone) or extra columns.
On PostgreSQL the SELECT runs through ADBC's driver (``adbc-driver-postgresql``: binary COPY decoded
into Arrow in C++, no Python object per value; measured in ``benchmarks/README.md``); the embedded
SQLite warehouse streams rows through a cursor and converts them to compact dtypes once per chunk.
"""
from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import sqlalchemy as sa

from pump_orchestration import settings
from pump_orchestration.vocabulary import KEY_COLUMNS, to_utc
from pump_orchestration.warehouse import outbox
from pump_orchestration.warehouse import schema
from pump_orchestration.warehouse.db import is_postgres

TABLE = "coin_metrics"
_BOOL_COLUMNS = frozenset({"is_koth"})
#: SQLAlchemy's SQLite DATETIME text form; written values must match it so range filters compare right.
_SQLITE_TS_FORMAT = "%Y-%m-%d %H:%M:%S.%f"


def available_columns(engine: sa.Engine) -> list[str]:
    """Columns of the real ``coin_metrics`` table, in table order.

    Raises ``LookupError`` when the table does not exist.
    """
    inspector = sa.inspect(engine)
    if not inspector.has_table(TABLE):
        raise LookupError(f"table {TABLE!r} not found in the warehouse at {engine.url!r}")
    return [col["name"] for col in inspector.get_columns(TABLE)]


def _validate_columns(requested: Iterable[str], available: Sequence[str]) -> None:
    unknown = [c for c in requested if c not in available]
    if unknown:
        raise ValueError(
            f"unknown coin_metrics column(s): {', '.join(unknown)}; "
            f"available: {', '.join(available)}"
        )


def load_coin_metrics(
    engine: sa.Engine,
    start,
    end,
    columns: Sequence[str] | None = None,
    phases: Sequence[int] | None = None,
    mints: Sequence[str] | None = None,
    chunk_rows: int | None = None,
) -> pd.DataFrame:
    """Load ``coin_metrics`` rows with ``start <= timestamp < end``, without any row cap.

    ``columns``: columns to load besides ``mint`` and ``timestamp`` (always first); None = all.
    ``phases`` filters on ``phase_id_at_time``, ``mints`` on ``mint``. Rows arrive in
    chunks of ``chunk_rows`` (default ``settings.load_chunk_rows()``), each converted to columns
    at once: Arrow record batches on PostgreSQL (about ``chunk_rows`` rows each: ADBC sizes them in
    bytes), cursor rows on SQLite, so Python row objects never exist for more than one chunk.

    Returns a frame sorted by (timestamp, mint) with ``timestamp`` tz-aware UTC, numeric columns
    float64 and ``is_koth`` bool (pandas ``boolean`` if it holds NULLs). ``df.attrs`` carries
    ``rows_loaded`` and ``chunks``. Raises ``ValueError`` naming unknown columns.
    """
    available = available_columns(engine)
    if columns is None:
        value_columns = [c for c in available if c not in KEY_COLUMNS]
    else:
        _validate_columns(columns, available)
        value_columns = [c for c in dict.fromkeys(columns) if c not in KEY_COLUMNS]
    if phases is not None:
        _validate_columns(["phase_id_at_time"], available)
    names = [*KEY_COLUMNS, *value_columns]
    chunk_rows = chunk_rows or settings.load_chunk_rows()

    source = sa.table(TABLE, *(sa.column(c) for c in dict.fromkeys([*names, "phase_id_at_time"])))
    ts_col = sa.column("timestamp", schema.UtcDateTime())
    mint_col = source.c.mint
    if is_postgres(engine):
        # Byte order, as SQLite and pandas sort: the result must not depend on the DB locale.
        mint_col = mint_col.collate("C")
    query = (
        sa.select(*(source.c[c] for c in names))
        .where(ts_col >= to_utc(start).to_pydatetime(), ts_col < to_utc(end).to_pydatetime())
        .order_by(ts_col, mint_col)
    )
    if phases is not None:
        query = query.where(source.c.phase_id_at_time.in_([int(p) for p in phases]))
    if mints is not None:
        query = query.where(source.c.mint.in_(list(mints)))

    if is_postgres(engine):
        df, chunks = _arrow_frame(engine, query, names, chunk_rows)
    else:
        with engine.connect() as conn:
            result = conn.execution_options(stream_results=True, yield_per=chunk_rows).execute(query)
            frames = [_chunk_frame(rows, names) for rows in result.partitions()]
        df = pd.concat(frames, ignore_index=True) if frames else _chunk_frame([], names)
        chunks = len(frames)
    for c in _BOOL_COLUMNS.intersection(value_columns):
        # Chunks may differ (bool vs NULL-bearing "boolean"); decide once for the whole frame.
        df[c] = _bool_column(df[c])
    df.attrs["rows_loaded"] = len(df)
    df.attrs["chunks"] = chunks
    return df


#: Bytes of a mint (44 base58 characters and an offset), for turning ``chunk_rows`` into ADBC's byte-sized batches.
_MINT_BYTES = 48


def _arrow_frame(engine: sa.Engine, query: sa.Select, names: Sequence[str],
                 chunk_rows: int) -> tuple[pd.DataFrame, int]:
    """Run ``query`` through ADBC's PostgreSQL driver (binary ``COPY``) and return it as pandas columns.

    No Python object per value: libpq's binary rows are decoded into Arrow record batches of about
    ``chunk_rows`` rows in C++, and the batches become pandas columns once (``self_destruct`` frees
    each Arrow column as it is converted, so the rows are not held twice). Values are cast to float8
    on the server (a NUMERIC or integer column of the tracker loads as float64, as in the row path);
    timestamps travel as binary microseconds, and a column without a zone counts as UTC.
    """
    import adbc_driver_postgresql.dbapi as adbc

    select_list = []
    for col in query.selected_columns:
        if col.name not in KEY_COLUMNS and col.name not in _BOOL_COLUMNS:
            col = sa.cast(col, sa.Float(precision=53)).label(col.name)
        select_list.append(col)
    arrow_query = query.with_only_columns(*select_list, maintain_column_froms=True)
    # ADBC takes SQL text: psycopg2 renders the parameters, with its quoting.
    compiled = arrow_query.compile(dialect=engine.dialect, compile_kwargs={"render_postcompile": True})
    with engine.connect() as conn:
        cursor = conn.connection.driver_connection.cursor()
        try:
            sql = cursor.mogrify(str(compiled), compiled.params).decode()
        finally:
            cursor.close()
    with adbc.connect(engine.url.set(drivername="postgresql").render_as_string(hide_password=False)) as conn:
        with conn.cursor() as cursor:
            # A zone-less column compares with the window bounds in the session zone: make it UTC.
            cursor.execute("SET TIME ZONE 'UTC'")
            cursor.adbc_statement.set_options(
                **{"adbc.postgresql.batch_size_hint_bytes": str(max(1, chunk_rows) * (8 * len(names) + _MINT_BYTES))})
            cursor.execute(sql)
            reader = cursor.fetch_record_batch()
            batches = [batch for batch in reader if batch.num_rows]
    if not batches:
        return _chunk_frame([], names), 0
    table = pa.Table.from_batches(batches)
    chunks = len(batches)
    batches.clear()
    # timestamptz arrives as UTC instants; a zone-less column keeps its wall-clock value, which is UTC.
    stamps = table.column("timestamp").cast(pa.timestamp("ns", tz="UTC"))
    table = table.set_column(list(names).index("timestamp"), "timestamp", stamps)
    return table.to_pandas(self_destruct=True, split_blocks=True), chunks


def _chunk_frame(rows: Sequence[Sequence], names: Sequence[str]) -> pd.DataFrame:
    """Convert one chunk of raw rows into compactly typed columns."""
    cols = list(zip(*rows)) if rows else [() for _ in names]
    data: dict[str, object] = {}
    for name, values in zip(names, cols):
        if name == "mint":
            data[name] = np.array(values, dtype=object)
        elif name == "timestamp":
            # ISO8601: SQLite text may or may not carry fractional seconds; PG gives datetimes.
            data[name] = pd.to_datetime(pd.Series(values, dtype=object), utc=True, format="ISO8601")
        elif name in _BOOL_COLUMNS:
            data[name] = _bool_column(pd.Series(values, dtype=object))
        else:
            # None -> NaN; Decimal (NUMERIC columns) -> float.
            data[name] = np.array(values, dtype=np.float64)
    df = pd.DataFrame(data, columns=list(names))
    if df["timestamp"].dtype != "datetime64[ns, UTC]":
        df["timestamp"] = df["timestamp"].astype("datetime64[ns, UTC]")
    return df


def _bool_column(series: pd.Series) -> pd.Series:
    """Plain bool when there are no NULLs, else pandas' nullable ``boolean``."""
    return series.astype(bool) if series.notna().all() else series.astype("boolean")


def write_coin_metrics(engine: sa.Engine, df: pd.DataFrame, chunk_rows: int = 50_000,
                       queue_for_scoring: bool = True) -> int:
    """Bulk-insert ``df`` into ``coin_metrics`` in one transaction; return the rows newly inserted.

    With the outbox trigger installed, new rows are queued for live scoring like a tracker's inserts;
    ``queue_for_scoring=False`` (a historical import) takes this write's rows out of the queue again,
    in the same transaction.

    ``df`` needs ``mint`` and ``timestamp`` (naive = UTC); other columns must exist in the table.
    Rows whose (mint, timestamp) already exist are skipped, so re-importing is a no-op. Any error
    rolls the whole write back. PostgreSQL streams CSV chunks through ``COPY`` into a temporary
    table, then ``INSERT ... ON CONFLICT DO NOTHING``; SQLite uses batched ``INSERT ... ON CONFLICT DO NOTHING``.
    """
    missing_keys = [c for c in KEY_COLUMNS if c not in df.columns]
    if missing_keys:
        raise ValueError(f"coin_metrics rows need column(s): {', '.join(missing_keys)}")
    available = available_columns(engine)
    _validate_columns(df.columns, available)
    frame = _normalise_for_write(df)
    if frame.empty:
        return 0
    write = _write_postgres if is_postgres(engine) else _write_sqlite
    with engine.begin() as conn:
        before = None if queue_for_scoring else outbox.high_water(conn)
        inserted = write(conn, frame, chunk_rows)
        if before is not None:
            outbox.forget(conn, frame["mint"].unique(), frame["timestamp"].min(), frame["timestamp"].max(), before)
    return inserted


def _normalise_for_write(df: pd.DataFrame) -> pd.DataFrame:
    """Coerce types up front so bad values fail before anything is written."""
    frame = pd.DataFrame(index=df.index)
    for name in df.columns:
        if name == "mint":
            frame[name] = df[name]
        elif name == "timestamp":
            frame[name] = pd.to_datetime(df[name], utc=True)
        elif name in _BOOL_COLUMNS:
            frame[name] = df[name].astype("boolean")
        else:
            frame[name] = pd.to_numeric(df[name], errors="raise")
    return frame.reset_index(drop=True)


def _chunks(frame: pd.DataFrame, chunk_rows: int) -> Iterable[pd.DataFrame]:
    for offset in range(0, len(frame), chunk_rows):
        yield frame.iloc[offset:offset + chunk_rows]


def _write_postgres(conn: sa.Connection, frame: pd.DataFrame, chunk_rows: int) -> int:
    quote = conn.dialect.identifier_preparer.quote
    column_list = ", ".join(quote(c) for c in frame.columns)
    # Numbers are staged as float8 because a column with NULLs arrives as floats ("1.0"), which
    # COPY rejects for an integer column; INSERT ... SELECT then applies the assignment cast.
    stage_types = {"mint": "TEXT", "timestamp": "TIMESTAMPTZ", **{c: "BOOLEAN" for c in _BOOL_COLUMNS}}
    stage_columns = ", ".join(f"{quote(c)} {stage_types.get(c, 'DOUBLE PRECISION')}" for c in frame.columns)
    conn.exec_driver_sql(f"CREATE TEMP TABLE _coin_metrics_stage ({stage_columns}) ON COMMIT DROP")
    cursor = conn.connection.driver_connection.cursor()
    try:
        for chunk in _chunks(frame, chunk_rows):
            buffer = io.StringIO()
            out = chunk.copy()
            out["timestamp"] = out["timestamp"].dt.strftime("%Y-%m-%d %H:%M:%S.%f+00")
            # Empty unquoted CSV fields are NULL for COPY; float repr keeps full precision.
            out.to_csv(buffer, index=False, header=False, quoting=csv.QUOTE_MINIMAL, na_rep="")
            buffer.seek(0)
            cursor.copy_expert(f"COPY _coin_metrics_stage ({column_list}) FROM STDIN WITH (FORMAT csv)", buffer)
    finally:
        cursor.close()
    result = conn.exec_driver_sql(
        f"INSERT INTO coin_metrics ({column_list}) SELECT {column_list} FROM _coin_metrics_stage ON CONFLICT DO NOTHING"
    )
    return result.rowcount


def _write_sqlite(conn: sa.Connection, frame: pd.DataFrame, chunk_rows: int) -> int:
    quote = conn.dialect.identifier_preparer.quote
    column_list = ", ".join(quote(c) for c in frame.columns)
    placeholders = ", ".join("?" for _ in frame.columns)
    # ON CONFLICT (not OR IGNORE): OR IGNORE would also silently drop rows violating NOT NULL.
    statement = f"INSERT INTO coin_metrics ({column_list}) VALUES ({placeholders}) ON CONFLICT DO NOTHING"
    inserted = 0
    for chunk in _chunks(frame, chunk_rows):
        out = chunk.astype(object).copy()
        out["timestamp"] = chunk["timestamp"].dt.strftime(_SQLITE_TS_FORMAT)
        out = out.where(chunk.notna(), None)
        rows = list(out.itertuples(index=False, name=None))
        inserted += conn.exec_driver_sql(statement, rows).rowcount
    return inserted


def coin_metrics_time_range(engine: sa.Engine) -> tuple[dt.datetime, dt.datetime] | None:
    """(earliest, latest) ``timestamp`` in ``coin_metrics`` as aware UTC, or None when empty."""
    ts = sa.column("timestamp")
    with engine.connect() as conn:
        lo, hi = conn.execute(sa.select(sa.func.min(ts), sa.func.max(ts)).select_from(sa.table(TABLE))).one()
    if lo is None:
        return None
    return to_utc(lo).to_pydatetime(), to_utc(hi).to_pydatetime()


def first_timestamps(engine: sa.Engine, mints: Sequence[str], chunk: int = 1000) -> pd.Series:
    """Each coin's first ``timestamp`` (aware UTC), indexed by mint; an index-only lookup on the key (mint, timestamp)."""
    mint, ts = sa.column("mint"), sa.column("timestamp")
    mints = list(mints)
    found: dict[str, pd.Timestamp] = {}
    with engine.connect() as conn:
        for i in range(0, len(mints), chunk):
            query = (sa.select(mint, sa.func.min(ts)).select_from(sa.table(TABLE))
                     .where(mint.in_(mints[i:i + chunk])).group_by(mint))
            found.update({m: to_utc(first) for m, first in conn.execute(query)})
    return pd.Series(found, dtype="datetime64[ns, UTC]")
