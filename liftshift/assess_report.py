"""The assessment's report: inventory, verdicts, estimates, advice and waves, as frozen models."""

from pydantic import BaseModel, ConfigDict

from liftshift.report import StageReport
from liftshift.types import Verdict


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class ColumnAssessment(_Frozen):
    """Where one column lands in the target and how faithfully."""

    table: str
    column: str
    source_type: str
    nullable: bool
    default: str | None
    target_type: str
    verdict: Verdict
    note: str
    accepted: bool = False


class ValueProblem(_Frozen):
    """Values in the source that the target type cannot hold (a blocker found in the data)."""

    table: str
    column: str
    problem: str
    rows: int


class ForeignKey(_Frozen):
    """A foreign key of a table: its columns, the table and columns it references."""

    name: str
    columns: list[str]
    references: str
    referenced_columns: list[str]
    nullable: bool


class Estimate(_Frozen):
    """Transfer time and BigQuery cost of one table, from a sample moved through the real path."""

    sample_rows: int
    read_rows_per_second: float
    write_rows_per_second: float
    seconds: float
    bigquery_bytes: int
    storage_usd_month: float
    validation_usd: float


class Advice(_Frozen):
    """Target design advice for a large table: partitioning and clustering, with the reasons."""

    partition_by: str | None
    partition_reason: str
    cluster_by: list[str]
    cluster_reason: str


class CatalogFacts(_Frozen):
    """What PostgreSQL's catalog and statistics say about a table beyond its columns."""

    rows_estimate: int
    heap_bytes: int
    toast_bytes: int
    index_bytes: int
    unique_keys: list[list[str]]
    foreign_keys: list[ForeignKey]
    indexes: list[str]
    partition_key: str | None
    partitions: list[str]
    triggers: list[str]
    inserts: int
    updates: int
    deletes: int


class TableAssessment(CatalogFacts):
    """One table's inventory, verdict counts, estimate, advice and wave."""

    table: str
    rows: int
    total_bytes: int
    columns: int
    primary_key: list[str]
    hot: bool
    blockers: int
    lossy: int
    wave: int
    estimate: Estimate | None
    advice: Advice | None
    names: list[str] = []  # why the target cannot take the table's name or a column's


class Wave(_Frozen):
    """Tables that move together: every parent is in an earlier wave."""

    number: int
    tables: list[str]
    bytes: int
    rows: int
    estimated_seconds: float


class ViewInfo(_Frozen):
    """A view or materialized view and the tables it reads."""

    name: str
    kind: str
    depends_on: list[str]


class SequenceInfo(_Frozen):
    """A sequence, the column that owns it, and its last value."""

    name: str
    owned_by: str | None
    last_value: int | None


class AssessReport(StageReport):
    """The assessment of a plan's estate."""

    tables: list[TableAssessment]
    columns: list[ColumnAssessment]
    value_problems: list[ValueProblem] = []
    waves: list[Wave] = []
    cycles: list[str] = []
    views: list[ViewInfo] = []
    sequences: list[SequenceInfo] = []
    left_out: list[str] = []  # tables of the plan no target can hold, and why
    suites_written: list[str] = []
    suites_kept: list[str] = []
    unused_accepts: list[str] = []
    estimated_seconds: float = 0.0
    bigquery_bytes: int = 0
    storage_usd_month: float = 0.0
    validation_usd: float = 0.0
    pricing_note: str = ""
    target: str = "bigquery"  # the target's dialect: costs and design advice are BigQuery's only

    def items(self) -> list[BaseModel]:
        """One compact line per table for the Markdown report."""
        return [_TableLine.of(t) for t in self.tables]

    def sections(self) -> list[str]:
        """Waves, broken cycles, columns that need a decision, estimates and suites, in Markdown."""
        out = ["", "## Waves", ""]
        out += [
            f"{w.number}. {', '.join(w.tables)} — {w.rows:,} rows, {w.bytes / 2**20:,.1f} MiB, "
            f"~{w.estimated_seconds:,.1f} s"
            for w in self.waves
        ]
        out += [f"- {c}" for c in self.cycles]
        if self.left_out:
            out += ["", "## Left out", "", *[f"- {line}" for line in self.left_out]]
        decided = [c for c in self.columns if c.verdict in (Verdict.LOSSY, Verdict.BLOCKER)]
        names = [n for t in self.tables for n in t.names]
        if decided or self.value_problems or names:
            out += ["", "## Columns that need a decision", ""]
            out += [f"- {n}" for n in names]
            out += [
                f"- {c.table}.{c.column}: {c.source_type} → {c.target_type} **{c.verdict}**"
                f"{' (accepted)' if c.accepted else ''} — {c.note}"
                for c in decided
            ]
            out += [f"- {p.table}.{p.column}: {p.rows:,} rows hold {p.problem}" for p in self.value_problems]
        costs = (
            f"; {self.bigquery_bytes / 2**30:,.3f} GiB in BigQuery, ${self.storage_usd_month:,.2f}/month "
            f"storage, ${self.validation_usd:,.4f} to validate."
        )
        out += ["", "## Estimates", "", f"Transfer ~{self.estimated_seconds:,.1f} s"
                + (costs if self.target == "bigquery" else ".")]  # fmt: skip
        out += ["", self.pricing_note] if self.pricing_note else []
        if self.unused_accepts:
            out += ["", f"accept: entries matching no lossy column: {', '.join(self.unused_accepts)}"]
        out += ["", f"Suites written: {', '.join(self.suites_written) or 'none'}; kept: "
                f"{', '.join(self.suites_kept) or 'none'}."]  # fmt: skip
        return out

    def html(self) -> str:
        """The self-contained HTML page of the assessment."""
        from liftshift.html_report import render_assessment  # the renderer imports this module

        return render_assessment(self)


class _TableLine(_Frozen):
    table: str
    wave: int
    rows: int
    total_bytes: int
    primary_key: list[str]
    blockers: int
    lossy: int
    estimated_seconds: float
    hot: bool

    @classmethod
    def of(cls, t: TableAssessment) -> "_TableLine":
        seconds = t.estimate.seconds if t.estimate else 0.0
        return cls(
            table=t.table, wave=t.wave, rows=t.rows, total_bytes=t.total_bytes,
            primary_key=t.primary_key, blockers=t.blockers, lossy=t.lossy,
            estimated_seconds=seconds, hot=t.hot,
        )  # fmt: skip
