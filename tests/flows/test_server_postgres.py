"""Prefect server on a real PostgreSQL: `flywheel serve` registers its cron deployment there, one run of
it (a single tiny stage) is triggered through the API, and its final state is read back from the API.

Skipped, saying why, where Debian's PostgreSQL is not installed (.ci/run installs it).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest
from seaweedfs_testkit import free_ports  # tests/flows is on the path (pytest rootdir import mode)

pytestmark = pytest.mark.slow

CRON, DEPLOYMENT = "0 3 * * *", "nightly-turn"
TERMINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}


def _api(url: str, body: dict | None = None) -> dict | list:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def _until(what: str, probe, timeout_s: float):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(0.5)
    pytest.fail(f"{what}: not within {timeout_s:.0f} s")


@pytest.fixture
def postgres():
    from flows.server import LocalPostgres, postgres_bin_dir

    if postgres_bin_dir() is None:
        pytest.skip("PostgreSQL is not installed (apt-get install -y postgresql; .ci/run does)")
    if os.geteuid() == 0 and (shutil.which("runuser") is None or _no_user("postgres")):
        pytest.skip("running as root needs runuser and a postgres user to start PostgreSQL")
    pytest.importorskip("asyncpg")
    root = Path(tempfile.mkdtemp(prefix="flywheel-pg-"))
    root.chmod(0o755)  # the postgres user must reach its data folder inside
    pg = LocalPostgres(root / "pgdata", free_ports(1)[0], durable=False).start()
    try:
        yield pg
    finally:
        pg.stop()
        shutil.rmtree(root, ignore_errors=True)


def _no_user(name: str) -> bool:
    import pwd

    try:
        pwd.getpwnam(name)
        return False
    except KeyError:
        return True


def test_a_served_cron_deployment_runs_on_a_prefect_server_on_postgresql(postgres, tmp_path, project_root):
    from flows.server import start_prefect_server, stop_process, wait_healthy

    port = free_ports(1)[0]
    api = f"http://127.0.0.1:{port}/api"
    env = {**os.environ, "PREFECT_HOME": str(tmp_path / "prefect"), "PYTHONPATH": str(project_root)}
    env.pop("PREFECT_API_URL", None)
    server = start_prefect_server("127.0.0.1", port, postgres.url, tmp_path / "server.log", env)
    serve = None
    try:
        wait_healthy(api, server, 90.0, tmp_path / "server.log")
        serve_log = open(tmp_path / "serve.log", "wb")  # noqa: SIM115 - closed below
        serve = subprocess.Popen(
            [sys.executable, "-m", "flows.cli", "serve", "--cron", CRON, "--name", DEPLOYMENT],
            cwd=project_root, env={**env, "PREFECT_API_URL": api}, stdout=serve_log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        serve_log.close()
        filters = {"deployments": {"name": {"any_": [DEPLOYMENT]}}}
        deployment = _until("the served deployment", lambda: _api(f"{api}/deployments/filter", filters), 60)[
            0
        ]
        assert [s["schedule"]["cron"] for s in deployment["schedules"]] == [CRON]
        data = tmp_path / "data"
        parameters = {"preset": "tiny", "data_dir": str(data), "use_dvc": False, "stages": ["simulate@seed"]}
        run = _api(f"{api}/deployments/{deployment['id']}/create_flow_run", {"parameters": parameters})

        def final_state():
            state = _api(f"{api}/flow_runs/{run['id']}")["state"]
            return state if state and state["type"] in TERMINAL else None

        state = _until("the triggered run's final state", final_state, 90)
        log = (tmp_path / "serve.log").read_text(errors="replace")[-3000:]
        assert state["type"] == "COMPLETED", log
        # the run is a row in PostgreSQL (not in a SQLite file somewhere)
        assert postgres.query(f"SELECT state_type FROM flow_run WHERE id = '{run['id']}'") == "COMPLETED"
        assert (data / "raw" / "seed").is_dir() and any((data / "raw" / "seed").iterdir())
    finally:
        if serve is not None:
            stop_process(serve)
        stop_process(server)
