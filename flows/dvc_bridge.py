"""Keep DVC's books when a stage runs outside `dvc repro` (the Prefect turn runs stages in-process).

A Prefect task asks whether its stage is up to date (`dvc status`), runs the stage function when it is
not, then `dvc commit`s the stage: dvc.lock and the DVC cache end up exactly as `dvc repro` leaves them.
"""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("DVC_NO_ANALYTICS", "1")


class DvcBridge:
    def __init__(self, root: str | Path = "."):
        from dvc.repo import Repo

        self.repo = Repo(str(root))

    def is_current(self, stage: str) -> bool:
        """True when dvc.lock records this stage with the same deps, params and outs as now."""
        return not self.repo.status(targets=[stage])

    def commit(self, stage: str) -> None:
        self.repo.commit(stage, force=True)

    def push(self) -> bool:
        """Push to the default remote if one is configured; returns whether it pushed."""
        if not self.repo.config.get("core", {}).get("remote"):
            return False
        self.repo.push()
        return True

    def close(self) -> None:
        self.repo.close()
