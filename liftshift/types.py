"""The canonical type system, and how each canonical type is spelled in every target.

Every column travels as one canonical type (its Arrow type) and is fingerprinted by one canonical
text rule. A source type maps onto a canonical type, possibly through a PostgreSQL cast (a uuid
travels as its text, an array as JSON); liftshift.pgtypes holds those rules. What a column
becomes in each target is a TargetMapping with one of four verdicts:

- exact: the same kind of type; every value and its meaning survive.
- widened: every value survives in a wider or more general type and still compares equal, though
  type-specific operators may be lost; the note says how it is held.
- lossy: values or their meaning change; the note says what is lost.
- blocker: the column cannot be moved; the note says what to do (change its type in the source,
  or leave the table out of the plan).

Notes also name values a type cannot hold (±infinity, NaN, years past 9999): a verdict judges the
type, and the assess stage checks the data for such values.
"""

from dataclasses import dataclass
from enum import StrEnum

import pyarrow as pa


class Canonical(StrEnum):
    """The kinds of value liftshift moves and fingerprints, whatever the engine."""

    INT16 = "int16"
    INT32 = "int32"
    INT64 = "int64"
    DECIMAL = "decimal"
    FLOAT32 = "float32"
    FLOAT64 = "float64"
    BOOL = "bool"
    STRING = "string"
    BYTES = "bytes"
    DATE = "date"
    TIME = "time"  # time of day without a zone, microseconds
    TIMESTAMP = "timestamp"  # without time zone: a wall-clock reading
    TIMESTAMPTZ = "timestamptz"  # an instant, stored in UTC
    JSON = "json"


class Verdict(StrEnum):
    """How faithfully a column's values survive the move (meanings in the module docstring)."""

    EXACT = "exact"
    WIDENED = "widened"
    LOSSY = "lossy"
    BLOCKER = "blocker"


DIALECTS = ("bigquery", "duckdb", "postgres")


@dataclass(frozen=True)
class TargetMapping:
    """What a column becomes in one target: its type there ('' for a blocker) and the verdict."""

    type: str
    verdict: Verdict
    note: str = ""


@dataclass(frozen=True)
class Mapping:
    """Where one source column type lands: its canonical type, the cast to it, and each target.

    cast is a PostgreSQL expression template over {c} that turns a source value into its
    canonical value; None means the value is already canonical.
    """

    canonical: Canonical | None
    bigquery: TargetMapping
    duckdb: TargetMapping
    postgres: TargetMapping
    precision: int | None = None  # decimals; None for an unconstrained numeric
    scale: int | None = None
    cast: str | None = None

    @property
    def verdict(self) -> Verdict:
        """The BigQuery verdict (liftshift's first target); target_mapping() gives any target's."""
        return self.bigquery.verdict

    @property
    def note(self) -> str:
        """The BigQuery note."""
        return self.bigquery.note


def target_mapping(mapping: Mapping, dialect: str) -> TargetMapping:
    """What a mapped column becomes in the target dialect: bigquery, duckdb or postgres."""
    if dialect not in DIALECTS:
        raise ValueError(f"unknown target dialect '{dialect}' (one of {', '.join(DIALECTS)})")
    found: TargetMapping = getattr(mapping, dialect)
    return found


# BigQuery NUMERIC holds 29 integer and 9 fractional digits; BIGNUMERIC 38 and 38.
NUMERIC_MAX = (38, 9)
BIGNUMERIC_MAX = (76, 38)
DUCKDB_DECIMAL_MAX = 38
DUCKDB_UNCONSTRAINED = (38, 10)  # what DuckDB itself gives an unconstrained DECIMAL


def is_bignumeric(precision: int | None, scale: int | None) -> bool:
    """True when a decimal needs BIGNUMERIC rather than NUMERIC in BigQuery."""
    p, s = precision or BIGNUMERIC_MAX[0], scale or 0
    return p - s > NUMERIC_MAX[0] - NUMERIC_MAX[1] or s > NUMERIC_MAX[1]


def bigquery_type(canonical: Canonical, precision: int | None, scale: int | None) -> str:
    """The BigQuery column type for a canonical type."""
    if canonical is Canonical.DECIMAL:
        return "BIGNUMERIC" if is_bignumeric(precision, scale) else "NUMERIC"
    return _BIGQUERY[canonical]


def duckdb_type(canonical: Canonical, precision: int | None, scale: int | None) -> str:
    """The DuckDB column type for a canonical type (DuckDB decimals stop at 38 digits)."""
    if canonical is Canonical.DECIMAL:
        p, s = (precision, scale or 0) if precision is not None else DUCKDB_UNCONSTRAINED
        return f"DECIMAL({min(p, DUCKDB_DECIMAL_MAX)},{min(s, DUCKDB_DECIMAL_MAX)})"
    return _DUCKDB[canonical]


def arrow_type(canonical: Canonical, precision: int | None, scale: int | None) -> pa.DataType:
    """The Arrow type liftshift reads a canonical type into."""
    if canonical is Canonical.DECIMAL:
        p, s = (precision, scale or 0) if precision is not None else BIGNUMERIC_MAX
        return pa.decimal128(p, s) if p <= 38 else pa.decimal256(p, s)
    return _ARROW[canonical]


_BIGQUERY = {
    Canonical.INT16: "INT64", Canonical.INT32: "INT64", Canonical.INT64: "INT64",
    Canonical.FLOAT32: "FLOAT64", Canonical.FLOAT64: "FLOAT64", Canonical.BOOL: "BOOL",
    Canonical.STRING: "STRING", Canonical.BYTES: "BYTES", Canonical.DATE: "DATE",
    Canonical.TIME: "TIME", Canonical.TIMESTAMP: "DATETIME", Canonical.TIMESTAMPTZ: "TIMESTAMP",
    Canonical.JSON: "JSON",
}  # fmt: skip
_DUCKDB = {
    Canonical.INT16: "SMALLINT", Canonical.INT32: "INTEGER", Canonical.INT64: "BIGINT",
    Canonical.FLOAT32: "REAL", Canonical.FLOAT64: "DOUBLE", Canonical.BOOL: "BOOLEAN",
    Canonical.STRING: "VARCHAR", Canonical.BYTES: "BLOB", Canonical.DATE: "DATE",
    Canonical.TIME: "TIME", Canonical.TIMESTAMP: "TIMESTAMP", Canonical.TIMESTAMPTZ: "TIMESTAMPTZ",
    Canonical.JSON: "JSON",
}  # fmt: skip
_ARROW: dict[Canonical, pa.DataType] = {
    Canonical.INT16: pa.int16(), Canonical.INT32: pa.int32(), Canonical.INT64: pa.int64(),
    Canonical.FLOAT32: pa.float32(), Canonical.FLOAT64: pa.float64(), Canonical.BOOL: pa.bool_(),
    Canonical.STRING: pa.string(), Canonical.BYTES: pa.binary(), Canonical.DATE: pa.date32(),
    Canonical.TIME: pa.time64("us"), Canonical.TIMESTAMP: pa.timestamp("us"),
    Canonical.TIMESTAMPTZ: pa.timestamp("us", tz="UTC"), Canonical.JSON: pa.string(),
}  # fmt: skip
