"""Run an installed bundle on a simulated device: runtime.pipeline + the optional rare-event trigger.

A bundle is a folder or an (uncompressed) tar holding payload/model_int8.onnx, payload/frontend.json,
payload/detector.json and optionally payload/rare_event.onnx. The rare-event model takes either
feature windows [N, context, V] (rank-3 input) or the classifier's embeddings [N, D] (rank-2 input);
its score is 1 − p(class 0) for multi-class outputs, sigmoid(logit) for a single output.
payload/mbdp.json (optional, runtime.mbdp.bundle_tuning's format) is the playback MBDP the device
runs: the simulator plays the unit's music through its sensing mode (fleet.events.music).
"""

from __future__ import annotations

import json
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np


class BundleLoadError(ValueError):
    """The bundle lacks a payload file the device needs."""


def unpack(bundle_path: str | Path, workdir: Path) -> Path:
    """Folder holding payload/ (extracting a tar into workdir first)."""
    p = Path(bundle_path)
    if p.is_dir():
        return p
    if not tarfile.is_tarfile(p):
        raise BundleLoadError(f"{p}: neither a folder nor a tar")
    with tarfile.open(p) as tar:
        tar.extractall(workdir, filter="data")
    return workdir


@dataclass
class BundleResult:
    motion_blocks: np.ndarray  # [B] bool
    detected: bool
    rare_score: float


class BundleRunner:
    """A device's installed bundle; run(iq) → motion per block, detection, rare-event score."""

    def __init__(self, bundle_path: str | Path, fs: float, block_s: float, rare_threshold: float):
        from runtime.detector import RARE_EVENT_THRESHOLD_KEY, DetectorConfig
        from runtime.frontend import FrontendConfig
        from runtime.pipeline import DevicePipeline

        self._tmp = tempfile.TemporaryDirectory(prefix="fleet-bundle-")
        root = unpack(bundle_path, Path(self._tmp.name))
        payload = root / "payload"
        for name in ("model_int8.onnx", "frontend.json", "detector.json"):
            if not (payload / name).exists():
                raise BundleLoadError(f"{bundle_path}: payload/{name} missing")
        manifest = root / "manifest.json"
        meta = json.loads(manifest.read_text()) if manifest.exists() else {}
        self.version = str(meta.get("version") or meta.get("bundle_version") or Path(bundle_path).stem)
        self.frontend_cfg = FrontendConfig.from_dict(json.loads((payload / "frontend.json").read_text()))
        det = json.loads((payload / "detector.json").read_text())
        self.detector_cfg = DetectorConfig.from_json(det)
        self.rare_threshold = float(det.get(RARE_EVENT_THRESHOLD_KEY, rare_threshold))
        self.pipeline = DevicePipeline(str(payload / "model_int8.onnx"), self.frontend_cfg, self.detector_cfg)
        self.fs, self.block_s = fs, block_s
        calibration = payload / "calibration.json"
        self.calibration = json.loads(calibration.read_text()) if calibration.exists() else None
        self.mbdp_tuning = self._mbdp_tuning(payload / "mbdp.json", bundle_path)
        self.rare = None
        if (payload / "rare_event.onnx").exists():
            from runtime.onnx_session import make_session

            self.rare = make_session(payload / "rare_event.onnx")

    @staticmethod
    def _mbdp_tuning(path: Path, bundle_path: str | Path) -> dict | None:
        if not path.exists():
            return None
        from runtime.mbdp import tuning_configs

        try:
            tuning = json.loads(path.read_text())
            tuning_configs(tuning)
        except ValueError as exc:  # json.JSONDecodeError is a ValueError
            raise BundleLoadError(f"{bundle_path}: payload/mbdp.json: {exc}") from exc
        return tuning

    def run(self, iq: np.ndarray, carrier_hz: float) -> BundleResult:
        dec = self.pipeline.run_capture(iq, self.fs, carrier_hz)
        n_blocks = round(iq.shape[1] / self.fs / self.block_s)
        block_of = np.minimum((np.asarray(dec.times_s) / self.block_s).astype(int), n_blocks - 1)
        motion = np.zeros(n_blocks, dtype=bool)
        np.logical_or.at(motion, block_of, np.asarray(dec.present, dtype=bool))
        return BundleResult(motion, len(dec.onset_times_s) > 0, self._rare_score(iq, carrier_hz, dec))

    def _rare_score(self, iq: np.ndarray, carrier_hz: float, dec) -> float:
        if self.rare is None:
            return 0.0
        inp = self.rare.get_inputs()[0]
        if len(inp.shape) == 3:
            from runtime.frontend import extract_features
            from runtime.windows import context_windows

            feats = extract_features(iq, self.fs, carrier_hz, self.frontend_cfg)
            context = int(inp.shape[1]) if isinstance(inp.shape[1], int) else self.detector_cfg.context_frames
            if feats.shape[0] < context:
                return 0.0
            x, _ = context_windows(feats, context, max(1, context // 4))
        else:
            x = np.asarray(dec.embedding, dtype=np.float32)
        if x.shape[0] == 0:
            return 0.0
        out = np.asarray(self.rare.run(None, {inp.name: x.astype(np.float32)})[0], dtype=np.float64)
        if out.ndim == 1 or out.shape[-1] == 1:
            score = 1 / (1 + np.exp(-out.reshape(-1)))
        else:
            z = np.exp(out - out.max(axis=-1, keepdims=True))
            score = 1 - z[:, 0] / z.sum(axis=-1)
        return float(score.max())
