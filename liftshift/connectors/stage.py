"""Where BigQuery load jobs read their Parquet files from: a stage the plan names, or an upload.

- ``target.stage: gs://BUCKET/PREFIX`` (real BigQuery): each chunk's Parquet file is written to
  Cloud Storage and loaded from there by URI;
- ``target.stage: file:///FOLDER`` (the local endpoint, which reads such URIs): the same, in a
  folder on this machine;
- unset: each load job uploads its file from a temporary folder (the client's media upload).

A staged file is deleted once its load job has ended, loaded or not. A run killed between the
two leaves it behind, named ``liftshift-*.parquet``: a bucket lifecycle rule can expire them.
"""

import tempfile
import uuid
from contextlib import suppress
from pathlib import Path

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
from google.api_core.retry import Retry
from google.cloud import bigquery

from liftshift.errors import ConnectError


class LoadFiles:
    """Loads Arrow tables into BigQuery tables through Parquet files, staged or uploaded."""

    def __init__(self, client: bigquery.Client, retry: Retry, stage: str | None = None) -> None:
        self.client, self.retry, self.stage = client, retry, stage.rstrip("/") if stage else None
        if self.stage is None:
            return
        self.fs, self.root = pafs.FileSystem.from_uri(self.stage)
        if isinstance(self.fs, pafs.LocalFileSystem):
            try:
                Path(self.root).mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                reason = f"cannot stage load files in {self.stage}: {exc}; check target.stage"
                raise ConnectError(reason) from None

    def load(self, data: pa.Table, table_id: str, config: bigquery.LoadJobConfig) -> None:
        """Run one load job of data into table_id and wait for it; raises the job's error."""
        if self.stage is None:
            with tempfile.TemporaryDirectory(prefix="liftshift-stage-") as tmp:
                path = Path(tmp) / "load.parquet"
                pq.write_table(data, path)
                with path.open("rb") as fh:
                    self._wait(self.client.load_table_from_file(fh, table_id, job_config=config))
            return
        name = f"liftshift-{table_id.rsplit('.', 1)[-1]}-{uuid.uuid4().hex}.parquet"
        staged = f"{self.root}/{name}"
        try:
            pq.write_table(data, staged, filesystem=self.fs)
        except OSError as exc:
            raise OSError(f"cannot write {self.stage}/{name}: {exc}; check target.stage") from None
        try:
            self._wait(self.client.load_table_from_uri(f"{self.stage}/{name}", table_id, job_config=config))
        finally:
            # The load's outcome is what the chunk reports; a file left here is a bucket rule's to expire.
            with suppress(OSError):
                self.fs.delete_file(staged)

    def _wait(self, job: bigquery.LoadJob) -> None:
        job.result(retry=self.retry, timeout=600)
