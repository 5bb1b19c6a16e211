"""Motion primitives shared by the event generators: paths, smooth random signals, people.

Everything is a function of absolute device time (seconds since the device's day started), so a
scene rendered in consecutive chunks is seamless across chunk (capture) boundaries.
"""

from __future__ import annotations

import itertools

import numpy as np


def fade(t: np.ndarray, t0: float, t1: float, ramp_s: float = 0.3) -> np.ndarray:
    """Raised-cosine on/off envelope [n]: 0 outside [t0, t1], 1 inside after the ramps."""
    up = np.clip((t - t0) / ramp_s, 0.0, 1.0)
    down = np.clip((t1 - t) / ramp_s, 0.0, 1.0)
    return 0.25 * (1 - np.cos(np.pi * up)) * (1 - np.cos(np.pi * down))


class SmoothNoise:
    """Band-limited random signal: a sum of sinusoids in [f_lo, f_hi] Hz with unit RMS."""

    def __init__(self, rng: np.random.Generator, f_lo: float, f_hi: float, n_tones: int = 6):
        self.f = rng.uniform(f_lo, f_hi, n_tones)
        self.phase = rng.uniform(0, 2 * np.pi, n_tones)
        self.amp = rng.rayleigh(1.0, n_tones)
        self.amp *= np.sqrt(2.0 / np.sum(self.amp**2))

    def __call__(self, t: np.ndarray) -> np.ndarray:
        return (self.amp[:, None] * np.sin(2 * np.pi * self.f[:, None] * t + self.phase[:, None])).sum(0)


class Path:
    """Piecewise-linear trajectory through waypoints [K, 3] at times [K] (holding at the ends)."""

    def __init__(self, times: np.ndarray, points: np.ndarray):
        self.times = np.asarray(times, dtype=np.float64)
        self.points = np.asarray(points, dtype=np.float64)

    @staticmethod
    def walk(t0: float, points: list[np.ndarray], speed: float, pause_s: float = 0.0) -> Path:
        times, pts, t = [t0], [points[0]], t0
        for a, b in itertools.pairwise(points):
            t += np.linalg.norm(b - a) / speed
            times.append(t)
            pts.append(b)
            if pause_s > 0:
                t += pause_s
                times.append(t)
                pts.append(b)
        return Path(np.array(times), np.array(pts))

    @property
    def t_end(self) -> float:
        return float(self.times[-1])

    def position(self, t: np.ndarray) -> np.ndarray:  # [n, 3]
        return np.stack([np.interp(t, self.times, self.points[:, i]) for i in range(3)], axis=1)

    def velocity(self, t: np.ndarray) -> np.ndarray:  # [n, 3]
        seg = np.clip(np.searchsorted(self.times, t, side="right") - 1, 0, len(self.times) - 2)
        dt = np.maximum(np.diff(self.times), 1e-9)
        v = np.diff(self.points, axis=0) / dt[:, None]  # [K-1, 3]
        inside = (t >= self.times[0]) & (t < self.times[-1])
        return v[seg] * inside[:, None]


# reflectivity sqrt(σ/4π) in metres of each body part
BODY_GAIN = {"torso": 0.12, "arm": 0.03, "leg": 0.05}


def walker(path: Path, t: np.ndarray, gait_hz: float, phase0: float) -> tuple[np.ndarray, np.ndarray]:
    """A walking person: torso, two arms, two legs → (pos [5, n, 3], gain [5])."""
    centre = path.position(t)
    vel = path.velocity(t)
    speed = np.linalg.norm(vel, axis=1)
    heading = vel / np.maximum(speed, 1e-6)[:, None]
    side = np.stack([-heading[:, 1], heading[:, 0], np.zeros_like(speed)], axis=1)
    step = np.minimum(speed / 1.2, 1.3)  # swing grows with walking speed, 0 when standing
    ph = 2 * np.pi * gait_hz * t + phase0
    swing = np.sin(ph) * step
    torso = centre.copy()
    torso[:, 2] += 0.02 * step * np.sin(2 * ph)
    parts = [torso]
    for s in (1.0, -1.0):  # arms swing opposite to the legs on the same side
        arm = centre + 0.2 * s * side - (0.25 * s * swing)[:, None] * heading
        arm[:, 2] -= 0.1
        leg = centre + 0.1 * s * side + (0.3 * s * swing)[:, None] * heading
        leg[:, 2] -= 0.6
        parts += [arm, leg]
    gain = np.array(
        [BODY_GAIN["torso"], BODY_GAIN["arm"], BODY_GAIN["leg"], BODY_GAIN["arm"], BODY_GAIN["leg"]]
    )
    return np.stack(parts), gain


def pulse_train(t: np.ndarray, onsets: np.ndarray, rise_s: float, hold_s: float) -> np.ndarray:
    """Sum of smooth 0→1→0 bumps starting at `onsets` (sorted): rise, hold, fall (each cosine)."""
    out = np.zeros_like(t)
    if onsets.size == 0:
        return out
    lo = np.searchsorted(onsets, t[0] - (2 * rise_s + hold_s))
    hi = np.searchsorted(onsets, t[-1])
    length = 2 * rise_s + hold_s
    starts = np.searchsorted(t, onsets[lo:hi])
    stops = np.searchsorted(t, onsets[lo:hi] + length)
    for t_on, a, b in zip(onsets[lo:hi], starts, stops, strict=True):
        x = t[a:b] - t_on
        up = np.clip(x / rise_s, 0, 1)
        down = np.clip((length - x) / rise_s, 0, 1)
        out[a:b] += 0.25 * (1 - np.cos(np.pi * up)) * (1 - np.cos(np.pi * down))
    return out
