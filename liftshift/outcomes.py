"""What an expectation suite found, as reports keep it: no Great Expectations here, which takes
seconds to import (liftshift.quality runs the suites)."""

from pydantic import BaseModel, ConfigDict


class ExpectationOutcome(BaseModel):
    """One expectation of one table's suite, run on one side."""

    model_config = ConfigDict(frozen=True)

    table: str
    side: str  # "source" or "target"
    expectation: str
    column: str | None
    severity: str
    passed: bool
    observed: str = ""  # the observed value, or how many rows broke it
    sample: list[str] = []  # a few of the values that broke it

    def describe(self) -> str:
        """One line: which expectation failed where, and how."""
        where = f" on {self.column}" if self.column else ""
        example = f"; e.g. {', '.join(self.sample)}" if self.sample else ""
        return f"{self.table}: {self.expectation}{where} failed in the {self.side} ({self.observed}){example}"


def failures(outcomes: list[ExpectationOutcome]) -> list[str]:
    """Gate reasons: every failed error-level expectation."""
    return [o.describe() for o in outcomes if o.severity == "error" and not o.passed]
