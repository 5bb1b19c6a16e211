"""Simulator configuration: the `simulate` section of params.yaml and the device profile data file."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from common.params import load_params

PROFILES_FILE = Path(__file__).with_name("profiles.yaml")
REPO_PARAMS = Path(__file__).resolve().parents[1] / "params.yaml"


def sim_section(sim_params: dict | None) -> dict[str, Any]:
    """Accept the whole params dict, its `simulate` section, or None (the repo's params.yaml)."""
    if sim_params is None:
        sim_params = load_params(REPO_PARAMS)
    if "simulate" in sim_params:
        sim_params = sim_params["simulate"]
    for key in ("fs_hz", "capture_s", "policy", "dialogue", "field", "eval"):
        if key not in sim_params:
            raise KeyError(f"simulate params lack {key!r}")
    return sim_params


@lru_cache(maxsize=1)
def factory_calibration() -> dict[str, Any]:
    """The factory calibration config (the repo's params.yaml `calibration.config`): what a unit
    calibrates with at first boot when neither its bundle nor the caller brings one."""
    return load_params(REPO_PARAMS)["calibration"]["config"]


@lru_cache(maxsize=1)
def load_profiles() -> dict[str, dict]:
    return yaml.safe_load(PROFILES_FILE.read_text(encoding="utf-8"))


def profile(name: str) -> dict:
    profiles = load_profiles()
    if name not in profiles:
        raise ValueError(f"unknown device profile {name!r} (known: {', '.join(sorted(profiles))})")
    return profiles[name]
