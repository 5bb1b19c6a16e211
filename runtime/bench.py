"""Runtime benchmark (`flywheel bench runtime`): canceller suppression and walker loss on a
synthetic 4-mic scene, front-end and demodulator speed per core. Measures and returns figures.

Suppression is the Doppler-band power of the playback distortion with the canceller off over
on. The canceller's signature is estimated adaptively from the whole scene (direct path + room
reflections with temperature drift + distortion + walker + noise), and so is its per-bin gate
(runtime.canceller); the front-end is linear in power once the signature and the gate are fixed,
so each component's own contribution is measured by passing its clutter residual through the
same frames with the whole scene's signature and gate. Room reflections carry the distortion
sidebands with a delay, hence a different spatial signature than the carrier: they bound the
suppression (about the direct-to-room ratio). `canceller_suppression_db_rank_one` is the ideal
direct-path-only case. `canceller_plain_*` are the same figures for the ungated rank-one
projection (every bin projected), for comparison.

Walker loss: a plane-wave walker echo swept over walker_sweep_deg (start, stop, step; 1 degree by
default: the losses peak in lobes a few degrees wide), with music at the loudest volume and
without music. `walker_loss_db` is the worst over the sweep (all of it is 30 degrees or more off
the direct path), `walker_loss_db_median` the median, `walker_loss_db_per_angle` the listed
walker_angles_deg. Why some angles lose a lot: 4 mics on a 3.5 cm circle at 40 kHz are about 8
wavelengths round, so the array is spatially aliased; an echo from angle a overlaps the direct
path's signature u by |u^H a(angle)|^2, e.g. cos^2(kr), about 0.8, at 90 degrees, and nearly 1 in
grating lobes (near 89, 103 and 165 degrees for the bench unit). Whatever is along u cannot be told
from playback distortion by its spatial signature, so any canceller that removes the
distortion removes that part of such an echo: 1 - |u^H a|^2 is kept, an inherent loss of this
geometry, not of the algorithm. The plain projection pays it at every angle all the time; the gated
canceller only in the bins where the energy is direct-path-like (music, or echoes in a grating lobe).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from runtime.canceller import MIN_GATE_DB
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
    """Band power of one linear component of a scene, through the front-end with the scene's
    signature and the scene's per-bin canceller gate."""

    def __init__(self, cfg: FrontendConfig, carrier_hz: float, scene: np.ndarray, band_mps: float):
        self.cfg, self.carrier_hz = cfg, carrier_hz
        self.n_mics, n = scene.shape
        self.frontend = StreamingFrontend(cfg, cfg.baseband_fs_hz, carrier_hz, self.n_mics)
        residual, static = ClutterFilter(self.n_mics, cfg.clutter_tau_s, cfg.baseband_fs_hz).process(scene)
        self.n_frames = n_frames_for(n, cfg)
        self.scene_static = self.frontend._static_at_frame_ends(static, self.n_frames)  # [M, F]
        p_perp, p_along = self.frontend._bin_powers(residual, self.scene_static, self.n_frames)
        self.keep_along = self.frontend.canceller.keep_along(p_perp, p_along)  # the scene's gate [F, B]
        self.band = np.abs(velocity_axis(cfg)) >= band_mps
        self.skip = int(SETTLE_S * cfg.baseband_fs_hz / cfg.hop)

    def band_power(self, component: np.ndarray, canceller: bool) -> float:
        residual, _ = ClutterFilter(self.n_mics, self.cfg.clutter_tau_s, self.cfg.baseband_fs_hz).process(
            component
        )
        p_perp, p_along = self.frontend._bin_powers(residual, self.scene_static, self.n_frames)
        if canceller and self.frontend.canceller.active:
            power = np.where(self.keep_along, p_perp + p_along, p_perp)
        else:
            power = p_perp + p_along
        features = self.frontend._to_features(power)  # [F, V] dB
        return float(np.mean(10.0 ** (features[self.skip :, self.band] / 10.0)))


def sweep_angles(b: dict[str, Any], quick: bool) -> list[float]:
    """Walker angles of the sweep: walker_sweep_deg = [start, stop, step] (stop included), step x 5 quick."""
    start, stop, step = (float(x) for x in b["walker_sweep_deg"])
    step *= 5 if quick else 1
    angles = np.arange(start, stop + step / 2, step)
    listed = [float(a) for a in b["walker_angles_deg"]]
    return sorted({round(float(a), 3) for a in angles} | set(listed))


def _walker_loss(meter_scene: np.ndarray, walker: np.ndarray, cfg: FrontendConfig, f0: float, band: float):
    meter = _ComponentMeter(cfg, f0, (meter_scene + walker).astype(np.complex64), band)
    off, on = (meter.band_power(walker.astype(np.complex64), flag) for flag in (False, True))
    return float(10 * np.log10(off / on))


def _suppression_and_loss(
    cfg: FrontendConfig,
    b: dict[str, Any],
    quick: bool,
    room_level_db: float | None,
    angles: list[float] | None = None,
) -> tuple[list[float], dict[float, float], dict[float, float]]:
    """Per-volume distortion suppression (dB) and per-angle walker loss (dB) with music at the loudest
    volume and without music, for one room model. angles: None = walker_angles_deg."""
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
    listed = [float(a) for a in b["walker_angles_deg"]]
    angles = listed if angles is None else angles
    speed, amplitude, band = (
        float(b["walker_speed_mps"]),
        float(b["walker_amplitude"]),
        float(b["motion_band_mps"]),
    )
    suppression = []
    for excursion_mm in b["excursion_mm"]:
        music = BassMusic.random(float(excursion_mm) * 1e-3, rng)
        playing = multipath_playback(paths, music, n, fs, f0, c, drift)
        distortion = (playing - silent).astype(np.complex64)
        walker = walker_echo(geometry, n, fs, f0, c, listed[0], speed, amplitude)
        meter = _ComponentMeter(cfg, f0, (playing + walker + noise).astype(np.complex64), band)
        off, on = (meter.band_power(distortion, flag) for flag in (False, True))
        suppression.append(float(10 * np.log10(off / on)))
    with_music, without_music = {}, {}
    for angle in angles:  # walker loss with music at the loudest volume, and in silence
        walker = walker_echo(geometry, n, fs, f0, c, angle, speed, amplitude)
        with_music[angle] = _walker_loss(playing + noise, walker, cfg, f0, band)
        without_music[angle] = _walker_loss(silent + noise, walker, cfg, f0, band)
    return suppression, with_music, without_music


def _loss_summary(prefix: str, loss: dict[float, float], listed: list[float]) -> dict[str, Any]:
    values = np.array(list(loss.values()))
    worst = max(loss, key=loss.get)
    return {
        f"{prefix}_db": float(values.max()),
        f"{prefix}_worst_angle_deg": worst,
        f"{prefix}_db_median": float(np.median(values)),
        f"{prefix}_share_over_3db": float(np.mean(values > 3.0)),
        f"{prefix}_db_per_angle": {f"{a:g}": round(loss[a], 3) for a in listed if a in loss},
    }


def _canceller_figures(cfg: FrontendConfig, b: dict[str, Any], quick: bool) -> dict[str, Any]:
    room_db = b.get("room_reflection_db")
    room = None if room_db is None else float(room_db)
    listed = [float(a) for a in b["walker_angles_deg"]]
    angles = sweep_angles(b, quick)
    if min(angles) < 30.0:
        raise ValueError("walker angles must be 30 degrees or more off the direct path")
    out: dict[str, Any] = {}
    plain_cfg = FrontendConfig.from_dict({**cfg.to_dict(), "canceller_gate_db": MIN_GATE_DB})
    for prefix, c in (("", cfg), ("plain_", plain_cfg)):
        suppression, music, silence = _suppression_and_loss(c, b, quick, room, angles)
        rank_one, _, _ = _suppression_and_loss(c, b, quick, None, [listed[0]])
        out.update(
            {
                f"canceller_{prefix}suppression_db": min(suppression),
                f"canceller_{prefix}suppression_db_per_volume": [round(x, 2) for x in suppression],
                f"canceller_{prefix}suppression_db_rank_one": min(rank_one),
                **_loss_summary(f"{prefix}walker_loss", music, listed),
                **_loss_summary(f"{prefix}walker_loss_no_music", silence, listed),
            }
        )
    gate = StreamingFrontend(cfg, cfg.baseband_fs_hz, float(b["carrier_hz"]), int(b["n_mics"])).canceller
    out["canceller"] = gate.describe()["canceller"]
    out["canceller_room_reflection_db"] = room_db
    out["walker_loss_worst_db"] = out["walker_loss_db"]
    out["walker_sweep"] = (
        f"{len(angles)} angles {min(angles):g}-{max(angles):g} deg; walker_loss_* with music at "
        f"{max(float(x) for x in b['excursion_mm'])} mm excursion, *_no_music in silence"
    )
    return out


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
    repeats = 3 if quick else 7  # least CPU time of these: robust to other load on a shared machine
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
    results["not_measured"] = {  # flows.bench_runtime measures them (flywheel bench runtime)
        key: "needs a trained model and the fleet simulator: flows.bench_runtime"
        for key in ("latency_median_s", "latency_p95_s", "emission_duty_cycle", "duty_cycling_recall_cost")
    }
    return results
