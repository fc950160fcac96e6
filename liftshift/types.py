"""The canonical type system, and the mapping from PostgreSQL types onto it and onto targets."""

import re
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
    TIMESTAMP = "timestamp"  # without time zone: a wall-clock reading
    TIMESTAMPTZ = "timestamptz"  # an instant, stored in UTC
    JSON = "json"


class Verdict(StrEnum):
    """How faithfully a column's values survive the move."""

    EXACT = "exact"
    WIDENED = "widened"
    LOSSY = "lossy"
    BLOCKER = "blocker"


@dataclass(frozen=True)
class Mapping:
    """Where one source column type lands, and how faithfully."""

    canonical: Canonical | None
    verdict: Verdict
    note: str = ""
    precision: int | None = None
    scale: int | None = None


_SIMPLE: dict[str, tuple[Canonical, Verdict, str]] = {
    "smallint": (Canonical.INT16, Verdict.WIDENED, "stored as INT64"),
    "integer": (Canonical.INT32, Verdict.WIDENED, "stored as INT64"),
    "bigint": (Canonical.INT64, Verdict.EXACT, ""),
    "real": (Canonical.FLOAT32, Verdict.WIDENED, "stored as FLOAT64 (exact widening)"),
    "double precision": (Canonical.FLOAT64, Verdict.EXACT, ""),
    "boolean": (Canonical.BOOL, Verdict.EXACT, ""),
    "text": (Canonical.STRING, Verdict.EXACT, ""),
    "bytea": (Canonical.BYTES, Verdict.EXACT, ""),
    "date": (Canonical.DATE, Verdict.EXACT, ""),
    "timestamp without time zone": (Canonical.TIMESTAMP, Verdict.EXACT, "as DATETIME"),
    "timestamp with time zone": (Canonical.TIMESTAMPTZ, Verdict.EXACT, "as TIMESTAMP in UTC"),
    "jsonb": (Canonical.JSON, Verdict.EXACT, ""),
    "json": (Canonical.JSON, Verdict.WIDENED, "normalised: whitespace and duplicate keys go"),
    "uuid": (Canonical.STRING, Verdict.WIDENED, "stored as STRING in canonical form"),
}
_VARCHAR = re.compile(r"^character varying(\(\d+\))?$")
_CHAR = re.compile(r"^character(\(\d+\))?$")
_NUMERIC = re.compile(r"^numeric(?:\((\d+)(?:,(\d+))?\))?$")
_TIMESTAMP_P = re.compile(r"^(timestamp)\(\d\)( with(?:out)? time zone)$")

# BigQuery NUMERIC holds 38 digits with scale <= 9; BIGNUMERIC 76 digits with scale <= 38.
NUMERIC_MAX = (38, 9)
BIGNUMERIC_MAX = (76, 38)


def map_postgres(source_type: str) -> Mapping:
    """Map a PostgreSQL type (as format_type() prints it) onto a canonical type."""
    source_type = _TIMESTAMP_P.sub(r"\1\2", source_type.strip())
    if source_type in _SIMPLE:
        canonical, verdict, note = _SIMPLE[source_type]
        return Mapping(canonical, verdict, note)
    if _VARCHAR.match(source_type):
        return Mapping(Canonical.STRING, Verdict.WIDENED, "length limit not enforced by STRING")
    if _CHAR.match(source_type):
        return Mapping(Canonical.STRING, Verdict.WIDENED, "blank padding removed")
    numeric = _NUMERIC.match(source_type)
    if numeric:
        return _map_numeric(numeric.group(1), numeric.group(2))
    return Mapping(None, Verdict.BLOCKER, f"no mapping for PostgreSQL type '{source_type}' yet")


def _map_numeric(precision: str | None, scale: str | None) -> Mapping:
    if precision is None:
        return Mapping(
            Canonical.DECIMAL,
            Verdict.WIDENED,
            "unconstrained numeric stored as BIGNUMERIC (up to 38 fractional digits)",
            *BIGNUMERIC_MAX,
        )
    p, s = int(precision), int(scale or 0)
    if p - s <= NUMERIC_MAX[0] - NUMERIC_MAX[1] and s <= NUMERIC_MAX[1]:
        return Mapping(Canonical.DECIMAL, Verdict.EXACT, "", p, s)
    if p - s <= BIGNUMERIC_MAX[0] - BIGNUMERIC_MAX[1] and s <= BIGNUMERIC_MAX[1]:
        return Mapping(Canonical.DECIMAL, Verdict.WIDENED, "stored as BIGNUMERIC", p, s)
    return Mapping(None, Verdict.BLOCKER, f"numeric({p},{s}) exceeds BIGNUMERIC's 76 digits")


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
        p, s = precision or 38, scale if scale is not None else 10
        return f"DECIMAL({min(p, 38)},{min(s, 37)})"
    return _DUCKDB[canonical]


def arrow_type(canonical: Canonical, precision: int | None, scale: int | None) -> pa.DataType:
    """The Arrow type liftshift reads a canonical type into."""
    if canonical is Canonical.DECIMAL:
        p, s = precision or BIGNUMERIC_MAX[0], scale if scale is not None else BIGNUMERIC_MAX[1]
        return pa.decimal128(p, s) if p <= 38 else pa.decimal256(p, s)
    return _ARROW[canonical]


_BIGQUERY = {
    Canonical.INT16: "INT64", Canonical.INT32: "INT64", Canonical.INT64: "INT64",
    Canonical.FLOAT32: "FLOAT64", Canonical.FLOAT64: "FLOAT64", Canonical.BOOL: "BOOL",
    Canonical.STRING: "STRING", Canonical.BYTES: "BYTES", Canonical.DATE: "DATE",
    Canonical.TIMESTAMP: "DATETIME", Canonical.TIMESTAMPTZ: "TIMESTAMP", Canonical.JSON: "JSON",
}  # fmt: skip
_DUCKDB = {
    Canonical.INT16: "SMALLINT", Canonical.INT32: "INTEGER", Canonical.INT64: "BIGINT",
    Canonical.FLOAT32: "REAL", Canonical.FLOAT64: "DOUBLE", Canonical.BOOL: "BOOLEAN",
    Canonical.STRING: "VARCHAR", Canonical.BYTES: "BLOB", Canonical.DATE: "DATE",
    Canonical.TIMESTAMP: "TIMESTAMP", Canonical.TIMESTAMPTZ: "TIMESTAMPTZ", Canonical.JSON: "JSON",
}  # fmt: skip
_ARROW: dict[Canonical, pa.DataType] = {
    Canonical.INT16: pa.int16(), Canonical.INT32: pa.int32(), Canonical.INT64: pa.int64(),
    Canonical.FLOAT32: pa.float32(), Canonical.FLOAT64: pa.float64(), Canonical.BOOL: pa.bool_(),
    Canonical.STRING: pa.string(), Canonical.BYTES: pa.binary(), Canonical.DATE: pa.date32(),
    Canonical.TIMESTAMP: pa.timestamp("us"), Canonical.TIMESTAMPTZ: pa.timestamp("us", tz="UTC"),
    Canonical.JSON: pa.string(),
}  # fmt: skip
