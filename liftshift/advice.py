"""Target design advice: a partitioning column and clustering keys per large table, and pricing."""

import math
from collections import Counter, defaultdict
from datetime import date, datetime
from pathlib import Path

import sqlglot
from sqlglot import exp

from liftshift.assess_report import Advice
from liftshift.connectors.base import Table
from liftshift.inventory import TableInventory
from liftshift.plan import PriceSpec
from liftshift.profile import TableProfile
from liftshift.types import Canonical as C

_TIME = (C.DATE, C.TIMESTAMP, C.TIMESTAMPTZ)
_UNCLUSTERABLE = (C.FLOAT32, C.FLOAT64, C.BYTES, C.JSON, C.TIME)  # BigQuery cannot cluster on these
_GRAINS = (("DAY", 1.0), ("MONTH", 30.44), ("YEAR", 365.25))
MAX_PARTITIONS = 4000  # BigQuery allows 10,000; leave room to grow
MAX_CLUSTER_KEYS = 4
HOURS_A_MONTH = 730
TIB = 2**40


def workload_usage(folder: Path, columns: dict[str, set[str]]) -> dict[str, Counter[str]]:
    """How often the workload filters or joins on each table's columns.

    Files sqlglot cannot parse are skipped: the advice is a hint, not a gate.
    """
    usage: dict[str, Counter[str]] = defaultdict(Counter)
    for path in sorted(folder.glob("*.sql")) if folder.is_dir() else []:
        try:
            statements = sqlglot.parse(path.read_text(), read="postgres")
        except sqlglot.errors.ParseError:
            continue
        for statement in filter(None, statements):
            aliases = {t.alias_or_name: t.name for t in statement.find_all(exp.Table)}
            for clause in _filters_and_joins(statement):
                for col in clause.find_all(exp.Column):
                    owner = aliases.get(col.table) if col.table else _owner(col.name, aliases, columns)
                    if owner in columns and col.name in columns[owner]:
                        usage[owner][col.name] += 1
    return usage


def _filters_and_joins(statement: exp.Expr) -> list[exp.Expr]:
    joins = [j.args.get("on") for j in statement.find_all(exp.Join)]
    return [*statement.find_all(exp.Where), *(on for on in joins if on is not None)]


def _owner(column: str, aliases: dict[str, str], columns: dict[str, set[str]]) -> str | None:
    return next((t for t in aliases.values() if column in columns.get(t, ())), None)


def advise(
    table: Table, inventory: TableInventory, profile: TableProfile, bq_bytes: int,
    usage: Counter[str], min_bytes: int,
) -> Advice | None:  # fmt: skip
    """Partitioning and clustering for a table of at least min_bytes in BigQuery, else None."""
    if bq_bytes < min_bytes:
        return None
    column, reason = _partitioning(table, inventory, profile, bq_bytes, usage, min_bytes)
    keys, why = _clustering(table, inventory, usage, exclude=column)
    return Advice(partition_by=column, partition_reason=reason, cluster_by=keys, cluster_reason=why)


def _partitioning(
    table: Table, inventory: TableInventory, profile: TableProfile, bq_bytes: int,
    usage: Counter[str], min_bytes: int,
) -> tuple[str | None, str]:  # fmt: skip
    """A time column and grain whose partitions average at least min_bytes, with the reason."""
    candidates = [
        c for c in table.columns
        if c.mapping.canonical in _TIME and not c.mapping.cast
        and profile.columns.get(c.name) and profile.columns[c.name].maximum is not None
    ]  # fmt: skip
    if not candidates:
        return None, "no date or timestamp column to partition on: cluster only"
    source_key = inventory.partition_key or ""
    best = max(
        candidates,
        key=lambda c: (f"({c.name})" in source_key, usage[c.name], not c.nullable, c.name.endswith("_at")),
    )
    span = _days(profile.columns[best.name].minimum, profile.columns[best.name].maximum)
    for grain, days in _GRAINS:
        parts = max(1, math.ceil(span / days))
        average = bq_bytes / parts
        if parts <= MAX_PARTITIONS and average >= min_bytes:
            why = _partition_why(best.name, source_key, usage[best.name], not best.nullable)
            return f"{grain}({best.name})", f"{why}; {parts:,} partitions of ~{_gib(average)} each"
    return None, (
        f"{best.name} spans {span:,.0f} days: even yearly partitions would average under "
        f"{_gib(min_bytes)}, so cluster instead"
    )


def _partition_why(column: str, source_key: str, uses: int, not_null: bool) -> str:
    if f"({column})" in source_key:
        return f"matches the source's partitioning {source_key}"
    if uses:
        return f"the workload filters or joins on {column} {uses}×"
    return f"{column} is {'a NOT NULL' if not_null else 'the'} time column"


def _clustering(
    table: Table, inventory: TableInventory, usage: Counter[str], exclude: str | None
) -> tuple[list[str], str]:
    """Up to four clustering keys: workload filters first, then foreign keys, then the primary key."""
    ranked: list[tuple[str, str]] = [(c, f"workload uses it {n}×") for c, n in usage.most_common()]
    ranked += [(fk.columns[0], f"joins to {fk.references}") for fk in inventory.foreign_keys]
    if table.primary_key:
        ranked.append((table.primary_key[0], "primary key: point lookups and transfer's range checks"))
    keys: dict[str, str] = {}
    movable = {c.name: c for c in table.columns}
    for column, why in ranked:
        canonical = movable[column].mapping.canonical if column in movable else None
        usable = canonical is not None and canonical not in _UNCLUSTERABLE
        if usable and column not in keys and (exclude is None or f"({column})" not in exclude):
            keys[column] = why
    chosen = list(keys)[:MAX_CLUSTER_KEYS]
    return chosen, "; ".join(f"{c}: {keys[c]}" for c in chosen) or "no column suits clustering"


def pricing_note(bq_bytes: int, prices: PriceSpec) -> str:
    """On-demand versus capacity pricing for an estate of this size."""
    scan = bq_bytes / TIB * prices.query_tib
    capacity = prices.baseline_slots * prices.slot_hour * HOURS_A_MONTH
    if scan <= 0:
        return "the estate is empty: on-demand pricing costs nothing until data arrives"
    breakeven = capacity / scan
    verdict = "stay on demand" if breakeven > 1000 else "consider capacity (editions) pricing"
    return (
        f"A full scan of the estate ({_gib(bq_bytes)}) costs ${scan:,.4f} on demand "
        f"(${prices.query_tib}/TiB); {prices.baseline_slots} slots of capacity cost "
        f"${capacity:,.0f}/month, which pays off above {breakeven:,.0f} full scans a month: {verdict}."
    )


def _days(low: date | datetime, high: date | datetime) -> float:
    both = isinstance(low, datetime) and isinstance(high, datetime)
    span = (high - low) if both else (_day(high) - _day(low))  # type: ignore[operator]
    return max(1.0, span.total_seconds() / 86400 + 1)


def _day(value: date | datetime) -> date:
    return value.date() if isinstance(value, datetime) else value


def _gib(value: float) -> str:
    return f"{value / 2**30:,.2f} GiB"
