"""Classical baseline: Doppler band energy against a cell-averaging CFAR threshold over time.

Band energy per frame = mean linear power over velocity bins with v_min <= |v| <= v_max (the
zero-velocity clutter bins are excluded). The noise level is the mean band energy of the last
train_frames frames before a guard gap, counting only frames that did not detect (censored
CA-CFAR, so a person who stays does not raise their own threshold; after max_censor_s of
continuous detection detections enter the reference again, so a lasting rise of the floor is
adopted). A frame detects when its energy exceeds noise * 10^(threshold_db / 10); presence is
held hold_s after the last detection. Causal and streaming: CfarDetector.step(frame) per frame,
run_cfar over a whole [T, V] feature array. This is the "conventional signal processing" the
learned detector has to beat.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np

from runtime.config import config_from_dict


@dataclass(frozen=True)
class CfarConfig:
    """params.yaml `runtime.cfar` plus the front-end's hop and velocity axis (from_params); all required."""

    v_min_mps: float  # below this |v| the bins belong to clutter
    v_max_mps: float
    train_frames: int  # ~2 s of noise reference
    guard_frames: int
    threshold_db: float
    hold_s: float
    max_censor_s: float  # a level that stays detected longer than this becomes the new noise
    frame_hop_s: float
    n_velocity_bins: int
    v_axis_max_mps: float  # the front-end's v_max: the feature axis is linspace(-this, this, n)

    def __post_init__(self) -> None:
        if not 0 <= self.v_min_mps < self.v_max_mps:
            raise ValueError("need 0 <= v_min_mps < v_max_mps")
        if self.train_frames < 1 or self.guard_frames < 0 or self.frame_hop_s <= 0:
            raise ValueError("need train_frames >= 1, guard_frames >= 0, frame_hop_s > 0")
        if self.hold_s < 0 or self.max_censor_s < 0:
            raise ValueError("hold_s and max_censor_s must be >= 0")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CfarConfig:
        return config_from_dict(cls, d, "runtime.cfar")

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> CfarConfig:
        """runtime.cfar section plus the front-end's hop, axis and bin count."""
        fe = params["frontend"]
        derived = {
            "frame_hop_s": float(fe["hop"]) / float(fe["baseband_fs_hz"]),
            "n_velocity_bins": int(fe["n_velocity_bins"]),
            "v_axis_max_mps": float(fe["v_max_mps"]),
        }
        return cls.from_dict({**derived, **params["runtime"]["cfar"]})

    def band_mask(self) -> np.ndarray:
        v = np.abs(np.linspace(-self.v_axis_max_mps, self.v_axis_max_mps, self.n_velocity_bins))
        mask = (v >= self.v_min_mps) & (v <= self.v_max_mps)
        if not mask.any():
            raise ValueError("the motion band contains no velocity bin")
        return mask


def band_energy(frames_db: np.ndarray, cfg: CfarConfig) -> np.ndarray:
    """frames [T, V] in dB -> mean linear power in the motion band [T] (float64)."""
    frames_db = np.asarray(frames_db, dtype=np.float64)
    if frames_db.ndim != 2 or frames_db.shape[1] != cfg.n_velocity_bins:
        raise ValueError(f"frames must be [T, {cfg.n_velocity_bins}], got {frames_db.shape}")
    return np.mean(10.0 ** (frames_db[:, cfg.band_mask()] / 10.0), axis=1)


class CfarDetector:
    """Streaming censored CA-CFAR with hold: step(frame [V] dB) -> present."""

    def __init__(self, cfg: CfarConfig):
        self.cfg = cfg
        self._mask = cfg.band_mask()
        self._ratio = 10.0 ** (cfg.threshold_db / 10.0)
        self._hold = round(cfg.hold_s / cfg.frame_hop_s)
        self._guard: deque[float] = deque()  # most recent energies, not yet usable as reference
        self._train: deque[float] = deque()  # reference cells (non-detecting frames only)
        self._train_sum = 0.0
        self._since_detection = 1 << 60
        self._detection_run = 0
        self._max_censor = round(cfg.max_censor_s / cfg.frame_hop_s)

    def step_energy(self, energy: float) -> bool:
        cfg = self.cfg
        ready = len(self._train) == cfg.train_frames
        detected = ready and energy > self._ratio * self._train_sum / cfg.train_frames
        self._detection_run = self._detection_run + 1 if detected else 0
        censored = detected and self._detection_run <= self._max_censor
        self._guard.append(np.nan if censored else energy)
        if len(self._guard) > cfg.guard_frames:
            oldest = self._guard.popleft()
            if not np.isnan(oldest):  # censoring: detections never enter the reference
                self._train.append(oldest)
                self._train_sum += oldest
                if len(self._train) > cfg.train_frames:
                    self._train_sum -= self._train.popleft()
        self._since_detection = 0 if detected else self._since_detection + 1
        return self._since_detection <= self._hold

    def step(self, frame_db: np.ndarray) -> bool:
        frame_db = np.asarray(frame_db, dtype=np.float64)
        return self.step_energy(float(np.mean(10.0 ** (frame_db[self._mask] / 10.0))))


def run_cfar(frames: np.ndarray, cfg: CfarConfig) -> np.ndarray:
    """frames [T, V] (dB features) -> present [T] bool."""
    energy = band_energy(frames, cfg)
    detector = CfarDetector(cfg)
    return np.fromiter((detector.step_energy(float(e)) for e in energy), dtype=bool, count=len(energy))
