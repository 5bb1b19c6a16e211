"""Configs for tests, built from the repository's params.yaml: the config dataclasses have no defaults
that copy params.yaml, so a test that needs "the usual" front-end or detector builds it here and names
only what it changes."""

from __future__ import annotations

import copy
import dataclasses
from functools import lru_cache
from pathlib import Path

from common.params import load_params

REPO_PARAMS = Path(__file__).resolve().parents[1] / "params.yaml"


@lru_cache(maxsize=1)
def _params() -> dict:
    return load_params(REPO_PARAMS)


def repo_params() -> dict:
    """A copy of the repository's params.yaml (tests may change it)."""
    return copy.deepcopy(_params())


def frontend_config(**overrides):
    """runtime.frontend.FrontendConfig of params.yaml `frontend`, with overrides."""
    from runtime.frontend import FrontendConfig

    return FrontendConfig.from_dict({**_params()["frontend"], **overrides})


def detector_config(**overrides):
    """runtime.detector.DetectorConfig of params.yaml (detector, frame hop, context), with overrides."""
    from runtime.detector import DetectorConfig

    return dataclasses.replace(DetectorConfig.from_params(_params()), **overrides)


def cfar_config(**overrides):
    """runtime.cfar.CfarConfig of params.yaml (runtime.cfar, the front-end's hop and axis), with overrides."""
    from runtime.cfar import CfarConfig

    return dataclasses.replace(CfarConfig.from_params(_params()), **overrides)


def cfar_section(**overrides) -> dict:
    """params.yaml `runtime.cfar` (a dict, as the evaluate stage passes it), with overrides."""
    return {**_params()["runtime"]["cfar"], **overrides}


def calibration_config(**overrides):
    """runtime.calibration.CalibrationConfig of params.yaml `calibration.config`, with overrides."""
    from runtime.calibration import CalibrationConfig

    return CalibrationConfig.from_dict({**_params()["calibration"]["config"], **overrides})


def model_config(**overrides):
    """training.model.ModelConfig of params.yaml, with overrides."""
    from training.model import ModelConfig

    return dataclasses.replace(ModelConfig.from_params(_params()), **overrides)
