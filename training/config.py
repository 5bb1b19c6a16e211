"""The `training` and `quantize` sections of params.yaml as frozen, typed configs (runtime.config's policy).

TrainRun bundles what train_classifier, make_datamodule and thresholds_from_run read from other sections.

Every tunable is required (no code default copies a value from params.yaml); the optional ones are
those params.yaml itself may leave null.
"""

from __future__ import annotations

from dataclasses import dataclass

from runtime.config import config_from_dict
from runtime.detector import DetectorConfig
from training.model import ModelConfig


@dataclass(frozen=True)
class AugmentConfig:
    gain_db: float
    noise_db: float
    velocity_shift_bins: int


@dataclass(frozen=True)
class ExportConfig:
    opset: int  # for the legacy exporter fallback
    atol: float  # onnxruntime vs torch tolerance

    @classmethod
    def from_params(cls, params: dict) -> ExportConfig:
        return config_from_dict(cls, params["training"]["export"], "training.export")


@dataclass(frozen=True)
class QuantizeConfig:
    calibration_windows: int  # activation ranges from at most this many windows
    gate_windows: int  # float vs int8 argmax agreement measured on this many eval windows
    agreement_target: float
    exclude_nodes: int  # last fallback: leave this many worst nodes in float

    @classmethod
    def from_params(cls, params: dict) -> QuantizeConfig:
        return config_from_dict(cls, params["quantize"], "quantize")


@dataclass(frozen=True)
class TrainingConfig:
    seed: int
    epochs: int
    batch_size: int
    learning_rate: float
    weight_decay: float
    val_fraction: float
    channels: int
    embedding_dim: int
    head: str
    augment: AugmentConfig
    target_false_alarms_per_hour: float
    threshold_sources: tuple[str, ...]  # empty: every validation window counts for the FA/h estimate
    lenient_minor_recall: float | None  # None: lenient threshold from lenient_false_alarms_per_hour
    lenient_false_alarms_per_hour: float | None
    min_strict_threshold: float
    min_lenient_threshold: float
    num_threads: int
    progress_bar: bool
    export: ExportConfig

    @classmethod
    def from_params(cls, params: dict) -> TrainingConfig:
        return config_from_dict(cls, params["training"], "training")


@dataclass(frozen=True)
class TrainRun:
    """What a training run reads: its section, the model it builds, the detector its thresholds go into
    (frame hop and context included) and the stride of the windows it learns from (ingest.window_stride)."""

    training: TrainingConfig
    model: ModelConfig
    detector: DetectorConfig
    window_stride: int
    feature_channels: tuple[str, ...]  # the front-end's (runtime.feature_channels), for augmentation

    @classmethod
    def from_params(cls, params: dict) -> TrainRun:
        from runtime.frontend import FrontendConfig

        return cls(
            feature_channels=FrontendConfig.from_dict(params["frontend"]).channels,
            training=TrainingConfig.from_params(params),
            model=ModelConfig.from_params(params),
            detector=DetectorConfig.from_params(params),
            window_stride=int(params["ingest"]["window_stride"]),
        )
