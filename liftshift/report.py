"""Stage reports: frozen models stored in the ledger as JSON and rendered as Markdown."""

from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from liftshift.files import write_text
from liftshift.ledger import Ledger


class GateResult(BaseModel):
    """A gate's verdict on a report, with the reasons it failed."""

    model_config = ConfigDict(frozen=True)

    passed: bool
    reasons: list[str] = []


class StageReport(BaseModel):
    """What every stage reports: when, how long, its gate, and the rows it touched."""

    model_config = ConfigDict(frozen=True)

    stage: str
    plan: str
    started_at: datetime
    seconds: float
    gate: GateResult
    rows: int = 0

    def items(self) -> list[BaseModel]:
        """The per-table (or per-query) lines of the report."""
        return []

    def sections(self) -> list[str]:
        """Markdown lines that follow the table of items (stages with more to say override this)."""
        return []

    def html(self) -> str | None:
        """The report as one self-contained HTML page, or None for stages that have none."""
        return None


MAX_VALUE_CHARS = 200


def shown(value: Any) -> str | None:
    """A data value as a report shows it: its text, cut short (reports are not a copy of the data)."""
    if value is None:
        return None
    text = str(value)
    return text if len(text) <= MAX_VALUE_CHARS else text[:MAX_VALUE_CHARS] + f"… ({len(text):,} characters)"


def save(ledger: Ledger, report: StageReport, state_dir: Path) -> Path:
    """Store a report in the ledger, as Markdown beside the plan and as HTML if it has a page.

    Returns the Markdown file; the HTML page, when written, is beside it with the suffix .html.
    """
    ledger.save_report(report.plan, report.stage, report.gate.passed, report.model_dump(mode="json"))
    path = state_dir / "reports" / f"{report.plan}-{report.stage}.md"
    write_text(path, to_markdown(report))
    page = report.html()
    if page is not None:
        write_text(path.with_name(f"{report.plan}-{report.stage}.html"), page)
    return path


def to_markdown(report: StageReport) -> str:
    """Render a report as Markdown: the gate, its reasons, and a table of its lines."""
    verdict = "passed" if report.gate.passed else "FAILED"
    lines = [
        f"# {report.stage} — {report.plan}",
        "",
        f"Gate **{verdict}** · {report.rows:,} rows · {report.seconds:.1f} s · "
        f"{report.started_at:%Y-%m-%d %H:%M:%S} UTC",
        "",
    ]
    lines += [f"- {reason}" for reason in report.gate.reasons]
    items = report.items()
    if items:
        lines += ["", *_markdown_table([i.model_dump(mode="json") for i in items])]
    lines += report.sections()
    return "\n".join(lines) + "\n"


def _markdown_table(rows: list[dict[str, Any]]) -> list[str]:
    headers = list(rows[0])
    out = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    for row in rows:
        out.append("| " + " | ".join(_cell(row[h]) for h in headers) + " |")
    return out


def _cell(value: Any) -> str:
    if value is None:  # not known (no estimate without an assessment, say): an empty cell, not "None"
        return ""
    if isinstance(value, list):
        value = ", ".join(str(v) for v in value)
    if isinstance(value, float):
        value = f"{value:,.3f}"
    elif isinstance(value, int) and not isinstance(value, bool):
        value = f"{value:,}"
    return str(value).replace("|", "\\|").replace("\n", " ")
