"""A throwaway PostgreSQL cluster started from the local server binaries (no pytest imports).

Used by the test fixtures (``pump_orchestration_tests/conftest.py``) and the benchmarks, e.g. for Dagster's
own storage::

    server = start_postgres()
    try:
        name = server.create_database()
        url = server.url(name)            # postgresql+psycopg2://postgres@127.0.0.1:PORT/name
    finally:
        server.stop()

Debian/Ubuntu install ``initdb``/``pg_ctl`` under ``/usr/lib/postgresql/<version>/bin``, which
is not on PATH; ``find_pg_bindir`` looks there. ``initdb`` refuses to run as root, so as root
the cluster is created and run as the ``postgres`` OS user in a directory chowned to it.
"""
from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

import psycopg2

from pump_orchestration.testing import free_port

_SERVER_OS_USER = "postgres"
_SUPERUSER = "postgres"


class PostgresUnavailable(RuntimeError):
    """The PostgreSQL server binaries were not found or the cluster did not start."""


def find_pg_bindir() -> Path:
    """Directory holding ``initdb`` and ``pg_ctl``: ``$PG_BINDIR``, ``pg_config --bindir``, or Debian's path.

    Raises ``PostgresUnavailable`` with install instructions when none has them.
    """
    candidates: list[str] = []
    if os.environ.get("PG_BINDIR"):
        candidates.append(os.environ["PG_BINDIR"])
    pg_config = shutil.which("pg_config")
    if pg_config:
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)
        if out.returncode == 0:
            candidates.append(out.stdout.strip())
    # Newest version first.
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_version_key, reverse=True)
    for candidate in candidates:
        path = Path(candidate)
        if (path / "initdb").is_file() and (path / "pg_ctl").is_file():
            return path
    raise PostgresUnavailable(
        "PostgreSQL server binaries (initdb, pg_ctl) not found; looked in "
        f"{candidates or 'nothing'} (from $PG_BINDIR, `pg_config --bindir`, /usr/lib/postgresql/*/bin). "
        "Install the server (e.g. `apt-get install postgresql`) or set PG_BINDIR."
    )


def _version_key(path: str) -> tuple[int, ...]:
    version = Path(path).parent.name
    return tuple(int(p) for p in version.split(".") if p.isdigit())


@dataclass
class PostgresServer:
    """A running throwaway cluster: trust auth, superuser ``postgres``, on 127.0.0.1:``port``."""

    bindir: Path
    base_dir: Path
    port: int
    run_as: str | None
    host: str = "127.0.0.1"
    user: str = _SUPERUSER

    @property
    def data_dir(self) -> Path:
        """The cluster's data directory."""
        return self.base_dir / "data"

    @property
    def log_file(self) -> Path:
        """The server log (read it when a test fails inside PostgreSQL)."""
        return self.base_dir / "server.log"

    def url(self, dbname: str = "postgres", driver: str = "postgresql+psycopg2") -> str:
        """SQLAlchemy URL of ``dbname``; ``driver="postgresql"`` gives a libpq-style URL."""
        return f"{driver}://{self.user}@{self.host}:{self.port}/{dbname}"

    def _admin_connect(self):
        conn = psycopg2.connect(host=self.host, port=self.port, user=self.user, dbname="postgres")
        conn.autocommit = True
        return conn

    def create_database(self, name: str | None = None) -> str:
        """Create an empty database (default ``test_<uuid>``) and return its name."""
        name = name or f"test_{uuid.uuid4().hex}"
        conn = self._admin_connect()
        try:
            with conn.cursor() as cur:
                cur.execute(f'CREATE DATABASE "{name}"')
        finally:
            conn.close()
        return name

    def drop_database(self, name: str) -> None:
        """Drop ``name``, disconnecting any session still using it."""
        conn = self._admin_connect()
        try:
            with conn.cursor() as cur:
                cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            conn.close()

    def pause(self) -> None:
        """Stop the server but keep its data (a database outage in a fault test)."""
        out = _run(self, [str(self.bindir / "pg_ctl"), "-D", str(self.data_dir), "-m", "fast", "-w", "stop"])
        if out.returncode != 0:
            raise PostgresUnavailable(f"pg_ctl stop failed:\n{out.stdout}\n{out.stderr}")

    def resume(self) -> None:
        """Start a paused server again on the same port."""
        out = _run(self, [str(self.bindir / "pg_ctl"), "-D", str(self.data_dir), "-l", str(self.log_file),
                          "-o", self._options(), "-w", "-t", "60", "start"])
        if out.returncode != 0:
            raise PostgresUnavailable(f"pg_ctl start failed:\n{out.stdout}\n{out.stderr}")

    def _options(self) -> str:
        return " ".join([
            "-c listen_addresses=127.0.0.1", f"-p {self.port}", f"-c unix_socket_directories={self.base_dir}",
            "-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off",
        ])

    def stop(self) -> None:
        """Stop the server (fast shutdown) and delete its directory."""
        try:
            _run(self, [str(self.bindir / "pg_ctl"), "-D", str(self.data_dir), "-m", "fast", "-w", "stop"])
        finally:
            shutil.rmtree(self.base_dir, ignore_errors=True)


def _run(server: PostgresServer, argv: list[str]) -> subprocess.CompletedProcess:
    if server.run_as:
        argv = ["runuser", "-u", server.run_as, "--", *argv]
    return subprocess.run(argv, capture_output=True, text=True, check=False, timeout=120)


def start_postgres() -> PostgresServer:
    """Create and start a new cluster in a fresh temporary directory.

    Durability is switched off (fsync, synchronous_commit, full_page_writes) because the data
    is thrown away. Raises ``PostgresUnavailable`` with the server log when it does not start.
    """
    bindir = find_pg_bindir()
    run_as = _SERVER_OS_USER if os.geteuid() == 0 else None
    # Not pytest's tmp_path: as root that lives in a 0700 root directory the postgres user cannot enter.
    base_dir = Path(tempfile.mkdtemp(prefix="pump_pg_"))
    if run_as:
        shutil.chown(base_dir, user=run_as)
    server = PostgresServer(bindir=bindir, base_dir=base_dir, port=free_port(), run_as=run_as)
    init = _run(server, [
        str(bindir / "initdb"), "-D", str(server.data_dir), "-U", _SUPERUSER, "--auth=trust",
        "--encoding=UTF8", "--no-locale", "--no-sync",
    ])
    if init.returncode != 0:
        shutil.rmtree(base_dir, ignore_errors=True)
        raise PostgresUnavailable(f"initdb failed:\n{init.stdout}\n{init.stderr}")
    log = ""
    # The free port can be taken between probing and binding (parallel sessions): retry.
    for _attempt in range(3):
        start = _run(server, [
            str(bindir / "pg_ctl"), "-D", str(server.data_dir), "-l", str(server.log_file),
            "-o", server._options(), "-w", "-t", "60", "start",
        ])
        if start.returncode == 0:
            return server
        log = server.log_file.read_text(errors="replace") if server.log_file.exists() else ""
        server.port = free_port()
    server.stop()
    raise PostgresUnavailable(f"pg_ctl start failed:\n{start.stdout}\n{start.stderr}\n{log}")
