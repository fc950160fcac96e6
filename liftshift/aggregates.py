"""Column aggregates of a whole table (non-null count, min, max, sum), measured and compared.

They sum up differences too many to list, so liftshift.diff measures them only when it could not
list every differing row (more than it reports, or buckets more or larger than it reads). Where
every row's hash agrees, every canonical value does, and the measures can differ by nothing but the
engines' float arithmetic, which compare() tolerates; where the differing rows are all listed, with
each differing column and both values, the measures would only restate them. Either way a scan of
both sides is spared. Distinct counts are not among them: PostgreSQL has no approximate distinct
count, and an exact one is a sort of every column.
"""

import math
from decimal import Decimal
from typing import Any

import pyarrow as pa
from pydantic import BaseModel, ConfigDict

from liftshift import fingerprint as fp
from liftshift.connectors.base import Column, Table
from liftshift.report import shown
from liftshift.types import Canonical as C

MAX_SUMMED_DIGITS = 28
_SUMMED = (C.INT16, C.INT32, C.INT64, C.DECIMAL, C.FLOAT32, C.FLOAT64)
# Floats have no min/max here: engines disagree on where NaN sorts.
_ORDERED = (C.INT16, C.INT32, C.INT64, C.DECIMAL, C.DATE, C.TIME, C.TIMESTAMP, C.TIMESTAMPTZ, C.STRING)
_FLOATS = (C.FLOAT32, C.FLOAT64)
# 64-bit integer sums in a type that cannot overflow (PostgreSQL's sum(int8) is numeric already,
# and smaller integers sum to int8), float sums in double precision (PostgreSQL sums a real as a
# real); strings ordered by code point, as the targets do.
_WIDE_SUM = {"postgres": "sum({c})", "bigquery": "SUM(CAST({c} AS NUMERIC))", "duckdb": "sum({c})"}
_DOUBLE_SUM = {"postgres": "sum({c}::float8)", "bigquery": "SUM({c})", "duckdb": "sum({c}::DOUBLE)"}
_BY_CODE_POINT = {"postgres": '{c} COLLATE "C"', "bigquery": "{c}", "duckdb": "{c}"}


class AggregateDifference(BaseModel):
    """One measure of one column that differs between the sides."""

    model_config = ConfigDict(frozen=True)

    table: str
    column: str
    measure: str  # "non-null", "min", "max", "sum"
    source: str | None
    target: str | None

    def describe(self) -> str:
        """One line: the column, the measure, and its value on each side."""
        sides = f"{self.source} in the source, {self.target} in the target"
        return f"{self.table}: {self.column} {self.measure} is {sides}"


def measures(column: Column) -> list[str]:
    """The measures taken of a column."""
    out = ["count"]
    if column.canonical in _ORDERED:
        out += ["min", "max"]
    if column.canonical in _SUMMED and _sum_fits(column):
        out.append("sum")
    if column.canonical in _FLOATS:
        out.append("magnitude")  # the sum of absolute values: the scale of a float sum's rounding
    return out


def _sum_fits(column: Column) -> bool:
    """Whether a table's sum fits every engine's decimal: 38 digits, with 10 to spare for the rows."""
    precision = column.mapping.precision
    return column.canonical is not C.DECIMAL or (precision is not None and precision <= MAX_SUMMED_DIGITS)


def aggregate_sql(dialect: str, relation: str, table: Table) -> str | None:
    """Every column's measures over a whole relation, in one row; None for a table without columns."""
    if not table.columns:
        return None
    inner = ", ".join(inner_items(dialect, table))
    return f"SELECT {', '.join(select_items(dialect, table))} FROM (SELECT {inner} FROM {relation}) AS r"


def read(table: Table, result: pa.Table | None) -> dict[tuple[str, str], Any]:
    """The measures from aggregate_sql's row, by (column, measure)."""
    row = result.to_pylist()[0] if result is not None and result.num_rows else {}
    return {(c.name, m): row.get(f"a{i}_{m}") for i, c in enumerate(table.columns) for m in measures(c)}


def select_items(dialect: str, table: Table) -> list[str]:
    """Aggregate SQL over the inner columns v0, v1, … (one per table column)."""
    items = []
    for i, column in enumerate(table.columns):
        v = f"v{i}"
        for measure in measures(column):
            items.append(f"{_sql(dialect, column, measure, v)} AS a{i}_{measure}")
    return items


def inner_items(dialect: str, table: Table) -> list[str]:
    """The columns' canonical values, named v0, v1, … for select_items."""
    return [f"{fp.canonical_value(dialect, c)} AS v{i}" for i, c in enumerate(table.columns)]


def _sql(dialect: str, column: Column, measure: str, v: str) -> str:
    if measure == "count":
        return f"COUNT({v})"
    if measure == "magnitude":
        return _DOUBLE_SUM[dialect].format(c=f"ABS({v})")
    if measure == "sum":
        if column.canonical is C.INT64:
            return _WIDE_SUM[dialect].format(c=v)
        return _DOUBLE_SUM[dialect].format(c=v) if column.canonical in _FLOATS else f"SUM({v})"
    ordered = _BY_CODE_POINT[dialect].format(c=v) if column.canonical is C.STRING else v
    return f"{measure.upper()}({ordered})"


def compare(
    table: Table, source: dict[tuple[str, str], Any], target: dict[tuple[str, str], Any], tolerance: float
) -> list[AggregateDifference]:
    """The measures that differ; float sums count as equal within tolerance × the sum of |x|."""
    found = []
    for column in table.columns:
        scale = max(_float(side.get((column.name, "magnitude"))) for side in (source, target))
        for measure in measures(column):
            if measure == "magnitude":
                continue
            ours, theirs = source.get((column.name, measure)), target.get((column.name, measure))
            if not _same(column, ours, theirs, tolerance * scale):
                found.append(
                    AggregateDifference(
                        table=table.name, column=column.name, measure=measure,
                        source=shown(ours), target=shown(theirs),
                    )  # fmt: skip
                )
    return found


def _float(value: Any) -> float:
    return 0.0 if value is None or math.isnan(float(value)) else float(value)


def _same(column: Column, ours: Any, theirs: Any, slack: float) -> bool:
    if ours is None or theirs is None:
        return ours is None and theirs is None
    if column.canonical in _FLOATS:
        a, b = float(ours), float(theirs)
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        return a == b or abs(a - b) <= slack
    if isinstance(ours, Decimal | int) or isinstance(theirs, Decimal | int):
        return Decimal(str(ours)) == Decimal(str(theirs))
    return bool(ours == theirs)
