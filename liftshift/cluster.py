"""The Dask data plane: a LocalCluster by default, or the scheduler LIFTSHIFT_DASK_ADDRESS names."""

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager

import dask
from distributed import Client, LocalCluster

from liftshift.settings import settings


def local_cluster(workers: int) -> LocalCluster:
    """One single-threaded worker per core, as threads of this process.

    Why threads: a worker's work releases the GIL (the socket reads, the binary COPY parser, DuckDB), and
    in one process a chunk's Arrow table reaches the writer without being pickled and copied
    between processes (1 s of CPU per 5M rows), and the cluster starts in a tenth of the time.
    A scheduler of process workers elsewhere is used as it is (LIFTSHIFT_DASK_ADDRESS).
    """
    # The workers' statistical profiler walks every thread's stack 100 times a second, holding the
    # GIL: ~0.1 CPU-s of the 5.5 a transfer of the 5M-row benchmark takes, for a dashboard we do not start.
    with dask.config.set({"distributed.worker.profile.enabled": False}):
        return LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=False,
            dashboard_address=None,
            silence_logs=logging.CRITICAL,  # a chunk that fails is reported, with its message, by liftshift
        )


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
    with local_cluster(workers) as cluster, Client(cluster, direct_to_workers=True) as client:
        yield client
