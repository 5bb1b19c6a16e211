"""The `ingest` section of params.yaml as a frozen, typed config (runtime.config's strictness policy).

ingest_batch builds it once, so a misspelt or unknown key fails before any capture is read, naming the
section and the key. Every tunable is required; reference_batch may be null (pick one automatically).
"""

from __future__ import annotations

from dataclasses import dataclass

from runtime.config import config_from_dict


@dataclass(frozen=True)
class DriftConfig:
    reference_batch: str | None  # None: the lexicographically first other curated batch
    feature_z_max: float
    rate_ratio_max: float
    min_events: int


@dataclass(frozen=True)
class FeedbackConfig:
    talk_window_s: float
    talk_confidence: float
    lights_back_on_s: float
    lights_lookback_s: float
    lights_confidence: float
    lights_on_intents: tuple[str, ...]
    false_trigger_values: tuple[str, ...]
    false_trigger_before_s: float
    false_trigger_after_s: float
    false_trigger_confidence: float


@dataclass(frozen=True)
class SessionsConfig:
    gap_s: float  # a device's dialogue session ends after this long without a turn or routine


@dataclass(frozen=True)
class LabProfile:
    n_mics: int | None  # None: any mic count
    description: str


@dataclass(frozen=True)
class LabImportConfig:
    """`flywheel lab import`'s tunables (ingest/lab_import.py)."""

    min_rate_hz: float
    min_duration_s: float
    clip_level: float
    max_clipped_fraction: float
    tone_min_hz: float
    tone_min_snr_db: float
    tone_segments: int
    tone_stable_fraction: float
    tone_stable_hz: float
    carrier_tolerance_hz: float
    device_id: str
    epoch: str
    gap_s: float
    emission_db: float

    @classmethod
    def from_params(cls, params: dict) -> LabImportConfig:
        return config_from_dict(cls, params["ingest"]["lab_import"], "ingest.lab_import")


@dataclass(frozen=True)
class IngestConfig:
    known_profiles: tuple[str, ...]
    context_frames: int
    window_stride: int
    max_bad_fraction: float
    max_declared_mb: float
    lab_min_carrier_hz: float
    max_n_mics: int
    max_duration_s: float
    sample_tolerance: int
    clock_tolerance_s: float
    nonfinite_check_chunk: int
    window_part_captures: int
    device_carrier_hz: tuple[float, ...]  # (low, high)
    feature_db_bounds: tuple[float, ...]
    feature_energy_db_bounds: tuple[float, ...]
    drift: DriftConfig
    feedback: FeedbackConfig
    sessions: SessionsConfig
    lab_profiles: dict[str, LabProfile]  # lab rigs: mic count only, no array geometry (ingest/contract.py)
    lab_import: LabImportConfig

    @classmethod
    def from_params(cls, params: dict) -> IngestConfig:
        return config_from_dict(cls, params["ingest"], "ingest")
