"""Transfer benchmark: liftshift against the physical limit, binary COPY of the same table.

Creates a table of ROWS rows (default 5,000,000; `python bench/transfer.py 1000000`) with ~10
mixed-type columns and ~5% NULLs in an embedded PostgreSQL, then measures in the same run:
`COPY … TO STDOUT (FORMAT binary)` into nothing (the floor, best of three), and liftshift's
transfer into DuckDB with 1 and with 2 Dask workers, and into the local BigQuery endpoint
(2 workers; skip it with `--no-bigquery`). Each transfer is run three times, each time into a new
table, and measured as the floor is: the fastest run. Why three: the first run of a configuration
touches memory the process has not used before (the 2-worker runs hold ~250 MB more than the
1-worker ones), which made it 0.3 s slower than the next; of two runs, one was always that.
Each is timed with and without starting its Dask cluster; the ratio to the floor counts the whole
`transfer.run` plus the cluster's start.
Before each measurement the files written so far are flushed to disk (os.sync), so no run pays
for an earlier one's writes, and each DuckDB file is deleted once its run is measured. Why: kept,
the earlier runs' files stay in the page cache and each later run writes into memory that is slower
to first touch on this VM (likely pages it had handed back to its host); the 2-worker runs, measured
after the 1-worker ones, took 0.6-0.7 CPU-s more of liftshift's (4.27-4.35 s against 3.62-3.64 s)
and 0.3 s longer. Each measurement also prints the CPU time it took: PostgreSQL's
(its server processes) and this process's (the floor's reader, or liftshift's driver and workers),
so a ratio can be read against what the 2 cores had to do.
The cluster is liftshift's default (liftshift.cluster.local_cluster: worker threads in this
process). Peak RSS, the highest of the runs, is this process's (the driver and its workers),
leaving out PostgreSQL and the local BigQuery endpoint, which are the source and the target.
"""

import asyncio
import atexit
import os
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

import asyncpg
import psutil
import psycopg
import yaml

from liftshift import transfer
from liftshift.cluster import local_cluster
from liftshift.demo import start_postgres
from liftshift.ledger import Ledger
from liftshift.plan import load_plan

ATTEMPTS = 3  # runs of the floor and of each transfer, of which the fastest counts

TABLE = """
CREATE TABLE bench AS SELECT g::bigint AS id,
  CASE WHEN g % 20 = 0 THEN NULL ELSE (g % 100000) * 0.01 END::numeric(12,2) AS amount,
  CASE WHEN g % 20 = 1 THEN NULL ELSE g / 3.0 END::float8 AS ratio,
  (g % 1000)::int AS bucket, md5(g::text) AS label,
  CASE WHEN g % 20 = 2 THEN NULL ELSE 'Ünïcode ' || (g % 97) END AS note,
  timestamptz '2024-01-01 00:00:00+00' + g * interval '1.000001 s' AS created_at,
  date '2020-01-01' + g % 2000 AS day, g % 3 = 0 AS flag,
  CASE WHEN g % 20 = 3 THEN NULL ELSE g % 7 END::smallint AS small
FROM generate_series(1, {rows}) g;
ALTER TABLE bench ADD PRIMARY KEY (id);
"""


class PeakRss:
    """The peak RSS of this process while inside: the kernel's high-water mark, reset on entry.

    Why not sampling: the cluster's workers are threads of this process (liftshift.cluster), so the
    kernel's own mark (VmHWM) is exact and costs nothing, where walking the process tree ten times
    a second missed short peaks and took CPU from the run it measured. PostgreSQL and the local
    BigQuery endpoint, the source and the target, are other processes and not counted.
    """

    def __init__(self) -> None:
        self.peak = 0

    def __enter__(self) -> "PeakRss":
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the RSS now
        return self

    def __exit__(self, *exc: object) -> None:
        status = Path("/proc/self/status").read_text()
        self.peak = int(re.search(r"VmHWM:\s+(\d+) kB", status)[1]) * 1024  # type: ignore[index]


class CpuSpent:
    """CPU seconds spent while inside: by the PostgreSQL server of a data folder, and by this process."""

    def __init__(self, data_dir: Path) -> None:
        self.postmaster = int((data_dir / "postmaster.pid").read_text().split()[0])
        self.server = self.here = 0.0

    def __enter__(self) -> "CpuSpent":
        self._start = (self._server_seconds(), _own_seconds())
        return self

    def __exit__(self, *exc: object) -> None:
        self.server = self._server_seconds() - self._start[0]
        self.here = _own_seconds() - self._start[1]

    def _server_seconds(self) -> float:
        """The server's CPU so far: its live processes', and that of the backends it has reaped."""
        main = psutil.Process(self.postmaster)
        times = main.cpu_times()
        total = times.user + times.system + times.children_user + times.children_system
        for child in main.children():
            try:
                total += sum(child.cpu_times()[:2])
            except psutil.Error:
                continue  # it exited meanwhile: the postmaster's children_* times count it
        return total


def _own_seconds() -> float:
    times = os.times()
    return times.user + times.system


def scratch_folder(prefix: str) -> Path:
    """A temporary folder deleted at exit, after the embedded PostgreSQL in it has stopped."""
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    # Registered before PostgreSQL starts, so it runs after the server's own exit handler stops it:
    # each run leaves gigabytes (the table, its copies, the local BigQuery endpoint's data).
    atexit.register(shutil.rmtree, folder, True)
    return folder


def create_table(url: str, rows: int) -> None:
    """The benchmark table, settled as a long-lived table is: hint bits set, frozen, flushed.

    Why: a table just written leaves PostgreSQL work to do (hint bits at its first read, freezing
    by autovacuum, a checkpoint of its gigabyte of WAL) that would land on whichever measurement
    happened to run meanwhile.
    """
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(TABLE.format(rows=rows))
        conn.execute("VACUUM (FREEZE, ANALYZE) bench")
        conn.execute("CHECKPOINT")


def copy_floor(url: str) -> float:
    """Seconds for COPY (FORMAT binary) of the whole table into this process, bytes dropped.

    Read by asyncpg, whose client keeps up with the server, so this is PostgreSQL's own speed.
    psycopg's COPY loop, one Python call per row, is slower than the server: on this machine it
    took 2.1-2.4 s where asyncpg took 1.7-1.9 s and psql into /dev/null 1.9 s.
    """

    async def copy() -> float:
        conn = await asyncpg.connect(url)
        try:
            t0 = time.perf_counter()
            await conn.copy_from_query("SELECT * FROM bench", output=drop, format="binary")
            return time.perf_counter() - t0
        finally:
            await conn.close()

    async def drop(_: bytes) -> None:
        pass

    return asyncio.run(copy())


def timed_floor(folder: Path, url: str) -> tuple[float, CpuSpent]:
    """copy_floor's seconds, and the CPU it spent."""
    with CpuSpent(folder / "pg") as cpu:
        seconds = copy_floor(url)
    return seconds, cpu


def timed_transfer(
    folder: Path, url: str, target: str, workers: int, attempt: int = 1
) -> tuple[float, float, int, CpuSpent]:
    """Seconds to start a cluster of workers, seconds for transfer.run into target, peak RSS, CPU spent."""
    label = f"{target.split(':')[0]}_{workers}_{attempt}"
    target = target.replace("{label}", label)
    plan_path = folder / f"{label}.yaml"
    body = {"name": f"bench-{label}", "source": {"url": url}, "target": {"url": target},
            "tables": ["bench"], "transfer": {"max_source_connections": workers}}  # fmt: skip
    plan_path.write_text(yaml.safe_dump(body))
    plan = load_plan(plan_path)
    if target.startswith("bigquery"):
        from liftshift.connectors import open_target

        open_target(plan).close()  # the local endpoint starts outside the timing
    with PeakRss() as rss, CpuSpent(folder / "pg") as cpu:
        t0 = time.perf_counter()
        with local_cluster(workers) as cluster:
            started = time.perf_counter() - t0
            os.environ["LIFTSHIFT_DASK_ADDRESS"] = cluster.scheduler_address
            t1 = time.perf_counter()
            report = transfer.run(plan, Ledger(plan.ledger_url()))
            seconds = time.perf_counter() - t1
            os.environ.pop("LIFTSHIFT_DASK_ADDRESS")
    assert report.gate.passed, report.gate.reasons
    if target.startswith("duckdb"):  # measured and proved: the next run should not write beside it
        for written in folder.glob(f"{label}.duckdb*"):
            written.unlink()
    return started, seconds, rss.peak, cpu


def main(rows: int, bigquery: bool) -> None:
    folder = scratch_folder("liftshift-bench-")
    url = start_postgres(folder / "pg")
    create_table(url, rows)
    os.sync()
    floor, floor_cpu = min((timed_floor(folder, url) for _ in range(ATTEMPTS)), key=lambda run: run[0])
    print(f"rows: {rows:,}   load average: {os.getloadavg()[0]:.2f}")
    print(f"floor (binary COPY): {floor:.2f} s, {rows / floor:,.0f} rows/s; CPU: PostgreSQL "
          f"{floor_cpu.server:.2f} s, the reader {floor_cpu.here:.2f} s")  # fmt: skip
    runs = [("duckdb:///{label}.duckdb", 1), ("duckdb:///{label}.duckdb", 2)]
    runs += [("bigquery://bench/{label}?endpoint=local", 2)] if bigquery else []
    for target, workers in runs:
        attempts = []
        for attempt in range(1, ATTEMPTS + 1):
            os.sync()  # the files written so far reach the disk now, not during this run
            attempts.append(timed_transfer(folder, url, target, workers, attempt))
        started, seconds, _, cpu = min(attempts, key=lambda run: run[0] + run[1])
        peak = max(run[2] for run in attempts)
        whole = started + seconds
        tries = ", ".join(f"{run[0] + run[1]:.2f} s" for run in attempts)
        print(f"{target.split(':')[0]:>9} {workers} worker(s), runs {tries}; the fastest: {whole:.2f} s "
              f"with cluster start ({started:.2f} s), {seconds:.2f} s without; {rows / whole:,.0f} rows/s; "
              f"{whole / floor:.2f}x the floor ({seconds / floor:.2f}x without start); "
              f"peak RSS {peak / 2**20:,.0f} MB; CPU: PostgreSQL {cpu.server:.2f} s, "
              f"liftshift {cpu.here:.2f} s")  # fmt: skip
        print(f"  load average now: {os.getloadavg()[0]:.2f}", flush=True)


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    main(int(args[0]) if args else 5_000_000, "--no-bigquery" not in sys.argv)
