"""Start the local BigQuery endpoint (bqemulator) for the demo and the tests.

It runs in a child process of its own (its DuckDB engine then has a core and a GIL to itself)
with a persistent data folder. A second liftshift process that asks for the same folder reuses
the running endpoint, found through `endpoint.json` in that folder.
"""

import asyncio
import atexit
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from liftshift.errors import ConnectError

_STARTUP_SECONDS = 90.0
_started: dict[Path, "LocalEndpoint"] = {}


@dataclass(frozen=True)
class LocalEndpoint:
    """A running local endpoint: its REST URL and the process that serves it."""

    rest_url: str
    grpc_port: int
    pid: int


def ensure_endpoint(data_dir: Path, project: str) -> LocalEndpoint:
    """Reuse the endpoint serving data_dir, or start one that stops when this process exits."""
    data_dir = data_dir.resolve()
    if data_dir in _started and _alive(_started[data_dir]):
        return _started[data_dir]
    running = _read_endpoint_file(data_dir)
    if running and _alive(running):
        return running
    endpoint = _spawn(data_dir, project)
    _started[data_dir] = endpoint
    atexit.register(stop_endpoint, data_dir)
    return endpoint


def stop_endpoint(data_dir: Path) -> None:
    """Stop the endpoint this process started for data_dir, if any."""
    endpoint = _started.pop(data_dir.resolve(), None)
    if endpoint is None:
        return
    try:
        os.kill(endpoint.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    for _ in range(100):
        if not _pid_alive(endpoint.pid):
            break
        time.sleep(0.1)
    (data_dir / "endpoint.json").unlink(missing_ok=True)


def _spawn(data_dir: Path, project: str) -> LocalEndpoint:
    data_dir.mkdir(parents=True, exist_ok=True)
    info = data_dir / "endpoint.json"
    info.unlink(missing_ok=True)
    log = (data_dir / "endpoint.log").open("ab")
    serve = [sys.executable, "-m", "liftshift.connectors.bigquery_local", str(data_dir), project]
    proc = subprocess.Popen(
        [*serve, str(os.getpid())],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + _STARTUP_SECONDS
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ConnectError(
                f"the local BigQuery endpoint exited at start; see {data_dir / 'endpoint.log'}"
            )
        endpoint = _read_endpoint_file(data_dir)
        if endpoint and endpoint.pid == proc.pid:
            return endpoint
        time.sleep(0.1)
    proc.kill()
    raise ConnectError(f"the local BigQuery endpoint did not start in {_STARTUP_SECONDS:.0f} s")


def _read_endpoint_file(data_dir: Path) -> LocalEndpoint | None:
    try:
        return LocalEndpoint(**json.loads((data_dir / "endpoint.json").read_text()))
    except (OSError, ValueError, TypeError):
        return None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a child that exited but was not reaped yet is not alive
        return os.waitpid(pid, os.WNOHANG) == (0, 0)
    except ChildProcessError:
        return True


def _alive(endpoint: LocalEndpoint) -> bool:
    if not _pid_alive(endpoint.pid):
        return False
    try:
        with urllib.request.urlopen(endpoint.rest_url + "/", timeout=2):
            return True
    except urllib.error.HTTPError:
        return True  # it answered, just not with a page at /
    except OSError:
        return False


def _serve(data_dir: Path, project: str, parent: int) -> None:
    """Run the endpoint in this process until SIGTERM or until its parent is gone; write endpoint.json
    once listening."""
    import bqemulator.storage.engine as engine
    from bqemulator.config import LogLevel, PersistenceMode, Settings
    from bqemulator.server import EmulatorServer

    load_spatial = engine.DuckDBEngine._load_spatial

    def _spatial_if_available(self: engine.DuckDBEngine) -> None:
        # Offline, DuckDB cannot download its spatial extension: run without GEOGRAPHY.
        try:
            load_spatial(self)
        except Exception:  # noqa: BLE001
            return

    engine.DuckDBEngine._load_spatial = _spatial_if_available  # type: ignore[method-assign]
    settings = Settings(
        persistence_mode=PersistenceMode.PERSISTENT,
        data_dir=data_dir,
        rest_port=0,
        grpc_port=0,
        default_project_id=project,
        enable_format_extensions=False,
        log_level=LogLevel.WARNING,
    )
    server = EmulatorServer(settings)

    async def run() -> None:
        await server.start()
        endpoint = LocalEndpoint(server.rest_url, server.grpc_port, os.getpid())
        tmp = data_dir / "endpoint.json.tmp"
        tmp.write_text(json.dumps(endpoint.__dict__))
        tmp.replace(data_dir / "endpoint.json")
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        watch = asyncio.create_task(_until_orphaned(parent, stop))
        await stop.wait()
        watch.cancel()
        await server.stop()

    asyncio.run(run())


async def _until_orphaned(parent: int, stop: asyncio.Event) -> None:
    """Set stop once the process that started the endpoint is gone: killed (kill -9 leaves no atexit),
    it could not stop the endpoint, which would otherwise serve on with nobody to stop it."""
    while os.getppid() == parent:
        await asyncio.sleep(1.0)
    stop.set()


if __name__ == "__main__":
    _serve(Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]))
