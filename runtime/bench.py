"""Runtime benchmark (`flywheel bench runtime`): canceller suppression and walker loss on a
synthetic 4-mic scene, front-end and demodulator speed per core. Measures and returns figures.

Suppression is the Doppler-band power of the playback distortion with the canceller off over
on. The canceller's signature is estimated adaptively from the whole scene (direct path + room
reflections with temperature drift + distortion + walker + noise); the front-end is linear up to
the power, so each component's own contribution is measured by passing its clutter residual
through the same frames with the whole scene's signature. Room reflections carry the distortion
sidebands with a delay, hence a different spatial signature than the carrier: they bound the
suppression (about the direct-to-room ratio). `canceller_suppression_db_rank_one` is the ideal
direct-path-only case.
Latency, duty-cycle and recall-cost keys need a trained model and the fleet simulator: they
are not measured here (listed under "not_measured").
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from runtime.clutter import ClutterFilter
from runtime.demod import demodulate
from runtime.frontend import FrontendConfig, StreamingFrontend, extract_features, n_frames_for, velocity_axis
from runtime.synthetic import (
    ArrayGeometry,
    BassMusic,
    StaticPath,
    multipath_playback,
    passband_tone,
    room_paths,
    static_channel,
    walker_echo,
)

SETTLE_S = 1.0  # ignore the first second (clutter filter settling) in power measurements


@contextlib.contextmanager
def one_core() -> Iterator[None]:
    """Pin this process to one CPU while timing (Linux); elsewhere run unpinned."""
    if not hasattr(os, "sched_getaffinity"):
        yield
        return
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(before)})
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def _best_time(fn: Callable[[], Any], repeats: int) -> float:
    """Least CPU time (s) of this process over repeats: per-core work, robust to other load."""
    best = float("inf")
    for _ in range(repeats):
        start = time.process_time()
        fn()
        best = min(best, time.process_time() - start)
    return max(best, 1e-9)


class _ComponentMeter:
    """Band power of one linear component of a scene, through the front-end with the scene's signature."""

    def __init__(self, cfg: FrontendConfig, carrier_hz: float, scene: np.ndarray, band_mps: float):
        self.cfg, self.carrier_hz = cfg, carrier_hz
        self.n_mics, n = scene.shape
        _, self.scene_static = ClutterFilter(self.n_mics, cfg.clutter_tau_s, cfg.baseband_fs_hz).process(
            scene
        )
        self.n_frames = n_frames_for(n, cfg)
        self.band = np.abs(velocity_axis(cfg)) >= band_mps
        self.skip = int(SETTLE_S * cfg.baseband_fs_hz / cfg.hop)

    def band_power(self, component: np.ndarray, canceller: bool) -> float:
        cfg = FrontendConfig.from_dict({**self.cfg.to_dict(), "canceller": canceller})
        frontend = StreamingFrontend(cfg, cfg.baseband_fs_hz, self.carrier_hz, self.n_mics)
        residual, _ = ClutterFilter(self.n_mics, cfg.clutter_tau_s, cfg.baseband_fs_hz).process(component)
        features = frontend._features(residual, self.scene_static, self.n_frames)  # [F, V] dB
        return float(np.mean(10.0 ** (features[self.skip :, self.band] / 10.0)))


def _suppression_and_loss(
    cfg: FrontendConfig, b: dict[str, Any], quick: bool, room_level_db: float | None
) -> tuple[list[float], dict[float, float]]:
    """Per-volume distortion suppression (dB) and per-angle walker loss (dB) for one room model."""
    rng = np.random.default_rng(int(b["seed"]))
    fs, f0, c = cfg.baseband_fs_hz, float(b["carrier_hz"]), cfg.speed_of_sound_mps
    n = int(float(b["capture_s"]) * fs / (2 if quick else 1))
    if n < 3 * SETTLE_S * fs:
        raise ValueError(f"bench capture_s too short: need {3 * SETTLE_S * (2 if quick else 1)} s or more")
    geometry = ArrayGeometry(int(b["n_mics"]), float(b["array_radius_m"]))
    paths = [StaticPath(static_channel(geometry, f0, c, rng), float(b["direct_path_m"]) / c)]
    if room_level_db is not None:
        paths += room_paths(geometry, f0, c, rng, int(b["room_paths"]), room_level_db)
    drift = np.linspace(0.0, float(b["temperature_drift_rad"]), n)
    noise_amp = float(b["noise_amplitude"])
    noise = noise_amp * (
        rng.standard_normal((geometry.n_mics, n)) + 1j * rng.standard_normal((geometry.n_mics, n))
    )
    silent = multipath_playback(paths, BassMusic.random(0.0, rng), n, fs, f0, c, drift)  # static paths only
    angles = [float(a) for a in b["walker_angles_deg"]]
    speed, amplitude = float(b["walker_speed_mps"]), float(b["walker_amplitude"])
    suppression, walker_loss = [], {}
    for excursion_mm in b["excursion_mm"]:
        music = BassMusic.random(float(excursion_mm) * 1e-3, rng)
        playing = multipath_playback(paths, music, n, fs, f0, c, drift)
        distortion = (playing - silent).astype(np.complex64)
        walker = walker_echo(geometry, n, fs, f0, c, angles[0], speed, amplitude)
        meter = _ComponentMeter(
            cfg, f0, (playing + walker + noise).astype(np.complex64), float(b["motion_band_mps"])
        )
        off, on = (meter.band_power(distortion, flag) for flag in (False, True))
        suppression.append(float(10 * np.log10(off / on)))
    for angle in angles:  # walker loss with music at the loudest volume
        walker = walker_echo(geometry, n, fs, f0, c, angle, speed, amplitude)
        meter = _ComponentMeter(
            cfg, f0, (playing + walker + noise).astype(np.complex64), float(b["motion_band_mps"])
        )
        off, on = (meter.band_power(walker.astype(np.complex64), flag) for flag in (False, True))
        walker_loss[angle] = float(10 * np.log10(off / on))
    return suppression, walker_loss


def _canceller_figures(cfg: FrontendConfig, b: dict[str, Any], quick: bool) -> dict[str, Any]:
    room_db = b.get("room_reflection_db")
    suppression, walker_loss = _suppression_and_loss(
        cfg, b, quick, None if room_db is None else float(room_db)
    )
    rank_one, _ = _suppression_and_loss(cfg, b, quick, None)
    mean_loss = float(-10 * np.log10(np.mean([10 ** (-x / 10) for x in walker_loss.values()])))
    return {
        "canceller_suppression_db": min(suppression),
        "canceller_suppression_db_per_volume": [round(x, 2) for x in suppression],
        "canceller_suppression_db_rank_one": min(rank_one),
        "canceller_room_reflection_db": room_db,
        "walker_loss_db": mean_loss,
        "walker_loss_worst_db": max(walker_loss.values()),
        "walker_loss_db_per_angle": {str(int(a)): round(v, 3) for a, v in walker_loss.items()},
    }


def _speed_figures(cfg: FrontendConfig, b: dict[str, Any], quick: bool) -> dict[str, Any]:
    rng = np.random.default_rng(int(b["seed"]) + 1)
    f0, n_mics = float(b["carrier_hz"]), int(b["n_mics"])
    capture_s = float(b["speed_capture_s"]) / (6 if quick else 1)
    n = int(capture_s * cfg.baseband_fs_hz)
    iq = (rng.standard_normal((n_mics, n)) + 1j * rng.standard_normal((n_mics, n))).astype(np.complex64)
    iq += np.exp(1j * rng.uniform(0, 2 * np.pi, (n_mics, 1))).astype(np.complex64)
    fs_pcm = float(b["demod_fs_hz"])
    demod_s = float(b["demod_capture_s"]) / (5 if quick else 1)
    pcm = passband_tone(int(demod_s * fs_pcm), fs_pcm, f0 + 150.0, n_channels=n_mics)
    repeats = 2 if quick else 3
    hop_block = np.array_split(iq[:, : cfg.hop * 200], 200, axis=1)

    def stream_hops() -> None:
        frontend = StreamingFrontend(cfg, cfg.baseband_fs_hz, f0, n_mics)
        for block in hop_block:
            frontend.process(block)

    with one_core():
        t_frontend = _best_time(lambda: extract_features(iq, cfg.baseband_fs_hz, f0, cfg), repeats)
        t_stream = _best_time(stream_hops, repeats)
        t_demod = _best_time(lambda: demodulate(pcm, fs_pcm, f0, cfg.baseband_fs_hz), repeats)
    return {
        "frontend_realtime_factor": capture_s / t_frontend,
        "frontend_streaming_realtime_factor": (200 * cfg.hop / cfg.baseband_fs_hz) / t_stream,
        "demod_realtime_factor": demod_s / t_demod,
        "speed_setup": f"{n_mics} mics, baseband {cfg.baseband_fs_hz:.0f} Hz, demod {n_mics} ch at "
        f"{fs_pcm:.0f} Hz, one pinned core, least process CPU time of {repeats}; "
        "streaming = one hop per call",
    }


def run_bench(params: dict[str, Any], quick: bool = False) -> dict[str, Any]:
    """Measure the runtime figures; params is the whole params dict."""
    cfg = FrontendConfig.from_dict(params["frontend"])
    bench = params["runtime"]["bench"]
    results: dict[str, Any] = {"quick": quick}
    results.update(_canceller_figures(cfg, bench, quick))
    results.update(_speed_figures(cfg, bench, quick))
    results["not_measured"] = {
        key: "needs a trained model and the fleet simulator (training/evaluation)"
        for key in ("latency_median_s", "latency_p95_s", "emission_duty_cycle", "duty_cycling_recall_cost")
    }
    return results
