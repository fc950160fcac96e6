"""The monitor stage as a Prefect flow."""

from typing import Any

from prefect import flow

from flows.common import run_gated


@flow(name="liftshift-monitor", log_prints=True)
def monitor(plan: str = "migration.yaml") -> dict[str, Any]:
    """Run the monitor stage of a plan."""
    return run_gated("monitor", plan)
