"""Render dvc.yaml from the stage registry, so DVC and Prefect run exactly the same stages."""

from __future__ import annotations

from pathlib import Path

import yaml

from common.paths import Paths
from flows.stages import REGISTRY, Stage

# DVC resolves ${turn.id} from params.yaml, so changing the turn id needs no re-render.
DVC_PATHS = Paths(root=Path("data"), turn="${turn.id}")
HEADER = "# Rendered from the registry (flows/stages/) by `flywheel dvc-yaml`; edit it, not this file.\n"


def dvc_name(stage_name: str) -> str:
    """Registry names use name@item; DVC reserves '@' for foreach, so dvc.yaml uses name-item."""
    return stage_name.replace("@", "-")


def _stage_body(stage: Stage) -> dict:
    body: dict = {
        "cmd": f"flywheel stage {stage.name}",
        "deps": [str(p) for p in stage.deps(DVC_PATHS)],
        "params": list(stage.params),
        "outs": [{str(o): {"persist": True}} if stage.persist else str(o) for o in stage.outs(DVC_PATHS)],
    }
    metrics = [str(m) for m in stage.metrics(DVC_PATHS)]
    if metrics:
        body["metrics"] = [{m: {"cache": False}} for m in metrics]
    return body


def render_dvc_yaml() -> str:
    stages = {dvc_name(name): _stage_body(stage) for name, stage in REGISTRY.items()}
    return HEADER + yaml.safe_dump({"stages": stages}, sort_keys=False, width=120)
