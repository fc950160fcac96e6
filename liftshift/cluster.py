"""The Dask data plane: a LocalCluster by default, or the scheduler LIFTSHIFT_DASK_ADDRESS names."""

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager

from distributed import Client, LocalCluster

from liftshift.settings import settings


@contextmanager
def dask_client() -> Iterator[Client]:
    """A client to the configured scheduler, or to a LocalCluster of one worker per core."""
    config = settings()
    # direct_to_workers: chunks' Arrow tables come straight from the worker, not via the scheduler.
    if config.dask_address:
        with Client(config.dask_address, direct_to_workers=True) as client:
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
