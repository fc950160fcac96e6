"""The validate stage as a Prefect flow."""

from typing import Any

from prefect import flow

from flows.common import run_gated


@flow(name="liftshift-validate", log_prints=True)
def validate(plan: str = "migration.yaml") -> dict[str, Any]:
    """Run the validate stage of a plan."""
    return run_gated("validate", plan)
