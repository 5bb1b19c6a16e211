"""`flywheel init`: make a checkout ready to run turns (git repo, DVC initialised, a DVC remote).

The remote is a local folder unless `--remote s3://BUCKET/PREFIX` names an S3-compatible store. Its
endpoint comes from the environment (`AWS_ENDPOINT_URL_S3` or `AWS_ENDPOINT_URL`, for MinIO, SeaweedFS
and the like; none: AWS itself) and goes into .dvc/config; credentials stay in the environment
(`AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY` or a profile) and are never written.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

LOCAL_REMOTE = "dvc-remote"  # <project>/dvc-remote (git-ignored); DVC stores it relative to .dvc/
S3_REMOTE = "s3"  # the remote's name in .dvc/config when --remote names an S3 URL
ENDPOINT_VARS = ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL")  # botocore's own names, most specific first


def _run(args: list[str], cwd: Path) -> str:
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed in {cwd}: {done.stderr.strip() or done.stdout.strip()}")
    return done.stdout.strip()


def _dvc(*args: str) -> list[str]:
    return [sys.executable, "-m", "dvc", *args]


def s3_remote_settings(url: str, env: dict | None = None) -> dict:
    """What `--remote URL` puts in .dvc/config: the URL, and the endpoint the environment names."""
    bucket = url.removeprefix("s3://").split("/", 1)[0]
    if not url.startswith("s3://") or not bucket:
        raise ValueError(f"--remote {url!r}: expected s3://BUCKET/PREFIX")
    env = os.environ if env is None else env
    endpoint = next((env[v] for v in ENDPOINT_VARS if env.get(v)), None)
    return {"url": url.rstrip("/"), "endpointurl": endpoint}


def ensure_repo(root: str | Path = ".", remote: str | None = None, env: dict | None = None) -> list[str]:
    """Idempotent: does only what is missing (or the remote asked for); returns what it did, one line
    per step."""
    root = Path(root).resolve()
    settings = (
        None if remote is None else s3_remote_settings(remote, env)
    )  # refuse a bad URL before any change
    done: list[str] = []
    if not (root / ".git").exists():
        _run(["git", "init", "-q", "-b", "main"], root)
        done.append("git: initialised a repository")
    if not (root / ".dvc").exists():
        _run(_dvc("init", "-q"), root)
        done.append("dvc: initialised")
    if settings is not None:
        _run(_dvc("remote", "add", "-f", "-d", S3_REMOTE, settings["url"]), root)
        if settings["endpointurl"]:
            _run(_dvc("remote", "modify", S3_REMOTE, "endpointurl", settings["endpointurl"]), root)
        where = f" at {settings['endpointurl']}" if settings["endpointurl"] else ""
        done.append(
            f"dvc: default remote '{S3_REMOTE}' → {settings['url']}{where} (credentials: environment)"
        )
    elif not _has_remote_config(root):
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
