"""`flywheel server`: a Prefect server that outlives one turn, on PostgreSQL when asked.

A throwaway or long-lived PostgreSQL from Debian's package (`initdb`/`pg_ctl` under
/usr/lib/postgresql/*/bin) runs on 127.0.0.1 in a data folder of its own; PostgreSQL refuses to run as
root, so under root its programs run as the `postgres` user (runuser). The Prefect server then
starts against it (`PREFECT_SERVER_DATABASE_CONNECTION_URL=postgresql+asyncpg://...`), and turns are
scheduled on it with `flywheel serve`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

POSTGRES_ROOT = Path("/usr/lib/postgresql")
DATABASE = "prefect"
DB_USER = "flywheel"


class ServerError(RuntimeError):
    """PostgreSQL or the Prefect server could not be set up or did not come up in time."""


def postgres_bin_dir() -> Path | None:
    """The newest installed PostgreSQL's bin folder (Debian layout), or None when none is installed."""
    found = sorted(
        POSTGRES_ROOT.glob("*/bin/pg_ctl"), key=lambda p: int(p.parts[-3]) if p.parts[-3].isdigit() else 0
    )
    return found[-1].parent if found else None


def _as_postgres_user(args: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return args
    if shutil.which("runuser") is None:
        raise ServerError("running as root needs `runuser` to start PostgreSQL as the postgres user")
    return ["runuser", "-u", "postgres", "--", *args]


def _run(args: list[str], what: str) -> None:
    done = subprocess.run(args, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise ServerError(f"{what} failed ({' '.join(args)}): {(done.stderr or done.stdout).strip()[-1500:]}")


class LocalPostgres:
    """A PostgreSQL server in `data_dir` on 127.0.0.1:`port`, trust auth for local connections only."""

    def __init__(self, data_dir: str | Path, port: int, bin_dir: Path | None = None, durable: bool = True):
        self.data_dir = Path(data_dir).resolve()
        self.port = int(port)
        self.durable = durable
        self.bin_dir = bin_dir or postgres_bin_dir()
        if self.bin_dir is None:
            raise ServerError(
                f"PostgreSQL is not installed (no {POSTGRES_ROOT}/*/bin/pg_ctl): "
                "apt-get install -y postgresql"
            )

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://{DB_USER}@127.0.0.1:{self.port}/{DATABASE}"

    def _tool(self, name: str, *args: str) -> list[str]:
        return _as_postgres_user([str(self.bin_dir / name), *args])

    def start(self, timeout_s: float = 30.0) -> LocalPostgres:
        """initdb on first use, start the server, create the database when missing."""
        fresh = not (self.data_dir / "PG_VERSION").exists()
        if fresh:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            if os.geteuid() == 0:
                shutil.chown(self.data_dir, "postgres", "postgres")
            _run(
                self._tool(
                    "initdb",
                    "-D",
                    str(self.data_dir),
                    "-U",
                    DB_USER,
                    "--auth=trust",
                    "--encoding=UTF8",
                    "--no-sync",
                ),
                "initdb",
            )
        options = f"-h 127.0.0.1 -p {self.port} -k {self.data_dir}"
        if not self.durable:  # a throwaway server (tests): no waiting on the disk
            options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        log = self.data_dir / "server.log"
        _run(
            self._tool(
                "pg_ctl",
                "-D",
                str(self.data_dir),
                "-l",
                str(log),
                "-o",
                options,
                "-w",
                "-t",
                str(int(timeout_s)),
                "start",
            ),
            "pg_ctl start",
        )
        exists = (
            subprocess.run(
                self._tool(
                    "psql",
                    "-h",
                    "127.0.0.1",
                    "-p",
                    str(self.port),
                    "-U",
                    DB_USER,
                    "-d",
                    "postgres",
                    "-tAc",
                    f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE}'",
                ),
                capture_output=True,
                text=True,
                check=False,
            ).stdout.strip()
            == "1"
        )
        if not exists:
            _run(
                self._tool("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", DB_USER, DATABASE),
                "createdb",
            )
        return self

    def query(self, sql: str) -> str:
        """psql's unaligned output of one statement on the Prefect database."""
        args = ["-h", "127.0.0.1", "-p", str(self.port), "-U", DB_USER, "-d", DATABASE, "-tAc", sql]
        done = subprocess.run(self._tool("psql", *args), capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise ServerError(f"psql failed: {done.stderr.strip()}")
        return done.stdout.strip()

    def stop(self) -> None:
        _run(self._tool("pg_ctl", "-D", str(self.data_dir), "-m", "fast", "-w", "stop"), "pg_ctl stop")


def prefect_server_env(database_url: str | None, base: dict | None = None) -> dict:
    """The environment for `prefect server start` (on `database_url` when given, else Prefect's SQLite)."""
    env = dict(os.environ if base is None else base)
    if database_url:
        env["PREFECT_SERVER_DATABASE_CONNECTION_URL"] = database_url
    env.pop("PREFECT_API_URL", None)  # the server itself does not talk to another one
    return env


def start_prefect_server(
    host: str, port: int, database_url: str | None, log_path: Path, env: dict | None = None
) -> subprocess.Popen:
    """`prefect server start` in the background (UI off); its output goes to log_path."""
    args = [
        sys.executable,
        "-m",
        "prefect",
        "server",
        "start",
        "--host",
        host,
        "--port",
        str(port),
        "--no-ui",
    ]
    log = open(log_path, "ab")  # noqa: SIM115 - the child process owns it
    try:
        return subprocess.Popen(
            args, stdout=log, stderr=subprocess.STDOUT, env=prefect_server_env(database_url, env)
        )
    finally:
        log.close()


def wait_healthy(
    api_url: str, proc: subprocess.Popen | None = None, timeout_s: float = 90.0, log_path: Path | None = None
) -> float:
    """Poll `<api>/health` until it answers 200; seconds it took. Raises when the server dies or times out."""
    started = time.monotonic()
    while True:
        if proc is not None and proc.poll() is not None:
            tail = log_path.read_text()[-2000:] if log_path and log_path.exists() else ""
            raise ServerError(f"the Prefect server exited with {proc.returncode}: {tail}")
        try:
            with urllib.request.urlopen(f"{api_url}/health", timeout=2) as response:
                if response.status == 200:
                    return time.monotonic() - started
        except OSError:
            pass
        if time.monotonic() - started > timeout_s:
            raise ServerError(f"the Prefect server at {api_url} was not healthy in {timeout_s:.0f} s")
        time.sleep(0.5)


def stop_process(proc: subprocess.Popen, grace_s: float = 10.0) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=grace_s)
