"""Doppler front-end: complex baseband [n_mics, n] -> log power on a radial-velocity axis [frames, V].

Chain: resample to baseband_fs_hz (streaming polyphase, only when fs differs) -> clutter removal
-> Hann STFT per mic -> direct-path canceller (per frame, signature = static estimate at the
frame's last sample; per bin, gated: runtime.canceller) -> power summed over mics -> linear
interpolation from frequency onto v = f * c / (2 * f0) on np.linspace(-v_max, v_max, n_velocity_bins)
-> 10 * log10(power + floor), in dB re the static (direct-path) carrier power at the frame's end,
summed over mics (level_reference "carrier", as params.yaml sets; "absolute": dB re a unit tone).
The velocity axis makes the features carrier independent; the carrier reference makes them
independent of the emission level calibration picks (a 20 dB spread across units), the speaker and
mic gains and the number of mics, so an echo's strength means the same on every unit (a pet's small
echo stays small). Positive velocity = approaching. Batch (extract_features) is the streaming
front-end fed one block, so both agree.

Speed (batch path, 4 mics): the clutter filter runs block-parallel (runtime.clutter), and the
canceller works after the FFT on the bins the velocity axis touches only (96 of 256 at 40 kHz;
the projection commutes with the FFT because the signature is constant over a frame).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.fft
from scipy import signal

from runtime.canceller import MIN_GATE_DB, DirectPathCanceller, bin_powers, power_sum, signature
from runtime.clutter import ClutterFilter
from runtime.config import config_from_dict
from runtime.feature_channels import ChannelMaker, check_channels
from runtime.resample import StreamingResampler

POWER_FLOOR = 1e-15  # added before the log: -150 dB re a unit-amplitude tone
MAX_HOP_S = 0.032  # docs/DESIGN.md: hop at most 32 ms
FRAME_CHUNK = 256  # frames computed at once: bounds memory and keeps work arrays in cache (measured best)
LEVEL_REFERENCES = ("carrier", "absolute")


@dataclass(frozen=True)
class FrontendConfig:
    """The `frontend` section of params.yaml (and a bundle's frontend.json). Every field a frontend.json
    has always carried is required; the defaults are the behaviour of bundles written before the key."""

    baseband_fs_hz: float
    frame_len: int
    hop: int
    n_fft: int
    v_max_mps: float
    n_velocity_bins: int
    clutter_tau_s: float
    canceller: bool
    speed_of_sound_mps: float
    # per-bin gate of the canceller (runtime.canceller): project a bin when its power along the
    # direct-path signature is this many dB above the orthogonal power; <= -100: project every bin
    # (the default: a frontend.json written before the gate existed had an ungated canceller)
    canceller_gate_db: float = MIN_GATE_DB
    # "carrier": dB re the direct-path power; "absolute" (the default, so a frontend.json written before
    # the option existed keeps computing the features its model was trained on): dB re a unit tone
    level_reference: str = "absolute"
    # what each velocity bin carries (runtime.feature_channels); ("power",): bundles built before channels
    channels: tuple[str, ...] = ("power",)
    recent_tau_s: float | None = None  # the "recent" channel's average; needed only when it is on
    background_tau_s: float | None = None  # the "background" channel's long-term average

    def __post_init__(self) -> None:
        check_channels(tuple(self.channels))
        if self.level_reference not in LEVEL_REFERENCES:
            raise ValueError(
                f"level_reference must be one of {LEVEL_REFERENCES}, got {self.level_reference!r}"
            )
        if not 0 < self.hop <= self.frame_len <= self.n_fft:
            raise ValueError(
                f"need 0 < hop <= frame_len <= n_fft, got {self.hop}, {self.frame_len}, {self.n_fft}"
            )
        if self.hop / self.baseband_fs_hz > MAX_HOP_S + 1e-12:
            raise ValueError(
                f"hop {self.hop / self.baseband_fs_hz * 1e3:.1f} ms exceeds {MAX_HOP_S * 1e3:.0f} ms"
            )
        if min(self.baseband_fs_hz, self.v_max_mps, self.clutter_tau_s, self.speed_of_sound_mps) <= 0:
            raise ValueError("baseband_fs_hz, v_max_mps, clutter_tau_s, speed_of_sound_mps must be > 0")
        if self.n_velocity_bins < 2:
            raise ValueError(f"n_velocity_bins must be >= 2, got {self.n_velocity_bins}")

    @property
    def n_channels(self) -> int:
        return len(self.channels)

    @property
    def frame_width(self) -> int:
        """Values per frame: n_velocity_bins x n_channels, interleaved by bin."""
        return self.n_velocity_bins * self.n_channels

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["channels"] = list(self.channels)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FrontendConfig:
        return config_from_dict(cls, d, "frontend")


def velocity_axis(cfg: FrontendConfig) -> np.ndarray:
    """Radial velocities (m/s) of the feature bins [V]."""
    return np.linspace(-cfg.v_max_mps, cfg.v_max_mps, cfg.n_velocity_bins)


def doppler_hz(velocity_mps: np.ndarray | float, carrier_hz: float, cfg: FrontendConfig) -> np.ndarray:
    """Two-way Doppler shift f_d = 2 v f0 / c."""
    return 2.0 * np.asarray(velocity_mps) * carrier_hz / cfg.speed_of_sound_mps


def frame_end_times(n_frames: int, cfg: FrontendConfig) -> np.ndarray:
    """Seconds from capture start at which frame i ends: (i * hop + frame_len) / fs  [n_frames] float64."""
    return (np.arange(n_frames, dtype=np.float64) * cfg.hop + cfg.frame_len) / cfg.baseband_fs_hz


def n_frames_for(n_baseband_samples: int, cfg: FrontendConfig) -> int:
    """Frames that fit in n baseband samples."""
    return 0 if n_baseband_samples < cfg.frame_len else (n_baseband_samples - cfg.frame_len) // cfg.hop + 1


class StreamingFrontend:
    """Frame-by-frame front-end: process(block [n_mics, n]) -> features [k, V] for any block size."""

    def __init__(self, cfg: FrontendConfig, fs_hz: float, carrier_hz: float, n_mics: int):
        if fs_hz < cfg.baseband_fs_hz:
            raise ValueError(f"fs_hz {fs_hz} is below baseband_fs_hz {cfg.baseband_fs_hz}")
        if n_mics < 1:
            raise ValueError(f"n_mics must be >= 1, got {n_mics}")
        f_edge = float(doppler_hz(cfg.v_max_mps, carrier_hz, cfg))
        if carrier_hz <= 0 or f_edge >= cfg.baseband_fs_hz / 2:
            raise ValueError(
                f"carrier {carrier_hz} Hz puts v_max at {f_edge:.0f} Hz, "
                f"beyond Nyquist of {cfg.baseband_fs_hz} Hz"
            )
        self.cfg, self.fs_hz, self.carrier_hz, self.n_mics = cfg, float(fs_hz), float(carrier_hz), n_mics
        self.resampler = (
            None if fs_hz == cfg.baseband_fs_hz else StreamingResampler(fs_hz, cfg.baseband_fs_hz, n_mics)
        )
        self.clutter = ClutterFilter(n_mics, cfg.clutter_tau_s, cfg.baseband_fs_hz)
        self.canceller = DirectPathCanceller(n_mics, cfg.canceller, cfg.canceller_gate_db)
        window = signal.get_window("hann", cfg.frame_len).astype(np.float32)
        self.window = window / window.sum()  # a unit-amplitude tone peaks at power 1 (0 dB)
        # Interpolation from FFT bins onto the velocity axis: fractional bin of each velocity. Only
        # the B FFT bins the axis touches (self._bins) are kept; _lower/_upper index into them.
        fractional_bin = doppler_hz(velocity_axis(cfg), carrier_hz, cfg) * cfg.n_fft / cfg.baseband_fs_hz
        lower = np.floor(fractional_bin)
        self._w_upper = (fractional_bin - lower).astype(np.float32)  # [V]
        self._w_lower = (1.0 - self._w_upper).astype(np.float32)
        bin_lower = lower.astype(np.int64) % cfg.n_fft  # [V]
        bin_upper = (bin_lower + 1) % cfg.n_fft
        self._bins = np.unique(np.concatenate([bin_lower, bin_upper]))  # [B] FFT bins in use
        self._lower = np.searchsorted(self._bins, bin_lower)  # [V] columns of the [F, B] powers
        self._upper = np.searchsorted(self._bins, bin_upper)
        self._residual = np.zeros((n_mics, 0), np.complex64)  # baseband samples not yet framed
        self._static = np.zeros((n_mics, 0), np.complex64)
        self.channel_maker = ChannelMaker(
            tuple(cfg.channels), cfg.hop / cfg.baseband_fs_hz, cfg.recent_tau_s, cfg.background_tau_s
        )

    def describe(self) -> dict[str, Any]:
        return {
            "frontend": self.cfg.to_dict(),
            "fs_hz": self.fs_hz,
            "carrier_hz": self.carrier_hz,
            "resampler": None if self.resampler is None else f"{self.resampler.up}/{self.resampler.down}",
            **self.canceller.describe(),
        }

    def process(self, block: np.ndarray) -> np.ndarray:
        block = np.asarray(block)
        if block.ndim != 2 or block.shape[0] != self.n_mics:
            raise ValueError(f"block must be [{self.n_mics}, n], got {block.shape}")
        if not np.iscomplexobj(block):
            raise ValueError("block must be complex baseband")
        block = block.astype(np.complex64, copy=False)
        if not np.isfinite(block.view(np.float32)).all():  # NaN/Inf would poison the filter states
            raise ValueError("block contains NaN or Inf")
        if self.resampler is not None:
            block = self.resampler.process(block)
        residual, static = self.clutter.process(block)
        if self._residual.shape[1]:
            residual = np.concatenate([self._residual, residual], axis=1)
            static = np.concatenate([self._static, static], axis=1)
        self._residual, self._static = residual, static
        cfg = self.cfg
        n_frames = n_frames_for(self._residual.shape[1], cfg)
        if n_frames == 0:
            return np.zeros((0, cfg.frame_width), np.float32)
        features = np.empty((n_frames, cfg.frame_width), np.float32)
        for lo in range(0, n_frames, FRAME_CHUNK):  # bounded memory on long captures
            hi = min(lo + FRAME_CHUNK, n_frames)
            span = slice(lo * cfg.hop, (hi - 1) * cfg.hop + cfg.frame_len)
            features[lo:hi] = self._features(self._residual[:, span], self._static[:, span], hi - lo)
        consumed = n_frames * cfg.hop
        self._residual = self._residual[:, consumed:]
        self._static = self._static[:, consumed:]
        return features

    def _bin_powers(
        self, residual: np.ndarray, static_at_ends: np.ndarray, n_frames: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Powers [F, B] on the FFT bins in use: (orthogonal to the direct-path signature, along it)
        summed over mics; with the canceller inactive (total power, zeros). static_at_ends [M, F]."""
        cfg = self.cfg
        view = np.lib.stride_tricks.sliding_window_view(residual, cfg.frame_len, axis=1)  # [M, T', L]
        frames = np.empty((n_frames, self.n_mics, cfg.frame_len), np.complex64)  # [F, M, L]
        np.multiply(view[:, : n_frames * cfg.hop : cfg.hop].transpose(1, 0, 2), self.window, out=frames)
        spectra = np.take(scipy.fft.fft(frames, n=cfg.n_fft, axis=-1), self._bins, axis=2)  # [F, M, B]
        split = self.channel_maker.needs_direct_split
        if not self.canceller.active and (self.n_mics == 1 or not split):
            total = power_sum(spectra)
            if split:  # one microphone: all of it is "along" its signature
                return np.zeros_like(total), total
            return total, np.zeros_like(total)
        return bin_powers(spectra, signature(static_at_ends.T))  # [F, B] each

    def _on_axis(self, power: np.ndarray) -> np.ndarray:
        """Bin power [F, B] -> power on the velocity axis [F, V] float32, floored."""
        on_axis = power[:, self._lower] * self._w_lower
        on_axis += power[:, self._upper] * self._w_upper
        on_axis += POWER_FLOOR
        return on_axis

    def _to_features(self, power: np.ndarray) -> np.ndarray:
        """Bin power [F, B] -> dB on the velocity axis [F, V] float32."""
        return _to_db(self._on_axis(power))

    def _static_at_frame_ends(self, static: np.ndarray, n_frames: int) -> np.ndarray:
        """Static estimate [M, n] -> [M, F]: its value at each frame's last sample."""
        return static[:, np.arange(n_frames) * self.cfg.hop + self.cfg.frame_len - 1]

    def _features(self, residual: np.ndarray, static: np.ndarray, n_frames: int) -> np.ndarray:
        static_at_ends = self._static_at_frame_ends(static, n_frames)  # [M, F]
        p_perp, p_along = self._bin_powers(residual, static_at_ends, n_frames)
        on_axis = self._on_axis(self.canceller.combine(p_perp, p_along))  # [F, V] linear, floored
        multi = self.cfg.n_channels > 1
        power = on_axis.copy() if multi else None  # for the averaged channels
        features = _to_db(on_axis)  # [F, V] dB
        reference = carrier_level_db(static_at_ends) if self.cfg.level_reference == "carrier" else None
        if reference is not None:
            features -= reference[:, None]
        if not multi:
            return features
        share = None
        if self.channel_maker.needs_direct_split:  # share along the direct path, before the gate
            share = self._on_axis(p_along) / self._on_axis(p_perp + p_along)
        return self.channel_maker.frames(features, power, share, reference)  # [F, V * C]


def _to_db(on_axis: np.ndarray) -> np.ndarray:
    """10 log10 of floored power [F, V] float32, in place."""
    return np.multiply(np.log10(on_axis, out=on_axis), 10.0, out=on_axis)


def carrier_level_db(static: np.ndarray) -> np.ndarray:
    """Static estimate [n_mics, F] complex -> direct-path power summed over mics [F] in dB (float32).

    The window is normalised so a unit tone is 0 dB, so a Doppler component as strong as the carrier
    sits at 0 dB re carrier."""
    power = (np.abs(static.astype(np.complex64, copy=False)) ** 2).sum(0)  # [F] float32
    return 10.0 * np.log10(power + np.float32(POWER_FLOOR))


def extract_features(iq: np.ndarray, fs_hz: float, carrier_hz: float, cfg: FrontendConfig) -> np.ndarray:
    """Whole capture iq [n_mics, n] complex at fs_hz -> float32 [n_frames, n_velocity_bins] (dB)."""
    iq = np.asarray(iq)
    if iq.ndim != 2:
        raise ValueError(f"iq must be [n_mics, n_samples], got shape {iq.shape}")
    return StreamingFrontend(cfg, fs_hz, carrier_hz, iq.shape[0]).process(iq)
