"""Arrow values as psycopg writes them into PostgreSQL: Python objects, or PostgreSQL's own text
where Python cannot hold a value (dates and timestamps BC or past year 9999)."""

from datetime import date, timedelta
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

# Python's dates run from year 1 to 9999; PostgreSQL's from 4713 BC on. Days since 1970 of the ends:
_PYTHON_DAYS = (date.min - date(1970, 1, 1)).days, (date.max - date(1970, 1, 1)).days
_DAY_MICROS = 86_400_000_000
_GREGORIAN_CYCLE = 146_097  # days in 400 years: the calendar repeats after them


def python_values(values: pa.Array | pa.ChunkedArray) -> list[Any]:
    """A column's values as Python objects for COPY; dates and timestamps Python cannot hold (BC,
    past year 9999) as PostgreSQL's text of them."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    micros = pa.types.is_timestamp(values.type) and values.type.unit == "us"  # as liftshift reads them
    temporal = pa.types.is_date32(values.type) or micros
    if not temporal or values.null_count == len(values):
        return values.to_pylist()
    unit = 1 if pa.types.is_date32(values.type) else _DAY_MICROS
    raw = values.cast(pa.int32() if unit == 1 else pa.int64())
    held = pc.and_(pc.greater_equal(raw, _PYTHON_DAYS[0] * unit), pc.less(raw, (_PYTHON_DAYS[1] + 1) * unit))
    if pc.all(pc.fill_null(held, True)).as_py():
        return values.to_pylist()
    out = pc.if_else(held, values, pa.nulls(len(values), values.type)).to_pylist()
    zone = "+00" if pa.types.is_timestamp(values.type) and values.type.tz else ""
    for i, kept in enumerate(held.to_pylist()):
        if kept is False:
            out[i] = _postgres_text(raw[i].as_py(), unit, zone)
    return out


def _postgres_text(value: int, unit: int, zone: str) -> str:
    """PostgreSQL's text of a date (days since 1970) or timestamp (microseconds since 1970, zone its
    UTC suffix or ''), in the proleptic Gregorian calendar both use, BC years and all."""
    days, micros = divmod(value, unit)
    cycles = -(-(_PYTHON_DAYS[0] - days) // _GREGORIAN_CYCLE) if days < _PYTHON_DAYS[0] else 0
    cycles -= -(-(days - _PYTHON_DAYS[1]) // _GREGORIAN_CYCLE) if days > _PYTHON_DAYS[1] else 0
    day = date(1970, 1, 1) + timedelta(days=days + cycles * _GREGORIAN_CYCLE)
    year = day.year - 400 * cycles  # astronomical: 0 is 1 BC
    text = f"{max(year, 1 - year):04d}-{day.month:02d}-{day.day:02d}"
    if unit != 1:
        seconds, fraction = divmod(micros, 1_000_000)
        text += f" {seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}.{fraction:06d}{zone}"
    return text + (" BC" if year <= 0 else "")


def literal_values(values: pa.Array | pa.ChunkedArray) -> list[Any]:
    """python_values of one Python type throughout, as psycopg dumps a list: all text where some are."""
    found = python_values(values)
    if any(isinstance(v, str) for v in found) and pa.types.is_temporal(values.type):
        return [v if v is None or isinstance(v, str) else v.isoformat() for v in found]
    return found
