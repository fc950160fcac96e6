"""Helpers for notebooks that explore the ledger: load a stage's report, turn it into DataFrames.

Imports neither Prefect nor Dask's cluster: a notebook only reads the ledger.
"""

from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import pandas as pd
from pydantic import ValidationError

from liftshift.assess_report import AssessReport, TableAssessment
from liftshift.errors import PlanError
from liftshift.ledger import Ledger
from liftshift.plan import load_plan
from liftshift.report import StageReport
from liftshift.types import Verdict

if TYPE_CHECKING:
    from liftshift.validate import ValidateReport

R = TypeVar("R", bound=StageReport)


def load_report(plan_path: str | Path, stage: str = "assess") -> AssessReport:
    """The newest assessment of the plan at plan_path, read from the plan's ledger."""
    return load_stage(plan_path, stage, AssessReport)


def load_validation(plan_path: str | Path) -> "ValidateReport":
    """The newest validation of the plan at plan_path, read from the plan's ledger."""
    from liftshift.validate import ValidateReport  # validate opens connectors; assess notebooks need not

    return load_stage(plan_path, "validate", ValidateReport)


def load_stage(plan_path: str | Path, stage: str, model: type[R]) -> R:
    """The newest report of a stage of the plan at plan_path, as model."""
    plan = load_plan(plan_path)
    url = plan.ledger_url()
    first = f"run `liftshift {stage} {plan_path}` first"
    # Opening a SQLite ledger creates it; a notebook should not leave an empty one behind.
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).is_file():
        raise PlanError(f"plan '{plan.name}' has no ledger yet at {url.removeprefix('sqlite:///')}; {first}")
    ledger = Ledger(url)
    stored = ledger.latest_report(plan.name, stage)
    if stored is None:
        raise PlanError(f"plan '{plan.name}' has no {stage} report in {ledger.location()}; {first}")
    try:
        return model.model_validate(stored.body)
    except ValidationError as exc:
        raise PlanError(
            f"the latest {stage} report of plan '{plan.name}' (#{stored.id}, {stored.created_at:%Y-%m-%d}) "
            f"does not read as a {stage} report ({exc.error_count()} problems, first: "
            f"{exc.errors()[0]['msg']}); rerun `liftshift {stage} {plan_path}`"
        ) from None


def tables_frame(report: AssessReport) -> pd.DataFrame:
    """One row per table, indexed by name: wave, rows, bytes, estimate, verdict counts, advice."""
    return _indexed([_table_record(t) for t in report.tables], _TABLE_FIELDS, "table")


_TABLE_FIELDS = (
    "table", "wave", "rows", "rows_estimate", "heap_bytes", "toast_bytes", "index_bytes", "total_bytes",
    "columns", "primary_key", "foreign_keys", "partitions", "writes", "hot", "blockers", "lossy",
    "estimated_seconds", "bigquery_bytes", "storage_usd_month", "partition_by", "cluster_by",
)  # fmt: skip


def _table_record(t: TableAssessment) -> dict[str, object]:
    e, a = t.estimate, t.advice
    return {
        "table": t.table, "wave": t.wave, "rows": t.rows, "rows_estimate": t.rows_estimate,
        "heap_bytes": t.heap_bytes, "toast_bytes": t.toast_bytes, "index_bytes": t.index_bytes,
        "total_bytes": t.total_bytes, "columns": t.columns, "primary_key": ", ".join(t.primary_key),
        "foreign_keys": len(t.foreign_keys), "partitions": len(t.partitions),
        "writes": t.inserts + t.updates + t.deletes, "hot": t.hot, "blockers": t.blockers,
        "lossy": t.lossy, "estimated_seconds": e.seconds if e else None,
        "bigquery_bytes": e.bigquery_bytes if e else None,
        "storage_usd_month": e.storage_usd_month if e else None,
        "partition_by": a.partition_by if a else None,
        "cluster_by": ", ".join(a.cluster_by) if a else None,
    }  # fmt: skip


def waves_frame(report: AssessReport) -> pd.DataFrame:
    """One row per wave, indexed by its number: table count and names, rows, bytes, estimated time."""
    fields = ("wave", "table_count", "tables", "rows", "bytes", "estimated_seconds")
    records = [
        {"wave": w.number, "table_count": len(w.tables), "tables": ", ".join(w.tables), "rows": w.rows,
         "bytes": w.bytes, "estimated_seconds": w.estimated_seconds}
        for w in report.waves
    ]  # fmt: skip
    return _indexed(records, fields, "wave")


def columns_frame(report: AssessReport, verdicts: tuple[Verdict, ...] = ()) -> pd.DataFrame:
    """Column mappings, optionally only those with the given verdicts, blockers first."""
    chosen = [c for c in report.columns if not verdicts or c.verdict in verdicts]
    order = {v: i for i, v in enumerate((Verdict.BLOCKER, Verdict.LOSSY, Verdict.WIDENED, Verdict.EXACT))}
    chosen.sort(key=lambda c: (order.get(c.verdict, len(order)), c.table, c.column))
    fields = ["table", "column", "source_type", "target_type", "verdict", "accepted", "note"]
    records = [{f: getattr(c, f) for f in fields} for c in chosen]
    frame = pd.DataFrame.from_records(records, columns=fields)
    frame["verdict"] = frame["verdict"].astype(str)
    return frame


def value_problems_frame(report: AssessReport) -> pd.DataFrame:
    """Values in the source that the target cannot hold: table, column, problem, rows."""
    fields = ["table", "column", "problem", "rows"]
    records = [v.model_dump() for v in report.value_problems]
    return pd.DataFrame.from_records(records, columns=fields)


def _indexed(records: list[dict[str, object]], fields: tuple[str, ...], key: str) -> pd.DataFrame:
    # Named columns, so an empty report still gives a frame with the right shape.
    return pd.DataFrame.from_records(records, columns=list(fields)).set_index(key)


def differences_frame(report: "ValidateReport") -> pd.DataFrame:
    """One row per differing column of each differing row (one row for a missing or extra row)."""
    fields = ["table", "kind", "key", "column", "source", "target", "copies"]
    records = []
    for d in report.differences:
        key = d.key_text()
        base = {"table": d.table, "kind": d.kind, "key": key, "copies": d.copies}
        records += [{**base, "column": c.column, "source": c.source, "target": c.target} for c in d.columns]
        if not d.columns:
            records.append({**base, "column": None, "source": None, "target": None})
    return pd.DataFrame.from_records(records, columns=fields)


def validation_frame(report: "ValidateReport") -> pd.DataFrame:
    """One row per table: verdict, rows on each side, differing buckets, rows and expectations failed."""
    failed = pd.Series([o.table for o in report.expectations if not o.passed]).value_counts()
    differing = pd.Series([d.table for d in report.differences]).value_counts()
    records = [
        {"table": t.table, "passed": t.passed, "source_rows": t.source_rows, "target_rows": t.target_rows,
         "differing_buckets": t.differing_buckets, "rows_differing": int(differing.get(t.table, 0)),
         "expectations_failed": int(failed.get(t.table, 0))}
        for t in report.tables
    ]  # fmt: skip
    fields = ("table", "passed", "source_rows", "target_rows", "differing_buckets", "rows_differing",
              "expectations_failed")  # fmt: skip
    return _indexed(records, fields, "table")
