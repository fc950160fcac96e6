"""Buckets for rows with a single integer key: by key range when the keys are dense, else modulo a prime.

Validation puts rows into buckets, compares them, then reads again only the rows of the buckets
that differ (liftshift.diff). With ranges that second read is a few key ranges: an index range scan
in PostgreSQL, a few row groups by their zone maps in DuckDB. Modulo a prime, every bucket has
keys all over the table, so the second read is a whole scan; but it spreads any keys evenly
(steps of 8 or 2**12 too), so keys that fill less than half of their span, whose ranges could hold
very different numbers of rows, keep it.
"""

from dataclasses import dataclass

PRIME_BUCKETS = 4093
RANGE_BUCKETS = 4096
DENSE = 2  # keys dense enough for ranges: the span from min to max is at most twice the rows
# Every engine's modulo truncates toward zero, so negative keys are lifted into 0…n-1 alike.
_MODULO = {
    "postgres": "((({k}) % {n}) + {n}) % {n}",
    "bigquery": "MOD(MOD({k}, {n}) + {n}, {n})",
    "duckdb": "((({k}) % {n}) + {n}) % {n}",
}
# The parentheses inside DIV too: the local BigQuery endpoint turns DIV(a - b, w) into a - b // w.
_DIVIDE = {"postgres": "({x}) / {w}", "bigquery": "DIV(({x}), {w})", "duckdb": "({x}) // {w}"}
# Keys widened to 64 bits before any arithmetic: a smallint's span can overflow a smallint.
_WIDE = {"postgres": "({k})::int8", "bigquery": "{k}", "duckdb": "CAST({k} AS BIGINT)"}


@dataclass(frozen=True)
class Modulo:
    """Bucket = key modulo PRIME_BUCKETS."""

    def bucket(self, dialect: str, key: str) -> str:
        """SQL for the bucket of a key expression."""
        return _MODULO[dialect].format(k=key, n=PRIME_BUCKETS)

    def select(self, dialect: str, key: str, buckets: list[int]) -> str:
        """A condition true for the rows in the buckets."""
        return f"{self.bucket(dialect, key)} IN ({listed(buckets)})"


@dataclass(frozen=True)
class Ranges:
    """Bucket b holds keys in [low + b·width, low + (b+1)·width); the first and last are open-ended,
    so a key outside the source's [low, high] (an extra row in the target) still has a bucket."""

    low: int
    high: int
    width: int

    @property
    def last(self) -> int:
        """The highest bucket number."""
        return (self.high - self.low) // self.width

    def bucket(self, dialect: str, key: str) -> str:
        """SQL for the bucket of a key expression: clamped first, so nothing can overflow."""
        clamped = f"LEAST(GREATEST({_WIDE[dialect].format(k=key)}, {self.low}), {self.high})"
        return _DIVIDE[dialect].format(x=f"{clamped} - ({self.low})", w=self.width)

    def select(self, dialect: str, key: str, buckets: list[int]) -> str:
        """A condition true for the rows in the buckets: key ranges, neighbouring buckets merged."""
        ranges = []
        for first, last in _runs(sorted({int(b) for b in buckets})):
            bounds = [f"{key} >= {self.low + first * self.width}"] if first > 0 else []
            bounds += [f"{key} < {self.low + (last + 1) * self.width}"] if last < self.last else []
            ranges.append(f"({' AND '.join(bounds) or 'TRUE'})")
        return f"({' OR '.join(ranges) or 'FALSE'})"


Layout = Modulo | Ranges
MODULO = Modulo()


def layout(bounds: tuple[int, int] | None, rows: int) -> Layout:
    """Ranges over [min, max] of the source's key when rows (an estimate) fill at least half of it."""
    if bounds is None or rows <= 0:
        return MODULO
    low, high = bounds
    span = high - low + 1
    if span > DENSE * rows:
        return MODULO
    return Ranges(low, high, max(1, -(-span // RANGE_BUCKETS)))


def listed(buckets: list[int]) -> str:
    """Bucket numbers as a SQL list's items."""
    return ", ".join(str(int(b)) for b in buckets)


def _runs(numbers: list[int]) -> list[tuple[int, int]]:
    """Sorted numbers as runs of consecutive ones: [1, 2, 3, 7] → [(1, 3), (7, 7)]."""
    runs: list[tuple[int, int]] = []
    for n in numbers:
        if runs and runs[-1][1] == n - 1:
            runs[-1] = (runs[-1][0], n)
        else:
            runs.append((n, n))
    return runs
