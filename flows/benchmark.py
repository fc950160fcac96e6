"""The benchmark stage as a Prefect flow."""

from typing import Any

from prefect import flow

from flows.common import run_gated


@flow(name="liftshift-benchmark", log_prints=True)
def benchmark(plan: str = "migration.yaml") -> dict[str, Any]:
    """Run the benchmark stage of a plan."""
    return run_gated("benchmark", plan)
