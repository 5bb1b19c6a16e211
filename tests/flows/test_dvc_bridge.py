"""DVC bookkeeping of the Prefect turn: a stage run in-process is committed to dvc.lock like `dvc repro`.

Runs in a scratch git + DVC repo that carries this project's .gitignore: DVC refuses to write a
dvc.lock that git ignores (FileIsGitIgnored), which broke `make run` once.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from flows.dvc_bridge import DvcBridge

REPO = Path(__file__).resolve().parents[2]

needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="no git")


@needs_git
def test_commit_writes_dvc_lock_and_status_turns_current(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # stage names resolve against the working directory, as in a turn

    def run(*args: str) -> None:
        subprocess.run(args, cwd=tmp_path, check=True, capture_output=True)

    run("git", "init", "-q")
    shutil.copy(REPO / ".gitignore", tmp_path / ".gitignore")
    run(sys.executable, "-m", "dvc", "init", "-q")
    (tmp_path / "data").mkdir()
    (tmp_path / "params.yaml").write_text("n: 3\n")
    (tmp_path / "dvc.yaml").write_text(
        "stages:\n  count:\n    cmd: echo 3 > data/count.txt\n    params: [n]\n    outs: [data/count.txt]\n"
    )
    (tmp_path / "data" / "count.txt").write_text("3\n")  # the stage function ran in-process

    bridge = DvcBridge(tmp_path)
    try:
        assert not bridge.is_current("count")
        bridge.commit("count")
        assert bridge.is_current("count")
    finally:
        bridge.close()
    lock = (tmp_path / "dvc.lock").read_text()
    assert "count:" in lock and "data/count.txt" in lock
    ignored = subprocess.run(["git", "check-ignore", "-q", "dvc.lock"], cwd=tmp_path)
    assert ignored.returncode == 1  # not ignored: the lock is what you commit to pin a run's data
