"""Synthetic multi-mic baseband scenes for tests and the runtime benchmark (no truth, no files).

Physics (docs/DESIGN.md, "The physics the simulator must respect"): per mic the baseband is the
static channel (direct path + room, a fixed complex vector across mics) times the emission, plus
moving echoes exp(-j 2 pi f0 2 r(t)/c) arriving as plane waves on a circular array. Loudspeaker
cone excursion X(t) from playback bass phase-modulates the emission with index 2 pi f0 X / c, so the
distortion rides on the static channel and shares its spatial signature.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ArrayGeometry:
    n_mics: int = 4
    radius_m: float = 0.035

    def steering(self, angle_deg: float, carrier_hz: float, speed_of_sound_mps: float) -> np.ndarray:
        """Plane-wave phase across mics [n_mics] complex128 for a wave from angle_deg."""
        mic_angles = 2 * np.pi * np.arange(self.n_mics) / self.n_mics
        k = 2 * np.pi * carrier_hz / speed_of_sound_mps
        return np.exp(1j * k * self.radius_m * np.cos(np.deg2rad(angle_deg) - mic_angles))


def static_channel(
    geometry: ArrayGeometry,
    carrier_hz: float,
    c: float,
    rng: np.random.Generator,
    direct_angle_deg: float = 0.0,
) -> np.ndarray:
    """Direct-path signature with per-mic manufacturing spread (about 1 dB, 10 degrees) [n_mics]."""
    gain_db = rng.normal(0.0, 1.0, geometry.n_mics)
    phase = rng.normal(0.0, np.deg2rad(10.0), geometry.n_mics)
    return geometry.steering(direct_angle_deg, carrier_hz, c) * 10 ** (gain_db / 20) * np.exp(1j * phase)


@dataclass(frozen=True)
class BassMusic:
    """Cone excursion of bass-heavy music: a few 40-120 Hz partials under a slow beat envelope."""

    freqs_hz: np.ndarray
    phases: np.ndarray
    beat_hz: float
    scale_m: float

    @classmethod
    def random(cls, peak_m: float, rng: np.random.Generator, n_partials: int = 4) -> BassMusic:
        freqs, phases = rng.uniform(40.0, 120.0, n_partials), rng.uniform(0, 2 * np.pi, n_partials)
        # sum of partials peaks near n_partials; scale so the excursion peaks at about peak_m
        return cls(freqs, phases, float(rng.uniform(0.5, 2.0)), peak_m / n_partials)

    def __call__(self, t: np.ndarray) -> np.ndarray:
        envelope = 0.75 + 0.25 * np.sin(2 * np.pi * self.beat_hz * t)
        partials = np.sin(2 * np.pi * self.freqs_hz[:, None] * t + self.phases[:, None])
        return self.scale_m * envelope * np.sum(partials, axis=0)


def bass_excursion(n: int, fs_hz: float, peak_m: float, rng: np.random.Generator) -> np.ndarray:
    """Cone excursion [n] (m) of bass-heavy music sampled at fs_hz, peak exactly peak_m."""
    x = BassMusic.random(1.0, rng)(np.arange(n) / fs_hz)
    return peak_m * x / np.max(np.abs(x))


@dataclass(frozen=True)
class StaticPath:
    gain: np.ndarray  # [n_mics] complex, carrier phase of the path included
    delay_s: float


def room_paths(
    geometry: ArrayGeometry,
    carrier_hz: float,
    c: float,
    rng: np.random.Generator,
    n_paths: int,
    level_db: float,
) -> list[StaticPath]:
    """Room reflections: n_paths plane waves from random directions, 1.5-8 m of extra path,
    together level_db relative to a unit direct path."""
    amplitude = 10 ** (level_db / 20) / np.sqrt(n_paths)
    paths = []
    for _ in range(n_paths):
        delay = rng.uniform(1.5, 8.0) / c
        steer = geometry.steering(rng.uniform(0, 360), carrier_hz, c)
        paths.append(StaticPath(amplitude * steer * np.exp(-2j * np.pi * carrier_hz * delay), delay))
    return paths


def multipath_playback(
    paths: list[StaticPath],
    music: BassMusic,
    n: int,
    fs_hz: float,
    carrier_hz: float,
    c: float,
    drift_rad: np.ndarray | None = None,
) -> np.ndarray:
    """Emission phase-modulated by the music, through each static path with its own delay [n_mics, n].

    A sideband at f_bass sees a path delayed by tau with an extra phase 2 pi f_bass tau, so room
    paths carry the distortion with a different spatial signature than the carrier itself.
    """
    t = np.arange(n) / fs_hz
    out = np.zeros((len(paths[0].gain), n), np.complex128)
    for path in paths:
        beta = 2 * np.pi * carrier_hz * music(t - path.delay_s) / c
        out += path.gain[:, None] * np.exp(1j * beta)[None, :]
    return out if drift_rad is None else out * np.exp(1j * drift_rad)[None, :]


def playback_distortion(
    static: np.ndarray,
    excursion_m: np.ndarray,
    carrier_hz: float,
    c: float,
    drift_rad: np.ndarray | None = None,
) -> np.ndarray:
    """Static channel times the phase-modulated emission [n_mics, n]; drift_rad adds a slow common phase."""
    beta = 2 * np.pi * carrier_hz * excursion_m / c  # [n]
    phase = beta if drift_rad is None else beta + drift_rad
    return static[:, None] * np.exp(1j * phase)[None, :]


def walker_echo(
    geometry: ArrayGeometry,
    n: int,
    fs_hz: float,
    carrier_hz: float,
    c: float,
    angle_deg: float,
    speed_mps: float,
    amplitude: float,
    start_range_m: float = 4.0,
) -> np.ndarray:
    """Echo of a scatterer approaching at speed_mps from angle_deg [n_mics, n] (with a small gait sway)."""
    t = np.arange(n) / fs_hz
    r = start_range_m - speed_mps * t + 0.03 * np.sin(2 * np.pi * 1.8 * t)  # gait sway
    echo = amplitude * np.exp(-2j * np.pi * carrier_hz * 2 * r / c)
    return geometry.steering(angle_deg, carrier_hz, c)[:, None] * echo[None, :]


def passband_tone(
    n: int, fs_hz: float, freq_hz: float, n_channels: int = 1, amplitude: float = 0.5
) -> np.ndarray:
    """Real passband cosine [n_channels, n] (float32) for demodulator tests and benchmarks."""
    t = np.arange(n) / fs_hz
    return np.tile(amplitude * np.cos(2 * np.pi * freq_hz * t), (n_channels, 1)).astype(np.float32)
