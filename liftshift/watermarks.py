"""Watermark columns: which tables delta sync follows, checked against the catalog, and their marks."""

from liftshift.connectors.base import Fingerprint, Source, Table
from liftshift.errors import PlanError
from liftshift.ledger import Ledger, Watermark
from liftshift.plan import Plan
from liftshift.types import Canonical
from liftshift.xids import snapshot_xmin

# Types whose order follows time or a counter; a watermark must be one of them.
ORDERED = (
    Canonical.INT16, Canonical.INT32, Canonical.INT64, Canonical.DECIMAL,
    Canonical.DATE, Canonical.TIMESTAMP, Canonical.TIMESTAMPTZ,
)  # fmt: skip


def watermarked(plan: Plan, tables: list[Table], strict: bool = True) -> list[tuple[Table, str]]:
    """The tables that transfer.watermarks names, with their column; PlanError if one is wrong.

    Not strict: a name missing from tables is passed over (a transfer of one wave sees only its own).
    """
    by_name = {t.name: t for t in tables}
    chosen = []
    for name, column in plan.transfer.watermarks.items():
        table = by_name.get(name)
        if table is None and not strict:
            continue
        if table is None:
            raise PlanError(
                f"transfer.watermarks names table '{name}', which is not among the plan's tables "
                f"({', '.join(sorted(by_name)) or 'none'}); correct or remove it"
            )
        _check(table, column)
        chosen.append((table, column))
    return chosen


def _check(table: Table, column: str) -> None:
    """Refuse a watermark column that does not exist or cannot order changes, or a table without a key."""
    names = [c.name for c in table.columns]
    where = f"transfer.watermarks.{table.name}"
    if column not in names:
        raise PlanError(
            f"{where}: table '{table.name}' has no column '{column}' (columns: {', '.join(names)}); "
            "name the column that is set on every insert and update"
        )
    if table.column(column).canonical not in ORDERED:
        raise PlanError(
            f"{where}: column '{column}' is {table.column(column).source_type}; a watermark must be "
            "an integer, numeric, date or timestamp column"
        )
    if not table.primary_key:
        raise PlanError(
            f"{where}: table '{table.name}' has no primary key, so changed rows cannot be matched in "
            "the target; add a primary key or remove the table from transfer.watermarks"
        )


def remember_marks(plan: Plan, ledger: Ledger, source: Source, tables: list[Table]) -> None:
    """Before a table's full copy starts, record its watermark's high-water mark.

    Taken before any chunk is read, so every change after it has a watermark at or above it
    (a delta re-reads rows at the mark itself: upserts make that harmless). A table whose copy
    has begun already keeps its mark, or has none if the plan named its watermark only later.
    """
    for table, column in watermarked(plan, tables, strict=False):
        if not ledger.chunk_records(plan.name, table.name):
            ledger.save_watermark(plan.name, table.name, current_mark(source, table, column))


def current_mark(source: Source, table: Table, column: str) -> Watermark:
    """The column's largest value now, a fingerprint of the rows holding it, and the snapshot's xmin:
    a delta reads the rows written since as well, whatever their watermark (liftshift.xids)."""
    mark, xmin = source.max_value(table, column), snapshot_xmin(source)
    if mark is None:
        return Watermark(column, None, snapshot_xmin=xmin)
    return Watermark(column, mark, _text(source.fingerprint_at(table, column, mark)), xmin)


def _text(found: Fingerprint) -> str:
    return f"{found.rows}:{found.checksum}"


def rows_at_mark_unchanged(source: Source, table: Table, stored: Watermark) -> bool:
    """Whether the rows at the stored mark are the very rows there were when it was taken.

    If so, a delta can read strictly above the mark; if not (a row committed late with the same
    value, or one updated without moving its watermark), it reads the mark's rows again.
    """
    if stored.mark is None or stored.at_mark is None:
        return False
    return _text(source.fingerprint_at(table, stored.column, stored.mark)) == stored.at_mark
