"""Find the rows that differ between source and target: bucketed fingerprints, then the rows.

Rows are put in buckets: a single integer key's own ranges or the key modulo a prime
(liftshift.intbuckets), else 4,096 by the hash of their key (of the whole row when the table has no
key), so one scan per side, pushed down as SQL, says which buckets differ whatever the key's type or
shape. Then only the differing buckets are read again: first each row's key and hash (at most
DRILL_ROWS rows), which names the differing keys, then the full rows of at most MAX_ROWS_REPORTED
keys with each column's canonical text, which names the differing columns. Range bisection (data-
diff's way) needs an orderable key and a round trip per level; buckets need neither.
"""

import re
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

import pyarrow as pa
from pydantic import BaseModel, ConfigDict

from liftshift import aggregates, intbuckets
from liftshift import fingerprint as fp
from liftshift.aggregates import AggregateDifference
from liftshift.connectors.base import Column, Fingerprint, Table
from liftshift.intbuckets import MODULO, Layout
from liftshift.pgvalues import python_values
from liftshift.report import shown
from liftshift.types import Canonical as C

MAX_DRILL_BUCKETS = 64  # buckets read row by row; beyond that the report is a sample
DRILL_ROWS = 200_000  # rows whose key and hash are read from the differing buckets, at most
# A bucket read row by row holds at most this many rows, even alone: an end bucket of key ranges
# (liftshift.intbuckets) can hold every row beyond the source's keys.
MAX_BUCKET_ROWS = 10 * DRILL_ROWS
MAX_ROWS_REPORTED = 50
_CONTEXT_CHARS = 20  # characters shown before the first that differs, where values print alike
_HEX = re.compile(r"[0-9a-f]{32}")

Query = Callable[[str], pa.Table]
_INTEGERS = (C.INT16, C.INT32, C.INT64)
Buckets = dict[int, tuple[int, int]]  # bucket → (rows, checksum)
# How to reach one side: dialect, relation, a query function, and the table as that side stores it
Side = tuple[str, str, Query, Table]
SqlFor = Callable[[str, str, Table], str | None]  # a query's SQL from a side's dialect, relation and table


class ColumnDifference(BaseModel):
    """One column of one row, as each side holds it."""

    model_config = ConfigDict(frozen=True)

    column: str
    source: str | None
    target: str | None


class RowDifference(BaseModel):
    """A row that is missing, extra, duplicated or changed in the target."""

    model_config = ConfigDict(frozen=True)

    table: str
    kind: str  # "missing in target", "extra in target", "changed"
    key: dict[str, str | None]
    columns: list[ColumnDifference] = []
    copies: int = 1  # how many more (or fewer) copies of the row the target holds

    def key_text(self) -> str:
        """The key as name=value pairs, values quoted and NULL spelt out."""
        return ", ".join(f"{k}={_shown(v)}" for k, v in self.key.items())

    def describe(self, with_table: bool = True) -> str:
        """One line: the row's key, what happened to it and, when changed, each column both ways."""
        key = self.key_text()
        row = f"{self.table} ({key})" if with_table else f"({key})"
        if self.kind != "changed":
            return f"{row} {self.kind}{f' ×{self.copies}' if self.copies > 1 else ''}"
        changes = "; ".join(f"{c.column}: {_shown(c.source)} → {_shown(c.target)}" for c in self.columns)
        return f"{row} changed: {changes}"


def _shown(value: str | None) -> str:
    return "NULL" if value is None else repr(value)


class TableDiff(BaseModel):
    """Each side's whole-table fingerprint, how many buckets differ, and the rows found in them."""

    model_config = ConfigDict(frozen=True)

    source: Fingerprint
    target: Fingerprint
    aggregates: list[AggregateDifference]
    buckets: int  # buckets whose rows differ
    rows: list[RowDifference]
    complete: bool  # every differing bucket was read, so rows lists every difference (up to the cap)


def bucket_sql(dialect: str, relation: str, table: Table, layout: Layout = MODULO) -> str:
    """Rows and checksum per bucket of a relation."""
    inner = _hashed(dialect, relation, table, [], layout, fenced=True)
    return f"SELECT b, COUNT(*) AS n, {fp.checksum_sums(dialect)} FROM ({inner}) AS r GROUP BY b"


def _hashed(
    dialect: str, relation: str, table: Table, values: list[str], layout: Layout, fenced: bool = False
) -> str:
    """Each row's hash h, key k (h itself without a key), bucket b, and the values asked for.

    A single integer key is its own k and buckets by layout (liftshift.intbuckets), sparing a
    second hash per row.
    Fenced, PostgreSQL keeps both levels as subqueries (OFFSET 0): flattened, it would copy h's
    expression into each reference (an MD5 of the row per reference: h and b of a table without a
    key), and it would estimate a group per key, so sort the whole table to group it rather than
    hash 4,096 buckets.
    """
    keys = key_columns(table)
    items = [f"{fp.row_hash(dialect, table.columns)} AS h", *values]
    if len(keys) == 1 and keys[0].canonical in _INTEGERS:
        items.append(f"{fp.quote(dialect, keys[0].name)} AS k")
        outer = [layout.bucket(dialect, "k") + " AS b"]
    elif keys:
        items.append(f"{fp.row_hash(dialect, keys)} AS k")
        outer = [fp.bucket_of(dialect, "k") + " AS b"]
    else:  # rows are their own key
        outer = [fp.bucket_of(dialect, "h") + " AS b", "h AS k"]
    fence = " OFFSET 0" if fenced and dialect == "postgres" else ""
    inner = f"SELECT {', '.join(items)} FROM {relation}{fence}"
    return f"SELECT *, {', '.join(outer)} FROM ({inner}) AS x{fence}"


def _raw(dialect: str, table: Table) -> list[str]:
    """Every column's canonical value and canonical text, aliased c<i> and t<i>."""
    out = []
    for i, column in enumerate(table.columns):
        out.append(f"{fp.canonical_value(dialect, column)} AS c{i}")
        out.append(f"{fp.canonical_text(dialect, column)} AS t{i}")
    return out


def key_columns(table: Table) -> tuple[Column, ...]:
    """The primary key's columns, or none (then rows are compared as a multiset)."""
    present = {c.name: c for c in table.columns}
    keys = tuple(present[name] for name in table.primary_key if name in present)
    return keys if len(keys) == len(table.primary_key) else ()


def read_buckets(result: pa.Table) -> Buckets:
    """Bucket query results as {bucket: (rows, checksum)}."""
    out: Buckets = {}
    for b, n, hi, lo in zip(*(result.column(i).to_pylist() for i in range(4)), strict=True):
        out[int(b)] = (int(n), fp.combine(n, hi, lo).checksum)
    return out


def differing(source: Buckets, target: Buckets) -> list[int]:
    """Buckets whose rows or checksums differ, in order."""
    return sorted(b for b in source.keys() | target.keys() if source.get(b) != target.get(b))


def hashes_sql(dialect: str, relation: str, table: Table, buckets: list[int], layout: Layout) -> str:
    """The key and row hash of every row in some buckets."""
    inner = _hashed(dialect, _in_buckets(dialect, relation, table, buckets, layout), table, [], layout)
    return f"SELECT k, h FROM ({inner}) AS z"


def rows_sql(
    dialect: str, relation: str, table: Table, buckets: list[int], keys: list[Any], layout: Layout
) -> str:
    """Some rows of some buckets, by key: key, hash, and each column's value and canonical text."""
    columns = [f"c{i}" for i in range(len(table.columns))] + [f"t{i}" for i in range(len(table.columns))]
    selected = _in_buckets(dialect, relation, table, buckets, layout)
    inner = _hashed(dialect, selected, table, _raw(dialect, table), layout)
    wanted = ", ".join(_literal(k) for k in keys)
    return f"SELECT k, h, {', '.join(columns)} FROM ({inner}) AS z WHERE k IN ({wanted})"


def _in_buckets(dialect: str, relation: str, table: Table, buckets: list[int], layout: Layout) -> str:
    """The relation's rows in some buckets, as a subquery: filtered before any row's hash is made.

    (DuckDB hashes every row first when the filter is on the hashed subquery's b.)
    """
    keys = key_columns(table)
    if len(keys) == 1 and keys[0].canonical in _INTEGERS:
        selected = layout.select(dialect, fp.quote(dialect, keys[0].name), buckets)
    else:  # as _hashed buckets them: by the hash of the key, or of the whole row
        bucket = fp.bucket_of(dialect, fp.row_hash(dialect, keys or table.columns))
        selected = f"{bucket} IN ({intbuckets.listed(buckets)})"
    return f"(SELECT * FROM {relation} WHERE {selected}) AS f"


def _literal(key: Any) -> str:
    """A key as SQL: an integer key, or a key hash (hex digits only, so safe to inline)."""
    if isinstance(key, int):
        return str(key)
    if not _HEX.fullmatch(str(key)):
        raise ValueError(f"unexpected key hash {key!r}")
    return f"'{key}'"


def find_rows(table: Table, source: pa.Table, target: pa.Table) -> list[tuple[str, Any, int]]:
    """(kind, key, copies) of the rows that differ, from each side's keys and row hashes."""
    src, tgt = _hashes_by_key(source), _hashes_by_key(target)
    keyed = bool(key_columns(table))
    found: list[tuple[str, Any, int]] = []
    for k in sorted(src.keys() | tgt.keys(), key=str):
        ours, theirs = src.get(k, []), tgt.get(k, [])
        if keyed and len(ours) == 1 and len(theirs) == 1:
            found += [("changed", k, 1)] if ours != theirs else []
            continue
        mine, yours = Counter(ours), Counter(theirs)
        for h in sorted(mine.keys() | yours.keys()):
            surplus = yours[h] - mine[h]
            if surplus:
                kind = "extra in target" if surplus > 0 else "missing in target"
                found.append((kind, k if keyed else h, abs(surplus)))
        if len(found) >= MAX_ROWS_REPORTED:
            break
    return found[:MAX_ROWS_REPORTED]


def _hashes_by_key(rows: pa.Table) -> dict[Any, list[str]]:
    out: dict[Any, list[str]] = {}
    for k, h in zip(rows.column("k").to_pylist(), rows.column("h").to_pylist(), strict=True):
        out.setdefault(k, []).append(h)
    return out


def describe_rows(
    table: Table, found: list[tuple[str, Any, int]], source: pa.Table, target: pa.Table
) -> list[RowDifference]:
    """The differing rows with their keys and, for changed rows, each differing column both ways."""
    src, tgt = _rows_by_key(source), _rows_by_key(target)
    out = []
    for kind, k, copies in found:
        ours, theirs = src.get(k), tgt.get(k)
        example = ours or theirs
        if example is None:  # the row changed between the scans (the source is read live)
            continue
        columns = _changed_columns(table, ours, theirs) if kind == "changed" and ours and theirs else []
        out.append(RowDifference(table=table.name, kind=kind, key=_key(table, example), columns=columns,
                                 copies=copies))  # fmt: skip
    return out


def _rows_by_key(rows: pa.Table) -> dict[Any, dict[str, Any]]:
    """Each key's row; a keyless table's rows are keyed by their hash (copies are alike). Dates and
    times Python cannot hold (BC, past year 9999) are PostgreSQL's text of them ('0045-03-15 BC')."""
    columns = [python_values(rows.column(i)) for i in range(rows.num_columns)]
    listed = [dict(zip(rows.column_names, values, strict=True)) for values in zip(*columns, strict=True)]
    return {row["k"]: row for row in listed}


def _changed_columns(table: Table, ours: dict[str, Any], theirs: dict[str, Any]) -> list[ColumnDifference]:
    return [
        _difference(c.name, i, ours, theirs)
        for i, c in enumerate(table.columns)
        if ours[f"t{i}"] != theirs[f"t{i}"]
    ]


def _difference(column: str, i: int, ours: dict[str, Any], theirs: dict[str, Any]) -> ColumnDifference:
    """Column i of a changed row both ways, as the report shows it: where the values would print alike,
    the canonical texts that were hashed, from shortly before where they part."""
    source, target = shown(ours[f"c{i}"]), shown(theirs[f"c{i}"])
    if source == target:
        # JSON a target returns as loaded yet hashes re-printed (the local BigQuery endpoint: 2.50 as
        # 2.5), or a difference past the cut of a long value. Neither is NULL: each text starts with '1'.
        a, b = ours[f"t{i}"][1:], theirs[f"t{i}"][1:]
        parted = next((n for n, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))
        start = max(0, parted - _CONTEXT_CHARS)
        lead = "…" if start else ""
        source, target = shown(lead + a[start:]), shown(lead + b[start:])
    return ColumnDifference(column=column, source=source, target=target)


def _key(table: Table, row: dict[str, Any]) -> dict[str, str | None]:
    """The row's key values (every column's when the table has no key)."""
    names = {c.name for c in key_columns(table)} or {c.name for c in table.columns}
    return {c.name: shown(row[f"c{i}"]) for i, c in enumerate(table.columns) if c.name in names}


def drill_buckets(wrong: list[int], source: Buckets, target: Buckets) -> list[int]:
    """The first differing buckets, as many as hold at most DRILL_ROWS rows (at least one, if one holds
    at most MAX_BUCKET_ROWS)."""
    chosen: list[int] = []
    rows = 0
    for b in wrong[:MAX_DRILL_BUCKETS]:
        size = max(source.get(b, (0, 0))[0], target.get(b, (0, 0))[0])
        if size > MAX_BUCKET_ROWS:
            continue
        if chosen and rows + size > DRILL_ROWS:
            break
        chosen.append(b)
        rows += size
    return chosen


def diff_table(table: Table, source: Side, target: Side, tolerance: float) -> TableDiff:
    """Compare a table bucket by bucket on both sides at once, then read (and measure) what differs."""
    sides, layout = (source, target), _layout(table, source)
    with ThreadPoolExecutor(max_workers=2) as pool:
        src, tgt = (read_buckets(r) for r in _on_both(pool, sides, partial(bucket_sql, layout=layout))[0])
        wrong = differing(src, tgt)
        if not wrong:  # equal rows have equal aggregates (liftshift.aggregates): none to measure
            return TableDiff(source=total(src), target=total(tgt), aggregates=[], buckets=0, rows=[],
                             complete=True)  # fmt: skip
        drilled = drill_buckets(wrong, src, tgt)
        found = []
        if drilled:  # none when every differing bucket is too large to read row by row
            (hashes,) = _on_both(pool, sides, partial(hashes_sql, buckets=drilled, layout=layout))
            found = find_rows(table, hashes[0], hashes[1])
        complete = len(drilled) == len(wrong) and len(found) < MAX_ROWS_REPORTED
        keys = sorted({k for _, k, _ in found}, key=str)
        rows: list[RowDifference] = []
        if keys:  # none when the rows changed between the scans
            (detail,) = _on_both(pool, sides, partial(rows_sql, buckets=drilled, keys=keys, layout=layout))
            rows = describe_rows(table, found, detail[0], detail[1])
        # Every differing row listed says all the aggregates could; where rows are too many to
        # list, the aggregates sum up the whole table's differences, column by column.
        measured = [] if complete else _measure(pool, table, sides, tolerance)
    return TableDiff(source=total(src), target=total(tgt), aggregates=measured, buckets=len(wrong), rows=rows,
                     complete=complete)  # fmt: skip


def _layout(table: Table, source: Side) -> Layout:
    """How a single integer key buckets rows (liftshift.intbuckets), from the source's key bounds."""
    keys = key_columns(table)
    if len(keys) != 1 or keys[0].canonical not in _INTEGERS or table.row_estimate <= 0:
        return MODULO  # not an integer key, or no estimate to judge its density by
    dialect, relation, query, _ = source
    key = fp.quote(dialect, keys[0].name)
    low, high = query(f"SELECT MIN({key}) AS low, MAX({key}) AS high FROM {relation}").to_pylist()[0].values()
    return intbuckets.layout(None if low is None else (int(low), int(high)), table.row_estimate)


def _measure(
    pool: ThreadPoolExecutor, table: Table, sides: tuple[Side, Side], tolerance: float
) -> list[AggregateDifference]:
    """The column aggregates that differ, measured on both sides at once."""
    (measured,) = _on_both(pool, sides, aggregates.aggregate_sql)
    ours, theirs = (aggregates.read(table, m) for m in measured)
    return aggregates.compare(table, ours, theirs, tolerance)


def _on_both(pool: ThreadPoolExecutor, sides: tuple[Side, Side], *queries: SqlFor) -> list[list[Any]]:
    """Run the queries on both sides at once, in turn on each side: [[source, target] per query].

    A query for which a side's SQL is None gives None.
    """

    def one(side: Side) -> list[Any]:
        dialect, relation, query, stored = side
        return [None if (sql := make(dialect, relation, stored)) is None else query(sql) for make in queries]

    ours, theirs = (f.result() for f in [pool.submit(one, side) for side in sides])
    return [[a, b] for a, b in zip(ours, theirs, strict=True)]


def total(buckets: Buckets) -> Fingerprint:
    """The whole table's fingerprint from its buckets'."""
    rows = sum(n for n, _ in buckets.values())
    return Fingerprint(rows=rows, checksum=sum(c for _, c in buckets.values()) % (1 << 64))
