"""Rich progress bars for transfer and delta: rows, MB/s and ETA per table and overall."""

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from rich.console import Console
from rich.progress import BarColumn, Progress, ProgressColumn, Task, TaskID, TextColumn, TimeRemainingColumn
from rich.text import Text

from liftshift.transfer import Progress as ProgressCallback

OVERALL = "all tables"


class _Throughput(ProgressColumn):
    """The megabytes per second a task's callback reported (its 'mbps' field)."""

    def render(self, task: Task) -> Text:
        """The task's MB/s, or a dash before anything has moved."""
        rate = task.fields.get("mbps")
        return Text("       - MB/s" if rate is None else f"{rate:8.2f} MB/s")


@dataclass
class _Table:
    """What one table has reported, and the window its bytes moved in."""

    done: int = 0
    total: int = 0
    nbytes: int = 0
    since: float = 0.0  # the last report before bytes moved: the table's start
    until: float | None = None  # when it finished

    def rate(self, now: float) -> float | None:
        seconds = (self.until or now) - self.since
        return self.nbytes / seconds / 1e6 if self.nbytes and seconds > 0 else None


class TransferBars:
    """A bar per table and one for all tables, fed through the transfer's progress callback."""

    def __init__(self, bar: Progress) -> None:
        self.bar = bar
        self.tasks: dict[str, TaskID] = {}
        self.tables: dict[str, _Table] = {}
        self.overall: TaskID | None = None  # shown once a table is, so an early error shows no empty bar

    def __call__(self, table: str, done: int, total: int, nbytes: int = 0) -> None:
        """Move a table's bar and the overall bar."""
        now = time.monotonic()
        overall = self.overall
        if overall is None:
            overall = self.overall = self.bar.add_task(OVERALL, total=0, mbps=None)
        if table not in self.tasks:
            self.tasks[table] = self.bar.add_task(table, total=total, mbps=None)
            self.tables[table] = _Table(since=now)
        state = self.tables[table]
        if not nbytes:  # announced, or starting: bytes are timed from here
            state.since = now
        state.done, state.total, state.nbytes = done, total, max(nbytes, state.nbytes)
        state.until = now if total and done >= total and state.nbytes else None
        self.bar.update(self.tasks[table], completed=done, total=total, mbps=state.rate(now))
        self._update_overall(overall, now)

    def _update_overall(self, task: TaskID, now: float) -> None:
        moving = [s for s in self.tables.values() if s.nbytes]
        states = self.tables.values()
        overall = _Table(
            done=sum(s.done for s in states), total=sum(s.total for s in states),
            nbytes=sum(s.nbytes for s in moving), since=min((s.since for s in moving), default=now),
        )  # fmt: skip
        if overall.total and overall.done >= overall.total and moving:
            overall.until = max(s.until or now for s in moving)
        self.bar.update(task, completed=overall.done, total=overall.total, mbps=overall.rate(now))


@contextmanager
def transfer_bars(console: Console) -> Iterator[ProgressCallback]:
    """Show transfer progress on the console while the block runs."""
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed:,.0f}/{task.total:,.0f} rows"),
        _Throughput(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console) as bar:
        yield TransferBars(bar)
