"""Benchmark: replay the workload on source and target, check the results agree, time both."""

import statistics
import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import sqlglot
from pydantic import BaseModel, ConfigDict

from liftshift.connectors import opened
from liftshift.connectors.base import Source, Target
from liftshift.errors import PlanError
from liftshift.ledger import Ledger
from liftshift.plan import Plan
from liftshift.redact import redact
from liftshift.report import GateResult, StageReport

REPEATS = 3


class QueryResult(BaseModel):
    """One workload query on both sides."""

    model_config = ConfigDict(frozen=True)

    query: str
    rows: int
    equal: bool
    source_ms: float
    target_ms: float
    ratio: float
    detail: str = ""
    error: str = ""  # the engine's message when a side cannot run the query


class BenchmarkReport(StageReport):
    """The benchmark: one line per workload query."""

    queries: list[QueryResult]

    def items(self) -> list[BaseModel]:
        """One line per query."""
        return list(self.queries)


def workload(plan: Plan) -> list[Path]:
    """The plan's workload files, in name order."""
    folder = plan.workload_dir()
    files = sorted(folder.glob("*.sql")) if folder.is_dir() else []
    if not files:
        raise PlanError(
            f"no workload: put .sql files (queries your applications run) in {folder}, or set 'workload' "
            "in the plan to their folder; the benchmark compares their results on both sides, and go-live "
            "needs it"
        )
    return files


def translate(sql: str, dialect: str) -> str:
    """Translate PostgreSQL SQL into the target's dialect with sqlglot."""
    if dialect == "postgres":
        return sql
    return sqlglot.transpile(sql, read="postgres", write=dialect)[0]


def canonical_rows(result: pa.Table) -> list[tuple[Any, ...]]:
    """A result's rows in a form that compares equal across engines, sorted."""
    rows = [tuple(_value(v) for v in row.values()) for row in result.to_pylist()]
    return sorted(rows, key=repr)


def _value(value: Any) -> Any:
    if isinstance(value, Decimal):
        return format(value.normalize(), "f") if value == value else "NaN"
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int | float):
        return format(Decimal(value).normalize(), "f") if float(value).is_integer() else value
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat() if value.tzinfo else value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return value


def _timed(run: Callable[[str], pa.Table], sql: str) -> tuple[pa.Table, float]:
    timings, result = [], None
    for _ in range(REPEATS):
        t0 = time.perf_counter()
        result = run(sql)
        timings.append((time.perf_counter() - t0) * 1000)
    assert result is not None
    return result, statistics.median(timings)


def gate(report: BenchmarkReport, max_ratio: float | None) -> GateResult:
    """Pass when every query gives equal results (and, if set, stays under the latency ratio)."""
    failed = [q for q in report.queries if not q.equal]
    reasons = [f"{q.query}: {q.error or f'results differ ({q.detail})'}" for q in failed]
    if max_ratio is not None:
        reasons += [
            f"{q.query}: target {q.ratio:.1f}× slower than source (limit {max_ratio}×)"
            for q in report.queries
            if q.ratio > max_ratio
        ]
    return GateResult(passed=not reasons, reasons=reasons)


def run(plan: Plan, ledger: Ledger) -> BenchmarkReport:
    """Run each workload query on both sides."""
    started, t0 = datetime.now(UTC), time.perf_counter()
    files = workload(plan)
    with opened(plan) as (source, target):
        lines = [_compare(path.name, path.read_text(), source, target) for path in files]
    draft = BenchmarkReport(
        stage="benchmark", plan=plan.name, started_at=started, seconds=time.perf_counter() - t0,
        gate=GateResult(passed=True), rows=sum(q.rows for q in lines), queries=lines,
    )  # fmt: skip
    return draft.model_copy(update={"gate": gate(draft, plan.gates.max_latency_ratio)})


def _compare(name: str, sql: str, source: Source, target: Target) -> QueryResult:
    """One query on both sides; a side that cannot run it fails the query alone, saying why."""
    try:
        src, src_ms = _timed(source.query, sql)
    except Exception as exc:  # noqa: BLE001 - the engine's message is the report
        return _failed(name, f"the source cannot run it: {exc}")
    try:
        tgt, tgt_ms = _timed(target.query, translate(sql, target.dialect))
    except Exception as exc:  # noqa: BLE001
        return _failed(name, f"the target cannot run it (translated to {target.dialect} by sqlglot): {exc}")
    a, b = canonical_rows(src), canonical_rows(tgt)
    detail = "" if a == b else (
        f"{len(a)} source rows, {len(b)} target rows; first differing: {_first_diff(a, b)}"
    )
    return QueryResult(
        query=name, rows=len(a), equal=a == b, source_ms=round(src_ms, 2), target_ms=round(tgt_ms, 2),
        ratio=round(tgt_ms / max(src_ms, 1e-3), 2), detail=detail,
    )  # fmt: skip


def _failed(name: str, error: str) -> QueryResult:
    text = redact(" ".join(error.split()))[:500]  # one line: engines' messages run over several
    return QueryResult(query=name, rows=0, equal=False, source_ms=0, target_ms=0, ratio=0, error=text)


def _first_diff(a: list[tuple[Any, ...]], b: list[tuple[Any, ...]]) -> str:
    for x, y in zip(a, b, strict=False):
        if x != y:
            return f"{x!r} vs {y!r}"[:300]
    return "extra rows"
