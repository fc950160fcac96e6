"""The whole lifecycle as one Prefect flow, stopping at the first failed gate."""

from typing import Any

from prefect import flow

from flows.common import run_gated
from liftshift.lifecycle import STAGES


@flow(name="liftshift-lifecycle", log_prints=True)
def lifecycle(plan: str = "migration.yaml") -> list[dict[str, Any]]:
    """Run assess → transfer → validate → benchmark → go-live → monitor for a plan."""
    return [run_gated(stage, plan) for stage in STAGES]
