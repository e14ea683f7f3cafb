"""A throwaway PostgreSQL server for tests: a real cluster, made with initdb in a temporary directory.

The server listens on 127.0.0.1 (a free port) with password authentication, as a deployment would,
and on a unix socket in its own directory. As root (CI, containers) initdb refuses to run, so the
cluster belongs to the ``postgres`` user when there is one (Debian's package creates it) and to
``nobody`` otherwise. The binaries are looked up on PATH and then in Debian's
``/usr/lib/postgresql/<version>/bin``; without them the tests that need a server skip with the
reason, except under CI (``CI`` set), where ``.ci/run`` installs them and a skip would hide a gap.

Fixtures: ``postgres_server`` (one per session) and ``postgres`` (a database emptied for each test).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

DATABASE = "wrapupd_test"
USER = "wrapupd"
START_TIMEOUT_S = 30.0


def find_bindir() -> Path | None:
    """Where initdb and postgres are: PATH first, then the newest Debian version directory."""
    on_path = shutil.which("initdb")
    if on_path:
        return Path(on_path).resolve().parent
    versions = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    return versions[-1].parent if versions else None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _server_user() -> pwd.struct_passwd | None:
    """The unprivileged account that owns the cluster when we are root (None: run as ourselves)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    raise RuntimeError("running as root and neither a 'postgres' nor a 'nobody' account exists")


class PostgresServer:
    """One cluster: :meth:`start`, :meth:`stop` (keeping the data, to :meth:`start` again), :meth:`destroy`."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.root = Path(tempfile.mkdtemp(prefix="wrapupd-pg-"))
        self.data = self.root / "data"
        self.port = _free_port()
        self.password = f"pw-{os.urandom(8).hex()}"
        self._user = _server_user()
        self._process: subprocess.Popen[bytes] | None = None
        if self._user is not None:
            os.chown(self.root, self._user.pw_uid, self._user.pw_gid)
        self._initdb()

    @property
    def url(self) -> str:
        """The test database's URL, without the password (given separately, as in production)."""
        return f"postgresql://{USER}@127.0.0.1:{self.port}/{DATABASE}"

    def _run_as_owner(self, args: list[str], **kwargs: object) -> subprocess.Popen[bytes]:
        ids = {} if self._user is None else {"user": self._user.pw_uid, "group": self._user.pw_gid}
        return subprocess.Popen(args, cwd=self.root, **ids, **kwargs)  # type: ignore[call-overload,no-any-return]

    def _initdb(self) -> None:
        pwfile = self.root / "pwfile"
        pwfile.write_text(self.password)
        if self._user is not None:
            os.chown(pwfile, self._user.pw_uid, self._user.pw_gid)
        initdb = self._run_as_owner(
            [str(self.bindir / "initdb"), "-D", str(self.data), "-U", USER, "-E", "UTF8",
             "--no-sync", "--auth-local=trust", "--auth-host=scram-sha-256", f"--pwfile={pwfile}"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )  # fmt: skip
        output, _ = initdb.communicate(timeout=120)
        pwfile.unlink()
        if initdb.returncode != 0:
            raise RuntimeError(f"initdb failed: {output.decode(errors='replace')}")

    def start(self) -> None:
        """Start the server and wait until it accepts connections (and the test database exists)."""
        self._process = self._run_as_owner(
            [str(self.bindir / "postgres"), "-D", str(self.data), "-p", str(self.port),
             "-k", str(self.root), "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off",
             "-c", "full_page_writes=off", "-c", "max_connections=60"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        self._wait_ready()
        self._ensure_database()

    def _connect(self, dbname: str) -> object:
        import psycopg

        return psycopg.connect(
            host="127.0.0.1", port=self.port, user=USER, password=self.password,
            dbname=dbname, autocommit=True, connect_timeout=2,
        )  # fmt: skip

    def _wait_ready(self) -> None:
        import psycopg

        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            assert self._process is not None
            if self._process.poll() is not None:
                raise RuntimeError(f"postgres exited with {self._process.returncode} at start")
            try:
                self._connect("postgres").close()  # type: ignore[attr-defined]
                return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def _ensure_database(self) -> None:
        with self._connect("postgres") as db:  # type: ignore[attr-defined]
            if not db.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,)
            ).fetchone():
                db.execute(f"CREATE DATABASE {DATABASE}")

    def reset(self) -> None:
        """Empty the test database (every table of the ledger gone) and end other sessions."""
        with self._connect(DATABASE) as db:  # type: ignore[attr-defined]
            db.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = %s AND pid != pg_backend_pid()",
                (DATABASE,),
            )
            db.execute("DROP SCHEMA public CASCADE")
            db.execute("CREATE SCHEMA public")

    def stop(self) -> None:
        """Fast shutdown (SIGINT): clients are disconnected, the data stays for :meth:`start`."""
        if self._process is None:
            return
        self._process.send_signal(signal.SIGINT)
        try:
            self._process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._process = None

    def destroy(self) -> None:
        """Stop and delete the cluster."""
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


@dataclass(frozen=True)
class PostgresDatabase:
    """What a test gets: the URL and password of an empty database, and its server."""

    url: str
    password: str
    server: PostgresServer


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One PostgreSQL server for the session (a skip, with the reason, when it is not installed)."""
    bindir = find_bindir()
    if bindir is None:
        reason = "PostgreSQL server binaries (initdb) not found: apt-get install postgresql"
        if os.environ.get("CI"):
            pytest.fail(f"{reason} (.ci/run installs it; CI must not skip these tests)")
        pytest.skip(reason)
    server = PostgresServer(bindir)
    try:
        server.start()
        yield server
    finally:
        server.destroy()


@pytest.fixture
def postgres(postgres_server: PostgresServer) -> PostgresDatabase:
    """An empty database on the session's server (running: a test that stopped it is undone)."""
    if postgres_server._process is None:
        postgres_server.start()
    postgres_server.reset()
    return PostgresDatabase(postgres_server.url, postgres_server.password, postgres_server)
