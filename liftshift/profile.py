"""The source profile of a table: nulls, ranges, small value sets, and values a target cannot hold."""

from dataclasses import dataclass, field
from typing import Any

import psycopg

from liftshift.connectors.base import Column, Table
from liftshift.fingerprint import quote
from liftshift.pgtypes import ARRAY_CAST
from liftshift.types import Canonical as C

_RANGED = (C.INT16, C.INT32, C.INT64, C.DECIMAL, C.DATE, C.TIMESTAMP, C.TIMESTAMPTZ)
_PYTHON_RANGE = {
    C.DATE: "{c} >= '0001-01-01' AND {c} <= '9999-12-31'",
    C.TIMESTAMP: "{c} >= '0001-01-01' AND {c} < '10000-01-01'",
    C.TIMESTAMPTZ: "{c} >= '0001-01-01 00:00+00' AND {c} < '10000-01-01 00:00+00'",
}
_SMALL_SET = (C.INT16, C.INT32, C.STRING, C.BOOL)
MAX_VALUE_SET = 20

# Values no target can hold (BigQuery's ranges; Arrow, the way in, parses no ±infinity, BC or
# 24:00:00), per canonical type: (SQL condition on {c} as it travels or {raw} as stored, what is wrong).
_TIME_LIMITS: dict[C, tuple[str, str]] = {
    C.DATE: ("{c} < '0001-01-01' OR {c} > '9999-12-31'", "dates outside 0001-01-01…9999-12-31 or ±infinity"),
    C.TIMESTAMP: (
        "{c} < '0001-01-01' OR {c} >= '10000-01-01'",
        "timestamps outside years 0001…9999 or ±infinity",
    ),
    C.TIMESTAMPTZ: (
        "{c} < '0001-01-01 00:00+00' OR {c} >= '10000-01-01 00:00+00'",
        "timestamps outside years 0001…9999 (UTC) or ±infinity",
    ),
    C.TIME: ("{c} >= '24:00:00'", "the time 24:00:00"),
}
# DuckDB holds BC and years past 9999 too; its timestamps end in 294247, and liftshift's reader
# (PostgreSQL's microseconds since 2000 made Arrow's since 1970) parses no ±infinity.
_DUCKDB_TIME_LIMITS: dict[C, tuple[str, str]] = {
    C.DATE: ("{c} IN ('infinity', '-infinity')", "dates of ±infinity"),
    C.TIMESTAMP: (
        "{c} IN ('infinity', '-infinity') OR {c} >= '294247-01-01'",
        "timestamps of ±infinity or past year 294246",
    ),
    C.TIMESTAMPTZ: (
        "{c} IN ('infinity', '-infinity') OR {c} >= '294247-01-01 00:00+00'",
        "timestamps of ±infinity or past year 294246 (UTC)",
    ),
}
_DECIMAL_SPECIAL = ("{c} IN ('NaN', 'Infinity', '-Infinity')", "NaN or ±Infinity")
_DECIMAL_WIDE = (
    "{c} NOT IN ('NaN', 'Infinity', '-Infinity') AND (min_scale({c}) > 38 OR abs({c}) >= 1e38)",
    "values beyond {i} integer or {s} fractional digits",
)
_DECIMAL_INTEGER = (
    "{c} NOT IN ('NaN', 'Infinity', '-Infinity') AND abs({c}) >= 1e28",
    "values beyond {i} integer digits",
)
# JSON arrays keep no bounds; JSON travels as jsonb, which rejects \u0000 (an odd run of backslashes
# before u0000 is that escape; an even one is escaped backslashes and text u0000).
_ARRAY_BOUNDS = (
    r"array_dims({raw}) !~ '^(\[1:\d+\])+$'",
    "arrays indexed from other than 1, like '[0:1]={7,8}' (JSON arrays keep no bounds: it arrives as [7,8])",
)
_JSON_NUL = (
    r"to_json({raw})::text ~ '(^|[^\\])(\\\\)*\\u0000'",
    r"\u0000 in JSON strings (JSON travels as jsonb, which has no \u0000)",
)


@dataclass(frozen=True)
class ColumnProfile:
    """What the data of one column looks like."""

    nulls: int
    minimum: Any = None
    maximum: Any = None
    values: list[Any] | None = None  # all distinct values, when there are few


@dataclass(frozen=True)
class TableProfile:
    """A table's exact row count, its columns' profiles, and values the target cannot hold."""

    rows: int
    columns: dict[str, ColumnProfile]
    problems: dict[str, tuple[str, int]] = field(default_factory=dict)  # column → (what, rows)


def profile(conn: psycopg.Connection[Any], relation: str, table: Table, dialect: str) -> TableProfile:
    """Profile a table in one scan, plus one more for the value sets of low-cardinality columns."""
    movable = [c for c in table.columns if c.mapping.canonical is not None]
    parts: list[str] = ["count(*)"]
    for c in movable:
        parts += _aggregates(c, dialect)
    row: tuple[Any, ...] = conn.execute(f"SELECT {', '.join(parts)} FROM {relation}").fetchone() or (0,)
    rows, values = int(row[0]), iter(row[1:])
    columns, problems, candidates = {}, {}, []
    for c in movable:
        nulls = rows - int(next(values))
        low, high = (
            (next(values), next(values)) if c.canonical in _RANGED and not c.mapping.cast else (None, None)
        )
        if c.canonical in _PYTHON_RANGE and not c.mapping.cast and int(next(values)):
            low, high = None, None  # values beyond Python's years: no range a suite could state
        distinct = int(next(values)) if _small_set_candidate(c) else None
        for _condition, what in _limits(c, dialect):
            bad = int(next(values))
            if bad:
                problems[c.name] = (what, bad)
        columns[c.name] = ColumnProfile(nulls, low, high)
        if distinct is not None and 0 < distinct <= MAX_VALUE_SET and rows >= 10 * distinct:
            candidates.append(c)
    for name, found in _value_sets(conn, relation, candidates).items():
        columns[name] = ColumnProfile(
            columns[name].nulls, columns[name].minimum, columns[name].maximum, found
        )
    return TableProfile(rows, columns, problems)


def _expr(column: Column) -> str:
    col = quote("postgres", column.name)
    return column.mapping.cast.format(c=col) if column.mapping.cast else col


def _aggregates(column: Column, dialect: str) -> list[str]:
    """count, [min, max], [count distinct], [rows breaking each limit] for one column."""
    e, raw = _expr(column), quote("postgres", column.name)
    out = [f"count({raw})"]  # not the cast: a json value jsonb rejects would fail the scan
    if column.canonical in _RANGED and not column.mapping.cast:
        # Python holds years 1…9999 only: a column holding others (which DuckDB can) gets no range.
        python_range = _PYTHON_RANGE.get(column.canonical)
        held = f" FILTER (WHERE {python_range.format(c=e)})" if python_range else ""
        if column.canonical is C.DECIMAL:  # NaN sorts above every number; it is reported, not ranged
            held = f" FILTER (WHERE {e} NOT IN ('NaN', 'Infinity', '-Infinity'))"
        out += [f"min({e}){held}", f"max({e}){held}"]
        if python_range:
            out.append(f"count(*) FILTER (WHERE NOT ({python_range.format(c=e)}))")
    if _small_set_candidate(column):
        out.append(f"count(DISTINCT {e})")
    out += [f"count(*) FILTER (WHERE {cond.format(c=e, raw=raw)})" for cond, _ in _limits(column, dialect)]
    return out


def _small_set_candidate(column: Column) -> bool:
    is_text = column.canonical is C.STRING and not column.source_type.endswith("]")
    return column.canonical in _SMALL_SET and (is_text or column.canonical is not C.STRING)


def _limits(column: Column, dialect: str) -> list[tuple[str, str]]:
    """The (condition, description) pairs of values this target cannot hold."""
    canonical = column.canonical
    if canonical is C.DECIMAL:  # Arrow decimals hold no NaN, and at most 38 + 38 digits unconstrained
        if column.mapping.precision is not None:  # a declared precision already fits, or is a blocker
            return [_DECIMAL_SPECIAL]
        wide = (_DECIMAL_WIDE[0], _DECIMAL_WIDE[1].format(i=38, s=38))
        if dialect == "duckdb":  # rounding past 10 fractional digits is the lossy verdict, not this
            return [_DECIMAL_SPECIAL, wide, (_DECIMAL_INTEGER[0], _DECIMAL_INTEGER[1].format(i=28))]
        return [_DECIMAL_SPECIAL, wide]
    if dialect == "duckdb" and canonical in _DUCKDB_TIME_LIMITS:
        return [_DUCKDB_TIME_LIMITS[canonical]]
    if canonical in _TIME_LIMITS:
        return [_TIME_LIMITS[canonical]]
    if canonical is C.JSON and column.mapping.cast:  # json, arrays, composites: jsonb has no \u0000
        return ([_ARRAY_BOUNDS] if column.mapping.cast == ARRAY_CAST else []) + [_JSON_NUL]
    return []


def _value_sets(conn: psycopg.Connection[Any], relation: str, columns: list[Column]) -> dict[str, list[Any]]:
    """Every distinct non-null value of each column, sorted."""
    if not columns:
        return {}
    parts = [f"array_agg(DISTINCT {_typed(c)}) FILTER (WHERE {_expr(c)} IS NOT NULL)" for c in columns]
    row: tuple[Any, ...] = conn.execute(f"SELECT {', '.join(parts)} FROM {relation}").fetchone() or (0,)
    return {c.name: sorted(found or []) for c, found in zip(columns, row, strict=True)}


def _typed(column: Column) -> str:
    """The value as Python should see it: text for every string-like type (enums included)."""
    return f"({_expr(column)})::text" if column.canonical is C.STRING else _expr(column)
