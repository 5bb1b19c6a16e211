"""Rooms: geometry, air (temperature, humidity → speed of sound, absorption) and static multipath.

Coordinates are device-centred (the array centre is the origin, x points away from the wall the
device stands against, z up). The room's static field at the mics is the direct speaker→mic path
plus first-order wall images and furniture echoes: large, constant, and what clutter removal takes out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fleet.devices import Device


def speed_of_sound(temperature_c: float) -> float:
    """c = 331.3·sqrt(1 + T/273.15) m/s."""
    return 331.3 * float(np.sqrt(1.0 + temperature_c / 273.15))


def air_absorption_db_per_m(f_hz: float, humidity: float = 0.5) -> float:
    """Air absorption ≈ 1.3 dB/m at 40 kHz (about 50 % RH), rising as f^1.5 and in drier air."""
    return 1.3 * (f_hz / 40000.0) ** 1.5 * (1.0 + 0.8 * (0.5 - humidity))


def echo_gain(r_tx: np.ndarray, r_rx: np.ndarray, alpha_db_per_m: float) -> np.ndarray:
    """Amplitude of a point echo of unit reflectivity: spherical spreading both ways + absorption."""
    return 10 ** (-alpha_db_per_m * (r_tx + r_rx) / 20.0) / (r_tx * r_rx)


@dataclass(frozen=True)
class Room:
    lo: np.ndarray  # [3] room corner with the smallest coordinates (device-centred)
    hi: np.ndarray  # [3]
    temperature_c: float
    humidity: float
    door: np.ndarray  # [3] a point in the doorway, at torso height
    seat: np.ndarray  # [3] where a seated person's chest is
    window: np.ndarray  # [3] centre of the curtained window
    furniture: np.ndarray  # [F, 3] static reflectors
    furniture_gain: np.ndarray  # [F]
    wall_reflectance: float

    @property
    def c(self) -> float:
        return speed_of_sound(self.temperature_c)

    def alpha(self, f_hz: float) -> float:
        return air_absorption_db_per_m(f_hz, self.humidity)

    def random_point(self, rng: np.random.Generator, z: float, margin: float = 0.4) -> np.ndarray:
        lo, hi = self.lo + margin, self.hi - margin
        return np.array([rng.uniform(lo[0], hi[0]), rng.uniform(lo[1], hi[1]), z])

    def static_paths(self, dev: Device) -> tuple[np.ndarray, np.ndarray]:
        """(direct [M], reflections [K, M]) complex baseband of the static field at each mic."""
        f0, c = dev.carrier_hz, self.c
        k = 2 * np.pi * f0 / c
        tx = dev.tx_amplitude()
        d_direct = np.linalg.norm(dev.mic_xyz - dev.speaker_xyz, axis=1)  # [M]
        # a few cm from the tweeter: spherical spreading makes the direct path tens of dB above any echo
        direct = tx * dev.direct_coupling / d_direct * np.exp(-1j * k * d_direct) * dev.mic_response
        rows = []
        # first-order wall images of the speaker (6 walls)
        for axis in range(3):
            for wall in (self.lo[axis], self.hi[axis]):
                img = dev.speaker_xyz.copy()
                img[axis] = 2 * wall - img[axis]
                r = np.linalg.norm(dev.mic_xyz - img, axis=1)
                amp = tx * self.wall_reflectance * 10 ** (-self.alpha(f0) * r / 20) / r
                rows.append(amp * np.exp(-1j * k * r) * dev.mic_response)
        for pos, g in zip(self.furniture, self.furniture_gain, strict=True):
            r_tx = np.linalg.norm(pos - dev.speaker_xyz)
            r_rx = np.linalg.norm(dev.mic_xyz - pos, axis=1)
            amp = tx * g * echo_gain(r_tx, r_rx, self.alpha(f0))
            rows.append(amp * np.exp(-1j * k * (r_tx + r_rx)) * dev.mic_response)
        return direct, np.array(rows)


def make_room(dev_height_m: float, rng: np.random.Generator) -> Room:
    """A living room / office / bedroom sized room with the device near one wall."""
    size = np.array([rng.uniform(3.0, 6.5), rng.uniform(3.0, 6.0), rng.uniform(2.4, 3.0)])
    y_off = rng.uniform(0.25, 0.75) * size[1]
    lo = np.array([-0.15, -y_off, -dev_height_m])
    hi = lo + size
    mid_z = 1.2 - dev_height_m
    door = np.array([rng.uniform(lo[0] + 1.0, hi[0] - 0.3), hi[1] if rng.random() < 0.5 else lo[1], mid_z])
    seat = np.array([rng.uniform(0.8, min(2.5, hi[0] - 0.5)), rng.uniform(lo[1] + 0.5, hi[1] - 0.5), 0.0])
    seat[2] = 1.1 - dev_height_m
    window = np.array([hi[0] - 0.05, rng.uniform(lo[1] + 0.8, hi[1] - 0.8), 1.4 - dev_height_m])
    n_f = int(rng.integers(4, 9))
    furniture = np.stack([room_point(lo, hi, rng) for _ in range(n_f)])
    return Room(
        lo=lo,
        hi=hi,
        temperature_c=float(rng.uniform(17.0, 28.0)),
        humidity=float(rng.uniform(0.25, 0.7)),
        door=door,
        seat=seat,
        window=window,
        furniture=furniture,
        furniture_gain=rng.uniform(0.05, 0.4, n_f),
        wall_reflectance=float(rng.uniform(0.3, 0.8)),
    )


def room_point(lo: np.ndarray, hi: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return np.array([rng.uniform(lo[i] + 0.3, hi[i] - 0.3) for i in range(3)])
