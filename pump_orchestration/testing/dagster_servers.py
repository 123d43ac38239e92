"""Starting a real dagster-webserver and dagster-daemon for integration tests."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

from pump_orchestration.testing import free_port

#: The checkout: workspace.yaml and dagster.yaml live here (the package is installed in editable mode).
REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def dagster_home(path: Path) -> Path:
    """A DAGSTER_HOME holding the project's dagster.yaml, its storage already created.

    Creating the storage here avoids the webserver and the daemon racing to create
    the same SQLite schema when they start together.
    """
    import dagster as dg

    path.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "dagster.yaml", path / "dagster.yaml")
    with dg.DagsterInstance.from_config(str(path)) as instance:
        instance.get_runs_count()
    return path


def _wait_http(url: str, proc: subprocess.Popen, log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args[0]} exited with {proc.returncode}:\n{log.read_text()[-4000:]}")
        try:
            urllib.request.urlopen(url, timeout=2).read()
            return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"{url} did not answer within {timeout}s:\n{log.read_text()[-4000:]}")


@contextmanager
def dagster_processes(env: dict[str, str], workdir: Path, *, daemon: bool = True, timeout: float = 120.0):
    """Run dagster-webserver (and the daemon) on a free port; yields the port. Logs go to ``workdir``."""
    port = free_port()
    full_env = {**os.environ, **env}
    procs: list[subprocess.Popen] = []
    logs = []
    try:
        commands = [[str(BIN / "dagster-webserver"), "-h", "127.0.0.1", "-p", str(port), "-w", "workspace.yaml"]]
        if daemon:
            commands.append([str(BIN / "dagster-daemon"), "run", "-w", "workspace.yaml"])
        for cmd in commands:
            log = workdir / f"{Path(cmd[0]).name}.log"
            handle = open(log, "w")
            logs.append((log, handle))
            procs.append(subprocess.Popen(cmd, cwd=REPO, env=full_env, stdout=handle, stderr=subprocess.STDOUT,
                                          start_new_session=True))
        _wait_http(f"http://127.0.0.1:{port}/server_info", procs[0], logs[0][0], timeout)
        yield port
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
        for _, handle in logs:
            handle.close()


def synthetic_deployment(pg_dsn: str, tmp_path: Path) -> tuple:
    """A PostgreSQL warehouse with 8 h of synthetic coin_metrics, a fresh DAGSTER_HOME, and the env for both.

    Returns (engine, home, env) for ``dagster_processes(env, tmp_path)``.
    """
    from pump_orchestration.data.ingest import ingest_synthetic
    from pump_orchestration.warehouse.db import init_schema, make_engine

    engine = make_engine(pg_dsn)
    init_schema(engine, create_coin_metrics=True)
    ingest_synthetic(engine, n_coins=80, start="2025-09-01T00:00:00Z", hours=8, seed=5)
    home = dagster_home(tmp_path / "home")
    env = {"DAGSTER_HOME": str(home), "DB_DSN": pg_dsn, "PUMP_DATA_DIR": str(tmp_path / "data"),
           "PUMP_PARTITIONS_START": "2025-08-25"}
    return engine, home, env
