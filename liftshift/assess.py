"""Assess: inventory, type verdicts, values the target cannot hold, estimates, advice, waves, suites."""

import fnmatch
import os
import time
from collections import Counter
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from liftshift import inventory
from liftshift.advice import advise, pricing_note, workload_usage
from liftshift.assess_report import (
    AssessReport,
    CatalogFacts,
    ColumnAssessment,
    TableAssessment,
    ValueProblem,
    Wave,
)
from liftshift.connectors import opened
from liftshift.connectors.base import Column, Table, Target
from liftshift.connectors.postgres import PostgresSource
from liftshift.errors import PlanError
from liftshift.estimate import estimate
from liftshift.ledger import Ledger
from liftshift.names import name_problems
from liftshift.plan import Plan
from liftshift.profile import profile
from liftshift.report import GateResult
from liftshift.settings import settings
from liftshift.suites import bootstrap
from liftshift.types import Verdict, target_mapping
from liftshift.waves import Edge, WavePlan, plan_waves


@dataclass(frozen=True)
class _Assessed:
    """One table's findings before waves are known."""

    line: TableAssessment
    columns: list[ColumnAssessment]
    problems: list[ValueProblem]
    suite_written: bool


def run(plan: Plan, ledger: Ledger) -> AssessReport:
    """Assess every selected table of the plan's source against its target."""
    started, t0 = datetime.now(UTC), time.perf_counter()
    with opened(plan) as (source, target):
        if not isinstance(source, PostgresSource):
            raise PlanError("assess reads PostgreSQL catalogs only; source.url must be postgresql://…")
        tables = source.catalog(plan.tables)
        columns = {t.name: {c.name for c in t.columns} for t in tables}
        usage = workload_usage(plan.workload_dir(), columns)
        names = name_problems(tables, target.dialect)
        found = [_assess_table(plan, source, target, t, usage[t.name], names.get(t.name, [])) for t in tables]
        with inventory.readable(f"the catalog of schema {source.schema}", _user(source)):
            views = inventory.views(source.conn, source.schema)
            sequences = inventory.sequences(source.conn, source.schema)
            columnless = source.columnless(plan.tables)
    left_out = [
        f"{name}: has no columns, so it is left out (a target table needs one); give it a column in the "
        "source to move it"
        for name in columnless
    ]
    waves = plan_waves(
        {f.line.table: f.line.total_bytes for f in found}, _edges(found), plan.assess.max_wave_bytes
    )
    draft = _report(plan, target.dialect, found, waves, started, time.perf_counter() - t0)
    report = draft.model_copy(update={"views": views, "sequences": sequences, "left_out": left_out})
    return report.model_copy(update={"gate": gate(report)})


def _user(source: PostgresSource) -> str:
    return str(source.conn.info.user)


def _assess_table(
    plan: Plan, source: PostgresSource, target: Target, table: Table, usage: Counter[str], names: list[str]
) -> _Assessed:
    """Inventory, profile, column verdicts, estimate, advice and suite of one table; names: why the target
    cannot take its name or a column's (no sample is timed in the target then)."""
    with inventory.readable(f"table {table.ref}", _user(source)):
        found = inventory.describe(source.conn, table)
        movable = replace(table, columns=tuple(c for c in table.columns if _movable(c, target.dialect)))
        profiled = profile(source.conn, source.relation(table), movable, target.dialect)
    workers = settings().dask_workers or os.cpu_count() or 1
    # Columns holding values the target cannot take are left out of the timed sample.
    fit = tuple(c for c in movable.columns if c.name not in profiled.problems)
    sampled = replace(movable, columns=fit)
    timed = sampled.columns and not names
    cost = estimate(plan, source, target, sampled, profiled.rows, workers) if timed else None
    columns = [
        _column(plan, table, c.name, found.defaults.get(c.name), target.dialect) for c in table.columns
    ]
    problems = [
        ValueProblem(table=table.name, column=name, problem=what, rows=rows)
        for name, (what, rows) in profiled.problems.items()
    ]
    bq_bytes = cost.bigquery_bytes if cost else 0
    facts = found.model_dump(include=set(CatalogFacts.model_fields))
    line = TableAssessment(
        **facts, table=table.name, rows=profiled.rows,
        total_bytes=found.heap_bytes + found.toast_bytes + found.index_bytes, columns=len(table.columns),
        primary_key=list(table.primary_key),
        hot=found.modified_since_analyze + found.updates + found.deletes >= plan.assess.hot_writes,
        blockers=sum(c.verdict is Verdict.BLOCKER for c in columns) + len(problems) + len(names),
        names=[f"{table.name}: {n}" for n in names],
        lossy=sum(c.verdict is Verdict.LOSSY for c in columns), wave=0, estimate=cost,
        advice=advise(movable, found, profiled, bq_bytes, usage, plan.assess.advise_bytes)
        if target.dialect == "bigquery" else None,
    )  # fmt: skip
    written = bootstrap(plan.expectations_dir(), movable, found.unique_keys, profiled)
    return _Assessed(line, columns, problems, written)


def _movable(column: Column, dialect: str) -> bool:
    """Whether the column has a type in this target (blockers are listed, not moved or sampled)."""
    return target_mapping(column.mapping, dialect).verdict is not Verdict.BLOCKER


def _column(plan: Plan, table: Table, name: str, default: str | None, dialect: str) -> ColumnAssessment:
    column = table.column(name)
    mapped = target_mapping(column.mapping, dialect)
    accepted = mapped.verdict is Verdict.LOSSY and plan.accepts(table.name, name)
    return ColumnAssessment(
        table=table.name, column=name, source_type=column.source_type, nullable=column.nullable,
        default=default, target_type=mapped.type, verdict=mapped.verdict, note=mapped.note, accepted=accepted,
    )  # fmt: skip


def _edges(found: list[_Assessed]) -> list[Edge]:
    return [
        Edge(child=f.line.table, parent=fk.references, name=fk.name, nullable=fk.nullable)
        for f in found
        for fk in f.line.foreign_keys
    ]


def _report(
    plan: Plan, dialect: str, found: list[_Assessed], waves: WavePlan, started: datetime, seconds: float
) -> AssessReport:
    lines = [f.line.model_copy(update={"wave": waves.wave_of(f.line.table)}) for f in found]
    by_name = {line.table: line for line in lines}
    columns = [c for f in found for c in f.columns]
    lossy = [f"{c.table}.{c.column}" for c in columns if c.verdict is Verdict.LOSSY]
    bq_bytes = sum(t.estimate.bigquery_bytes for t in lines if t.estimate)
    return AssessReport(
        stage="assess", plan=plan.name, started_at=started, seconds=seconds,
        gate=GateResult(passed=True), rows=sum(t.rows for t in lines), tables=lines, columns=columns,
        value_problems=[p for f in found for p in f.problems],
        waves=[_wave(i, names, by_name) for i, names in enumerate(waves.waves, 1)], cycles=waves.broken,
        suites_written=[f.line.table for f in found if f.suite_written],
        suites_kept=[f.line.table for f in found if not f.suite_written],
        unused_accepts=[p for p in plan.accept if not fnmatch.filter(lossy, p)],
        estimated_seconds=sum(t.estimate.seconds for t in lines if t.estimate), bigquery_bytes=bq_bytes,
        storage_usd_month=sum(t.estimate.storage_usd_month for t in lines if t.estimate),
        validation_usd=sum(t.estimate.validation_usd for t in lines if t.estimate),
        # partitioning, clustering and prices are BigQuery's
        pricing_note=pricing_note(bq_bytes, plan.prices) if dialect == "bigquery" else "", target=dialect,
    )  # fmt: skip


def _wave(number: int, names: list[str], by_name: dict[str, TableAssessment]) -> Wave:
    members = [by_name[n] for n in names]
    return Wave(
        number=number, tables=names, bytes=sum(t.total_bytes for t in members),
        rows=sum(t.rows for t in members),
        estimated_seconds=sum(t.estimate.seconds for t in members if t.estimate),
    )  # fmt: skip


def gate(report: AssessReport) -> GateResult:
    """Fail on any blocker (in the types or in the data) and on lossy columns the plan does not accept."""
    reasons = [n for t in report.tables for n in t.names]
    reasons += [
        f"{c.table}.{c.column}: {c.source_type} — {c.note}"
        for c in report.columns
        if c.verdict is Verdict.BLOCKER
    ]
    reasons += [
        f"{p.table}.{p.column}: {p.rows:,} rows hold {p.problem}, which the target cannot hold; "
        "correct those rows in the source, or leave the table out of the plan's tables"
        for p in report.value_problems
    ]
    reasons += [
        f"{c.table}.{c.column}: {c.source_type} → {c.target_type} is lossy ({c.note}); if that is "
        f"acceptable, add '{c.table}.{c.column}' under accept: in the plan"
        for c in report.columns
        if c.verdict is Verdict.LOSSY and not c.accepted
    ]
    return GateResult(passed=not reasons, reasons=reasons)
