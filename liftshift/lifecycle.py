"""The stages in order, and running one or all of them against the ledger."""

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from liftshift import assess, benchmark, cutover, monitor, report, transfer, validate
from liftshift import delta as delta_sync
from liftshift.errors import PlanError
from liftshift.ledger import Ledger
from liftshift.plan import Plan
from liftshift.report import StageReport

StageFn = Callable[[Plan, Ledger], StageReport]

STAGES: dict[str, StageFn] = {
    "assess": assess.run,
    "transfer": transfer.run,
    "validate": validate.run,
    "benchmark": benchmark.run,
    "golive": cutover.run,
    "monitor": monitor.run,
}


@dataclass(frozen=True)
class StageOutcome:
    """A stage's report and the Markdown file it was written to."""

    report: StageReport
    path: Path


def run_stage(
    name: str,
    plan: Plan,
    ledger: Ledger | None = None,
    progress: transfer.Progress | None = None,
    wave: int | None = None,
    delta: bool = False,
) -> StageOutcome:
    """Run one stage and record its report in the ledger (transfer may move a wave, or a delta)."""
    if delta and wave is not None:
        raise PlanError("a delta syncs every table of transfer.watermarks: give --delta or --wave, not both")
    ledger = ledger or Ledger(plan.ledger_url())
    if name == "transfer" and delta:
        result: StageReport = delta_sync.run(plan, ledger, progress)
    elif name == "transfer":
        result = transfer.run(plan, ledger, progress, wave)
    else:
        result = STAGES[name](plan, ledger)
    return StageOutcome(result, report.save(ledger, result, plan.state_dir()))


def run_all(
    plan: Plan,
    ledger: Ledger | None = None,
    progress: transfer.Progress | None = None,
    announce: Callable[[str], None] | None = None,
) -> list[StageOutcome]:
    """Run every stage in order, stopping after the first whose gate fails."""
    preflight(plan)
    ledger = ledger or Ledger(plan.ledger_url())
    outcomes = []
    for name in STAGES:
        if announce:
            announce(name)
        outcome = run_stage(name, plan, ledger, progress)
        outcomes.append(outcome)
        if not outcome.report.gate.passed:
            break
    return outcomes


def preflight(plan: Plan) -> None:
    """Refuse a whole run that would stop half-way for want of input: the benchmark, fourth of six
    stages, needs the workload, and go-live needs the benchmark."""
    benchmark.workload(plan)
