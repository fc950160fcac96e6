"""The assess stage as a Prefect flow."""

from typing import Any

from prefect import flow

from flows.common import run_gated


@flow(name="liftshift-assess", log_prints=True)
def assess(plan: str = "migration.yaml") -> dict[str, Any]:
    """Run the assess stage of a plan."""
    return run_gated("assess", plan)
