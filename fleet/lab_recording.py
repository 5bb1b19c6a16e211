"""A synthetic lab recording: passband PCM of a rig's tone, its static room and a moving reflector.

What a phone or dev kit records while someone moves in front of it: the carrier at f0 (direct path
plus static room echoes: one constant tone), a person as a few scatterers whose range changes with
a smooth velocity profile (each echo's phase is 2 pi f0 (t - 2 r(t) / c), so its frequency is
f0 (1 + 2 v / c): the Doppler shift 2 v f0 / c of an approaching reflector), and white noise.
Tests and the lab benchmark write these as WAV files to exercise `flywheel lab import` end to end.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SPEED_OF_SOUND_MPS = 343.0


@dataclass(frozen=True)
class LabTake:
    """One take: duration_s of recording at fs_hz with a tone at carrier_hz; motion (if any) from
    onset_s for motion_s seconds at peak radial speed peak_v_mps (positive: approaching)."""

    duration_s: float = 2.0
    fs_hz: float = 44100.0
    carrier_hz: float = 20000.0
    tone_level: float = 0.3  # direct-path amplitude, full scale 1
    echo_db: float = -30.0  # the moving echoes' total amplitude re the direct path
    onset_s: float | None = 0.1  # None: nobody moves (an empty-room take)
    motion_s: float = 0.5
    peak_v_mps: float = 1.0
    n_scatterers: int = 5  # torso and limbs: speeds spread around the peak
    noise_dbfs: float = -70.0  # a noise floor near the simulated devices (about -88 dB re the carrier)
    n_mics: int = 1
    seed: int = 0


def velocity_profile(t: np.ndarray, take: LabTake) -> np.ndarray:
    """Radial speed [n] m/s: a raised-sine swell from onset_s over motion_s, zero elsewhere."""
    if take.onset_s is None:
        return np.zeros_like(t)
    u = (t - take.onset_s) / take.motion_s
    return np.where((u >= 0) & (u <= 1), take.peak_v_mps * np.sin(np.pi * np.clip(u, 0, 1)) ** 2, 0.0)


def render_take(take: LabTake) -> np.ndarray:
    """float32 [n_mics, n] passband samples of one take (full scale 1)."""
    rng = np.random.default_rng(take.seed)
    n = round(take.duration_s * take.fs_hz)
    t = np.arange(n) / take.fs_hz  # [n]
    out = np.zeros((take.n_mics, n), np.float64)
    v = velocity_profile(t, take)  # [n]
    displacement = np.cumsum(v) / take.fs_hz  # [n] metres moved towards the rig
    spread = rng.uniform(0.6, 1.3, take.n_scatterers)  # per-scatterer speed factor
    amps = rng.uniform(0.5, 1.0, take.n_scatterers)
    amps *= 10 ** (take.echo_db / 20) * take.tone_level / np.sqrt(np.sum(amps**2))
    for m in range(take.n_mics):
        phase0 = rng.uniform(0, 2 * np.pi)
        out[m] += take.tone_level * np.cos(2 * np.pi * take.carrier_hz * t + phase0)
        if take.onset_s is not None:
            for k in range(take.n_scatterers):
                r = rng.uniform(0.3, 1.5) - spread[k] * displacement  # [n] range
                delay = 2 * r / SPEED_OF_SOUND_MPS
                out[m] += amps[k] * np.cos(
                    2 * np.pi * take.carrier_hz * (t - delay) + rng.uniform(0, 2 * np.pi)
                )
        out[m] += 10 ** (take.noise_dbfs / 20) * rng.standard_normal(n)
    return out.astype(np.float32)


def wav_bytes(pcm: np.ndarray, fs_hz: float, sample_format: str = "int16") -> bytes:
    """WAV file bytes of pcm [n_mics, n] as int16, int32 (24-bit style left-justified) or float32."""
    import io

    from scipy.io import wavfile

    data = np.ascontiguousarray(pcm.T)  # [n, ch]
    if data.shape[1] == 1:
        data = data[:, 0]
    if sample_format == "int16":
        data = np.clip(np.round(data * 32767), -32768, 32767).astype(np.int16)
    elif sample_format == "int32":
        data = np.clip(np.round(data * 2147483647.0), -(2**31), 2**31 - 1).astype(np.int32)
    elif sample_format == "float32":
        data = data.astype(np.float32)
    else:
        raise ValueError(f"sample_format {sample_format!r}: int16, int32 or float32")
    buf = io.BytesIO()
    wavfile.write(buf, round(fs_hz), data)
    return buf.getvalue()


def lab_session(
    lengths_s: list[list[float]], n_per_length: int, n_empty: int, seed: int
) -> list[tuple[str, LabTake]]:
    """A lab session's takes: n_per_length motion takes with lengths drawn uniformly from each
    [lo, hi] of lengths_s (the motion starts 0.05-0.2 s in and lasts up to 0.6 s: a swipe, a reach,
    a step), and n_empty takes with nobody moving. Names are <folder>/<take>.wav."""
    rng = np.random.default_rng(seed)
    takes = []
    for lo, hi in lengths_s:
        for k in range(n_per_length):
            duration = float(rng.uniform(lo, hi))
            onset = float(rng.uniform(0.05, 0.2))
            take = LabTake(
                duration_s=round(duration, 3),
                onset_s=round(onset, 3),
                motion_s=round(min(float(rng.uniform(0.3, 0.6)), duration - onset), 3),
                peak_v_mps=float(rng.uniform(0.6, 1.5)),
                echo_db=float(rng.uniform(-36.0, -24.0)),
                seed=int(rng.integers(1 << 31)),
            )
            takes.append((f"motion/take_{lo:g}-{hi:g}s_{k:02d}.wav", take))
    for k in range(n_empty):
        take = LabTake(
            duration_s=round(float(rng.uniform(1.0, 4.0)), 3), onset_s=None, seed=int(rng.integers(1 << 31))
        )
        takes.append((f"empty/take_{k:02d}.wav", take))
    return takes


def labels_csv(takes: list[tuple[str, LabTake]]) -> str:
    """The labels CSV `flywheel lab import --labels` reads for these takes (motion: class major)."""
    rows = ["file,event_type,motion_class,t0_s,t1_s"]
    for name, take in takes:
        if take.onset_s is None:
            rows.append(f"{name},empty,none,,")
        else:
            rows.append(f"{name},hand_gesture,major,{take.onset_s:g},{take.onset_s + take.motion_s:.3f}")
    return "\n".join(rows) + "\n"
