"""A real dagster-webserver and dagster-daemon for integration tests, and GraphQL calls against them."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import requests
import yaml

from pump_orchestration.testing import free_port

#: The checkout: workspace.yaml and dagster.yaml live here (the package is installed in editable mode).
REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def dagster_home(path: Path) -> Path:
    """A DAGSTER_HOME holding the project's dagster.yaml with its storage moved under ``path``, already created.

    The project's file puts storage under ./.dagster_home relative to where Dagster starts (the
    checkout); a test keeps every other setting but its own storage. Creating the storage here
    avoids the webserver and the daemon racing to create the same SQLite schema when they start together.
    """
    path.mkdir(parents=True, exist_ok=True)
    config = yaml.safe_load((REPO / "dagster.yaml").read_text())
    config["storage"]["sqlite"]["base_dir"] = str(path)
    config["local_artifact_storage"]["config"]["base_dir"] = str(path)
    config["compute_logs"]["config"]["base_dir"] = str(path / "storage")
    (path / "dagster.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
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


def _signal_group(proc: subprocess.Popen, signum: int) -> None:
    try:
        os.killpg(proc.pid, signum)
    except ProcessLookupError:  # the group is gone
        pass


@contextmanager
def _processes(commands: list[list[str]], env: dict[str, str], workdir: Path, cwd: Path = REPO,
               stop_group: bool = False):
    """Start ``commands`` in ``cwd`` (the checkout) with ``env``, logs under ``workdir``; stop them at exit.

    Each command leads its own session. Only the command is stopped, so the runs a stopped daemon launched
    may finish, as they would in production; ``stop_group`` then also kills what is left of its session:
    ``dagster dev``'s webserver and daemon outlive it otherwise (orphaned to init, still serving).
    """
    full_env = {**os.environ, **env}
    procs: list[tuple[subprocess.Popen, Path]] = []
    handles = []
    try:
        for cmd in commands:
            log = workdir / f"{Path(cmd[0]).name}.log"
            handle = open(log, "a")
            handles.append(handle)
            procs.append((subprocess.Popen(cmd, cwd=cwd, env=full_env, stdout=handle, stderr=subprocess.STDOUT,
                                           start_new_session=True), log))
        yield procs
    finally:
        for proc, _ in procs:
            proc.terminate()
        for proc, _ in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
            if stop_group:
                _signal_group(proc, signal.SIGKILL)
        for handle in handles:
            handle.close()


@contextmanager
def dagster_processes(env: dict[str, str], workdir: Path, *, daemon: bool = True, timeout: float = 120.0):
    """Run dagster-webserver (and the daemon) on a free port; yields the port. Logs go to ``workdir``."""
    port = free_port()
    commands = [[str(BIN / "dagster-webserver"), "-h", "127.0.0.1", "-p", str(port), "-w", "workspace.yaml"]]
    if daemon:
        commands.append([str(BIN / "dagster-daemon"), "run", "-w", "workspace.yaml"])
    with _processes(commands, env, workdir) as procs:
        webserver, log = procs[0]
        _wait_http(f"http://127.0.0.1:{port}/server_info", webserver, log, timeout)
        yield port


@contextmanager
def dagster_daemon(env: dict[str, str], workdir: Path):
    """Run dagster-daemon alone, so a test can stop and start it between inserts."""
    with _processes([[str(BIN / "dagster-daemon"), "run", "-w", "workspace.yaml"]], env, workdir) as procs:
        yield procs[0][0]


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
    env = {"DAGSTER_HOME": str(home), "PUMP_DEPLOYMENT": "production", "DB_DSN": pg_dsn,
           "PUMP_DATA_DIR": str(tmp_path / "data"),
           "PUMP_PARTITIONS_START": "2025-08-25"}
    return engine, home, env


# ---------------------------------------------------------------- GraphQL, as n8n or a script sends it

_LAUNCH = """
mutation($p: ExecutionParams!) {
  launchRun(executionParams: $p) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on RunConfigValidationInvalid { errors { message } }
    ... on PythonError { message }
  }
}"""
_STATUS = 'query($id: ID!) { runOrError(runId: $id) { ... on Run { status } } }'


def launch_run(port: int, config: dict, partition: str, job: str = "train_model_job",
               run_config: dict | None = None) -> dict:
    """Launch ``job`` with the raw launchRun mutation (what an n8n HTTP node sends)."""
    variables = {"p": {
        "selector": {"repositoryLocationName": "pump_orchestration", "repositoryName": "__repository__",
                     "jobName": job},
        "runConfigData": run_config or {"resources": {"training_request": {"config": config}}},
        "executionMetadata": {"tags": [{"key": "dagster/partition", "value": partition}]},
    }}
    response = requests.post(f"http://127.0.0.1:{port}/graphql", json={"query": _LAUNCH, "variables": variables},
                             timeout=60)
    response.raise_for_status()
    return response.json()["data"]["launchRun"]


def wait_for_run(port: int, run_id: str, timeout: float = 300) -> str:
    """Poll the run's status over GraphQL until it ends; returns SUCCESS, FAILURE or CANCELED."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = requests.post(f"http://127.0.0.1:{port}/graphql",
                                 json={"query": _STATUS, "variables": {"id": run_id}}, timeout=30)
        status = response.json()["data"]["runOrError"]["status"]
        if status in ("SUCCESS", "FAILURE", "CANCELED"):
            return status
        time.sleep(1)
    raise TimeoutError(f"run {run_id} still {status} after {timeout}s")


def run_errors(home, run_id: str) -> str:
    """The failure events of a run, read from the instance in ``home`` (for assertion messages)."""
    with dg.DagsterInstance.from_config(str(home)) as instance:
        return "\n".join(
            str(e.dagster_event.event_specific_data) for e in instance.all_logs(run_id)
            if e.dagster_event and e.dagster_event.is_failure
        )
