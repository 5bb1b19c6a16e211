"""What a device decides on its own stream: motion (for routines) and which captures to upload.

Without a bundle the device runs the factory detector: band energy on one microphone after
removing the static field (per-block mean), against a tracked noise floor. With a bundle installed
(fleet/bundle_runner.py) the energy detector only wakes the bundle's pipeline, whose decisions then
drive uploads and routines, plus the rare-event trigger when the bundle ships one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


class EnergyDetector:
    """Factory motion detector: Doppler-band energy of one mic over a tracked noise floor.

    Per 0.25 s block: remove the mean (the static field), Hann window, FFT, sum |X|² over
    f_lo ≤ |f| ≤ f_hi. f_lo keeps breathing and slow drift (near-zero Doppler) out.
    """

    def __init__(self, fs: float, cfg: dict):
        self.block = round(cfg["energy_block_s"] * fs)
        self.threshold_db = float(cfg["energy_threshold_db"])
        self.min_blocks = int(cfg["energy_min_blocks"])
        self.n_fft = 1 << (self.block - 1).bit_length()
        f = np.fft.fftfreq(self.n_fft, 1 / fs)
        lo, hi = cfg["energy_band_hz"]
        self.band = (np.abs(f) >= lo) & (np.abs(f) <= hi)
        self.window = np.hanning(self.block).astype(np.float32)
        self.floor: float | None = None
        self.run = 0  # consecutive blocks above threshold
        self.last_scores = np.zeros(0)

    def scores_db(self, x: np.ndarray) -> np.ndarray:
        """x [n] complex (one mic) → [B] band energy in dB over the noise floor (updates the floor)."""
        n_blocks = x.size // self.block
        blocks = x[: n_blocks * self.block].reshape(n_blocks, self.block)
        blocks = (blocks - blocks.mean(axis=1, keepdims=True)) * self.window  # [B, L]
        spec = np.fft.fft(blocks, n=self.n_fft, axis=1)  # [B, n_fft]
        energy = (np.abs(spec[:, self.band]) ** 2).sum(axis=1).astype(np.float64) + 1e-30
        out = np.empty(n_blocks)
        for i, e in enumerate(energy):
            # minimum statistics: follow drops at once, rise slowly (≈1 dB per 12 s at 0.25 s blocks)
            self.floor = e if self.floor is None else min(e, self.floor * 1.005)
            out[i] = 10 * np.log10(e / self.floor)
        return out

    def quiet(self, n_samples: int, noise_sigma: float) -> np.ndarray:
        """Decisions for a stretch with nothing in it but the static field and mic noise.

        Its band energy is the noise's, n_band·σ²·Σw² within a fraction of a dB (hundreds of
        bins averaged), so it cannot cross the threshold: update the floor and decide "no motion"
        without rendering the samples.
        """
        n_blocks = n_samples // self.block
        energy = int(self.band.sum()) * noise_sigma**2 * float(np.sum(self.window.astype(np.float64) ** 2))
        for _ in range(n_blocks):
            self.floor = energy if self.floor is None else min(energy, self.floor * 1.005)
        self.run = 0
        self.last_scores = 10 * np.log10(energy / self.floor) * np.ones(n_blocks)
        return np.zeros(n_blocks, dtype=bool)

    def process(self, x: np.ndarray) -> np.ndarray:
        """[B] bool: motion decided in each block (needs min_blocks consecutive blocks above threshold)."""
        self.last_scores = self.scores_db(x)
        above = self.last_scores > self.threshold_db
        decided = np.zeros(above.size, dtype=bool)
        for i, a in enumerate(above):
            self.run = self.run + 1 if a else 0
            decided[i] = self.run >= self.min_blocks
        return decided


@dataclass
class UploadPolicy:
    """Turns per-capture decisions into uploads: detections (with cooldown), rare events, a sample."""

    cfg: dict
    capture_s: float
    rng: np.random.Generator
    last_detection_t: float = -1e18
    last_rare_t: float = -1e18
    pending_post: int = 0
    counts: dict = field(default_factory=dict)

    def decide(self, t0: float, detected: bool, rare: bool) -> str | None:
        """Trigger for the capture starting at t0 (absolute s), or None to keep it on the device."""
        trigger = None
        if detected and t0 - self.last_detection_t >= self.cfg["detection_cooldown_s"]:
            trigger, self.last_detection_t = "detection", t0
            self.pending_post = int(self.cfg["detection_post_captures"])
        elif self.pending_post > 0:
            trigger = "detection"
            self.pending_post -= 1
        elif rare and t0 - self.last_rare_t >= self.cfg["rare_event_cooldown_s"]:
            trigger, self.last_rare_t = "rare_event", t0
        # the random sample is drawn for every capture so it does not depend on the other decisions
        sampled = self.rng.random() < self.cfg["sample_prob"]
        if trigger is None and sampled:
            trigger = "sample"
        if trigger:
            self.counts[trigger] = self.counts.get(trigger, 0) + 1
        return trigger
