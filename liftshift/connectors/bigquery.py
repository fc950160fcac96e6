"""BigQuery as a target, through google-cloud-bigquery: Parquet load jobs, queries, fingerprints."""

import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlparse

import pyarrow as pa
from google.api_core import exceptions as gexc
from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials
from google.auth.exceptions import DefaultCredentialsError
from google.cloud import bigquery

from liftshift import fingerprint as fp
from liftshift.connectors.base import Column, Fingerprint, KeyRange, Table, TargetColumn, is_part
from liftshift.connectors.stage import LoadFiles
from liftshift.errors import ConnectError, PlanError
from liftshift.types import target_mapping

# Without a bound, the client retries a server error for ten minutes before saying anything.
_RETRY = bigquery.DEFAULT_RETRY.with_timeout(60)

# How long a staging table outlives a run that could not drop it.
_STAGE_LIFETIME = timedelta(days=1)
# How long a table's part waits for the transfer to be resumed; a later resume moves its chunk again.
_PART_LIFETIME = timedelta(days=7)

# A query may name at most 1,000 tables.
_PARTS_PER_QUERY = 500

# The API reports legacy type names; parity compares standard ones.
_STANDARD = {"INTEGER": "INT64", "FLOAT": "FLOAT64", "BOOLEAN": "BOOL"}


def parse_url(url: str) -> tuple[str, str, str | None]:
    """Split bigquery://PROJECT/DATASET[?endpoint=…] into project, dataset and endpoint."""
    parsed = urlparse(url)
    dataset = parsed.path.strip("/")
    if not parsed.netloc or not dataset or "/" in dataset:
        raise PlanError(f"target.url '{url}' must look like bigquery://PROJECT/DATASET")
    endpoint = parse_qs(parsed.query).get("endpoint", [None])[0]
    return parsed.netloc, dataset, endpoint


def _refuse_unreachable(endpoint: str) -> None:
    """Fail at once when nothing listens at an endpoint: the client would retry for a minute first."""
    parsed = urlparse(endpoint)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        socket.create_connection((parsed.hostname or "localhost", port), timeout=10).close()
    except OSError as exc:
        raise ConnectError(
            f"cannot reach the BigQuery endpoint {endpoint}: {exc.strerror or exc}; check endpoint= in "
            "target.url and that the endpoint is running"
        ) from None


class BigQueryTarget:
    """A BigQuery dataset liftshift writes into (real, or a local endpoint)."""

    dialect = "bigquery"
    # Why every chunk of a table lands in a part of its own (a table of its own, liftshift.assembly):
    # a BigQuery table takes 1,500 load or DML jobs a day and about 5 metadata updates per 10 s, and
    # scans every row of a column its WHERE names (no index). Written into the table itself, each
    # chunk took a delete and a load job: a table over ~50 GB (750 chunks of 64 MiB) exceeded the
    # quota, and each chunk's delete and proof scanned the whole table: quadratic bytes billed. In
    # parts, each chunk is one load job replacing its part (idempotent), its proof scans only it,
    # and one transaction assembles the table.
    stages_chunks = True

    def __init__(
        self, project: str, dataset: str, endpoint: str | None = None, stage: str | None = None
    ) -> None:
        self.project = project
        self.dataset = dataset
        if endpoint:
            _refuse_unreachable(endpoint)
            self.client = bigquery.Client(
                project=project,
                credentials=AnonymousCredentials(),
                client_options=ClientOptions(api_endpoint=endpoint),
            )
        else:
            try:
                self.client = bigquery.Client(project=project)
            except DefaultCredentialsError as exc:
                raise ConnectError(
                    f"no Google credentials for BigQuery ({exc}); run `gcloud auth application-default "
                    "login`, or set GOOGLE_APPLICATION_CREDENTIALS to a service account's key file"
                ) from None
        try:
            self.client.create_dataset(dataset, exists_ok=True, timeout=30, retry=_RETRY)
        except (gexc.GoogleAPIError, OSError) as exc:
            where, reason = endpoint or "BigQuery", (str(exc).strip().splitlines() or [repr(exc)])[0]
            raise ConnectError(
                f"cannot reach dataset {project}.{dataset} at {where}: {reason}; check target.url "
                "and credentials (gcloud auth application-default login)"
            ) from None
        self.files = LoadFiles(self.client, _RETRY, stage)

    def close(self) -> None:
        """Close the client's connections."""
        self.client.close()

    def table_id(self, table: Table) -> str:
        """The table's full id, project.dataset.table."""
        return f"{self.project}.{self.dataset}.{table.name}"

    def relation(self, table: Table) -> str:
        """The quoted table name for SQL."""
        return f"`{self.table_id(table)}`"

    def schema(self, table: Table) -> list[bigquery.SchemaField]:
        """The mapped BigQuery schema of a source table."""
        return [
            bigquery.SchemaField(
                c.name, c.target_type(self.dialect), mode="NULLABLE" if c.nullable else "REQUIRED"
            )
            for c in table.columns
        ]

    def prepare(self, table: Table) -> None:
        """Create the table with mapped types unless it exists; a part expires (_PART_LIFETIME)."""
        ref = bigquery.Table(self.table_id(table), schema=self.schema(table))
        if is_part(table):  # an abandoned transfer's parts are not billed for ever
            ref.expires = datetime.now(UTC) + _PART_LIFETIME
        self.client.create_table(ref, exists_ok=True, retry=_RETRY)

    def drop(self, table: Table) -> None:
        """Delete the table if it exists."""
        self.client.delete_table(self.table_id(table), not_found_ok=True, retry=_RETRY)

    def assemble(self, table: Table, parts: list[Table]) -> None:
        """Replace the table by its staging tables' rows in one transaction."""
        # A copy job with several sources would do in BigQuery; the local endpoint copies only the first.
        rel = self.relation(table)
        unions = [
            " UNION ALL ".join(f"SELECT * FROM {self.relation(p)}" for p in parts[i : i + _PARTS_PER_QUERY])
            for i in range(0, len(parts), _PARTS_PER_QUERY)
        ]
        inserts = "".join(f"INSERT INTO {rel} {union}; " for union in unions)
        self._run(f"BEGIN TRANSACTION; DELETE FROM {rel} WHERE TRUE; {inserts}COMMIT TRANSACTION;")

    def write(self, table: Table, data: pa.Table, key_range: KeyRange | None) -> int:
        """Replace a whole table (a part, see stages_chunks) by data: one Parquet load job."""
        if key_range is not None:
            raise ValueError("BigQuery replaces whole tables only: its chunks land in parts of their own")
        config = bigquery.LoadJobConfig(
            source_format="PARQUET", schema=self.schema(table), write_disposition="WRITE_TRUNCATE"
        )
        self.files.load(data, self.table_id(table), config)
        return data.num_rows

    def fingerprint(self, table: Table, key_range: KeyRange | None) -> Fingerprint:
        """Row count and checksum of a key range, computed inside BigQuery."""
        sql = fp.fingerprint_sql("bigquery", self.relation(table), table.columns, key_range)
        row = next(iter(self._run(sql)))
        return fp.combine(row["n"], row["hi"], row["lo"])

    def columns(self, table: Table) -> list[TargetColumn]:
        """The table's columns as BigQuery describes them (empty when it does not exist)."""
        try:
            found = self.client.get_table(self.table_id(table), retry=_RETRY)
        except gexc.NotFound:
            return []
        return [
            TargetColumn(f.name, _STANDARD.get(f.field_type, f.field_type), f.mode != "REQUIRED")
            for f in found.schema
        ]

    def table_names(self) -> set[str]:
        """The names of the tables in the dataset."""
        listed = self.client.list_tables(f"{self.project}.{self.dataset}", retry=_RETRY)
        return {t.table_id for t in listed}

    def expected_type(self, column: Column) -> str:
        """The type name this target reports for a mapped column."""
        return target_mapping(column.mapping, self.dialect).type

    def query(self, sql: str) -> pa.Table:
        """Run a query (names resolve in the target dataset) and return its result as Arrow."""
        return self._run(sql).to_arrow(create_bqstorage_client=False)

    def _run(self, sql: str) -> bigquery.table.RowIterator:
        """Run a query with names resolving in the target dataset and bounded retries."""
        config = bigquery.QueryJobConfig(default_dataset=f"{self.project}.{self.dataset}")
        job = self.client.query(sql, job_config=config, retry=_RETRY, job_retry=None)
        return job.result(retry=_RETRY, timeout=600)

    def upsert(self, table: Table, data: pa.Table, key: tuple[str, ...]) -> int:
        """Replace the rows whose primary key is in data: load a staging table, then one transaction."""
        if data.num_rows == 0:
            return 0
        with self._staged(table, data, self.schema(table)) as stage:
            names = ", ".join(f"`{c.name}`" for c in table.columns)
            rel = self.relation(table)
            self._run(
                f"BEGIN TRANSACTION; DELETE FROM {rel} AS t WHERE {_exists(stage, key)}; "
                f"INSERT INTO {rel} ({names}) SELECT {names} FROM {stage}; COMMIT TRANSACTION;"
            )
        return data.num_rows

    def delete_keys(self, table: Table, keys: pa.Table) -> int:
        """Delete the rows whose key columns equal a row of keys; returns how many keys were given."""
        if keys.num_rows == 0:
            return 0
        schema = [f for f in self.schema(table) if f.name in keys.column_names]
        with self._staged(table, keys, schema) as stage:
            where = _exists(stage, tuple(keys.column_names))
            self._run(f"DELETE FROM {self.relation(table)} AS t WHERE {where}")
        return keys.num_rows

    def keys(self, table: Table, columns: tuple[str, ...], key_range: KeyRange | None) -> pa.Table:
        """The key columns of the rows in a key range."""
        names = ", ".join(f"`{c}`" for c in columns)
        where = fp.range_predicate("bigquery", key_range)
        return self.query(f"SELECT {names} FROM {self.relation(table)} WHERE {where}")

    @contextmanager
    def _staged(self, table: Table, data: pa.Table, schema: list[bigquery.SchemaField]) -> Iterator[str]:
        """A scratch table holding data, dropped on the way out; yields its quoted name."""
        stage_id = f"{self.project}.{self.dataset}._liftshift_stage_{table.name}_{uuid.uuid4().hex[:8]}"
        stage = bigquery.Table(stage_id, schema=schema)
        # Created expiring, before its rows arrive: a run killed before the finally below cannot
        # drop it, so BigQuery does a day later.
        stage.expires = datetime.now(UTC) + _STAGE_LIFETIME
        config = bigquery.LoadJobConfig(
            source_format="PARQUET", schema=schema, write_disposition="WRITE_APPEND"
        )
        try:
            self.client.create_table(stage, exists_ok=True, retry=_RETRY)  # a retry finds its own table
            self.files.load(data, stage_id, config)
            yield f"`{stage_id}`"
        finally:
            self.client.delete_table(stage_id, not_found_ok=True, retry=_RETRY)


def _exists(stage: str, key: tuple[str, ...]) -> str:
    """A condition on target alias t: a staged row has the same key."""
    match = " AND ".join(f"s.`{c}` = t.`{c}`" for c in key)
    return f"EXISTS (SELECT 1 FROM {stage} AS s WHERE {match})"
