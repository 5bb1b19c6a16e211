"""Lineage for bundles: the git revision and the hashes of the data a model was trained on."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import yaml


def git_revision(root: str | Path = ".") -> str:
    """HEAD's commit, with '-dirty' when tracked files differ from it; 'unversioned' outside git."""

    def git(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=False)

    head = git("rev-parse", "HEAD")
    if head.returncode != 0:
        return "unversioned"
    dirty = git("status", "--porcelain", "--untracked-files=no").stdout.strip()
    return head.stdout.strip() + ("-dirty" if dirty else "")


def _content_hash(folder: Path) -> str:
    """sha256 over a folder's files (names and bytes), for runs outside DVC's bookkeeping."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith("_")):
        digest.update(str(path.relative_to(folder)).encode())
        with open(path, "rb") as fh:
            while chunk := fh.read(1 << 20):
                digest.update(chunk)
    return digest.hexdigest()


def data_hashes(folders: list[Path], lock_file: Path = Path("dvc.lock")) -> dict[str, str]:
    """DVC's md5 for each folder when dvc.lock records it; otherwise a content sha256 (prefixed).

    Keyed by the folder's path; dvc.lock only knows the repository's own data/ paths.
    """
    recorded: dict[str, str] = {}
    if lock_file.exists():
        lock = yaml.safe_load(lock_file.read_text()) or {}
        for stage in (lock.get("stages") or {}).values():
            for out in stage.get("outs", []):
                recorded[out["path"]] = f"dvc-md5:{out.get('md5')}"
    return {str(f): recorded.get(str(f)) or f"sha256:{_content_hash(f)}" for f in folders if f.exists()}
