"""Monitor: compare the target's row counts and fingerprints with the last validation."""

import time
from dataclasses import replace
from datetime import UTC, datetime

from pydantic import BaseModel, ConfigDict

from liftshift import fingerprint as fp
from liftshift.connectors import opened
from liftshift.errors import PlanError
from liftshift.ledger import Ledger
from liftshift.plan import Plan
from liftshift.report import GateResult, StageReport


class TableDrift(BaseModel):
    """One table now, against what validation proved."""

    model_config = ConfigDict(frozen=True)

    table: str
    validated_rows: int
    rows: int
    validated_checksum: str
    checksum: str
    drifted: bool


class MonitorReport(StageReport):
    """The monitor's look at the target."""

    validation_id: int
    tables: list[TableDrift]

    def items(self) -> list[BaseModel]:
        """One line per table."""
        return list(self.tables)


def gate(report: MonitorReport) -> GateResult:
    """Pass when no table drifted from its validated state."""
    reasons = [
        f"{t.table}: {t.validated_rows:,} rows validated, {t.rows:,} now"
        if t.rows != t.validated_rows
        else f"{t.table}: contents changed since validation (checksum differs)"
        for t in report.tables
        if t.drifted
    ]
    return GateResult(passed=not reasons, reasons=reasons)


def run(plan: Plan, ledger: Ledger) -> MonitorReport:
    """Fingerprint every validated table in the target and compare."""
    started, t0 = datetime.now(UTC), time.perf_counter()
    validation = ledger.latest_report(plan.name, "validate")
    if validation is None:
        raise PlanError(f"plan '{plan.name}' has no validation yet; run validate first")
    if validation.body.get("fingerprint", 1) != fp.CANONICAL_VERSION:  # reports before it was stored: 1
        raise PlanError(
            f"the latest validation of plan '{plan.name}' made its checksums with an older liftshift, "
            "whose fingerprints this one cannot reproduce; run validate again, then monitor"
        )
    validated = {t["table"]: t for t in validation.body["tables"]}
    with opened(plan) as (source, target):
        tables = [t for t in source.catalog(plan.tables) if t.name in validated]
        lines = []
        for table in tables:
            then = validated[table.name]
            # The columns validate compared: an accepted lossy column's values were left out.
            left_out = set(then.get("accepted_lossy", []))
            compared = replace(table, columns=tuple(c for c in table.columns if c.name not in left_out))
            now = target.fingerprint(compared, None)
            checksum = f"{now.checksum:016x}"
            lines.append(TableDrift(
                table=table.name, validated_rows=then["target_rows"], rows=now.rows,
                validated_checksum=then["target_checksum"], checksum=checksum,
                drifted=now.rows != then["target_rows"] or checksum != then["target_checksum"],
            ))  # fmt: skip
    draft = MonitorReport(
        stage="monitor", plan=plan.name, started_at=started, seconds=time.perf_counter() - t0,
        gate=GateResult(passed=True), rows=sum(t.rows for t in lines),
        validation_id=validation.id, tables=lines,
    )  # fmt: skip
    return draft.model_copy(update={"gate": gate(draft)})
