"""Several tables moving at once, each in a lane: a source connection that holds the table's
snapshot, and the target connections that land its chunks.

Why: much of a table's time is waiting, not work: its snapshot and chunk plan, the target's DDL,
and into BigQuery a load job and query jobs per chunk. An estate of many small tables moved one
at a time leaves the workers idle between them. Reads stay capped by max_source_connections over
all lanes (ReadSlots).
"""

import queue
import threading
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, closing, contextmanager
from dataclasses import dataclass, field
from typing import TypeVar

from liftshift.connectors import open_source, open_target
from liftshift.connectors.base import Source, Table, Target
from liftshift.plan import Plan

_RELAY_EVERY = 0.05  # seconds the caller's thread waits for a lane's progress before looking at the lanes


@dataclass(frozen=True)
class Lane:
    """What one table in flight holds: a source connection for its snapshot, and its writers."""

    source: Source
    writers: list[Target]


Progress = Callable[..., None]
T = TypeVar("T")


@contextmanager
def opened_lanes(plan: Plan, source: Source, first: Target, lanes: int, writers: int) -> Iterator[list[Lane]]:
    """The lanes, each with `writers` target connections. The first lane uses source and first, which
    stay open; every connection opened here is closed on the way out."""
    with ExitStack() as stack:
        own: list[Target] = [first]
        for _ in range(writers - 1):
            own.append(stack.enter_context(closing(open_target(plan))))
        opened = [Lane(source, own)]
        for _ in range(lanes - 1):
            lane_source = stack.enter_context(closing(open_source(plan)))
            targets = [stack.enter_context(closing(open_target(plan))) for _ in range(writers)]
            opened.append(Lane(lane_source, targets))
        yield opened


def run_lanes(
    lanes: list[Lane], tables: list[Table], copy: Callable[[Lane, Table, Progress | None], T],
    progress: Progress | None,
) -> list[T]:  # fmt: skip
    """copy every table in a free lane, as many at once as there are lanes; results in table order.

    progress is called on this thread only (a Prefect artifact's client belongs to the flow's
    thread), while the lane that reports waits: what progress raises (a cancel) is raised in that
    lane, as if it had been called there. The first table whose copy raises stops the tables not
    yet started; it is raised once those under way have finished.
    """
    if len(lanes) == 1:
        return [copy(lanes[0], table, progress) for table in tables]
    free: queue.Queue[Lane] = queue.Queue()
    for lane in lanes:
        free.put(lane)
    relay = _Relay(progress)

    def one(table: Table) -> T:
        lane = free.get()
        try:
            return copy(lane, table, relay)
        finally:
            free.put(lane)

    with ThreadPoolExecutor(len(lanes), thread_name_prefix="liftshift-lane") as pool:
        futures = []
        try:
            futures += [pool.submit(one, table) for table in tables]
            while not all(f.done() for f in futures):
                relay.deliver_next()
                if any(f.done() and not f.cancelled() and f.exception() for f in futures):
                    for future in futures:
                        future.cancel()  # those not started; those under way finish
        except BaseException as exc:  # Ctrl-C, a cancelled flow: the lanes stop at their next report
            for future in futures:
                future.cancel()
            relay.stop(exc)
            raise
    for future in futures:
        if not future.cancelled() and (error := future.exception()) is not None:
            raise error
    return [future.result() for future in futures]


class _Relay:
    """The progress callback the lanes call: each call waits until the caller's thread made it.
    Calls without a callback to make still let a stopped run stop its lanes."""

    def __init__(self, progress: Progress | None) -> None:
        self.progress = progress
        self.calls: queue.SimpleQueue[_Call] = queue.SimpleQueue()
        self.stopped: BaseException | None = None

    def __call__(self, *args: object) -> None:
        if self.stopped is not None:
            raise self.stopped
        if self.progress is None:
            return
        call = _Call(args)
        self.calls.put(call)
        while not call.made.wait(_RELAY_EVERY):
            if self.stopped is not None:
                raise self.stopped
        if call.error is not None:
            raise call.error

    def deliver_next(self) -> None:
        """Make the next call a lane is waiting on, if one comes soon."""
        try:
            call = self.calls.get(timeout=_RELAY_EVERY)
        except queue.Empty:
            return
        try:
            if self.progress is not None:
                self.progress(*call.args)
        except BaseException as exc:  # noqa: BLE001 - raised in the lane that called
            call.error = exc
        finally:
            call.made.set()

    def stop(self, why: BaseException) -> None:
        """Make every lane raise why when it next reports progress, or now if it is waiting to."""
        self.stopped = why


@dataclass
class _Call:
    args: tuple[object, ...]
    error: BaseException | None = None
    made: threading.Event = field(default_factory=threading.Event)


class ReadSlots:
    """max_source_connections reads, shared by the tables moving at once and granted in turn.

    Why not a semaphore: a table whose read ends asks again at once and would win the read it just
    freed, time after time, while the other tables wait for it to run out of chunks. Here a read
    given back goes to the table that has waited longest.
    """

    def __init__(self, count: int) -> None:
        self.free = count
        self.waiting: deque[Callable[[], None]] = deque()
        self.lock = threading.Lock()

    def ask(self, granted: Callable[[], None]) -> bool:
        """Take a read now (True), or queue for one: granted() is called when it is given."""
        with self.lock:
            if self.free and not self.waiting:
                self.free -= 1
                return True
            self.waiting.append(granted)
            return False

    def give_back(self) -> None:
        """Return a read: to the table that has waited longest, else to the free ones."""
        with self.lock:
            if not self.waiting:
                self.free += 1
                return
            granted = self.waiting.popleft()
        granted()

    def withdraw(self, granted: Callable[[], None]) -> bool:
        """Leave the queue; False if the read asked for was given already (give it back then)."""
        with self.lock:
            if granted in self.waiting:
                self.waiting.remove(granted)
                return True
            return False
