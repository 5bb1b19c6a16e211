"""Test-wide setup: quiet, project-local tool state; one Prefect test server for the whole session."""

import os
import tempfile
from pathlib import Path

import pytest

_STATE = Path(tempfile.mkdtemp(prefix="flywheel-tests-"))
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DVC_NO_ANALYTICS", "1")
os.environ["PREFECT_HOME"] = str(_STATE / "prefect")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
os.environ["FLYWHEEL_KEYSTORE"] = str(_STATE / "keys")  # never touch the user's real signing keys

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def prefect_harness():
    """One temporary Prefect server for every test that runs a flow (starting one costs ~10 s)."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture(scope="session")
def project_root() -> Path:
    return ROOT
