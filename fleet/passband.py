"""Passband path: the same scene as real 96 kHz microphone signals, for short (lab) clips.

The scene is rendered as a complex envelope at the passband rate (so nothing is band-limited
to the device's 2 kHz baseband) and up-converted: x_m(t) = Re{env_m(t)·exp(j·2π·f0·t)}. Mic noise
is real white noise whose in-band level equals the baseband path's after demodulation
(runtime.demod mixes with 2·exp(−jωt) and low-passes to out_fs/2).
"""

from __future__ import annotations

import io

import numpy as np
from scipy.io import wavfile

from fleet.scenes import DeviceScene


def render_passband(
    scene: DeviceScene, t0_s: float, duration_s: float, fs_hz: float = 96000.0, noise: bool = True
) -> np.ndarray:
    """Real passband float32 [M, n] at fs_hz for [t0_s, t0_s + duration_s) of the scene's day."""
    if fs_hz < 2 * (scene.device.carrier_hz + 2000.0):
        raise ValueError(f"fs_hz {fs_hz} too low for carrier {scene.device.carrier_hz}")
    n = round(duration_s * fs_hz)
    fast = DeviceScene(scene.device, scene.room, scene.events, fs_hz, scene.noise_seed)
    t = t0_s + np.arange(n) / fs_hz  # [n]
    env = fast.render_times(t)  # [M, n] complex envelope, no noise
    carrier_cycles = np.mod(scene.device.carrier_hz * t, 1.0)
    pcm = (env * np.exp(2j * np.pi * carrier_cycles)).real.astype(np.float32)
    if noise:
        # demod output noise variance = 4·s²·(fs_bb/fs_pb) → choose s so it equals the baseband σ²
        s = scene.device.noise_sigma() / (2.0 * np.sqrt(scene.fs / fs_hz))
        rng = np.random.default_rng([scene.noise_seed, 7919, round(t0_s * 1000)])
        pcm += (s * rng.standard_normal(pcm.shape)).astype(np.float32)
    return pcm


def wav_bytes(pcm: np.ndarray, fs_hz: float) -> bytes:
    """Multichannel float32 WAV of pcm [M, n]."""
    buf = io.BytesIO()
    wavfile.write(buf, int(fs_hz), np.ascontiguousarray(pcm.T.astype(np.float32)))
    return buf.getvalue()
