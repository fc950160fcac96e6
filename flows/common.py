"""What every stage flow shares: run a stage as a task, publish its report as an artifact."""

import re
from typing import Any

from prefect import task
from prefect.artifacts import create_markdown_artifact

from flows.progress import ArtifactProgress
from liftshift import lifecycle
from liftshift.plan import load_plan
from liftshift.report import StageReport, to_markdown


class GateFailed(Exception):
    """A stage's gate failed; the message lists its reasons."""

    def __init__(self, stage: str, reasons: list[str]) -> None:
        super().__init__(f"{stage} gate failed: " + "; ".join(reasons))
        self.stage = stage
        self.reasons = reasons


def artifact_key(plan: str, stage: str) -> str:
    """Prefect artifact keys allow lower-case letters, digits and dashes."""
    return re.sub(r"[^a-z0-9-]+", "-", f"{plan}-{stage}".lower())


@task(task_run_name="{stage}")
def stage_task(stage: str, plan: str, wave: int | None = None, delta: bool = False) -> dict[str, Any]:
    """Run one stage of the plan at path `plan`; its report becomes a Markdown artifact.

    A transfer (or delta) also keeps a progress artifact up to date while it runs.
    """
    loaded = load_plan(plan)
    if stage != "transfer":
        return _publish(lifecycle.run_stage(stage, loaded).report)
    kind = "delta" if delta else "transfer"
    progress = ArtifactProgress(
        artifact_key(loaded.name, f"{kind}-progress"), f"liftshift {kind} of {loaded.name}: rows done"
    )
    return _publish(lifecycle.run_stage(stage, loaded, wave=wave, delta=delta, progress=progress).report)


def _publish(report: StageReport) -> dict[str, Any]:
    """Show a report as a Markdown artifact; returns it as JSON."""
    stage = report.stage
    create_markdown_artifact(
        markdown=to_markdown(report),
        key=artifact_key(report.plan, stage),
        description=f"liftshift {stage} report for {report.plan}",
    )
    return report.model_dump(mode="json")


def run_gated(stage: str, plan: str, wave: int | None = None, delta: bool = False) -> dict[str, Any]:
    """Run a stage and fail the flow with the gate's reasons when it does not pass."""
    report = stage_task(stage, plan, wave, delta)
    if not report["gate"]["passed"]:
        raise GateFailed(stage, report["gate"]["reasons"])
    return report
