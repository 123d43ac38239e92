"""Reading a CSV of known pump events (e.g. Telegram pump signals) for ``ml_known_events``.

Columns (header names, any order; others are refused so a typo is not silently ignored):

* ``mint`` (required): the coin, as in ``coin_metrics.mint``;
* ``start_time`` (required) and exactly one of ``end_time`` or ``duration_minutes`` (> 0):
  ISO timestamps, naive ones taken as UTC;
* ``symbol``, ``source``, ``note`` (optional): ``source`` defaults to the file's name.

Every problem is one line naming the column and the file's line number, raised before anything is
written. No Dagster import.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

REQUIRED = ("mint", "start_time")
OPTIONAL = ("end_time", "duration_minutes", "symbol", "source", "note")
#: What :func:`read_known_events` returns, in this order (the ``ml_known_events`` columns without id/created_at).
COLUMNS = ("mint", "symbol", "start_time", "end_time", "source", "note")


class KnownEventsError(ValueError):
    """The file cannot be imported; the message names the column and line."""


def _line(position: int) -> int:
    return position + 2  # the header is line 1


def _times(text: pd.Series, name: str, where: str) -> pd.Series:
    parsed = pd.to_datetime(text.where(text != ""), errors="coerce", utc=True, format="ISO8601")
    bad = parsed.isna()
    if bad.any():
        i = int(bad.to_numpy().argmax())
        value = text.iloc[i]
        problem = "is empty" if value == "" else f"{value!r} is not an ISO timestamp"
        raise KnownEventsError(f"{where}, line {_line(i)}: {name} {problem}")
    return parsed


def read_known_events(path: str | Path) -> pd.DataFrame:
    """The events of the CSV at ``path`` as :data:`COLUMNS`, checked row by row; raises :class:`KnownEventsError`."""
    path = Path(path)
    where = path.name
    try:
        text = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except FileNotFoundError:
        raise KnownEventsError(f"{path}: no such file") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise KnownEventsError(f"{where}: not a readable CSV ({str(exc).splitlines()[0]})") from None
    text.columns = [str(c).strip() for c in text.columns]
    unknown = [c for c in text.columns if c not in REQUIRED + OPTIONAL]
    if unknown:
        raise KnownEventsError(f"{where}: unknown column {unknown[0]!r}; allowed: {', '.join(REQUIRED + OPTIONAL)}")
    missing = [c for c in REQUIRED if c not in text.columns]
    if missing:
        raise KnownEventsError(f"{where}: column {missing[0]!r} is missing (needs {', '.join(REQUIRED)})")
    if ("end_time" in text.columns) == ("duration_minutes" in text.columns):
        raise KnownEventsError(f"{where}: needs exactly one of the columns 'end_time' or 'duration_minutes'")
    if text.empty:
        raise KnownEventsError(f"{where}: no events (only a header)")
    text = text.apply(lambda column: column.str.strip())
    empty_mint = text["mint"] == ""
    if empty_mint.any():
        raise KnownEventsError(f"{where}, line {_line(int(empty_mint.to_numpy().argmax()))}: mint is empty")
    start = _times(text["start_time"], "start_time", where)
    if "end_time" in text.columns:
        end = _times(text["end_time"], "end_time", where)
        early = end < start
        if early.any():
            i = int(early.to_numpy().argmax())
            raise KnownEventsError(f"{where}, line {_line(i)}: end_time {text['end_time'].iloc[i]!r} is before "
                                   f"start_time {text['start_time'].iloc[i]!r}")
    else:
        minutes = pd.to_numeric(text["duration_minutes"], errors="coerce")
        bad = ~(minutes > 0) | ~minutes.lt(float("inf"))
        if bad.any():
            i = int(bad.to_numpy().argmax())
            raise KnownEventsError(f"{where}, line {_line(i)}: duration_minutes {text['duration_minutes'].iloc[i]!r} "
                                   "must be a number of minutes > 0")
        end = start + pd.to_timedelta(minutes, unit="min")
    duplicated = pd.DataFrame({"mint": text["mint"], "start": start}).duplicated()
    if duplicated.any():
        i = int(duplicated.to_numpy().argmax())
        raise KnownEventsError(f"{where}, line {_line(i)}: a second event of mint {text['mint'].iloc[i]!r} "
                               f"starting at {start.iloc[i].isoformat()}; one event per (mint, start_time)")

    def optional(name: str, default: str | None = None) -> pd.Series:
        values = text[name] if name in text.columns else pd.Series("", index=text.index)
        return values.mask(values == "", default)

    return pd.DataFrame({"mint": text["mint"], "symbol": optional("symbol"), "start_time": start,
                         "end_time": end, "source": optional("source", where), "note": optional("note")},
                        columns=list(COLUMNS))
