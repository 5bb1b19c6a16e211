"""`flywheel init`: make a checkout ready to run turns (git repo, DVC initialised, a local DVC remote)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

LOCAL_REMOTE = "dvc-remote"  # <project>/dvc-remote (git-ignored); DVC stores it relative to .dvc/


def _run(args: list[str], cwd: Path) -> str:
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed in {cwd}: {done.stderr.strip() or done.stdout.strip()}")
    return done.stdout.strip()


def _dvc(*args: str) -> list[str]:
    return [sys.executable, "-m", "dvc", *args]


def ensure_repo(root: str | Path = ".") -> list[str]:
    """Idempotent: does only what is missing; returns what it did, one line per step."""
    root = Path(root).resolve()
    done: list[str] = []
    if not (root / ".git").exists():
        _run(["git", "init", "-q", "-b", "main"], root)
        done.append("git: initialised a repository")
    if not (root / ".dvc").exists():
        _run(_dvc("init", "-q"), root)
        done.append("dvc: initialised")
    if not _has_remote_config(root):
        _run(_dvc("remote", "add", "-d", "local", LOCAL_REMOTE), root)
        done.append(f"dvc: default remote 'local' → {root / 'dvc-remote'}")
    _run(_dvc("config", "core.analytics", "false"), root)
    (root / "dvc-remote").mkdir(exist_ok=True)
    if not done:
        done.append("git and DVC already set up")
    return done


def _has_remote_config(root: Path) -> bool:
    config = root / ".dvc" / "config"
    return config.exists() and "remote = " in config.read_text()
