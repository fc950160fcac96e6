"""The plan file: what to migrate, where to, and the gates between stages."""

import fnmatch
import os
import re
import urllib.parse
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from liftshift.errors import PlanError

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
TARGET_SCHEMES = ("bigquery://", "duckdb://", "postgresql://", "postgres://")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class SourceSpec(_Strict):
    """The PostgreSQL database to migrate from."""

    url: str
    schema_name: str = Field("public", alias="schema")

    @field_validator("url")
    @classmethod
    def _postgres_only(cls, url: str) -> str:
        if not url.startswith(("postgresql://", "postgres://")):
            raise ValueError("must start with postgresql:// (only PostgreSQL sources for now)")
        return url


class TargetSpec(_Strict):
    """The warehouse to migrate into."""

    url: str
    # BigQuery only: where load files are staged (liftshift.connectors.stage); unset, each is uploaded.
    stage: str | None = None

    @field_validator("url")
    @classmethod
    def _known_scheme(cls, url: str) -> str:
        if not url.startswith(TARGET_SCHEMES):
            allowed = "bigquery://PROJECT/DATASET, duckdb:///path.duckdb or postgresql://…"
            raise ValueError(f"must be one of {allowed}")
        return url

    @model_validator(mode="after")
    def _stage_for_bigquery(self) -> "TargetSpec":
        if self.stage is None:
            return self
        if not self.url.startswith("bigquery://"):
            raise ValueError("stage is where BigQuery load files wait; other targets take none")
        if not self.stage.startswith(("gs://", "file:///")):
            raise ValueError("stage must be gs://BUCKET/PREFIX, or file:///FOLDER for the local endpoint")
        if self.stage.startswith("file://") and "endpoint=" not in self.url:
            raise ValueError("BigQuery cannot read this machine's files: stage must be gs://BUCKET/PREFIX")
        return self


class ValidateSpec(_Strict):
    """How validate compares."""

    float_tolerance: float = Field(1e-9, ge=0)  # relative, for sums of floats (rows differ exactly)


class TransferSpec(_Strict):
    """How transfer splits and paces the copy."""

    # Rows per chunk; unset, as many as hold about chunk_bytes of the table as PostgreSQL stores it.
    chunk_rows: int | None = Field(None, gt=0)
    chunk_bytes: int = Field(64 * 2**20, gt=0)
    max_source_connections: int = Field(2, gt=0)
    target_writers: int = Field(2, gt=0)  # chunks written into the target at once, each on its own connection
    # Tables moved at once, each holding a source connection for its snapshot; unset: max_source_connections.
    tables_at_once: int | None = Field(None, gt=0)
    # table -> the column whose value grows with every change to a row (e.g. updated_at)
    watermarks: dict[str, str] = Field(default_factory=dict)
    # Where each chunk's checksum at extract is computed (liftshift.extract explains the choice).
    verify: Literal["extract", "source"] = "extract"
    dask_address: str | None = None  # a running scheduler; LIFTSHIFT_DASK_ADDRESS overrides it

    @field_validator("chunk_bytes", mode="before")
    @classmethod
    def _size(cls, value: int | str) -> int:
        return parse_size(value)


_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]i?B|B)?\s*$", re.IGNORECASE)
_UNITS = {"b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
          "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}  # fmt: skip


def parse_size(value: int | str) -> int:
    """Bytes from an int or a size such as '500MB' or '2 GiB'."""
    if isinstance(value, int):
        return value
    match = _SIZE.match(value)
    if not match:
        raise ValueError(f"'{value}' is not a size; write bytes or e.g. '500MB', '2GiB'")
    return int(float(match[1]) * _UNITS[(match[2] or "b").lower()])


class AssessSpec(_Strict):
    """How assess samples tables, groups them into waves and gives advice."""

    sample_rows: int = Field(50_000, gt=0)
    max_wave_bytes: int | None = None
    advise_bytes: int = 2**30
    hot_writes: int = Field(10_000, ge=0)

    @field_validator("max_wave_bytes", "advise_bytes", mode="before")
    @classmethod
    def _size(cls, value: int | str | None) -> int | None:
        return None if value is None else parse_size(value)


class PriceSpec(_Strict):
    """BigQuery list prices in USD (defaults: US multi-region, 2026)."""

    storage_gib_month: float = Field(0.02, ge=0)
    query_tib: float = Field(6.25, ge=0)
    slot_hour: float = Field(0.04, ge=0)
    baseline_slots: int = Field(100, gt=0)


class GateSpec(_Strict):
    """Thresholds the gates between stages apply."""

    max_latency_ratio: float | None = Field(None, gt=0)


class Plan(_Strict):
    """A migration plan, loaded from YAML."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    source: SourceSpec
    target: TargetSpec
    tables: list[str] = Field(default_factory=lambda: ["*"])
    ledger: str | None = None
    workload: str = "workload"
    transfer: TransferSpec = Field(default_factory=TransferSpec)
    validate_: ValidateSpec = Field(default_factory=ValidateSpec, alias="validate")
    assess: AssessSpec = Field(default_factory=AssessSpec)
    prices: PriceSpec = Field(default_factory=PriceSpec)
    accept: list[str] = Field(default_factory=list)
    gates: GateSpec = Field(default_factory=GateSpec)
    base_dir: Path = Field(default=Path("."), exclude=True)

    def ledger_url(self) -> str:
        """The ledger's SQLAlchemy URL: the plan's, or a SQLite file beside the plan. As for DuckDB,
        sqlite:///rel/path is beside the plan, sqlite:////abs/path is not."""
        if self.ledger:
            path = self.ledger.removeprefix("sqlite:///")
            relative = path != self.ledger and path and not path.startswith("/")
            return f"sqlite:///{self.base_dir / path}" if relative else self.ledger
        return f"sqlite:///{self.state_dir() / (self.name + '.db')}"

    def accepts(self, table: str, column: str) -> bool:
        """Whether a pattern of accept: matches table.column (a lossy column the user accepts)."""
        return any(fnmatch.fnmatchcase(f"{table}.{column}", pattern) for pattern in self.accept)

    def state_dir(self) -> Path:
        """The folder beside the plan where liftshift keeps its own files."""
        return self.base_dir / ".liftshift"

    def expectations_dir(self) -> Path:
        """The folder of expectation suites, one JSON file per table."""
        return self.base_dir / "expectations"

    def workload_dir(self) -> Path:
        """The folder of SQL files the benchmark replays."""
        return self.base_dir / self.workload


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing a key given twice in one mapping (else the last would win unseen)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key '{key}' is given twice; keep one", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def load_plan(path: str | Path, ledger_only: bool = False) -> Plan:
    """Read, expand and validate a plan file; every problem raises one PlanError. ledger_only: for
    commands that read the ledger alone (status), a ${VAR} left unset outside `ledger` stays as written."""
    path = Path(path)
    if not path.is_file():
        raise PlanError(f"{path}: no such plan file")
    try:
        raw = yaml.load(path.read_text(), Loader=_UniqueKeyLoader)  # a SafeLoader
    except yaml.YAMLError as exc:
        raise PlanError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise PlanError(f"{path}: the plan must be a mapping with keys name, source, target")
    return parse_plan(raw, base_dir=path.resolve().parent, origin=str(path), ledger_only=ledger_only)


def parse_plan(raw: dict[str, Any], base_dir: Path, origin: str = "plan", ledger_only: bool = False) -> Plan:
    """Validate an already-parsed plan mapping."""
    expanded = _expand(raw, origin, "", ledger_only)
    try:
        return Plan.model_validate({**expanded, "base_dir": base_dir})
    except ValidationError as exc:
        raise PlanError(_explain(exc, origin)) from None


def _expand(value: Any, origin: str, key: str, ledger_only: bool = False) -> Any:
    """Replace ${VAR} in every string with the environment's value."""
    if isinstance(value, dict):
        return {k: _expand(v, origin, f"{key}.{k}" if key else str(k), ledger_only) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand(v, origin, f"{key}[{i}]", ledger_only) for i, v in enumerate(value)]
    if isinstance(value, str):
        missing = [name for name in _VAR.findall(value) if name not in os.environ]
        if missing and ledger_only and key.split(".")[0] != "ledger":
            return value  # never used by the command: the ledger does not need the source's password
        if missing:
            raise PlanError(
                f"{origin}: key '{key}' uses ${{{missing[0]}}}, which is not set in the "
                f"environment; export {missing[0]}=… or write the value in the plan"
            )
        return _VAR.sub(lambda m: _value_at(value, m), value)
    return value


def _value_at(template: str, found: re.Match[str]) -> str:
    """A variable's value; percent-encoded inside a URL's user:password@, where '@', '/', '#' or '?'
    in a password would end it early (every driver liftshift uses decodes it)."""
    value = os.environ[found[1]]
    scheme = template.find("://")
    userinfo_end = template.find("@", scheme + 3)
    authority = template[scheme + 3 : found.start()] if scheme >= 0 else "/"
    inside = scheme >= 0 and found.end() <= userinfo_end and not set(authority) & set("/?#")
    return urllib.parse.quote(value, safe="") if inside else value


def _explain(exc: ValidationError, origin: str) -> str:
    """Turn pydantic's errors into one message naming each key and what is allowed."""
    lines = []
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"]) or "(top level)"
        if err["type"] == "extra_forbidden":
            lines.append(f"key '{key}' is not a plan setting; remove or correct it")
        elif err["type"] == "missing":
            lines.append(f"key '{key}' is required")
        else:  # our validators' messages, without pydantic's "Value error, " before them
            lines.append(f"key '{key}': {err['msg'].removeprefix('Value error, ')}")
    return f"{origin}: " + "; ".join(lines)
