"""Go-live: check every earlier gate passed, then record the target as the serving side."""

import time
from datetime import UTC, datetime

from pydantic import BaseModel, ConfigDict

from liftshift.ledger import Ledger
from liftshift.plan import Plan
from liftshift.redact import redact
from liftshift.report import GateResult, StageReport

PRECONDITIONS = ("assess", "transfer", "validate", "benchmark")
# Stages that change the target: a validation older than the newest of them proves another table.
_WRITERS = ("transfer", "delta")


class Precondition(BaseModel):
    """An earlier stage's latest verdict."""

    model_config = ConfigDict(frozen=True)

    stage: str
    report_id: int | None
    passed: bool
    at: datetime | None
    stale: str = ""  # why a passed gate no longer counts


class GoLiveReport(StageReport):
    """The go-live decision and, if taken, which side now serves."""

    serving: str
    checks: list[Precondition]

    def items(self) -> list[BaseModel]:
        """One line per precondition."""
        return list(self.checks)


def gate(report: GoLiveReport) -> GateResult:
    """Pass when every earlier stage has a report, its gate passed, and no transfer or delta came after
    the validation."""
    reasons = [_reason(c) for c in report.checks if not c.passed or c.stale]
    return GateResult(passed=not reasons, reasons=reasons)


def _reason(check: Precondition) -> str:
    if check.report_id is None:
        return f"{check.stage} has not run for this plan"
    return check.stale or f"{check.stage} gate failed"


def serving_side(ledger: Ledger, plan: Plan) -> str:
    """Which side serves now: the target after a passed go-live, else the source."""
    latest = ledger.latest_report(plan.name, "golive")
    return str(latest.body["serving"]) if latest and latest.passed else "source"


def _stale(ledger: Ledger, plan: Plan, validated: int) -> str:
    """Why a validation no longer proves the target: a transfer or delta wrote to it since."""
    for stage in _WRITERS:
        latest = ledger.latest_report(plan.name, stage)
        if latest and latest.id > validated:
            return f"the target changed after the last validation (a {stage} ran since); run validate again"
    return ""


def run(plan: Plan, ledger: Ledger) -> GoLiveReport:
    """Record the target as serving if every earlier gate passed."""
    started, t0 = datetime.now(UTC), time.perf_counter()
    checks = []
    for stage in PRECONDITIONS:
        latest = ledger.latest_report(plan.name, stage)
        checks.append(Precondition(
            stage=stage, report_id=latest.id if latest else None,
            passed=bool(latest and latest.passed), at=latest.created_at if latest else None,
            stale=_stale(ledger, plan, latest.id) if latest and stage == "validate" else "",
        ))  # fmt: skip
    draft = GoLiveReport(
        stage="golive", plan=plan.name, started_at=started, seconds=0.0,
        gate=GateResult(passed=True), serving=serving_side(ledger, plan), checks=checks,
    )  # fmt: skip
    verdict = gate(draft)
    serving = f"target {redact(plan.target.url)}" if verdict.passed else draft.serving
    return draft.model_copy(update={"gate": verdict, "serving": serving, "seconds": time.perf_counter() - t0})
