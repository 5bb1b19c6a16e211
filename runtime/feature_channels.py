"""Feature channels of the Doppler front-end: what each velocity bin carries besides its power.

A frame is n_velocity_bins x len(channels) values, interleaved by bin (column v * C + c is channel c of
velocity bin v), so windows stay [context, V * C] everywhere and the model's stem reads C channels per
bin with a (3, 3C) kernel and a (2, 2C) stride: exactly a C-input-channel convolution over velocity.

The channels (FrontendConfig.channels; "power" comes first, the rest are switchable in params):
- "power": the bin's power after the direct-path canceller, in dB (re the carrier or absolute, as
  level_reference says). The only channel of bundles built before channels existed.
- "direct" (space): the share of the bin's power that arrives along the direct-path spatial signature,
  10 log10(P_along / P_total) before the canceller's gate, clipped to [DIRECT_FLOOR_DB, 0]. Loudspeaker
  distortion travels with the emission, so it sits near 0 dB; an echo from elsewhere keeps
  1 - |u^H a|^2 of its power orthogonal to u, and noise uncorrelated across M mics sits near
  -10 log10(M). One microphone has no spatial view: every bin reads 0 dB.
- "recent" (time and trajectory, seconds): an exponential average of the bin's power over recent_tau_s
  (a one-pole recursion over frames, in linear power, then dB like "power"). Against the 1 s context it
  shows where on the velocity axis the energy was over the last seconds (a walker approaching, then
  turning), and it integrates a still person's micro-motion over several breaths.
- "background" (time, minutes): the bin's power in dB re its own long-term average in dB (tau
  background_tau_s): a fan, HVAC or a repeller that runs for minutes builds the average up and reads
  near 0 dB, a person arriving stands out above it. The average is taken in dB (a geometric mean of
  the power), so an arrival 40 dB over the floor raises it by only 40 dB x hop / tau per frame, where
  a linear average would jump by 10 log10(1 + 10^4 hop / tau) dB at once.
Both averages are streaming state that start at the stream's first frame and carry across blocks
(the one-pole recursion continued with its state gives the same numbers as one long call).
"""

from __future__ import annotations

import numpy as np
from scipy import signal

CHANNELS = ("power", "direct", "recent", "background")
LEVEL_CHANNELS = ("power", "recent")  # absolute echo levels: a gain change shifts them (augmentation)
DIRECT_FLOOR_DB = -30.0


def check_channels(channels: tuple[str, ...]) -> None:
    if not channels or channels[0] != "power":
        raise ValueError(f"feature channels must start with 'power', got {list(channels)}")
    unknown = sorted(set(channels) - set(CHANNELS))
    if unknown:
        raise ValueError(f"unknown feature channel {unknown[0]!r} (known: {', '.join(CHANNELS)})")
    if len(set(channels)) != len(channels):
        raise ValueError(f"feature channels repeat: {list(channels)}")


def split_channels(frames: np.ndarray, n_channels: int) -> np.ndarray:
    """Interleaved frames [..., V * C] -> [..., V, C] (a view)."""
    frames = np.asarray(frames)
    if frames.shape[-1] % n_channels:
        raise ValueError(f"frame width {frames.shape[-1]} is not a multiple of {n_channels} channels")
    return frames.reshape(*frames.shape[:-1], frames.shape[-1] // n_channels, n_channels)


def power_channel(frames: np.ndarray, n_channels: int) -> np.ndarray:
    """The power channel [..., V] of interleaved frames [..., V * C] (the frames themselves when C = 1)."""
    return np.asarray(frames) if n_channels == 1 else split_channels(frames, n_channels)[..., 0]


class ExponentialAverage:
    """Per-bin one-pole average over frames, y[n] = a y[n-1] + (1 - a) x[n], y[-1] = x[0]; streaming."""

    def __init__(self, tau_s: float, hop_s: float):
        if tau_s <= 0:
            raise ValueError(f"average time constant must be > 0, got {tau_s}")
        self.alpha = float(np.exp(-hop_s / tau_s))
        self._b = np.array([1.0 - self.alpha])
        self._a = np.array([1.0, -self.alpha])
        self._state: np.ndarray | None = None  # lfilter's zi [1, V]

    def process(self, x: np.ndarray) -> np.ndarray:
        """x [F, V] (linear power or dB) -> averages [F, V] float64."""
        x = np.asarray(x, np.float64)
        if len(x) == 0:
            return x.copy()
        if self._state is None:  # as if x[0] had always been there
            self._state = (self.alpha * x[:1]).copy()
        y, self._state = signal.lfilter(self._b, self._a, x, axis=0, zi=self._state)
        return y


class ChannelMaker:
    """Streaming builder of the interleaved frames [F, V * C] from the front-end's on-axis powers."""

    def __init__(self, channels: tuple[str, ...], hop_s: float, recent_tau_s, background_tau_s):
        check_channels(channels)
        self.channels = channels
        self.recent = (
            ExponentialAverage(_required(recent_tau_s, "recent"), hop_s) if "recent" in channels else None
        )
        self.background = (
            ExponentialAverage(_required(background_tau_s, "background"), hop_s)
            if "background" in channels
            else None
        )

    @property
    def needs_direct_split(self) -> bool:
        return "direct" in self.channels

    def frames(
        self,
        power_db: np.ndarray,
        power: np.ndarray,
        direct_share: np.ndarray | None,
        reference_db: np.ndarray | None,
    ) -> np.ndarray:
        """power_db [F, V] (the power channel, already referenced), power [F, V] linear on-axis power
        (un-referenced, floored by the front-end: positive), direct_share [F, V] linear along/total of
        floored powers (positive) or None, reference_db [F] (subtracted from the level channels) or None
        -> frames [F, V * C] float32."""
        if len(self.channels) == 1:
            return power_db
        n_frames, n_bins = power_db.shape
        out = np.empty((n_frames, n_bins, len(self.channels)), np.float32)  # [F, V, C]
        for c, name in enumerate(self.channels):
            if name == "power":
                out[:, :, c] = power_db
            elif name == "direct":
                share_db = 10.0 * np.log10(np.asarray(direct_share, np.float64))
                out[:, :, c] = np.clip(share_db, DIRECT_FLOOR_DB, 0.0)
            elif name == "recent":
                recent_db = 10.0 * np.log10(self.recent.process(power))
                out[:, :, c] = recent_db if reference_db is None else recent_db - reference_db[:, None]
            else:  # background, averaged in dB: one loud arrival barely moves it (a geometric mean)
                out[:, :, c] = power_db - self.background.process(power_db)
        return out.reshape(n_frames, n_bins * len(self.channels))


def _required(tau_s: float | None, channel: str) -> float:
    if tau_s is None:
        raise ValueError(f"feature channel {channel!r} needs frontend.{channel}_tau_s")
    return float(tau_s)
