"""The `mining` section of params.yaml as a frozen, typed config (runtime.config's strictness policy).

No field copies a value from params.yaml: every tunable is required, so a section that lacks one fails
with the section and key named instead of running on a default nobody chose.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from runtime.config import config_from_dict


@dataclass(frozen=True)
class RareEventConfig:
    min_seed_score: float  # "rare" = labelled none with seed-model p_present at least this
    l2: float
    epochs: int
    learning_rate: float
    max_other_rate: float  # the trigger fires on at most this share of non-rare labelled windows
    min_threshold: float
    lab_windows: int  # the turn's rare_event stage: lab windows sampled as counter-examples


@dataclass(frozen=True)
class LabelStudioConfig:
    image_px: tuple[int, ...]
    dpi: int

    @classmethod
    def from_params(cls, params: dict) -> LabelStudioConfig:
        return config_from_dict(cls, params["mining"]["label_studio"], "mining.label_studio")


@dataclass(frozen=True)
class MiningConfig:
    seed: int
    budget: int  # paid labels per turn
    quotas: dict[str, float]  # strategy -> share of the budget
    uncertainty_band: float
    weak_label_confidence_min: float
    rare_event: RareEventConfig
    label_studio: LabelStudioConfig | None = None  # only the Label Studio round trip needs it
    # the dialogue self-learning's tunables, read by mining.failure_points.learning_params
    self_learning: dict[str, Any] | None = None

    @classmethod
    def from_params(cls, params: dict) -> MiningConfig:
        return config_from_dict(cls, params["mining"], "mining")
