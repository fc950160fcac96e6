"""liftshift's own exceptions: errors a user can cause, each saying what to change."""


class LiftshiftError(Exception):
    """An error the user can fix; the CLI prints its message without a traceback."""


class PlanError(LiftshiftError):
    """The plan file is missing, malformed, or names something that does not exist."""


class MissingTableError(PlanError):
    """No table of the source matches a name or pattern of the plan's tables."""

    def __init__(self, message: str, pattern: str) -> None:
        super().__init__(message)
        self.pattern = pattern


class ConnectError(LiftshiftError):
    """A source, target or ledger could not be reached."""


class SourceReadError(LiftshiftError):
    """Reading rows from PostgreSQL failed: the server's or the client's message, secrets removed."""


class UnsupportedTypeError(LiftshiftError):
    """A column's type has no mapping to the target."""


class SchemaDriftError(LiftshiftError):
    """The target's copy of a table no longer has the source's columns."""


class WriteError(LiftshiftError):
    """A file beside the plan (a report, an expectation suite) could not be written."""
