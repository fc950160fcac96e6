"""Validate: schema parity, bucketed fingerprints and column aggregates, the differing rows, GX suites."""

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from liftshift import diff
from liftshift import fingerprint as fp
from liftshift.aggregates import AggregateDifference
from liftshift.connectors import opened
from liftshift.connectors.base import Fingerprint, Source, Table, Target
from liftshift.connectors.postgres import PostgresSource
from liftshift.connectors.postgres_target import PostgresTarget
from liftshift.diff import RowDifference
from liftshift.ledger import Ledger
from liftshift.outcomes import ExpectationOutcome, failures
from liftshift.plan import Plan
from liftshift.redact import redact
from liftshift.report import GateResult, StageReport
from liftshift.schema import accepted_lossy, same_type, schema_issues


class TableValidation(BaseModel):
    """One table's comparison."""

    model_config = ConfigDict(frozen=True)

    table: str
    passed: bool
    schema_issues: list[str]
    source_rows: int
    target_rows: int
    source_checksum: str
    target_checksum: str
    differing_buckets: int = 0  # of about 4,096 (liftshift.diff)
    complete: bool = True  # every differing row was read (not only a sample of the buckets)
    accepted_lossy: list[str] = []  # columns the plan accepts as lossy: their values are not compared


class ValidateReport(StageReport):
    """The validation: one verdict per table, and each suite's expectations on both sides."""

    tables: list[TableValidation]
    differences: list[RowDifference] = []  # rows found in the differing buckets, per table
    aggregates: list[AggregateDifference] = []  # column measures that differ, per table
    expectations: list[ExpectationOutcome] = []
    fingerprint: int = fp.CANONICAL_VERSION  # the canonical text its checksums were made with

    def items(self) -> list[BaseModel]:
        """One line per table."""
        return list(self.tables)

    def html(self) -> str:
        """The self-contained HTML page of the validation."""
        from liftshift.html_validation import render_validation  # the renderer imports this module

        return render_validation(self)

    def sections(self) -> list[str]:
        """The rows that differ; the expectations that failed, then a count of those that passed."""
        lines = []
        if self.aggregates:
            lines += ["", "## Column aggregates that differ", ""]
            lines += [f"- {a.describe()}" for a in self.aggregates]
        if self.differences:
            lines += ["", "## Rows that differ", "", *[f"- {d.describe()}" for d in self.differences]]
        if not self.expectations:
            return lines
        failed = [o for o in self.expectations if not o.passed]
        lines += ["", "## Expectations", ""]
        lines += [f"- **{o.severity}** {o.describe()}" for o in failed]
        lines.append(f"- {len(self.expectations) - len(failed)} of {len(self.expectations)} passed")
        return lines


def compare_table(
    table: Table, source: Source, target: Target, tolerance: float = 1e-9,
    accepted: frozenset[str] = frozenset(),
) -> tuple[TableValidation, list[RowDifference], list[AggregateDifference]]:
    """Compare one table: schema, then counts and checksums per bucket on both sides at once. Columns
    the plan accepts as lossy (accepted) are left out of the rows' values: the target changed them."""
    found_columns = target.columns(table)
    issues = schema_issues(table, target, found_columns)
    if "table is missing in the target" in issues:
        return _verdict(table, issues, source.fingerprint(table, None), Fingerprint(0, 0), 0), [], []
    # A column missing or retyped on one side is a schema issue already; rows compare on the rest.
    present = {c.name: c for c in found_columns}
    alike = tuple(
        c for c in table.columns
        if c.name in present and same_type(target, c, present[c.name]) and c.name not in accepted
    )  # fmt: skip
    shared = replace(table, columns=alike)
    stored = target.stored(shared) if isinstance(target, PostgresTarget) else shared
    try:
        found = diff.diff_table(
            shared,
            (source.dialect, source.relation(shared), _scan(source), shared),
            (target.dialect, target.relation(shared), _scan(target), stored),
            tolerance,
        )
    except Exception as exc:  # noqa: BLE001 - one table's engine error must not lose the others
        reason = redact((str(exc).strip().splitlines() or [type(exc).__name__])[0])[:300]
        failed = [*issues, f"could not compare the rows ({type(exc).__name__}: {reason})"]
        return _verdict(table, failed, Fingerprint(0, 0), Fingerprint(0, 0), 0, False), [], []
    line = _verdict(table, issues, found.source, found.target, found.buckets, found.complete)
    line = line.model_copy(update={"accepted_lossy": sorted(accepted & present.keys())})
    return line, found.rows, found.aggregates


def _scan(side: Source | Target) -> diff.Query:
    """How to run a side's whole-table scans: PostgreSQL's may use parallel workers."""
    return side.scan if isinstance(side, PostgresSource) else side.query


def _verdict(
    table: Table, issues: list[str], src: Fingerprint, tgt: Fingerprint, buckets: int, complete: bool = True
) -> TableValidation:
    return TableValidation(
        table=table.name, passed=not issues and src == tgt, schema_issues=issues,
        source_rows=src.rows, target_rows=tgt.rows,
        source_checksum=f"{src.checksum:016x}", target_checksum=f"{tgt.checksum:016x}",
        differing_buckets=buckets, complete=complete,
    )  # fmt: skip


def gate(report: ValidateReport) -> GateResult:
    """Pass when schemas, counts and checksums agree and no error-level expectation failed.

    Column aggregates are reported, not gated: where rows agree they can only differ by the engines'
    arithmetic, and where rows differ the rows say more.
    """
    reasons = failures(report.expectations)
    for t in report.tables:
        reasons += [f"{t.table}: {issue}" for issue in t.schema_issues]
        rows = [d for d in report.differences if d.table == t.table]
        example = f"; e.g. {rows[0].describe(with_table=False)}" if rows else ""
        if t.source_rows != t.target_rows:
            counts = f"{t.source_rows:,} rows in source, {t.target_rows:,} in target"
            reasons.append(f"{t.table}: {counts}{example}")
        elif t.source_checksum != t.target_checksum:
            count = sum(d.copies for d in rows)
            capped = not t.complete or len(rows) >= diff.MAX_ROWS_REPORTED
            many = f"{'at least ' if capped else ''}{count:,} rows differ"
            differ = "1 row differs" if count == 1 and not capped else many
            reasons.append(f"{t.table}: same row count but {differ}{example}")
    return GateResult(passed=not reasons, reasons=reasons)


def expectations(
    folder: Path, tables: list[Table], source: Source, target: Target
) -> list[ExpectationOutcome]:
    """Run each table's suite (when it has one) on the source and on the target, both at once."""
    from liftshift import quality  # Great Expectations takes seconds to import: only here, not for --help

    suites = {t.name: quality.load_suite(folder, t.name) for t in tables}  # every file checked first
    checked = [(t, suite) for t in tables if (suite := suites[t.name]) is not None]

    def one_side(checks: "quality.SideChecks") -> list[ExpectationOutcome]:
        return [o for table, suite in checked for o in checks.check(table, suite)]

    # A context per side, each used by one thread: GX does not share one across threads.
    checkers = [quality.SideChecks("source", source), quality.SideChecks("target", target)]
    with ThreadPoolExecutor(max_workers=2) as pool:
        sides = [pool.submit(one_side, checks) for checks in checkers]
        return [outcome for side in sides for outcome in side.result()]


def run(plan: Plan, ledger: Ledger) -> ValidateReport:
    """Compare every selected table in source and target."""
    started, t0 = datetime.now(UTC), time.perf_counter()
    with opened(plan) as (source, target):
        tables = source.catalog(plan.tables)
        tolerance = plan.validate_.float_tolerance
        lossy = {t.name: accepted_lossy(plan, t, target.dialect) for t in tables}
        compared = [compare_table(t, source, target, tolerance, lossy[t.name]) for t in tables]
        lines = [line for line, _, _ in compared]
        present = [t for t, line in zip(tables, lines, strict=True) if line.target_rows or line.passed]
        outcomes = expectations(plan.expectations_dir(), present, source, target)
    draft = ValidateReport(
        stage="validate", plan=plan.name, started_at=started, seconds=time.perf_counter() - t0,
        gate=GateResult(passed=True), rows=sum(t.source_rows for t in lines), tables=lines,
        differences=[d for _, rows, _ in compared for d in rows],
        aggregates=[a for _, _, found in compared for a in found], expectations=outcomes,
    )  # fmt: skip
    return draft.model_copy(update={"gate": gate(draft)})
