"""The Dask data plane: a LocalCluster by default, or the scheduler LIFTSHIFT_DASK_ADDRESS names."""

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager

from distributed import Client, LocalCluster

from liftshift.settings import settings


@contextmanager
def dask_client(address: str | None = None) -> Iterator[Client]:
    """A client to LIFTSHIFT_DASK_ADDRESS or address, else to a LocalCluster of one worker per core."""
    config = settings()
    address = config.dask_address or address
    # direct_to_workers: chunks' Arrow tables come straight from the worker, not via the scheduler.
    if address:
        with Client(address, direct_to_workers=True) as client:
            yield client
        return
    workers = config.dask_workers or os.cpu_count() or 1
    with (
        LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            silence_logs=logging.ERROR,
        ) as cluster,
        Client(cluster, direct_to_workers=True) as client,
    ):
        yield client
