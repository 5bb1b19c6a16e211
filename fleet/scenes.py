"""Compose a device's scene and render any stretch of it: static field + events + mic noise.

A DeviceScene is a pure function of absolute time: rendering chunk k twice gives the same
samples (noise is seeded per device, chunk and microphone), so the upload policy can look at
one microphone first and render all of them only for the captures it keeps.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from fleet.devices import Device
from fleet.events import Event, RenderCtx
from fleet.rooms import Room
from fleet.scatterers import Acoustics


@dataclass
class DeviceScene:
    device: Device
    room: Room
    events: list[Event]  # sorted by t0
    fs: float
    noise_seed: int
    ac: Acoustics = field(init=False)
    direct: np.ndarray = field(init=False)  # [M] complex
    reflections: np.ndarray = field(init=False)  # [K, M] complex

    def __post_init__(self) -> None:
        self.events = sorted(self.events, key=lambda e: e.t0)
        self.ac = Acoustics.of(self.device, self.room, self.fs)
        self.direct, self.reflections = self.room.static_paths(self.device)
        self._starts = np.array([e.t0 for e in self.events])
        self._max_len = max((e.t1 - e.t0 for e in self.events), default=0.0)

    def overlapping(self, t0: float, t1: float) -> list[Event]:
        lo = int(np.searchsorted(self._starts, t0 - self._max_len))
        hi = int(np.searchsorted(self._starts, t1))
        return [e for e in self.events[lo:hi] if e.t1 > t0 and e.t0 < t1]

    def render(self, chunk_index: int, n: int, mics: np.ndarray | None = None) -> np.ndarray:
        """Baseband [M', n] complex64 of samples [chunk_index·n, (chunk_index+1)·n) of the day."""
        t = (chunk_index * n + np.arange(n)) / self.fs  # [n] absolute seconds
        return self.render_times(t, mics, noise_key=chunk_index)

    def render_times(
        self, t: np.ndarray, mics: np.ndarray | None = None, noise_key: int | None = None
    ) -> np.ndarray:
        """Baseband [M', n] complex64 at times t (absolute s, 1/fs apart); noise_key None: noise-free."""
        mics = np.arange(self.device.n_mics) if mics is None else np.asarray(mics)
        n = t.size
        static = self.direct[mics] + self.reflections[:, mics].sum(0)  # [M']
        out = np.empty((mics.size, n), dtype=np.complex64)
        sigma = self.device.noise_sigma() / np.sqrt(2)
        for j, m in enumerate(mics):
            if noise_key is None:
                out[j] = np.complex64(static[j])
                continue
            g = np.random.default_rng([self.noise_seed, noise_key, int(m)])
            noise = g.standard_normal(2 * n, dtype=np.float32).view(np.complex64)
            out[j] = noise * np.float32(sigma) + np.complex64(static[j])
        ctx = RenderCtx(self.ac, mics, self.direct[mics], self.reflections[:, mics])
        for ev in self.overlapping(t[0], t[-1] + 1 / self.fs):
            a = int(np.searchsorted(t, ev.t0))
            b = int(np.searchsorted(t, ev.t1))
            if b > a:
                out[:, a:b] += ev.draw(t[a:b], ctx)
        return out

    def playback_volume(self, t0: float, t1: float) -> float:
        vols = [e.volume for e in self.overlapping(t0, t1) if e.event_type == "music"]
        return float(max(vols, default=0.0))
