"""Assess: inventory of the selected tables and the type mapping of every column."""

import time
from datetime import UTC, datetime

from pydantic import BaseModel, ConfigDict

from liftshift.connectors import open_source
from liftshift.connectors.base import Column, Table
from liftshift.ledger import Ledger
from liftshift.plan import Plan
from liftshift.report import GateResult, StageReport
from liftshift.types import Verdict, bigquery_type, duckdb_type


class ColumnAssessment(BaseModel):
    """Where one column lands and how faithfully."""

    model_config = ConfigDict(frozen=True)

    table: str
    column: str
    source_type: str
    target_type: str
    verdict: Verdict
    note: str


class TableAssessment(BaseModel):
    """One table's inventory line."""

    model_config = ConfigDict(frozen=True)

    table: str
    rows_estimate: int
    bytes: int
    columns: int
    primary_key: list[str]
    references: list[str]
    blockers: int


class AssessReport(StageReport):
    """The assessment: tables, and the mapping of each column."""

    tables: list[TableAssessment]
    columns: list[ColumnAssessment]

    def items(self) -> list[BaseModel]:
        """One line per table."""
        return list(self.tables)


def target_type(target_url: str, column: Column) -> str:
    """The type a column gets in the plan's target, or '-' when it has no mapping."""
    m = column.mapping
    if m.canonical is None:
        return "-"
    if target_url.startswith("bigquery://"):
        return bigquery_type(m.canonical, m.precision, m.scale)
    if target_url.startswith("duckdb://"):
        return duckdb_type(m.canonical, m.precision, m.scale)
    return column.source_type


def gate(report: AssessReport) -> GateResult:
    """Pass when every column has a mapping."""
    reasons = [
        f"{c.table}.{c.column}: {c.source_type} — {c.note}"
        for c in report.columns
        if c.verdict is Verdict.BLOCKER
    ]
    return GateResult(passed=not reasons, reasons=reasons)


def assess_tables(plan: Plan, tables: list[Table], started: datetime, seconds: float) -> AssessReport:
    """Build the assessment report of catalogued tables."""
    columns = [
        ColumnAssessment(
            table=t.name, column=c.name, source_type=c.source_type,
            target_type=target_type(plan.target.url, c), verdict=c.mapping.verdict,
            note=c.mapping.note,
        )
        for t in tables
        for c in t.columns
    ]  # fmt: skip
    lines = [
        TableAssessment(
            table=t.name, rows_estimate=t.row_estimate, bytes=t.total_bytes,
            columns=len(t.columns), primary_key=list(t.primary_key),
            references=list(t.foreign_keys),
            blockers=sum(c.mapping.verdict is Verdict.BLOCKER for c in t.columns),
        )
        for t in tables
    ]  # fmt: skip
    draft = AssessReport(
        stage="assess", plan=plan.name, started_at=started, seconds=seconds,
        gate=GateResult(passed=True), rows=sum(t.row_estimate for t in tables),
        tables=lines, columns=columns,
    )  # fmt: skip
    return draft.model_copy(update={"gate": gate(draft)})


def run(plan: Plan, ledger: Ledger) -> AssessReport:
    """Catalogue the plan's tables in the source and judge every column's mapping."""
    started, t0 = datetime.now(UTC), time.perf_counter()
    source = open_source(plan)
    try:
        tables = source.catalog(plan.tables)
    finally:
        source.close()
    return assess_tables(plan, tables, started, time.perf_counter() - t0)
