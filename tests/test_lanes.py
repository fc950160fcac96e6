"""Several tables moving at once (liftshift.lanes), on a real in-process Dask cluster.

The extraction a worker runs is wrapped by a spy that counts reads under way and can hold one
table's reads back; the real extraction runs inside it. The cluster's workers are threads of
this process, so the spy's counters are the test's.
"""

import _thread
import threading
import time
from types import SimpleNamespace

import psycopg
import pytest
from distributed import LocalCluster

from liftshift import chunkcopy, transfer
from liftshift.extract import extract_chunk
from liftshift.lanes import Lane, ReadSlots, run_lanes
from liftshift.ledger import Ledger
from tests.conftest import write_plan

_LOCK = threading.Lock()
_UNDER_WAY = {"now": 0, "most": 0, "reads": 0}
_HOLD: dict[str, threading.Event] = {}  # table -> its first chunk's read is released when set
_HELD: dict[str, bool] = {}  # table -> whether that read was released (not timed out)


def _spied_extract(url, schema, table, chunk, *args):  # noqa: ANN001, ANN202 - extract_chunk's arguments
    with _LOCK:
        _UNDER_WAY["now"] += 1
        _UNDER_WAY["reads"] += 1
        _UNDER_WAY["most"] = max(_UNDER_WAY["most"], _UNDER_WAY["now"])
    try:
        if table.name in _HOLD and chunk.low is None:
            _HELD[table.name] = _HOLD[table.name].wait(timeout=20)
        time.sleep(0.02)  # a read long enough for others to overlap it, were they allowed to
        return extract_chunk(url, schema, table, chunk, *args)
    finally:
        with _LOCK:
            _UNDER_WAY["now"] -= 1


@pytest.fixture
def threaded_cluster(monkeypatch):
    """Three single-threaded workers as threads of this process, extracting through the spy."""
    _UNDER_WAY.update(now=0, most=0, reads=0)
    _HOLD.clear()
    _HELD.clear()
    monkeypatch.setattr(chunkcopy, "extract_chunk", _spied_extract)
    with LocalCluster(n_workers=3, threads_per_worker=1, processes=False, dashboard_address=None) as cluster:
        monkeypatch.setenv("LIFTSHIFT_DASK_ADDRESS", cluster.scheduler_address)
        yield


def _tables(pg_url: str, names: list[str], rows: int) -> None:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        for name in names:
            conn.execute(f"CREATE TABLE {name} (id int PRIMARY KEY, v text)")
            conn.execute(f"INSERT INTO {name} SELECT g, md5(g::text) FROM generate_series(1, {rows}) g")


def test_a_table_whose_reads_are_slow_does_not_hold_up_the_next(pg_url, tmp_path, threaded_cluster):
    _tables(pg_url, ["a_slow", "b_quick"], 500)
    _HOLD["a_slow"] = threading.Event()
    callers = set()

    def progress(table: str, done: int, total: int, nbytes: int = 0) -> None:
        callers.add(threading.current_thread())
        if table == "b_quick" and nbytes and done == 500:  # b_quick landed while a_slow is held
            _HOLD["a_slow"].set()

    plan = write_plan(tmp_path, pg_url, "duckdb:///w.duckdb", tables=["a_slow", "b_quick"],
                      transfer={"chunk_rows": 100})  # fmt: skip
    report = transfer.run(plan, Ledger(plan.ledger_url()), progress=progress)
    assert report.gate.passed, report.gate.reasons
    assert _HELD == {"a_slow": True}  # released by b_quick's progress, not by the timeout
    assert [(t.table, t.rows) for t in report.tables] == [("a_slow", 500), ("b_quick", 500)]
    assert callers == {threading.current_thread()}  # progress reaches the caller's thread only


def test_one_table_at_a_time_when_the_plan_says_so(pg_url, tmp_path, threaded_cluster):
    _tables(pg_url, ["a_slow", "b_quick"], 300)
    _HOLD["a_slow"] = threading.Event()
    started = []

    def progress(table: str, done: int, total: int, nbytes: int = 0) -> None:
        if nbytes:
            started.append(table)

    plan = write_plan(tmp_path, pg_url, "duckdb:///w.duckdb", tables=["a_slow", "b_quick"],
                      transfer={"chunk_rows": 100, "tables_at_once": 1})  # fmt: skip
    release = threading.Timer(1.0, _HOLD["a_slow"].set)  # time enough for b_quick, were it moving
    release.start()
    assert transfer.run(plan, Ledger(plan.ledger_url()), progress=progress).gate.passed
    assert started == ["a_slow"] * 3 + ["b_quick"] * 3


@pytest.mark.parametrize("reads", [1, 2])
def test_reads_under_way_never_exceed_max_source_connections_over_all_tables(
    pg_url, tmp_path, threaded_cluster, reads
):
    names = ["t1", "t2", "t3"]
    _tables(pg_url, names, 600)
    pace = {"chunk_rows": 100, "max_source_connections": reads, "tables_at_once": 3}
    plan = write_plan(tmp_path, pg_url, "duckdb:///w.duckdb", tables=names, transfer=pace)
    report = transfer.run(plan, Ledger(plan.ledger_url()))
    assert report.gate.passed, report.gate.reasons
    assert [t.rows for t in report.tables] == [600, 600, 600]
    # Three tables in flight, three workers: only the shared cap keeps reads to `reads`; with 2, the
    # spy sees them overlap, so it would see more than one had the cap been per table.
    assert (_UNDER_WAY["reads"], _UNDER_WAY["most"]) == (18, reads)


def test_a_read_given_back_goes_to_the_table_that_has_waited_longest():
    slots, granted = ReadSlots(1), []
    first, second = (lambda: granted.append("first")), (lambda: granted.append("second"))
    assert slots.ask(first)  # free: taken at once
    assert not slots.ask(second)  # queued
    assert not slots.ask(first)  # first asks again at once, behind second
    slots.give_back()
    assert granted == ["second"]  # not first, which freed it
    slots.give_back()
    assert granted == ["second", "first"]
    assert not slots.withdraw(first)  # given already: first must give it back
    slots.give_back()
    assert slots.ask(second)  # free again
    assert not slots.ask(first) and slots.withdraw(first)  # queued, then left the queue
    slots.give_back()
    assert slots.free == 1 and granted == ["second", "first"]


def test_an_interrupt_of_the_caller_stops_every_lane_at_its_next_report():
    # run_lanes is generic over what a lane holds and does; plain stand-ins show its stopping alone.
    reports = {"first": 0, "second": 0}

    def copy(lane, table, progress):  # noqa: ANN001, ANN202
        for done in range(1, 501):
            progress(table.name, done, 500)
            reports[table.name] = done
            if table.name == "first" and done == 20:
                _thread.interrupt_main()  # Ctrl-C, as the caller's thread sees it
            time.sleep(0.01)
        return table.name

    tables = [SimpleNamespace(name="first"), SimpleNamespace(name="second"), SimpleNamespace(name="third")]
    with pytest.raises(KeyboardInterrupt):
        run_lanes([Lane(None, []), Lane(None, [])], tables, copy, progress=lambda *report: None)
    assert 20 <= reports["first"] < 500 and reports["second"] < 500  # both stopped, neither finished
    assert "third" not in reports  # never started
