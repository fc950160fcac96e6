"""Rich progress bars for transfer and delta: rows, MB/s and ETA per table and overall."""

from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, Progress, ProgressColumn, Task, TaskID, TextColumn, TimeRemainingColumn
from rich.text import Text

from liftshift.transfer import Progress as ProgressCallback

OVERALL = "all tables"


class _Throughput(ProgressColumn):
    """Megabytes per second since the task started, from the bytes its callback reported."""

    def render(self, task: Task) -> Text:
        """The task's MB/s."""
        elapsed = task.elapsed or 0.0
        nbytes = float(task.fields.get("nbytes", 0))
        return Text(f"{nbytes / elapsed / 1e6:8.2f} MB/s" if elapsed > 0 else "       - MB/s")


class TransferBars:
    """A bar per table and one for all tables, fed through the transfer's progress callback."""

    def __init__(self, bar: Progress) -> None:
        self.bar = bar
        self.tasks: dict[str, TaskID] = {}
        self.state: dict[str, tuple[int, int, int]] = {}
        self.overall = bar.add_task(OVERALL, total=0, nbytes=0)

    def __call__(self, table: str, done: int, total: int, nbytes: int = 0) -> None:
        """Move a table's bar and the overall bar."""
        if table not in self.tasks:
            self.tasks[table] = self.bar.add_task(table, total=total, nbytes=0)
        _, _, before = self.state.get(table, (0, 0, 0))
        self.state[table] = (done, total, max(nbytes, before))
        self.bar.update(self.tasks[table], completed=done, total=total, nbytes=max(nbytes, before))
        done_all, total_all, bytes_all = (sum(s[i] for s in self.state.values()) for i in range(3))
        self.bar.update(self.overall, completed=done_all, total=total_all, nbytes=bytes_all)


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
