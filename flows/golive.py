"""The golive stage as a Prefect flow."""

from typing import Any

from prefect import flow

from flows.common import run_gated


@flow(name="liftshift-golive", log_prints=True)
def golive(plan: str = "migration.yaml") -> dict[str, Any]:
    """Run the golive stage of a plan."""
    return run_gated("golive", plan)
