"""Fixtures for deploy tests: keystores, bundles and provisioned devices, all under tmp_path."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from deploy_testkit import manifest_fields, payload_files


@pytest.fixture(autouse=True)
def _one_thread(monkeypatch):
    import sys

    if "torch" in sys.modules:  # deploy never imports torch; keep other suites' threads low anyway
        sys.modules["torch"].set_num_threads(1)
    monkeypatch.delenv("FLYWHEEL_KEYSTORE", raising=False)


@pytest.fixture
def keystore(tmp_path: Path):
    from deploy.keystore import Keystore

    return Keystore(tmp_path / "keys")


@pytest.fixture
def make_bundle(tmp_path: Path, keystore):
    """make_bundle(name, version=..., release_counter=..., profile=..., store=..., corrupt_vectors=...)"""
    from deploy.bundle import build_bundle

    def _make(name="b1.tar", *, store=None, corrupt_vectors=False, seed=0, mbdp=None, extra=None, **fields):
        out = tmp_path / "bundles" / name
        payload = {**payload_files(seed=seed, corrupt_vectors=corrupt_vectors, mbdp=mbdp), **(extra or {})}
        build_bundle(payload, manifest_fields(**fields), store or keystore, out)
        return out

    return _make


@pytest.fixture
def device(tmp_path: Path, keystore, make_bundle):
    """A provisioned speaker4 device with bundle 1.0.0 (release counter 1) installed and good."""
    from deploy.agent import install_bundle, provision_device

    device_dir = tmp_path / "device"
    provision_device(device_dir, "speaker4", keystore.trusted_public_keys(), max_entry_bytes=1 << 20)
    result = install_bundle(make_bundle("v1.tar"), device_dir)
    assert result.installed, result.reason
    return device_dir


def device_snapshot(device_dir: Path) -> dict:
    """Every file's sha256 (state.json without last_refusal): equal snapshots = untouched device."""
    snap = {}
    for path in sorted(device_dir.rglob("*")):
        rel = path.relative_to(device_dir).as_posix()
        if path.is_dir():
            snap[rel] = "dir"
        elif rel == "state.json":
            state = json.loads(path.read_text())
            state.pop("last_refusal")
            snap[rel] = state
        else:
            snap[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    return snap


@pytest.fixture
def snapshot():
    return device_snapshot
