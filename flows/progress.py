"""A transfer's progress as a Prefect progress artifact, fed by liftshift's progress callback."""

from uuid import UUID

from prefect.artifacts import create_progress_artifact, update_progress_artifact


class ArtifactProgress:
    """Keeps one progress artifact at the share of all tables' rows done (0–100)."""

    def __init__(self, key: str, description: str) -> None:
        self.artifact: UUID = create_progress_artifact(progress=0.0, key=key, description=description)
        self.tables: dict[str, tuple[int, int]] = {}
        self.shown = 0.0

    def __call__(self, table: str, done: int, total: int, nbytes: int = 0) -> None:
        """Record a table's rows; update the artifact when the overall share moves a whole percent."""
        self.tables[table] = (done, max(done, total))
        rows = sum(d for d, _ in self.tables.values())
        total_rows = sum(t for _, t in self.tables.values())
        percent = float(100 * rows // total_rows) if total_rows else 100.0  # nothing to move: done
        if percent != self.shown:  # one API call per percent, not per chunk
            self.shown = percent
            update_progress_artifact(self.artifact, progress=percent)
