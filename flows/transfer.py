"""The transfer stage as a Prefect flow."""

from typing import Any

from prefect import flow

from flows.common import run_gated


@flow(name="liftshift-transfer", log_prints=True)
def transfer(plan: str = "migration.yaml", wave: int | None = None, delta: bool = False) -> dict[str, Any]:
    """Run the transfer stage of a plan: every table, one wave of the latest assessment, or a delta."""
    return run_gated("transfer", plan, wave, delta)
