"""Load params.yaml (every tunable of the pipeline) and apply named presets or overrides."""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path
from typing import Any

import yaml

DEFAULT_PARAMS_FILE = "params.yaml"


class ParamsError(ValueError):
    """params.yaml is missing, malformed, or asks for an unknown preset."""


def deep_merge(base: dict, override: dict) -> dict:
    """Return base with override merged in, recursively for nested dicts."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def load_params(path: str | Path = DEFAULT_PARAMS_FILE, preset: str | None = None) -> dict[str, Any]:
    """Read params.yaml; with `preset`, merge `presets.<preset>` over the top level."""
    path = Path(path)
    if not path.exists():
        raise ParamsError(f"{path}: params file not found")
    try:
        params = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ParamsError(f"{path}: not valid YAML ({exc})") from exc
    if not isinstance(params, dict):
        raise ParamsError(f"{path}: top level must be a mapping")
    presets = params.pop("presets", {}) or {}
    if preset:
        if preset not in presets:
            raise ParamsError(f"{path}: unknown preset {preset!r} (known: {', '.join(sorted(presets))})")
        params = deep_merge(params, presets[preset])
        params["preset"] = preset
    return params


def params_hash(params: dict) -> str:
    """sha256 of the params as canonical JSON: lineage for bundles and reports."""
    blob = json.dumps(params, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()
