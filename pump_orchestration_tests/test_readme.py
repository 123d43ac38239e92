"""The README, run as written: every fenced block of README.md, in order, on the demo data.

The blocks are read from README.md itself, so the README and this test cannot drift apart:

* ``bash`` blocks run with bash in a checkout of their own (the repository's files linked into a
  temporary folder, with its own ``.dagster_home``; ``PUMP_DATA_DIR`` points into the test's folder).
  A ``dagster dev`` line starts that webserver and daemon in the background (replacing the previous
  one) on a free port instead of 3000; the blocks after it talk to it.
* ``yaml`` blocks are run configs; their first line names the job and the day,
  ``# <job>, day YYYY-MM-DD``. They are launched over GraphQL, as the launchpad does.
* The n8n webhook the README points at (127.0.0.1:5678) is a local receiver answering 200 on a free port.
* ``json`` blocks are GraphQL bodies POSTed to the webserver; ``python`` blocks run with the venv's Python.
* A block whose first line is ``# not run by the README test: <why>`` is skipped, visibly in the README.

Every run the blocks start (or the sensors start because of them) must succeed. Inline code in the
prose is reference, not run.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import textwrap
import threading
import time
from contextlib import ExitStack
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa
import yaml

from pump_orchestration.testing import free_port
from pump_orchestration.testing.dagster_servers import REPO, _processes, _wait_http, launch_run

README = REPO / "README.md"
NOT_RUN = "# not run by the README test:"
_FENCE = re.compile(r"^(?P<indent> *)```(?P<lang>\w+)\n(?P<body>.*?)^(?P=indent)```$", re.M | re.S)
_HEADER = re.compile(r"^# (?P<job>\w+), day (?P<day>\d{4}-\d{2}-\d{2})$")
_LINKED = {".git", ".dagster_home", ".hypothesis", ".pytest_cache", "build", "dist"}  # not part of a checkout
_TERMINAL = {"SUCCESS", "FAILURE", "CANCELED"}


@dataclass(frozen=True)
class Block:
    lang: str
    text: str
    line: int

    @property
    def runs(self) -> bool:
        return not self.text.startswith(NOT_RUN)


def readme_blocks(text: str | None = None) -> list[Block]:
    """The fenced blocks of the README, in order, dedented (blocks inside list items are indented)."""
    text = README.read_text() if text is None else text
    return [Block(m["lang"], textwrap.dedent(m["body"]),
                  text[: m.start()].count("\n") + 1) for m in _FENCE.finditer(text)]


def test_every_readme_block_is_one_the_readme_test_can_run():
    blocks = readme_blocks()
    assert {b.lang for b in blocks} <= {"bash", "yaml", "json", "python"}
    for block in blocks:
        if block.lang == "yaml":
            assert _HEADER.match(block.text.splitlines()[0]), f"README line {block.line}: yaml block without header"
    skipped = [b.line for b in blocks if not b.runs]
    assert len(skipped) <= 2, f"README blocks not run (lines {skipped}): keep these few"
    assert any("dagster dev" in b.text for b in blocks) and any(b.lang == "json" for b in blocks)


def test_readme_blocks_are_found_inside_list_items():
    text = "- item\n  ```yaml\n  # test_model_job, day 2025-09-01\n  ops: {a: 1}\n  ```\n"
    assert readme_blocks(text) == [Block("yaml", "# test_model_job, day 2025-09-01\nops: {a: 1}\n", 2)]


class _Readme:
    """Runs blocks in a checkout of their own, with at most one ``dagster dev`` running."""

    def __init__(self, tmp_path: Path):
        self.checkout = tmp_path / "checkout"
        self.checkout.mkdir()
        for entry in REPO.iterdir():
            if entry.name not in _LINKED:
                (self.checkout / entry.name).symlink_to(entry)
        if (REPO.parent / "shared").exists():  # the README's ../shared/realdata path
            (tmp_path / "shared").symlink_to(REPO.parent / "shared")
        self.tmp = tmp_path
        self.env = {k: v for k, v in os.environ.items() if k not in ("DB_DSN", "PUMP_DEPLOYMENT", "DAGSTER_HOME")}
        self.env["PUMP_DATA_DIR"] = str(tmp_path / "data")
        self.port = free_port()
        self.n8n = _Receiver()
        self.server = ExitStack()  # the running dagster dev, if any
        self.server_log = None
        self.visited = False

    def local(self, text: str) -> str:
        """The block with the webserver's free port in place of 3000, and the n8n stand-in's in place of 5678."""
        return (text.replace("127.0.0.1:3000", f"127.0.0.1:{self.port}")
                .replace("port_number=3000", f"port_number={self.port}")
                .replace("127.0.0.1:5678", f"127.0.0.1:{self.n8n.port}"))

    def bash(self, script: str, where: str) -> str:
        out = subprocess.run(["bash", "-euo", "pipefail", "-c", self.local(script)], cwd=self.checkout,
                             env=self.env, capture_output=True, text=True, timeout=900)
        assert out.returncode == 0, (f"{where} failed ({out.returncode}):\n{script}\n"
                                     f"{out.stdout[-3000:]}\n{out.stderr[-3000:]}")
        return out.stdout + out.stderr

    def start_dev(self, line: str, where: str) -> None:
        """Start a ``dagster dev`` line of the README in the background, replacing the running one."""
        self.stop_dev()
        self.port = free_port()
        # env runs the line's VAR=value prefix and lets exec replace bash, so stopping the server stops dagster dev.
        command = f"exec env {self.local(line.split(' #')[0].strip())} -p {self.port}"
        processes = self.server.enter_context(_processes([["bash", "-c", command]], self.env, self.tmp,
                                                         cwd=self.checkout, stop_group=True))
        proc, self.server_log = processes[0]
        _wait_http(f"http://127.0.0.1:{self.port}/server_info", proc, self.server_log, 180)
        _wait_location(self.port)
        assert "will not be used" not in self.server_log.read_text(), self.server_log.read_text()[-2000:]

    def stop(self) -> None:
        self.stop_dev()
        self.n8n.close()

    def stop_dev(self) -> None:
        self.server.close()
        self.server_log = None

    def graphql(self, body: dict) -> dict:
        response = requests.post(f"http://127.0.0.1:{self.port}/graphql", json=body, timeout=60)
        response.raise_for_status()
        data = response.json()
        assert not data.get("errors"), data
        return data["data"]


class _Receiver:
    """Stands in for n8n: answers every POST with 200 and counts them."""

    def __init__(self):
        receiver = self
        self.received = 0

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.received += 1
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


_RUNS = "{ runsOrError(limit: 200) { ... on Runs { results { runId jobName status " \
        "repositoryOrigin { repositoryLocationName } } } } }"


def _wait_location(port: int) -> None:
    """Wait until the code location has loaded (the webserver answers before it has)."""
    query = "{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus } } } }"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        entries = requests.post(f"http://127.0.0.1:{port}/graphql", json={"query": query},
                                timeout=30).json()["data"]["workspaceOrError"]["locationEntries"]
        if entries and all(e["loadStatus"] == "LOADED" for e in entries):
            return
        time.sleep(1)
    raise TimeoutError("code location did not load")


def _runs(readme: _Readme) -> dict[str, dict]:
    return {r["runId"]: r for r in readme.graphql({"query": _RUNS})["runsOrError"]["results"]}


def _wait_for_new_runs(readme: _Readme, before: set[str], where: str, timeout: float = 900) -> None:
    """Wait until every run started since ``before`` has ended; each must have succeeded."""
    deadline = time.monotonic() + timeout
    while True:
        new = {k: v for k, v in _runs(readme).items() if k not in before}
        if all(r["status"] in _TERMINAL for r in new.values()):
            break
        assert time.monotonic() < deadline, f"{where}: runs still going: {new}"
        time.sleep(2)
    failed = [r for r in new.values() if r["status"] != "SUCCESS"]
    assert not failed, f"{where}: {failed}\n{readme.server_log.read_text()[-3000:] if readme.server_log else ''}"


@pytest.mark.integration
def test_the_readme_runs_as_written(tmp_path):
    stamp = REPO / ".venv" / ".pump_orchestration_setup"
    installed = stamp.read_text().strip() if stamp.exists() else None
    if installed != hashlib.sha256((REPO / "setup.py").read_bytes()).hexdigest():
        pytest.fail("setup.py changed since the last install: run bash scripts/setup.sh first "
                    "(the README's demo would install it itself)", pytrace=False)
    readme = _Readme(tmp_path)
    try:
        for block in (b for b in readme_blocks() if b.runs):
            where = f"README line {block.line}"
            started = time.monotonic()
            before = set(_runs(readme)) if readme.server_log else set()
            if block.lang == "bash":
                script = []
                for line in block.text.splitlines():
                    if "dagster dev" in line:
                        if script:
                            readme.bash("\n".join(script), where)
                            script = []
                        readme.start_dev(line, where)
                        before = set(_runs(readme))
                        if not readme.visited:
                            _check_first_visit(readme, tmp_path)
                            readme.visited = True
                    else:
                        script.append(line)
                if script:
                    readme.bash("\n".join(script), where)
            elif block.lang == "yaml":
                header = _HEADER.match(block.text.splitlines()[0])
                launched = launch_run(readme.port, {}, header["day"], job=header["job"],
                                      run_config=yaml.safe_load(block.text))
                assert launched["__typename"] == "LaunchRunSuccess", f"{where}: {launched}"
            elif block.lang == "json":
                data = readme.graphql(json.loads(block.text))
                if "launchRun" in data:
                    assert data["launchRun"]["__typename"] == "LaunchRunSuccess", f"{where}: {data}"
            else:
                out = subprocess.run([sys.executable, "-c", readme.local(block.text)], cwd=readme.checkout,
                                     env=readme.env, capture_output=True, text=True, timeout=300)
                assert out.returncode == 0, f"{where}: {out.stdout}\n{out.stderr}"
            if readme.server_log:
                _wait_for_new_runs(readme, before, where)
            print(f"{where} ({block.lang}): {time.monotonic() - started:.0f} s")
        assert readme.n8n.received, "the live-scoring section sent no webhook"
    finally:
        readme.stop()


def _check_first_visit(readme: _Readme, tmp_path: Path) -> None:
    """After the demo: its run is listed under its job and code location, and its ml_jobs row is COMPLETED."""
    demo_runs = [r for r in _runs(readme).values() if r["jobName"] == "train_model_job"]
    # A code origin is what puts the run under Jobs and in the Overview timeline.
    assert [(r["status"], (r["repositoryOrigin"] or {}).get("repositoryLocationName")) for r in demo_runs] == \
        [("SUCCESS", "pump_orchestration")], demo_runs
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'data' / 'warehouse.sqlite'}")
    with engine.connect() as conn:
        rows = conn.execute(sa.text("select status, progress from ml_jobs where job_type = 'TRAIN'")).all()
    engine.dispose()
    assert rows and all(tuple(r) == ("COMPLETED", 1.0) for r in rows), rows
