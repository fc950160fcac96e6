"""The whole lifecycle as one Prefect flow, stopping at the first failed gate."""

from typing import Any

from prefect import flow

from flows.common import run_gated
from liftshift.lifecycle import STAGES, preflight
from liftshift.plan import load_plan


@flow(name="liftshift-lifecycle", log_prints=True)
def lifecycle(plan: str = "migration.yaml") -> list[dict[str, Any]]:
    """Run assess → transfer → validate → benchmark → go-live → monitor for a plan."""
    preflight(load_plan(plan))
    return [run_gated(stage, plan) for stage in STAGES]
