"""The ledger: every stage's report and every chunk's state, in a small SQL database."""

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError

from liftshift.errors import ConnectError
from liftshift.redact import redact

metadata = sa.MetaData()

reports = sa.Table(
    "reports",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("plan", sa.String(200), nullable=False, index=True),
    sa.Column("stage", sa.String(40), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("passed", sa.Boolean, nullable=False),
    sa.Column("body", sa.Text, nullable=False),
)

chunks = sa.Table(
    "chunks",
    metadata,
    sa.Column("plan", sa.String(200), primary_key=True),
    sa.Column("table_name", sa.String(200), primary_key=True),
    sa.Column("chunk", sa.Integer, primary_key=True),
    sa.Column("low", sa.BigInteger, nullable=True),
    sa.Column("high", sa.BigInteger, nullable=True),
    sa.Column("state", sa.String(20), nullable=False),
    sa.Column("rows", sa.BigInteger, nullable=True),
    sa.Column("source_checksum", sa.String(20), nullable=True),
    sa.Column("target_checksum", sa.String(20), nullable=True),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    # JSON of the chunk's exact boundaries when low/high cannot hold them (liftshift.chunking).
    sa.Column("bounds", sa.Text, nullable=True),
    sa.Column("snapshot_xmin", sa.BigInteger, nullable=True),
)

# Per table, the highest watermark value a full transfer or delta has moved (text: any type).
watermarks = sa.Table(
    "watermarks",
    metadata,
    sa.Column("plan", sa.String(200), primary_key=True),
    sa.Column("table_name", sa.String(200), primary_key=True),
    sa.Column("column_name", sa.String(200), nullable=False),
    sa.Column("mark", sa.Text, nullable=True),
    sa.Column("at_mark", sa.String(60), nullable=True),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("snapshot_xmin", sa.BigInteger, nullable=True),
)


@dataclass(frozen=True)
class StoredReport:
    """A report as the ledger holds it."""

    id: int
    plan: str
    stage: str
    created_at: datetime
    passed: bool
    body: dict[str, Any]


@dataclass(frozen=True)
class ChunkRecord:
    """One chunk's row in the ledger."""

    table_name: str
    chunk: int
    low: int | None
    high: int | None
    state: str
    rows: int | None
    source_checksum: int | None
    target_checksum: int | None
    attempts: int
    bounds: str | None = None
    snapshot_xmin: int | None = None  # the source snapshot it was read in (liftshift.resume)


@dataclass(frozen=True)
class Watermark:
    """A table's watermark column, its high-water mark, and a fingerprint of the rows at the mark."""

    column: str
    mark: str | None
    at_mark: str | None = None
    snapshot_xmin: int | None = None  # the source snapshot the mark was taken in (liftshift.xids)


class Ledger:
    """Reads and writes the ledger at a SQLAlchemy URL (SQLite by default)."""

    def __init__(self, url: str) -> None:
        self.url = url
        try:
            if url.startswith("sqlite:///"):
                Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
            self.engine = sa.create_engine(_driver(url))
            metadata.create_all(self.engine)
            _add_missing_columns(self.engine)
        except (SQLAlchemyError, ImportError, OSError) as exc:
            raise ConnectError(f"cannot open the ledger at {redact(url)}: {_reason(exc)}") from None

    def location(self) -> str:
        """Where the ledger is, with any password hidden."""
        return redact(self.url)

    def save_report(self, plan: str, stage: str, passed: bool, body: dict[str, Any]) -> int:
        """Store a stage's report; returns its id."""
        row = {
            "plan": plan,
            "stage": stage,
            "created_at": datetime.now(UTC),
            "passed": passed,
            "body": json.dumps(body, default=str),
        }
        with self.engine.begin() as conn:
            result = conn.execute(reports.insert().values(**row))
            return int(result.inserted_primary_key[0])  # type: ignore[index]

    def latest_report(self, plan: str, stage: str) -> StoredReport | None:
        """The newest report of a stage for a plan."""
        query = (
            reports.select()
            .where(reports.c.plan == plan, reports.c.stage == stage)
            .order_by(reports.c.id.desc())
            .limit(1)
        )
        with self.engine.connect() as conn:
            row = conn.execute(query).mappings().first()
        if row is None:
            return None
        return StoredReport(
            row["id"], row["plan"], row["stage"], _utc(row["created_at"]), row["passed"],
            json.loads(row["body"]),
        )  # fmt: skip

    def chunk_records(self, plan: str, table_name: str) -> list[ChunkRecord]:
        """A table's chunks, in order."""
        query = (
            chunks.select()
            .where(chunks.c.plan == plan, chunks.c.table_name == table_name)
            .order_by(chunks.c.chunk)
        )
        with self.engine.connect() as conn:
            rows = conn.execute(query).mappings().all()
        return [
            ChunkRecord(
                r["table_name"], r["chunk"], r["low"], r["high"], r["state"], r["rows"],
                _int(r["source_checksum"]), _int(r["target_checksum"]), r["attempts"], r["bounds"],
                r["snapshot_xmin"],
            )
            for r in rows
        ]  # fmt: skip

    def save_chunk(self, plan: str, record: ChunkRecord, error: str | None = None) -> None:
        """Insert or replace a chunk's row."""
        key = (chunks.c.plan == plan) & (chunks.c.table_name == record.table_name)
        key = key & (chunks.c.chunk == record.chunk)
        with self.engine.begin() as conn:
            conn.execute(chunks.delete().where(key))
            conn.execute(chunks.insert().values(**_chunk_row(plan, record, error)))

    def forget_chunks(self, plan: str, table_name: str) -> None:
        """Drop a table's chunk plan (its key range changed, so the plan is remade)."""
        key = (chunks.c.plan == plan) & (chunks.c.table_name == table_name)
        with self.engine.begin() as conn:
            conn.execute(chunks.delete().where(key))

    def save_chunks(self, plan: str, records: list[ChunkRecord]) -> None:
        """Record a table's whole chunk plan in one transaction (a kill never leaves half a plan)."""
        with self.engine.begin() as conn:
            for record in records:
                key = (chunks.c.plan == plan) & (chunks.c.table_name == record.table_name)
                conn.execute(chunks.delete().where(key & (chunks.c.chunk == record.chunk)))
                conn.execute(chunks.insert().values(**_chunk_row(plan, record, None)))

    def watermark(self, plan: str, table_name: str) -> Watermark | None:
        """The watermark recorded for a table, if any."""
        query = watermarks.select().where(watermarks.c.plan == plan, watermarks.c.table_name == table_name)
        with self.engine.connect() as conn:
            row = conn.execute(query).mappings().first()
        if row is None:
            return None
        return Watermark(row["column_name"], row["mark"], row["at_mark"], row["snapshot_xmin"])

    def save_watermark(self, plan: str, table_name: str, mark: Watermark) -> None:
        """Record a table's watermark."""
        key = (watermarks.c.plan == plan) & (watermarks.c.table_name == table_name)
        values = {"plan": plan, "table_name": table_name, "column_name": mark.column, "mark": mark.mark,
                  "at_mark": mark.at_mark, "updated_at": datetime.now(UTC),
                  "snapshot_xmin": mark.snapshot_xmin}  # fmt: skip
        with self.engine.begin() as conn:
            conn.execute(watermarks.delete().where(key))
            conn.execute(watermarks.insert().values(**values))


def _utc(moment: datetime) -> datetime:
    """A stored time in UTC, zone attached: SQLite hands back the UTC it was given without one."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _chunk_row(plan: str, record: ChunkRecord, error: str | None) -> dict[str, Any]:
    """A chunk record as a row of the chunks table."""
    return {
        "plan": plan, "table_name": record.table_name, "chunk": record.chunk,
        "low": record.low, "high": record.high, "state": record.state, "rows": record.rows,
        "source_checksum": _str(record.source_checksum), "target_checksum": _str(record.target_checksum),
        "attempts": record.attempts, "error": error, "updated_at": datetime.now(UTC), "bounds": record.bounds,
        "snapshot_xmin": record.snapshot_xmin,
    }  # fmt: skip


def _reason(exc: Exception) -> str:
    """The database's own words, without the SQL statement SQLAlchemy appends; and what to change."""
    said = str(getattr(exc, "orig", None) or exc).strip()
    first = redact((said.splitlines() or [type(exc).__name__])[0])
    if "permission denied" in first.lower():
        return f"{first}; the ledger's user must be allowed to create its tables there (or change ledger:)"
    return first


def _driver(url: str) -> str:
    """The URL with liftshift's PostgreSQL driver (psycopg 3) where it names none: SQLAlchemy's
    default for postgresql:// is psycopg2, which liftshift does not install."""
    scheme, sep, rest = url.partition("://")
    return f"postgresql+psycopg://{rest}" if sep and scheme in ("postgres", "postgresql") else url


# Columns newer than the first ledgers: table, column, type.
_ADDED_COLUMNS = [("chunks", "bounds", "TEXT"), ("chunks", "snapshot_xmin", "BIGINT"),
                  ("watermarks", "snapshot_xmin", "BIGINT")]  # fmt: skip


def _add_missing_columns(engine: sa.Engine) -> None:
    """Migrate a ledger written before its tables had some of their columns: add them, empty."""
    inspector = sa.inspect(engine)
    existing = {(t, c["name"]) for t in ("chunks", "watermarks") for c in inspector.get_columns(t)}
    with engine.begin() as conn:
        for table, name, kind in _ADDED_COLUMNS:
            if (table, name) not in existing:
                conn.execute(sa.text(f"ALTER TABLE {table} ADD COLUMN {name} {kind}"))


# Checksums are unsigned 64-bit; stored as text so every database keeps them exactly.
def _str(value: int | None) -> str | None:
    return None if value is None else str(value)


def _int(value: str | None) -> int | None:
    return None if value is None else int(value)
