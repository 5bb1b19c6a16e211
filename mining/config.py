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
class SelfLearningConfig:
    """What the dialogue self-learning reads (mining.failure_points, rewrites, field_metrics, labels):
    params.yaml `mining.self_learning` plus the session gap `ingest.sessions.gap_s`."""

    rephrase_gap_s: float  # turns this close are one request and its rephrases
    asr_threshold: float
    nlu_threshold: float
    false_wake_max_words: int
    false_wake_asr_threshold: float
    presence_evidence_s: float
    error_responses: tuple[str, ...]
    not_understood_responses: tuple[str, ...]
    negative_feedback: tuple[str, ...]
    lights_back_on_s: float
    occupied_margin_s: float
    rewrite_min_support: int
    rewrite_min_gain: float
    misheard_max_success: float
    weak_label_confidence: dict[str, float]  # failure point -> confidence of its weak labels
    weak_false_trigger_before_s: float
    weak_false_trigger_after_s: float
    weak_missed_lookback_s: float
    session_gap_s: float  # ingest.sessions.gap_s: a device's dialogue session ends after this long

    @classmethod
    def from_params(cls, params: dict) -> SelfLearningConfig:
        gap_s = params["ingest"]["sessions"]["gap_s"]
        return config_from_dict(
            cls, {**params["mining"]["self_learning"], "session_gap_s": gap_s}, "mining.self_learning"
        )


@dataclass(frozen=True)
class MiningConfig:
    seed: int
    budget: int  # paid labels per turn
    quotas: dict[str, float]  # strategy -> share of the budget
    uncertainty_band: float
    weak_label_confidence_min: float
    rare_event: RareEventConfig
    label_studio: LabelStudioConfig | None = None  # only the Label Studio round trip needs it
    # the dialogue self-learning's tunables: SelfLearningConfig reads them (with the session gap)
    self_learning: dict[str, Any] | None = None

    @classmethod
    def from_params(cls, params: dict) -> MiningConfig:
        return config_from_dict(cls, params["mining"], "mining")
